// Differentially private training (docs/privacy.md, "Differentially private
// training"): user-level (epsilon, delta)-DP for what a bundle releases from
// interactions, with every Gaussian release recorded in a zCDP ledger
// (core/dp_accountant.h).
//
// Contribution bounding. BoundContributions keeps at most
// max_items_per_user items per user (a uniform sample, so a user with 10,000
// events weighs as much as one with max_items_per_user) and clips every
// weight to [0, 1]. Every sensitivity below follows from that bound.
//
// Item factors: private alternating least squares (Chien, Jain, Krichene,
// Rendle, Song, Thakurta, Zhang, ICML 2021, "Private Alternating Least
// Squares"), in the implicit-feedback form of embed/als.h. Each iteration:
//   * user step, not released: x_u solves user u's normal equations against
//     the current (already private) item factors, then is clipped to
//     |x_u| <= factor_norm_bound (Gamma);
//   * item step, released: the item-side sufficient statistics
//       G   = a0 sum_u x_u x_u^T                    L2 sensitivity a0 Gamma^2
//       A_j = sum_{u in j} (c_uj - a0) x_u x_u^T    sqrt(k) (c_max - a0) Gamma^2
//       b_j = sum_{u in j} c_uj x_u                 sqrt(k) c_max Gamma
//     get Gaussian noise (symmetric for G and A_j), and item j solves
//     (P(G + A_j) + (lambda + 2 sqrt(d) (sigma_G + sigma_A)) I) y_j = b_j,
//     where P projects onto the positive semi-definite cone and the extra
//     ridge is the noise's expected spectral norm (both post-processing,
//     free of privacy cost; with no noise this is the exact ALS step).
// User factors are each user's own: computed from their data and the
// released item factors (the "billboard" model of Hsu et al. 2014), and
// stored only as that user's rows.
//
// Counts: per-item counts over a public domain (the catalog) get Gaussian
// noise on every item; counts over keys the data defines (an item's hours
// of activity) are released only above a threshold (Gaussian partition
// selection, PartitionThreshold), whose delta is part of the budget.
//
// Noise is drawn from std::random_device unless a seed is given; a known
// seed lets anyone subtract the noise, so it is for tests and experiments.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/dp_accountant.h"
#include "core/matrix.h"
#include "core/status.h"
#include "embed/als.h"

namespace vitrine {

struct DpOptions {
  double epsilon = 0;              // > 0 turns private training on
  double delta = 1e-6;             // (0, 0.1]; the thresholded releases use a share
  int max_items_per_user = 32;     // k, the contribution bound (>= 1)
  double factor_norm_bound = 1.0;  // Gamma, the clip of user factors (> 0)
  int iterations = 5;              // private ALS iterations (>= 1)
  // Shares of the zCDP budget: ALS, then the item counts (popularity) and
  // the trend counts; they are normalised to sum 1.
  double als_share = 0.8, popularity_share = 0.1, trend_share = 0.1;
  // Share of delta spent on thresholds; the rest converts zCDP to (eps, delta).
  double threshold_delta_share = 0.5;
  // 0 = draw noise from std::random_device (the guarantee); else a fixed seed.
  uint64_t noise_seed = 0;
  // Keep each user's own rows (id, factors, history) so that the bundle can
  // answer them; false leaves every per-user row out, and requests then send
  // the history (engine/private_build.h).
  bool user_rows = true;

  bool enabled() const { return epsilon > 0; }
  // InvalidArgument naming the flag (--dp-epsilon, --dp-delta,
  // --dp-max-items, --dp-iterations) for a value out of range.
  Status Validate() const;
};

// The per-release noise plan of a budget: rho per part, from which each
// release's sigma follows (sigma = sensitivity / sqrt(2 rho_release)).
struct DpPlan {
  double rho_total = 0;  // RhoFromEpsilon(epsilon, conversion delta)
  double conversion_delta = 0, threshold_delta = 0;
  double rho_als_release = 0;  // per release: 3 per iteration
  double rho_popularity = 0;   // one release
  double rho_trend = 0;        // one release
};
Result<DpPlan> PlanDp(const DpOptions& dp);

// Keeps at most k items per user row (uniform without replacement, so the
// kept rows' columns stay sorted) and clips weights to [0, 1]. `kept`, if
// given, receives the kept entries' positions in `user_items`.
CsrMatrix BoundContributions(const CsrMatrix& user_items, int k, std::mt19937_64* rng,
                             std::vector<int64_t>* kept = nullptr);

// Adds N(0, sigma^2) to the upper triangle of the d x d row-major matrix
// and mirrors it: a symmetric Gaussian matrix, one draw per distinct entry.
void AddSymmetricGaussian(float* m, int d, double sigma, std::mt19937_64* rng);

// The released item factors and each user's own factors.
struct PrivateAlsResult {
  Matrix user_factors;  // users x factors, each row clipped to Gamma
  Matrix item_factors;  // items x factors
};

// Private ALS on `bounded` (the output of BoundContributions) with the
// objective of `als` (factors, regularization, alpha, unobserved_weight;
// iterations come from dp.iterations). Every release is recorded in
// `ledger`. With rho_als_release = +infinity in `plan` no noise is added:
// the tests compare that with an exact dense solve.
Result<PrivateAlsResult> FitPrivateAls(const CsrMatrix& bounded, const AlsOptions& als,
                                       const DpOptions& dp, const DpPlan& plan,
                                       std::mt19937_64* rng, ZcdpLedger* ledger);

// One item step of FitPrivateAls with the user factors fixed (exposed for
// the dense oracle test); `sigma_*` = 0 adds no noise.
Matrix PrivateItemStep(const CsrMatrix& bounded, const Matrix& user_factors, const AlsOptions& als,
                       double sigma_gram, double sigma_a, double sigma_b, std::mt19937_64* rng);

// Noisy counts over the catalog: counts[i] + N(0, sigma^2), clamped at 0.
std::vector<float> NoisyCounts(const std::vector<float>& counts, double sigma,
                               std::mt19937_64* rng);

}  // namespace vitrine
