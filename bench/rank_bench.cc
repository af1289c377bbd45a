// Rank-stage cost against one ANN search on the same bundle (issue "Rank
// stage", Must show): reranking 200 candidates to 10 with rules (EXCLUDE,
// BOOST, CAP) and MMR must cost at most 20% of one ANN search at recall 0.95.
//
//   VITRINE_RANK_BENCH_ITEMS=50000 build/bench/rank_bench --benchmark_repetitions=3
//
// (VITRINE_RANK_BENCH_ITEMS: generated items, default 50000.) Compare the
// medians of BM_Rerank200To10RulesMmrCaps and BM_AnnSearchAtRecall95 from the
// same run: both are bound by memory reads, and other work on the machine
// moved them by up to 1.5x between runs here.
//
// Setup (not timed): generate a catalog, build a bundle (HNSW32), pick the
// smallest ef whose recall@10 against exact search reaches 0.95 on 200
// held-out item queries, and retrieve 200 candidates for each of 50 queries
// (unit vectors copied out, as the engine does). The timed rerank loop covers
// everything per request: RuleSet::ForRequest and Rerank (filters, boosts,
// caps, MMR with lambda 0.7), cycling through the 50 pools. Two more cases
// break the rerank down: without MMR, and MMR alone. The last one times the
// engine's exact scoring of a pool, before and after it used core/simd.h.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <tuple>
#include <utility>

#include "core/simd.h"
#include "engine/builder.h"
#include "engine/engine.h"
#include "rank/rules.h"
#include "sample/generator.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

struct Fixture {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<RuleSet> rules;
  std::vector<std::vector<float>> queries;
  int ef = 16;
  double recall = 0;
  int ef200 = 200;  // smallest ef with recall@200 >= 0.95 under the rules' filter
  double recall200 = 0;
  Bitmap allowed;  // the rules' static filter
  fs::path dir;

  Fixture() {
    const char* env = std::getenv("VITRINE_RANK_BENCH_ITEMS");
    const int64_t items = env ? std::atoll(env) : 50000;
    dir = fs::temp_directory_path() / ("vitrine_rank_bench_" + std::to_string(getpid()));
    GeneratorOptions g;
    g.num_items = items;
    g.num_users = items;
    if (!GenerateSampleData(g, dir / "data").ok()) std::abort();
    BuildOptions o;
    o.items = dir / "data" / "items.csv";
    o.interactions = dir / "data" / "interactions.csv";
    o.images = dir / "data" / "images.idx.gz";
    o.index.spec = "HNSW32";
    auto s = BuildBundle(o, dir / "bundle");
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      std::abort();
    }
    engine = std::move(*Engine::Open(dir / "bundle"));
    auto r = RuleSet::Parse(
        "EXCLUDE WHERE tier = \"high_street\"\nBOOST 1.5 WHERE sustainable = true\n"
        "CAP 2 PER brand\n",
        "bench.rules");
    rules = std::make_unique<RuleSet>(std::move(*r));
    if (!rules->Bind(engine->catalog()).ok()) std::abort();
    // Item queries as the engine builds them (unit segments), default weights.
    const Matrix& v = engine->vectors();
    for (size_t i = 0; i < 200; ++i) {
      const size_t row = (i * 7919) % v.rows;
      queries.emplace_back(v.row(row), v.row(row) + v.cols);
    }
    // Smallest ef reaching recall@10 >= 0.95 (from ef = k: the walk never
    // uses a beam narrower than k).
    SearchParams p10;
    p10.k = 10;
    std::tie(ef, recall) =
        SmallestEf(p10, {10, 12, 14, 16, 20, 24, 32, 48, 64, 96, 128, 256}, queries.size());
    // The search that produces the reranker's 200 candidates: k = 200 under
    // the rules' filter, smallest ef with recall@200 >= 0.95.
    allowed = *rules->StaticAllowedItems(engine->attributes());
    SearchParams p200;
    p200.k = 200;
    p200.filter = &allowed;
    p200.exact_scan_max_fraction = 0;  // measure the graph walk, not the exact fallback
    std::tie(ef200, recall200) = SmallestEf(p200, {200, 256, 384, 512, 768, 1024}, 50);
    std::fprintf(stderr,
                 "rank_bench: %lld items, ef %d gives recall@10 %.3f; ef %d gives recall@200 "
                 "%.3f under the rules' filter (%llu allowed)\n",
                 static_cast<long long>(items), ef, recall, ef200, recall200,
                 static_cast<unsigned long long>(allowed.cardinality()));
  }
  ~Fixture() { fs::remove_all(dir); }

  // The first ef in `efs` whose recall@k (against exact search under the
  // same params) over the first `nq` queries reaches 0.95, with that recall;
  // the last one if none does.
  std::pair<int, double> SmallestEf(SearchParams p, std::initializer_list<int> efs,
                                    size_t nq) const {
    int ef_found = 0;
    double r = 0;
    for (int e : efs) {
      p.ef_search = ef_found = e;
      double hits = 0;
      for (size_t qi = 0; qi < nq; ++qi) {
        std::vector<int64_t> a, b;
        std::vector<float> da, db;
        (void)engine->index().Search(queries[qi].data(), 1, p, &a, &da);
        (void)engine->index().ExactSearch(queries[qi].data(), 1, p, &b, &db);
        for (int64_t x : a) hits += std::count(b.begin(), b.end(), x);
      }
      r = hits / (static_cast<double>(p.k) * static_cast<double>(nq));
      if (r >= 0.95) break;
    }
    return {ef_found, r};
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

// Times one search per iteration with `p`, cycling through the queries.
void TimeSearch(benchmark::State& state, const SearchParams& p, double recall) {
  Fixture& f = F();
  std::vector<int64_t> labels;
  std::vector<float> dist;
  size_t i = 0;
  for (auto _ : state) {
    (void)f.engine->index().Search(f.queries[i++ % f.queries.size()].data(), 1, p, &labels, &dist);
    benchmark::DoNotOptimize(labels.data());
  }
  state.counters["ef"] = p.ef_search;
  state.counters["recall"] = recall;
}

void BM_AnnSearchAtRecall95(benchmark::State& state) {
  Fixture& f = F();
  SearchParams p;
  p.k = 10;
  p.ef_search = f.ef;
  TimeSearch(state, p, f.recall);
}
BENCHMARK(BM_AnnSearchAtRecall95)->Unit(benchmark::kMicrosecond);

void BM_AnnSearch200UnderRulesAtRecall95(benchmark::State& state) {
  Fixture& f = F();
  SearchParams p;
  p.k = 200;
  p.ef_search = f.ef200;
  p.filter = &f.allowed;
  p.exact_scan_max_fraction = 0;
  TimeSearch(state, p, f.recall200);
}
BENCHMARK(BM_AnnSearch200UnderRulesAtRecall95)->Unit(benchmark::kMicrosecond);

// 200 candidates for each of 50 queries, retrieved once (not timed) as the
// engine retrieves them: the rules' filter inside the search, unit copies of
// the vectors for MMR.
struct Pools {
  std::vector<std::vector<Candidate>> pools;
  std::vector<UnitVectors> units;
  int dim = 0;
};

const Pools& P() {
  static const Pools pools = [] {
    Fixture& f = F();
    Pools p;
    p.dim = static_cast<int>(f.engine->vectors().cols);
    for (size_t qi = 0; qi < 50; ++qi) {
      SearchParams sp;
      sp.k = 200;
      sp.ef_search = 200;
      sp.filter = &f.allowed;
      std::vector<int64_t> labels;
      std::vector<float> dist;
      (void)f.engine->index().Search(f.queries[qi].data(), 1, sp, &labels, &dist);
      p.units.emplace_back(labels.size(), static_cast<size_t>(p.dim));
      std::vector<Candidate> pool;
      for (size_t j = 0; j < labels.size(); ++j) {
        const float* v = f.engine->vectors().row(static_cast<size_t>(labels[j]));
        pool.push_back({static_cast<int32_t>(labels[j]), dist[j], p.units.back().Add(v)});
      }
      p.pools.push_back(std::move(pool));
    }
    return p;
  }();
  return pools;
}

// Everything per request: RuleSet::ForRequest and Rerank (filters, boosts,
// caps, and `diversity`), cycling through the 50 pools.
void TimeRerank(benchmark::State& state, Diversity diversity) {
  Fixture& f = F();
  const Pools& p = P();
  RequestContext ctx;
  RerankOptions ro;
  ro.k = 10;
  ro.diversity = diversity;
  ro.lambda = 0.7f;
  ro.dim = p.dim;
  size_t i = 0;
  size_t results = 0;
  for (auto _ : state) {
    auto rr = f.rules->ForRequest(ctx);  // per-request rule state is part of the cost
    auto ranked = Rerank(p.pools[i++ % p.pools.size()], *rr, ro, &f.allowed);
    results += ranked->size();
    benchmark::DoNotOptimize(ranked->data());
  }
  state.counters["results"] = static_cast<double>(results) / state.iterations();
}

// The case the target is about.
void BM_Rerank200To10RulesMmrCaps(benchmark::State& state) { TimeRerank(state, Diversity::kMMR); }
BENCHMARK(BM_Rerank200To10RulesMmrCaps)->Unit(benchmark::kMicrosecond);

// Breakdown: the same without MMR (rules and caps only) ...
void BM_Rerank200To10RulesCaps(benchmark::State& state) { TimeRerank(state, Diversity::kNone); }
BENCHMARK(BM_Rerank200To10RulesCaps)->Unit(benchmark::kMicrosecond);

// ... and MMR with the brand cap alone, without rules or ForRequest.
void BM_SelectMmr200To10Cap(benchmark::State& state) {
  Fixture& f = F();
  const Pools& p = P();
  auto rr = f.rules->ForRequest(RequestContext{});
  size_t i = 0;
  for (auto _ : state) {
    CapTracker caps(rr->caps());
    auto sel = SelectMMR(p.pools[i++ % p.pools.size()], p.dim, 10, 0.7f, &caps);
    benchmark::DoNotOptimize(sel->data());
  }
}
BENCHMARK(BM_SelectMmr200To10Cap)->Unit(benchmark::kMicrosecond);

// The engine's exact scores of a 200-candidate pool (a dot product with the
// query per stored row): /0 the plain float loop it used before, one serial
// chain of adds per row; /1 the CPU's kernel (core/simd.h), as now.
float PlainDot(const float* a, const float* b, size_t d) {
  float s = 0;
  for (size_t j = 0; j < d; ++j) s += a[j] * b[j];
  return s;
}

void BM_ExactScores200(benchmark::State& state) {
  Fixture& f = F();
  const Pools& p = P();
  const Matrix& v = f.engine->vectors();
  const bool kernel = state.range(0) == 1;
  size_t i = 0;
  float sum = 0;
  for (auto _ : state) {
    const size_t qi = i++ % p.pools.size();
    const float* q = f.queries[qi].data();
    for (const Candidate& c : p.pools[qi]) {
      const float* row = v.row(static_cast<size_t>(c.item));
      sum += kernel ? simd::InnerProduct(q, row, v.cols) : PlainDot(q, row, v.cols);
    }
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_ExactScores200)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vitrine
