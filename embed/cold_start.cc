#include "embed/cold_start.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "core/json_util.h"

namespace vitrine {

namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Status CheckFiniteRow(const Matrix& m, size_t i, const char* what) {
  for (size_t j = 0; j < m.cols; ++j) {
    if (!std::isfinite(m.at(i, j))) {
      return Status::InvalidArgument(std::string("cold start: ") + what + " row " +
                                     std::to_string(i) + " column " + std::to_string(j) +
                                     ": non-finite value");
    }
  }
  return Status::OK();
}

Status CheckFinite(const Matrix& m, const char* what) {
  for (size_t i = 0; i < m.rows; ++i) VITRINE_RETURN_IF_ERROR(CheckFiniteRow(m, i, what));
  return Status::OK();
}

RowMat ToEigen(const Matrix& m) {
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
             m.data.data(), m.rows, m.cols)
      .cast<double>();
}

}  // namespace

ColdStartProjector::ColdStartProjector(ColdStartOptions opts) : opts_(opts) {}

Status ColdStartProjector::Fit(
    const Matrix& x, const Matrix& y, const std::vector<size_t>* rows,
    const std::function<void(int64_t done, int64_t total)>& on_progress) {
  if (x.rows != y.rows) {
    return Status::InvalidArgument("cold start: features have " + std::to_string(x.rows) +
                                   " rows, targets " + std::to_string(y.rows));
  }
  const size_t n = rows != nullptr ? rows->size() : x.rows;
  if (n == 0 || x.cols == 0 || y.cols == 0) {
    return Status::InvalidArgument("cold start: nothing to fit (empty features or targets)");
  }
  if (!(opts_.lambda >= 0)) {
    return Status::InvalidArgument("cold start: lambda must be >= 0, got " +
                                   std::to_string(opts_.lambda));
  }
  auto row_at = [&](size_t r) { return rows != nullptr ? (*rows)[r] : r; };
  for (size_t r = 0; r < n; ++r) {
    const size_t i = row_at(r);
    if (i >= x.rows) {
      return Status::InvalidArgument("cold start: row " + std::to_string(i) + " of " +
                                     std::to_string(x.rows));
    }
    VITRINE_RETURN_IF_ERROR(CheckFiniteRow(x, i, "features"));
    VITRINE_RETURN_IF_ERROR(CheckFiniteRow(y, i, "targets"));
  }
  const auto dx = static_cast<Eigen::Index>(x.cols), dy = static_cast<Eigen::Index>(y.cols);

  // Row r of the chunk starting at `begin`, as doubles; targets normalised
  // if asked (a zero row stays zero).
  auto load = [&](size_t begin, size_t count, RowMat* xc, RowMat* yc) {
    xc->resize(static_cast<Eigen::Index>(count), dx);
    yc->resize(static_cast<Eigen::Index>(count), dy);
    for (size_t r = 0; r < count; ++r) {
      const size_t i = row_at(begin + r);
      const auto e = static_cast<Eigen::Index>(r);
      xc->row(e) = Eigen::Map<const Eigen::RowVectorXf>(x.row(i), dx).cast<double>();
      yc->row(e) = Eigen::Map<const Eigen::RowVectorXf>(y.row(i), dy).cast<double>();
      if (opts_.normalize_targets) {
        const double norm = yc->row(e).norm();
        if (norm > 0) yc->row(e) /= norm;
      }
    }
  };
  // Two passes in chunks: the means, then X^T X and X^T Y of the centred
  // rows (centring both sides is the same as an unpenalised bias column).
  constexpr size_t kChunk = 16384;
  const auto total = static_cast<int64_t>(opts_.fit_bias ? 2 * n : n);
  int64_t done = 0;
  RowMat xc, yc;
  Eigen::RowVectorXd xmean = Eigen::RowVectorXd::Zero(dx);
  Eigen::RowVectorXd ymean = Eigen::RowVectorXd::Zero(dy);
  if (opts_.fit_bias) {
    for (size_t begin = 0; begin < n; begin += kChunk) {
      const size_t count = std::min(kChunk, n - begin);
      load(begin, count, &xc, &yc);
      xmean += xc.colwise().sum();
      ymean += yc.colwise().sum();
      done += static_cast<int64_t>(count);
      if (on_progress) on_progress(done, total);
    }
    xmean /= static_cast<double>(n);
    ymean /= static_cast<double>(n);
  }
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(dx, dx);
  Eigen::MatrixXd xty = Eigen::MatrixXd::Zero(dx, dy);
  for (size_t begin = 0; begin < n; begin += kChunk) {
    const size_t count = std::min(kChunk, n - begin);
    load(begin, count, &xc, &yc);
    xc.rowwise() -= xmean;
    yc.rowwise() -= ymean;
    gram.noalias() += xc.transpose() * xc;
    xty.noalias() += xc.transpose() * yc;
    done += static_cast<int64_t>(count);
    if (on_progress) on_progress(done, total);
  }
  gram.diagonal().array() += opts_.lambda;
  Eigen::LDLT<Eigen::MatrixXd> ldlt(gram);
  if (ldlt.info() != Eigen::Success || !ldlt.isPositive()) {
    return Status::InvalidArgument("cold start: X^T X + lambda I is singular; raise lambda above " +
                                   std::to_string(opts_.lambda));
  }
  const Eigen::MatrixXd w = ldlt.solve(xty);
  if (!w.allFinite()) {
    return Status::InvalidArgument("cold start: the ridge solve is ill-conditioned; raise lambda");
  }
  const Eigen::RowVectorXd b = ymean - xmean * w;
  weights_ = Matrix(x.cols, y.cols);
  for (size_t i = 0; i < x.cols; ++i) {
    for (size_t j = 0; j < y.cols; ++j) weights_.at(i, j) = static_cast<float>(w(i, j));
  }
  bias_.resize(y.cols);
  for (size_t j = 0; j < y.cols; ++j) bias_[j] = static_cast<float>(b[j]);
  fitted_ = true;
  return Status::OK();
}

Result<Matrix> ColdStartProjector::Predict(const Matrix& x) const {
  if (!fitted_) return Status::InvalidArgument("cold start: Predict before Fit");
  if (x.cols != input_dim()) {
    return Status::InvalidArgument("cold start: features have " + std::to_string(x.cols) +
                                   " columns, the projector expects " +
                                   std::to_string(input_dim()));
  }
  VITRINE_RETURN_IF_ERROR(CheckFinite(x, "features"));
  const RowMat out =
      (ToEigen(x) * ToEigen(weights_)).rowwise() +
      Eigen::Map<const Eigen::RowVectorXf>(bias_.data(), bias_.size()).cast<double>();
  Matrix m(x.rows, output_dim());
  for (size_t i = 0; i < m.rows; ++i) {
    for (size_t j = 0; j < m.cols; ++j) m.at(i, j) = static_cast<float>(out(i, j));
  }
  return m;
}

nlohmann::json ColdStartProjector::ToJson() const {
  return {{"format", "vitrine.cold_start"},
          {"version", 1},
          {"lambda", opts_.lambda},
          {"fit_bias", opts_.fit_bias},
          {"normalize_targets", opts_.normalize_targets},
          {"min_interactions", opts_.min_interactions},
          {"input_dim", input_dim()},
          {"output_dim", output_dim()},
          {"bias", bias_}};
}

Result<ColdStartProjector> ColdStartProjector::FromJson(const nlohmann::json& j, Matrix weights) {
  const std::string where = "cold start state: ";
  try {
    VITRINE_RETURN_IF_ERROR(CheckFormatAndVersion(j, "vitrine.cold_start", 1, where));
    ColdStartOptions o;
    o.lambda = j.at("lambda").get<double>();
    o.fit_bias = j.at("fit_bias").get<bool>();
    o.normalize_targets = j.at("normalize_targets").get<bool>();
    o.min_interactions = JsonInteger<int64_t>(j.at("min_interactions"), "min_interactions");
    ColdStartProjector p(o);
    const auto in = JsonInteger<size_t>(j.at("input_dim"), "input_dim");
    const auto out = JsonInteger<size_t>(j.at("output_dim"), "output_dim");
    p.bias_ = j.at("bias").get<std::vector<float>>();
    if (weights.rows != in || weights.cols != out ||
        weights.data.size() != weights.rows * weights.cols || p.bias_.size() != out) {
      return Status::Corruption(where + "weights are " + std::to_string(weights.rows) + " x " +
                                std::to_string(weights.cols) + " with " +
                                std::to_string(p.bias_.size()) + " bias values, expected " +
                                std::to_string(in) + " x " + std::to_string(out));
    }
    for (float v : weights.data) {
      if (!std::isfinite(v)) return Status::Corruption(where + "weights have non-finite values");
    }
    p.weights_ = std::move(weights);
    p.fitted_ = true;
    return p;
  } catch (const std::exception& e) {  // nlohmann's, or JsonInteger's out_of_range
    return Status::Corruption(where + e.what());
  }
}

Result<Matrix> ConcatColumns(const std::vector<const Matrix*>& blocks) {
  if (blocks.empty()) return Status::InvalidArgument("concat: no blocks");
  const size_t n = blocks[0]->rows;
  size_t d = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    if (blocks[b]->rows != n) {
      return Status::InvalidArgument("concat: block " + std::to_string(b) + " has " +
                                     std::to_string(blocks[b]->rows) + " rows, block 0 has " +
                                     std::to_string(n));
    }
    d += blocks[b]->cols;
  }
  Matrix out(n, d);
  for (size_t i = 0; i < n; ++i) {
    float* dst = out.row(i);
    for (const Matrix* m : blocks) dst = std::copy(m->row(i), m->row(i) + m->cols, dst);
  }
  return out;
}

Result<std::vector<bool>> FillColdRows(
    const Matrix& features, std::span<const int64_t> interaction_counts,
    const ColdStartOptions& opts, Matrix* cf, ColdStartProjector* projector_out,
    const std::function<void(int64_t done, int64_t total)>& on_progress) {
  const size_t n = cf->rows;
  if (features.rows != n || interaction_counts.size() != n) {
    return Status::InvalidArgument("cold start: cf has " + std::to_string(n) + " rows, features " +
                                   std::to_string(features.rows) + ", interaction counts " +
                                   std::to_string(interaction_counts.size()));
  }
  std::vector<bool> cold(n);
  std::vector<size_t> warm_rows, cold_rows;
  for (size_t i = 0; i < n; ++i) {
    cold[i] = interaction_counts[i] < opts.min_interactions;
    (cold[i] ? cold_rows : warm_rows).push_back(i);
  }
  if (warm_rows.empty()) {
    return Status::InvalidArgument("cold start: no item has at least " +
                                   std::to_string(opts.min_interactions) +
                                   " interactions to fit the projector on");
  }
  auto gather = [](const Matrix& m, const std::vector<size_t>& rows) {
    Matrix out(rows.size(), m.cols);
    for (size_t r = 0; r < rows.size(); ++r) {
      std::copy(m.row(rows[r]), m.row(rows[r]) + m.cols, out.row(r));
    }
    return out;
  };
  ColdStartProjector projector(opts);
  VITRINE_RETURN_IF_ERROR(projector.Fit(features, *cf, &warm_rows, on_progress));
  // Cold rows are predicted a chunk at a time, so no copy of them all.
  constexpr size_t kChunk = 16384;
  for (size_t begin = 0; begin < cold_rows.size(); begin += kChunk) {
    const std::vector<size_t> chunk(cold_rows.begin() + static_cast<std::ptrdiff_t>(begin),
                                    cold_rows.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                            begin + kChunk, cold_rows.size())));
    VITRINE_ASSIGN_OR_RETURN(Matrix pred, projector.Predict(gather(features, chunk)));
    for (size_t r = 0; r < chunk.size(); ++r) {
      std::copy(pred.row(r), pred.row(r) + pred.cols, cf->row(chunk[r]));
    }
  }
  if (projector_out != nullptr) *projector_out = std::move(projector);
  return cold;
}

}  // namespace vitrine
