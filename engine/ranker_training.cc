#include "engine/ranker_training.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <numeric>
#include <random>
#include <unordered_set>

#include "core/file_util.h"
#include "core/progress.h"
#include "engine/builder.h"
#include "engine/engine.h"
#include "engine/split.h"
#include "rank/learned_ranker.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

// Candidate pools with labels, in the row layout LearnedRanker trains on.
struct Pools {
  std::vector<float> features, labels;
  std::vector<uint32_t> groups;
  std::vector<int64_t> truth_sizes;  // held-out items per group (for IDCG)
};

// Mean NDCG@10 of ordering each pool by `scores` (ties to the earlier row).
double PoolNdcg(const Pools& p, std::span<const float> scores) {
  double sum = 0;
  size_t begin = 0;
  std::vector<size_t> order;
  for (size_t g = 0; g < p.groups.size(); ++g) {
    const size_t n = p.groups[g];
    order.resize(n);
    std::iota(order.begin(), order.end(), begin);
    const size_t top = std::min<size_t>(10, n);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](size_t a, size_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); });
    double dcg = 0, idcg = 0;
    for (size_t r = 0; r < top; ++r) dcg += p.labels[order[r]] / std::log2(r + 2.0);
    for (int64_t r = 0; r < std::min<int64_t>(10, p.truth_sizes[g]); ++r) idcg += 1 / std::log2(r + 2.0);
    sum += idcg > 0 ? dcg / idcg : 0;
    begin += n;
  }
  return p.groups.empty() ? 0 : sum / static_cast<double>(p.groups.size());
}

}  // namespace

HeldOut HoldOutLatest(const Interactions& inter, double fraction) {
  HeldOut h;
  const CsrMatrix& m = inter.matrix;
  h.train.users = inter.users;
  h.train.raw_events = inter.raw_events;
  CsrMatrix& tr = h.train.matrix;
  CsrMatrix& te = h.test;
  tr.rows = te.rows = m.rows;
  tr.cols = te.cols = m.cols;
  tr.indptr.assign(1, 0);
  te.indptr.assign(1, 0);
  const bool timed = inter.timestamps.size() == m.indices.size();
  std::vector<int64_t> order;
  for (int64_t u = 0; u < m.rows; ++u) {
    const int64_t b = m.indptr[u], n = m.row_size(u);
    order.resize(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), b);
    if (timed) {
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) {
        return inter.timestamps[static_cast<size_t>(x)] < inter.timestamps[static_cast<size_t>(y)];
      });
    }
    const int64_t n_test = TestCountForUser(n, fraction);
    std::vector<int64_t> test(order.end() - n_test, order.end());
    std::sort(test.begin(), test.end());  // CSR columns stay ascending
    std::unordered_set<int64_t> held(test.begin(), test.end());
    for (int64_t k = b; k < b + n; ++k) {
      CsrMatrix& dst = held.count(k) ? te : tr;
      dst.indices.push_back(m.indices[static_cast<size_t>(k)]);
      dst.values.push_back(m.values[static_cast<size_t>(k)]);
      if (&dst == &tr && timed)
        h.train.timestamps.push_back(inter.timestamps[static_cast<size_t>(k)]);
    }
    tr.indptr.push_back(tr.nnz());
    te.indptr.push_back(te.nnz());
    h.users_with_test += n_test > 0;
  }
  return h;
}

Result<std::optional<std::string>> TrainRankerForBuild(const BuildOptions& o,
                                                       const Catalog& catalog,
                                                       const Interactions& inter,
                                                       const fs::path& out,
                                                       nlohmann::json* report) {
  const BuildOptions::Ranker& ro = o.ranker;
  HeldOut held = HoldOutLatest(inter, ro.validation_fraction);
  if (held.users_with_test < ro.min_users) {
    LogInfo(
        "ranker: only %lld users with two or more interactions (need %lld); the bundle "
        "ranks with the hybrid score",
        static_cast<long long>(held.users_with_test), static_cast<long long>(ro.min_users));
    return std::optional<std::string>();
  }
  // The validation bundle: the same build on the older interactions.
  BuildOptions sub = o;
  sub.ranker.enabled = false;
  sub.autotune = false;
  sub.als.compute_loss = false;
  // Rank 0 fits the validation bundle alone: the other MPI ranks have left
  // after the main fit (FitAlsOnWorkerRank).
  sub.als.cluster = nullptr;
  const fs::path dir =
      TempSiblingPath(out.parent_path() / (out.filename().string() + ".ranker"));
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  StageTimer t_build("ranker: validation bundle (" + std::to_string(held.users_with_test) +
                     " users hold out their latest interactions)");
  VITRINE_RETURN_IF_ERROR(BuildFromData(sub, catalog, &held.train, dir).status());
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
                           Engine::Open(dir, VerifyMode::kSizesOnly));
  t_build.Done();

  // A seeded sample of the users with held-out items.
  std::vector<int32_t> users;
  for (int64_t u = 0; u < held.test.rows; ++u) {
    if (held.test.row_size(u) > 0 && held.train.matrix.row_size(u) > 0) {
      users.push_back(static_cast<int32_t>(u));
    }
  }
  std::mt19937_64 rng(ro.seed);
  std::shuffle(users.begin(), users.end(), rng);
  StageTimer t_pool("ranker: candidate pools", static_cast<int64_t>(users.size()));
  // Every fifth usable user is kept out of training to check the model.
  Pools train, check;
  int64_t test_items = 0, found = 0, done = 0;
  QueryParams q;
  q.k = 10;
  for (int32_t u : users) {
    if (static_cast<int64_t>(train.groups.size() + check.groups.size()) >= ro.max_users) break;
    const std::vector<int32_t> items = engine->UserHistory(u);
    const std::vector<float> weights = engine->UserHistoryWeights(u);
    VITRINE_ASSIGN_OR_RETURN(CandidatePool pool, engine->Candidates(items, weights, q, items));
    const auto b = held.test.indices.begin() + held.test.indptr[u];
    const auto e = held.test.indices.begin() + held.test.indptr[u + 1];
    const std::unordered_set<int32_t> truth(b, e);
    test_items += static_cast<int64_t>(truth.size());
    int64_t hits = 0;
    for (int32_t c : pool.items) hits += truth.count(c);
    found += hits;
    t_pool.Update(++done);
    if (hits == 0) continue;  // no relevant candidate: no ranking signal
    Pools& dst = (train.groups.size() + check.groups.size()) % 5 == 4 ? check : train;
    for (int32_t c : pool.items) dst.labels.push_back(truth.count(c) ? 1.0f : 0.0f);
    dst.features.insert(dst.features.end(), pool.features.begin(), pool.features.end());
    dst.groups.push_back(static_cast<uint32_t>(pool.items.size()));
    dst.truth_sizes.push_back(static_cast<int64_t>(truth.size()));
  }
  // The validation bundle's part is done: close it before LambdaMART, the
  // peak of a large build, so its vectors and index (1.8 GB at 1M items) do
  // not add to that peak.
  engine.reset();
  const double pool_recall = test_items > 0 ? static_cast<double>(found) / test_items : 0.0;
  const size_t rows = train.labels.size() + check.labels.size();
  t_pool.Done(std::to_string(train.groups.size() + check.groups.size()) + " groups, " +
              std::to_string(rows) + " rows, pool recall " + std::to_string(pool_recall).substr(0, 5));
  if (static_cast<int64_t>(train.groups.size()) < ro.min_users) {
    LogInfo(
        "ranker: only %zu users have a held-out item among their candidates (need %lld); "
        "the bundle ranks with the hybrid score",
        train.groups.size() + check.groups.size(), static_cast<long long>(ro.min_users));
    return std::optional<std::string>();
  }
  StageTimer t_train("ranker: LambdaMART", ro.rounds);
  RankerOptions params;
  params.on_round = [&t_train](int done) { t_train.Update(done); };
  params.rounds = ro.rounds;
  params.max_depth = ro.max_depth;
  params.eta = ro.eta;
  params.seed = ro.seed;
  params.nthread = ro.threads;
  params.pairs_per_sample = ro.pairs_per_sample;
  RankingData data{train.features, train.labels, train.groups};
  VITRINE_ASSIGN_OR_RETURN(LearnedRanker ranker,
                           LearnedRanker::Train(data, kRankerFeatures, params));
  t_train.Done(std::to_string(ranker.num_trees()) + " trees");

  // The answer the bundle gives by default: the ranker's order, unless the
  // item-item score alone or the hybrid (fused) score ranks the check users'
  // pools better (small or single-signal data, where the trees only add
  // noise). The pool ordered by its fused score stands for the hybrid's
  // answers: the pool holds the ANN search's best by that score.
  VITRINE_ASSIGN_OR_RETURN(std::vector<float> predicted,
                           ranker.Predict(check.features, check.labels.size()));
  auto column = [&](const char* name) {
    const size_t col = static_cast<size_t>(
        std::find(kRankerFeatures.begin(), kRankerFeatures.end(), name) -
        kRankerFeatures.begin());
    std::vector<float> out(check.labels.size());
    for (size_t j = 0; j < out.size(); ++j) {
      const float x = check.features[j * kRankerFeatures.size() + col];
      out[j] = std::isnan(x) ? -std::numeric_limits<float>::infinity() : x;
    }
    return out;
  };
  const double ndcg_ranker = PoolNdcg(check, predicted);
  const double ndcg_item_item = PoolNdcg(check, column("item_item"));
  const double ndcg_hybrid = PoolNdcg(check, column("fused_score"));
  std::string scorer = ro.scorer;
  if (scorer == "auto") {
    // Ties keep the ranker; a rival must do strictly better.
    scorer = kScorerRanker;
    double best = ndcg_ranker;
    if (ndcg_item_item > best) scorer = kScorerItemItem, best = ndcg_item_item;
    if (ndcg_hybrid > best) scorer = kScorerHybrid;
  }
  LogInfo("ranker: on %zu check users NDCG@10 %.4f (ranker) vs %.4f (item-item alone) vs %.4f "
          "(hybrid): the bundle answers with the %s%s",
          check.groups.size(), ndcg_ranker, ndcg_item_item, ndcg_hybrid,
          scorer == kScorerRanker     ? "ranker"
          : scorer == kScorerItemItem ? "item-item score"
                                      : "hybrid score",
          ro.scorer == "auto" ? "" : " (forced by the build options)");
  *report = {{"features", kRankerFeatures},
             {"trees", ranker.num_trees()},
             {"max_depth", ro.max_depth},
             {"eta", ro.eta},
             {"seed", ro.seed},
             {"validation_fraction", ro.validation_fraction},
             {"training_users", train.groups.size()},
             {"training_rows", train.labels.size()},
             {"check_users", check.groups.size()},
             {"check_ndcg_at_10",
              {{"ranker", ndcg_ranker}, {"item_item", ndcg_item_item}, {"hybrid", ndcg_hybrid}}},
             {"scorer", scorer},
             {"pool_recall", pool_recall}};
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ranker.Serialize());
  return std::optional<std::string>(std::move(bytes));
}

}  // namespace vitrine
