#include "engine/tune.h"

#include <chrono>
#include <cmath>
#include <random>
#include <sstream>

#include "core/file_util.h"
#include "core/progress.h"
#include "engine/build_config.h"
#include "engine/engine.h"
#include "engine/engine_recommender.h"
#include "engine/evaluate.h"
#include "engine/ranker_training.h"

namespace vitrine {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
// Trial bundles search exactly: the choice must not depend on ANN error, and
// an HNSW graph built on several threads differs from run to run.
constexpr char kExactIndex[] = "Flat";
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The retrieval grid. Wide on purpose: a catalog of dense fashion sessions
// and one of long-tail ratings want regularisation 100x apart.
const std::vector<int> kFactors = {16, 32, 64, 128};
const std::vector<float> kRegularization = {0.01f, 0.1f, 1.0f, 10.0f, 100.0f, 300.0f};
const std::vector<float> kAlpha = {1.0f, 3.0f, 10.0f, 30.0f};
const std::vector<int> kIterations = {10, 15, 25};
const std::vector<int64_t> kColdThreshold = {1, 2, 5, 10};
const std::vector<double> kColdNormQuantile = {0.1, 0.25, 0.5, 0.75};
const std::vector<float> kContentWeight = {0.0f, 0.1f, 0.2f, 0.5f};
const std::vector<float> kVisualWeight = {0.0f, 0.05f, 0.2f};
const std::vector<float> kPopWeight = {0.0f, 0.2f, 0.4f, 0.8f};

// The item-item candidates: EASE at four strengths, cosine at three.
struct NeighborTrial {
  ItemNeighborsOptions::Method method;
  double strength;  // EASE lambda or cosine shrink
};
const std::vector<NeighborTrial> kNeighborTrials = {
    {ItemNeighborsOptions::Method::kEase, 50},   {ItemNeighborsOptions::Method::kEase, 200},
    {ItemNeighborsOptions::Method::kEase, 500},  {ItemNeighborsOptions::Method::kEase, 2000},
    {ItemNeighborsOptions::Method::kCosine, 10}, {ItemNeighborsOptions::Method::kCosine, 100},
    {ItemNeighborsOptions::Method::kCosine, 300}};

template <typename T>
T Pick(const std::vector<T>& grid, std::mt19937_64& rng) {
  return grid[std::uniform_int_distribution<size_t>(0, grid.size() - 1)(rng)];
}

float Weight(const BuildOptions& o, const std::string& block) {
  auto it = o.block_weights.find(block);
  return it == o.block_weights.end() ? 0.0f : it->second;
}

// A float parameter as the grid wrote it (0.1, not 0.10000000149011612).
double Short(float x) { return std::stod(std::to_string(x)); }

nlohmann::json RetrievalParams(const BuildOptions& o) {
  return {{"factors", o.als.factors},
          {"regularization", Short(o.als.regularization)},
          {"alpha", Short(o.als.alpha)},
          {"iterations", o.als.iterations},
          {"cold_threshold", o.cold_start.min_interactions},
          {"cold_norm_quantile", Short(o.cold_start.norm_quantile)},
          {"weight_content", Short(Weight(o, "content"))},
          {"weight_visual", Short(Weight(o, "visual"))},
          {"weight_pop", Short(Weight(o, "pop"))}};
}

nlohmann::json NeighborParams(const ItemNeighborsOptions& o) {
  nlohmann::json j = {{"item_neighbors", MethodName(o.method)}};
  if (o.method == ItemNeighborsOptions::Method::kEase) {
    j["ease_lambda"] = o.ease_lambda;
  } else {
    j["shrink"] = o.shrink;
  }
  return j;
}

// Silences the trial builds' stage lines; restores the caller's setting.
struct QuietScope {
  bool was = Quiet();
  QuietScope() { SetQuiet(true); }
  ~QuietScope() { SetQuiet(was); }
};

struct TrialDir {
  fs::path path;
  ~TrialDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

nlohmann::json TuneResult::ToJson(const TuneOptions& options) const {
  nlohmann::json t = nlohmann::json::array();
  for (const TuneTrial& x : trials) {
    t.push_back({{"stage", x.stage},
                 {"index", x.index},
                 {"params", x.params},
                 {"ndcg_at_10", x.ndcg},
                 {"seconds", std::round(x.seconds * 10) / 10}});
  }
  return {{"seed", options.seed},
          {"validation_fraction", options.validation_fraction},
          {"validation_users", validation_users},
          {"budget_seconds", options.budget_seconds},
          {"budget_reached", budget_reached},
          {"chosen", chosen},
          {"trials", t}};
}

Result<std::string> TuneResult::ToToml() const {
  return WriteBuildConfig(best,
                          {"als.factors", "als.regularization", "als.alpha", "als.iterations",
                           "cold_start.min_interactions", "cold_start.norm_quantile", "weights", "item_neighbors.method",
                           "item_neighbors.ease_lambda", "item_neighbors.shrink", "ranker.enabled"},
                          "Chosen by `vitrine tune` on a temporal validation split; `vitrine build\n"
                          "--config` reads it back.");
}

Result<TuneResult> Tune(const BuildOptions& start, const Catalog& catalog,
                        const Interactions& inter, const TuneOptions& t,
                        const TuneProgress& progress) {
  if (!(t.validation_fraction > 0 && t.validation_fraction < 1)) {
    return Status::InvalidArgument("tune: validation fraction must be in (0, 1), got " +
                                   std::to_string(t.validation_fraction));
  }
  if (t.max_trials < 1) return Status::InvalidArgument("tune: trials must be at least 1");
  if (!(t.budget_seconds > 0)) return Status::InvalidArgument("tune: budget must be positive");
  if (t.eval_users < 1) return Status::InvalidArgument("tune: eval users must be at least 1");
  const auto t0 = Clock::now();
  HeldOut held = HoldOutLatest(inter, t.validation_fraction);
  constexpr int64_t kMinUsers = 50;
  if (held.users_with_test < kMinUsers) {
    return Status::InvalidArgument(
        "tune: only " + std::to_string(held.users_with_test) +
        " users have two or more interactions to validate on (need " +
        std::to_string(kMinUsers) + "); build with the defaults instead");
  }
  TuneResult r;
  r.best = start;
  r.validation_users = std::min(held.users_with_test, t.eval_users);
  EvalOptions eo;
  eo.k = 10;
  eo.max_users = t.eval_users;
  eo.seed = t.seed;

  const bool has_ranker_stage = t.tune_ranker && start.ranker.enabled;
  const int planned_total = static_cast<int>(kNeighborTrials.size()) + t.max_trials +
                            (has_ranker_stage ? 1 : 0);
  int done = 0;
  // Stops before a trial expected to end past the budget: the mean trial
  // time of the stage so far is the estimate.
  auto over_budget = [&](double expected) {
    if (Since(t0) + expected <= t.budget_seconds) return false;
    r.budget_reached = true;
    return true;
  };
  auto report = [&](TuneTrial trial, double stage_mean, int stage_left) {
    r.trials.push_back(trial);
    ++done;
    if (progress) progress(r.trials.back(), done, planned_total, stage_mean * stage_left);
  };

  // 1. Item-item source.
  double best_nb = -1;
  {
    double spent = 0;
    for (size_t i = 0; i < kNeighborTrials.size(); ++i) {
      if (i > 0 && over_budget(spent / static_cast<double>(i))) break;
      const auto ts = Clock::now();
      ItemNeighborsOptions o = start.item_neighbors;
      o.method = kNeighborTrials[i].method;
      if (EffectiveMethod(o, held.train.matrix.cols) != o.method) continue;  // too many items
      (o.method == ItemNeighborsOptions::Method::kEase ? o.ease_lambda : o.shrink) =
          kNeighborTrials[i].strength;
      VITRINE_ASSIGN_OR_RETURN(ItemNeighbors nb, ItemNeighbors::Build(held.train.matrix, o));
      ItemNeighborsRecommender rec(nb);
      VITRINE_ASSIGN_OR_RETURN(EvalReport e, Evaluate(rec, held.train.matrix, held.test, eo));
      TuneTrial trial{"item-item", static_cast<int>(i), NeighborParams(o), e.ndcg, Since(ts)};
      spent += trial.seconds;
      if (e.ndcg > best_nb) {
        best_nb = e.ndcg;
        r.best.item_neighbors = o;
      }
      report(trial, spent / static_cast<double>(i + 1),
             static_cast<int>(kNeighborTrials.size() - i - 1));
    }
  }

  // 2. Retrieval: bundles without the ranker.
  std::mt19937_64 rng(t.seed);
  double best_retrieval = -1;
  BuildOptions best_retrieval_options = r.best;
  {
    std::error_code ec;
    fs::create_directories(t.scratch_dir, ec);
    if (ec) {
      return Status::IOError(t.scratch_dir.string() + ": cannot create the tuning scratch "
                             "directory: " + ec.message());
    }
  }
  {
    double spent = 0;
    for (int i = 0; i < t.max_trials; ++i) {
      BuildOptions o = r.best;
      if (i > 0) {  // drawn even when not run, so trial i is the same whatever ran before
        o.als.factors = Pick(kFactors, rng);
        o.als.regularization = Pick(kRegularization, rng);
        o.als.alpha = Pick(kAlpha, rng);
        o.als.iterations = Pick(kIterations, rng);
        o.cold_start.min_interactions = Pick(kColdThreshold, rng);
        o.block_weights["content"] = Pick(kContentWeight, rng);
        o.block_weights["visual"] = Pick(kVisualWeight, rng);
        o.block_weights["pop"] = Pick(kPopWeight, rng);
        o.cold_start.norm_quantile = Pick(kColdNormQuantile, rng);
      }
      if (i > 0 && over_budget(spent / i)) break;
      const auto ts = Clock::now();
      o.ranker.enabled = false;
      o.autotune = false;
      o.index.spec = kExactIndex;
      o.als.compute_loss = false;
      o.als.seed = o.content.seed = o.index.seed = t.seed;
      TrialDir dir{TempSiblingPath(t.scratch_dir / ("trial" + std::to_string(i)))};
      {
        QuietScope quiet;
        VITRINE_RETURN_IF_ERROR(BuildFromData(o, catalog, &held.train, dir.path).status());
      }
      VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Open(dir.path));
      QueryParams q;
      q.use_ranker = false;
      EngineRecommender rec(*engine, "hybrid", q);
      VITRINE_ASSIGN_OR_RETURN(EvalReport e, Evaluate(rec, engine->TrainMatrix(), held.test, eo));
      TuneTrial trial{"retrieval", i, RetrievalParams(o), e.ndcg, Since(ts)};
      spent += trial.seconds;
      if (e.ndcg > best_retrieval) {
        best_retrieval = e.ndcg;
        best_retrieval_options = o;
      }
      report(trial, spent / (i + 1), t.max_trials - i - 1);
    }
  }
  // Keep the start's ranker, seeds and build switches; take the tuned values.
  {
    BuildOptions b = r.best;
    b.als.factors = best_retrieval_options.als.factors;
    b.als.regularization = best_retrieval_options.als.regularization;
    b.als.alpha = best_retrieval_options.als.alpha;
    b.als.iterations = best_retrieval_options.als.iterations;
    b.cold_start.min_interactions = best_retrieval_options.cold_start.min_interactions;
    b.cold_start.norm_quantile = best_retrieval_options.cold_start.norm_quantile;
    b.block_weights = best_retrieval_options.block_weights;
    r.best = b;
  }

  // 3. The ranker against the best hybrid.
  if (has_ranker_stage && !over_budget(r.trials.empty() ? 0 : r.trials.back().seconds * 3)) {
    const auto ts = Clock::now();
    BuildOptions o = r.best;
    o.autotune = false;
    o.index.spec = kExactIndex;
    o.als.compute_loss = false;
    TrialDir dir{TempSiblingPath(t.scratch_dir / "ranker")};
    {
      QuietScope quiet;
      VITRINE_RETURN_IF_ERROR(BuildFromData(o, catalog, &held.train, dir.path).status());
    }
    VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Open(dir.path));
    double ndcg = -1;
    if (engine->ranker() != nullptr) {
      QueryParams q;
      q.use_ranker = true;
      EngineRecommender rec(*engine, "default", q);
      VITRINE_ASSIGN_OR_RETURN(EvalReport e, Evaluate(rec, engine->TrainMatrix(), held.test, eo));
      ndcg = e.ndcg;
    }
    TuneTrial trial{"ranker", 0, {{"ranker", engine->ranker() != nullptr ? "on" : "untrained"}},
                    std::max(ndcg, 0.0), Since(ts)};
    r.best.ranker.enabled = ndcg > best_retrieval;
    report(trial, trial.seconds, 0);
  }

  r.chosen = RetrievalParams(r.best);
  r.chosen.update(NeighborParams(r.best.item_neighbors));
  r.chosen["ranker"] = r.best.ranker.enabled ? "on" : "off";
  r.chosen["validation_ndcg_at_10"] = std::max(best_retrieval, 0.0);
  for (const TuneTrial& x : r.trials) {
    if (x.stage == "ranker" && r.best.ranker.enabled) r.chosen["validation_ndcg_at_10"] = x.ndcg;
  }
  r.seconds = Since(t0);
  return r;
}

}  // namespace vitrine
