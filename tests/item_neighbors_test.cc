#include "embed/item_neighbors.h"

#include <gtest/gtest.h>


#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "core/file_util.h"
#include "embed/ease.h"
#include "engine/baselines.h"
#include "tests/test_util.h"
#include "scratch_dir.h"

namespace vitrine {
namespace {

constexpr auto kCosine = ItemNeighborsOptions::Method::kCosine;

// The oracle: dense items x items cosine with shrinkage, in double, summing
// users in ascending order; then each row's top n by (score desc, index asc).
std::vector<std::vector<std::pair<int32_t, double>>> DenseTopN(const CsrMatrix& x, int n,
                                                               double shrink) {
  const int64_t items = x.cols;
  std::vector<double> dense(static_cast<size_t>(x.rows * items), 0.0);
  for (int64_t u = 0; u < x.rows; ++u)
    for (int64_t p = x.indptr[u]; p < x.indptr[u + 1]; ++p)
      dense[u * items + x.indices[p]] = x.values[p];
  std::vector<std::vector<std::pair<int32_t, double>>> out(static_cast<size_t>(items));
  for (int64_t i = 0; i < items; ++i) {
    std::vector<std::pair<double, int32_t>> row;
    for (int64_t j = 0; j < items; ++j) {
      if (j == i) continue;
      double dot = 0, si = 0, sj = 0;
      for (int64_t u = 0; u < x.rows; ++u) {
        const double a = dense[u * items + i], b = dense[u * items + j];
        dot += a * b;
        si += a * a;
        sj += b * b;
      }
      if (dot > 0) row.emplace_back(dot / (std::sqrt(si * sj) + shrink), static_cast<int32_t>(j));
    }
    std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    row.resize(std::min(row.size(), static_cast<size_t>(n)));
    for (const auto& [s, j] : row) out[i].emplace_back(j, s);
    std::sort(out[i].begin(), out[i].end());
  }
  return out;
}

TEST(ItemNeighborsTest, BuildMatchesDenseReference) {
  const CsrMatrix x = RandomInteractions(80, 50, 0.15, 7, /*binary=*/false);
  ItemNeighborsOptions opts;
  opts.method = kCosine;
  opts.neighbors = 6;
  opts.shrink = 2.0;
  opts.use_weights = true;
  auto nb = ItemNeighbors::Build(x, opts);
  ASSERT_TRUE(nb.ok()) << nb.status().ToString();
  const auto want = DenseTopN(x, opts.neighbors, opts.shrink);
  ASSERT_EQ(nb->num_items(), 50);
  int64_t total = 0;
  for (int32_t i = 0; i < 50; ++i) {
    const auto cols = nb->neighbors(i);
    const auto sims = nb->scores(i);
    ASSERT_EQ(cols.size(), want[i].size()) << "item " << i;
    for (size_t t = 0; t < cols.size(); ++t) {
      EXPECT_EQ(cols[t], want[i][t].first) << "item " << i;
      EXPECT_FLOAT_EQ(sims[t], static_cast<float>(want[i][t].second)) << "item " << i;
    }
    total += static_cast<int64_t>(cols.size());
  }
  EXPECT_GT(total, 50 * 3);  // the data is dense enough for most rows to fill up
}

// EASE neighbours are each row's largest positive weights of the dense EASE
// solution (embed/ease.h), the oracle here.
// Oracle: the dense EASE solve, each row sorted by hand. The row keeps the
// `neighbors` largest positive weights and the `negative_neighbors` most
// negative ones, with their exact values.
TEST(ItemNeighborsTest, EaseKeepsTheTopAndTheBottomOfEachDenseRow) {
  const CsrMatrix x = RandomInteractions(150, 40, 0.15, 5, /*binary=*/true);
  auto b = FitEase(x, 10.0, 1000);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  for (int negative : {0, 3}) {
    auto nb = ItemNeighbors::Build(x, {.method = ItemNeighborsOptions::Method::kEase,
                                       .ease_lambda = 10.0,
                                       .neighbors = 6,
                                       .negative_neighbors = negative});
    ASSERT_TRUE(nb.ok()) << nb.status().ToString();
    int negatives_seen = 0;
    for (int32_t i = 0; i < 40; ++i) {
      std::vector<std::pair<float, int32_t>> up, down;
      for (int32_t j = 0; j < 40; ++j) {
        const float w = b->row(static_cast<size_t>(i))[j];
        if (j != i && w > 0) up.emplace_back(w, j);
        if (j != i && w < 0) down.emplace_back(-w, j);
      }
      std::map<int32_t, float> want;
      for (auto* side : {&up, &down}) {
        std::sort(side->begin(), side->end(), [](auto& p, auto& q) {
          return p.first > q.first || (p.first == q.first && p.second < q.second);
        });
        side->resize(std::min<size_t>(side == &up ? 6 : negative, side->size()));
        for (auto& [w, j] : *side) want[j] = b->row(static_cast<size_t>(i))[j];
      }
      const auto cols = nb->neighbors(i);
      const auto vals = nb->scores(i);
      std::map<int32_t, float> got;
      for (size_t t = 0; t < cols.size(); ++t) got[cols[t]] = vals[t];
      EXPECT_EQ(got, want) << "row " << i << " negative " << negative;
      for (float v : vals) negatives_seen += v < 0;
    }
    if (negative > 0) EXPECT_GT(negatives_seen, 0);
  }
  EXPECT_EQ(EffectiveMethod({.ease_max_items = 39}, 40), ItemNeighborsOptions::Method::kCosine);
}

// Negative weights lower a candidate's score but never make one.
TEST(ItemNeighborsTest, NegativeWeightsLowerScoresAndNeverMakeACandidate) {
  CsrMatrix s;
  s.rows = s.cols = 4;
  // 0 -> 2 (+0.5), 0 -> 3 (-0.2); 1 -> 2 (-0.7), 1 -> 3 (+0.4).
  s.indptr = {0, 2, 4, 4, 4};
  s.indices = {2, 3, 2, 3};
  s.values = {0.5f, -0.2f, -0.7f, 0.4f};
  auto nb = ItemNeighbors::FromCsr(s);
  ASSERT_TRUE(nb.ok()) << nb.status().ToString();
  const std::vector<int32_t> history = {0, 1};
  const auto got = nb->Query(history, {}, {.k = 10});
  ASSERT_EQ(got.size(), 1u);  // item 2 sums to -0.2: not a candidate
  EXPECT_EQ(got[0].item, 3);
  EXPECT_FLOAT_EQ(got[0].score, 0.2f);
}

TEST(ItemNeighborsTest, BinaryWeightsReproduceItemKnnBaseline) {
  const CsrMatrix x = RandomInteractions(120, 70, 0.1, 11, /*binary=*/true);
  ItemKnnOptions ko;
  ko.neighbors = 8;
  ko.shrink = 3.0;
  ItemKnn knn(ko);
  ASSERT_TRUE(knn.Fit(x).ok());
  auto nb = ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 8, .shrink = 3.0});
  ASSERT_TRUE(nb.ok());
  const CsrMatrix& a = knn.similarities();
  const CsrMatrix& b = nb->similarities();
  EXPECT_EQ(a.indptr, b.indptr);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.values, b.values);
}

TEST(ItemNeighborsTest, UnweightedIgnoresTheStoredValues) {
  CsrMatrix x = RandomInteractions(60, 30, 0.2, 31, /*binary=*/false);
  auto a = ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 5, .shrink = 1.0});
  for (float& v : x.values) v = 1.0f;
  auto b = ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 5, .shrink = 1.0, .use_weights = true});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->similarities().indices, b->similarities().indices);
  EXPECT_EQ(a->similarities().values, b->similarities().values);
}

TEST(ItemNeighborsTest, MaxItemsPerUserKeepsTheLargestWeights) {
  // User 0 has items 0..3 with weights 1, 4, 3, 2; with a cap of 2 only items
  // 1 and 2 co-occur for it. User 1 has items 0 and 3.
  CsrMatrix x;
  x.rows = 2;
  x.cols = 4;
  x.indptr = {0, 4, 6};
  x.indices = {0, 1, 2, 3, 0, 3};
  x.values = {1, 4, 3, 2, 1, 1};
  auto nb = ItemNeighbors::Build(
      x, {.method = kCosine, .neighbors = 10, .shrink = 0, .use_weights = true,
          .max_items_per_user = 2});
  ASSERT_TRUE(nb.ok());
  ASSERT_EQ(nb->neighbors(1).size(), 1u);
  EXPECT_EQ(nb->neighbors(1)[0], 2);
  ASSERT_EQ(nb->neighbors(0).size(), 1u);
  EXPECT_EQ(nb->neighbors(0)[0], 3);  // from user 1 only
  EXPECT_FLOAT_EQ(nb->scores(0)[0], 1.0f);
}

TEST(ItemNeighborsTest, RejectsBadOptionsAndWeights) {
  CsrMatrix x = RandomInteractions(5, 5, 0.5, 1, true);
  EXPECT_EQ(ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 0}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 5, .shrink = -1}).status().code(),
            Status::Code::kInvalidArgument);
  x.values[0] = -1.0f;
  EXPECT_TRUE(ItemNeighbors::Build(x).ok());  // weights unused by default
  const Status st = ItemNeighbors::Build(x, {.method = kCosine, .use_weights = true}).status();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("user row 0"), std::string::npos) << st.message();
}

// score(c) = sum_t w_t * S[h_t][c] over a dense copy of the stored S.
std::vector<double> BruteForceScores(const ItemNeighbors& nb, const std::vector<int32_t>& hist,
                                     const std::vector<float>& w) {
  const int64_t n = nb.num_items();
  std::vector<double> dense(static_cast<size_t>(n * n), 0.0);
  for (int32_t i = 0; i < n; ++i) {
    const auto cols = nb.neighbors(i);
    const auto sims = nb.scores(i);
    for (size_t t = 0; t < cols.size(); ++t) dense[i * n + cols[t]] = sims[t];
  }
  std::vector<double> score(static_cast<size_t>(n), 0.0);
  for (size_t t = 0; t < hist.size(); ++t)
    for (int64_t c = 0; c < n; ++c) score[c] += (w.empty() ? 1.0 : w[t]) * dense[hist[t] * n + c];
  return score;
}

TEST(ItemNeighborsTest, QueryMatchesBruteForceUnderFilters) {
  const CsrMatrix x = RandomInteractions(200, 60, 0.08, 23, false);
  auto nb = ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 10, .shrink = 1.0, .use_weights = true});
  ASSERT_TRUE(nb.ok());
  std::mt19937 rng(5);
  size_t returned = 0;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<int32_t> hist;
    std::vector<float> w;
    const int len = 1 + static_cast<int>(rng() % 6);
    for (int t = 0; t < len; ++t) {
      hist.push_back(static_cast<int32_t>(rng() % 60));  // repeats allowed
      w.push_back(0.25f + static_cast<float>(rng() % 8) * 0.25f);
    }
    Bitmap allowed;
    for (uint32_t j = 0; j < 60; ++j)
      if (rng() % 3 != 0) allowed.add(j);
    NeighborQueryParams p;
    p.k = 1 + static_cast<int>(rng() % 12);
    p.exclude_history = trial % 2 == 0;
    p.allowed = trial % 4 == 3 ? nullptr : &allowed;
    const auto got = nb->Query(hist, trial % 5 == 4 ? std::vector<float>{} : w, p);
    const auto score = BruteForceScores(*nb, hist, trial % 5 == 4 ? std::vector<float>{} : w);

    std::vector<std::pair<double, int32_t>> oracle;
    for (int32_t c = 0; c < 60; ++c) {
      const bool in_hist = std::find(hist.begin(), hist.end(), c) != hist.end();
      if (score[c] > 1e-9 && !(p.exclude_history && in_hist) &&
          (p.allowed == nullptr || allowed.contains(c)))
        oracle.emplace_back(score[c], c);
    }
    std::sort(oracle.begin(), oracle.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    ASSERT_EQ(got.size(), std::min(oracle.size(), static_cast<size_t>(p.k))) << "trial " << trial;
    returned += got.size();
    for (size_t r = 0; r < got.size(); ++r) {
      // Rank by rank the oracle's scores (robust to ties), and each returned
      // item's own oracle score.
      EXPECT_NEAR(got[r].score, oracle[r].first, 1e-5) << "trial " << trial << " rank " << r;
      EXPECT_NEAR(got[r].score, score[got[r].item], 1e-5) << "trial " << trial;
      if (p.allowed) {
        EXPECT_TRUE(allowed.contains(got[r].item));
      }
      if (p.exclude_history) {
        EXPECT_EQ(std::find(hist.begin(), hist.end(), got[r].item), hist.end());
      }
      if (r > 0) {
        EXPECT_GE(got[r - 1].score, got[r].score);
      }
    }
  }
  EXPECT_GT(returned, 150u);  // the trials are not vacuous
}

TEST(ItemNeighborsTest, QueryEdgeCases) {
  const CsrMatrix x = RandomInteractions(50, 20, 0.2, 3, true);
  auto nb = ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 5});
  ASSERT_TRUE(nb.ok());
  const std::vector<int32_t> hist = {1, -4, 999};  // out-of-range entries are ignored
  EXPECT_EQ(nb->Query(hist, {}, {.k = 10}).size(),
            nb->Query(std::vector<int32_t>{1}, {}, {.k = 10}).size());
  EXPECT_TRUE(nb->Query(hist, {}, {.k = 0}).empty());
  const std::vector<float> short_w = {1.0f};
  EXPECT_TRUE(nb->Query(hist, short_w, {.k = 5}).empty());  // weights of the wrong length
  Bitmap none;
  EXPECT_TRUE(nb->Query(hist, {}, {.k = 5, .allowed = &none}).empty());
  EXPECT_TRUE(ItemNeighbors().Query(hist, {}, {}).empty());
}

TEST(ItemNeighborsTest, LargeSparseCatalogStaysSparse) {
  // 30k items is past the point where a dense items x items model (3.6 GB in
  // float) is acceptable; the result must hold at most items * neighbors.
  const int items = 30000, users = 20000;
  std::mt19937 rng(9);
  CsrMatrix x;
  x.rows = users;
  x.cols = items;
  x.indptr.push_back(0);
  for (int u = 0; u < users; ++u) {
    std::vector<int32_t> row;
    const int base = static_cast<int>(rng() % items);
    for (int t = 0; t < 8; ++t) row.push_back((base + static_cast<int>(rng() % 50)) % items);
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (int32_t j : row) {
      x.indices.push_back(j);
      x.values.push_back(1.0f);
    }
    x.indptr.push_back(x.nnz());
  }
  auto nb = ItemNeighbors::Build(x, {.method = kCosine, .neighbors = 20});
  ASSERT_TRUE(nb.ok());
  EXPECT_LE(nb->similarities().nnz(), int64_t{items} * 20);
  EXPECT_LT(nb->MemoryBytes(), size_t{items} * 20 * 8 + size_t{items + 1} * 8 + 1024);
  const auto got = nb->Query(std::vector<int32_t>{x.indices[0]}, {}, {.k = 10});
  EXPECT_FALSE(got.empty());
}

class ItemNeighborsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nb = ItemNeighbors::Build(RandomInteractions(40, 25, 0.2, 17, false),
                                   {.neighbors = 4, .shrink = 1.0});
    ASSERT_TRUE(nb.ok());
    nb_ = std::move(*nb);
    bytes_ = nb_.Serialize();
  }
  // Rewrites the trailing checksum so a test reaches the check behind it.
  static void Reseal(std::string* b) {
    const uint64_t h = Xxh64(std::string_view(*b).substr(0, b->size() - 8));
    std::memcpy(b->data() + b->size() - 8, &h, 8);
  }
  ItemNeighbors nb_;
  std::string bytes_;
};

TEST_F(ItemNeighborsFileTest, RoundTripsThroughBytesAndFile) {
  auto back = ItemNeighbors::Deserialize(bytes_, "mem");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->similarities().indptr, nb_.similarities().indptr);
  EXPECT_EQ(back->similarities().indices, nb_.similarities().indices);
  EXPECT_EQ(back->similarities().values, nb_.similarities().values);
  const auto path = ScratchDir() / "item_neighbors.bin";
  ASSERT_TRUE(nb_.Save(path).ok());
  auto loaded = ItemNeighbors::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->similarities().values, nb_.similarities().values);
  // An empty model round-trips too.
  auto empty = ItemNeighbors::Deserialize(ItemNeighbors().Serialize(), "empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->num_items(), 0);
}

TEST_F(ItemNeighborsFileTest, PinsTheHeaderLayout) {
  ASSERT_GE(bytes_.size(), 40u);
  EXPECT_EQ(std::string(bytes_.data(), 8), std::string("VTRNBRS\0", 8));
  uint32_t version = 0;
  int64_t items = 0, nnz = 0;
  std::memcpy(&version, bytes_.data() + 8, 4);
  std::memcpy(&items, bytes_.data() + 16, 8);
  std::memcpy(&nnz, bytes_.data() + 24, 8);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(items, 25);
  EXPECT_EQ(nnz, nb_.similarities().nnz());
  EXPECT_EQ(bytes_.size(), 32 + 8 * 26 + 8 * static_cast<size_t>(nnz) + 8);
}

TEST_F(ItemNeighborsFileTest, RefusesCorruptInput) {
  auto expect = [](std::string_view b, Status::Code code, const std::string& needle) {
    const Status st = ItemNeighbors::Deserialize(b, "nb.bin").status();
    EXPECT_EQ(st.code(), code) << st.ToString();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("nb.bin"), std::string::npos) << st.message();
  };
  std::string b = bytes_;
  b[0] = 'X';
  expect(b, Status::Code::kCorruption, "bad magic");
  for (size_t cut : {size_t{10}, size_t{39}, bytes_.size() / 2, bytes_.size() - 1}) {
    expect(std::string_view(bytes_).substr(0, cut), Status::Code::kCorruption, "truncated");
  }
  expect(bytes_ + "x", Status::Code::kCorruption, "trailing bytes");
  b = bytes_;
  b[bytes_.size() / 2] ^= 0x01;
  expect(b, Status::Code::kCorruption, "checksum mismatch");
  b = bytes_;
  b[8] = 2;
  expect(b, Status::Code::kUnsupported, "version 2");
  // A valid checksum over an invalid CSR: an out-of-range item.
  b = bytes_;
  const int32_t bad = 1000;
  std::memcpy(b.data() + 32 + 8 * 26, &bad, 4);
  Reseal(&b);
  expect(b, Status::Code::kCorruption, "out of range [0, 25)");
  // A header that claims more items than bytes.
  b = bytes_;
  const int64_t huge = int64_t{1} << 50;
  std::memcpy(b.data() + 16, &huge, 8);
  expect(b, Status::Code::kCorruption, "out of range");
}

}  // namespace
}  // namespace vitrine
