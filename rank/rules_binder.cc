// The rules binder: column names -> catalog columns, type checks, pinned
// ids, CAP groups (see rules_binder.h).
#include "rank/rules_binder.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string_view>

namespace vitrine::rules_internal {
namespace {

// Value families that may be compared with each other.
int Family(ColumnType t) {
  switch (t) {
    case ColumnType::kNumeric:
      return 1;
    case ColumnType::kBool:
      return 2;
    default:
      return 0;  // categorical, list, text: strings
  }
}

std::string ColumnList(const Catalog& catalog) {
  std::string s;
  for (const Column& c : catalog.columns) {
    if (!s.empty()) s += ", ";
    s += c.name;
  }
  return s.empty() ? "none" : s;
}

const Column* FindColumn(const Catalog& catalog, std::string_view name) {
  for (const Column& c : catalog.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

CapGroups BuildCapGroups(const Column& c, int32_t n) {
  CapGroups g;
  g.offsets.reserve(static_cast<size_t>(n) + 1);
  g.offsets.push_back(0);
  std::unordered_map<std::string, int64_t> text_ids;
  for (int32_t i = 0; i < n; ++i) {
    switch (c.type) {
      case ColumnType::kCategorical:
        if (c.codes[i] >= 0) g.groups.push_back(c.codes[i]);
        break;
      case ColumnType::kList: {
        const size_t b = g.groups.size();
        for (int64_t j = c.list_offsets[i]; j < c.list_offsets[i + 1]; ++j) {
          const int64_t code = c.list_codes[j];
          // A value repeated in one item's list counts once.
          if (code >= 0 &&
              std::find(g.groups.begin() + b, g.groups.end(), code) == g.groups.end()) {
            g.groups.push_back(code);
          }
        }
        break;
      }
      case ColumnType::kNumeric:
        if (!std::isnan(c.numbers[i])) {
          g.groups.push_back(std::bit_cast<int64_t>(c.numbers[i] + 0.0));  // -0 -> +0
        }
        break;
      case ColumnType::kBool:
        if (c.bools[i] >= 0) g.groups.push_back(c.bools[i]);
        break;
      case ColumnType::kText:
        if (!c.texts[i].empty()) {
          g.groups.push_back(
              text_ids.emplace(c.texts[i], static_cast<int64_t>(text_ids.size())).first->second);
        }
        break;
      case ColumnType::kSkip:
        break;
    }
    g.offsets.push_back(static_cast<int64_t>(g.groups.size()));
  }
  return g;
}

// Checks that a column has as many values as the catalog has items, so per
// item lookups never run off the end.
bool ColumnSizeOk(const Column& c, int32_t n) {
  const size_t un = static_cast<size_t>(n);
  switch (c.type) {
    case ColumnType::kCategorical:
      return c.codes.size() == un;
    case ColumnType::kNumeric:
      return c.numbers.size() == un;
    case ColumnType::kBool:
      return c.bools.size() == un;
    case ColumnType::kList:
      return c.list_offsets.size() == un + 1 &&
             static_cast<size_t>(c.list_offsets.back()) <= c.list_codes.size();
    case ColumnType::kText:
      return c.texts.size() == un;
    case ColumnType::kSkip:
      return true;
  }
  return false;
}

class Binder {
 public:
  Binder(const Catalog& catalog, RuleSet::Impl* b) : catalog_(catalog), b_(*b) {}

  Status Run() {
    b_.n = catalog_.size();
    b_.columns.clear();
    b_.cap_groups.clear();
    for (Rule& r : b_.rules) {
      // The predicate's comparisons in source order (WHEN conditions test
      // the request context, not columns: nothing to bind).
      for (int id = r.where_begin; r.where >= 0 && id <= r.where; ++id) {
        if (b_.nodes[id].kind == Node::Kind::kCompare) {
          VITRINE_RETURN_IF_ERROR(BindComparison(b_.nodes[id]));
        }
      }
      if (r.kind == Rule::Kind::kPin) {
        auto item = catalog_.ids.Find(r.pin_id);
        if (!item) return b_.Error(r.line, r.pin_id_col, "unknown item id '" + r.pin_id + "'");
        r.pin_item = *item;
      } else if (r.kind == Rule::Kind::kCap) {
        VITRINE_ASSIGN_OR_RETURN(int c, UseColumn(r.cap_column_name, r.line, r.cap_col, ""));
        r.cap_groups = static_cast<int>(b_.cap_groups.size());
        b_.cap_groups.push_back(BuildCapGroups(b_.columns[c].data, b_.n));
      }
    }
    return Status::OK();
  }

 private:
  // Index into b_.columns of catalog column `name`, copied on first use.
  Result<int> UseColumn(const std::string& name, int line, int col, const std::string& what) {
    for (size_t i = 0; i < b_.columns.size(); ++i) {
      if (b_.columns[i].data.name == name) return static_cast<int>(i);
    }
    const Column* c = FindColumn(catalog_, name);
    if (c == nullptr) {
      return b_.Error(
          line, col,
          "unknown column '" + name + "'" + what + " (columns: " + ColumnList(catalog_) + ")");
    }
    if (!ColumnSizeOk(*c, b_.n)) {
      return b_.Error(line, col, "catalog column '" + name + "' does not have one value per item");
    }
    BoundColumn bc;
    bc.data = *c;
    for (size_t k = 0; k < c->dictionary.size(); ++k) {
      bc.code_of.emplace(c->dictionary[k], static_cast<int32_t>(k));
    }
    b_.columns.push_back(std::move(bc));
    return static_cast<int>(b_.columns.size()) - 1;
  }

  // Resolves the column of comparison `n` and checks its operator and values.
  Status BindComparison(Node& n) {
    VITRINE_ASSIGN_OR_RETURN(n.column, UseColumn(n.attr, n.line, n.attr_col, ""));
    const ColumnType type = b_.columns[n.column].data.type;
    const std::string tname = ColumnTypeName(type);
    const bool ordered =
        n.op != Op::kEq && n.op != Op::kNe && n.op != Op::kIn && n.op != Op::kNotIn;
    if (ordered && type != ColumnType::kNumeric) {
      return b_.Error(n.line, n.op_col,
                      "'" + n.op_text + "' needs a numeric column; '" + n.attr + "' is " + tname);
    }
    const std::string expected = type == ColumnType::kNumeric ? "a number"
                                 : type == ColumnType::kBool  ? "true or false"
                                                              : "a string";
    for (Value& v : n.values) {
      const bool bad = (v.kind == Value::Kind::kString && Family(type) != 0) ||
                       (v.kind == Value::Kind::kNumber && type == ColumnType::kBool) ||
                       (v.kind == Value::Kind::kBool && type != ColumnType::kBool);
      if (bad) {
        return b_.Error(n.line, v.col,
                        "column '" + n.attr + "' is " + tname + ", expected " + expected);
      }
      if (v.kind == Value::Kind::kCurrentItem) {
        VITRINE_ASSIGN_OR_RETURN(v.column,
                                 UseColumn(v.text, n.line, v.col, " in CurrentItem." + v.text));
        const ColumnType ct = b_.columns[v.column].data.type;
        if (Family(ct) != Family(type) || (ordered && ct != ColumnType::kNumeric)) {
          return b_.Error(n.line, v.col,
                          "column '" + n.attr + "' is " + tname + " but CurrentItem." + v.text +
                              " is " + ColumnTypeName(ct));
        }
      }
    }
    return Status::OK();
  }

  const Catalog& catalog_;
  RuleSet::Impl& b_;
};

}  // namespace

Status BindToCatalog(const Catalog& catalog, RuleSet::Impl* b) { return Binder(catalog, b).Run(); }

}  // namespace vitrine::rules_internal
