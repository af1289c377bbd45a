// Internal to rank/ (not part of the public API; include rank/rules.h): the
// evaluators of the rules language, for bound rules (rules_binder.h).
//
//   Resolve      per request: which rules are active (WHEN, CurrentItem), and
//                each comparison's right-hand values in its column's terms
//                ($params, context, CurrentItem looked up and parsed);
//   NodeBitmap   a predicate as a bitmap of items, through the
//                AttributeIndex (AllowedItems: the filter of the ANN search);
//   NodeMatch    a predicate for one item, on the bound columns (reranking a
//                candidate pool).
// The two evaluators must agree item by item; tests/rules_property_test.cc
// checks them against an oracle written from docs/rules.md. Both recurse
// along the predicate tree, whose depth the parser bounds
// (RuleSet::kMaxDepth); AND / OR operands are visited in a loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "index/attribute_index.h"
#include "rank/rules.h"
#include "rank/rules_binder.h"

namespace vitrine {
namespace rules_internal {

// A resolved right-hand value: the strings, dictionary codes or numbers it
// stands for in the compared column's terms.
struct Operand {
  bool absent = false;  // context key / CurrentItem value missing
  std::vector<std::string> strs;
  std::vector<int32_t> codes;  // categorical/list: dictionary codes of strs
  std::vector<double> nums;    // numeric; bool as 0/1
};

}  // namespace rules_internal

// The rules of one request, resolved (RequestRules is its public face).
struct RequestRules::State {
  const RuleSet::Impl* impl = nullptr;
  std::vector<char> active;                                    // per rule
  std::vector<uint32_t> filters;                               // active INCLUDE/EXCLUDE rules
  std::vector<uint32_t> boosts;                                // active BOOST/BURY rules
  std::vector<std::vector<rules_internal::Operand>> operands;  // per node, one per value
  std::vector<PinRule> pins;
  std::vector<CapRule> caps;
};

namespace rules_internal {

using State = RequestRules::State;

// InvalidArgument if the request's current item is outside the bound catalog.
Status CheckCurrentItem(const RuleSet::Impl& impl, const RequestContext& ctx);

// Resolves the rules that apply to request `ctx` (only the request-independent
// filters if `static_only`) into a fresh State. `per_item` skips the operands
// of predicates with precomputed matches: per-item questions (RuleMatch) do
// not need them, bitmaps (NodeBitmap) do. Errors: a missing $param, a value
// that does not parse for its column (source:line:col).
Result<State> Resolve(const RuleSet::Impl& impl, const RequestContext& ctx, bool static_only,
                      bool per_item = false);

// Fills impl->matches for the filter, BOOST and BURY rules whose WHERE does
// not depend on the request: one bit per item. `impl` must be bound.
Status PrecomputeMatches(RuleSet::Impl* impl);

// Does predicate node `id` hold for item `i` (in [0, n))?
bool NodeMatch(const State& s, int id, int32_t i);

// Does rule `r`'s WHERE hold for item `i`? Precomputed bits when there are.
inline bool RuleMatch(const State& s, size_t r, int32_t i) {
  const RuleSet::Impl& impl = *s.impl;
  if (r < impl.matches.size() && !impl.matches[r].empty()) {
    return (impl.matches[r][static_cast<uint32_t>(i) >> 6] >> (i & 63)) & 1;
  }
  return NodeMatch(s, impl.rules[r].where, i);
}

// Applies the active filter rules of `s` (only the request-dependent ones if
// `dynamic_only`) to `allowed`: INCLUDEs intersect, then EXCLUDEs subtract.
Status ApplyFilters(const State& s, const AttributeIndex& index, bool dynamic_only,
                    Bitmap* allowed);

}  // namespace rules_internal
}  // namespace vitrine
