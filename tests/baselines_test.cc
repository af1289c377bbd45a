#include "engine/baselines.h"

#include <gtest/gtest.h>

#include <Eigen/LU>
#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "engine/split.h"

namespace vitrine {
namespace {

using Dense = Eigen::MatrixXd;

CsrMatrix Csr(const std::vector<std::vector<int32_t>>& rows, int64_t cols) {
  CsrMatrix m;
  m.rows = static_cast<int64_t>(rows.size());
  m.cols = cols;
  m.indptr.push_back(0);
  for (auto r : rows) {
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    for (int32_t j : r) {
      m.indices.push_back(j);
      m.values.push_back(1.0f);
    }
    m.indptr.push_back(m.nnz());
  }
  return m;
}

std::vector<std::vector<int32_t>> RandomRows(int users, int items, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution on(density);
  std::vector<std::vector<int32_t>> rows(users);
  for (int u = 0; u < users; ++u)
    for (int j = 0; j < items; ++j)
      if (on(rng)) rows[u].push_back(j);
  return rows;
}

Dense ToDense(const CsrMatrix& m) {
  Dense d = Dense::Zero(m.rows, m.cols);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) d(r, m.indices[p]) = 1.0;
  return d;
}

std::span<const int32_t> Row(const CsrMatrix& m, int64_t r) {
  return {m.indices.data() + m.indptr[r], static_cast<size_t>(m.row_size(r))};
}

// Checks a list against oracle item-item weights w (score(j) = sum over the
// history of w(h, j)): the list holds unseen items (positive-score ones only
// if `positive_only`), as many as available up to k, and its oracle scores
// equal the k best oracle scores rank by rank (robust to ties).
void ExpectTopKOfOracle(const std::vector<int32_t>& got, std::span<const int32_t> history,
                        const Dense& w, int k, bool positive_only, double tol,
                        bool filter_seen = true) {
  const std::set<int32_t> seen(history.begin(), history.end());
  std::vector<double> best;
  Eigen::VectorXd score = Eigen::VectorXd::Zero(w.cols());
  for (int32_t h : seen) score += w.row(h).transpose();
  for (int64_t j = 0; j < w.cols(); ++j) {
    if ((filter_seen && seen.count(static_cast<int32_t>(j))) ||
        (positive_only && !(score(j) > 1e-9))) {
      continue;
    }
    best.push_back(score(j));
  }
  std::sort(best.rbegin(), best.rend());
  ASSERT_EQ(got.size(), std::min<size_t>(best.size(), static_cast<size_t>(k)));
  std::set<int32_t> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), got.size());
  for (size_t r = 0; r < got.size(); ++r) {
    if (filter_seen) {
      EXPECT_FALSE(seen.count(got[r])) << got[r];
    }
    EXPECT_NEAR(score(got[r]), best[r], tol) << "rank " << r;
  }
}

TEST(TopPopTest, MostPopularUnseenItemsTiesToLowerIndex) {
  const CsrMatrix train = Csr({{0, 1}, {1, 2}, {1}, {3}}, 5);
  TopPop model;
  ASSERT_TRUE(model.Fit(train).ok());
  EXPECT_EQ(model.popularity(), (std::vector<int64_t>{1, 3, 1, 1, 0}));
  EXPECT_EQ(model.Recommend(0, std::vector<int32_t>{3, 1}, 3).value(),
            (std::vector<int32_t>{0, 2, 4}));
  EXPECT_EQ(model.Recommend(-1, std::vector<int32_t>{}, 10).value(),
            (std::vector<int32_t>{1, 0, 2, 3, 4}));
  TopPop all(/*filter_already_seen=*/false);
  ASSERT_TRUE(all.Fit(train).ok());
  EXPECT_EQ(all.Recommend(0, std::vector<int32_t>{1}, 3).value(), (std::vector<int32_t>{1, 0, 2}));
  EXPECT_TRUE(TopPop().Recommend(0, {}, 3).value().empty());  // unfitted
}

// Brute-force item cosine: full dense co-occurrence, per-row sort.
Dense OracleKnn(const CsrMatrix& train, int neighbors, double shrink) {
  const Dense x = ToDense(train);
  const Dense co = x.transpose() * x;
  const int64_t n = train.cols;
  Dense s = Dense::Zero(n, n);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, int64_t>> c;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i || co(i, j) == 0) continue;
      c.emplace_back(co(i, j) / (std::sqrt(co(i, i) * co(j, j)) + shrink), j);
    }
    std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t t = 0; t < c.size() && t < static_cast<size_t>(neighbors); ++t) {
      s(i, c[t].second) = c[t].first;
    }
  }
  return s;
}

TEST(ItemKnnTest, MatchesBruteForceCosine) {
  const CsrMatrix train = Csr(RandomRows(80, 40, 0.12, 5), 40);
  for (auto [neighbors, shrink] : {std::pair{5, 0.0}, std::pair{100, 0.0}, std::pair{7, 10.0}}) {
    SCOPED_TRACE(testing::Message() << "neighbors=" << neighbors << " shrink=" << shrink);
    ItemKnnOptions o;
    o.neighbors = neighbors;
    o.shrink = shrink;
    ItemKnn model(o);
    ASSERT_TRUE(model.Fit(train).ok());
    const Dense want = OracleKnn(train, neighbors, shrink);
    const CsrMatrix& got = model.similarities();
    ASSERT_EQ(got.rows, 40);
    Dense got_dense = Dense::Zero(40, 40);
    for (int64_t i = 0; i < 40; ++i) {
      EXPECT_TRUE(std::is_sorted(got.indices.begin() + got.indptr[i],
                                 got.indices.begin() + got.indptr[i + 1]));
      for (int64_t p = got.indptr[i]; p < got.indptr[i + 1]; ++p) {
        got_dense(i, got.indices[p]) = got.values[p];
      }
    }
    // Same neighbour sets (exact) and values (float precision).
    for (int64_t i = 0; i < 40; ++i)
      for (int64_t j = 0; j < 40; ++j) {
        ASSERT_EQ(got_dense(i, j) != 0, want(i, j) != 0) << i << "," << j;
        EXPECT_NEAR(got_dense(i, j), want(i, j), 1e-6);
      }
    for (int64_t u = 0; u < train.rows; u += 7) {
      ExpectTopKOfOracle(model.Recommend(static_cast<int32_t>(u), Row(train, u), 10).value(),
                         Row(train, u), want, 10, /*positive_only=*/true, 1e-5);
    }
  }
  ItemKnnOptions bad;
  bad.neighbors = 0;
  EXPECT_EQ(ItemKnn(bad).Fit(train).code(), Status::Code::kInvalidArgument);
}

TEST(EaseTest, MatchesDenseInverseAndHasZeroDiagonal) {
  const CsrMatrix train = Csr(RandomRows(30, 12, 0.3, 9), 12);
  const double lambda = 2.0;
  EaseOptions o;
  o.lambda = lambda;
  Ease model(o);
  ASSERT_TRUE(model.Fit(train).ok());

  // Oracle: B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1 by LU in double.
  const Dense x = ToDense(train);
  const Dense p = (x.transpose() * x + lambda * Dense::Identity(12, 12)).inverse();
  const Dense b = Dense::Identity(12, 12) - p * p.diagonal().cwiseInverse().asDiagonal();
  const Matrix& w = model.weights();
  ASSERT_EQ(w.rows, 12u);
  ASSERT_EQ(w.cols, 12u);
  const double scale = b.cwiseAbs().maxCoeff();
  EXPECT_GT(scale, 0.05);  // a non-trivial model
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(w.at(i, i), 0.0f);
    for (int j = 0; j < 12; ++j) EXPECT_NEAR(w.at(i, j), b(i, j), 1e-5 * scale) << i << "," << j;
  }
  for (int64_t u = 0; u < train.rows; ++u) {
    ExpectTopKOfOracle(model.Recommend(static_cast<int32_t>(u), Row(train, u), 5).value(),
                       Row(train, u), b, 5, /*positive_only=*/false, 1e-4);
  }
  o.filter_already_seen = false;
  Ease unfiltered(o);
  ASSERT_TRUE(unfiltered.Fit(train).ok());
  for (int64_t u = 0; u < train.rows; u += 3) {
    ExpectTopKOfOracle(unfiltered.Recommend(static_cast<int32_t>(u), Row(train, u), 12).value(),
                       Row(train, u), b, 12, /*positive_only=*/false, 1e-4,
                       /*filter_seen=*/false);
  }
}

TEST(EaseTest, RefusesLargeCatalogsAndBadLambda) {
  const CsrMatrix train = Csr(RandomRows(10, 12, 0.3, 1), 12);
  EaseOptions o;
  o.max_items = 10;
  const Status st = Ease(o).Fit(train);
  EXPECT_EQ(st.code(), Status::Code::kUnsupported);
  EXPECT_NE(st.message().find("12 items"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("max_items=10"), std::string::npos) << st.message();
  o = EaseOptions();
  o.lambda = 0;
  EXPECT_EQ(Ease(o).Fit(train).code(), Status::Code::kInvalidArgument);
}

// Planted clusters: users of cluster c mostly pick items of cluster c, with a
// skewed popularity inside each cluster plus some global noise. Split in time
// with TemporalSplit, as `vitrine evaluate` does.
struct Planted {
  CsrMatrix train, test;
};

Planted MakePlanted() {
  const int kClusters = 6, kPerCluster = 20, kItems = kClusters * kPerCluster, kUsers = 600;
  std::mt19937 rng(11);
  std::vector<double> w(kPerCluster);
  for (int r = 0; r < kPerCluster; ++r) w[r] = 1.0 / std::pow(r + 1, 0.7);
  std::discrete_distribution<int> in_cluster(w.begin(), w.end());
  std::vector<Event> events;
  int64_t ts = 0;
  for (int u = 0; u < kUsers; ++u) {
    const int c = static_cast<int>(rng() % kClusters);
    const int n = 8 + static_cast<int>(rng() % 10);
    std::set<int> mine;
    while (static_cast<int>(mine.size()) < n) {
      const int j =
          (rng() % 100 < 85) ? c * kPerCluster + in_cluster(rng) : static_cast<int>(rng() % kItems);
      if (!mine.insert(j).second) continue;
      Event e;
      e.user = std::to_string(u);
      e.item = std::to_string(j);
      e.ts = ts++ ^ 0x5bd1;  // interleaved order, still unique
      events.push_back(e);
    }
  }
  Result<SplitResult> split = TemporalSplit(events, {.test_fraction = 0.25});
  EXPECT_TRUE(split.ok());
  auto rows_of = [&](const std::vector<int64_t>& idx) {
    std::vector<std::vector<int32_t>> rows(kUsers);
    for (int64_t i : idx) rows[std::stoi(events[i].user)].push_back(std::stoi(events[i].item));
    return Csr(rows, kItems);
  };
  return {rows_of(split->train), rows_of(split->test)};
}

TEST(PlantedClustersTest, CollaborativeModelsBeatPopularity) {
  const Planted d = MakePlanted();
  TopPop pop;
  ItemKnn knn;
  EaseOptions eo;
  eo.lambda = 50;
  Ease ease(eo);
  ASSERT_TRUE(pop.Fit(d.train).ok());
  ASSERT_TRUE(knn.Fit(d.train).ok());
  ASSERT_TRUE(ease.Fit(d.train).ok());
  EvalOptions o;
  o.k = 10;
  double ndcg[3];
  const Recommender* models[3] = {&pop, &knn, &ease};
  for (int m = 0; m < 3; ++m) {
    Result<EvalReport> r = Evaluate(*models[m], d.train, d.test, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->users, 600);
    std::printf("%s\n", r->ToString().c_str());
    ndcg[m] = r->ndcg;
    if (m == 2) {
      // Same report on one thread.
      EvalOptions one = o;
      one.num_threads = 1;
      Result<EvalReport> r1 = Evaluate(*models[m], d.train, d.test, one);
      ASSERT_TRUE(r1.ok());
      nlohmann::json a = r->ToJson(), b = r1->ToJson();
      a.erase("seconds");
      b.erase("seconds");
      EXPECT_EQ(a, b);
    }
  }
  EXPECT_GT(ndcg[1], 1.5 * ndcg[0]);
  EXPECT_GT(ndcg[2], 1.5 * ndcg[0]);
}

// The contract every model passes: at most k unique in-range unseen items,
// independent of the user id and of the history's order.
TEST(RecommenderContractTest, AllBaselines) {
  const Planted d = MakePlanted();
  TopPop pop;
  ItemKnn knn;
  Ease ease;
  ASSERT_TRUE(pop.Fit(d.train).ok());
  ASSERT_TRUE(knn.Fit(d.train).ok());
  ASSERT_TRUE(ease.Fit(d.train).ok());
  std::mt19937 rng(2);
  for (const Recommender* m : std::initializer_list<const Recommender*>{&pop, &knn, &ease}) {
    SCOPED_TRACE(m->name());
    for (int64_t u = 0; u < d.train.rows; u += 37) {
      const std::span<const int32_t> h = Row(d.train, u);
      const std::vector<int32_t> got = m->Recommend(static_cast<int32_t>(u), h, 10).value();
      EXPECT_LE(got.size(), 10u);
      EXPECT_GE(got.size(), 1u);
      EXPECT_EQ(std::set<int32_t>(got.begin(), got.end()).size(), got.size());
      for (int32_t j : got) {
        EXPECT_GE(j, 0);
        EXPECT_LT(j, d.train.cols);
        EXPECT_EQ(std::find(h.begin(), h.end(), j), h.end());
      }
      std::vector<int32_t> shuffled(h.begin(), h.end());
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      EXPECT_EQ(m->Recommend(-1, shuffled, 10).value(), got);
    }
  }
}

}  // namespace
}  // namespace vitrine
