#include "embed/private_als.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/progress.h"

namespace vitrine {
namespace {

using MatX = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using VecX = Eigen::Matrix<double, Eigen::Dynamic, 1>;

// Confidence of an observed (user, item) pair, as embed/als.h: 1 + alpha w.
double Confidence(const AlsOptions& als, float w) { return 1.0 + als.alpha * w; }

// The solve of the item step: project the noisy statistics onto the PSD
// cone (eigenvalues clipped at 0), add the ridge, solve.
VecX SolveProjected(const MatX& m, const VecX& b, double ridge) {
  Eigen::SelfAdjointEigenSolver<MatX> eig(m);
  const VecX lambda = eig.eigenvalues().cwiseMax(0.0).array() + ridge;
  return eig.eigenvectors() * (eig.eigenvectors().transpose() * b).cwiseQuotient(lambda);
}

void ClipRow(float* x, int d, double bound) {
  double norm = 0;
  for (int k = 0; k < d; ++k) norm += static_cast<double>(x[k]) * x[k];
  norm = std::sqrt(norm);
  if (norm > bound) {
    for (int k = 0; k < d; ++k) x[k] = static_cast<float>(x[k] * (bound / norm));
  }
}

// The user step (not released): every user's exact solve against `items`,
// then the clip to Gamma.
Matrix UserStep(const CsrMatrix& bounded, const Matrix& items, const AlsOptions& als,
                double bound) {
  const int d = als.factors;
  MatX y = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
               items.data.data(), static_cast<Eigen::Index>(items.rows), d)
               .cast<double>();
  const MatX gram = als.unobserved_weight * (y.transpose() * y);
  Matrix users(static_cast<size_t>(bounded.rows), static_cast<size_t>(d));
#pragma omp parallel for schedule(dynamic, 256)
  for (int64_t u = 0; u < bounded.rows; ++u) {
    if (bounded.row_size(u) == 0) continue;
    MatX a = gram;
    a.diagonal().array() += als.regularization;
    VecX b = VecX::Zero(d);
    for (int64_t p = bounded.indptr[u]; p < bounded.indptr[u + 1]; ++p) {
      const auto yi = y.row(bounded.indices[p]).transpose();
      const double c = Confidence(als, bounded.values[p]);
      a.noalias() += (c - als.unobserved_weight) * yi * yi.transpose();
      b.noalias() += c * yi;
    }
    const VecX x = a.ldlt().solve(b);
    float* row = users.row(static_cast<size_t>(u));
    for (int k = 0; k < d; ++k) row[k] = static_cast<float>(x[k]);
    ClipRow(row, d, bound);
  }
  return users;
}

// Sensitivities of the three item-side releases (see the header).
struct ItemSensitivities {
  double gram, a, b;
};
ItemSensitivities Sensitivities(const AlsOptions& als, const DpOptions& dp) {
  const double g2 = dp.factor_norm_bound * dp.factor_norm_bound;
  const double c_max = Confidence(als, 1.0f);
  const double sk = std::sqrt(static_cast<double>(dp.max_items_per_user));
  return {als.unobserved_weight * g2,
          sk *
              std::max(std::fabs(c_max - als.unobserved_weight),
                       std::fabs(1.0 - als.unobserved_weight)) *
              g2,
          sk * c_max * dp.factor_norm_bound};
}

}  // namespace

Status DpOptions::Validate() const {
  VITRINE_RETURN_IF_ERROR(CheckDpBudget(epsilon, delta));
  if (max_items_per_user < 1 || max_items_per_user > 100000) {
    return Status::InvalidArgument("--dp-max-items: expected an integer in [1, 100000], got " +
                                   std::to_string(max_items_per_user));
  }
  if (iterations < 1 || iterations > 100) {
    return Status::InvalidArgument("--dp-iterations: expected an integer in [1, 100], got " +
                                   std::to_string(iterations));
  }
  if (!(factor_norm_bound > 0) || !std::isfinite(factor_norm_bound)) {
    return Status::InvalidArgument("dp factor_norm_bound: expected a finite number > 0");
  }
  for (double s : {als_share, popularity_share, trend_share}) {
    if (!(s >= 0) || !std::isfinite(s)) {
      return Status::InvalidArgument("dp shares: expected finite numbers >= 0");
    }
  }
  if (!(als_share > 0)) return Status::InvalidArgument("dp shares: the ALS share must be > 0");
  if (!(threshold_delta_share > 0 && threshold_delta_share < 1)) {
    return Status::InvalidArgument("dp threshold_delta_share: expected a number in (0, 1)");
  }
  return Status::OK();
}

Result<DpPlan> PlanDp(const DpOptions& dp) {
  VITRINE_RETURN_IF_ERROR(dp.Validate());
  DpPlan plan;
  plan.threshold_delta = dp.delta * dp.threshold_delta_share;
  plan.conversion_delta = dp.delta - plan.threshold_delta;
  plan.rho_total = RhoFromEpsilon(dp.epsilon, plan.conversion_delta);
  const double shares = dp.als_share + dp.popularity_share + dp.trend_share;
  // Three releases (G, A, b) per iteration share the ALS part equally.
  plan.rho_als_release = plan.rho_total * dp.als_share / shares / (3.0 * dp.iterations);
  plan.rho_popularity = plan.rho_total * dp.popularity_share / shares;
  plan.rho_trend = plan.rho_total * dp.trend_share / shares;
  return plan;
}

CsrMatrix BoundContributions(const CsrMatrix& user_items, int k, std::mt19937_64* rng,
                             std::vector<int64_t>* kept) {
  if (kept != nullptr) kept->clear();
  CsrMatrix out;
  out.rows = user_items.rows;
  out.cols = user_items.cols;
  out.indptr.assign(static_cast<size_t>(user_items.rows) + 1, 0);
  std::vector<int64_t> pick;
  for (int64_t u = 0; u < user_items.rows; ++u) {
    const int64_t begin = user_items.indptr[u], n = user_items.row_size(u);
    pick.resize(static_cast<size_t>(n));
    std::iota(pick.begin(), pick.end(), begin);
    if (n > k) {
      // A partial Fisher-Yates shuffle draws k of n uniformly; sorting them
      // back keeps the row's columns ascending.
      for (int64_t i = 0; i < k; ++i) {
        std::uniform_int_distribution<int64_t> draw(i, n - 1);
        std::swap(pick[static_cast<size_t>(i)], pick[static_cast<size_t>(draw(*rng))]);
      }
      pick.resize(static_cast<size_t>(k));
      std::sort(pick.begin(), pick.end());
    }
    for (int64_t p : pick) {
      if (kept != nullptr) kept->push_back(p);
      out.indices.push_back(user_items.indices[p]);
      out.values.push_back(std::clamp(user_items.values[p], 0.0f, 1.0f));
    }
    out.indptr[u + 1] = static_cast<int64_t>(out.indices.size());
  }
  return out;
}

void AddSymmetricGaussian(float* m, int d, double sigma, std::mt19937_64* rng) {
  if (!(sigma > 0)) return;
  std::normal_distribution<double> noise(0.0, sigma);
  for (int r = 0; r < d; ++r) {
    for (int c = r; c < d; ++c) {
      const float e = static_cast<float>(noise(*rng));
      m[r * d + c] += e;
      if (c != r) m[c * d + r] += e;
    }
  }
}

Matrix PrivateItemStep(const CsrMatrix& bounded, const Matrix& user_factors, const AlsOptions& als,
                       double sigma_gram, double sigma_a, double sigma_b, std::mt19937_64* rng) {
  const int d = als.factors;
  const size_t dd = static_cast<size_t>(d) * d;
  // G = a0 X^T X over every user, released once for all items.
  std::vector<float> gram(dd, 0.0f);
  {
    MatX g = MatX::Zero(d, d);
    for (size_t u = 0; u < user_factors.rows; ++u) {
      const Eigen::Map<const Eigen::VectorXf> x(user_factors.row(u), d);
      g.noalias() += (x.cast<double>() * x.cast<double>().transpose());
    }
    for (size_t i = 0; i < dd; ++i)
      gram[i] = static_cast<float>(als.unobserved_weight * g.data()[i]);
    AddSymmetricGaussian(gram.data(), d, sigma_gram, rng);
  }
  const CsrMatrix by_item = bounded.Transposed();
  // One noise seed per item, drawn in order, so the result does not depend
  // on how OpenMP splits the items.
  std::vector<uint64_t> seeds(static_cast<size_t>(by_item.rows));
  for (auto& s : seeds) s = (*rng)();
  Matrix items(static_cast<size_t>(by_item.rows), static_cast<size_t>(d));
  // The ridge grows by the noise's expected spectral norm, 2 sigma sqrt(d)
  // for a d x d symmetric Gaussian matrix (the semicircle law's edge): an
  // item whose statistics are mostly noise is shrunk towards zero instead of
  // getting a large random vector that inner-product search would favour.
  // Public: it depends on the sigmas only, never on the data.
  const double ridge =
      als.regularization + 2.0 * std::sqrt(static_cast<double>(d)) * (sigma_gram + sigma_a);
  const MatX g =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>>(gram.data(), d, d)
          .cast<double>();
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t j = 0; j < by_item.rows; ++j) {
    std::mt19937_64 local(seeds[static_cast<size_t>(j)]);
    std::vector<float> a(dd, 0.0f);
    std::vector<float> b(static_cast<size_t>(d), 0.0f);
    for (int64_t p = by_item.indptr[j]; p < by_item.indptr[j + 1]; ++p) {
      const float* x = user_factors.row(static_cast<size_t>(by_item.indices[p]));
      const double c = Confidence(als, by_item.values[p]);
      const float ca = static_cast<float>(c - als.unobserved_weight);
      for (int r = 0; r < d; ++r) {
        b[r] += static_cast<float>(c) * x[r];
        for (int s = 0; s < d; ++s) a[static_cast<size_t>(r) * d + s] += ca * x[r] * x[s];
      }
    }
    AddSymmetricGaussian(a.data(), d, sigma_a, &local);
    if (sigma_b > 0) {
      std::normal_distribution<double> noise(0.0, sigma_b);
      for (float& v : b) v += static_cast<float>(noise(local));
    }
    const MatX m =
        g + Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>>(a.data(), d, d)
                .cast<double>();
    const VecX bv = Eigen::Map<const Eigen::VectorXf>(b.data(), d).cast<double>();
    const VecX y = SolveProjected(m, bv, ridge);
    float* row = items.row(static_cast<size_t>(j));
    for (int k = 0; k < d; ++k) row[k] = static_cast<float>(y[k]);
  }
  return items;
}

Result<PrivateAlsResult> FitPrivateAls(const CsrMatrix& bounded, const AlsOptions& als,
                                       const DpOptions& dp, const DpPlan& plan,
                                       std::mt19937_64* rng, ZcdpLedger* ledger) {
  if (als.factors < 1 || !(als.regularization > 0) || !(als.alpha >= 0) ||
      !(als.unobserved_weight >= 0)) {
    return Status::InvalidArgument(
        "private ALS: expected factors >= 1, regularization > 0, alpha >= 0 and "
        "unobserved_weight >= 0");
  }
  if (als.reg_exponent != 0) {
    return Status::InvalidArgument(
        "private ALS: reg_exponent must be 0 (a ridge scaled by counts would reveal them)");
  }
  const int d = als.factors;
  // Data-independent start: uniform [0, 0.01) like embed/als.cc.
  PrivateAlsResult out;
  out.item_factors = Matrix(static_cast<size_t>(bounded.cols), static_cast<size_t>(d));
  {
    std::mt19937_64 init(als.seed);
    std::uniform_real_distribution<float> u(0.0f, 0.01f);
    for (float& v : out.item_factors.data) v = u(init);
  }
  const ItemSensitivities s = Sensitivities(als, dp);
  const bool noisy = std::isfinite(plan.rho_als_release);
  const double sg = noisy ? GaussianSigma(s.gram, plan.rho_als_release) : 0;
  const double sa = noisy ? GaussianSigma(s.a, plan.rho_als_release) : 0;
  const double sb = noisy ? GaussianSigma(s.b, plan.rho_als_release) : 0;
  for (int it = 1; it <= dp.iterations; ++it) {
    out.user_factors = UserStep(bounded, out.item_factors, als, dp.factor_norm_bound);
    out.item_factors = PrivateItemStep(bounded, out.user_factors, als, sg, sa, sb, rng);
    if (noisy) {
      const std::string n = ", iteration " + std::to_string(it);
      // A statistic no user can change (sensitivity 0: a0 = 0 for the Gram,
      // alpha = 0 and a0 = 1 for A) is exact and costs nothing.
      if (s.gram > 0) ledger->Add("als user Gram" + n, s.gram, sg);
      if (s.a > 0) ledger->Add("als item statistics A" + n, s.a, sa);
      if (s.b > 0) ledger->Add("als item statistics b" + n, s.b, sb);
    }
    LogInfo("private ALS iteration %d of %d (noise sigma: Gram %.3g, A %.3g, b %.3g)", it,
            dp.iterations, sg, sa, sb);
  }
  // Each user's own factors against the released items (not released).
  out.user_factors = UserStep(bounded, out.item_factors, als, dp.factor_norm_bound);
  for (float v : out.item_factors.data) {
    if (!std::isfinite(v)) return Status::Internal("private ALS: non-finite item factors");
  }
  return out;
}

std::vector<float> NoisyCounts(const std::vector<float>& counts, double sigma,
                               std::mt19937_64* rng) {
  std::vector<float> out(counts.size());
  std::normal_distribution<double> noise(0.0, sigma > 0 ? sigma : 1.0);
  for (size_t i = 0; i < counts.size(); ++i) {
    const double v = counts[i] + (sigma > 0 ? noise(*rng) : 0.0);
    out[i] = static_cast<float>(std::max(0.0, v));
  }
  return out;
}

}  // namespace vitrine
