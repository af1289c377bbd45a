// Internal to rank/ (not part of the public API; include rank/rules.h): the
// syntax tree of the rules language. The parser (rules_parser.h) builds it,
// the binder (rules_binder.h) annotates it with catalog columns, the
// evaluators (rules_eval.h) walk it.
//
// Nodes of all rules live in one array, ParsedRules::nodes, and refer to each
// other by index. A parent is always created after its children, so the nodes
// of a predicate whose root is node r are exactly [first, r] for the `first`
// recorded when parsing it began (Rule::where_begin): passes that visit every
// comparison of a predicate walk that range and do not recurse. AND and OR
// are n-ary (`a OR b OR c` is one node with three operands), so the tree is
// at most about twice as deep as the parentheses and NOTs written (an OR and
// an AND node per parenthesis), which the parser bounds (RuleSet::kMaxDepth);
// that bounds the evaluators' recursion too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace vitrine::rules_internal {

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn, kBetween, kNotBetween };

// A right-hand value of a comparison.
struct Value {
  enum class Kind { kString, kNumber, kBool, kParam, kCurrentItem, kContext };
  Kind kind = Kind::kString;
  std::string text;  // string contents, number as written, param/column/key name
  double number = 0;
  bool boolean = false;
  int col = 0;
  int column = -1;  // kCurrentItem: index into RuleSet::Impl::columns after Bind
};

struct Node {
  enum class Kind { kAnd, kOr, kNot, kCompare };
  Kind kind = Kind::kCompare;
  std::vector<int> kids;  // kAnd, kOr: two or more operands in source order; kNot: one
  // kCompare:
  bool on_context = false;  // attr is a context key (WHEN conditions)
  std::string attr;
  int attr_col = 0;
  Op op = Op::kEq;
  std::string op_text;
  int op_col = 0;
  std::vector<Value> values;
  int column = -1;  // index into RuleSet::Impl::columns after Bind
  int line = 0;
};

struct Rule {
  enum class Kind { kInclude, kExclude, kBoost, kBury, kPin, kCap };
  Kind kind = Kind::kInclude;
  int line = 0;
  int when = -1;         // node id of the context condition, or -1
  int where = -1;        // node id of the item predicate, or -1
  int where_begin = -1;  // the predicate's nodes are [where_begin, where]
  double factor = 1;
  std::string pin_id;
  int pin_id_col = 0;
  int32_t pin_item = -1;
  int32_t pin_position = 0;  // 0-based
  int32_t cap_limit = 0;
  std::string cap_column_name;
  int cap_col = 0;
  int cap_groups = -1;  // index into RuleSet::Impl::cap_groups after Bind
  bool uses_current_item = false;
  bool dynamic = false;        // result depends on the request
  bool where_dynamic = false;  // the WHERE predicate uses $param, context or CurrentItem
  bool IsFilter() const { return kind == Kind::kInclude || kind == Kind::kExclude; }
};

// The output of the parser: the rules in line order and their nodes.
struct ParsedRules {
  std::string source;  // prefix of error positions ("rules.txt", "--rule")
  std::vector<Node> nodes;
  std::vector<Rule> rules;

  // "source:line:col".
  std::string Where(int line, int col) const {
    return source + ":" + std::to_string(line) + ":" + std::to_string(col);
  }
  Status Error(int line, int col, const std::string& msg) const {
    return Status::InvalidArgument(Where(line, col) + ": " + msg);
  }
};

}  // namespace vitrine::rules_internal
