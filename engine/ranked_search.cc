// The learned-ranker path of Engine::Recommend: one candidate pool merged
// from the fused ANN search, the item-item neighbours and popularity, every
// source under the same allowed bitmap; one feature row per candidate; the
// LambdaMART ranker orders the pool; rules, caps, pins and diversity apply
// after it as on every other path (docs/ranker.md).
#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/progress.h"
#include "core/simd.h"
#include "engine/engine.h"

namespace vitrine {
namespace {

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
// Candidates taken from each source before merging (at least the request's
// pool), and from popularity.
constexpr int kSourcePool = 200;
constexpr int kPopularPool = 50;

enum Feature {
  kFused,
  kCf,
  kContent,
  kVisual,
  kPop,
  kNew,
  kItemItem,
  kAnnRank,
  kItemItemRank,
  kPopRank,
  kLogInteractions,
  kUserActivity,
  kBrandAffinity,
  kCategoryAffinity,
  kPriceRatio,
  kCold,
  kFusedGap,
  kCfGap,
  kItemItemShare,
  kItemItemMax,
  kAttributeLift,
  kAttributeLiftMin,
  kTaste,
  kTasteRank,
  kTasteShare,
  kNumFeatures
};

// sim(h, c) from h's neighbour row (columns ascending), 0 if absent.
float Similarity(const ItemNeighbors& nb, int32_t h, int32_t c) {
  if (h < 0 || h >= nb.num_items()) return 0;
  const auto cols = nb.neighbors(h);
  auto it = std::lower_bound(cols.begin(), cols.end(), c);
  if (it == cols.end() || *it != c) return 0;
  return nb.scores(h)[static_cast<size_t>(it - cols.begin())];
}

// Share of the history whose categorical `col` equals the candidate's; NaN
// without the column or when the candidate has no value.
float Affinity(const Column* col, std::span<const int32_t> history, int32_t c) {
  if (col == nullptr || col->type != ColumnType::kCategorical || history.empty()) return kMissing;
  const int32_t code = col->codes[static_cast<size_t>(c)];
  if (code < 0) return kMissing;
  int same = 0;
  for (int32_t h : history) same += col->codes[static_cast<size_t>(h)] == code;
  return static_cast<float>(same) / static_cast<float>(history.size());
}

// Scores relative to the best candidate of the same pool. The absolute
// scores' scale varies between users (an item-item sum grows with the
// history, a cf dot product with the user's norm), and a tree split on an
// absolute threshold means something different for each; the gap to (or
// share of) the pool's best does not.
void AddPoolRelativeFeatures(std::vector<float>* features, size_t n) {
  auto best = [&](int col) {
    float m = -std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < n; ++j) {
      const float x = (*features)[j * kNumFeatures + col];
      if (!std::isnan(x)) m = std::max(m, x);
    }
    return m;
  };
  const float fused = best(kFused), cf = best(kCf), item_item = best(kItemItem),
              taste = best(kTaste);
  for (size_t j = 0; j < n; ++j) {
    float* f = features->data() + j * kNumFeatures;
    if (!std::isnan(f[kFused])) f[kFusedGap] = fused - f[kFused];
    if (!std::isnan(f[kCf])) f[kCfGap] = cf - f[kCf];
    if (!std::isnan(f[kItemItem]) && item_item > 0) f[kItemItemShare] = f[kItemItem] / item_item;
    if (!std::isnan(f[kTaste]) && taste > 0) f[kTasteShare] = f[kTaste] / taste;
  }
}

}  // namespace

const std::vector<std::string> kRankerFeatures = {"fused_score",
                                                  "cf",
                                                  "content",
                                                  "visual",
                                                  "pop",
                                                  "new",
                                                  "item_item",
                                                  "ann_rank",
                                                  "item_item_rank",
                                                  "pop_rank",
                                                  "log_interactions",
                                                  "user_activity",
                                                  "brand_affinity",
                                                  "category_affinity",
                                                  "price_ratio",
                                                  "cold",
                                                  "fused_gap",
                                                  "cf_gap",
                                                  "item_item_share",
                                                  "item_item_max",
                                                  "attribute_lift",
                                                  "attribute_lift_min",
                                                  "taste",
                                                  "taste_rank",
                                                  "taste_share"};

Result<CandidatePool> Engine::Candidates(std::span<const int32_t> items,
                                         std::span<const float> weights, const QueryParams& q,
                                         const std::vector<int32_t>& drop) const {
  Bitmap allowed;
  RequestRules rules;
  std::vector<float> query;
  return Candidates(items, weights, q, drop, &allowed, &rules, &query);
}

Result<CandidatePool> Engine::Candidates(std::span<const int32_t> items,
                                         std::span<const float> weights, const QueryParams& q,
                                         const std::vector<int32_t>& drop, Bitmap* allowed,
                                         RequestRules* rules, std::vector<float>* query) const {
  static_assert(kNumFeatures == 25);
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, drop, allowed, rules));
  VITRINE_ASSIGN_OR_RETURN(*query, HistoryVector(items, weights));
  PushAway(q, query);
  std::vector<float> scaled = *query;
  VITRINE_RETURN_IF_ERROR(ScaleQuery(layout_, q.weights, scaled.data()));
  const int pool = std::max(CandidatePoolSize(q), kSourcePool);

  // Each source's candidates in its own order; rank r is stored as r + 1.
  std::vector<int32_t> merged;
  std::unordered_map<int32_t, size_t> slot;
  struct Ranks {
    float ann = kMissing, item_item = kMissing, pop = kMissing, taste = kMissing;
  };
  std::vector<Ranks> ranks;
  auto add = [&](int32_t item) -> Ranks& {
    auto [it, fresh] = slot.emplace(item, merged.size());
    if (fresh) {
      merged.push_back(item);
      ranks.emplace_back();
    }
    return ranks[it->second];
  };
  {
    SearchParams p;
    p.k = pool;
    p.ef_search = std::max(q.ef_search > 0 ? q.ef_search : operating_point_.ef_search, pool);
    p.nprobe = q.nprobe > 0 ? q.nprobe : operating_point_.nprobe;
    p.refine_k_factor = operating_point_.refine_k_factor;
    p.filter = allowed;
    std::vector<int64_t> labels;
    std::vector<float> dist;
    VITRINE_RETURN_IF_ERROR(index_->Search(scaled.data(), 1, p, &labels, &dist));
    int r = 0;
    for (int64_t id : labels) {
      if (id >= 0) add(static_cast<int32_t>(id)).ann = static_cast<float>(++r);
    }
  }
  if (neighbors_) {
    NeighborQueryParams np;
    np.k = pool;
    np.allowed = allowed;
    int r = 0;
    // Every interaction counts 1 here, as the neighbours were built: event
    // weights let a few purchases swamp the sum (docs/ranker.md).
    for (const ScoredItem& s : neighbors_->Query(items, {}, np)) {
      if (!allowed->contains(static_cast<uint32_t>(s.item))) continue;
      add(s.item).item_item = static_cast<float>(++r);
    }
  }
  std::vector<float> posterior;
  if (mixture_) {
    posterior = mixture_->Posterior(items);
    int r = 0;
    for (const ScoredItem& s : mixture_->Top(posterior, pool, *allowed, items)) {
      add(s.item).taste = static_cast<float>(++r);
    }
  }
  {
    int r = 0;
    for (int32_t i : by_popularity_) {
      if (r >= kPopularPool) break;
      if (allowed->contains(static_cast<uint32_t>(i))) add(i).pop = static_cast<float>(++r);
    }
  }

  const Column* brand = catalog_.column("brand");
  const Column* category = catalog_.column("category");
  const Column* price = catalog_.column("price");
  float median_price = kMissing;
  if (price != nullptr && price->type == ColumnType::kNumeric) {
    std::vector<double> prices;
    for (int32_t h : items) {
      const double x = price->numbers[static_cast<size_t>(h)];
      if (std::isfinite(x) && x > 0) prices.push_back(x);
    }
    if (!prices.empty()) {
      std::nth_element(prices.begin(), prices.begin() + prices.size() / 2, prices.end());
      median_price = static_cast<float>(prices[prices.size() / 2]);
    }
  }
  const float activity = std::log1p(static_cast<float>(items.size()));
  const AttributeProfile::Taste taste = attribute_profile_.Of(items);
  const size_t dim = vectors_->cols;
  CandidatePool out;
  out.items = merged;
  out.features.assign(merged.size() * kNumFeatures, kMissing);
  out.fused.resize(merged.size());
  for (size_t j = 0; j < merged.size(); ++j) {
    const int32_t c = merged[j];
    const float* v = vectors_->row(static_cast<size_t>(c));
    float* f = out.features.data() + j * kNumFeatures;
    out.fused[j] = f[kFused] = simd::InnerProduct(scaled.data(), v, dim);
    for (const BlockLayout& b : layout_) {
      const float x = simd::InnerProduct(query->data() + b.offset, v + b.offset, b.dim);
      const int which = b.name == "cf"        ? kCf
                        : b.name == "content" ? kContent
                        : b.name == "visual"  ? kVisual
                        : b.name == "pop"     ? kPop
                                              : kNew;
      f[which] = x;
    }
    if (neighbors_) {
      float s = 0, strongest = 0;
      for (int32_t h : items) {
        const float x = Similarity(*neighbors_, h, c);
        s += x;
        strongest = std::max(strongest, x);
      }
      f[kItemItem] = s;
      f[kItemItemMax] = strongest;
    }
    const AttributeProfile::Lift lift = taste.Of(c);
    f[kAttributeLift] = lift.sum;
    f[kAttributeLiftMin] = lift.min;
    if (mixture_) f[kTaste] = mixture_->Score(posterior, c);
    f[kTasteRank] = ranks[j].taste;
    f[kAnnRank] = ranks[j].ann;
    f[kItemItemRank] = ranks[j].item_item;
    f[kPopRank] = ranks[j].pop;
    f[kLogInteractions] = std::log1p(popularity(c));
    f[kUserActivity] = activity;
    f[kBrandAffinity] = Affinity(brand, items, c);
    f[kCategoryAffinity] = Affinity(category, items, c);
    if (price != nullptr && price->type == ColumnType::kNumeric && median_price > 0) {
      const double x = price->numbers[static_cast<size_t>(c)];
      if (std::isfinite(x)) f[kPriceRatio] = static_cast<float>(x) / median_price;
    }
    f[kCold] = is_cold(c) ? 1.0f : 0.0f;
  }
  AddPoolRelativeFeatures(&out.features, merged.size());
  return out;
}

Result<std::vector<Hit>> Engine::RankedSearch(std::span<const int32_t> items,
                                              std::span<const float> weights, const QueryParams& q,
                                              const std::vector<int32_t>& drop) const {
  Bitmap allowed;
  RequestRules rules;
  std::vector<float> query;
  VITRINE_ASSIGN_OR_RETURN(CandidatePool pool,
                           Candidates(items, weights, q, drop, &allowed, &rules, &query));
  const size_t n = pool.items.size();
  const auto t_rerank = std::chrono::steady_clock::now();
  // A pool of cold items only (new arrivals, a rule keeping only them) is
  // outside what the ranker learned from: its labels are interactions, which
  // cold items barely have. The hybrid order ranks such pools better (cold
  // recall 0.0531 against 0.0492-0.0520 on the demo split, docs/ranker.md).
  const bool all_cold = n > 0 && std::all_of(pool.items.begin(), pool.items.end(),
                                              [&](int32_t c) { return is_cold(c); });
  std::vector<float> scores;
  if (all_cold) {
    scores = pool.fused;
  } else if (rank_by_item_item_) {
    // The item-item score first; candidates it does not hold (ANN or
    // popularity only) after them, in fused order, mapped into (-1.5, -0.5).
    scores.resize(n);
    for (size_t j = 0; j < n; ++j) {
      const float ii = pool.features[j * kNumFeatures + kItemItem];
      const float fused = pool.fused[j];
      scores[j] = ii > 0 ? ii : -1.0f + 0.5f * fused / (1.0f + std::fabs(fused));
    }
  } else {
    VITRINE_ASSIGN_OR_RETURN(scores, ranker_->Predict(pool.features, n));
  }
  const bool diversify = q.diversity != Diversity::kNone;
  if (diversify && n > 0) {
    // MMR and DPP trade relevance against cosine similarity: bring the
    // ranker's margins onto [0, 1] first.
    const auto [lo, hi] = std::minmax_element(scores.begin(), scores.end());
    const float a = *lo, span = *hi - *lo;
    for (float& s : scores) s = span > 0 ? (s - a) / span : 1.0f;
  }
  const size_t dim = vectors_->cols;
  UnitVectors unit(diversify ? n : 0, dim);
  std::vector<Candidate> cands;
  cands.reserve(n);
  for (size_t j = 0; j < n; ++j) {
    const float* v = vectors_->row(static_cast<size_t>(pool.items[j]));
    cands.push_back({pool.items[j], scores[j], diversify ? unit.Add(v) : nullptr});
  }
  VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked,
                           Rerank(cands, rules, RerankOptionsOf(q, dim), &allowed));
  std::vector<Hit> hits = ToHits(std::move(ranked), rules);
  if (q.stats != nullptr) {
    q.stats->pool = static_cast<int64_t>(n);
    q.stats->rerank_seconds += SecondsSince(t_rerank);
  }
  Explain(query, q, items, &hits);
  if (q.explain && all_cold) {
    for (Hit& h : hits) h.reason += "; ranked on the hybrid score (new items only)";
  } else if (q.explain && rank_by_item_item_) {
    for (Hit& h : hits) h.reason += "; ranked on item_item (it beat the ranker at build)";
  } else if (q.explain) {
    std::unordered_map<int32_t, size_t> row;
    for (size_t j = 0; j < n; ++j) row.emplace(pool.items[j], j);
    for (Hit& h : hits) {
      auto it = row.find(h.item);
      if (it == row.end()) continue;  // a pin from outside the pool
      VITRINE_ASSIGN_OR_RETURN(
          Explanation e, ranker_->Explain(std::span<const float>(pool.features)
                                              .subspan(it->second * kNumFeatures, kNumFeatures)));
      e.contributions.resize(std::min<size_t>(3, e.contributions.size()));
      h.ranker_features = std::move(e.contributions);
      std::string names;
      for (const FeatureContribution& c : h.ranker_features) {
        names += (names.empty() ? "" : ", ") + c.name;
      }
      h.reason += "; ranked on " + names;
    }
  }
  return hits;
}

}  // namespace vitrine
