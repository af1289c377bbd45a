// The rules evaluators: per-request resolution, predicates as bitmaps and
// per item (see rules_eval.h).
#include "rank/rules_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "core/value_parse.h"

namespace vitrine::rules_internal {
namespace {

// Raw text(s) of a $param or context value; nullopt when a context key is
// absent. Inside IN, a parameter holds comma-separated values.
Result<std::optional<std::vector<std::string>>> RawValues(const RuleSet::Impl& impl, const Node& n,
                                                          const Value& v,
                                                          const RequestContext& ctx) {
  std::string raw;
  if (v.kind == Value::Kind::kParam) {
    auto it = ctx.params.find(v.text);
    if (it == ctx.params.end()) {
      return impl.Error(n.line, v.col,
                        "no value for parameter $" + v.text + " (pass --param " + v.text + "=...)");
    }
    raw = it->second;
    if (n.op == Op::kIn || n.op == Op::kNotIn) {
      std::vector<std::string> parts;
      size_t b = 0;
      while (true) {
        size_t e = raw.find(',', b);
        std::string part = raw.substr(b, e == std::string::npos ? std::string::npos : e - b);
        while (!part.empty() && part.front() == ' ') part.erase(part.begin());
        while (!part.empty() && part.back() == ' ') part.pop_back();
        parts.push_back(part);
        if (e == std::string::npos) break;
        b = e + 1;
      }
      return std::optional<std::vector<std::string>>(parts);
    }
  } else {  // kContext
    auto it = ctx.context.find(v.text);
    if (it == ctx.context.end()) return std::optional<std::vector<std::string>>();
    raw = it->second;
  }
  return std::optional<std::vector<std::string>>(std::vector<std::string>{raw});
}

std::string ValueName(const Value& v) {
  return v.kind == Value::Kind::kParam ? "$" + v.text : "context." + v.text;
}

// Resolves value `v` of item comparison `n` for request `ctx`.
Result<Operand> ResolveItemValue(const RuleSet::Impl& impl, const Node& n, const Value& v,
                                 const RequestContext& ctx) {
  const BoundColumn& col = impl.columns[n.column];
  const ColumnType type = col.data.type;
  Operand o;
  switch (v.kind) {
    case Value::Kind::kString:
      o.strs.push_back(v.text);
      break;
    case Value::Kind::kNumber:
      if (type == ColumnType::kNumeric) {
        o.nums.push_back(v.number);
      } else {
        o.strs.push_back(v.text);
      }
      break;
    case Value::Kind::kBool:
      o.nums.push_back(v.boolean ? 1 : 0);
      break;
    case Value::Kind::kParam:
    case Value::Kind::kContext: {
      VITRINE_ASSIGN_OR_RETURN(auto raw, RawValues(impl, n, v, ctx));
      if (!raw) {
        o.absent = true;
        break;
      }
      for (const std::string& s : *raw) {
        if (type == ColumnType::kNumeric) {
          const std::optional<double> x = ParseNumber(s);
          if (!x) {
            return impl.Error(n.line, v.col,
                              ValueName(v) + ": column '" + col.data.name +
                                  "' is numeric, expected a number, got '" + s + "'");
          }
          o.nums.push_back(*x);
        } else if (type == ColumnType::kBool) {
          const std::optional<bool> b = ParseBool(s);
          if (!b) {
            return impl.Error(n.line, v.col,
                              ValueName(v) + ": column '" + col.data.name +
                                  "' is bool, expected true or false, got '" + s + "'");
          }
          o.nums.push_back(*b ? 1 : 0);
        } else {
          o.strs.push_back(s);
        }
      }
      break;
    }
    case Value::Kind::kCurrentItem: {
      const Column& c = impl.columns[v.column].data;
      const int32_t i = *ctx.current_item;
      switch (c.type) {
        case ColumnType::kCategorical:
          if (c.codes[i] >= 0) o.strs.push_back(c.dictionary[c.codes[i]]);
          break;
        case ColumnType::kList:
          for (int64_t j = c.list_offsets[i]; j < c.list_offsets[i + 1]; ++j) {
            if (c.list_codes[j] >= 0) o.strs.push_back(c.dictionary[c.list_codes[j]]);
          }
          break;
        case ColumnType::kText:
          if (!c.texts[i].empty()) o.strs.push_back(c.texts[i]);
          break;
        case ColumnType::kNumeric:
          if (!std::isnan(c.numbers[i])) o.nums.push_back(c.numbers[i]);
          break;
        case ColumnType::kBool:
          if (c.bools[i] >= 0) o.nums.push_back(c.bools[i]);
          break;
        case ColumnType::kSkip:
          break;
      }
      o.absent = o.strs.empty() && o.nums.empty();
      break;
    }
  }
  if (type == ColumnType::kCategorical || type == ColumnType::kList) {
    for (const std::string& s : o.strs) {
      auto it = col.code_of.find(s);
      if (it != col.code_of.end()) o.codes.push_back(it->second);
    }
  }
  return o;
}

// Evaluates a WHEN condition node against the request context.
Result<bool> EvalWhen(const RuleSet::Impl& impl, int id, const RequestContext& ctx) {
  const Node& n = impl.nodes[id];
  switch (n.kind) {
    case Node::Kind::kAnd:
    case Node::Kind::kOr: {
      const bool is_or = n.kind == Node::Kind::kOr;
      for (int kid : n.kids) {  // short-circuit, left to right
        VITRINE_ASSIGN_OR_RETURN(bool a, EvalWhen(impl, kid, ctx));
        if (a == is_or) return is_or;
      }
      return !is_or;
    }
    case Node::Kind::kNot: {
      VITRINE_ASSIGN_OR_RETURN(bool a, EvalWhen(impl, n.kids[0], ctx));
      return !a;
    }
    case Node::Kind::kCompare:
      break;
  }
  const bool negated = n.op == Op::kNe || n.op == Op::kNotIn || n.op == Op::kNotBetween;
  auto lhs_it = ctx.context.find(n.attr);
  if (lhs_it == ctx.context.end()) return negated;  // absent: positive tests fail
  const std::string& lhs = lhs_it->second;
  const std::optional<double> lhs_num = ParseNumber(lhs);
  // Each value as (text, number-if-numeric-literal-or-parsable, is number literal, bool literal).
  struct V {
    std::string text;
    std::optional<double> num;
    bool numeric_literal = false;
    bool bool_literal = false;
    bool b = false;
    bool absent = false;  // a context key that is not set matches nothing
  };
  std::vector<V> vals;
  for (const Value& v : n.values) {
    if (v.kind == Value::Kind::kParam || v.kind == Value::Kind::kContext) {
      VITRINE_ASSIGN_OR_RETURN(auto raw, RawValues(impl, n, v, ctx));
      if (!raw) {
        vals.push_back(V{});
        vals.back().absent = true;
        continue;
      }
      for (const std::string& s : *raw) vals.push_back(V{s, ParseNumber(s)});
    } else {
      V x{v.text, std::nullopt};
      if (v.kind == Value::Kind::kNumber) {
        x.num = v.number;
        x.numeric_literal = true;
      }
      if (v.kind == Value::Kind::kBool) {
        x.bool_literal = true;
        x.b = v.boolean;
      }
      vals.push_back(x);
    }
  }
  auto equals = [&](const V& v) {
    if (v.absent) return false;
    if (v.numeric_literal) return lhs_num && *lhs_num == *v.num;
    if (v.bool_literal) {
      const std::optional<bool> b = ParseBool(lhs);
      return b && *b == v.b;
    }
    return lhs == v.text;
  };
  bool result = false;
  switch (n.op) {
    case Op::kEq:
    case Op::kNe:
    case Op::kIn:
    case Op::kNotIn:
      for (const V& v : vals) result = result || equals(v);
      break;
    case Op::kBetween:
    case Op::kNotBetween:
      result = lhs_num && vals[0].num && vals[1].num && *vals[0].num <= *lhs_num &&
               *lhs_num <= *vals[1].num;
      break;
    default: {
      if (!lhs_num || !vals[0].num) {
        result = false;
        break;
      }
      const double x = *lhs_num, y = *vals[0].num;
      result = n.op == Op::kLt   ? x < y
               : n.op == Op::kLe ? x <= y
               : n.op == Op::kGt ? x > y
                                 : x >= y;
    }
  }
  return negated ? !result : result;
}

// Resolves the operands of every comparison of rule `r`'s WHERE.
Status ResolveOperands(const RuleSet::Impl& impl, const Rule& r, const RequestContext& ctx,
                       State* s) {
  for (int id = r.where_begin; id <= r.where; ++id) {
    const Node& n = impl.nodes[id];
    if (n.kind != Node::Kind::kCompare) continue;
    auto& ops = s->operands[id];
    ops.clear();
    for (const Value& v : n.values) {
      VITRINE_ASSIGN_OR_RETURN(Operand o, ResolveItemValue(impl, n, v, ctx));
      ops.push_back(std::move(o));
    }
  }
  return Status::OK();
}

// Does item `i`'s value equal any of the operands?
bool EqMatch(const BoundColumn& col, int32_t i, const std::vector<Operand>& ops) {
  const Column& c = col.data;
  auto has_code = [&](int32_t code) {
    for (const Operand& o : ops) {
      if (std::find(o.codes.begin(), o.codes.end(), code) != o.codes.end()) return true;
    }
    return false;
  };
  auto has_num = [&](double x) {
    for (const Operand& o : ops) {
      if (std::find(o.nums.begin(), o.nums.end(), x) != o.nums.end()) return true;
    }
    return false;
  };
  switch (c.type) {
    case ColumnType::kCategorical:
      return c.codes[i] >= 0 && has_code(c.codes[i]);
    case ColumnType::kList:
      for (int64_t j = c.list_offsets[i]; j < c.list_offsets[i + 1]; ++j) {
        if (c.list_codes[j] >= 0 && has_code(c.list_codes[j])) return true;
      }
      return false;
    case ColumnType::kNumeric:
      return !std::isnan(c.numbers[i]) && has_num(c.numbers[i]);
    case ColumnType::kBool:
      return c.bools[i] >= 0 && has_num(c.bools[i]);
    case ColumnType::kText:
      for (const Operand& o : ops) {
        if (std::find(o.strs.begin(), o.strs.end(), c.texts[i]) != o.strs.end()) return true;
      }
      return false;
    case ColumnType::kSkip:
      return false;
  }
  return false;
}

// [lo, hi] bounds of a range comparison; nullopt when it can match nothing.
std::optional<std::pair<double, double>> RangeOf(const Node& n, const std::vector<Operand>& ops) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (const Operand& o : ops) {
    if (o.nums.empty()) return std::nullopt;
  }
  const double v = ops[0].nums[0];
  switch (n.op) {
    case Op::kLt:
      return std::make_pair(-kInf, std::nextafter(v, -kInf));
    case Op::kLe:
      return std::make_pair(-kInf, v);
    case Op::kGt:
      return std::make_pair(std::nextafter(v, kInf), kInf);
    case Op::kGe:
      return std::make_pair(v, kInf);
    default: {  // BETWEEN
      const double hi = ops[1].nums[0];
      if (v > hi) return std::nullopt;
      return std::make_pair(v, hi);
    }
  }
}

bool CompareMatch(const RuleSet::Impl& impl, const Node& n, const std::vector<Operand>& ops,
                  int32_t i) {
  const BoundColumn& col = impl.columns[n.column];
  switch (n.op) {
    case Op::kEq:
    case Op::kIn:
      return EqMatch(col, i, ops);
    case Op::kNe:
    case Op::kNotIn:
      return !EqMatch(col, i, ops);
    case Op::kNotBetween: {
      auto r = RangeOf(n, ops);
      const double x = col.data.numbers[i];
      return !(r && !std::isnan(x) && r->first <= x && x <= r->second);
    }
    default: {
      auto r = RangeOf(n, ops);
      const double x = col.data.numbers[i];
      return r && !std::isnan(x) && r->first <= x && x <= r->second;
    }
  }
}

// Comparison node `n` (id `id`) as a bitmap of items.
Result<Bitmap> CompareBitmap(const State& s, const Node& n, int id, const AttributeIndex& index) {
  const RuleSet::Impl& impl = *s.impl;
  const BoundColumn& col = impl.columns[n.column];
  const std::vector<Operand>& ops = s.operands[id];
  const std::string& name = col.data.name;
  if (col.data.type == ColumnType::kText) {
    // Text is not indexed (AttributeIndex): scan the copied column.
    Bitmap out;
    for (int32_t i = 0; i < impl.n; ++i) {
      if (CompareMatch(impl, n, ops, i)) out.add(static_cast<uint32_t>(i));
    }
    return out;
  }
  auto eq = [&]() -> Result<Bitmap> {
    Bitmap out;
    for (const Operand& o : ops) {
      if (col.data.type == ColumnType::kCategorical || col.data.type == ColumnType::kList) {
        for (int32_t code : o.codes) {
          VITRINE_ASSIGN_OR_RETURN(Bitmap b, index.Equals(name, col.data.dictionary[code]));
          out |= b;
        }
      } else {
        for (double x : o.nums) {
          VITRINE_ASSIGN_OR_RETURN(Bitmap b, col.data.type == ColumnType::kBool
                                                 ? index.Equals(name, x != 0 ? "true" : "false")
                                                 : index.Range(name, x, x));
          out |= b;
        }
      }
    }
    return out;
  };
  auto range = [&]() -> Result<Bitmap> {
    auto r = RangeOf(n, ops);
    if (!r) return Bitmap();
    return index.Range(name, r->first, r->second);
  };
  switch (n.op) {
    case Op::kEq:
    case Op::kIn:
      return eq();
    case Op::kNe:
    case Op::kNotIn: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, eq());
      return index.Not(b);
    }
    case Op::kNotBetween: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, range());
      return index.Not(b);
    }
    default:
      return range();
  }
}

// Predicate node `id` as a bitmap of items.
Result<Bitmap> NodeBitmap(const State& s, int id, const AttributeIndex& index) {
  const Node& n = s.impl->nodes[id];
  switch (n.kind) {
    case Node::Kind::kAnd: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap out, NodeBitmap(s, n.kids[0], index));
      for (size_t k = 1; k < n.kids.size() && !out.isEmpty(); ++k) {
        VITRINE_ASSIGN_OR_RETURN(Bitmap b, NodeBitmap(s, n.kids[k], index));
        out &= b;
      }
      return out;
    }
    case Node::Kind::kOr: {
      Bitmap out;
      for (int kid : n.kids) {
        VITRINE_ASSIGN_OR_RETURN(Bitmap b, NodeBitmap(s, kid, index));
        out |= b;
      }
      return out;
    }
    case Node::Kind::kNot: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap a, NodeBitmap(s, n.kids[0], index));
      return index.Not(a);
    }
    case Node::Kind::kCompare:
      break;
  }
  return CompareBitmap(s, n, id, index);
}

}  // namespace

bool NodeMatch(const State& s, int id, int32_t i) {
  const Node& n = s.impl->nodes[id];
  switch (n.kind) {
    case Node::Kind::kAnd:
      for (int kid : n.kids) {
        if (!NodeMatch(s, kid, i)) return false;
      }
      return true;
    case Node::Kind::kOr:
      for (int kid : n.kids) {
        if (NodeMatch(s, kid, i)) return true;
      }
      return false;
    case Node::Kind::kNot:
      return !NodeMatch(s, n.kids[0], i);
    case Node::Kind::kCompare:
      return CompareMatch(*s.impl, n, s.operands[id], i);
  }
  return false;
}

Status CheckCurrentItem(const RuleSet::Impl& impl, const RequestContext& ctx) {
  if (impl.bound && ctx.current_item && (*ctx.current_item < 0 || *ctx.current_item >= impl.n)) {
    return Status::InvalidArgument("current item index " + std::to_string(*ctx.current_item) +
                                   " outside the catalog of " + std::to_string(impl.n) + " items");
  }
  return Status::OK();
}

Result<State> Resolve(const RuleSet::Impl& impl, const RequestContext& ctx, bool static_only,
                      bool per_item) {
  // An empty rule set needs no catalog; any other must be bound first.
  if (!impl.bound && !impl.rules.empty()) return Status::Internal("RuleSet used before Bind()");
  VITRINE_RETURN_IF_ERROR(CheckCurrentItem(impl, ctx));
  State s;
  s.impl = &impl;
  s.active.assign(impl.rules.size(), 0);
  s.operands.resize(impl.nodes.size());
  for (size_t r = 0; r < impl.rules.size(); ++r) {
    const Rule& rule = impl.rules[r];
    if (static_only && (rule.dynamic || !rule.IsFilter())) continue;
    if (rule.uses_current_item && !ctx.current_item) continue;
    if (rule.when >= 0) {
      VITRINE_ASSIGN_OR_RETURN(bool on, EvalWhen(impl, rule.when, ctx));
      if (!on) continue;
    }
    const bool precomputed = r < impl.matches.size() && !impl.matches[r].empty();
    if (rule.where >= 0 && !(per_item && precomputed)) {
      VITRINE_RETURN_IF_ERROR(ResolveOperands(impl, rule, ctx, &s));
    }
    s.active[r] = 1;
    if (rule.IsFilter()) s.filters.push_back(static_cast<uint32_t>(r));
    if (rule.kind == Rule::Kind::kBoost || rule.kind == Rule::Kind::kBury) {
      s.boosts.push_back(static_cast<uint32_t>(r));
    }
    if (rule.kind == Rule::Kind::kPin) {
      s.pins.push_back(PinRule{rule.pin_item, rule.pin_position, rule.line});
    } else if (rule.kind == Rule::Kind::kCap) {
      const CapGroups* g = &impl.cap_groups[rule.cap_groups];
      const int32_t n = impl.n;
      s.caps.push_back(CapRule{rule.cap_limit,
                               [g, n](int32_t item, std::vector<int64_t>* out) {
                                 if (item < 0 || item >= n) return;
                                 out->insert(out->end(), g->groups.begin() + g->offsets[item],
                                             g->groups.begin() + g->offsets[item + 1]);
                               },
                               g->offsets, g->groups});
    }
  }
  return s;
}

Status PrecomputeMatches(RuleSet::Impl* impl) {
  impl->matches.assign(impl->rules.size(), {});
  for (size_t r = 0; r < impl->rules.size(); ++r) {
    const Rule& rule = impl->rules[r];
    const bool per_item_rule =
        rule.IsFilter() || rule.kind == Rule::Kind::kBoost || rule.kind == Rule::Kind::kBury;
    if (!per_item_rule || rule.where < 0 || rule.where_dynamic) continue;
    State s;
    s.impl = impl;
    s.operands.resize(impl->nodes.size());
    VITRINE_RETURN_IF_ERROR(ResolveOperands(*impl, rule, RequestContext{}, &s));
    std::vector<uint64_t> bits((static_cast<size_t>(impl->n) + 63) / 64, 0);
    for (int32_t i = 0; i < impl->n; ++i) {
      if (NodeMatch(s, rule.where, i)) {
        bits[static_cast<uint32_t>(i) >> 6] |= uint64_t{1} << (i & 63);
      }
    }
    impl->matches[r] = std::move(bits);
  }
  return Status::OK();
}

Status ApplyFilters(const State& s, const AttributeIndex& index, bool dynamic_only,
                    Bitmap* allowed) {
  const RuleSet::Impl& impl = *s.impl;
  // INCLUDEs first, then EXCLUDEs: the result does not depend on rule order.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t r = 0; r < impl.rules.size(); ++r) {
      const Rule& rule = impl.rules[r];
      if (!s.active[r] || !rule.IsFilter() || (dynamic_only && !rule.dynamic)) continue;
      if ((rule.kind == Rule::Kind::kInclude) != (pass == 0)) continue;
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, NodeBitmap(s, rule.where, index));
      if (pass == 0) {
        *allowed &= b;
      } else {
        *allowed -= b;
      }
    }
  }
  return Status::OK();
}

}  // namespace vitrine::rules_internal
