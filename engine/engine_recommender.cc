#include "engine/engine_recommender.h"

#include <algorithm>
#include <random>
#include <unordered_set>

namespace vitrine {

Result<std::vector<int32_t>> EngineRecommender::Recommend(int32_t user,
                                                          std::span<const int32_t> train_history,
                                                          int k) const {
  RecommendRequest r;
  r.query = query_;
  r.query.k = k;
  if (user >= 0 && user < engine_.users().size()) {
    r.user = engine_.users().id(user);
  } else {
    for (int32_t i : train_history) r.history.push_back(engine_.catalog().ids.id(i));
  }
  VITRINE_ASSIGN_OR_RETURN(Recommendation rec, engine_.Recommend(r));
  std::vector<int32_t> out;
  out.reserve(rec.hits.size());
  for (const Hit& h : rec.hits) out.push_back(h.item);
  return out;
}

Result<std::vector<int32_t>> ItemNeighborsRecommender::Recommend(
    int32_t /*user*/, std::span<const int32_t> train_history, int k) const {
  NeighborQueryParams p;
  p.k = k;
  std::vector<int32_t> out;
  for (const ScoredItem& s : neighbors_.Query(train_history, {}, p)) out.push_back(s.item);
  return out;
}

Result<std::vector<int32_t>> TasteMixtureRecommender::Recommend(
    int32_t /*user*/, std::span<const int32_t> train_history, int k) const {
  Bitmap all;
  all.addRange(0, static_cast<uint64_t>(mixture_.num_items()));
  std::vector<int32_t> out;
  for (const ScoredItem& s : mixture_.Top(mixture_.Posterior(train_history), k, all, train_history)) {
    out.push_back(s.item);
  }
  return out;
}

Result<PoolRecall> CandidatePoolRecall(const Engine& engine, const CsrMatrix& train,
                                       const CsrMatrix& test, int64_t max_users) {
  std::vector<int32_t> users;
  for (int64_t u = 0; u < test.rows && u < train.rows; ++u) {
    if (test.row_size(u) > 0) users.push_back(static_cast<int32_t>(u));
  }
  std::mt19937_64 rng(42);
  std::shuffle(users.begin(), users.end(), rng);
  if (static_cast<int64_t>(users.size()) > max_users) users.resize(static_cast<size_t>(max_users));
  PoolRecall r;
  int64_t found = 0, total = 0, pooled = 0;
  QueryParams q;
  for (int32_t u : users) {
    const std::span<const int32_t> history(train.indices.data() + train.indptr[u],
                                           static_cast<size_t>(train.row_size(u)));
    const std::vector<float> weights(train.values.begin() + train.indptr[u],
                                     train.values.begin() + train.indptr[u + 1]);
    const std::vector<int32_t> drop(history.begin(), history.end());
    VITRINE_ASSIGN_OR_RETURN(CandidatePool pool, engine.Candidates(history, weights, q, drop));
    const std::unordered_set<int32_t> in_pool(pool.items.begin(), pool.items.end());
    for (int64_t k = test.indptr[u]; k < test.indptr[u + 1]; ++k) {
      found += in_pool.count(test.indices[static_cast<size_t>(k)]);
    }
    total += test.row_size(u);
    pooled += static_cast<int64_t>(pool.items.size());
  }
  r.users = static_cast<int64_t>(users.size());
  r.recall = total > 0 ? static_cast<double>(found) / static_cast<double>(total) : 0.0;
  r.mean_pool = r.users > 0 ? static_cast<double>(pooled) / static_cast<double>(r.users) : 0.0;
  return r;
}

}  // namespace vitrine
