// `vitrine serve --config serve.toml` and `--print-config`: every serve flag
// can live in a TOML file as a top-level key named like the flag (`port =
// 8080`, `drain-seconds = 10`, `verify = true`). Flags on the command line
// win over the file; a key that is not a flag, or a value of the wrong
// type, is an error naming the file, line and column. Limits: the file
// size and key nesting of engine/config_file.h, kMaxServeConfigValueBytes
// per value. --print-config prints
// the effective settings in the same form, so `--print-config > serve.toml`
// then `--config serve.toml` reproduces them (tests/serve_config_test.cc).
#pragma once

#include <cxxopts.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"

namespace vitrine::cli {

// The longest value a config file may give one flag.
inline constexpr size_t kMaxServeConfigValueBytes = 4096;

struct ServeKey {
  enum class Kind { kString, kInt, kInt64, kReal, kFlag };  // the cxxopts value type
  const char* name;  // the long flag without "--"
  Kind kind;
};

// The arguments a config file stands for ("--port=8080", "--verify"), minus
// the keys `command_line` already sets. Errors: unreadable or invalid TOML,
// unknown keys, wrong types (file:line:column, key and what was expected).
Result<std::vector<std::string>> ServeConfigArgs(const std::filesystem::path& file,
                                                 const std::vector<ServeKey>& keys,
                                                 const std::vector<std::string>& command_line);

// The effective settings as TOML: every key with a value (given or default),
// in `keys` order.
std::string PrintServeConfig(const cxxopts::ParseResult& r, const std::vector<ServeKey>& keys);

}  // namespace vitrine::cli
