// Tune: picks a bundle's build configuration on the shopper data it will
// serve, instead of defaults measured on somebody else's (docs/tuning.md).
//
// A temporal validation split is carved out of the training interactions
// (each user's latest `validation_fraction`, HoldOutLatest), and every trial
// is scored by NDCG@10 on it over a seeded sample of users:
//
//   1. item-item: the candidate source's method and its strength (EASE
//      lambda, cosine shrink), fitted on the older interactions alone and
//      scored as a recommender of its own. Cheap: no bundle.
//   2. retrieval: ALS factors, regularisation, alpha and iterations, the cold
//      threshold and the block weights. Trial 0 is the starting
//      configuration; the others are drawn at random from a fixed grid. Each
//      builds a bundle without the ranker on the older interactions and
//      scores its hybrid answers.
//   3. ranker: the best configuration so far, with and without the learned
//      ranker (its own validation build nested inside); the better one wins.
//
// Every trial is seeded from `seed`, so the same seed and the same number of
// trials give the same choice and the same table. `budget_seconds` stops the
// search before a trial that would end past it (estimated from the trials
// so far); the result then says so, and a rerun with `max_trials` set to the
// number that ran repeats it exactly.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/catalog.h"
#include "core/interactions.h"
#include "core/status.h"
#include "engine/builder.h"

namespace vitrine {

struct TuneOptions {
  double budget_seconds = 600;
  int max_trials = 30;  // retrieval trials, the starting configuration included (>= 1)
  uint64_t seed = 42;
  double validation_fraction = 0.2;  // of each user's latest interactions, (0, 1)
  int64_t eval_users = 3000;         // validation users scored per trial (a seeded sample)
  bool tune_ranker = true;           // stage 3
  // Where trial bundles are built (removed afterwards); must be writable.
  std::filesystem::path scratch_dir;
};

struct TuneTrial {
  std::string stage;   // "item-item", "retrieval" or "ranker"
  int index = 0;       // within the stage
  nlohmann::json params;
  double ndcg = 0;     // validation NDCG@10
  double seconds = 0;  // wall time of the trial
};

struct TuneResult {
  BuildOptions best;               // the starting options with the winners applied
  nlohmann::json chosen;           // the tuned parameters, by name
  std::vector<TuneTrial> trials;   // in the order they ran
  bool budget_reached = false;     // some planned trials did not run
  int64_t validation_users = 0;
  double seconds = 0;

  // The manifest's "tuning" section: seed, split, chosen, trials.
  nlohmann::json ToJson(const TuneOptions& options) const;
  // A TOML file that `vitrine build --config` reads back.
  Result<std::string> ToToml() const;
};

// Called after each trial with the trials done and planned so far and the
// estimated seconds left.
using TuneProgress = std::function<void(const TuneTrial&, int done, int planned, double eta)>;

// Errors: bad options (InvalidArgument), too few users with a validation
// item (InvalidArgument: at least 50 are needed), a failing trial build.
Result<TuneResult> Tune(const BuildOptions& start, const Catalog& catalog,
                        const Interactions& interactions, const TuneOptions& options,
                        const TuneProgress& progress = {});

}  // namespace vitrine
