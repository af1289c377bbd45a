// Per-request cost of the learned ranker (issue "quality", part 4): scoring
// one pool of 200 candidates x 20 features with a LambdaMART model of
// realistic size must take at most 100 us on one thread.
//
//   OMP_WAIT_POLICY=passive build/bench/ranker_bench
//       --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Compare the medians, and read the CPU column on a shared machine. Setup
// (not timed): 20-feature synthetic ranking data (600 groups of 40 rows; the
// label depends non-linearly on 8 features plus noise, so the trees grow to
// full depth), and models of 100 and 300 trees, depth 6, trained with one
// thread. BM_RankerScore200 scores one 200 x 20 pool per iteration (one
// Predict call: the flat forest), cycling through 16 pools, complete or
// with 10% missing values;
// BM_RankerScore200Xgboost does the same through XGBoost's own predictor.
// BM_RankerTrain50Rounds times training, BM_RankerExplain one row's TreeSHAP
// contributions, and BM_ItemNeighborsQuery the item-item candidate source for
// a 20-item history over 50k items with 100 neighbours each (top 200, through
// an allowed bitmap of 90% of the items).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>

#include "embed/item_neighbors.h"
#include "rank/learned_ranker.h"

namespace vitrine {
namespace {

constexpr int kFeatures = 20;
constexpr int kPool = 200;
constexpr int kPools = 16;

struct RankerFixture {
  std::vector<float> pools;          // kPools x kPool x kFeatures
  std::vector<float> pools_missing;  // the same with 10% NaN
  std::map<int, LearnedRanker> models;
  std::vector<float> x, y;  // the training set
  std::vector<uint32_t> sizes;
  std::vector<std::string> names;

  RankerFixture() {
    std::mt19937 rng(17);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    const int groups = 600, per_group = 40;
    sizes.assign(groups, per_group);
    for (int i = 0; i < groups * per_group; ++i) {
      float f[kFeatures];
      for (float& v : f) v = gauss(rng);
      x.insert(x.end(), f, f + kFeatures);
      const float s = f[0] + 0.8f * f[1] * f[2] + 0.5f * std::sin(3 * f[3]) + 0.4f * f[4] * f[4] -
                      0.3f * std::fabs(f[5]) + 0.3f * f[6] * f[7] + 0.5f * gauss(rng);
      y.push_back(s > 2.0f ? 3.0f : s > 1.0f ? 2.0f : s > 0.0f ? 1.0f : 0.0f);
    }
    for (int j = 0; j < kFeatures; ++j) {
      std::string name = "f";  // (not "f" + to_string: GCC 12 -Wrestrict false positive)
      name += std::to_string(j);
      names.push_back(name);
    }
    for (int trees : {100, 300}) {
      RankerOptions p;
      p.rounds = trees;
      p.max_depth = 6;
      p.eta = 0.1;
      p.nthread = 1;
      auto r = LearnedRanker::Train({x, y, sizes}, names, p);
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
        std::abort();
      }
      models.emplace(trees, std::move(*r));
    }
    pools.resize(static_cast<size_t>(kPools) * kPool * kFeatures);
    for (float& v : pools) v = gauss(rng);
    pools_missing = pools;
    for (float& v : pools_missing)
      if (rng() % 10 == 0) v = std::nanf("");
  }
};

RankerFixture& Ranker() {
  static RankerFixture f;
  return f;
}

void BM_RankerScore200(benchmark::State& state) {
  RankerFixture& f = Ranker();
  const LearnedRanker& model = f.models.at(static_cast<int>(state.range(0)));
  const std::vector<float>& pools = state.range(1) ? f.pools_missing : f.pools;
  std::vector<float> scores(kPool);
  size_t pool = 0;
  for (auto _ : state) {
    std::span<const float> rows(pools.data() + pool * kPool * kFeatures, kPool * kFeatures);
    if (!model.Predict(rows, kPool, scores).ok()) state.SkipWithError("predict failed");
    benchmark::DoNotOptimize(scores.data());
    pool = (pool + 1) % kPools;
  }
  state.counters["trees"] = static_cast<double>(model.num_trees());
  state.counters["flat"] = model.uses_flat_forest() ? 1 : 0;
  state.SetItemsProcessed(state.iterations() * kPool);
}
// Args: trees, and whether 10% of the values are missing (NaN).
BENCHMARK(BM_RankerScore200)
    ->Args({100, 0})
    ->Args({300, 0})
    ->Args({100, 1})
    ->Args({300, 1})
    ->Unit(benchmark::kMicrosecond);

// The same pools through XGBoost's own predictor (the baseline).
void BM_RankerScore200Xgboost(benchmark::State& state) {
  RankerFixture& f = Ranker();
  const LearnedRanker& model = f.models.at(static_cast<int>(state.range(0)));
  std::vector<float> scores(kPool);
  size_t pool = 0;
  for (auto _ : state) {
    std::span<const float> rows(f.pools.data() + pool * kPool * kFeatures, kPool * kFeatures);
    if (!model.PredictWithXgboost(rows, kPool, scores).ok()) state.SkipWithError("predict failed");
    benchmark::DoNotOptimize(scores.data());
    pool = (pool + 1) % kPools;
  }
  state.SetItemsProcessed(state.iterations() * kPool);
}
BENCHMARK(BM_RankerScore200Xgboost)->Arg(100)->Arg(300)->Unit(benchmark::kMicrosecond);

// Training cost: 50 rounds of depth 6 on the 24,000 x 20 training set, one
// thread (seconds per round scale with rows x features).
void BM_RankerTrain50Rounds(benchmark::State& state) {
  RankerFixture& f = Ranker();
  RankerOptions p;
  p.rounds = 50;
  p.max_depth = 6;
  p.nthread = 1;
  for (auto _ : state) {
    auto r = LearnedRanker::Train({f.x, f.y, f.sizes}, f.names, p);
    if (!r.ok()) state.SkipWithError("train failed");
  }
}
BENCHMARK(BM_RankerTrain50Rounds)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_RankerExplain(benchmark::State& state) {
  RankerFixture& f = Ranker();
  const LearnedRanker& model = f.models.at(300);
  size_t row = 0;
  for (auto _ : state) {
    auto e = model.Explain(std::span<const float>(f.pools.data() + row * kFeatures, kFeatures));
    benchmark::DoNotOptimize(e);
    row = (row + 1) % kPool;
  }
}
BENCHMARK(BM_RankerExplain)->Unit(benchmark::kMicrosecond);

struct NeighborFixture {
  ItemNeighbors nb;
  Bitmap allowed;
  std::vector<std::vector<int32_t>> histories;

  NeighborFixture() {
    // 50k items in 500 taste clusters of 100; each of 50k users draws 20
    // items, 80% from one cluster.
    const int items = 50000, users = 50000, per_user = 20;
    std::mt19937 rng(3);
    CsrMatrix x;
    x.rows = users;
    x.cols = items;
    x.indptr.push_back(0);
    for (int u = 0; u < users; ++u) {
      const int cluster = static_cast<int>(rng() % 500);
      std::vector<int32_t> row;
      for (int t = 0; t < per_user; ++t) {
        row.push_back(rng() % 5 != 0 ? cluster * 100 + static_cast<int>(rng() % 100)
                                     : static_cast<int>(rng() % items));
      }
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      for (int32_t j : row) {
        x.indices.push_back(j);
        x.values.push_back(1.0f);
      }
      x.indptr.push_back(x.nnz());
      if (u < 64) histories.push_back(row);
    }
    auto r = ItemNeighbors::Build(x, {.neighbors = 100, .shrink = 10});
    if (!r.ok()) std::abort();
    nb = std::move(*r);
    for (uint32_t j = 0; j < static_cast<uint32_t>(items); ++j)
      if (j % 10 != 0) allowed.add(j);
    allowed.runOptimize();
  }
};

void BM_ItemNeighborsQuery(benchmark::State& state) {
  static NeighborFixture f;
  size_t h = 0;
  for (auto _ : state) {
    auto got = f.nb.Query(f.histories[h], {}, {.k = 200, .allowed = &f.allowed});
    benchmark::DoNotOptimize(got.data());
    h = (h + 1) % f.histories.size();
  }
}
BENCHMARK(BM_ItemNeighborsQuery)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vitrine
