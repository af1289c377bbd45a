// EvaluateBundle: `vitrine evaluate` as one call, so the CLI and the Python
// binding score a bundle with the same code. It reads a held-out interactions
// file, lines it up with the bundle's users, and evaluates the bundle's own
// answers (EngineRecommender), its block ablations, the item-item source and
// the baselines (engine/baselines.h) on the same split and options.
//
// Progress goes to stderr as in every long stage (core/progress.h): one
// LogInfo line per skipped model or dropped test users, one StageTimer line
// per model evaluated and for the candidate pool recall. Formatting the
// results is the caller's job.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/interactions.h"
#include "core/status.h"
#include "engine/engine.h"
#include "engine/engine_recommender.h"
#include "engine/evaluate.h"
#include "engine/evaluate_next_step.h"

namespace vitrine {

// Every model EvaluateBundle knows, in the order it lists them by default:
//   default       the bundle's answers: the learned ranker over the merged
//                 pool (skipped when the bundle has no ranker)
//   hybrid        the ranker off: the fused ANN score
//   cold-start    the bundle's answers ranking only the cold items
//   cf-only, content-only, visual-only
//                 that block of the fused vector alone (skipped when the
//                 bundle has no such block)
//   item-item     the item-item neighbours alone (skipped when absent)
//   taste         the taste mixture alone (skipped when absent)
//   toppop, itemknn, ease
//                 baselines fitted on the bundle's train matrix (ease is
//                 skipped when its solve fails, e.g. too many items)
//   explore-0.1, explore-0.3
//                 default (or hybrid without a ranker) with that share of
//                 the slots given to new and cold items (QueryParams::
//                 exploration); any explore-<share in (0, 1]> is accepted
inline constexpr std::array<std::string_view, 13> kBundleEvalModels = {
    "default",   "hybrid",  "cold-start",  "cf-only",    "content-only", "visual-only", "item-item",
    "taste",     "toppop",  "itemknn",     "ease",       "explore-0.1",  "explore-0.3"};

// A name EvaluateBundle knows: one of kBundleEvalModels or explore-<share>.
bool IsBundleEvalModel(std::string_view name);

struct BundleEvalOptions {
  std::string test_path;  // held-out interactions CSV (see `vitrine split`); required
  int k = 10;             // list length scored, >= 1
  // Block weights of default, hybrid and cold-start; empty = the bundle's.
  std::map<std::string, float> weights;
  // Names from kBundleEvalModels, evaluated in this order (repeats allowed).
  std::vector<std::string> models =
      std::vector<std::string>(kBundleEvalModels.begin(), kBundleEvalModels.end());
  // Evaluate a seeded sample of at most this many test users; <= 0 = all.
  // The candidate pool recall samples the same number, or 2000 when <= 0.
  int64_t max_users = 0;
  InteractionsReadOptions read;  // columns and event weights of the test file
  // A rules file (docs/rules.md) applied to the bundle's models except
  // cold-start; with them every report gets a compliance score. They must be
  // request-independent. Empty = no rules, no compliance.
  std::string rules_path;
  // The next-step hit rate (engine/evaluate_next_step.h) over this catalog
  // column; skipped (with a note on stderr) when the column is missing or
  // unsuitable or the bundle has no timestamps, unless next_step_required,
  // when that is an error. "" = never. Skipped too when no test user has a
  // timed new item.
  std::string next_step_column = "category";
  bool next_step_required = false;
};

struct BundleEvaluation {
  int k = 10;
  // One per model evaluated, in the order of BundleEvalOptions::models;
  // skipped models are absent. EvalReport::model is the model's name.
  std::vector<EvalReport> reports;
  bool has_compliance = false;  // rules were given: reports carry compliance
  int64_t dropped_users = 0;    // test users unknown to the bundle (skipped)
  int64_t cold_items = 0;       // cold items of the bundle
  // Expected cold_recall@k of a random list of k cold items: k / cold_items,
  // at most 1; NaN when the bundle has no cold items.
  double random_cold_recall = std::numeric_limits<double>::quiet_NaN();
  // Share of the test items the merged candidate pool holds: whether
  // retrieval or ranking limits quality. Set only when the bundle has a
  // learned ranker or item-item neighbours.
  std::optional<PoolRecall> pool;
  // Next-item hit rate of the next-step intent and its baselines, when
  // BundleEvalOptions::next_step_column applies.
  std::optional<NextStepEvaluation> next_step;
};

// Evaluates `options.models` of `engine` against `options.test_path`.
// InvalidArgument when k is outside [1, 1000], when a model name is unknown (naming it and the
// known ones; checked before any file is read), when the bundle was built
// without interactions, or when the rules depend on the request; the
// Status of the test file, the rules file, a baseline's Fit or an
// evaluation otherwise.
[[nodiscard]] Result<BundleEvaluation> EvaluateBundle(const Engine& engine,
                                                      const BundleEvalOptions& options);

}  // namespace vitrine
