// ImplicitALS training speed on synthetic implicit feedback shaped like
// retail logs: power-law (Zipf, s = 1) item popularity with popular items
// scattered over the id space, heavy-tailed (Pareto, shape 2) user activity,
// event weights view=1 / cart=4 / purchase=10 summed per (user, item).
//
// Counters (implicit's anchor: 2.32 s per iteration on 17.5M nnz with 8
// cores, i.e. ~1,060 ns per nonzero per core):
//   s_per_iter        wall seconds of one full iteration (users + items)
//   ns_per_nnz_thread s_per_iter * threads / nnz * 1e9
//   cpu_ns_per_nnz    process CPU seconds per iteration / nnz * 1e9 (the
//                     same figure, robust to other load on the host)
// Iterations 2 and 3 of a fit are timed (the first pays for setup).
// BM_AlsIteration runs the default objective (Hu et al.: unobserved weight 1,
// constant ridge); BM_AlsIterationWeighted the same data with
// unobserved_weight = a0_pct / 100 and reg_exponent = nu_pct / 100 (Rendle et
// al. 2022; docs/als.md).
//
//   build/bench/als_bench --benchmark_filter=AlsIteration/users:100000
//   build/bench/als_bench --benchmark_filter=AlsIteration/users:1000000   # ~1-3 min
//   build/bench/als_bench --benchmark_filter=AlsIterationWeighted
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "core/csv.h"
#include "core/interactions.h"
#include "core/matrix.h"
#include "core/progress.h"
#include "embed/als.h"

namespace vitrine {
namespace {

CsrMatrix SyntheticInteractions(int64_t users, int64_t items, int64_t events, uint64_t seed) {
  // Zipf CDF over popularity ranks; rank -> item id through a permutation.
  std::vector<double> cdf(static_cast<size_t>(items));
  double total = 0;
  for (int64_t r = 0; r < items; ++r) cdf[r] = total += 1.0 / static_cast<double>(r + 1);
  for (double& c : cdf) c /= total;
  std::vector<int32_t> item_of_rank(static_cast<size_t>(items));
  std::iota(item_of_rank.begin(), item_of_rank.end(), 0);
  std::shuffle(item_of_rank.begin(), item_of_rank.end(), std::mt19937_64(seed));

  const double mean = static_cast<double>(events) / static_cast<double>(users);
  const double xm = mean / 2.0;  // Pareto(shape 2) has mean 2 xm
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (users + kBlock - 1) / kBlock;
  std::vector<std::vector<int32_t>> idx(blocks);
  std::vector<std::vector<float>> val(blocks);
  std::vector<std::vector<int64_t>> len(blocks);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; ++b) {
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(b) + 1);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<std::pair<int32_t, float>> row;
    for (int64_t u = b * kBlock; u < std::min(users, (b + 1) * kBlock); ++u) {
      const double pareto = xm / std::sqrt(1.0 - unit(rng));
      const int64_t n = std::clamp<int64_t>(std::llround(pareto), 1, items / 10);
      row.clear();
      for (int64_t k = 0; k < n; ++k) {
        const size_t rank = std::upper_bound(cdf.begin(), cdf.end(), unit(rng)) - cdf.begin();
        const double e = unit(rng);
        row.emplace_back(item_of_rank[std::min(rank, cdf.size() - 1)],
                         e < 0.85 ? 1.0f : (e < 0.95 ? 4.0f : 10.0f));
      }
      std::sort(row.begin(), row.end());
      int64_t kept = 0;
      for (size_t k = 0; k < row.size(); ++k) {
        if (kept > 0 && idx[b].back() == row[k].first) {
          val[b].back() += row[k].second;
        } else {
          idx[b].push_back(row[k].first);
          val[b].push_back(row[k].second);
          ++kept;
        }
      }
      len[b].push_back(kept);
    }
  }
  CsrMatrix m;
  m.rows = users;
  m.cols = items;
  m.indptr.reserve(static_cast<size_t>(users) + 1);
  m.indptr.push_back(0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t n : len[b]) m.indptr.push_back(m.indptr.back() + n);
    m.indices.insert(m.indices.end(), idx[b].begin(), idx[b].end());
    m.values.insert(m.values.end(), val[b].begin(), val[b].end());
    std::vector<int32_t>().swap(idx[b]);
    std::vector<float>().swap(val[b]);
  }
  return m;
}

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

const CsrMatrix& Cached(int64_t users, int64_t items, int64_t events) {
  static std::map<std::tuple<int64_t, int64_t, int64_t>, CsrMatrix> cache;
  auto key = std::make_tuple(users, items, events);
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, SyntheticInteractions(users, items, events, 2024)).first;
  }
  return it->second;
}

// The generator's own data (`vitrine generate --items 200000 --users 1000000
// --out DIR`): VITRINE_ALS_BENCH_DATA=DIR. Read once, as `vitrine build` reads
// it (default event weights, duplicates aggregated).
const CsrMatrix* GeneratorData() {
  static std::unique_ptr<CsrMatrix> m;
  static bool tried = false;
  if (tried) return m.get();
  tried = true;
  const char* dir = std::getenv("VITRINE_ALS_BENCH_DATA");
  if (dir == nullptr) return nullptr;
  IdMap items;
  auto ids = CsvReader::Open(std::string(dir) + "/items.csv");
  if (!ids.ok()) return nullptr;
  while ((*ids)->Next()) items.Add((*ids)->field(0));
  auto inter = Interactions::ReadCsv(std::string(dir) + "/interactions.csv", items);
  if (!inter.ok()) {
    std::fprintf(stderr, "%s\n", inter.status().ToString().c_str());
    return nullptr;
  }
  m = std::make_unique<CsrMatrix>(std::move(inter->matrix));
  return m.get();
}

// Args: users, items, events, factors, threads, solver (0 = CG, 1 = Cholesky),
// then for BM_AlsIterationWeighted a0_pct, nu_pct; users = 0: the generator
// data of VITRINE_ALS_BENCH_DATA instead.
void RunAlsIteration(benchmark::State& state, float unobserved_weight, float reg_exponent) {
  const CsrMatrix* data = state.range(0) == 0 ? GeneratorData() : nullptr;
  if (state.range(0) == 0 && data == nullptr) {
    state.SkipWithError("set VITRINE_ALS_BENCH_DATA to a `vitrine generate` output directory");
    for (auto _ : state) {
    }
    return;
  }
  const CsrMatrix& ui = data ? *data : Cached(state.range(0), state.range(1), state.range(2));
  AlsOptions cfg;
  cfg.factors = static_cast<int>(state.range(3));
  cfg.num_threads = static_cast<int>(state.range(4));
  cfg.solver = state.range(5) ? AlsSolver::kCholesky : AlsSolver::kConjugateGradient;
  cfg.cg_steps = 3;
  cfg.unobserved_weight = unobserved_weight;
  cfg.reg_exponent = reg_exponent;
  // The first iteration also pays for validation, the transpose and first
  // touches of fresh memory; time the later ones.
  cfg.iterations = 3;
  double seconds = 0, cpu_seconds = 0, last_cpu = 0;
  int iterations = 0;
  cfg.on_iteration = [&](const ImplicitALS&, const AlsIterationInfo& info) {
    const double cpu = ProcessCpuSeconds();
    if (info.iteration > 1) {
      seconds += info.seconds;
      cpu_seconds += cpu - last_cpu;
      ++iterations;
    }
    last_cpu = cpu;
  };
  for (auto _ : state) {
    ImplicitALS als(cfg);
    const double before = seconds;
    const Status st = als.Fit(ui);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    state.SetIterationTime(seconds - before);
  }
  const double per_iter = seconds / std::max(1, iterations);
  state.counters["nnz"] = static_cast<double>(ui.nnz());
  state.counters["s_per_iter"] = per_iter;
  state.counters["ns_per_nnz_thread"] =
      per_iter * static_cast<double>(cfg.num_threads) / static_cast<double>(ui.nnz()) * 1e9;
  // Same figure from process CPU time: robust when the host is shared.
  state.counters["cpu_ns_per_nnz"] =
      cpu_seconds / std::max(1, iterations) / static_cast<double>(ui.nnz()) * 1e9;
}
void BM_AlsIteration(benchmark::State& state) { RunAlsIteration(state, 1.0f, 0.0f); }
BENCHMARK(BM_AlsIteration)
    ->ArgNames({"users", "items", "events", "factors", "threads", "cholesky"})
    ->Args({100000, 20000, 2000000, 64, 2, 0})
    ->Args({100000, 20000, 2000000, 64, 1, 0})
    ->Args({100000, 20000, 2000000, 64, 2, 1})
    ->Args({1000000, 200000, 20000000, 64, 2, 0})
    ->Args({0, 0, 0, 64, 2, 0})  // generator data (VITRINE_ALS_BENCH_DATA)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

void BM_AlsIterationWeighted(benchmark::State& state) {
  RunAlsIteration(state, static_cast<float>(state.range(6)) / 100.0f,
                  static_cast<float>(state.range(7)) / 100.0f);
}
BENCHMARK(BM_AlsIterationWeighted)
    ->ArgNames({"users", "items", "events", "factors", "threads", "cholesky", "a0_pct", "nu_pct"})
    ->Args({100000, 20000, 2000000, 64, 2, 0, 50, 100})
    ->Args({100000, 20000, 2000000, 64, 1, 0, 50, 100})
    ->Args({100000, 20000, 2000000, 64, 2, 1, 50, 100})
    ->Args({100000, 20000, 2000000, 64, 1, 0, 50, 0})  // a0 alone: no per-row ridge
    ->Args({0, 0, 0, 64, 2, 0, 50, 100})               // generator data (VITRINE_ALS_BENCH_DATA)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

// FoldIn latency for a 30-item history against 200k items, 64 factors.
void BM_FoldIn(benchmark::State& state) {
  const int d = static_cast<int>(state.range(1));
  const int64_t items = 200000;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  Matrix y(items, d);
  for (float& v : y.data) v = normal(rng);
  AlsOptions cfg;
  cfg.factors = d;
  ImplicitALS als(cfg);
  if (!als.SetFactors(Matrix(1, d), std::move(y)).ok()) state.SkipWithError("SetFactors");
  std::vector<int32_t> hist(static_cast<size_t>(state.range(0)));
  std::vector<float> w(hist.size(), 1.0f);
  for (auto& i : hist) i = static_cast<int32_t>(rng() % items);
  for (auto _ : state) {
    auto x = als.FoldIn(hist, w);
    benchmark::DoNotOptimize(x);
  }
}
BENCHMARK(BM_FoldIn)
    ->ArgNames({"history", "factors"})
    ->Args({30, 64})
    ->Args({300, 64})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vitrine
