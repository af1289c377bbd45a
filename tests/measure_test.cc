// Tests for index/measure.h: ground truth against a brute-force oracle,
// recall, the ground-truth cache, the default sweeps and query sampling.
#include "index/measure.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <set>

#include "benchlib/bench_harness.h"  // RandomFilter
#include "core/file_util.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {

// The oracle: sort every allowed row by distance (best first).
std::vector<int64_t> BruteForce(const Matrix& base, const Matrix& queries, int k, Metric metric,
                                const Bitmap* filter) {
  std::vector<int64_t> out(queries.rows * k, -1);
  for (size_t q = 0; q < queries.rows; ++q) {
    std::vector<std::pair<double, int64_t>> all;
    for (size_t i = 0; i < base.rows; ++i) {
      if (filter && !filter->contains(static_cast<uint32_t>(i))) continue;
      double s = 0;
      for (size_t j = 0; j < base.cols; ++j) {
        const double a = queries.at(q, j), b = base.at(i, j);
        s += metric == Metric::kL2 ? (a - b) * (a - b) : -a * b;
      }
      all.emplace_back(s, static_cast<int64_t>(i));
    }
    std::sort(all.begin(), all.end());
    for (size_t j = 0; j < all.size() && j < static_cast<size_t>(k); ++j) {
      out[q * k + j] = all[j].second;
    }
  }
  return out;
}

TEST(GroundTruth, MatchesBruteForceOracle) {
  const Matrix base = Gaussian(700, 12, 1), queries = Gaussian(40, 12, 2);
  const Bitmap filter = RandomFilter(base.rows, 0.1, 7);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
    for (const Bitmap* f : {static_cast<const Bitmap*>(nullptr), &filter}) {
      auto gt = ComputeGroundTruth(base, queries, 10, metric, f);
      ASSERT_TRUE(gt.ok()) << gt.status().ToString();
      EXPECT_EQ(gt->k, 10);
      EXPECT_EQ(gt->num_queries, queries.rows);
      EXPECT_EQ(gt->ids, BruteForce(base, queries, 10, metric, f));
    }
  }
}

TEST(GroundTruth, PadsWhenFewerRowsAreAllowed) {
  const Matrix base = Gaussian(100, 4, 1), queries = Gaussian(3, 4, 2);
  Bitmap few;
  few.add(5);
  few.add(50);
  auto gt = ComputeGroundTruth(base, queries, 5, Metric::kL2, &few);
  ASSERT_TRUE(gt.ok());
  for (size_t q = 0; q < 3; ++q) {
    std::set<int64_t> got(gt->ids.begin() + q * 5, gt->ids.begin() + q * 5 + 2);
    EXPECT_EQ(got, (std::set<int64_t>{5, 50}));
    EXPECT_EQ(gt->ids[q * 5 + 2], -1);
  }
}

TEST(GroundTruth, RejectsBadShapes) {
  EXPECT_FALSE(
      ComputeGroundTruth(Gaussian(10, 4, 1), Gaussian(2, 5, 1), 3, Metric::kL2, nullptr).ok());
  EXPECT_FALSE(
      ComputeGroundTruth(Gaussian(10, 4, 1), Gaussian(2, 4, 1), 0, Metric::kL2, nullptr).ok());
}

TEST(Recall, HandMadeCases) {
  GroundTruth t;
  t.k = 4;
  t.num_queries = 3;
  t.ids = {1, 2, 3, 4, /**/ 5, 6, -1, -1, /**/ -1, -1, -1, -1};
  // Query 0: 2 of 4; query 1: 1 of 2 (only 2 exist); query 2: empty truth = 1.
  const std::vector<int64_t> found = {4, 9, 1, 8, /**/ 6, -1, -1, -1, /**/ 0, 1, 2, 3};
  EXPECT_DOUBLE_EQ(RecallAtK(found, 4, t), (0.5 + 0.5 + 1.0) / 3);
  // A wider stride: only the first k of each row count.
  const std::vector<int64_t> wide = {1, 2, 3, 4,      9, 9, /**/ 9, 9, 9,
                                     9, 5, 6, /**/ 0, 0, 0, 0,      0, 0};
  EXPECT_DOUBLE_EQ(RecallAtK(wide, 6, t), (1.0 + 0.0 + 1.0) / 3);
}

TEST(Recall, HarnessAgreesWithOracleOnAnApproximateIndex) {
  const Matrix base = Gaussian(3000, 16, 3), queries = Gaussian(100, 16, 4);
  auto index = VectorIndex::Build(base, {.spec = "HNSW8", .metric = Metric::kL2});
  ASSERT_TRUE(index.ok());
  auto gt = ComputeGroundTruth(base, queries, 10, Metric::kL2, nullptr);
  ASSERT_TRUE(gt.ok());
  SearchParams sp;
  sp.ef_search = 12;
  auto row = MeasureSearch("HNSW8", "ef=12", VitrineSearch(**index, sp), queries, *gt, {});
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  // Independent count from the oracle's ids.
  std::vector<int64_t> labels;
  std::vector<float> dist;
  sp.k = 10;
  ASSERT_TRUE((*index)->Search(queries.data.data(), queries.rows, sp, &labels, &dist).ok());
  const auto oracle = BruteForce(base, queries, 10, Metric::kL2, nullptr);
  size_t hit = 0;
  for (size_t q = 0; q < queries.rows; ++q) {
    std::set<int64_t> truth(oracle.begin() + q * 10, oracle.begin() + q * 10 + 10);
    for (int j = 0; j < 10; ++j) hit += truth.count(labels[q * 10 + j]);
  }
  EXPECT_NEAR(row->recall, static_cast<double>(hit) / (10.0 * queries.rows), 1e-12);
  EXPECT_LT(row->recall, 1.0);  // ef 12 on HNSW8 is genuinely approximate here
  EXPECT_GT(row->qps, 0);
  EXPECT_LE(row->p50_us, row->p99_us);
  EXPECT_EQ(row->k, 10);
  EXPECT_EQ(row->threads, 1);
  // Several threads and batches: same answers, so the same recall.
  auto row2 = MeasureSearch("HNSW8", "ef=12", VitrineSearch(**index, sp), queries, *gt,
                            {.threads = 2, .batch = 7, .repeats = 2});
  ASSERT_TRUE(row2.ok());
  EXPECT_DOUBLE_EQ(row2->recall, row->recall);
  EXPECT_EQ(row2->threads, 2);
}

// The HNSW walk decodes SQ8 codes itself (vector_index.cc); its recall and
// distances must match what the quantised vectors allow.
TEST(Recall, Sq8StorageWalkIsAccurate) {
  const Matrix base = Gaussian(3000, 40, 13), queries = Gaussian(60, 40, 14);
  {
    const char* spec = "HNSW16,SQ8";
    for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
      auto index = VectorIndex::Build(base, {.spec = spec, .metric = metric});
      ASSERT_TRUE(index.ok()) << index.status().ToString();
      auto gt = ComputeGroundTruth(base, queries, 10, metric, nullptr);
      ASSERT_TRUE(gt.ok());
      SearchParams sp;
      sp.k = 10;
      sp.ef_search = 200;
      std::vector<int64_t> labels;
      std::vector<float> dist;
      ASSERT_TRUE((*index)->Search(queries.data.data(), queries.rows, sp, &labels, &dist).ok());
      EXPECT_GT(RecallAtK(labels, 10, *gt), 0.9) << spec;
      for (size_t q = 0; q < queries.rows; ++q) {
        const float* x = base.row(labels[q * 10]);
        double exact = 0;
        for (size_t j = 0; j < base.cols; ++j) {
          exact += metric == Metric::kL2 ? (queries.at(q, j) - x[j]) * (queries.at(q, j) - x[j])
                                         : queries.at(q, j) * x[j];
        }
        EXPECT_NEAR(dist[q * 10], exact, 0.05 * std::abs(exact) + 0.1) << spec << " query " << q;
      }
    }
  }
}

TEST(GroundTruthCache, RoundTripAndInvalidation) {
  const std::filesystem::path cache = ScratchDir() / "gt-cache";
  const Matrix base = Gaussian(400, 8, 5);
  Matrix queries = Gaussian(20, 8, 6);
  bool cached = true;
  auto first = CachedGroundTruth(base, queries, 5, Metric::kL2, nullptr, cache, &cached);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(cached);
  auto again = CachedGroundTruth(base, queries, 5, Metric::kL2, nullptr, cache, &cached);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(cached);
  EXPECT_EQ(again->ids, first->ids);

  // Any input change is a different key, hence a miss with the right answer.
  const uint64_t key = GroundTruthKey(base, queries, 5, Metric::kL2, nullptr);
  EXPECT_NE(key, GroundTruthKey(base, queries, 6, Metric::kL2, nullptr));
  EXPECT_NE(key, GroundTruthKey(base, queries, 5, Metric::kInnerProduct, nullptr));
  const Bitmap filter = RandomFilter(base.rows, 0.5, 1);
  EXPECT_NE(key, GroundTruthKey(base, queries, 5, Metric::kL2, &filter));
  auto filtered = CachedGroundTruth(base, queries, 5, Metric::kL2, &filter, cache, &cached);
  ASSERT_TRUE(filtered.ok());
  EXPECT_FALSE(cached);
  EXPECT_EQ(filtered->ids, BruteForce(base, queries, 5, Metric::kL2, &filter));
  queries.at(3, 2) += 1.0f;
  auto changed = CachedGroundTruth(base, queries, 5, Metric::kL2, nullptr, cache, &cached);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(cached);
  EXPECT_EQ(changed->ids, BruteForce(base, queries, 5, Metric::kL2, nullptr));

  // A truncated cache file is recomputed and rewritten, not trusted.
  const auto path =
      cache / ("gt-" + Hex64(GroundTruthKey(base, queries, 5, Metric::kL2, nullptr)) + ".ivecs");
  ASSERT_TRUE(std::filesystem::exists(path));
  std::filesystem::resize_file(path, 30);
  auto repaired = CachedGroundTruth(base, queries, 5, Metric::kL2, nullptr, cache, &cached);
  ASSERT_TRUE(repaired.ok());
  EXPECT_FALSE(cached);
  EXPECT_EQ(repaired->ids, changed->ids);
  EXPECT_TRUE(CachedGroundTruth(base, queries, 5, Metric::kL2, nullptr, cache, &cached).ok());
  EXPECT_TRUE(cached);
}

TEST(Sweeps, IvfNlistUnderRefine) {
  const Matrix base = Gaussian(2000, 8, 1);
  for (const char* spec : {"IVF16,Flat", "IVF16,SQ8,RFlat"}) {
    auto index = VectorIndex::Build(base, {.spec = spec, .metric = Metric::kL2});
    ASSERT_TRUE(index.ok()) << spec;
    EXPECT_EQ(IvfNlist(**index), 16u) << spec;
  }
  auto hnsw = VectorIndex::Build(base, {.spec = "HNSW8", .metric = Metric::kL2});
  ASSERT_TRUE(hnsw.ok());
  EXPECT_EQ(IvfNlist(**hnsw), 0u);
}

TEST(Sweeps, Defaults) {
  EXPECT_EQ(DefaultEfSweep(10).front(), 10);
  EXPECT_EQ(DefaultEfSweep(20).front(), 20);
  for (int ef : DefaultEfSweep(20)) EXPECT_GE(ef, 20);
  EXPECT_EQ(DefaultNprobeSweep(8), (std::vector<int>{1, 2, 4, 8}));
}

TEST(Sampling, QueriesAreSeededAndPerturbed) {
  const Matrix base = Gaussian(500, 8, 9);
  const Matrix a = SampleQueries(base, 50, 3), b = SampleQueries(base, 50, 3);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.rows, 50u);
  // Perturbed: no query coincides with a base row, but each has a base row
  // within half its nearest-neighbour distance (its source).
  auto gt = ComputeGroundTruth(base, a, 1, Metric::kL2, nullptr);
  ASSERT_TRUE(gt.ok());
  for (size_t q = 0; q < a.rows; ++q) {
    const float* x = base.row(gt->ids[q]);
    double d = 0;
    for (size_t j = 0; j < 8; ++j) d += (a.at(q, j) - x[j]) * (a.at(q, j) - x[j]);
    EXPECT_GT(d, 0);
  }
}

}  // namespace
}  // namespace vitrine
