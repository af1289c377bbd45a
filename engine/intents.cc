// The intents that answer with the person's own items (Intent, engine.h):
// recently viewed, and buy-again for replenishable items. The rules apply as
// to every answer: filters, boosts and buries, pins and caps (Rerank), with
// the intent's order as the score.
#include <algorithm>
#include <numeric>

#include "core/simd.h"
#include "engine/engine.h"
#include "engine/privacy.h"

namespace vitrine {

Result<Intent> ParseIntent(std::string_view name) {
  if (name == "for-you") return Intent::kForYou;
  if (name == "recently-viewed") return Intent::kRecentlyViewed;
  if (name == "buy-again") return Intent::kBuyAgain;
  if (name == "gift") return Intent::kGift;
  if (name == "next-step") return Intent::kNextStep;
  return Status::InvalidArgument(
      "intent '" + std::string(name) +
      "': expected for-you, recently-viewed, buy-again, gift or next-step");
}

Result<std::vector<Hit>> Engine::OwnItems(const RecommendRequest& r, const QueryParams& q,
                                          std::span<const int32_t> items,
                                          std::span<const float> weights,
                                          std::span<const int64_t> times) const {
  // Replenishable: a true `replenishable` column, or a listed category.
  std::vector<uint8_t> replenishable;
  if (r.intent == Intent::kBuyAgain) {
    replenishable.assign(static_cast<size_t>(catalog_.size()), 0);
    const Column* flag = catalog_.column("replenishable");
    if (flag != nullptr && flag->type == ColumnType::kBool) {
      for (size_t i = 0; i < replenishable.size(); ++i) replenishable[i] = flag->bools[i] == 1;
    }
    if (!r.replenishable_categories.empty()) {
      const Column* cat = catalog_.column(r.category_column);
      if (cat == nullptr || cat->type != ColumnType::kCategorical) {
        return Status::InvalidArgument("buy-again: no categorical column '" + r.category_column +
                                       "' in the catalog (--category-column)");
      }
      for (const std::string& c : r.replenishable_categories) {
        auto it = std::find(cat->dictionary.begin(), cat->dictionary.end(), c);
        if (it == cat->dictionary.end()) {
          return Status::InvalidArgument("buy-again: no item has " + r.category_column + " = '" +
                                         c + "'");
        }
        const auto code = static_cast<int32_t>(it - cat->dictionary.begin());
        for (size_t i = 0; i < replenishable.size(); ++i) {
          if (cat->codes[i] == code) replenishable[i] = 1;
        }
      }
    } else if (flag == nullptr || flag->type != ColumnType::kBool) {
      return Status::InvalidArgument(
          "buy-again needs replenishable items: a boolean catalog column 'replenishable' or "
          "a list of categories (--replenishable)");
    }
  }
  // The intent's order: recently viewed by latest event, newest first;
  // buy-again by summed event weight (purchases weigh most), then recency.
  // Ties go to the later position (the newer live input).
  std::vector<size_t> order;
  for (size_t p = 0; p < items.size(); ++p) {
    if (r.intent == Intent::kBuyAgain && !replenishable[static_cast<size_t>(items[p])]) continue;
    order.push_back(p);
  }
  auto newer = [&](size_t a, size_t b) { return times[a] != times[b] ? times[a] > times[b] : a > b; };
  if (r.intent == Intent::kRecentlyViewed) {
    std::sort(order.begin(), order.end(), newer);
  } else {
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return weights[a] != weights[b] ? weights[a] > weights[b] : newer(a, b);
    });
  }
  Bitmap allowed;
  RequestRules rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, {}, &allowed, &rules));
  std::vector<Candidate> cands;
  for (size_t p : order) {
    if (!allowed.contains(static_cast<uint32_t>(items[p]))) continue;
    // 1 / rank among the items that may be shown: keeps the order and
    // leaves room for BOOST and BURY.
    cands.push_back({items[p], 1.0f / static_cast<float>(cands.size() + 1), nullptr});
  }
  RerankOptions ro;
  ro.k = q.k;
  VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked, Rerank(cands, rules, ro, &allowed));
  std::vector<Hit> hits = ToHits(std::move(ranked), rules);
  // Per-block cosines with the person's taste (their history's query), as
  // every answer carries them for --explain.
  std::vector<float> taste;
  if (!items.empty()) {
    VITRINE_ASSIGN_OR_RETURN(taste, HistoryVector(items, weights));
  }
  for (Hit& h : hits) {
    h.block_cos = HitBlocks(taste, h.item);
    if (h.pinned) {
      h.reason = "pinned";
    } else {
      // A sensitive item of the person's own is not said to be theirs.
      h.reason = !MayName(h.item, -1) ? DiscreetReason(catalog_, h.item)
                 : r.intent == Intent::kRecentlyViewed
                     ? "you viewed it recently"
                     : "buy again: replenishable, in your history";
    }
    AppendRuleReasons(&h);
  }
  return hits;
}

Result<std::vector<Hit>> Engine::Gifts(const QueryParams& q, std::span<const int32_t> items,
                                       std::span<const float> weights, bool filter_seen) const {
  if (gift_prior_.empty()) {
    return Status::InvalidArgument(
        "the bundle knows no gifts: its interactions had no gift rows (a 'gift' column, or the "
        "event gift_purchase)");
  }
  std::vector<int32_t> drop;
  if (filter_seen) drop.assign(items.begin(), items.end());  // the recipient has them
  Bitmap allowed;
  RequestRules rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, drop, &allowed, &rules));
  // The recipient's taste, without the priors (the gift prior replaces them).
  std::vector<float> taste;
  if (!items.empty()) {
    VITRINE_ASSIGN_OR_RETURN(taste, HistoryVector(items, weights));
    PushAway(q, &taste);
    VITRINE_RETURN_IF_ERROR(ScaleQuery(layout_, q.weights, taste.data()));
    SetPriorSegment(&taste, 0.0f);
  }
  const size_t dim = vectors_->cols;
  std::vector<Candidate> cands;
  for (uint32_t i : allowed) {
    if (gift_prior_[i] <= 0) continue;
    const float s =
        gift_prior_[i] +
        (taste.empty() ? 0.0f : simd::InnerProduct(taste.data(), vectors_->row(i), dim));
    cands.push_back({static_cast<int32_t>(i), s, nullptr});
  }
  RerankOptions ro;
  ro.k = q.k;
  VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked, Rerank(cands, rules, ro, &allowed));
  std::vector<Hit> hits = ToHits(std::move(ranked), rules);
  for (Hit& h : hits) {
    const float* v = vectors_->row(static_cast<size_t>(h.item));
    h.block_cos = HitBlocks(taste, h.item);
    if (h.pinned) {
      h.reason = "pinned";
    } else {
      h.reason = "often bought as a gift";
      const int32_t because = items.empty() ? -1 : ClosestHistoryItem(items, v);
      if (because >= 0 && MayName(h.item, because)) {
        h.reason += "; suits a taste for " + catalog_.ids.id(because);
      }
    }
    AppendRuleReasons(&h);
  }
  return hits;
}

}  // namespace vitrine
