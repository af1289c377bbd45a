#include "engine/private_build.h"

#include <cmath>
#include <map>
#include <random>
#include <string>

#include "core/dp_accountant.h"
#include "core/progress.h"

namespace vitrine {
namespace {

std::mt19937_64 NoiseSource(uint64_t seed) {
  if (seed != 0) return std::mt19937_64(seed);
  std::random_device device;
  std::seed_seq seq{device(), device(), device(), device(), device(), device()};
  return std::mt19937_64(seq);
}

}  // namespace

Result<PrivateReleases> TrainPrivately(const DpOptions& dp, const AlsOptions& als,
                                       const Interactions& inter, int32_t items) {
  VITRINE_ASSIGN_OR_RETURN(DpPlan plan, PlanDp(dp));
  std::mt19937_64 rng = NoiseSource(dp.noise_seed);
  ZcdpLedger ledger;
  PrivateReleases out;

  std::vector<int64_t> kept;
  const CsrMatrix bounded = BoundContributions(inter.matrix, dp.max_items_per_user, &rng, &kept);
  LogInfo(
      "differential privacy: epsilon %g, delta %g; at most %d items per user (%lld of %lld "
      "user-item pairs kept)",
      dp.epsilon, dp.delta, dp.max_items_per_user, static_cast<long long>(bounded.nnz()),
      static_cast<long long>(inter.matrix.nnz()));

  {
    StageTimer t("private ALS");
    VITRINE_ASSIGN_OR_RETURN(PrivateAlsResult fit,
                             FitPrivateAls(bounded, als, dp, plan, &rng, &ledger));
    out.item_factors = std::move(fit.item_factors);
    out.user_factors = std::move(fit.user_factors);
    t.Done(std::to_string(als.factors) + " factors, " + std::to_string(dp.iterations) +
           " iterations");
  }

  // Popularity: each user adds at most 1 to at most k items.
  const double pop_sensitivity = std::sqrt(static_cast<double>(dp.max_items_per_user));
  const double pop_sigma = GaussianSigma(pop_sensitivity, plan.rho_popularity);
  std::vector<float> counts(static_cast<size_t>(items), 0.0f);
  for (int32_t c : bounded.indices) counts[static_cast<size_t>(c)] += 1.0f;
  out.popularity = NoisyCounts(counts, pop_sigma, &rng);
  ledger.Add("item interaction counts", pop_sensitivity, pop_sigma);

  // Trend counts: each kept (user, item) pair is one event at its latest
  // time, so a user adds at most 1 to at most k (item, hour) keys. Keys are
  // defined by the data, so only those above the threshold are released.
  const double trend_sigma = GaussianSigma(pop_sensitivity, plan.rho_trend);
  const double tau = PartitionThreshold(trend_sigma, dp.max_items_per_user, plan.threshold_delta);
  std::map<std::pair<int32_t, int64_t>, double> hours;
  for (size_t q = 0; q < kept.size(); ++q) {
    const int64_t t = inter.timestamps.empty() ? 0 : inter.timestamps[static_cast<size_t>(kept[q])];
    if (t <= 0) continue;
    hours[{bounded.indices[q], t / 3600}] += 1.0;
  }
  int64_t released = 0;
  if (!hours.empty()) {
    std::normal_distribution<double> noise(0.0, trend_sigma);
    for (const auto& [key, count] : hours) {
      const double noisy = count + noise(rng);
      if (noisy < tau) continue;
      out.activity.Add(ItemActivity::Bucket{key.first, key.second, noisy, noisy});
      ++released;
    }
    ledger.Add("trend counts per item and hour", pop_sensitivity, trend_sigma);
  }
  const double epsilon_spent = ledger.Epsilon(plan.conversion_delta);
  LogInfo(
      "differential privacy: %zu releases, rho %.4g -> epsilon %.4g at delta %g (+ %g for "
      "thresholds); %lld of %zu trend buckets released",
      ledger.entries().size(), ledger.total_rho(), epsilon_spent, plan.conversion_delta,
      plan.threshold_delta, static_cast<long long>(released), hours.size());

  nlohmann::json releases = nlohmann::json::array();
  for (const auto& e : ledger.entries()) {
    releases.push_back(
        {{"what", e.what}, {"sensitivity", e.sensitivity}, {"sigma", e.sigma}, {"rho", e.rho}});
  }
  out.manifest = {
      {"epsilon", dp.epsilon},
      {"delta", dp.delta},
      {"epsilon_spent", epsilon_spent},
      {"rho", ledger.total_rho()},
      {"accountant", "zCDP (Bun & Steinke 2016), Gaussian mechanism"},
      {"unit", "user"},
      {"max_items_per_user", dp.max_items_per_user},
      {"weights_clipped_to", 1.0},
      {"factor_norm_bound", dp.factor_norm_bound},
      {"iterations", dp.iterations},
      {"threshold_delta", plan.threshold_delta},
      {"trend_threshold", hours.empty() ? 0.0 : tau},
      {"noise", dp.noise_seed != 0 ? "seeded (reproducible: not a privacy guarantee)"
                                   : "std::random_device"},
      {"releases", releases},
      {"private", {"item factors", "popularity", "cold-item flags", "trend counts"}},
      {"left_out",
       {"gift counts", "item-item neighbours (co-occurrence)", "taste mixture", "learned ranker",
        "arrival dates from first interactions"}},
      {"per_user_rows",
       dp.user_rows ? "kept: each user's id, factors and history, their own data (billboard "
                      "model), not private from whoever reads the bundle"
                    : "none: no user ids, factors, histories or exact counts"}};
  return out;
}

}  // namespace vitrine
