// ImplicitALS: matrix factorisation for implicit feedback (Hu, Koren and
// Volinsky 2008, "Collaborative Filtering for Implicit Feedback Datasets"),
// in the vocabulary of benfred/implicit.
//
// Model. For user u and item i with aggregated weight w_ui (a nonzero of the
// users x items CsrMatrix), the preference is p_ui = 1 and the confidence is
// c_ui = 1 + alpha * w_ui; every unobserved pair has p = 0 and weight a0 =
// unobserved_weight. With lambda = regularization, nu = reg_exponent, I_u
// the items of user u and U_i the users of item i, Fit() minimises
//
//   sum_{(u,i) observed} c_ui (1 - x_u . y_i)^2
//     + a0 sum_{(u,i) unobserved} (x_u . y_i)^2
//     + sum_u lambda_u |x_u|^2 + sum_i lambda_i |y_i|^2,
//   lambda_u = lambda (|I_u| + a0 |I|)^nu,  lambda_i = lambda (|U_i| + a0 |U|)^nu
//
// (Hu et al. is a0 = 1, nu = 0, the defaults; the unobserved weight and the
// frequency-scaled ridge are from Rendle, Krichene, Zhang and Koren 2022,
// "Revisiting the Performance of iALS on Item Recommendation Benchmarks").
// Fit() alternates exact least squares over users then items. Each
// half-step solves, for every row u,
//
//   (a0 Y^T Y + lambda_u I + sum_{i in u} (c_ui - a0) y_i y_i^T) x_u
//       = sum_{i in u} c_ui y_i
//
// with either a few conjugate-gradient steps warm-started from the previous
// x_u (Takacs et al. 2011; implicit's `_least_squares_cg`) or an exact
// Cholesky solve. Y^T Y is computed once per half-step, so the cost per
// nonzero is O(factors * cg_steps) whatever a0 and nu are. A row with no
// nonzeros gets a zero vector. docs/als.md has the measured speed and
// quality of the options.
//
// Note: implicit >= 0.5 uses c = alpha * w (no "1 +"); vitrine follows the
// paper, so alpha = 1 here is not numerically identical to implicit's.
//
// Factors are float32, row-major, contiguous (core/matrix.h): user_factors()
// is users x factors, item_factors() is items x factors. Initial values are
// uniform in [0, 0.01) drawn from a stream seeded by (seed, row), so a fit is
// deterministic for a given seed and data regardless of num_threads.
//
// Memory: Fit() also holds the transposed (items x users) matrix and up to
// 8 MiB of scratch per thread. The CG kernel is compiled for x86-64-v4,
// x86-64-v3 and baseline and picked at run time (GCC target_clones).
//
// Thread safety: Fit() and SetFactors() mutate and need exclusive access;
// the const methods (FoldIn, accessors) are safe to call concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

class ImplicitALS;
class Cluster;

// Passed to AlsOptions::on_iteration after every full iteration (users + items).
struct AlsIterationInfo {
  int iteration = 0;   // 1-based
  double seconds = 0;  // wall time of this iteration's two half-steps
  double loss = -1;    // implicit's normalised loss; -1 unless compute_loss
};

// How each half-step solves its rows.
enum class AlsSolver {
  kConjugateGradient,  // cg_steps of CG per row; fast, approximate
  kCholesky,           // exact solve per row; O(nnz d^2 + rows d^3)
};

// The model's settings, fixed at construction; Fit checks the ranges.
struct AlsOptions {
  int factors = 64;  // d, the factor dimension (>= 1)
  // lambda: the ridge is lambda (nonzeros + unobserved_weight * other
  // side)^reg_exponent per row, i.e. lambda itself when reg_exponent = 0.
  // Finite, >= 0. 0.01 is implicit's default (for reg_exponent = 0); with
  // reg_exponent > 0 the useful lambda is smaller, by about (a0 |I|)^nu.
  float regularization = 0.01f;
  float alpha = 1.0f;  // confidence c = 1 + alpha * weight; finite, >= 0
  // a0: the weight of every unobserved (user, item) pair, i.e. the scale of
  // the Gramian term. Finite, >= 0. 1 = Hu et al.; below 1 a missing pair
  // counts less as a negative. (Rendle et al. also add a0 (x.y)^2 on
  // observed pairs; here observed pairs carry only c (1 - x.y)^2, so that
  // a0 = 1 is Hu et al. exactly.)
  float unobserved_weight = 1.0f;
  // nu: frequency scaling of the ridge, in [0, 1]. 0 = the same ridge for
  // every row (Hu et al.); 1 = proportional to the row's nonzeros plus a0
  // times the other side's size (Rendle et al.).
  float reg_exponent = 0.0f;
  int iterations = 15;  // full iterations (users then items) of Fit (>= 0)
  int cg_steps = 3;     // CG steps per row per half-step (implicit's default; >= 1)
  AlsSolver solver = AlsSolver::kConjugateGradient;  // how each row is solved
  uint64_t seed = 42;                                // seeds the initial factors
  int num_threads = 0;                               // 0 = OpenMP default
  // Computes the loss after each iteration (one extra pass over the data,
  // about the cost of one CG step) and logs it.
  bool compute_loss = false;
  // Start from the current factors (from SetFactors or an earlier Fit)
  // instead of random ones, when their shapes match the data.
  bool warm_start = false;
  // Called after every iteration with the model in its current state.
  // Runs on the calling thread; may be empty.
  std::function<void(const ImplicitALS&, const AlsIterationInfo&)> on_iteration = nullptr;
  // Under MPI (core/cluster.h): every rank calls Fit with the same data and
  // options, solves its block of users and of items, and ends with all the
  // factors. The factors match one process's within float rounding of the
  // Gramian sums (docs/scale.md states the measured difference). Not owned;
  // null = this process alone.
  Cluster* cluster = nullptr;
};

class ImplicitALS {
 public:
  ImplicitALS() = default;
  explicit ImplicitALS(AlsOptions options) : options_(std::move(options)) {}

  const AlsOptions& options() const { return options_; }

  // Fits users x items weights (rows = users, cols = items). Weights must be
  // finite and >= 0. Logs one line per iteration (time, loss if computed) via
  // LogInfo. Errors: bad options (a field out of its range above), malformed
  // CSR, a non-finite or negative weight (naming user row and item column),
  // a frequency-scaled ridge that overflows float (naming the row), or
  // non-finite factors after an iteration (naming the first bad user or item
  // row). On error the factors are unspecified.
  Status Fit(const CsrMatrix& user_items);

  // Installs factors (e.g. loaded from a bundle) so FoldIn works without a
  // fit. Both must have options().factors columns and finite values, and the
  // options must be valid. FoldIn answers with options()'s objective, so the
  // options must be the ones the factors were fitted with.
  Status SetFactors(Matrix user_factors, Matrix item_factors);

  // The user vector for a history (item rows and weights, same length) with
  // the item factors fixed: an exact Cholesky solve of the same normal
  // equations Fit() uses (same unobserved_weight, and the ridge of a user
  // with that many distinct items), like implicit's recalculate_user.
  // Repeated items are merged by summing their weights. An empty history
  // gives zeros.
  // Errors: not fitted, length mismatch, item out of range, bad weight.
  // Cost O(n d^2 + d^3): tens of microseconds for d = 64. Thread-safe.
  Result<std::vector<float>> FoldIn(std::span<const int32_t> items,
                                     std::span<const float> weights) const;

  const Matrix& user_factors() const { return user_factors_; }
  const Matrix& item_factors() const { return item_factors_; }

 private:
  AlsOptions options_;
  Matrix user_factors_;
  Matrix item_factors_;
  Matrix item_gram_;  // unobserved_weight Y^T Y (no ridge), for FoldIn
};

}  // namespace vitrine
