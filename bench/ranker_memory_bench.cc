// Peak memory of training the learned ranker on a 1M-item build's candidate
// rows (docs/scale.md, "Building in bounded memory"): 4.2M rows of 25
// features in groups of 420, 5 LambdaMART rounds. Run each benchmark in its
// own process, since the peak (getrusage's ru_maxrss) is the process's:
//
//   build/bench/ranker_memory_bench --benchmark_filter=BM_TrainQuantised
//   build/bench/ranker_memory_bench --benchmark_filter=BM_TrainFromCsrCopy
//
// BM_TrainQuantised is LearnedRanker::Train (XGBoost's QuantileDMatrix, one
// byte per value). BM_TrainFromCsrCopy is what Train did before: the plain
// XGDMatrixCreateFromMat, which copies the rows into CSR at 8 bytes per
// value before quantising them. The counter peak_rss_mb includes the
// 420 MB of input rows.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "rank/learned_ranker.h"

namespace vitrine {
namespace {

constexpr size_t kRows = 4200000, kFeatures = 25, kGroup = 420;
constexpr int kRounds = 5;

struct Rows {
  std::vector<float> features, labels;
  std::vector<uint32_t> groups;
};

Rows MakeRows() {
  Rows r;
  r.features.resize(kRows * kFeatures);
  r.labels.resize(kRows);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : r.features) v = normal(rng);
  for (float& l : r.labels) l = rng() % 100 == 0 ? 1.0f : 0.0f;
  r.groups.assign(kRows / kGroup, kGroup);
  return r;
}

double PeakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in kB on Linux
}

void BM_TrainQuantised(benchmark::State& state) {
  const Rows r = MakeRows();
  std::vector<std::string> names;
  for (size_t f = 0; f < kFeatures; ++f) names.push_back("f" + std::to_string(f));
  RankerOptions o;
  o.rounds = kRounds;
  o.nthread = 2;
  for (auto _ : state) {
    auto model = LearnedRanker::Train({r.features, r.labels, r.groups}, names, o);
    if (!model.ok()) state.SkipWithError(model.status().ToString().c_str());
  }
  state.counters["peak_rss_mb"] = PeakRssMb();
}
BENCHMARK(BM_TrainQuantised)->Iterations(1)->Unit(benchmark::kSecond);

void BM_TrainFromCsrCopy(benchmark::State& state) {
  const Rows r = MakeRows();
  for (auto _ : state) {
    DMatrixHandle dm = nullptr;
    BoosterHandle b = nullptr;
    if (XGDMatrixCreateFromMat_omp(r.features.data(), kRows, kFeatures, std::nanf(""), &dm, 2) !=
            0 ||
        XGDMatrixSetFloatInfo(dm, "label", r.labels.data(), kRows) != 0 ||
        XGDMatrixSetUIntInfo(dm, "group", r.groups.data(), r.groups.size()) != 0 ||
        XGBoosterCreate(&dm, 1, &b) != 0) {
      state.SkipWithError(XGBGetLastError());
      break;
    }
    for (const auto& [k, v] : {std::pair{"verbosity", "0"},
                               {"objective", "rank:ndcg"},
                               {"tree_method", "hist"},
                               {"max_depth", "6"},
                               {"nthread", "2"}}) {
      XGBoosterSetParam(b, k, v);
    }
    for (int i = 0; i < kRounds; ++i) XGBoosterUpdateOneIter(b, i, dm);
    XGBoosterFree(b);
    XGDMatrixFree(dm);
  }
  state.counters["peak_rss_mb"] = PeakRssMb();
}
BENCHMARK(BM_TrainFromCsrCopy)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
}  // namespace vitrine
