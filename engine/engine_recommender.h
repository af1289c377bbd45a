// EngineRecommender: the Engine behind the evaluation contract
// (engine/evaluate.h Recommender), so `vitrine evaluate` scores exactly what
// `recommend` and POST /recommend answer.
//
// A user of the bundle is asked for by id: the engine folds in their stored
// history, which is `train_history` when the evaluation's train matrix is
// Engine::TrainMatrix() (it is in `vitrine evaluate`). A user the bundle does
// not know (user = -1, or an index past its users) is asked for by the
// `train_history` items as a session. An engine error fails the evaluation.
#pragma once

#include <map>
#include <string>

#include "engine/engine.h"
#include "engine/evaluate.h"

namespace vitrine {

class EngineRecommender : public Recommender {
 public:
  // `query` holds the weights, rules and allowed items every list uses; its
  // k is replaced by the evaluation's. `engine` and what `query` points to
  // must outlive the recommender.
  EngineRecommender(const Engine& engine, std::string name, QueryParams query)
      : engine_(engine), name_(std::move(name)), query_(std::move(query)) {}

  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t> train_history,
                                         int k) const override;
  std::string name() const override { return name_; }

 private:
  const Engine& engine_;
  std::string name_;
  QueryParams query_;
};

// The item-item candidate source alone (embed/item_neighbors.h), scored from
// train_history with every interaction counting 1.
class ItemNeighborsRecommender : public Recommender {
 public:
  explicit ItemNeighborsRecommender(const ItemNeighbors& neighbors) : neighbors_(neighbors) {}
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t> train_history,
                                         int k) const override;
  std::string name() const override { return "item-item"; }

 private:
  const ItemNeighbors& neighbors_;
};

// The taste mixture alone (embed/taste_mixture.h): every item but the
// history, by P(item | history).
class TasteMixtureRecommender : public Recommender {
 public:
  explicit TasteMixtureRecommender(const TasteMixture& mixture) : mixture_(mixture) {}
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t> train_history,
                                         int k) const override;
  std::string name() const override { return "taste"; }

 private:
  const TasteMixture& mixture_;
};

// The share of the test items the merged candidate pool (Engine::Candidates,
// default query) holds, over a seeded sample of at most `max_users` users with
// test items: whether retrieval or ranking limits quality.
struct PoolRecall {
  double recall = 0;     // pooled test items / test items, micro-averaged
  double mean_pool = 0;  // candidates per user
  int64_t users = 0;
};
Result<PoolRecall> CandidatePoolRecall(const Engine& engine, const CsrMatrix& train,
                                       const CsrMatrix& test, int64_t max_users);

}  // namespace vitrine
