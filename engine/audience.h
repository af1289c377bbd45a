// Audiences (clienteling): the users most likely to want an item, for client
// advisors and campaigns.
//
//   AudienceRequest r;
//   r.item = "I000042";
//   r.query.k = 200;
//   auto a = engine->FindAudience(r);  // a->members: user, score, reason
//
// A user's score for an item is the hybrid score the item would get in that
// user's own recommendation (Engine::Recommend with --ranker off): the
// user's query vector (the ALS fold-in of their stored history in the cf
// block, the mean of their items in content and visual, each block a unit
// direction scaled by the bundle's default weight) dotted with the item's
// fused vector. The prior blocks (pop, new, trend) add the same amount for every
// user and are left out. So an audience is the inverse of a recommendation:
// "for whom would this item rank high".
//
// The user vectors are computed once per Engine, on the first audience
// request (users x dim floats: 1M users x 120 dims = 480 MB), and searched
// exactly up to kAudienceExactMaxUsers users, above that by an HNSW index over
// them built at the same time (docs/retail.md has its recall and QPS).
//
// Never listed: users in the bundle's opt-out list (`build --opt-out`), users
// in the request's opt_out, users without a stored history and (unless
// include_owners) users who already have the item.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"
#include "index/vector_index.h"

namespace vitrine {

// Up to this many users an audience is an exact scan over all user vectors.
inline constexpr int64_t kAudienceExactMaxUsers = 50000;

enum class AudienceSearch {
  kAuto,   // exact up to kAudienceExactMaxUsers users, else the HNSW index
  kExact,  // always the exact scan (the brute-force answer)
  kIndex,  // always the HNSW index (built even for few users; for tests and benchmarks)
};

// "auto", "exact" or "hnsw"; InvalidArgument listing them.
Result<AudienceSearch> ParseAudienceSearch(std::string_view name);

struct AudienceMember {
  int32_t user = -1;  // row of Engine::users()
  float score = 0;    // the item's hybrid score for this user (see above)
  int32_t because = -1;  // the history item most similar to the target item
  std::string reason;    // "interacted with I000012 (similar)"
};

// The user side of audiences, built once per Engine (Engine::FindAudience).
struct AudienceIndex {
  std::shared_ptr<const Matrix> users;  // users x dim, the scaled query vectors
  Bitmap listable;                      // users with a history, not opted out
  std::unique_ptr<VectorIndex> index;   // HNSW over `users`; null until needed
  // item -> users who have it in their stored history (the history transposed)
  std::vector<int64_t> owners_indptr;
  std::vector<int32_t> owners;
};

}  // namespace vitrine
