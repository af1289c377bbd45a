// ImplicitALS against independent dense oracles: every normal equation and
// objective here is built from the full dense confidence and preference
// matrices (C, P), never from the Y^T Y trick the implementation uses. The
// unobserved weight a0 is an entry of C; the frequency-scaled ridges are
// counted from P.
#include "embed/als.h"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/matrix.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {

using MatD = Eigen::MatrixXd;
using VecD = Eigen::VectorXd;

// Random users x items CSR with weights in [1, 10]; every user has at least
// one item unless `allow_empty`.
CsrMatrix RandomCsr(int users, int items, double density, uint64_t seed, bool allow_empty = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> coin(0, 1);
  std::uniform_real_distribution<float> weight(1, 10);
  CsrMatrix m;
  m.rows = users;
  m.cols = items;
  m.indptr.push_back(0);
  for (int u = 0; u < users; ++u) {
    const int forced = allow_empty ? -1 : static_cast<int>(rng() % items);
    for (int i = 0; i < items; ++i) {
      if (i == forced || coin(rng) < density) {
        m.indices.push_back(i);
        m.values.push_back(weight(rng));
      }
    }
    m.indptr.push_back(m.nnz());
  }
  return m;
}

MatD ToDense(const Matrix& m) {
  MatD out(m.rows, m.cols);
  for (size_t r = 0; r < m.rows; ++r)
    for (size_t c = 0; c < m.cols; ++c) out(r, c) = m.at(r, c);
  return out;
}

Matrix ToMatrix(const MatD& m) {
  Matrix out(m.rows(), m.cols());
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) out.at(r, c) = static_cast<float>(m(r, c));
  return out;
}

// Dense confidence C (1 + alpha w on nonzeros, a0 elsewhere) and preference P.
void DenseCP(const CsrMatrix& m, double alpha, MatD* c, MatD* p, double a0 = 1.0) {
  *c = MatD::Constant(m.rows, m.cols, a0);
  *p = MatD::Zero(m.rows, m.cols);
  for (int64_t u = 0; u < m.rows; ++u) {
    for (int64_t e = m.indptr[u]; e < m.indptr[u + 1]; ++e) {
      (*c)(u, m.indices[e]) = 1.0 + alpha * m.values[e];
      (*p)(u, m.indices[e]) = 1.0;
    }
  }
}

// Rendle et al.'s ridge per row of P: reg (|row| + a0 cols)^nu, with |row|
// the row's observed entries.
VecD DenseRidge(const MatD& p, double reg, double a0, double nu) {
  VecD r(p.rows());
  for (Eigen::Index u = 0; u < p.rows(); ++u) {
    r(u) = reg * std::pow(p.row(u).sum() + a0 * static_cast<double>(p.cols()), nu);
  }
  return r;
}

// Closed-form half-step: x_u = (Y^T C_u Y + ridge_u I)^-1 Y^T C_u p_u for
// every row u of C, P, solved in double with a dense LU.
MatD DenseHalfStep(const MatD& c, const MatD& p, const MatD& y, const VecD& ridge) {
  const Eigen::Index d = y.cols();
  MatD x(c.rows(), d);
  for (Eigen::Index u = 0; u < c.rows(); ++u) {
    const MatD a = y.transpose() * c.row(u).asDiagonal() * y + ridge(u) * MatD::Identity(d, d);
    const VecD b = y.transpose() * c.row(u).cwiseProduct(p.row(u)).transpose();
    x.row(u) = a.fullPivLu().solve(b).transpose();
  }
  return x;
}

MatD DenseHalfStep(const MatD& c, const MatD& p, const MatD& y, double reg) {
  return DenseHalfStep(c, p, y, VecD::Constant(c.rows(), reg));
}

// sum c (p - x.y)^2 + sum_u ridge_u |x_u|^2 + sum_i ridge_i |y_i|^2
double DenseObjective(const MatD& c, const MatD& p, const MatD& x, const MatD& y,
                      const VecD& user_ridge, const VecD& item_ridge) {
  const MatD diff = p - x * y.transpose();
  return c.cwiseProduct(diff.cwiseProduct(diff)).sum() + user_ridge.dot(x.rowwise().squaredNorm()) +
         item_ridge.dot(y.rowwise().squaredNorm());
}

double MaxRelError(const MatD& got, const MatD& want) {
  return (got - want).cwiseAbs().maxCoeff() / std::max(1e-12, want.cwiseAbs().maxCoeff());
}

MatD RandomFactors(int rows, int d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  MatD m(rows, d);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < d; ++k) m(r, k) = u(rng);
  return m;
}

AlsOptions SmallOptions(int d, AlsSolver solver) {
  AlsOptions cfg;
  cfg.factors = d;
  cfg.regularization = 0.1f;
  cfg.alpha = 2.0f;
  cfg.solver = solver;
  cfg.seed = 7;
  return cfg;
}

// Runs one iteration from given factors and checks both half-steps against
// the dense closed form: users from Y0, then items from the model's new X.
void CheckOneIteration(AlsOptions cfg, int cg_steps, double tol) {
  const int d = cfg.factors;
  const CsrMatrix ui = RandomCsr(30, 40, 0.15, 11);
  MatD c, p;
  DenseCP(ui, cfg.alpha, &c, &p, cfg.unobserved_weight);
  const VecD user_ridge =
      DenseRidge(p, cfg.regularization, cfg.unobserved_weight, cfg.reg_exponent);
  const VecD item_ridge =
      DenseRidge(p.transpose(), cfg.regularization, cfg.unobserved_weight, cfg.reg_exponent);
  const MatD x0 = RandomFactors(30, d, 1);
  const MatD y0 = RandomFactors(40, d, 2);

  cfg.iterations = 1;
  cfg.cg_steps = cg_steps;
  cfg.warm_start = true;
  ImplicitALS als(cfg);
  ASSERT_TRUE(als.SetFactors(ToMatrix(x0), ToMatrix(y0)).ok());
  ASSERT_TRUE(als.Fit(ui).ok());

  const MatD x1 = ToDense(als.user_factors());
  const MatD y1 = ToDense(als.item_factors());
  EXPECT_LT(MaxRelError(x1, DenseHalfStep(c, p, y0, user_ridge)), tol);
  EXPECT_LT(MaxRelError(y1, DenseHalfStep(c.transpose(), p.transpose(), x1, item_ridge)), tol);
}

TEST(ImplicitALS, ConjugateGradientWithManyStepsEqualsDenseSolve) {
  CheckOneIteration(SmallOptions(8, AlsSolver::kConjugateGradient), 40, 2e-3);
}

TEST(ImplicitALS, CholeskyHalfStepEqualsDenseClosedForm) {
  CheckOneIteration(SmallOptions(8, AlsSolver::kCholesky), 3, 1e-4);
  CheckOneIteration(SmallOptions(64, AlsSolver::kCholesky), 3, 1e-3);
}

TEST(ImplicitALS, SpecialisedDimensionsEqualDenseSolve) {
  // 32/64/128 run compile-time-sized kernels; 8 above runs the generic one.
  for (int d : {32, 64}) {
    SCOPED_TRACE(d);
    CheckOneIteration(SmallOptions(d, AlsSolver::kConjugateGradient), 200, 5e-3);
  }
}

TEST(ImplicitALS, RowsLongerThanTheGatherBufferEqualDenseSolve) {
  // User 0 likes all 20000 items: longer than the CG kernel's per-thread
  // gather buffer (2^21 floats = 16384 rows of 128), so its solve takes the
  // in-place gather path; users 1 and 2 take the buffered one.
  constexpr int kUsers = 3, kItems = 20000, kD = 128;
  std::mt19937_64 rng(77);
  CsrMatrix ui;
  ui.rows = kUsers;
  ui.cols = kItems;
  ui.indptr.push_back(0);
  for (int u = 0; u < kUsers; ++u) {
    for (int i = 0; i < kItems; ++i) {
      if (u > 0 && rng() % 20 != 0) continue;
      ui.indices.push_back(i);
      ui.values.push_back(1.0f + static_cast<float>(rng() % 4));
    }
    ui.indptr.push_back(ui.nnz());
  }
  AlsOptions cfg = SmallOptions(kD, AlsSolver::kConjugateGradient);
  cfg.iterations = 1;
  cfg.cg_steps = 100;
  cfg.warm_start = true;
  ImplicitALS als(cfg);
  const MatD y0 = RandomFactors(kItems, kD, 3);
  ASSERT_TRUE(als.SetFactors(ToMatrix(RandomFactors(kUsers, kD, 4)), ToMatrix(y0)).ok());
  ASSERT_TRUE(als.Fit(ui).ok());
  MatD c, p;
  DenseCP(ui, cfg.alpha, &c, &p);
  EXPECT_LT(MaxRelError(ToDense(als.user_factors()), DenseHalfStep(c, p, y0, cfg.regularization)),
            1e-3);
}

TEST(ImplicitALS, ThreeCgStepsFromConvergedFactorsAreCloseToExact) {
  const CsrMatrix ui = RandomCsr(60, 50, 0.1, 3);
  MatD c, p;
  AlsOptions cfg = SmallOptions(16, AlsSolver::kCholesky);
  DenseCP(ui, cfg.alpha, &c, &p);
  cfg.iterations = 10;
  ImplicitALS exact(cfg);
  ASSERT_TRUE(exact.Fit(ui).ok());

  // One more CG-3 iteration warm-started from the converged factors.
  cfg.solver = AlsSolver::kConjugateGradient;
  cfg.iterations = 1;
  cfg.warm_start = true;
  ImplicitALS cg(cfg);
  ASSERT_TRUE(cg.SetFactors(exact.user_factors(), exact.item_factors()).ok());
  ASSERT_TRUE(cg.Fit(ui).ok());
  const MatD want = DenseHalfStep(c, p, ToDense(exact.item_factors()), cfg.regularization);
  EXPECT_LT(MaxRelError(ToDense(cg.user_factors()), want), 0.02);
}

void CheckObjectiveNeverRises(AlsSolver solver, double slack, float a0 = 1.0f, float nu = 0.0f,
                              float reg = 0.1f) {
  const CsrMatrix ui = RandomCsr(50, 40, 0.1, 5);
  AlsOptions cfg = SmallOptions(10, solver);
  cfg.unobserved_weight = a0;
  cfg.reg_exponent = nu;
  cfg.regularization = reg;
  MatD c, p;
  DenseCP(ui, cfg.alpha, &c, &p, a0);
  const VecD user_ridge = DenseRidge(p, reg, a0, nu);
  const VecD item_ridge = DenseRidge(p.transpose(), reg, a0, nu);
  cfg.iterations = 12;
  cfg.compute_loss = true;
  std::vector<double> objective, reported;
  cfg.on_iteration = [&](const ImplicitALS& m, const AlsIterationInfo& info) {
    objective.push_back(DenseObjective(c, p, ToDense(m.user_factors()), ToDense(m.item_factors()),
                                       user_ridge, item_ridge));
    reported.push_back(info.loss);
  };
  ImplicitALS als(cfg);
  ASSERT_TRUE(als.Fit(ui).ok());
  ASSERT_EQ(objective.size(), 12u);
  const double total_conf = c.sum();  // implicit's normalisation (a0 per unobserved pair)
  for (size_t k = 0; k < objective.size(); ++k) {
    EXPECT_NEAR(reported[k], objective[k] / total_conf, 1e-4 * objective[k] / total_conf) << k;
    if (k > 0) {
      EXPECT_LE(objective[k], objective[k - 1] * (1 + slack)) << "iteration " << k + 1;
    }
  }
  EXPECT_LT(objective.back(), 0.9 * objective.front());
}

TEST(ImplicitALS, ObjectiveNeverRisesWithCholesky) {
  CheckObjectiveNeverRises(AlsSolver::kCholesky, 1e-6);
}

TEST(ImplicitALS, ObjectiveNeverRisesWithConjugateGradient) {
  CheckObjectiveNeverRises(AlsSolver::kConjugateGradient, 1e-5);
}

TEST(ImplicitALS, ObjectiveWithUnobservedWeightAndScaledRidgeNeverRises) {
  for (auto solver : {AlsSolver::kCholesky, AlsSolver::kConjugateGradient}) {
    SCOPED_TRACE(static_cast<int>(solver));
    const double slack = solver == AlsSolver::kCholesky ? 1e-6 : 1e-5;
    CheckObjectiveNeverRises(solver, slack, /*a0=*/0.2f, /*nu=*/1.0f, /*reg=*/0.01f);
    CheckObjectiveNeverRises(solver, slack, /*a0=*/4.0f, /*nu=*/0.5f, /*reg=*/0.05f);
  }
}

// (a0, nu) pairs beyond Hu et al. a0 = 8 > 1 + alpha w for weights below
// 3.5: those nonzeros carry negative coefficients c - a0 in the normal
// equations (the Cholesky path's subtracted update). Options() is
// SmallOptions with the pair set.
struct Variant {
  float a0, nu;
  AlsOptions Options(int d, AlsSolver solver) const {
    AlsOptions o = SmallOptions(d, solver);
    o.unobserved_weight = a0;
    o.reg_exponent = nu;
    return o;
  }
};
constexpr Variant kVariants[] = {{0.3f, 0.5f}, {8.0f, 1.0f}, {1.0f, 0.7f}, {0.1f, 0.0f}};

TEST(ImplicitALS, UnobservedWeightAndScaledRidgeHalfStepsEqualDenseSolve) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(testing::Message() << "a0 " << v.a0 << " nu " << v.nu);
    for (int d : {8, 32}) {  // generic and compile-time-sized CG kernels
      AlsOptions cfg = v.Options(d, AlsSolver::kConjugateGradient);
      CheckOneIteration(cfg, 200, 5e-3);
      cfg.solver = AlsSolver::kCholesky;
      CheckOneIteration(cfg, 3, 1e-4);
    }
  }
}

// At a fixed point of exact ALS the gradient of the full dense objective
// (every pair, C and ridges as in the oracle) vanishes in both X and Y.
TEST(ImplicitALS, FullObjectiveGradientVanishesAtCholeskyFixedPoint) {
  const CsrMatrix ui = RandomCsr(24, 18, 0.2, 21);
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(testing::Message() << "a0 " << v.a0 << " nu " << v.nu);
    AlsOptions cfg = v.Options(4, AlsSolver::kCholesky);
    cfg.iterations = 400;
    MatD c, p;
    DenseCP(ui, cfg.alpha, &c, &p, v.a0);
    const VecD user_ridge = DenseRidge(p, cfg.regularization, v.a0, v.nu);
    const VecD item_ridge = DenseRidge(p.transpose(), cfg.regularization, v.a0, v.nu);
    auto gradient_norm = [&](const MatD& x, const MatD& y) {
      const MatD r = c.cwiseProduct(p - x * y.transpose());  // weighted residual
      const MatD gx = -2.0 * r * y + 2.0 * user_ridge.asDiagonal() * x;
      const MatD gy = -2.0 * r.transpose() * x + 2.0 * item_ridge.asDiagonal() * y;
      return std::sqrt(gx.squaredNorm() + gy.squaredNorm());
    };
    // Scale: the gradient at the fixed point's factors shrunk by half.
    ImplicitALS als(cfg);
    ASSERT_TRUE(als.Fit(ui).ok());
    const MatD x = ToDense(als.user_factors()), y = ToDense(als.item_factors());
    const double at_half = gradient_norm(0.5 * x, 0.5 * y);
    ASSERT_GT(at_half, 0.1);
    EXPECT_LT(gradient_norm(x, y), 1e-3 * at_half);
  }
}

TEST(ImplicitALS, FoldInSolvesTheSameObjective) {
  const CsrMatrix ui = RandomCsr(40, 30, 0.12, 17);
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(testing::Message() << "a0 " << v.a0 << " nu " << v.nu);
    AlsOptions cfg = v.Options(6, AlsSolver::kConjugateGradient);
    cfg.iterations = 5;
    ImplicitALS als(cfg);
    ASSERT_TRUE(als.Fit(ui).ok());
    MatD c, p;
    DenseCP(ui, cfg.alpha, &c, &p, v.a0);
    const MatD want = DenseHalfStep(c, p, ToDense(als.item_factors()),
                                    DenseRidge(p, cfg.regularization, v.a0, v.nu));
    for (int64_t u = 0; u < ui.rows; ++u) {
      const int64_t lo = ui.indptr[u], n = ui.row_size(u);
      auto x = als.FoldIn({ui.indices.data() + lo, size_t(n)}, {ui.values.data() + lo, size_t(n)});
      ASSERT_TRUE(x.ok()) << x.status().ToString();
      for (int k = 0; k < cfg.factors; ++k) {
        EXPECT_NEAR((*x)[k], want(u, k), 1e-4 * (1 + std::abs(want(u, k)))) << u;
      }
    }
    // SetFactors + FoldIn (how serving loads a bundle) answers the same.
    ImplicitALS loaded(cfg);
    ASSERT_TRUE(loaded.SetFactors(Matrix(0, 6), als.item_factors()).ok());
    auto a = als.FoldIn(std::vector<int32_t>{2, 5}, std::vector<float>{1, 3});
    auto b = loaded.FoldIn(std::vector<int32_t>{2, 5}, std::vector<float>{1, 3});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
  }
}

TEST(ImplicitALS, BadUnobservedWeightOrRegExponentIsInvalidArgument) {
  const CsrMatrix ui = RandomCsr(10, 8, 0.3, 2);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float a0 : {nan, inf, -0.5f}) {
    AlsOptions cfg = SmallOptions(4, AlsSolver::kConjugateGradient);
    cfg.unobserved_weight = a0;
    const Status st = ImplicitALS(cfg).Fit(ui);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << a0;
    EXPECT_NE(st.message().find("unobserved_weight must be finite and >= 0"), std::string::npos)
        << st.message();
    EXPECT_FALSE(ImplicitALS(cfg).SetFactors(Matrix(10, 4), Matrix(8, 4)).ok());
  }
  for (float nu : {nan, inf, -0.1f, 1.5f}) {
    AlsOptions cfg = SmallOptions(4, AlsSolver::kCholesky);
    cfg.reg_exponent = nu;
    const Status st = ImplicitALS(cfg).Fit(ui);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << nu;
    EXPECT_NE(st.message().find("reg_exponent must be in [0, 1]"), std::string::npos)
        << st.message();
  }
  {  // a ridge past float's range names the first row
    AlsOptions cfg = SmallOptions(4, AlsSolver::kConjugateGradient);
    cfg.regularization = 1e38f;
    cfg.reg_exponent = 1.0f;
    const Status st = ImplicitALS(cfg).Fit(ui);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(st.message().find("user row 0"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("overflows"), std::string::npos) << st.message();
  }
  {  // a0 = 0 and nu in range are fine
    AlsOptions cfg = SmallOptions(4, AlsSolver::kCholesky);
    cfg.unobserved_weight = 0.0f;
    cfg.reg_exponent = 1.0f;
    EXPECT_TRUE(ImplicitALS(cfg).Fit(ui).ok());
  }
}

TEST(ImplicitALS, FoldInEqualsDenseSolveAndRecoversTrainedUsers) {
  const CsrMatrix ui = RandomCsr(80, 60, 0.08, 9);
  for (auto solver : {AlsSolver::kCholesky, AlsSolver::kConjugateGradient}) {
    SCOPED_TRACE(static_cast<int>(solver));
    AlsOptions cfg = SmallOptions(12, solver);
    cfg.iterations = 30;
    ImplicitALS als(cfg);
    ASSERT_TRUE(als.Fit(ui).ok());
    MatD c, p;
    DenseCP(ui, cfg.alpha, &c, &p);
    const MatD want = DenseHalfStep(c, p, ToDense(als.item_factors()), cfg.regularization);
    const double min_cos = solver == AlsSolver::kCholesky ? 0.99 : 0.98;
    for (int64_t u = 0; u < ui.rows; ++u) {
      const int64_t lo = ui.indptr[u], n = ui.row_size(u);
      auto x = als.FoldIn({ui.indices.data() + lo, size_t(n)}, {ui.values.data() + lo, size_t(n)});
      ASSERT_TRUE(x.ok()) << x.status().ToString();
      for (int k = 0; k < cfg.factors; ++k) EXPECT_NEAR((*x)[k], want(u, k), 1e-4) << u;
      EXPECT_GT(Cosine(*x, als.user_factors().row_span(u)), min_cos) << "user " << u;
    }
  }
}

TEST(ImplicitALS, FoldInMergesRepeatedItemsAndHandlesEmptyHistory) {
  const CsrMatrix ui = RandomCsr(20, 15, 0.2, 4);
  ImplicitALS als(SmallOptions(6, AlsSolver::kCholesky));
  ASSERT_TRUE(als.Fit(ui).ok());
  const std::vector<int32_t> split = {3, 7, 3}, merged = {7, 3};
  const std::vector<float> split_w = {1, 2, 4}, merged_w = {2, 5};
  auto a = als.FoldIn(split, split_w);
  auto b = als.FoldIn(merged, merged_w);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int k = 0; k < 6; ++k) EXPECT_FLOAT_EQ((*a)[k], (*b)[k]);
  auto empty = als.FoldIn({}, {});
  ASSERT_TRUE(empty.ok());
  for (float v : *empty) EXPECT_EQ(v, 0.0f);
}

TEST(ImplicitALS, BadInputsAreErrorsNamingTheRow) {
  CsrMatrix ui = RandomCsr(10, 8, 0.3, 2);
  AlsOptions cfg = SmallOptions(4, AlsSolver::kConjugateGradient);
  cfg.iterations = 2;
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f}) {
    CsrMatrix m = ui;
    const int64_t e = m.indptr[3];  // first nonzero of user 3
    m.values[e] = bad;
    ImplicitALS als(cfg);
    const Status st = als.Fit(m);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("user row 3, item column " + std::to_string(m.indices[e])),
              std::string::npos)
        << st.message();
  }
  {  // column out of range
    CsrMatrix m = ui;
    m.indices[0] = 8;
    EXPECT_FALSE(ImplicitALS(cfg).Fit(m).ok());
  }
  {  // weights finite but so large the solve overflows: names the row.
    CsrMatrix m = ui;
    for (int64_t e = m.indptr[5]; e < m.indptr[6]; ++e) m.values[e] = 1e37f;
    ImplicitALS als(cfg);
    const Status st = als.Fit(m);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("user row 5 "), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("non-finite"), std::string::npos) << st.message();
  }
  {  // bad config
    AlsOptions bad = cfg;
    bad.factors = 0;
    EXPECT_FALSE(ImplicitALS(bad).Fit(ui).ok());
  }
  ImplicitALS als(cfg);
  const std::vector<int32_t> items = {1, 2};
  EXPECT_FALSE(als.FoldIn(items, std::vector<float>{1, 1}).ok());  // not fitted
  ASSERT_TRUE(als.Fit(ui).ok());
  EXPECT_FALSE(als.FoldIn(items, std::vector<float>{1}).ok());
  EXPECT_FALSE(als.FoldIn(items, std::vector<float>{1, std::nanf("")}).ok());
  EXPECT_FALSE(als.FoldIn(std::vector<int32_t>{1, 8}, std::vector<float>{1, 1}).ok());
  Matrix nan_items = als.item_factors();
  nan_items.at(6, 1) = std::nanf("");
  const Status st = als.SetFactors(als.user_factors(), nan_items);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("item row 6"), std::string::npos) << st.message();
  EXPECT_FALSE(als.SetFactors(Matrix(10, 3), Matrix(8, 3)).ok());
}

TEST(ImplicitALS, EmptyRowsGetZeroFactors) {
  CsrMatrix ui = RandomCsr(30, 20, 0.05, 8, /*allow_empty=*/true);
  ImplicitALS als(SmallOptions(5, AlsSolver::kConjugateGradient));
  ASSERT_TRUE(als.Fit(ui).ok());
  int empty = 0;
  for (int64_t u = 0; u < ui.rows; ++u) {
    if (ui.row_size(u) > 0) continue;
    ++empty;
    for (float v : als.user_factors().row_span(u)) EXPECT_EQ(v, 0.0f);
  }
  EXPECT_GT(empty, 0);
}

TEST(ImplicitALS, DeterministicForFixedSeedRegardlessOfThreads) {
  const CsrMatrix ui = RandomCsr(300, 200, 0.05, 6);
  AlsOptions cfg = SmallOptions(32, AlsSolver::kConjugateGradient);
  cfg.iterations = 4;
  cfg.num_threads = 2;
  ImplicitALS a(cfg), b(cfg);
  cfg.num_threads = 1;
  ImplicitALS one(cfg);
  cfg.seed = 8;
  ImplicitALS other(cfg);
  ASSERT_TRUE(a.Fit(ui).ok());
  ASSERT_TRUE(b.Fit(ui).ok());
  ASSERT_TRUE(one.Fit(ui).ok());
  ASSERT_TRUE(other.Fit(ui).ok());
  EXPECT_EQ(a.user_factors().data, b.user_factors().data);
  EXPECT_EQ(a.item_factors().data, b.item_factors().data);
  EXPECT_EQ(a.user_factors().data, one.user_factors().data);
  EXPECT_EQ(a.item_factors().data, one.item_factors().data);
  EXPECT_NE(a.item_factors().data, other.item_factors().data);
}

TEST(ImplicitALS, PlantedClustersAreRecovered) {
  // 4 clusters of 25 items; each user draws 12 items, 90% from its cluster.
  constexpr int kClusters = 4, kPerCluster = 25, kItems = kClusters * kPerCluster, kUsers = 400;
  std::mt19937_64 rng(123);
  CsrMatrix ui;
  ui.rows = kUsers;
  ui.cols = kItems;
  ui.indptr.push_back(0);
  for (int u = 0; u < kUsers; ++u) {
    std::vector<int32_t> row;
    for (int k = 0; k < 12; ++k) {
      const int cluster = rng() % 10 == 0 ? static_cast<int>(rng() % kClusters) : u % kClusters;
      row.push_back(static_cast<int32_t>(cluster * kPerCluster + rng() % kPerCluster));
    }
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (int32_t i : row) {
      ui.indices.push_back(i);
      ui.values.push_back(1.0f + static_cast<float>(rng() % 3));
    }
    ui.indptr.push_back(ui.nnz());
  }
  AlsOptions cfg = SmallOptions(16, AlsSolver::kConjugateGradient);
  cfg.iterations = 15;
  ImplicitALS als(cfg);
  ASSERT_TRUE(als.Fit(ui).ok());
  const Matrix& y = als.item_factors();
  double same = 0, diff = 0;
  int n_same = 0, n_diff = 0, nn_same_cluster = 0;
  for (int i = 0; i < kItems; ++i) {
    int best = -1;
    double best_cos = -2;
    for (int j = 0; j < kItems; ++j) {
      if (i == j) continue;
      const double cos = Cosine(y.row_span(i), y.row_span(j));
      if (i / kPerCluster == j / kPerCluster) {
        same += cos;
        ++n_same;
      } else {
        diff += cos;
        ++n_diff;
      }
      if (cos > best_cos) best_cos = cos, best = j;
    }
    nn_same_cluster += best / kPerCluster == i / kPerCluster;
  }
  EXPECT_GT(same / n_same, diff / n_diff + 0.3);
  EXPECT_GE(nn_same_cluster, kItems * 95 / 100);
}

}  // namespace
}  // namespace vitrine
