// ReadConfigFile / ParseConfigToml: the size and nesting limits, then toml++.
#include "engine/config_file.h"

#include <filesystem>

#include "core/file_util.h"

namespace vitrine {

Result<std::string> ReadConfigFile(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return Status::IOError(path + ": " + ec.message());
  if (size > kMaxConfigBytes) {
    return Status::InvalidArgument(path + ": " + std::to_string(size) + " bytes; a " + what +
                                   " holds at most " + std::to_string(kMaxConfigBytes));
  }
  return ReadFileRaw(path);
}

Result<toml::table> ParseConfigToml(const std::string& text, const std::string& name) {
  // Unquoted dots per line (quotes do not span lines in the keys that nest).
  int line = 1, dots = 0;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      dots = 0;
      quote = 0;
    } else if (quote != 0) {
      if (c == '\\' && quote == '"') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '.' && ++dots > kMaxConfigLineDots) {
      return Status::InvalidArgument(name + ":" + std::to_string(line) + ": more than " +
                                     std::to_string(kMaxConfigLineDots) +
                                     " dots on one line (keys nested too deep)");
    }
  }
  try {
    return toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::InvalidArgument(name + ":" + std::to_string(b.line) + ":" +
                                   std::to_string(b.column) + ": " + std::string(e.description()));
  }
}

std::string ConfigWhere(const std::string& file, const toml::source_region& at) {
  return file + ":" + std::to_string(at.begin.line) + ":" + std::to_string(at.begin.column);
}

}  // namespace vitrine
