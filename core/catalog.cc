#include "core/catalog.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <unordered_map>

#include "core/csv.h"
#include "core/json_util.h"  // Clip
#include "core/progress.h"   // LogInfo
#include "core/value_parse.h"

namespace vitrine {
namespace {

constexpr ColumnType kAllTypes[] = {ColumnType::kCategorical, ColumnType::kNumeric,
                                    ColumnType::kBool,        ColumnType::kList,
                                    ColumnType::kText,        ColumnType::kSkip};

// A bool word for inference: a ParseBool spelling other than "1" and "0"
// (a column of 1/0 infers numeric: such columns are counts more often than
// flags).
bool IsBoolWord(std::string_view v) { return v != "1" && v != "0" && ParseBool(v).has_value(); }

// Calls f(element) for each trimmed, non-empty element separated by ';' or
// '|' (MovieLens and many exports write genres as "Action|Comedy").
template <typename F>
void ForEachListElement(std::string_view v, F&& f) {
  while (true) {
    const size_t semi = v.find_first_of(";|");
    const std::string_view e = TrimBlanks(v.substr(0, semi));
    if (!e.empty()) f(e);
    if (semi == std::string_view::npos) return;
    v.remove_prefix(semi + 1);
  }
}

// A cell that kept a column from a type, for the near-miss message.
struct Misfit {
  int64_t line;
  std::string value;  // clipped
};

// The cells of one column that are not of one candidate type (bool or
// numeric): counted up to just past kFewCellsMax (beyond that the type
// cannot be a near miss, so the per-cell parse is skipped), the first
// kNearMissExamples kept.
struct Misfits {
  int64_t count = 0;
  std::vector<Misfit> examples;

  bool saturated() const { return count > kFewCellsMax; }
  void Add(std::string_view v, int64_t line) {
    if (static_cast<int>(examples.size()) < kNearMissExamples) {
      examples.push_back({line, Clip(v)});
    }
    ++count;
  }
};

// What pass 1 learns about a column whose type is inferred.
struct ColumnStats {
  int64_t nonempty = 0;
  bool all_bool = true;
  bool all_numeric = true;
  Misfits not_bool, not_numeric;
  bool any_semicolon = false;
  int64_t piped = 0;  // cells holding a '|'
  int64_t total_len = 0;
  int64_t spaced = 0;
  int64_t list_elements = 0;
  int64_t list_element_len = 0;
  std::vector<uint64_t> hashes;          // for the distinct count
  std::vector<uint64_t> element_hashes;  // list elements, likewise

  void Add(std::string_view raw, int64_t line) {
    const std::string_view v = TrimBlanks(raw);
    if (v.empty()) return;
    ++nonempty;
    if (!not_bool.saturated() && !IsBoolWord(v)) not_bool.Add(v, line);
    if (!not_numeric.saturated() && !ParseNumber(v)) not_numeric.Add(v, line);
    all_bool = not_bool.count == 0;
    all_numeric = not_numeric.count == 0;
    if (v.find(';') != std::string_view::npos) any_semicolon = true;
    if (v.find('|') != std::string_view::npos) ++piped;
    ForEachListElement(v, [&](std::string_view e) {
      ++list_elements;
      list_element_len += static_cast<int64_t>(e.size());
      element_hashes.push_back(std::hash<std::string_view>{}(e));
    });
    total_len += static_cast<int64_t>(v.size());
    if (v.find(' ') != std::string_view::npos) ++spaced;
    hashes.push_back(std::hash<std::string_view>{}(v));
  }

  // The rules documented in catalog.h, in order.
  ColumnType Decide() {
    if (nonempty == 0) return ColumnType::kCategorical;
    if (all_bool) return ColumnType::kBool;
    if (all_numeric) return ColumnType::kNumeric;
    const bool short_elements = list_elements > 0 && list_element_len <= 30 * list_elements;
    if (any_semicolon && short_elements) return ColumnType::kList;
    // '|' also separates a title now and then ("Heat | Director's Cut"), so
    // it makes a list only when a tenth of the cells hold one and the
    // elements are a vocabulary (each repeats on average), as genres and
    // tags are and title parts are not.
    if (10 * piped >= nonempty && short_elements) {
      std::sort(element_hashes.begin(), element_hashes.end());
      const auto distinct_elements =
          std::unique(element_hashes.begin(), element_hashes.end()) - element_hashes.begin();
      if (2 * distinct_elements <= list_elements) return ColumnType::kList;
    }
    std::sort(hashes.begin(), hashes.end());
    const auto distinct = std::unique(hashes.begin(), hashes.end()) - hashes.begin();
    if (total_len > 30 * nonempty || (2 * spaced >= nonempty && 5 * distinct >= 4 * nonempty)) {
      return ColumnType::kText;
    }
    return ColumnType::kCategorical;
  }

  // The type a few cells kept this column from (documented in catalog.h),
  // with those cells; nullptr if there is none.
  const Misfits* NearMiss(ColumnType decided, ColumnType* wanted) const {
    auto few = [&](const Misfits& m) {
      return m.count > 0 && m.count <= kFewCellsMax &&
             static_cast<double>(m.count) <= kFewCellsFraction * static_cast<double>(nonempty);
    };
    if (decided != ColumnType::kBool && few(not_bool)) {
      *wanted = ColumnType::kBool;
      return &not_bool;
    }
    if (decided != ColumnType::kNumeric && few(not_numeric)) {
      *wanted = ColumnType::kNumeric;
      return &not_numeric;
    }
    return nullptr;
  }
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Dictionary = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

int32_t Encode(Column& col, Dictionary& dict, std::string_view v) {
  auto it = dict.find(v);
  if (it != dict.end()) return it->second;
  const auto code = static_cast<int32_t>(col.dictionary.size());
  col.dictionary.emplace_back(v);
  dict.emplace(std::string(v), code);
  return code;
}

std::string ColumnList(const std::vector<std::string>& header) {
  std::string s;
  for (const auto& h : header) s += (s.empty() ? "" : ", ") + h;
  return s;
}

}  // namespace

const char* ColumnTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kCategorical:
      return "categorical";
    case ColumnType::kNumeric:
      return "numeric";
    case ColumnType::kBool:
      return "bool";
    case ColumnType::kList:
      return "list";
    case ColumnType::kText:
      return "text";
    case ColumnType::kSkip:
      return "skip";
  }
  return "unknown";
}

Result<ColumnType> ParseColumnType(std::string_view name) {
  for (ColumnType t : kAllTypes) {
    if (name == ColumnTypeName(t)) return t;
  }
  return Status::InvalidArgument("unknown column type '" + std::string(name) +
                                 "' (expected categorical, numeric, bool, list, text or skip)");
}

Result<Schema> Schema::Parse(std::string_view spec) {
  Schema schema;
  if (TrimBlanks(spec).empty()) return schema;
  int entry_no = 0;
  while (true) {
    ++entry_no;
    const size_t comma = spec.find(',');
    const std::string_view entry = TrimBlanks(spec.substr(0, comma));
    const std::string where =
        "schema entry " + std::to_string(entry_no) + " '" + std::string(entry) + "'";
    // The last ':' splits, so column names may themselves contain ':'.
    const size_t colon = entry.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument(where + ": expected column:type, e.g. price:numeric");
    }
    const std::string_view name = TrimBlanks(entry.substr(0, colon));
    const std::string_view type_name = TrimBlanks(entry.substr(colon + 1));
    if (name.empty()) return Status::InvalidArgument(where + ": expected a column name before ':'");
    auto type = ParseColumnType(type_name);
    if (!type.ok()) return type.status().WithContext(where);
    if (schema.Find(name) != nullptr) {
      return Status::InvalidArgument(where + ": column '" + std::string(name) + "' is named twice");
    }
    schema.overrides.emplace_back(std::string(name), *type);
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return schema;
}

const ColumnType* Schema::Find(std::string_view column) const {
  for (const auto& [name, type] : overrides) {
    if (name == column) return &type;
  }
  return nullptr;
}

const Column* Catalog::column(std::string_view name) const {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Column* Catalog::column(std::string_view name) {
  for (auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string Catalog::ValueString(const Column& c, int32_t i) const {
  const auto k = static_cast<size_t>(i);
  switch (c.type) {
    case ColumnType::kCategorical:
      return c.codes[k] < 0 ? "" : c.dictionary[static_cast<size_t>(c.codes[k])];
    case ColumnType::kNumeric: {
      const double v = c.numbers[k];
      if (std::isnan(v)) return "";
      char buf[32];
      const auto res = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round trip
      return std::string(buf, res.ptr);
    }
    case ColumnType::kBool:
      return c.bools[k] < 0 ? "" : (c.bools[k] ? "true" : "false");
    case ColumnType::kList: {
      std::string s;
      for (int64_t j = c.list_offsets[k]; j < c.list_offsets[k + 1]; ++j) {
        if (!s.empty()) s += ';';
        s += c.dictionary[static_cast<size_t>(c.list_codes[static_cast<size_t>(j)])];
      }
      return s;
    }
    case ColumnType::kText:
      return c.texts[k];
    case ColumnType::kSkip:
      return "";
  }
  return "";
}

Result<Catalog> Catalog::ReadCsv(const std::filesystem::path& path,
                                 const CatalogReadOptions& opts) {
  CsvOptions csv_opts;
  csv_opts.skip_bad_lines = opts.skip_bad_lines;
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> csv, CsvReader::Open(path, csv_opts));
  VITRINE_ASSIGN_OR_RETURN(const int id_col, csv->ColumnIndex(opts.id_column));
  const std::vector<std::string> header = csv->header();
  for (const auto& [name, type] : opts.schema.overrides) {
    const int c = csv->FindColumn(name);
    if (c < 0) {
      return Status::InvalidArgument(
          csv->name() + ": the schema names column '" + name +
          "', which is not in the header (columns: " + ColumnList(header) + ")");
    }
    if (c == id_col) {
      return Status::InvalidArgument(csv->name() + ": the schema names the id column '" + name +
                                     "'; ids are not typed");
    }
  }

  // Plan: which CSV column feeds which Column, and which need inference.
  struct Plan {
    int csv_col;
    ColumnType type;
    bool infer;
  };
  std::vector<Plan> plan;
  for (int c = 0; c < csv->num_columns(); ++c) {
    if (c == id_col) continue;
    const ColumnType* t = opts.schema.Find(header[static_cast<size_t>(c)]);
    if (t != nullptr && *t == ColumnType::kSkip) continue;
    plan.push_back({c, t != nullptr ? *t : ColumnType::kCategorical, t == nullptr});
  }

  // Pass 1: inference statistics, from a second reader over the same file.
  std::vector<std::string> cat_warnings;
  const bool infer = std::any_of(plan.begin(), plan.end(), [](const Plan& p) { return p.infer; });
  const int64_t file_mb = csv->file_bytes() >> 20;
  const int64_t total_mb = infer ? 2 * file_mb : file_mb;
  if (infer) {
    VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> scan, CsvReader::Open(path, csv_opts));
    std::vector<ColumnStats> stats(plan.size());
    while (scan->Next()) {
      if (opts.on_progress && (scan->records() & 0xFFFF) == 0) {
        opts.on_progress(scan->bytes_consumed() >> 20, total_mb);
      }
      for (size_t k = 0; k < plan.size(); ++k) {
        if (plan[k].infer) stats[k].Add(scan->field(plan[k].csv_col), scan->line());
      }
    }
    VITRINE_RETURN_IF_ERROR(scan->status());
    for (size_t k = 0; k < plan.size(); ++k) {
      if (!plan[k].infer) continue;
      plan[k].type = stats[k].Decide();
      ColumnType wanted;
      const Misfits* m = stats[k].NearMiss(plan[k].type, &wanted);
      if (m == nullptr) continue;
      const std::string& name = header[static_cast<size_t>(plan[k].csv_col)];
      const std::string col = std::to_string(plan[k].csv_col + 1);
      const std::string what = std::to_string(m->count) + " of " +
                               std::to_string(stats[k].nonempty) + " values " +
                               (m->count == 1 ? "is not " : "are not ") +
                               (wanted == ColumnType::kBool ? "true/false or yes/no" : "a number");
      std::string examples;
      for (const Misfit& e : m->examples) {
        examples += (examples.empty() ? "" : ", ") + std::string("line ") + std::to_string(e.line) +
                    " '" + e.value + "'";
      }
      const std::string fix = "; fix those cells, or name the type with --schema " + name + ":" +
                              ColumnTypeName(wanted) + " (rows it cannot read become errors) or " +
                              name + ":" + ColumnTypeName(plan[k].type) + " (keeps it as it is)";
      if (opts.strict) {
        return Status::InvalidArgument(
            csv->name() + ":" + std::to_string(m->examples.front().line) + ":" + col +
            ": column '" + name + "' would be " + ColumnTypeName(wanted) + " but " + what + " (" +
            examples + ")" + fix + " (--strict)");
      }
      cat_warnings.push_back(csv->name() + ": column '" + name + "' (column " + col +
                             ") inferred " + ColumnTypeName(plan[k].type) + " because " + what +
                             " (" + examples + ")" + fix + "; --strict makes this an error");
      LogInfo("warning: %s", cat_warnings.back().c_str());
    }
  }

  // Pass 2: typed values. A row is checked completely before any of it is
  // stored, so a skipped bad line leaves no trace.
  Catalog cat;
  cat.columns.resize(plan.size());
  std::vector<Dictionary> dicts(plan.size());
  for (size_t k = 0; k < plan.size(); ++k) {
    cat.columns[k].name = header[static_cast<size_t>(plan[k].csv_col)];
    cat.columns[k].type = plan[k].type;
    if (plan[k].type == ColumnType::kList) cat.columns[k].list_offsets.push_back(0);
  }
  std::vector<int64_t> id_lines;  // line of each item, for duplicate messages
  std::vector<double> numbers(plan.size());
  std::vector<int8_t> bools(plan.size());
  const std::string& id_name = opts.id_column;
  while (csv->Next()) {
    if (opts.on_progress && (csv->records() & 0xFFFF) == 0) {
      opts.on_progress((infer ? file_mb : 0) + (csv->bytes_consumed() >> 20), total_mb);
    }
    auto bad = [&](std::string msg) {
      if (!opts.skip_bad_lines) return Status::InvalidArgument(std::move(msg));
      csv->SkipBadLine(std::move(msg));
      return Status::OK();
    };
    const std::string_view id = csv->field(id_col);
    if (id.empty()) {
      VITRINE_RETURN_IF_ERROR(bad(csv->Where() + ":" + std::to_string(id_col + 1) + ": empty " +
                                  id_name + ", expected an id"));
      continue;
    }
    if (auto seen = cat.ids.Find(id)) {
      VITRINE_RETURN_IF_ERROR(bad(csv->Where() + ": duplicate " + id_name + " '" + std::string(id) +
                                  "' (first seen on line " +
                                  std::to_string(id_lines[static_cast<size_t>(*seen)]) + ")"));
      continue;
    }
    std::string error;
    for (size_t k = 0; k < plan.size() && error.empty(); ++k) {
      const std::string_view v = TrimBlanks(csv->field(plan[k].csv_col));
      const auto expected = [&](const char* what) {
        return csv->Where() + ":" + std::to_string(plan[k].csv_col + 1) + ": column '" +
               cat.columns[k].name + "' expects " + what + ", found '" + std::string(v) + "'";
      };
      if (plan[k].type == ColumnType::kNumeric) {
        numbers[k] = std::numeric_limits<double>::quiet_NaN();
        if (v.empty()) continue;
        if (const std::optional<double> x = ParseNumber(v)) {
          numbers[k] = *x;
        } else {
          error = expected("a number");
        }
      } else if (plan[k].type == ColumnType::kBool) {
        bools[k] = -1;
        if (v.empty()) continue;
        if (const std::optional<bool> b = ParseBool(v)) {
          bools[k] = *b ? 1 : 0;
        } else {
          error = expected("true/false, yes/no or 1/0");
        }
      }
    }
    if (!error.empty()) {
      VITRINE_RETURN_IF_ERROR(bad(std::move(error)));
      continue;
    }

    cat.ids.Add(id);
    id_lines.push_back(csv->line());
    for (size_t k = 0; k < plan.size(); ++k) {
      Column& col = cat.columns[k];
      const std::string_view raw = csv->field(plan[k].csv_col);
      switch (plan[k].type) {
        case ColumnType::kCategorical: {
          const std::string_view v = TrimBlanks(raw);
          col.codes.push_back(v.empty() ? -1 : Encode(col, dicts[k], v));
          break;
        }
        case ColumnType::kNumeric:
          col.numbers.push_back(numbers[k]);
          break;
        case ColumnType::kBool:
          col.bools.push_back(bools[k]);
          break;
        case ColumnType::kList: {
          const auto first = static_cast<size_t>(col.list_offsets.back());
          ForEachListElement(raw, [&](std::string_view e) {
            const int32_t code = Encode(col, dicts[k], e);
            if (std::find(col.list_codes.begin() + static_cast<std::ptrdiff_t>(first),
                          col.list_codes.end(), code) == col.list_codes.end()) {
              col.list_codes.push_back(code);
            }
          });
          col.list_offsets.push_back(static_cast<int64_t>(col.list_codes.size()));
          break;
        }
        case ColumnType::kText:
          col.texts.emplace_back(raw);
          break;
        case ColumnType::kSkip:
          break;
      }
    }
  }
  VITRINE_RETURN_IF_ERROR(csv->status());
  cat.skipped_lines = csv->bad_lines();
  cat.skipped_line_numbers = csv->bad_line_numbers();
  cat.skipped_summary = csv->BadLinesSummary();
  cat.warnings = std::move(cat_warnings);
  // Columns grew by doubling: give back the slack (up to half of each) now
  // that their sizes are final; a loaded bundle keeps the catalog.
  cat.ids.ShrinkToFit();
  for (Column& col : cat.columns) {
    col.dictionary.shrink_to_fit();
    col.codes.shrink_to_fit();
    col.numbers.shrink_to_fit();
    col.bools.shrink_to_fit();
    col.list_offsets.shrink_to_fit();
    col.list_codes.shrink_to_fit();
    col.texts.shrink_to_fit();
  }
  return cat;
}

}  // namespace vitrine
