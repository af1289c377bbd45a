// Catalog: the items table with typed attribute columns, in catalog order
// (row i is item index i of `ids`).
//
// Column types (DESIGN.md "Formats"):
//   categorical  dictionary-encoded: codes[i] indexes `dictionary`, -1 = missing
//   numeric      numbers[i], NaN = missing
//   bool         bools[i] in {0, 1}, -1 = missing (true/false, 1/0, yes/no)
//   list         values split on ';', each dictionary-encoded: item i owns
//                list_codes[list_offsets[i] .. list_offsets[i+1])
//   text         texts[i] verbatim
//   skip         ignored column (kept out of `columns`)
// Types are inferred from the values unless a schema names them
// (`--schema col:type,...`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/id_map.h"
#include "core/status.h"

namespace vitrine {

enum class ColumnType { kCategorical, kNumeric, kBool, kList, kText, kSkip };

const char* ColumnTypeName(ColumnType t);
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
struct Schema {
  std::vector<std::pair<std::string, ColumnType>> overrides;
  static Result<Schema> Parse(std::string_view spec);
  const ColumnType* Find(std::string_view column) const;
};

struct CatalogReadOptions {
  std::string id_column = "item_id";
  Schema schema;
  bool skip_bad_lines = false;  // count and report bad lines instead of failing
};

class Catalog {
 public:
  IdMap ids;
  std::vector<Column> columns;
  int64_t skipped_lines = 0;  // lines dropped under skip_bad_lines

  int32_t size() const { return ids.size(); }
  // nullptr if no such column.
  const Column* column(std::string_view name) const;
  Column* column(std::string_view name);
  // Value of column `c` for item `i` rendered as text ("" when missing).
  std::string ValueString(const Column& c, int32_t i) const;

  // Reads items.csv (header required; `id_column` must be present and unique).
  static Result<Catalog> ReadCsv(const std::filesystem::path& path,
                                 const CatalogReadOptions& opts = {});
};

}  // namespace vitrine
