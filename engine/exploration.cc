// Exploration for new and cold items (QueryParams::exploration, like
// Personalize's explorationWeight with an item-age cutoff): a share of a
// recommendation's slots goes to items the interactions cannot vouch for
// yet, the best of them by the request's own hybrid score (expected
// relevance, not chance). docs/retail.md has the measured trade-off.
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/simd.h"
#include "engine/engine.h"
#include "rank/diversify.h"

namespace vitrine {

// Up to this many candidate exploration items (after the request's filters)
// are all scored; above, a filtered ANN search finds the best of them.
constexpr uint64_t kExploreExactMaxItems = 20000;

Bitmap Engine::ExplorationItems(double max_age_days) const {
  Bitmap out;
  for (int32_t i = 0; i < catalog_.size(); ++i) {
    if (is_cold(i)) out.add(static_cast<uint32_t>(i));
  }
  // newness = 0.5^(age / half_life), so age <= max_age <=> newness >= this.
  if (!newness_.empty() && half_life_days_ > 0) {
    const double min_newness = std::pow(0.5, max_age_days / half_life_days_);
    for (size_t i = 0; i < newness_.size(); ++i) {
      if (newness_[i] >= min_newness) out.add(static_cast<uint32_t>(i));
    }
  }
  return out;
}

Status Engine::Explore(std::vector<float> query, const QueryParams& q,
                       const std::vector<int32_t>& drop, std::span<const int32_t> history,
                       std::vector<Hit>* hits) const {
  const int slots = static_cast<int>(std::lround(q.exploration * q.k));
  const Bitmap explore = ExplorationItems(q.explore_max_age_days);
  auto explores = [&](int32_t item) { return explore.contains(static_cast<uint32_t>(item)); };
  int already = 0;
  for (const Hit& h : *hits) already += explores(h.item) ? 1 : 0;
  const int need = slots - already;
  if (need <= 0) return Status::OK();

  // The request's allowed items and rules: the picks obey the same filters
  // and exclusions, and caps count every listed item, so a pick never breaks
  // one (conservative: the items a pick displaces are counted too).
  Bitmap allowed;
  RequestRules rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, drop, &allowed, &rules));
  allowed &= explore;
  CapTracker caps(rules.caps());
  std::unordered_set<int32_t> listed;
  for (const Hit& h : *hits) {
    caps.Add(h.item);
    listed.insert(h.item);
  }
  // The best exploration items for this query. Only the exploring items
  // already listed can come back; a few more stand in for picks a cap
  // refuses.
  const int want = std::min<int>(catalog_.size(), need + already + 4);
  std::vector<Hit> found;
  if (allowed.cardinality() <= kExploreExactMaxItems) {
    // Few enough to score them all: cheaper than a filtered HNSW walk over a
    // sparse subset (docs/retail.md has the measurement).
    const std::vector<float> unscaled = query;
    VITRINE_RETURN_IF_ERROR(ScaleQuery(layout_, q.weights, query.data()));
    const size_t dim = vectors_->cols;
    for (uint32_t i : allowed) {
      Hit h;
      h.item = static_cast<int32_t>(i);
      h.boost = rules.BoostFactor(h.item, &h.rule_lines);
      h.score = RequestRules::ApplyFactor(simd::InnerProduct(query.data(), vectors_->row(i), dim),
                                          h.boost);
      found.push_back(std::move(h));
    }
    const auto take = std::min(found.size(), static_cast<size_t>(want));
    std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(take),
                      found.end(), [](const Hit& a, const Hit& b) {
                        return a.score != b.score ? a.score > b.score : a.item < b.item;
                      });
    found.resize(take);
    Explain(unscaled, q, history, &found);
  } else {
    QueryParams eq = q;
    eq.allowed = &allowed;
    eq.k = want;
    eq.pool = 0;
    eq.diversity = Diversity::kNone;
    eq.exploration = 0;
    eq.stats = nullptr;
    eq.explain = false;
    VITRINE_ASSIGN_OR_RETURN(found, Search(std::move(query), eq, drop, history, std::nullopt));
  }
  std::vector<Hit> picks;
  for (Hit& h : found) {
    if (static_cast<int>(picks.size()) == need) break;
    if (h.pinned || listed.count(h.item) || !caps.CanAdd(h.item)) continue;
    caps.Add(h.item);
    h.reason += "; shown to explore (new or cold-start item)";
    picks.push_back(std::move(h));
  }
  if (picks.empty()) return Status::OK();

  // Make room: the lowest-ranked items that are neither pinned nor exploring.
  // What cannot make room (pins, items exploring on their own) keeps its
  // slot, and the picks shrink to fit: the answer never exceeds k.
  std::vector<Hit> kept = std::move(*hits);
  size_t drop_n = kept.size() + picks.size() > static_cast<size_t>(q.k)
                      ? kept.size() + picks.size() - static_cast<size_t>(q.k)
                      : 0;
  for (size_t i = kept.size(); i-- > 0 && drop_n > 0;) {
    if (kept[i].pinned || explores(kept[i].item)) continue;
    kept.erase(kept.begin() + static_cast<std::ptrdiff_t>(i));
    --drop_n;
  }
  picks.resize(std::min(picks.size(), static_cast<size_t>(q.k) - std::min(kept.size(),
                                                                          static_cast<size_t>(q.k))));
  if (picks.empty()) {
    *hits = std::move(kept);
    return Status::OK();
  }
  // Pins keep their positions; the other slots take the kept items in order
  // with the picks spread evenly among them.
  std::vector<std::pair<size_t, Hit>> pinned;
  std::vector<Hit> free;
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i].pinned) {
      pinned.emplace_back(i, std::move(kept[i]));
    } else {
      free.push_back(std::move(kept[i]));
    }
  }
  const size_t n_free = free.size() + picks.size();
  std::vector<Hit> merged;
  size_t next_free = 0;
  for (size_t slot = 0, p = 0; slot < n_free; ++slot) {
    // Pick j sits at slot floor((j + 0.5) * n_free / picks).
    const bool pick_here =
        p < picks.size() &&
        slot == static_cast<size_t>((static_cast<double>(p) + 0.5) * static_cast<double>(n_free) /
                                    static_cast<double>(picks.size()));
    if (pick_here || next_free == free.size()) {
      merged.push_back(std::move(picks[p++]));
    } else {
      merged.push_back(std::move(free[next_free++]));
    }
  }
  for (auto& [pos, h] : pinned) {
    merged.insert(merged.begin() + static_cast<std::ptrdiff_t>(std::min(pos, merged.size())),
                  std::move(h));
  }
  *hits = std::move(merged);
  return Status::OK();
}

}  // namespace vitrine
