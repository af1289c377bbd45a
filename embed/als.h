// ImplicitALS: matrix factorisation for implicit feedback (Hu, Koren and
// Volinsky 2008, "Collaborative Filtering for Implicit Feedback Datasets"),
// in the vocabulary of benfred/implicit.
//
// Model. For user u and item i with aggregated weight w_ui (a nonzero of the
// users x items CsrMatrix), the preference is p_ui = 1 and the confidence is
// c_ui = 1 + alpha * w_ui; every unobserved pair has p = 0 and c = 1. fit()
// minimises
//
//   sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization (|X|^2 + |Y|^2)
//
// by alternating exact-in-expectation least squares over users then items.
// Each half-step solves, for every row u,
//
//   (Y^T Y + regularization I + sum_{i in u} (c_ui - 1) y_i y_i^T) x_u
//       = sum_{i in u} c_ui y_i
//
// with either a few conjugate-gradient steps warm-started from the previous
// x_u (Takacs et al. 2011; implicit's `_least_squares_cg`) or an exact
// Cholesky solve. Y^T Y is computed once per half-step, so the cost per
// nonzero is O(factors * cg_steps). A row with no nonzeros gets a zero vector.
//
// Note: implicit >= 0.5 uses c = alpha * w (no "1 +"); vitrine follows the
// paper, so alpha = 1 here is not numerically identical to implicit's.
//
// Factors are float32, row-major, contiguous (core/matrix.h): user_factors()
// is users x factors, item_factors() is items x factors. Initial values are
// uniform in [0, 0.01) drawn from a stream seeded by (seed, row), so a fit is
// deterministic for a given seed and data regardless of num_threads.
//
// Memory: fit() also holds the transposed (items x users) matrix and up to
// 8 MiB of scratch per thread. The CG kernel is compiled for x86-64-v4,
// x86-64-v3 and baseline and picked at run time (GCC target_clones).
//
// Thread safety: fit() and set_factors() mutate and need exclusive access;
// the const methods (fold_in, accessors) are safe to call concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

class ImplicitALS;

// Passed to Config::on_iteration after every full iteration (users + items).
struct AlsIterationInfo {
  int iteration = 0;   // 1-based
  double seconds = 0;  // wall time of this iteration's two half-steps
  double loss = -1;    // implicit's normalised loss; -1 unless compute_loss
};

class ImplicitALS {
 public:
  enum class Solver {
    kConjugateGradient,  // cg_steps of CG per row; fast, approximate
    kCholesky,           // exact solve per row; O(nnz d^2 + rows d^3)
  };

  struct Config {
    int factors = 64;
    float regularization = 0.01f;  // implicit's default
    float alpha = 1.0f;            // confidence c = 1 + alpha * weight
    int iterations = 15;
    int cg_steps = 3;  // CG steps per row per half-step (implicit's default)
    Solver solver = Solver::kConjugateGradient;
    uint64_t seed = 42;
    int num_threads = 0;  // 0 = OpenMP default
    // Computes the loss after each iteration (one extra pass over the data,
    // about the cost of one CG step) and logs it.
    bool compute_loss = false;
    // Start from the current factors (from set_factors or an earlier fit)
    // instead of random ones, when their shapes match the data.
    bool warm_start = false;
    // Called after every iteration with the model in its current state.
    // Runs on the calling thread; may be empty.
    std::function<void(const ImplicitALS&, const AlsIterationInfo&)> on_iteration;
  };

  ImplicitALS() = default;
  explicit ImplicitALS(Config config) : config_(std::move(config)) {}

  const Config& config() const { return config_; }

  // Fits users x items weights (rows = users, cols = items). Weights must be
  // finite and >= 0. Logs one line per iteration (time, loss if computed) via
  // LogInfo. Errors: bad config, malformed CSR, a non-finite or negative
  // weight (naming user row and item column), or non-finite factors after an
  // iteration (naming the first bad user or item row). On error the factors
  // are unspecified.
  Status fit(const CsrMatrix& user_items);

  // Installs factors (e.g. loaded from a bundle) so fold_in works without a
  // fit. Both must have config().factors columns and finite values.
  Status set_factors(Matrix user_factors, Matrix item_factors);

  // The user vector for a history (item rows and weights, same length) with
  // the item factors fixed: an exact Cholesky solve of the same normal
  // equations fit() uses, like implicit's recalculate_user. Repeated items
  // are merged by summing their weights. An empty history gives zeros.
  // Errors: not fitted, length mismatch, item out of range, bad weight.
  // Cost O(n d^2 + d^3): tens of microseconds for d = 64. Thread-safe.
  Result<std::vector<float>> fold_in(std::span<const int32_t> items,
                                     std::span<const float> weights) const;

  const Matrix& user_factors() const { return user_factors_; }
  const Matrix& item_factors() const { return item_factors_; }

 private:
  Config config_;
  Matrix user_factors_;
  Matrix item_factors_;
  Matrix item_gram_;  // Y^T Y + regularization I, for fold_in
};

}  // namespace vitrine
