// Reading a TOML settings file (`build --config`, `serve --config`) within
// explicit limits, so a hostile file gets an error and never a crash: at most
// kMaxConfigBytes, and at most kMaxConfigLineDots unquoted dots on a line
// (toml++ recurses once per dotted-key level and overflowed the stack at
// 100,000 levels; no real key comes near the limit).
#pragma once

#include <cstdint>
#include <string>
#include <toml++/toml.h>

#include "core/status.h"

namespace vitrine {

inline constexpr uint64_t kMaxConfigBytes = uint64_t{1} << 20;
inline constexpr int kMaxConfigLineDots = 1000;

// The file's text. InvalidArgument "<path>: N bytes; a <what> holds at most
// 1048576" past the size limit; IOError if unreadable.
Result<std::string> ReadConfigFile(const std::string& path, const std::string& what);

// "<file>:<line>:<column>" of a node of a parsed file, for errors.
std::string ConfigWhere(const std::string& file, const toml::source_region& at);

// Parses `text`; errors name `name`, the line and the column.
Result<toml::table> ParseConfigToml(const std::string& text, const std::string& name);

}  // namespace vitrine
