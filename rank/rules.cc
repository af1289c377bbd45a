// RuleSet and RequestRules: the public face of the rules pipeline
// (rank/rules.h). Each stage lives in its own file:
//   rules_lexer    one line of text -> tokens
//   rules_parser   tokens -> syntax tree (rules_ast.h); the input limits
//   rules_binder   syntax tree + Catalog -> bound columns, types checked
//   rules_eval     per request: values resolved; predicates as bitmaps or per item
// and rerank.cc ranks a candidate pool under the rules of one request.
#include "rank/rules.h"

#include <algorithm>
#include <utility>

#include "core/file_util.h"
#include "rank/rules_binder.h"
#include "rank/rules_eval.h"
#include "rank/rules_parser.h"

namespace vitrine {

using rules_internal::Rule;
using rules_internal::State;

// ---------------------------------------------------------------- RuleSet

RuleSet::RuleSet() : impl_(std::make_unique<Impl>()) {}
RuleSet::RuleSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

Result<RuleSet> RuleSet::Parse(std::string_view text, std::string source_name) {
  VITRINE_ASSIGN_OR_RETURN(rules_internal::ParsedRules parsed,
                           rules_internal::ParseRuleText(text, std::move(source_name)));
  auto impl = std::make_unique<Impl>();
  static_cast<rules_internal::ParsedRules&>(*impl) = std::move(parsed);
  return RuleSet(std::move(impl));
}

Result<RuleSet> RuleSet::ParseFile(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path.string());
}

Status RuleSet::Bind(const Catalog& catalog) {
  Impl b = *impl_;  // bind a copy: on error the RuleSet is unchanged
  VITRINE_RETURN_IF_ERROR(rules_internal::BindToCatalog(catalog, &b));
  b.bound = true;
  VITRINE_RETURN_IF_ERROR(rules_internal::PrecomputeMatches(&b));
  *impl_ = std::move(b);
  impl_->request_independent.reset();  // from an earlier Bind: points into old columns
  const bool any_dynamic = std::any_of(impl_->rules.begin(), impl_->rules.end(),
                                       [](const Rule& r) { return r.dynamic; });
  if (!any_dynamic) {
    // (Should it fail, every request resolves for itself and reports it.)
    Result<State> s = rules_internal::Resolve(*impl_, RequestContext{}, /*static_only=*/false,
                                              /*per_item=*/true);
    if (s.ok()) impl_->request_independent = std::make_shared<const State>(std::move(*s));
  }
  return Status::OK();
}

int RuleSet::num_rules() const { return static_cast<int>(impl_->rules.size()); }

bool RuleSet::FiltersDependOnRequest() const {
  for (const Rule& r : impl_->rules) {
    if (r.IsFilter() && r.dynamic) return true;
  }
  return false;
}

Result<Bitmap> RuleSet::StaticAllowedItems(const AttributeIndex& index) const {
  VITRINE_ASSIGN_OR_RETURN(State s,
                           rules_internal::Resolve(*impl_, RequestContext{}, /*static_only=*/true));
  if (impl_->bound && index.size() != static_cast<uint32_t>(impl_->n)) {
    return Status::InvalidArgument("attribute index has " + std::to_string(index.size()) +
                                   " items, rules were bound to a catalog of " +
                                   std::to_string(impl_->n));
  }
  Bitmap allowed = index.All();
  VITRINE_RETURN_IF_ERROR(rules_internal::ApplyFilters(s, index, /*dynamic_only=*/false, &allowed));
  return allowed;
}

Result<Bitmap> RuleSet::AllowedItems(const AttributeIndex& index, const RequestContext& ctx,
                                     const Bitmap* static_allowed) const {
  VITRINE_ASSIGN_OR_RETURN(State s, rules_internal::Resolve(*impl_, ctx, /*static_only=*/false));
  if (impl_->bound && index.size() != static_cast<uint32_t>(impl_->n)) {
    return Status::InvalidArgument("attribute index has " + std::to_string(index.size()) +
                                   " items, rules were bound to a catalog of " +
                                   std::to_string(impl_->n));
  }
  Bitmap allowed = static_allowed != nullptr ? *static_allowed : index.All();
  VITRINE_RETURN_IF_ERROR(
      rules_internal::ApplyFilters(s, index, /*dynamic_only=*/static_allowed != nullptr, &allowed));
  return allowed;
}

Result<RequestRules> RuleSet::ForRequest(const RequestContext& ctx) const {
  RequestRules rr;
  if (impl_->request_independent != nullptr) {
    VITRINE_RETURN_IF_ERROR(rules_internal::CheckCurrentItem(*impl_, ctx));
    rr.s_ = impl_->request_independent;
    return rr;
  }
  VITRINE_ASSIGN_OR_RETURN(State s, rules_internal::Resolve(*impl_, ctx, /*static_only=*/false,
                                                            /*per_item=*/true));
  rr.s_ = std::make_shared<const State>(std::move(s));
  return rr;
}

// ---------------------------------------------------------------- RequestRules

RequestRules::RequestRules() {
  static const std::shared_ptr<const State> kEmpty = std::make_shared<const State>();
  s_ = kEmpty;
}
RequestRules::~RequestRules() = default;
RequestRules::RequestRules(RequestRules&&) noexcept = default;
RequestRules& RequestRules::operator=(RequestRules&&) noexcept = default;

bool RequestRules::Allowed(int32_t item) const {
  if (s_->impl == nullptr) return true;
  const RuleSet::Impl& impl = *s_->impl;
  if (item < 0 || (impl.bound && item >= impl.n)) return false;
  for (uint32_t r : s_->filters) {
    const bool match = rules_internal::RuleMatch(*s_, r, item);
    if (match != (impl.rules[r].kind == Rule::Kind::kInclude)) return false;
  }
  return true;
}

double RequestRules::BoostFactor(int32_t item, std::vector<int>* applied) const {
  if (s_->impl == nullptr) return 1.0;
  const RuleSet::Impl& impl = *s_->impl;
  if (item < 0 || (impl.bound && item >= impl.n)) return 1.0;
  double f = 1.0;
  for (uint32_t r : s_->boosts) {
    const Rule& rule = impl.rules[r];
    if (!rules_internal::RuleMatch(*s_, r, item)) continue;
    f = rule.kind == Rule::Kind::kBoost ? f * rule.factor : f / rule.factor;
    if (applied != nullptr) applied->push_back(rule.line);
  }
  return f;
}

void RequestRules::Evaluate(std::span<const int32_t> items, std::span<uint8_t> allowed,
                            std::span<double> factor) const {
  const size_t n = items.size();
  const RuleSet::Impl* impl = s_->impl;
  // allowed[] starts as "inside the catalog", as in Allowed and BoostFactor:
  // other items are not allowed and get factor 1; rules see only the rest.
  for (size_t j = 0; j < n; ++j) {
    allowed[j] = items[j] >= 0 && (impl == nullptr || !impl->bound || items[j] < impl->n);
    factor[j] = 1.0;
  }
  if (impl == nullptr) {
    std::fill(allowed.begin(), allowed.end(), uint8_t{1});
    return;
  }
  // Rule r's precomputed match bits (Bind), or null when it depends on the
  // request and has to be evaluated item by item.
  auto bits_of = [&](uint32_t r) -> const uint64_t* {
    return r < impl->matches.size() && !impl->matches[r].empty() ? impl->matches[r].data()
                                                                 : nullptr;
  };
  // Does precomputed rule `bits` match items[j]? False for items no longer
  // allowed, without a branch: whether an item matches is data, and
  // branching on it mispredicted often enough to matter in the rerank.
  auto bit_match = [&](const uint64_t* bits, size_t j) {
    const uint32_t i = allowed[j] ? static_cast<uint32_t>(items[j]) : 0u;
    return (allowed[j] & (bits[i >> 6] >> (i & 63))) & 1;
  };
  // Boosts first, while allowed[] still marks exactly the valid items.
  for (uint32_t r : s_->boosts) {
    const Rule& rule = impl->rules[r];
    const bool boost = rule.kind == Rule::Kind::kBoost;
    const uint64_t* bits = bits_of(r);
    for (size_t j = 0; j < n; ++j) {
      bool match;
      if (bits != nullptr) {
        match = bit_match(bits, j);
      } else {
        match = allowed[j] && rules_internal::NodeMatch(*s_, rule.where, items[j]);
      }
      const double f = boost ? factor[j] * rule.factor : factor[j] / rule.factor;
      factor[j] = match ? f : factor[j];
    }
  }
  for (uint32_t r : s_->filters) {
    const Rule& rule = impl->rules[r];
    const bool include = rule.kind == Rule::Kind::kInclude;
    const uint64_t* bits = bits_of(r);
    for (size_t j = 0; j < n; ++j) {
      if (bits != nullptr) {
        allowed[j] &= static_cast<uint8_t>(bit_match(bits, j) == include);
      } else if (allowed[j] && rules_internal::NodeMatch(*s_, rule.where, items[j]) != include) {
        allowed[j] = 0;
      }
    }
  }
}

const std::vector<PinRule>& RequestRules::pins() const { return s_->pins; }
const std::vector<CapRule>& RequestRules::caps() const { return s_->caps; }

float RequestRules::ApplyFactor(float score, double factor) {
  return static_cast<float>(score >= 0 ? score * factor : score / factor);
}

}  // namespace vitrine
