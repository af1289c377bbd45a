// The interaction-derived releases of a differentially private build
// (`vitrine build --dp-epsilon E`, docs/privacy.md): what BuildFromData
// writes instead of the ordinary fit when BuildOptions::dp is on.
//
//   interactions ──> BoundContributions (k items per user, weights <= 1)
//       ├─> FitPrivateAls ──> item factors (released), user factors (own rows)
//       ├─> item counts + Gaussian noise ──> popularity, cold flags
//       └─> (item, hour) counts, noise, threshold ──> trend activity
//
// Every release goes into one zCDP ledger; the manifest's
// "differential_privacy" section records the budget, the bounds, each
// release's sensitivity and noise, and the (epsilon, delta) they add up to.
// What a private bundle leaves out because it has no private version (gift
// counts, item-item neighbours, the taste mixture, the learned ranker,
// arrival dates taken from first interactions) is listed there too.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/interactions.h"
#include "core/item_activity.h"
#include "core/matrix.h"
#include "core/status.h"
#include "embed/als.h"
#include "embed/private_als.h"

namespace vitrine {

struct PrivateReleases {
  Matrix item_factors;            // released
  Matrix user_factors;            // each user's own row
  std::vector<float> popularity;  // noisy interaction counts per item (>= 0)
  ItemActivity activity;          // noisy, thresholded (item, hour) counts
  nlohmann::json manifest;        // the "differential_privacy" section
};

// Trains every interaction-derived release of the bundle privately.
Result<PrivateReleases> TrainPrivately(const DpOptions& dp, const AlsOptions& als,
                                       const Interactions& inter, int32_t items);

}  // namespace vitrine
