#include "embed/cold_start.h"

#include <gtest/gtest.h>

#include <Eigen/QR>
#include <cmath>
#include <limits>
#include <random>

#include "tests/test_util.h"

namespace vitrine {
namespace {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Matrix FromEigen(const RowMat& m) {
  Matrix out(m.rows(), m.cols());
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index j = 0; j < m.cols(); ++j) out.at(i, j) = static_cast<float>(m(i, j));
  return out;
}

RowMat ToEigen(const Matrix& m) {
  RowMat out(m.rows, m.cols);
  for (size_t i = 0; i < m.rows; ++i)
    for (size_t j = 0; j < m.cols; ++j) out(i, j) = m.at(i, j);
  return out;
}

RowMat Gaussian(int r, int c, std::mt19937* rng, double scale = 1) {
  std::normal_distribution<double> g(0, scale);
  RowMat m(r, c);
  for (int i = 0; i < r; ++i)
    for (int j = 0; j < c; ++j) m(i, j) = g(*rng);
  return m;
}

// Oracle: ridge as an ordinary least-squares problem on the augmented system
// [X 1; sqrt(lambda) I 0] [W; b] = [Y; 0], solved by column-pivoted QR
// (no normal equations, no centring; the bias column is not penalised).
void OracleRidge(const RowMat& x, const RowMat& y, double lambda, bool bias, Eigen::MatrixXd* w,
                 Eigen::RowVectorXd* b) {
  const Eigen::Index n = x.rows(), d = x.cols(), p = d + (bias ? 1 : 0);
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(n + d, p);
  a.topLeftCorner(n, d) = x;
  if (bias) a.col(d).head(n).setOnes();
  a.bottomLeftCorner(d, d) = std::sqrt(lambda) * Eigen::MatrixXd::Identity(d, d);
  Eigen::MatrixXd rhs = Eigen::MatrixXd::Zero(n + d, y.cols());
  rhs.topRows(n) = y;
  const Eigen::MatrixXd sol = a.colPivHouseholderQr().solve(rhs);
  *w = sol.topRows(d);
  *b = bias ? Eigen::RowVectorXd(sol.row(d)) : Eigen::RowVectorXd::Zero(y.cols());
}

TEST(ColdStartTest, RidgeMatchesIndependentLeastSquaresAndRecoversMap) {
  std::mt19937 rng(1);
  const int n = 400, dx = 12, dy = 8;
  const RowMat x = Gaussian(n, dx, &rng);
  const RowMat w_true = Gaussian(dx, dy, &rng);
  const Eigen::RowVectorXd b_true = Gaussian(1, dy, &rng);
  const RowMat y = ((x * w_true).rowwise() + b_true) + Gaussian(n, dy, &rng, 0.01);
  for (bool bias : {true, false}) {
    for (double lambda : {1e-3, 10.0}) {
      ColdStartOptions o;
      o.lambda = lambda;
      o.fit_bias = bias;
      o.normalize_targets = false;
      ColdStartProjector p(o);
      const Matrix xf = FromEigen(x), yf = FromEigen(y);
      // Fit sees the float copies; the oracle gets the same values.
      ASSERT_TRUE(p.Fit(xf, yf).ok());
      Eigen::MatrixXd w;
      Eigen::RowVectorXd b;
      OracleRidge(ToEigen(xf), ToEigen(yf), lambda, bias, &w, &b);
      for (int i = 0; i < dx; ++i)
        for (int j = 0; j < dy; ++j)
          EXPECT_NEAR(p.weights().at(i, j), w(i, j), 1e-5) << "bias " << bias << " l " << lambda;
      for (int j = 0; j < dy; ++j) EXPECT_NEAR(p.bias()[j], b[j], 1e-5);
      if (bias && lambda < 1) {
        for (int i = 0; i < dx; ++i)
          for (int j = 0; j < dy; ++j) EXPECT_NEAR(p.weights().at(i, j), w_true(i, j), 5e-3);
        for (int j = 0; j < dy; ++j) EXPECT_NEAR(p.bias()[j], b_true[j], 5e-3);
        auto pred = p.Predict(xf);
        ASSERT_TRUE(pred.ok());
        EXPECT_LT((ToEigen(*pred) - y).norm() / y.norm(), 0.01);
      }
    }
  }
}

struct Synthetic {
  Matrix features, cf;  // truth
};

// CF rows are a linear map of [content | visual] plus noise.
Synthetic MakeSynthetic(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  const RowMat content = Gaussian(n, 16, &rng), visual = Gaussian(n, 8, &rng);
  RowMat x(n, 24);
  x << content, visual;
  const RowMat w = Gaussian(24, 10, &rng);
  const RowMat cf = x * w + Gaussian(n, 10, &rng, 0.5);
  Matrix c = FromEigen(content), v = FromEigen(visual);
  auto feats = ConcatColumns({&c, &v});
  EXPECT_TRUE(feats.ok());
  return {std::move(*feats), FromEigen(cf)};
}

TEST(ColdStartTest, ColdItemsLandNearTheirWarmTruth) {
  const int n = 500;
  Synthetic s = MakeSynthetic(n, 2);
  std::vector<int64_t> counts(n, 20);
  Matrix cf = s.cf;
  for (int i = 0; i < n; i += 10) {  // 50 cold items: their cf rows are junk
    counts[i] = i % 20 == 0 ? 0 : 3;
    for (size_t j = 0; j < cf.cols; ++j) cf.at(i, j) = 0;
  }
  ColdStartOptions o;
  o.lambda = 1.0;
  ColdStartProjector p;
  auto cold = FillColdRows(s.features, counts, o, &cf, &p);
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  ASSERT_TRUE(p.fitted());
  EXPECT_EQ(p.input_dim(), 24u);
  double near = 0, random = 0;
  int m = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ((*cold)[i], i % 10 == 0) << i;
    if (!(*cold)[i]) {
      for (size_t j = 0; j < cf.cols; ++j) ASSERT_EQ(cf.at(i, j), s.cf.at(i, j));  // untouched
      continue;
    }
    const double c = Cosine(cf.row_span(i), s.cf.row_span(i));
    EXPECT_GT(c, 0.9) << "cold item " << i;
    near += c;
    random += std::fabs(Cosine(cf.row_span(i), s.cf.row_span((i * 7 + 13) % n)));
    ++m;
  }
  near /= m;
  random /= m;
  EXPECT_GT(near, 0.95);
  EXPECT_LT(random, 0.4);
}

TEST(ColdStartTest, ThresholdSemantics) {
  Synthetic s = MakeSynthetic(60, 3);
  std::vector<int64_t> counts(60, 100);
  counts[1] = 4;  // below 5: cold
  counts[2] = 5;  // exactly 5: warm
  counts[3] = 0;  // cold
  counts[4] = 6;  // warm
  Matrix cf = s.cf;
  auto cold = FillColdRows(s.features, counts, {}, &cf);
  ASSERT_TRUE(cold.ok());
  EXPECT_TRUE((*cold)[1]);
  EXPECT_FALSE((*cold)[2]);
  EXPECT_TRUE((*cold)[3]);
  EXPECT_FALSE((*cold)[4]);
  EXPECT_EQ(std::count(cold->begin(), cold->end(), true), 2);

  ColdStartOptions strict;
  strict.min_interactions = 101;  // nobody is warm
  Matrix cf2 = s.cf;
  auto none = FillColdRows(s.features, counts, strict, &cf2);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("101"), std::string::npos);

  ColdStartOptions all_warm;
  all_warm.min_interactions = 0;
  Matrix cf3 = s.cf;
  auto warm = FillColdRows(s.features, counts, all_warm, &cf3);
  ASSERT_TRUE(warm.ok());
  EXPECT_EQ(std::count(warm->begin(), warm->end(), true), 0);
  EXPECT_EQ(cf3.data, s.cf.data);
}

TEST(ColdStartTest, NormalizedTargetsPredictDirections) {
  // Targets of wildly different norms: with normalize_targets the fit sees
  // unit rows, so predictions have norm ~1.
  Synthetic s = MakeSynthetic(300, 4);
  for (size_t i = 0; i < s.cf.rows; ++i)
    for (size_t j = 0; j < s.cf.cols; ++j) s.cf.at(i, j) *= 1 + (i % 7) * 50;
  ColdStartProjector p;
  ASSERT_TRUE(p.Fit(s.features, s.cf).ok());
  auto pred = p.Predict(s.features);
  ASSERT_TRUE(pred.ok());
  double mean_norm = 0;
  for (size_t i = 0; i < pred->rows; ++i) {
    double n2 = 0;
    for (size_t j = 0; j < pred->cols; ++j) n2 += double(pred->at(i, j)) * pred->at(i, j);
    mean_norm += std::sqrt(n2) / pred->rows;
    EXPECT_GT(Cosine(pred->row_span(i), s.cf.row_span(i)), 0.8) << i;
  }
  EXPECT_NEAR(mean_norm, 1.0, 0.2);
}

TEST(ColdStartTest, ErrorsAndJsonRoundTrip) {
  Synthetic s = MakeSynthetic(50, 5);
  ColdStartProjector p;
  EXPECT_FALSE(p.Predict(s.features).ok());  // not fitted
  Matrix short_y(49, 10);
  EXPECT_FALSE(p.Fit(s.features, short_y).ok());
  Matrix bad = s.features;
  bad.at(7, 3) = std::numeric_limits<float>::quiet_NaN();
  Status st = p.Fit(bad, s.cf);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("features row 7"), std::string::npos) << st.message();
  ColdStartOptions neg;
  neg.lambda = -1;
  EXPECT_FALSE(ColdStartProjector(neg).Fit(s.features, s.cf).ok());

  ASSERT_TRUE(p.Fit(s.features, s.cf).ok());
  Matrix narrow(3, 5);
  EXPECT_FALSE(p.Predict(narrow).ok());
  auto back = ColdStartProjector::FromJson(nlohmann::json::parse(p.ToJson().dump()), p.weights());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Predict(s.features)->data, p.Predict(s.features)->data);
  auto wrong = ColdStartProjector::FromJson(p.ToJson(), Matrix(3, 3));
  EXPECT_FALSE(wrong.ok());

  Matrix a(2, 3), b(3, 1);
  EXPECT_FALSE(ConcatColumns({&a, &b}).ok());
  std::vector<int64_t> counts(49, 10);
  Matrix cf = s.cf;
  EXPECT_FALSE(FillColdRows(s.features, counts, {}, &cf).ok());
}

}  // namespace
}  // namespace vitrine
