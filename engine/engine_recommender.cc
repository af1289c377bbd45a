#include "engine/engine_recommender.h"

namespace vitrine {

Result<std::vector<int32_t>> EngineRecommender::Recommend(int32_t user,
                                                          std::span<const int32_t> train_history,
                                                          int k) const {
  RecommendRequest r;
  r.query = query_;
  r.query.k = k;
  if (user >= 0 && static_cast<size_t>(user) < engine_.users().size()) {
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

}  // namespace vitrine
