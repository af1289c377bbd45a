// Printing results as an aligned table, JSON or CSV (--format).
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace vitrine::cli {

enum class Format { kTable, kJson, kCsv };
Result<Format> ParseFormat(const std::string& s);

// A table of string cells. Table output right-aligns cells that parse as
// numbers; CSV quotes as RFC 4180 requires; JSON is an array of objects keyed
// by header (numbers stay numbers).
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  void Print(Format f, std::FILE* out = stdout) const;
  std::string Render(Format f) const;
};

std::string FormatFloat(double v, int decimals = 4);

}  // namespace vitrine::cli
