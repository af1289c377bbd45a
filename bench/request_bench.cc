// The cost of each request kind against a plain `recommend` on the same
// bundle (issue "Retail capabilities", Latency: each new kind at most 2x a
// plain recommend; audience reports its own QPS).
//
//   make demo && build/bench/request_bench --benchmark_repetitions=5 \
//       --benchmark_report_aggregates_only=true
//
// VITRINE_REQUEST_BENCH_BUNDLE names the bundle (default demo/bundle). Each
// case cycles through the first 200 users of the bundle, one request per
// iteration, with the bundle's defaults (the learned ranker when it has one);
// compare medians from the same run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "engine/engine.h"

namespace vitrine {
namespace {

struct Fixture {
  std::unique_ptr<Engine> engine;
  std::vector<std::string> users;
  std::vector<std::string> top_items;  // each user's first plain recommendation
  std::vector<std::string> items;      // spread over the catalog, for audiences

  Fixture() {
    const char* env = std::getenv("VITRINE_REQUEST_BENCH_BUNDLE");
    const std::string path = env ? env : "demo/bundle";
    auto e = Engine::Open(path);
    if (!e.ok()) {
      std::fprintf(stderr, "request_bench: %s (run `make demo` or set "
                           "VITRINE_REQUEST_BENCH_BUNDLE)\n", e.status().ToString().c_str());
      std::exit(1);
    }
    engine = std::move(*e);
    const size_t n = std::min<size_t>(200, engine->users().size());
    for (size_t u = 0; u < n; ++u) {
      users.push_back(engine->users().id(static_cast<int32_t>(u)));
      RecommendRequest r;
      r.user = users.back();
      auto rec = engine->Recommend(r);
      if (!rec.ok() || rec->hits.empty()) std::exit(1);
      top_items.push_back(engine->catalog().ids.id(rec->hits.front().item));
    }
    const int32_t items_n = engine->catalog().size();
    for (int32_t q = 0; q < 200; ++q) {
      items.push_back(engine->catalog().ids.id(static_cast<int32_t>(int64_t{q} * items_n / 200)));
    }
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void Run(benchmark::State& state, const std::function<RecommendRequest(size_t)>& make) {
  Fixture& f = F();
  size_t i = 0;
  for (auto _ : state) {
    RecommendRequest r = make(i++ % f.users.size());
    auto rec = f.engine->Recommend(r);
    if (!rec.ok()) state.SkipWithError(rec.status().ToString().c_str());
    benchmark::DoNotOptimize(rec);
  }
}

void BM_RecommendPlain(benchmark::State& state) {
  Run(state, [](size_t u) {
    RecommendRequest r;
    r.user = F().users[u];
    return r;
  });
}
BENCHMARK(BM_RecommendPlain)->Unit(benchmark::kMicrosecond);

// A live "not interested" on the user's top item: excluded and pushed away.
void BM_RecommendNotInterested(benchmark::State& state) {
  Run(state, [](size_t u) {
    RecommendRequest r;
    r.user = F().users[u];
    r.recent = {{F().top_items[u], -1.0f, Feedback::kNotInterested}};
    return r;
  });
}
BENCHMARK(BM_RecommendNotInterested)->Unit(benchmark::kMicrosecond);

// A live "hide brand" on the user's top item: the whole brand excluded.
void BM_RecommendHideBrand(benchmark::State& state) {
  Run(state, [](size_t u) {
    RecommendRequest r;
    r.user = F().users[u];
    r.recent = {{F().top_items[u], -1.0f, Feedback::kHideBrand}};
    return r;
  });
}
BENCHMARK(BM_RecommendHideBrand)->Unit(benchmark::kMicrosecond);

// 20% of the slots for the best new and cold items (a second, filtered search).
void BM_RecommendExploration(benchmark::State& state) {
  Run(state, [](size_t u) {
    RecommendRequest r;
    r.user = F().users[u];
    r.query.exploration = 0.2f;
    return r;
  });
}
BENCHMARK(BM_RecommendExploration)->Unit(benchmark::kMicrosecond);

// The user's own items, newest first.
void BM_RecommendRecentlyViewed(benchmark::State& state) {
  Run(state, [](size_t u) {
    RecommendRequest r;
    r.user = F().users[u];
    r.intent = Intent::kRecentlyViewed;
    return r;
  });
}
BENCHMARK(BM_RecommendRecentlyViewed)->Unit(benchmark::kMicrosecond);

// The user's replenishable items (the demo catalog's t-shirts and shirts).
void BM_RecommendBuyAgain(benchmark::State& state) {
  Run(state, [](size_t u) {
    RecommendRequest r;
    r.user = F().users[u];
    r.intent = Intent::kBuyAgain;
    r.replenishable_categories = {"tshirt", "shirt"};
    return r;
  });
}
BENCHMARK(BM_RecommendBuyAgain)->Unit(benchmark::kMicrosecond);

// The logical next piece: the for-you list (100 long) reordered by the
// category transitions of the newest item. The model is fitted once, by the
// NextStepModelOf call before the timed loop.
void BM_RecommendNextStep(benchmark::State& state) {
  if (!F().engine->NextStepModelOf("category").ok()) {
    state.SkipWithError("no next-step model (no category column or no timestamps)");
    return;
  }
  Run(state, [](size_t u) {
    RecommendRequest r;
    r.user = F().users[u];
    r.intent = Intent::kNextStep;
    return r;
  });
}
BENCHMARK(BM_RecommendNextStep)->Unit(benchmark::kMicrosecond);

// k = 100 users for an item, by the exact scan (the default below 50,000
// users) and by the HNSW index over users; user vectors built before timing.
void BM_Audience(benchmark::State& state) {
  Fixture& f = F();
  const auto search = state.range(0) == 0 ? AudienceSearch::kExact : AudienceSearch::kIndex;
  AudienceRequest warm;
  warm.item = f.items[0];
  warm.search = AudienceSearch::kIndex;
  if (!f.engine->FindAudience(warm).ok()) std::exit(1);
  size_t i = 0;
  for (auto _ : state) {
    AudienceRequest r;
    r.item = f.items[i++ % f.items.size()];
    r.query.k = 100;
    r.search = search;
    auto a = f.engine->FindAudience(r);
    if (!a.ok()) state.SkipWithError(a.status().ToString().c_str());
    benchmark::DoNotOptimize(a);
  }
}
BENCHMARK(BM_Audience)->Arg(0)->Arg(1)->ArgName("hnsw")->Unit(benchmark::kMicrosecond);

// The 10 items trending over 1 day (arg 0) and 7 days (arg 1): two passes
// over the bundle's hourly buckets of the last two weeks, then the rerank.
void BM_Trending(benchmark::State& state) {
  Fixture& f = F();
  for (auto _ : state) {
    TrendRequest r;
    r.window_hours = state.range(0) == 0 ? 24 : 168;
    auto t = f.engine->Trend(r);
    if (!t.ok()) state.SkipWithError(t.status().ToString().c_str());
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_Trending)->Arg(0)->Arg(1)->ArgName("week")->Unit(benchmark::kMicrosecond);

// Every category's growth with its interval (`trending --by category`).
void BM_TrendingByCategory(benchmark::State& state) {
  Fixture& f = F();
  for (auto _ : state) {
    TrendRequest r;
    r.by = "category";
    auto t = f.engine->GroupTrends(r);
    if (!t.ok()) state.SkipWithError(t.status().ToString().c_str());
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_TrendingByCategory)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace vitrine
