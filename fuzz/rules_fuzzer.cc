// Fuzzes the rules language end to end (rank/rules.h): lexer, parser, binder
// against a fixed 60-item catalog (fuzz_util.h TinyCatalog), then one request:
// StaticAllowedItems, AllowedItems, ForRequest, per-item Allowed/BoostFactor,
// the batch Evaluate and Rerank (with the caps and pins).
//
// Input: rule text, optionally followed by a line "---" and request lines:
//   $NAME=value        a parameter (RequestContext::params)
//   context.key=value  a context value
//   current=N          the current item (CurrentItem.col), a catalog index
// Oracles (each a promise of rules.h / rerank.h; a broken one aborts):
//   * RequestRules::Allowed(i) == AllowedItems(...).contains(i) for every item;
//   * Evaluate() gives the same allowed flags and factors as Allowed() and
//     BoostFactor() item by item;
//   * Rerank returns at most k items, each allowed, distinct, within the caps.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "index/attribute_index.h"
#include "rank/rules.h"

namespace {

using namespace vitrine;

const AttributeIndex& TinyIndex() {
  static const AttributeIndex* index = [] {
    auto idx = AttributeIndex::Build(vitrine::fuzz::TinyCatalog());
    if (!idx.ok()) vitrine::fuzz::Fail("tiny index: " + idx.status().ToString());
    return new AttributeIndex(std::move(*idx));
  }();
  return *index;
}

// Splits "rules\n---\nrequest lines" and fills `ctx` from the request lines.
std::string_view SplitRequest(std::string_view in, RequestContext* ctx) {
  size_t sep = std::string_view::npos;
  if (in.substr(0, 4) == "---\n") {
    sep = 0;
  } else if (auto p = in.find("\n---\n"); p != std::string_view::npos) {
    sep = p + 1;
  }
  if (sep == std::string_view::npos) return in;
  std::string_view rest = in.substr(sep + 4);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string key(line.substr(0, eq));
    const std::string value(line.substr(eq + 1));
    if (key.size() > 1 && key[0] == '$') {
      ctx->params[key.substr(1)] = value;
    } else if (key.rfind("context.", 0) == 0) {
      ctx->context[key.substr(8)] = value;
    } else if (key == "current") {
      int32_t n = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || n > 1000000) break;
        n = n * 10 + (c - '0');
      }
      ctx->current_item = n;  // may be out of range: the rules must cope
    }
  }
  return in.substr(0, sep);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  RequestContext ctx;
  const std::string_view text = SplitRequest(input, &ctx);

  auto parsed = RuleSet::Parse(text, "fuzz");
  if (!parsed.ok()) return 0;
  RuleSet rules = std::move(*parsed);
  const Catalog& catalog = vitrine::fuzz::TinyCatalog();
  if (!rules.Bind(catalog).ok()) return 0;

  // A current item outside the catalog is the caller's error; the engine
  // never passes one. Keep the fuzzer on valid ones.
  if (ctx.current_item && (*ctx.current_item < 0 || *ctx.current_item >= catalog.size())) {
    ctx.current_item = *ctx.current_item % catalog.size();
  }

  const AttributeIndex& index = TinyIndex();
  auto static_allowed = rules.StaticAllowedItems(index);
  if (!static_allowed.ok()) return 0;
  auto allowed = rules.AllowedItems(index, ctx, &*static_allowed);
  auto allowed_fresh = rules.AllowedItems(index, ctx);
  if (allowed.ok() != allowed_fresh.ok() || (allowed.ok() && *allowed != *allowed_fresh)) {
    vitrine::fuzz::Fail("AllowedItems differs with and without the static bitmap");
  }
  auto request = rules.ForRequest(ctx);
  if (!request.ok() || !allowed.ok()) return 0;

  const int32_t n = catalog.size();
  std::vector<int32_t> items(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) items[static_cast<size_t>(i)] = n - 1 - i;
  std::vector<uint8_t> flags(items.size());
  std::vector<double> factors(items.size());
  request->Evaluate(items, flags, factors);
  std::vector<Candidate> pool;
  for (size_t j = 0; j < items.size(); ++j) {
    const int32_t i = items[j];
    const bool ok = request->Allowed(i);
    if (ok != allowed->contains(static_cast<uint32_t>(i))) {
      vitrine::fuzz::Fail("Allowed(" + std::to_string(i) + ") disagrees with AllowedItems");
    }
    const double f = request->BoostFactor(i);
    if ((flags[j] != 0) != ok || !(factors[j] == f || (std::isnan(f) && std::isnan(factors[j])))) {
      vitrine::fuzz::Fail("Evaluate disagrees with Allowed/BoostFactor for item " +
                          std::to_string(i));
    }
    pool.push_back({i, static_cast<float>((i * 37) % 101) / 100.0f - 0.3f, nullptr});
  }

  RerankOptions ro;
  ro.k = 10;
  auto ranked = Rerank(pool, *request, ro);
  if (!ranked.ok()) return 0;
  if (ranked->size() > static_cast<size_t>(ro.k)) vitrine::fuzz::Fail("Rerank returned > k items");
  std::vector<char> seen(static_cast<size_t>(n), 0);
  CapTracker caps(request->caps());
  for (const RankedItem& r : *ranked) {
    if (r.item < 0 || r.item >= n || seen[static_cast<size_t>(r.item)]) {
      vitrine::fuzz::Fail("Rerank returned an out-of-range or repeated item");
    }
    seen[static_cast<size_t>(r.item)] = 1;
    if (!request->Allowed(r.item)) vitrine::fuzz::Fail("Rerank returned a filtered-out item");
    if (!caps.CanAdd(r.item)) vitrine::fuzz::Fail("Rerank broke a CAP");
    caps.Add(r.item);
  }
  return 0;
}
