// Rerank: filters, pins, boosts, caps and diversity over a candidate pool
// (see rerank.h).
#include "rank/rerank.h"

#include <bit>
#include <cstddef>
#include <string>

#include "rank/rules.h"

namespace vitrine {
namespace {

// Set of item indices for deduplicating a candidate pool: open addressing
// over a power-of-two table at most half full, one allocation per request.
class ItemSet {
 public:
  explicit ItemSet(size_t n) : bits_(std::bit_width(2 * n + 1)), slots_(size_t{1} << bits_, -1) {}
  // Adds `item` (>= 0); false if it was there already.
  bool Insert(int32_t item) {
    const size_t mask = slots_.size() - 1;
    // Fibonacci hashing: the top bits of the product mix all bits of the item.
    size_t h = (static_cast<uint64_t>(item) * 0x9E3779B97F4A7C15ull) >> (64 - bits_);
    for (;; h = (h + 1) & mask) {
      if (slots_[h] == item) return false;
      if (slots_[h] < 0) {
        slots_[h] = item;
        return true;
      }
    }
  }

 private:
  int bits_;
  std::vector<int32_t> slots_;
};

}  // namespace

Result<std::vector<RankedItem>> Rerank(std::span<const Candidate> candidates,
                                       const RequestRules& rules, const RerankOptions& options,
                                       const Bitmap* allowed) {
  const int k = options.k;
  if (k < 0) return Status::InvalidArgument("k must be >= 0, got " + std::to_string(k));
  auto is_allowed = [&](int32_t item) {
    return item >= 0 && (allowed == nullptr || allowed->contains(static_cast<uint32_t>(item))) &&
           rules.Allowed(item);
  };
  CapTracker tracker(rules.caps());
  // Pins first: they claim their positions and count toward the caps.
  std::vector<PinnedItem> pins;
  std::vector<int> pin_lines;  // parallel to pins
  std::vector<char> position_taken(static_cast<size_t>(k), 0);
  auto pin_of = [&](int32_t item) -> int {
    for (size_t p = 0; p < pins.size(); ++p) {
      if (pins[p].item == item) return static_cast<int>(p);
    }
    return -1;
  };
  for (const PinRule& p : rules.pins()) {
    if (p.position >= k || position_taken[p.position] || pin_of(p.item) >= 0 ||
        !is_allowed(p.item) || !tracker.CanAdd(p.item)) {
      continue;
    }
    tracker.Add(p.item);
    position_taken[p.position] = 1;
    pins.push_back(PinnedItem{p.item, p.position});
    pin_lines.push_back(p.line);
  }
  // The pool: allowed, unpinned, first occurrence, boosted scores. Rules are
  // evaluated for the whole batch (Evaluate); the rule lines of a boost are
  // looked up again only for the items returned.
  const size_t n = candidates.size();
  std::vector<int32_t> items(n);
  for (size_t j = 0; j < n; ++j) items[j] = candidates[j].item;
  std::vector<uint8_t> rules_allow(n);
  std::vector<double> factor(n);
  rules.Evaluate(items, rules_allow, factor);
  std::vector<Candidate> pool;
  pool.reserve(n);
  struct PinnedScore {
    float score = 0;
    bool in_pool = false;
  };
  std::vector<PinnedScore> pinned_scores(pins.size());
  ItemSet seen(n);
  for (size_t j = 0; j < n; ++j) {
    const Candidate& c = candidates[j];
    // A repeat of a dropped item is dropped too, so testing the filters
    // before the repeat check keeps the first occurrence as documented.
    if (c.item < 0 || !rules_allow[j] ||
        (allowed != nullptr && !allowed->contains(static_cast<uint32_t>(c.item))) ||
        !seen.Insert(c.item)) {
      continue;
    }
    Candidate b = c;
    b.score = RequestRules::ApplyFactor(c.score, factor[j]);
    if (const int p = pins.empty() ? -1 : pin_of(c.item); p >= 0) {
      pinned_scores[p] = {b.score, true};
      continue;
    }
    pool.push_back(b);
  }
  const int rest = k - static_cast<int>(pins.size());
  Result<std::vector<int>> sel = std::vector<int>{};
  switch (options.diversity) {
    case Diversity::kNone:
      sel = SelectTopK(pool, rest, &tracker);
      break;
    case Diversity::kMMR:
      sel = SelectMMR(pool, options.dim, rest, options.lambda, &tracker);
      break;
    case Diversity::kDPP:
      sel = SelectDPP(pool, options.dim, rest, options.theta, &tracker);
      break;
  }
  if (!sel.ok()) return sel.status();
  std::vector<int32_t> ranked;
  ranked.reserve(sel->size());
  for (int i : *sel) ranked.push_back(pool[i].item);
  std::vector<RankedItem> out;
  out.reserve(ranked.size() + pins.size());
  size_t next = 0;  // ApplyPins keeps the order of `ranked`
  // Without pins ApplyPins would return `ranked` (no repeats, at most k).
  for (int32_t item : pins.empty() ? ranked : ApplyPins(ranked, pins, k)) {
    RankedItem r;
    r.item = item;
    if (const int p = pin_of(item); p >= 0) {
      r.pinned = true;
      if (pinned_scores[p].in_pool) {
        r.score = pinned_scores[p].score;
        rules.BoostFactor(item, &r.rule_lines);
      }
      r.rule_lines.push_back(pin_lines[p]);
    } else {
      while (ranked[next] != item) ++next;
      r.score = pool[(*sel)[next]].score;
      rules.BoostFactor(item, &r.rule_lines);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace vitrine
