// Internal to rank/ (not part of the public API; include rank/rules.h): the
// binder of the rules language and the state of a rule set. Binding resolves
// the column names of a ParsedRules tree against a Catalog, type-checks every
// comparison (operator against column type, literal and CurrentItem values
// against the column), resolves PIN item ids, and copies what the rules need
// from the catalog (the columns they name, CAP groups per item) so the
// Catalog may go away afterwards.
//
// The binder visits the comparisons of a predicate as a range of node ids
// (rules_ast.h), so it does not recurse, and it reports the first error in
// rule order, then left to right, naming source:line:col.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/catalog.h"
#include "core/status.h"
#include "rank/rules.h"
#include "rank/rules_ast.h"

namespace vitrine {
namespace rules_internal {

// A catalog column the rules use, copied so the Catalog may go away.
struct BoundColumn {
  Column data;
  std::unordered_map<std::string, int32_t> code_of;  // categorical, list
};

// Group ids per item of a CAP column (CSR): categorical/list codes, bool 0/1,
// numeric bit patterns, text ids; missing values have no group.
struct CapGroups {
  std::vector<int64_t> offsets;
  std::vector<int64_t> groups;
};

}  // namespace rules_internal

// A parsed rule set and, after Bind, what it was bound to.
struct RuleSet::Impl : rules_internal::ParsedRules {
  bool bound = false;
  int32_t n = 0;  // catalog items
  std::vector<rules_internal::BoundColumn> columns;
  std::vector<rules_internal::CapGroups> cap_groups;
  // Per rule, for filter, BOOST and BURY rules whose WHERE does not depend on
  // the request: bit i of the WHERE result for item i (empty otherwise), so
  // that reranking tests a bit per candidate instead of walking the predicate
  // (rules_eval.h PrecomputeMatches).
  std::vector<std::vector<uint64_t>> matches;
  // When no rule depends on the request ($param, context, CurrentItem,
  // WHEN): the one answer of ForRequest, resolved at Bind and shared by
  // every request (resolving per request was a dozen allocations).
  std::shared_ptr<const RequestRules::State> request_independent;
};

namespace rules_internal {

// Binds `b` (parsed, possibly bound before to another catalog) to `catalog`:
// sets b->n, b->columns, b->cap_groups, Node::column, Value::column and
// Rule::pin_item / cap_groups. Leaves `matches` and `request_independent`
// alone. On error `b` is partly bound: bind a copy.
Status BindToCatalog(const Catalog& catalog, RuleSet::Impl* b);

}  // namespace rules_internal
}  // namespace vitrine
