// RuleSet: merchandising rules (filters, boosts, pins, caps) in a small
// language modelled on AWS Personalize filter expressions. The language
// reference with examples is docs/rules.md; in short, one rule per line:
//
//   EXCLUDE WHERE in_stock = false
//   INCLUDE WHERE price <= $MAX_PRICE AND category IN ("shoes", "socks")
//   EXCLUDE WHERE brand = CurrentItem.brand        # similar-items requests
//   BOOST 1.5 WHERE tags = "new"                   # list column: "contains"
//   BURY 2 WHERE rating < 3
//   PIN "sku-42" AT 1
//   CAP 2 PER brand
//   WHEN context.climate = "warm" BOOST 2 WHERE category = "shorts"
//
// Life cycle: Parse (syntax; errors "rules.txt:3:17: expected a value after
// IN") -> Bind to a Catalog (columns, types, pinned ids; errors
// "rules.txt:3:15: unknown column 'colour' (columns: brand, ...)") -> per
// request: AllowedItems (bitmap for the ANN search) and ForRequest (boosts,
// pins, caps for reranking, by Rerank in rank/rerank.h). Input is bounded
// (kMaxTextBytes, kMaxRules, kMaxDepth below). A rule file with any error
// applies nothing: Parse and Bind fail as a whole.
//
// Semantics:
//   * allowed = all items, intersected with every active INCLUDE predicate,
//     minus every active EXCLUDE predicate (EXCLUDE wins over INCLUDE).
//   * A missing attribute value never matches =, IN, <, <=, >, >=, BETWEEN;
//     `!=`, NOT IN and NOT are complements, so they match missing values.
//   * List columns: `=` / IN mean "contains (any of) the value(s)".
//   * `$NAME` takes RequestContext::params["NAME"] (a missing one is an error
//     at request time); inside IN a parameter may hold several values
//     separated by commas. `context.key` takes RequestContext::context["key"];
//     a missing key makes the comparison false. `CurrentItem.col` takes the
//     request's current item's value; a rule using CurrentItem is skipped when
//     the request has no current item.
//   * WHEN <condition on context.*> makes the rule apply only when it holds.
//   * Rules are numbered by their line in the source (for explanations:
//     "boosted by rule 4").
//
// Thread safety: after Bind, every const method is safe to call from many
// threads. The RuleSet copies the catalog columns it needs; the Catalog may be
// dropped after Bind. RequestRules points into its RuleSet, which must
// outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/catalog.h"
#include "core/status.h"
#include "index/attribute_index.h"
#include "rank/diversify.h"
#include "rank/rerank.h"  // Rerank, RerankOptions, RankedItem: callers of the rules use them

namespace vitrine {

// Per-request inputs of rules.
struct RequestContext {
  std::map<std::string, std::string, std::less<>> params;   // $NAME -> value ("--param")
  std::map<std::string, std::string, std::less<>> context;  // context.key -> value ("--context")
  std::optional<int32_t> current_item;                      // similar-items: the query item
};

// A PIN rule that applies to a request.
struct PinRule {
  int32_t item = 0;      // catalog index
  int32_t position = 0;  // 0-based (PIN "x" AT 1 -> 0)
  int line = 0;          // rule number
};

class RequestRules;

class RuleSet {
 public:
  RuleSet();
  ~RuleSet();
  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;

  // Limits of Parse (docs/rules.md "Limits"). Input beyond them is an error
  // naming source:line:col, never a crash:
  //   "rules:1:257: expression nests deeper than 64 levels".
  static constexpr size_t kMaxTextBytes = 64 * 1024;  // the whole rule text
  static constexpr int kMaxRules = 1000;
  // Parentheses and NOTs nested in one WHEN or WHERE condition. Flat AND /
  // OR chains (`a OR b OR ...`) do not nest: only the text size bounds them.
  static constexpr int kMaxDepth = 64;

  // Parses rule text. `source_name` prefixes error positions ("rules.txt",
  // "--rule"). Keywords are case-insensitive; `#` starts a comment.
  static Result<RuleSet> Parse(std::string_view text, std::string source_name);
  // Reads and parses a rules file; errors are prefixed with its path.
  static Result<RuleSet> ParseFile(const std::filesystem::path& path);

  // Resolves column names, checks types and pinned item ids against
  // `catalog`, and copies the columns the rules use. Also evaluates, once per
  // item, the WHERE of every INCLUDE, EXCLUDE, BOOST and BURY rule that does
  // not depend on the request (no $param, context or CurrentItem), keeping one
  // bit per item and rule, so reranking tests a bit per candidate. Call once,
  // before any request method (an empty RuleSet, e.g. default-constructed,
  // works unbound: it allows everything). Errors name source:line:col.
  Status Bind(const Catalog& catalog);

  int num_rules() const;
  bool empty() const { return num_rules() == 0; }

  // True if some INCLUDE/EXCLUDE rule depends on the request (CurrentItem,
  // $param, context.*, WHEN). When false, AllowedItems is the same for every
  // request and StaticAllowedItems is all there is.
  bool FiltersDependOnRequest() const;

  // The allowed items according to the request-independent filter rules
  // only. Compute once and pass to AllowedItems to save work per request.
  Result<Bitmap> StaticAllowedItems(const AttributeIndex& index) const;

  // Items allowed for this request (INCLUDE/EXCLUDE semantics above), as the
  // bitmap the vector search filters on. `static_allowed`, if given, must be
  // StaticAllowedItems(index) of this RuleSet. Errors: a missing $param or a
  // value of the wrong type for its column ("rules.txt:2:20: $PRICE: column
  // 'price' is numeric, expected a number, got 'abc'").
  Result<Bitmap> AllowedItems(const AttributeIndex& index, const RequestContext& ctx,
                              const Bitmap* static_allowed = nullptr) const;

  // Resolves WHEN conditions, parameters, context and CurrentItem once for a
  // request; the result answers per-item questions cheaply.
  Result<RequestRules> ForRequest(const RequestContext& ctx) const;

  struct Impl;

 private:
  explicit RuleSet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The rules of one request, values resolved. Cheap per-item evaluation for
// reranking a candidate pool. Move-only; points into the RuleSet that made
// it, which must outlive it. Const methods are thread-safe.
class RequestRules {
 public:
  RequestRules();
  ~RequestRules();
  RequestRules(RequestRules&&) noexcept;
  RequestRules& operator=(RequestRules&&) noexcept;

  // Same answer as AllowedItems(...).contains(item), item by item.
  bool Allowed(int32_t item) const;
  // Product of the factors of matching BOOST (x f) and BURY (x 1/f) rules; 1
  // if none. Appends the line numbers of matching rules to `applied` if given.
  double BoostFactor(int32_t item, std::vector<int>* applied = nullptr) const;
  // Allowed and BoostFactor for a batch of items, one rule at a time over
  // all of them (cheaper than item by item for a candidate pool):
  // allowed[j] = Allowed(items[j]), factor[j] = BoostFactor(items[j]), with
  // the same arithmetic. Both spans must have items.size() elements.
  void Evaluate(std::span<const int32_t> items, std::span<uint8_t> allowed,
                std::span<double> factor) const;
  // Active PIN rules in rule order (items not checked against filters).
  const std::vector<PinRule>& pins() const;
  // Active CAP rules; pass to a CapTracker.
  const std::vector<CapRule>& caps() const;

  // Applies a boost factor to a score so that f > 1 always raises it and
  // f < 1 lowers it, whatever the score's sign: s * f if s >= 0, s / f if not.
  static float ApplyFactor(float score, double factor);

  struct State;

 private:
  friend class RuleSet;
  std::shared_ptr<const State> s_;  // shared when the rules do not depend on the request
};

}  // namespace vitrine
