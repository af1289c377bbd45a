// Catalog: the items table with typed attribute columns, in catalog order
// (row i is item index i of `ids`).
//
// Column types (docs/architecture.md, docs/values.md):
//   categorical  dictionary-encoded: codes[i] indexes `dictionary`, -1 = missing
//   numeric      numbers[i], NaN = missing
//   bool         bools[i] in {0, 1}, -1 = missing (ParseBool spellings:
//                true/false, yes/no, 1/0; core/value_parse.h)
//   list         values split on ';' or '|', each dictionary-encoded: item i owns
//                list_codes[list_offsets[i] .. list_offsets[i+1])
//   text         texts[i] verbatim
//   skip         ignored column (kept out of `columns`)
// Types are inferred from the values unless a schema names them
// (`--schema col:type,...`).
//
// Inference (a column the schema does not name; values trimmed of spaces and
// tabs; empty values ignored), first rule that holds wins:
//   1. no non-empty value                              -> categorical
//   2. every value is true/false/yes/no (any case)     -> bool
//      (0/1 columns are counts more often than flags: they infer numeric;
//      an explicit `col:bool` accepts 1/0 too)
//   3. every value is a ParseNumber number             -> numeric
//   4. the elements (split on ';' and '|') average <= 30 bytes, and
//      some value contains ';', or at least 10% of the values contain
//      '|' and the elements repeat (at most half as many distinct
//      elements as elements: genres, tags)            -> list
//   5. values average > 30 bytes, or at least half of
//      them contain a space and at least 80% of them
//      are distinct (titles, names)                    -> text
//   6. otherwise                                       -> categorical
// Near misses: a column that a few cells keep from being bool or numeric
// (rule 2 or 3 failing because of them) is read with the type the rules
// give, and ReadCsv adds a warning naming the column, the count and the
// first kNearMissExamples cells with their lines (also logged, LogInfo);
// under `strict` it is an error "items.csv:14:9: column 'price' would be
// numeric but 2 of 600 values are not a number (...)". "A few" is at least
// one, at most kFewCellsMax cells and at most kFewCellsFraction of the
// column's non-empty cells: 2 bad prices in 600 are a typo to fix, 100 in
// 600 or 60 in 60,000 a column that really is mixed. A column the schema
// names is never inferred, so --schema silences the warning either way.
// Missing (empty) values: categorical code -1, numeric NaN, bool -1, list
// empty, text "". Categorical, bool, numeric and list values are trimmed;
// list elements are trimmed, empty ones dropped, repeats within one item
// dropped; text and ids are kept verbatim. Dictionaries are in order of first
// appearance.
//
// Errors name the file, line and (1-based) column:
//   items.csv:12: duplicate item_id 'X' (first seen on line 3)
//   items.csv:12:4: column 'price' expects a number, found 'abc'
//   items.csv:12:2: invalid UTF-8 (byte 0xe9 at offset 3 of field 2), ...
// (text must be UTF-8; core/csv.h checks every record as it is read).
// Under skip_bad_lines such a line is counted and skipped (the first
// occurrence of a duplicate id is kept).
//
// A Catalog is a plain value: const access is thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/id_map.h"
#include "core/status.h"

namespace vitrine {

enum class ColumnType { kCategorical, kNumeric, kBool, kList, kText, kSkip };

// What makes an inferred type a near miss (see above).
inline constexpr int64_t kFewCellsMax = 50;
inline constexpr double kFewCellsFraction = 0.05;
inline constexpr int kNearMissExamples = 3;

// "categorical", "numeric", "bool", "list", "text", "skip".
const char* ColumnTypeName(ColumnType t);
// Inverse of ColumnTypeName (exact, lower case); InvalidArgument otherwise.
Result<ColumnType> ParseColumnType(std::string_view name);

struct Column {
  std::string name;
  ColumnType type = ColumnType::kCategorical;
  std::vector<std::string> dictionary;  // categorical and list values
  std::vector<int32_t> codes;           // categorical
  std::vector<double> numbers;          // numeric
  std::vector<int8_t> bools;            // bool
  std::vector<int64_t> list_offsets;    // list: size() + 1
  std::vector<int32_t> list_codes;      // list
  std::vector<std::string> texts;       // text
};

// Column name -> type overrides, parsed from "price:numeric,tags:list".
// Parse errors name the entry: "schema entry 2 'price:nums': unknown column
// type 'nums' (expected categorical, numeric, bool, list, text or skip)".
// Every named column must exist in the file, and the id column may not be
// named (ReadCsv reports either).
struct Schema {
  std::vector<std::pair<std::string, ColumnType>> overrides;
  static Result<Schema> Parse(std::string_view spec);
  const ColumnType* Find(std::string_view column) const;
};

struct CatalogReadOptions {
  std::string id_column = "item_id";
  Schema schema;
  bool skip_bad_lines = false;  // count and report bad lines instead of failing
  bool strict = false;          // a near-miss inferred type is an error, not a warning
  // Called every 64k lines with the megabytes read so far over both passes
  // (type inference, then parsing) and their total: progress for large files.
  std::function<void(int64_t done_mb, int64_t total_mb)> on_progress;
};

class Catalog {
 public:
  IdMap ids;
  std::vector<Column> columns;
  int64_t skipped_lines = 0;  // lines dropped under skip_bad_lines
  // Under skip_bad_lines: the first few skipped line numbers and a one-line
  // summary for the user (CsvReader::BadLinesSummary(); "" if none skipped).
  std::vector<int64_t> skipped_line_numbers;
  std::string skipped_summary;
  // Near-miss inferred types, one line each (see above); empty if none.
  std::vector<std::string> warnings;

  int32_t size() const { return ids.size(); }
  // nullptr if no such column.
  const Column* column(std::string_view name) const;
  Column* column(std::string_view name);
  // Value of column `c` for item `i` rendered as text ("" when missing).
  std::string ValueString(const Column& c, int32_t i) const;

  // Reads items.csv (header required; `id_column` must be present and unique).
  // Columns the schema does not type are inferred in a first pass over the
  // file (so the file is read twice unless every column is typed). Memory is
  // the catalog itself plus 8 bytes per inferred cell during inference.
  static Result<Catalog> ReadCsv(const std::filesystem::path& path,
                                 const CatalogReadOptions& opts = {});
};

}  // namespace vitrine
