// AttributeIndex: catalog attribute values -> bitmaps of item indices, so a
// filter ("brand = acme AND price in [10, 50] AND NOT discontinued") compiles
// to one bitmap of allowed items that VectorIndex::Search consumes
// (docs/architecture.md).
//
// Layout per column type (core/catalog.h):
//   categorical, list  one bitmap per dictionary code (list: items that
//                      contain the value)
//   bool               two bitmaps (false, true)
//   numeric            (value, item) pairs sorted by value; NaN = missing is
//                      left out, so no range ever matches a missing value
//   text               not indexed (equality on free text is not a filter)
// A missing value never matches Equals / In / Range; NOT of a filter does
// include items whose value is missing (NOT is the complement in [0, n)).
//
// Bitmaps are CRoaring bitmaps of uint32 item indices (catalog order).
// Combine results with Roaring's operators: a & b (AND), a | b (OR), and
// index.Not(a) (complement within All()).
//
// Thread safety: built once, then every method is const and safe to call from
// many threads. The index copies what it needs; the Catalog may be dropped.
#pragma once

#include <cstdint>
#include <roaring/roaring.hh>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/catalog.h"
#include "core/status.h"

namespace vitrine {

// A set of item indices in [0, n). Debian's CRoaring puts the class in the
// global namespace.
using Bitmap = ::Roaring;

class AttributeIndex {
 public:
  AttributeIndex() = default;

  // Indexes every categorical, list, bool and numeric column of `catalog`.
  static Result<AttributeIndex> Build(const Catalog& catalog);

  // Number of items (the universe is [0, size())).
  uint32_t size() const { return n_; }

  // [0, size()).
  Bitmap All() const;
  // All() minus `b`.
  Bitmap Not(const Bitmap& b) const;

  // Items whose value in `column` equals `value`.
  //   categorical: exact dictionary value; an unknown value matches nothing.
  //   list: items whose list contains `value`.
  //   bool: a ParseBool spelling (true/false, yes/no, 1/0, any case).
  //   numeric: a ParseNumber number (finite; not "inf"); same as
  //   Range(column, v, v).
  // (Spellings: core/value_parse.h, docs/values.md.)
  // Errors: unknown column (NotFound), text column (Unsupported), a bool or
  // numeric value that does not parse (InvalidArgument). Messages name the
  // column and value.
  Result<Bitmap> Equals(std::string_view column, std::string_view value) const;

  // Union of Equals(column, v) over `values`.
  Result<Bitmap> In(std::string_view column, std::span<const std::string> values) const;

  // Items of numeric `column` with lo <= value <= hi (inclusive; use
  // +-infinity for open ends). Errors: unknown or non-numeric column, lo > hi
  // or NaN bounds.
  Result<Bitmap> Range(std::string_view column, double lo, double hi) const;

  // Items whose value in `column` is missing (any indexed type).
  Result<Bitmap> Missing(std::string_view column) const;

  // Approximate heap bytes used by the bitmaps and sorted arrays.
  size_t MemoryBytes() const;

 private:
  struct IndexedColumn {
    ColumnType type = ColumnType::kCategorical;
    std::unordered_map<std::string, int32_t> code_of;  // categorical, list
    std::vector<Bitmap> by_code;  // categorical/list: per code; bool: [false, true]
    std::vector<double> values;   // numeric, sorted ascending
    std::vector<uint32_t> items;  // numeric, parallel to `values`
    Bitmap missing;
  };

  Result<const IndexedColumn*> Find(std::string_view column) const;

  uint32_t n_ = 0;
  std::vector<std::pair<std::string, IndexedColumn>> columns_;
};

}  // namespace vitrine
