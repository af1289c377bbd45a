// The build configuration file (`vitrine build --config build.toml`): one
// table of every key, its type and its accepted range, used both to read a
// file into BuildOptions and to write one back (`vitrine tune
// --save-config`), and to print the key reference (`vitrine build
// --config-keys`). Unknown keys, wrong types, non-integral or out-of-range
// numbers are errors naming the file, line, column and key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/builder.h"
#include "engine/config_file.h"

namespace vitrine {

// The largest build config file read (a real one is a few hundred bytes).
inline constexpr uint64_t kMaxBuildConfigBytes = kMaxConfigBytes;

// Reads the TOML file at `path` into `o`: keys present overwrite, keys
// absent keep `o`'s value. On error `o` is unchanged.
Status ApplyBuildConfig(const std::string& path, BuildOptions* o);

// Same, from TOML text; `name` labels errors (usually the file's path).
Status ApplyBuildConfigText(const std::string& text, const std::string& name, BuildOptions* o);

// TOML text holding the given keys ("section.key", e.g. "als.factors";
// "weights" writes every block weight) with `o`'s values, grouped by
// section in the table's order. Reading it back with ApplyBuildConfig gives
// the same values. An unknown key is an InvalidArgument.
Result<std::string> WriteBuildConfig(const BuildOptions& o, const std::vector<std::string>& keys,
                                     const std::string& header_comment = "");

// Every key's "section.key" name, in the table's order, then the two
// families "content.column_weights.NAME" and "weights.BLOCK".
std::vector<std::string> BuildConfigKeys();

// One line per key: "section.key  type  range  meaning", for --help.
std::string BuildConfigReference();

}  // namespace vitrine
