#include "cli/output.h"

#include <algorithm>
#include <cstdlib>

#include "core/csv.h"

namespace vitrine::cli {
namespace {
// A table goes to a terminal: control characters in catalog values (a
// newline, an escape sequence) are shown as \xNN, never sent raw.
std::string Printable(const std::string& s) {
  if (std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    return s;
  }
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}
}  // namespace

Result<Format> ParseFormat(const std::string& s) {
  if (s == "table") return Format::kTable;
  if (s == "json") return Format::kJson;
  if (s == "csv") return Format::kCsv;
  return Status::InvalidArgument("--format '" + s + "': expected table, json or csv");
}

std::string FormatFloat(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string Table::Render(Format f) const {
  std::string out;
  if (f == Format::kCsv) {
    std::vector<std::string_view> v(header.begin(), header.end());
    AppendCsvRow(out, v);
    for (const auto& r : rows) {
      v.assign(r.begin(), r.end());
      AppendCsvRow(out, v);
    }
    return out;
  }
  if (f == Format::kJson) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json o = nlohmann::json::object();
      for (size_t c = 0; c < header.size() && c < r.size(); ++c) {
        const bool is_id =
            header[c].size() >= 3 && header[c].compare(header[c].size() - 3, 3, "_id") == 0;
        if (is_id) {
          o[header[c]] = r[c];  // ids stay strings even when they look numeric
        } else if (IsNumber(r[c]) && r[c].find_first_of(".eE") == std::string::npos) {
          o[header[c]] = std::strtoll(r[c].c_str(), nullptr, 10);  // ranks, counts
        } else if (IsNumber(r[c])) {
          o[header[c]] = std::strtod(r[c].c_str(), nullptr);
        } else {
          o[header[c]] = r[c];
        }
      }
      arr.push_back(std::move(o));
    }
    return arr.dump(2) + "\n";
  }
  std::vector<std::vector<std::string>> shown;
  shown.reserve(rows.size());
  for (const auto& r : rows) {
    shown.emplace_back();
    for (const std::string& cell : r) shown.back().push_back(Printable(cell));
  }
  std::vector<size_t> w(header.size(), 0);
  for (size_t c = 0; c < header.size(); ++c) w[c] = header[c].size();
  for (const auto& r : shown) {
    for (size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& r, bool is_header) {
    for (size_t c = 0; c < w.size(); ++c) {
      const std::string& cell = c < r.size() ? r[c] : std::string();
      const bool right = !is_header && IsNumber(cell);
      const std::string pad(w[c] - std::min(w[c], cell.size()), ' ');
      out += right ? pad + cell : cell + (c + 1 < w.size() ? pad : "");
      if (c + 1 < w.size()) out += "  ";
    }
    out += '\n';
  };
  line(header, true);
  std::vector<std::string> rule;
  for (size_t c = 0; c < w.size(); ++c) rule.emplace_back(w[c], '-');
  line(rule, true);
  for (const auto& r : shown) line(r, false);
  return out;
}

void Table::Print(Format f, std::FILE* out) const {
  const std::string s = Render(f);
  std::fwrite(s.data(), 1, s.size(), out);
}

}  // namespace vitrine::cli
