#include "embed/content_encoder.h"

#include <gtest/gtest.h>

#include <Eigen/SVD>
#include <cmath>
#include <limits>
#include <random>

#include "tests/test_util.h"

namespace vitrine {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Five items; every column type once (see the expectations below).
Catalog FiveItems() {
  Catalog cat;
  for (const char* id : {"a", "b", "c", "d", "e"}) cat.ids.Add(id);
  cat.columns.push_back(CategoricalColumn("color", {"red", "blue", "green"}, {0, 0, 1, 1, 2}));
  cat.columns.push_back(NumericColumn("price", {10, 20, kNaN, 40, 1000}));
  cat.columns.push_back(BoolColumn("in_stock", {1, 0, -1, 1, 1}));
  cat.columns.push_back(
      ListColumn("tags", {"summer", "cotton", "silk", "wool"}, {{0, 1}, {0}, {1, 2}, {}, {3, 0}}));
  cat.columns.push_back(
      TextColumn("title", {"Red summer dress", "Blue summer dress", "Green silk scarf",
                           "Red wool scarf", "Summer dress, summer SALE"}));
  cat.columns.push_back(MakeColumn("notes", ColumnType::kSkip));
  return cat;
}

ContentEncoderOptions SmallOptions() {
  ContentEncoderOptions o;
  o.numeric_buckets = 2;
  return o;
}

Eigen::MatrixXd Dense(const SparseFeatures& x) { return Eigen::MatrixXd(x.cast<double>()); }

TEST(TokenizeTest, SplitsOnNonAlphanumericAndLowercases) {
  EXPECT_EQ(Tokenize("Red-Dress, 2X  size!"),
            (std::vector<std::string>{"red", "dress", "2x", "size"}));
  EXPECT_TRUE(Tokenize(" ,;- ").empty());
}

TEST(ContentEncoderTest, FeatureValuesMatchHandComputation) {
  ContentEncoder enc(SmallOptions());
  auto block = enc.Fit(FiveItems());
  ASSERT_TRUE(block.ok()) << block.status().ToString();
  // The features in the order Fit lays them out (named in failure messages).
  const std::vector<std::string> expected_names = {
      "color=red",     "color=blue",   "color=<other>",      "price",       "price#bucket0",
      "price#bucket1", "in_stock",     "tags=summer",        "tags=cotton", "tags=<other>",
      "title:dress",   "title:summer", "title:summer dress", "title:red",   "title:scarf"};
  ASSERT_EQ(enc.feature_count(), 15);
  auto xs = enc.Features(FiveItems());
  ASSERT_TRUE(xs.ok());
  const Eigen::MatrixXd x = Dense(*xs);
  ASSERT_EQ(x.rows(), 5);
  ASSERT_EQ(x.cols(), 15);

  Eigen::MatrixXd e = Eigen::MatrixXd::Zero(5, 15);
  // color: red x2, blue x2 kept; green (1 < min_count 2) -> other.
  e(0, 0) = e(1, 0) = 1;
  e(2, 1) = e(3, 1) = 1;
  e(4, 2) = 1;
  // price: log1p (name contains "price"), standardised over the 4 known
  // values (population std); 2 quantile buckets cut at the 3rd sorted value.
  const double lv[4] = {std::log(11.0), std::log(21.0), std::log(41.0), std::log(1001.0)};
  const double mean = (lv[0] + lv[1] + lv[2] + lv[3]) / 4;
  double var = 0;
  for (double v : lv) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / 4);
  const int rows_with_price[4] = {0, 1, 3, 4};
  for (int k = 0; k < 4; ++k) {
    e(rows_with_price[k], 3) = std::clamp((lv[k] - mean) / sd, -5.0, 5.0);
    e(rows_with_price[k], k < 2 ? 4 : 5) = 1;
  }
  // in_stock: 1/0, missing -> 0.
  e(0, 6) = e(3, 6) = e(4, 6) = 1;
  // tags: summer (3 items) and cotton (2) kept; silk, wool -> other; rows unit norm.
  const double h = 1 / std::sqrt(2.0);
  e(0, 7) = e(0, 8) = h;
  e(1, 7) = 1;
  e(2, 8) = e(2, 9) = h;
  e(4, 7) = e(4, 9) = h;
  // title: terms with df >= 2, ordered by df then term: dress, summer,
  // "summer dress" (df 3), red, scarf (df 2); idf = ln(6 / (1 + df)) + 1.
  const double i3 = std::log(6.0 / 4) + 1, i2 = std::log(6.0 / 3) + 1;
  auto set_text = [&](int r, std::vector<std::pair<int, double>> tfidf) {
    double n2 = 0;
    for (auto [c, v] : tfidf) n2 += v * v;
    for (auto [c, v] : tfidf) e(r, c) = v / std::sqrt(n2);
  };
  set_text(0, {{10, i3}, {11, i3}, {12, i3}, {13, i2}});
  set_text(1, {{10, i3}, {11, i3}, {12, i3}});
  set_text(2, {{14, i2}});
  set_text(3, {{13, i2}, {14, i2}});
  set_text(4, {{10, i3}, {11, (1 + std::log(2.0)) * i3}, {12, i3}});  // "summer" twice
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 15; ++c) {
      EXPECT_NEAR(x(r, c), e(r, c), 1e-6) << "item " << r << " feature " << expected_names[c];
    }
  }
}

TEST(ContentEncoderTest, ColumnWeightsScaleTheirFeatures) {
  ContentEncoderOptions o = SmallOptions();
  ContentEncoder plain(o);
  ASSERT_TRUE(plain.Fit(FiveItems()).ok());
  o.column_weights = {{"color", 2.0f}, {"price", 0.5f}};
  o.text_weight = 0.25f;
  ContentEncoder weighted(o);
  ASSERT_TRUE(weighted.Fit(FiveItems()).ok());
  const Eigen::MatrixXd x0 = Dense(*plain.Features(FiveItems()));
  const Eigen::MatrixXd x1 = Dense(*weighted.Features(FiveItems()));
  for (int c = 0; c < 15; ++c) {
    const double w = c < 3 ? 2.0 : c < 6 ? 0.5 : c < 10 ? 1.0 : 0.25;
    for (int r = 0; r < 5; ++r) EXPECT_NEAR(x1(r, c), w * x0(r, c), 1e-6);
  }
}

TEST(ContentEncoderTest, RareValuesShareOtherAndFractionalMinCount) {
  ContentEncoderOptions o = SmallOptions();
  o.min_count = 0.5;  // ceil(0.5 * 5) = 3 items
  ContentEncoder enc(o);
  ASSERT_TRUE(enc.Fit(FiveItems()).ok());
  // No color reaches 3 items: only the other bucket is left, and of the tags
  // only summer. Features: color=<other>, price, price#bucket0..1, in_stock,
  // tags=summer, tags=<other>, then the 5 title terms.
  ASSERT_EQ(enc.feature_count(), 12);
  const Eigen::MatrixXd x = Dense(*enc.Features(FiveItems()));
  for (int r = 0; r < 5; ++r) EXPECT_EQ(x(r, 0), 1.0);
  EXPECT_EQ(x(1, 5), 1.0);  // item b: summer only
  EXPECT_EQ(x(1, 6), 0.0);
  // Item c has cotton and silk: both rare now, one "other" feature of weight 1.
  EXPECT_EQ(x(2, 5), 0.0);
  EXPECT_EQ(x(2, 6), 1.0);
}

TEST(ContentEncoderTest, UnseenValuesMapToOtherAtTransform) {
  ContentEncoder enc(SmallOptions());
  ASSERT_TRUE(enc.Fit(FiveItems()).ok());
  Catalog fresh = FiveItems();
  // New dictionary order and an unseen color: lookups go by string.
  fresh.columns[0] = CategoricalColumn("color", {"purple", "blue", "red"}, {0, 1, 2, -1, 0});
  const Eigen::MatrixXd x = Dense(*enc.Features(fresh));
  EXPECT_EQ(x(0, 2), 1.0);                 // purple -> other
  EXPECT_EQ(x(1, 1), 1.0);                 // blue
  EXPECT_EQ(x(2, 0), 1.0);                 // red
  EXPECT_EQ(x.row(3).head(3).sum(), 0.0);  // missing
}

TEST(ContentEncoderTest, BlockPreservesCentredGeometryWhenDimCoversRank) {
  // 15 features, 5 items: the centred rank is <= 4 < k = 5, so (x - mean) V
  // keeps every inner product of the centred features.
  ContentEncoder enc(SmallOptions());
  auto block = enc.Fit(FiveItems());
  ASSERT_TRUE(block.ok());
  ASSERT_EQ(enc.dim(), 5);
  Eigen::MatrixXd x = Dense(*enc.Features(FiveItems()));
  x.rowwise() -= x.colwise().mean();
  const Eigen::MatrixXd gram = x * x.transpose();
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 5; ++j) {
      double ip = 0;
      for (int c = 0; c < 5; ++c) ip += double(block->at(i, c)) * block->at(j, c);
      EXPECT_NEAR(ip, gram(i, j), 1e-4) << i << "," << j;
    }
  }
}

TEST(ContentEncoderTest, TransformReproducesFitAndIsDeterministic) {
  ContentEncoder a(SmallOptions()), b(SmallOptions());
  auto fa = a.Fit(FiveItems());
  auto fb = b.Fit(FiveItems());
  ASSERT_TRUE(fa.ok() && fb.ok());
  EXPECT_EQ(fa->data, fb->data);
  auto t = a.Transform(FiveItems());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->data, fa->data);
  // A new catalog holding only item d encodes it exactly as in Fit.
  Catalog one;
  one.ids.Add("d2");
  one.columns.push_back(CategoricalColumn("color", {"blue"}, {0}));
  one.columns.push_back(NumericColumn("price", {40}));
  one.columns.push_back(BoolColumn("in_stock", {1}));
  one.columns.push_back(ListColumn("tags", {}, {{}}));
  one.columns.push_back(TextColumn("title", {"Red wool scarf"}));
  auto t1 = a.Transform(one);
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  ASSERT_EQ(t1->rows, 1u);
  for (size_t j = 0; j < t1->cols; ++j) EXPECT_EQ(t1->at(0, j), fa->at(3, j));
}

TEST(ContentEncoderTest, JsonRoundTripTransformsIdentically) {
  ContentEncoderOptions o = SmallOptions();
  o.column_weights = {{"tags", 0.7f}};
  ContentEncoder enc(o);
  auto fit = enc.Fit(FiveItems());
  ASSERT_TRUE(fit.ok());
  const std::string text = enc.ToJson().dump();
  auto back = ContentEncoder::FromJson(nlohmann::json::parse(text), enc.projection());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->feature_count(), enc.feature_count());
  auto t = back->Transform(FiveItems());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->data, fit->data);

  Matrix wrong(enc.projection().rows + 1, enc.projection().cols);
  auto bad = ContentEncoder::FromJson(nlohmann::json::parse(text), wrong);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("projection"), std::string::npos);
  nlohmann::json broken = nlohmann::json::parse(text);
  broken["columns"][0].erase("values");
  EXPECT_FALSE(ContentEncoder::FromJson(broken, enc.projection()).ok());
}

TEST(ContentEncoderTest, ErrorsNameTheColumn) {
  ContentEncoder enc(SmallOptions());
  ASSERT_TRUE(enc.Fit(FiveItems()).ok());
  Catalog wrong_type = FiveItems();
  wrong_type.columns[1] = TextColumn("price", {"1", "2", "3", "4", "5"});
  auto r = enc.Transform(wrong_type);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'price' is text"), std::string::npos)
      << r.status().message();
  Catalog missing = FiveItems();
  missing.columns.erase(missing.columns.begin() + 2);
  auto m = enc.Transform(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'in_stock'"), std::string::npos);
  Catalog empty;
  EXPECT_FALSE(ContentEncoder().Fit(empty).ok());
  Catalog no_columns;
  no_columns.ids.Add("x");
  EXPECT_FALSE(ContentEncoder().Fit(no_columns).ok());
}

// A dense n x d matrix with singular values 10 * decay^i and random singular vectors.
Eigen::MatrixXd WithSpectrum(int n, int d, double decay, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  auto gauss = [&](int r, int c) {
    Eigen::MatrixXd m(r, c);
    for (int j = 0; j < c; ++j)
      for (int i = 0; i < r; ++i) m(i, j) = g(rng);
    return m;
  };
  const int r = std::min(n, d);
  Eigen::HouseholderQR<Eigen::MatrixXd> qu(gauss(n, r)), qv(gauss(d, r));
  const Eigen::MatrixXd u = qu.householderQ() * Eigen::MatrixXd::Identity(n, r);
  const Eigen::MatrixXd v = qv.householderQ() * Eigen::MatrixXd::Identity(d, r);
  Eigen::VectorXd s(r);
  for (int i = 0; i < r; ++i) s[i] = 10 * std::pow(decay, i);
  return u * s.asDiagonal() * v.transpose();
}

// Distance between the spans of orthonormal bases a and b: ||a a^T - b b^T||.
double SubspaceDistance(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a * a.transpose() - b * b.transpose()).norm();
}

TEST(RandomizedSvdTest, MatchesJacobiSvd) {
  const Eigen::MatrixXd a = WithSpectrum(80, 50, 0.7, 7);
  const int k = 6;
  TruncatedSvd r = RandomizedSvd(a.sparseView(), Eigen::VectorXd(), k, {10, 3, 1, {}});
  Eigen::JacobiSVD<Eigen::MatrixXd> exact(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  ASSERT_EQ(r.s.size(), k);
  for (int i = 0; i < k; ++i) EXPECT_NEAR(r.s[i], exact.singularValues()[i], 1e-8 * 10) << i;
  EXPECT_LT(SubspaceDistance(r.v, exact.matrixV().leftCols(k)), 1e-6);
  EXPECT_LT(SubspaceDistance(r.u, exact.matrixU().leftCols(k)), 1e-6);
  // The factors reconstruct the best rank-k approximation.
  const Eigen::MatrixXd best = exact.matrixU().leftCols(k) *
                               exact.singularValues().head(k).asDiagonal() *
                               exact.matrixV().leftCols(k).transpose();
  EXPECT_LT((r.u * r.s.asDiagonal() * r.v.transpose() - best).norm(), 1e-6);
  // Orthonormal columns and the sign convention.
  EXPECT_LT((r.v.transpose() * r.v - Eigen::MatrixXd::Identity(k, k)).norm(), 1e-10);
  for (int j = 0; j < k; ++j) {
    Eigen::Index arg;
    r.v.col(j).cwiseAbs().maxCoeff(&arg);
    EXPECT_GT(r.v(arg, j), 0);
  }
}

TEST(RandomizedSvdTest, CentredMatchesBdcSvdOfCentredMatrix) {
  Eigen::MatrixXd a = WithSpectrum(60, 40, 0.8, 3);
  a.array() += 0.5;  // a large common offset that centring must remove
  const Eigen::VectorXd mean = a.colwise().mean().transpose();
  const int k = 5;
  TruncatedSvd r = RandomizedSvd(a.sparseView(), mean, k, {10, 4, 9, {}});
  const Eigen::MatrixXd c = a.rowwise() - mean.transpose();
  Eigen::BDCSVD<Eigen::MatrixXd> exact(c, Eigen::ComputeThinU | Eigen::ComputeThinV);
  for (int i = 0; i < k; ++i) EXPECT_NEAR(r.s[i], exact.singularValues()[i], 1e-6) << i;
  EXPECT_LT(SubspaceDistance(r.v, exact.matrixV().leftCols(k)), 1e-5);
}

TEST(RandomizedSvdTest, PowerIterationsImproveAFlatSpectrum) {
  // Slow decay: without power iterations the estimates are visibly off.
  const Eigen::MatrixXd a = WithSpectrum(120, 100, 0.97, 11);
  Eigen::JacobiSVD<Eigen::MatrixXd> exact(a);
  const int k = 5;
  auto err = [&](int q) {
    TruncatedSvd r = RandomizedSvd(a.sparseView(), Eigen::VectorXd(), k, {10, q, 5, {}});
    return (r.s - exact.singularValues().head(k)).norm();
  };
  const double e0 = err(0), e4 = err(4);
  EXPECT_LT(e4, e0 / 3) << "q=0 error " << e0 << ", q=4 error " << e4;
}

}  // namespace
}  // namespace vitrine
