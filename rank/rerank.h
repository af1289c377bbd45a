// Rerank: the final ranking of a retrieved candidate pool for one request,
// under that request's rules (RequestRules, rank/rules.h): filters, boosts,
// pins, caps and optional diversification (MMR or DPP, rank/diversify.h).
// rank/rules.h includes this header, so users of the rules API see it too.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "index/attribute_index.h"
#include "rank/diversify.h"

namespace vitrine {

class RequestRules;

enum class Diversity { kNone, kMMR, kDPP };

// What Rerank selects: how many, and with which diversity.
struct RerankOptions {
  int k = 10;                              // results wanted
  Diversity diversity = Diversity::kNone;  // selector: plain top-k, MMR or DPP
  float lambda = 0.7f;  // MMR relevance weight
  float theta = 0.7f;   // DPP relevance/diversity trade-off
  int dim = 0;          // candidate vector dim (MMR/DPP)
};

struct RankedItem {
  int32_t item = 0;
  float score = 0;              // after boosts; pinned items outside the pool: 0
  bool pinned = false;          // placed by a PIN rule
  std::vector<int> rule_lines;  // BOOST/BURY/PIN rules that applied
};

// Final ranking of a candidate pool under `rules` for one request:
//   1. drops candidates not in `allowed` (if given) or not Allowed() by the
//      rules, and repeated items (first occurrence kept);
//   2. takes the active pins whose item is allowed, in rule order, skipping a
//      pin that would break a cap (pins count toward caps);
//   3. scales scores by BoostFactor;
//   4. selects k - (#pins) items by score, MMR or DPP under the caps;
//   5. places the pins (ApplyPins).
// Returns min(k, what is allowed and fits the caps) items. Pinned items do not
// take part in the MMR/DPP similarity terms (they may lack vectors). The
// caller computes intra-list diversity from the returned items' vectors
// (IntraListDiversity). Thread-safe.
Result<std::vector<RankedItem>> Rerank(std::span<const Candidate> candidates,
                                       const RequestRules& rules, const RerankOptions& options,
                                       const Bitmap* allowed = nullptr);

}  // namespace vitrine
