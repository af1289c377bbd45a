// Filtered search: HNSW graph walk versus exact scan over the allowed rows,
// the measurement behind kExactScanMaxFraction (docs/index.md).
//
//   build/bench/index_bench --benchmark_filter=Filtered
//
// 50k clustered unit vectors (d = 64), HNSW32, one query per call (the
// serving pattern), k = 10, ef_search = 64. Counters: recall@10 against the
// exact filtered answer, and for raw FAISS (IndexHNSW::search with an
// IDSelector, hnsw.efSearch = 64) the fraction of result slots left at -1.
#include <benchmark/benchmark.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/IDSelector.h>

#include <cmath>
#include <memory>
#include <random>
#include <set>

#include "index/vector_index.h"

namespace vitrine {
namespace {

constexpr size_t kN = 50000, kDim = 64, kQueries = 200;
constexpr int kK = 10;

Matrix Clustered(size_t n, uint32_t seed) {
  std::mt19937 rng(seed), crng(42);
  std::normal_distribution<float> g(0.f, 1.f);
  Matrix centers(100, kDim);
  for (float& v : centers.data) v = g(crng);
  Matrix m(n, kDim);
  for (size_t i = 0; i < n; ++i) {
    const float* c = centers.row(rng() % centers.rows);
    float norm = 0;
    for (size_t j = 0; j < kDim; ++j) norm += (m.at(i, j) = c[j] + 1.2f * g(rng)) * m.at(i, j);
    for (size_t j = 0; j < kDim; ++j) m.at(i, j) /= std::sqrt(norm);
  }
  return m;
}

struct Setup {
  std::unique_ptr<VectorIndex> index;
  Matrix queries = Clustered(kQueries, 2);
  Setup() { index = std::move(VectorIndex::Build(Clustered(kN, 1), {.spec = "HNSW32"})).value(); }
};

Setup& Shared() {
  static Setup s;
  return s;
}

struct IDSelectorBitmapSet : faiss::IDSelector {
  const Bitmap* b;
  explicit IDSelectorBitmapSet(const Bitmap* bitmap) : b(bitmap) {}
  bool is_member(faiss::Index::idx_t id) const override { return b->contains(id); }
};

// range(0): 0 = HNSW walk, 1 = exact scan. range(1): allowed per 10000 items.
void BM_FilteredSearch(benchmark::State& state) {
  Setup& s = Shared();
  const bool exact_path = state.range(0) == 1;
  const double fraction = state.range(1) / 10000.0;
  std::mt19937 rng(99);
  std::uniform_real_distribution<double> u(0, 1);
  Bitmap filter;
  for (uint32_t i = 0; i < kN; ++i) {
    if (u(rng) < fraction) filter.add(i);
  }
  SearchParams p{.k = kK, .ef_search = 64, .filter = &filter};
  p.exact_scan_max_fraction = exact_path ? 1.0 : 0.0;
  std::vector<int64_t> labels, truth;
  std::vector<float> dist;
  // Recall of this path over all queries (outside the timed loop).
  size_t hit = 0, total = 0;
  for (size_t q = 0; q < kQueries; ++q) {
    (void)s.index->ExactSearch(s.queries.row(q), 1, p, &truth, &dist);
    (void)s.index->Search(s.queries.row(q), 1, p, &labels, &dist);
    std::set<int64_t> t(truth.begin(), truth.end());
    t.erase(-1);
    total += t.size();
    for (int64_t l : labels) hit += t.count(l);
  }
  size_t q = 0;
  for (auto _ : state) {
    (void)s.index->Search(s.queries.row(q), 1, p, &labels, &dist);
    benchmark::DoNotOptimize(labels.data());
    q = (q + 1) % kQueries;
  }
  state.counters["recall"] = total ? static_cast<double>(hit) / total : 1.0;
  state.counters["allowed"] = static_cast<double>(filter.cardinality());
  if (!exact_path) {
    // The Debian FAISS trap: raw IndexHNSW search under the same selector.
    auto clone = s.index->CloneFaiss();  // a complete copy raw FAISS can search
    if (!clone.ok()) std::abort();
    auto& raw = dynamic_cast<faiss::IndexHNSW&>(**clone);
    raw.hnsw.efSearch = 64;
    IDSelectorBitmapSet sel(&filter);
    faiss::SearchParametersHNSW sp;
    sp.efSearch = 64;
    sp.sel = &sel;
    std::vector<faiss::Index::idx_t> I(kQueries * kK);
    std::vector<float> D(kQueries * kK);
    raw.search(kQueries, s.queries.data.data(), kK, D.data(), I.data(), &sp);
    size_t missing = 0;
    for (auto l : I) missing += l < 0;
    state.counters["raw_faiss_missing"] = static_cast<double>(missing) / I.size();
  }
}
BENCHMARK(BM_FilteredSearch)
    ->ArgsProduct({{0, 1}, {5000, 3000, 2000, 1000, 500, 200, 100, 50, 10}})
    ->Unit(benchmark::kMicrosecond);

void BM_UnfilteredHnsw(benchmark::State& state) {
  Setup& s = Shared();
  const SearchParams p{.k = kK, .ef_search = static_cast<int>(state.range(0))};
  std::vector<int64_t> labels;
  std::vector<float> dist;
  size_t q = 0;
  for (auto _ : state) {
    (void)s.index->Search(s.queries.row(q), 1, p, &labels, &dist);
    q = (q + 1) % kQueries;
  }
  state.counters["bytes_per_vector"] = s.index->BytesPerVector();
}
BENCHMARK(BM_UnfilteredHnsw)->Arg(16)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vitrine
