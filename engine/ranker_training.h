// Training the learned ranker during `vitrine build` (docs/ranker.md):
//
//   1. Hold out each user's latest interactions (HoldOutLatest, the rule of
//      `vitrine split`) from the training interactions.
//   2. Build a validation bundle on the rest, with the same options, beside
//      the final one, and open it as an Engine.
//   3. For a seeded sample of the users with held-out items, take the
//      candidate pool and its features exactly as serving computes them
//      (Engine::Candidates); a candidate is relevant if it was held out.
//   4. Train LambdaMART (rank:ndcg) on those groups.
//
//   5. Check it on every fifth usable user, kept out of training: if ordering
//      their pools by the item-item score alone, or by the hybrid (fused)
//      score, gives a higher NDCG@10, the bundle answers with the best of
//      those (manifest ranker.scorer "item_item" or "hybrid"); otherwise with
//      the ranker ("ranker").
//
// The final bundle's sources are rebuilt on all interactions; the ranker only
// sees feature values, never item or user ids, so it carries over. Too little
// data (fewer than `min_users` users with a held-out item in their pool) is
// not an error: the build says so and keeps the hybrid.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/catalog.h"
#include "core/interactions.h"
#include "core/status.h"

namespace vitrine {

struct BuildOptions;

// The manifest's ranker.scorer values.
inline constexpr char kScorerRanker[] = "ranker";
inline constexpr char kScorerItemItem[] = "item_item";
inline constexpr char kScorerHybrid[] = "hybrid";  // the fused score, as with --ranker off

// The latest `fraction` of each user's interactions (at least one, for users
// with two or more; ordered by timestamp, ties by item column).
struct HeldOut {
  Interactions train;  // the rest, same users and items
  CsrMatrix test;      // users x items, the held-out pairs
  int64_t users_with_test = 0;
};
HeldOut HoldOutLatest(const Interactions& inter, double fraction);

// Steps 1-4 above for the bundle being built at `out`. Returns the
// serialised model (rank/learned_ranker.h format), or nullopt when the data
// is too small; `report` receives the manifest's "ranker" section.
Result<std::optional<std::string>> TrainRankerForBuild(const BuildOptions& options,
                                                       const Catalog& catalog,
                                                       const Interactions& interactions,
                                                       const std::filesystem::path& out,
                                                       nlohmann::json* report);

}  // namespace vitrine
