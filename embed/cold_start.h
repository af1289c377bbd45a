// ColdStartProjector: maps an item's side blocks ([content | visual]) into the
// collaborative (cf) block, so items with too few interactions still get a
// cf vector (docs/architecture.md: "filled by the cold-start projector").
//
// The map is ridge regression fitted on warm items, in closed form:
//   W = (Xc^T Xc + lambda I)^-1 Xc^T Yc   (solved with LDLT, in double)
//   b = mean(Y) - mean(X) W               (the bias is not penalised)
// where Xc, Yc are X, Y centred by their column means when fit_bias is on
// (with fit_bias off: no centring, b = 0). Predict(x) = x W + b.
//
// A fitted projector is immutable; const methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

struct ColdStartOptions {
  double lambda = 1.0;   // ridge penalty on W (>= 0; > 0 keeps the solve well posed)
  bool fit_bias = true;  // learn an unpenalised intercept
  // Fit on L2-normalised target rows, so the projector predicts a direction
  // only: raw ALS norms mostly encode popularity, which a cold item does not
  // have. The caller chooses the norm of the filled rows (the bundle builder
  // gives them a quantile of the warm norms, `norm_quantile` below).
  bool normalize_targets = true;
  int64_t min_interactions = 5;  // FillColdRows: items with fewer are cold
  // The cf norm cold rows get (engine/item_encoder.cc): this quantile of the
  // warm rows' norms, in [0, 1]; 0.5 is the median. Lower keeps projected
  // cold vectors from crowding the warm ones out of the candidates on
  // long-tail catalogs; `vitrine tune` searches it.
  double norm_quantile = 0.5;
};

class ColdStartProjector {
 public:
  explicit ColdStartProjector(ColdStartOptions opts = {});

  // Fits on rows of x (n x dx) and y (n x dy), or on the listed `rows` of
  // both. InvalidArgument when shapes disagree, no row is given, lambda < 0,
  // or a value is NaN/Inf (names matrix and row). Reads the rows in chunks,
  // so memory is the d x d Gram matrix beyond the inputs; `on_progress(done,
  // total)` counts rows read.
  [[nodiscard]] Status Fit(
      const Matrix& x, const Matrix& y, const std::vector<size_t>* rows = nullptr,
      const std::function<void(int64_t done, int64_t total)>& on_progress = {});

  // x W + b for x (m x input_dim()). Fails if not fitted or dims differ.
  [[nodiscard]] Result<Matrix> Predict(const Matrix& x) const;

  bool fitted() const { return fitted_; }
  size_t input_dim() const { return weights_.rows; }
  size_t output_dim() const { return weights_.cols; }
  const Matrix& weights() const { return weights_; }  // input_dim x output_dim
  const std::vector<float>& bias() const { return bias_; }
  const ColdStartOptions& options() const { return opts_; }

  // Options, dims and bias; the weights are kept apart (store as .npy).
  nlohmann::json ToJson() const;
  [[nodiscard]] static Result<ColdStartProjector> FromJson(const nlohmann::json& j, Matrix weights);

 private:
  ColdStartOptions opts_;
  Matrix weights_;
  std::vector<float> bias_;
  bool fitted_ = false;
};

// Concatenates blocks with equal row counts column-wise, e.g. [content | visual].
[[nodiscard]] Result<Matrix> ConcatColumns(const std::vector<const Matrix*>& blocks);

// Marks item i cold when interaction_counts[i] < opts.min_interactions, fits a
// projector from `features` to `cf` on the warm rows, and overwrites the cold
// rows of `cf` with its predictions. Warm rows are left untouched. Returns the
// cold mask; the fitted projector is moved to `projector_out` if non-null (to
// store it for later cold arrivals). Fails if sizes disagree or no item is warm.
// `on_progress` as in ColdStartProjector::Fit.
[[nodiscard]] Result<std::vector<bool>> FillColdRows(
    const Matrix& features, std::span<const int64_t> interaction_counts,
    const ColdStartOptions& opts, Matrix* cf, ColdStartProjector* projector_out = nullptr,
    const std::function<void(int64_t done, int64_t total)>& on_progress = {});

}  // namespace vitrine
