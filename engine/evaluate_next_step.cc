// Next-item hit rate of the next-step intent against its baselines
// (engine/evaluate_next_step.h).
#include "engine/evaluate_next_step.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/progress.h"
#include "engine/evaluate.h"

namespace vitrine {
namespace {

// The 95% Wilson score interval of `hits` successes in `n` trials.
void Wilson(int64_t hits, int64_t n, double* low, double* high) {
  if (n <= 0) {
    *low = 0, *high = 1;
    return;
  }
  constexpr double z = 1.959963984540054;
  const double nn = static_cast<double>(n), p = static_cast<double>(hits) / nn;
  const double denom = 1 + z * z / nn;
  const double centre = (p + z * z / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denom;
  *low = std::max(0.0, centre - half);
  *high = std::min(1.0, centre + half);
}

constexpr const char* kModels[] = {"next-step", "similar-to-last", "toppop", "for-you"};
constexpr size_t kNumModels = sizeof(kModels) / sizeof(kModels[0]);

}  // namespace

Result<NextStepEvaluation> EvaluateNextStep(const Engine& engine, const Interactions& test,
                                            const NextStepEvalOptions& options) {
  if (options.k < 1) return Status::InvalidArgument("k must be >= 1");
  // Fitted here, so that a bundle without timestamps fails before any user.
  VITRINE_RETURN_IF_ERROR(engine.NextStepModelOf(options.column).status());
  // Each bundle user's target: their earliest timed new test item.
  std::vector<int32_t> target(engine.users().size(), -1);
  for (int64_t t = 0; t < test.matrix.rows; ++t) {
    const auto user = engine.users().Find(test.users.id(static_cast<int32_t>(t)));
    if (!user) continue;
    std::vector<int32_t> seen = engine.UserHistory(*user);
    std::sort(seen.begin(), seen.end());
    int64_t best_time = std::numeric_limits<int64_t>::max();
    int32_t best = -1;
    for (int64_t p = test.matrix.indptr[t]; p < test.matrix.indptr[t + 1]; ++p) {
      const int32_t item = test.matrix.indices[static_cast<size_t>(p)];
      const int64_t time = test.timestamps[static_cast<size_t>(p)];
      if (time <= 0 || std::binary_search(seen.begin(), seen.end(), item)) continue;
      if (time < best_time || (time == best_time && item < best)) best_time = time, best = item;
    }
    target[static_cast<size_t>(*user)] = best;
  }
  std::vector<int32_t> users;
  for (size_t u = 0; u < target.size(); ++u) {
    // A target needs a history to follow.
    if (target[u] >= 0 && !engine.UserHistory(static_cast<int32_t>(u)).empty()) {
      users.push_back(static_cast<int32_t>(u));
    }
  }
  SampleUsers(&users, options.max_users, options.seed);

  const auto n = static_cast<int64_t>(users.size());
  std::vector<uint8_t> hit(static_cast<size_t>(n) * kNumModels, 0);
  std::atomic<bool> failed{false};
  Status error;
  StageTimer timer("evaluate next-step", n);
  std::atomic<int64_t> done{0};
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    const int32_t u = users[static_cast<size_t>(i)];
    const std::string& id = engine.users().id(u);
    const std::vector<int32_t> history = engine.UserHistory(u);
    const std::vector<int64_t> times = engine.UserHistoryTimes(u);
    size_t newest = 0;  // ties to the later position, as NextStep
    for (size_t p = 0; p < history.size(); ++p) {
      if (times[p] >= times[newest]) newest = p;
    }
    QueryParams q;
    q.k = options.k;
    Status st;
    for (size_t m = 0; m < kNumModels && st.ok(); ++m) {
      Result<std::vector<Hit>> hits = std::vector<Hit>{};
      const std::string model = kModels[m];
      if (model == "next-step" || model == "for-you") {
        RecommendRequest r;
        r.user = id;
        r.intent = model == "next-step" ? Intent::kNextStep : Intent::kForYou;
        r.category_column = options.column;
        r.query = q;
        auto rec = engine.Recommend(r);
        hits = rec.ok() ? Result<std::vector<Hit>>(std::move(rec->hits))
                        : Result<std::vector<Hit>>(rec.status());
      } else {
        QueryParams without_history = q;
        without_history.exclude = history;
        hits = model == "toppop"
                   ? engine.Popular(without_history)
                   : engine.Similar(engine.catalog().ids.id(history[newest]), without_history);
      }
      if (!hits.ok()) {
        st = hits.status();
        break;
      }
      for (const Hit& h : *hits) {
        if (h.item == target[static_cast<size_t>(u)])
          hit[static_cast<size_t>(i) * kNumModels + m] = 1;
      }
    }
    if (!st.ok()) {
#pragma omp critical
      {
        if (!failed.exchange(true)) error = st;
      }
      continue;
    }
    const int64_t d = done.fetch_add(1, std::memory_order_relaxed) + 1;
    if (d % 256 == 0) {
#pragma omp critical
      timer.Update(d);
    }
  }
  if (failed) return error;
  NextStepEvaluation out;
  out.column = options.column;
  out.k = options.k;
  out.users = n;
  out.seconds = SecondsSince(t0);
  for (size_t m = 0; m < kNumModels; ++m) {
    NextStepHitRate r;
    r.model = kModels[m];
    for (int64_t i = 0; i < n; ++i) r.hits += hit[static_cast<size_t>(i) * kNumModels + m];
    r.hit_rate = n > 0 ? static_cast<double>(r.hits) / static_cast<double>(n) : 0.0;
    Wilson(r.hits, n, &r.low, &r.high);
    out.models.push_back(r);
  }
  char summary[160];
  std::snprintf(summary, sizeof summary, "%lld users, next-step hit rate %.4f",
                static_cast<long long>(n), out.models[0].hit_rate);
  timer.Done(summary);
  return out;
}

}  // namespace vitrine
