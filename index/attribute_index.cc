#include "index/attribute_index.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <string>

#include "core/value_parse.h"

namespace vitrine {
namespace {

Result<double> NumberOrError(std::string_view column, std::string_view value) {
  const std::optional<double> v = ParseNumber(value);
  if (!v) {
    return Status::InvalidArgument("column '" + std::string(column) +
                                   "': expected a number, got '" + std::string(value) + "'");
  }
  return *v;
}

Result<int> BoolOrError(std::string_view column, std::string_view value) {
  const std::optional<bool> v = ParseBool(value);
  if (!v) {
    return Status::InvalidArgument("column '" + std::string(column) +
                                   "': expected true/false, 1/0 or yes/no, got '" +
                                   std::string(value) + "'");
  }
  return *v ? 1 : 0;
}

// Bitmaps built from ascending ids: addMany on a sorted run is much faster
// than one add() per id.
void AddSorted(Bitmap& b, const std::vector<uint32_t>& ids) {
  if (!ids.empty()) b.addMany(ids.size(), ids.data());
}

}  // namespace

Result<AttributeIndex> AttributeIndex::Build(const Catalog& catalog) {
  AttributeIndex index;
  const auto n = static_cast<uint32_t>(catalog.size());
  index.n_ = n;
  for (const Column& col : catalog.columns) {
    IndexedColumn ic;
    ic.type = col.type;
    std::vector<uint32_t> missing;
    auto wrong_size = [&](size_t got) {
      return Status::InvalidArgument("catalog column '" + col.name + "': expected " +
                                     std::to_string(n) + " values, found " + std::to_string(got));
    };
    switch (col.type) {
      case ColumnType::kCategorical:
      case ColumnType::kList: {
        const bool is_list = col.type == ColumnType::kList;
        if (is_list ? col.list_offsets.size() != size_t{n} + 1 : col.codes.size() != n) {
          return wrong_size(is_list ? col.list_offsets.size() - 1 : col.codes.size());
        }
        std::vector<std::vector<uint32_t>> ids(col.dictionary.size());
        for (uint32_t i = 0; i < n; ++i) {
          auto add = [&](int32_t code) -> Status {
            if (code < 0) return Status::OK();
            if (static_cast<size_t>(code) >= ids.size()) {
              return Status::InvalidArgument(
                  "catalog column '" + col.name + "' item " + std::to_string(i) + ": code " +
                  std::to_string(code) + " outside dictionary of " + std::to_string(ids.size()));
            }
            // A list may repeat a value; keep each id once (ids are ascending).
            if (ids[code].empty() || ids[code].back() != i) ids[code].push_back(i);
            return Status::OK();
          };
          if (is_list) {
            const int64_t b = col.list_offsets[i], e = col.list_offsets[i + 1];
            if (b == e) missing.push_back(i);
            for (int64_t j = b; j < e; ++j) VITRINE_RETURN_IF_ERROR(add(col.list_codes[j]));
          } else {
            if (col.codes[i] < 0) missing.push_back(i);
            VITRINE_RETURN_IF_ERROR(add(col.codes[i]));
          }
        }
        ic.by_code.resize(ids.size());
        for (size_t c = 0; c < ids.size(); ++c) {
          AddSorted(ic.by_code[c], ids[c]);
          ic.code_of.emplace(col.dictionary[c], static_cast<int32_t>(c));
        }
        break;
      }
      case ColumnType::kBool: {
        if (col.bools.size() != n) return wrong_size(col.bools.size());
        std::vector<uint32_t> ids[2];
        for (uint32_t i = 0; i < n; ++i) {
          if (col.bools[i] == 0 || col.bools[i] == 1) {
            ids[col.bools[i]].push_back(i);
          } else {
            missing.push_back(i);
          }
        }
        ic.by_code.resize(2);
        AddSorted(ic.by_code[0], ids[0]);
        AddSorted(ic.by_code[1], ids[1]);
        break;
      }
      case ColumnType::kNumeric: {
        if (col.numbers.size() != n) return wrong_size(col.numbers.size());
        std::vector<uint32_t> order;
        order.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
          if (std::isnan(col.numbers[i])) {
            missing.push_back(i);
          } else {
            order.push_back(i);
          }
        }
        std::stable_sort(order.begin(), order.end(),
                         [&](uint32_t a, uint32_t b) { return col.numbers[a] < col.numbers[b]; });
        ic.items = order;
        ic.values.reserve(order.size());
        for (uint32_t i : order) ic.values.push_back(col.numbers[i]);
        break;
      }
      case ColumnType::kText:
      case ColumnType::kSkip:
        break;
    }
    AddSorted(ic.missing, missing);
    index.columns_.emplace_back(col.name, std::move(ic));
  }
  return index;
}

Bitmap AttributeIndex::All() const {
  Bitmap b;
  b.addRange(0, n_);
  return b;
}

Bitmap AttributeIndex::Not(const Bitmap& b) const {
  return All() - b;  // not flip(): ids >= n in `b` must not come back
}

Result<const AttributeIndex::IndexedColumn*> AttributeIndex::Find(std::string_view column) const {
  for (const auto& [name, ic] : columns_) {
    if (name == column) {
      if (ic.type == ColumnType::kText || ic.type == ColumnType::kSkip) {
        return Status::Unsupported("column '" + name + "' is " + ColumnTypeName(ic.type) +
                                   "; filters need a categorical, list, bool or numeric column");
      }
      return &ic;
    }
  }
  return Status::NotFound("no attribute column '" + std::string(column) + "'");
}

Result<Bitmap> AttributeIndex::Equals(std::string_view column, std::string_view value) const {
  VITRINE_ASSIGN_OR_RETURN(const IndexedColumn* ic, Find(column));
  switch (ic->type) {
    case ColumnType::kCategorical:
    case ColumnType::kList: {
      auto it = ic->code_of.find(std::string(value));
      return it == ic->code_of.end() ? Bitmap() : ic->by_code[it->second];
    }
    case ColumnType::kBool: {
      VITRINE_ASSIGN_OR_RETURN(int v, BoolOrError(column, value));
      return ic->by_code[v];
    }
    case ColumnType::kNumeric: {
      VITRINE_ASSIGN_OR_RETURN(double v, NumberOrError(column, value));
      return Range(column, v, v);
    }
    default:
      return Status::Internal("unreachable column type");
  }
}

Result<Bitmap> AttributeIndex::In(std::string_view column,
                                  std::span<const std::string> values) const {
  Bitmap out;
  for (const std::string& v : values) {
    VITRINE_ASSIGN_OR_RETURN(Bitmap b, Equals(column, v));
    out |= b;
  }
  return out;
}

Result<Bitmap> AttributeIndex::Range(std::string_view column, double lo, double hi) const {
  VITRINE_ASSIGN_OR_RETURN(const IndexedColumn* ic, Find(column));
  if (ic->type != ColumnType::kNumeric) {
    return Status::InvalidArgument("column '" + std::string(column) + "' is " +
                                   ColumnTypeName(ic->type) + "; a range needs a numeric column");
  }
  if (std::isnan(lo) || std::isnan(hi) || lo > hi) {
    return Status::InvalidArgument("column '" + std::string(column) + "': bad range [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  const auto b = std::lower_bound(ic->values.begin(), ic->values.end(), lo);
  const auto e = std::upper_bound(b, ic->values.end(), hi);
  std::vector<uint32_t> ids(ic->items.begin() + (b - ic->values.begin()),
                            ic->items.begin() + (e - ic->values.begin()));
  std::sort(ids.begin(), ids.end());
  Bitmap out;
  AddSorted(out, ids);
  return out;
}

Result<Bitmap> AttributeIndex::Missing(std::string_view column) const {
  VITRINE_ASSIGN_OR_RETURN(const IndexedColumn* ic, Find(column));
  return ic->missing;
}

size_t AttributeIndex::MemoryBytes() const {
  size_t bytes = 0;
  for (const auto& [name, ic] : columns_) {
    for (const Bitmap& b : ic.by_code) bytes += b.getSizeInBytes();
    bytes += ic.missing.getSizeInBytes();
    bytes += ic.values.size() * sizeof(double) + ic.items.size() * sizeof(uint32_t);
  }
  return bytes;
}

}  // namespace vitrine
