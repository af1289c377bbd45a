// Offline evaluation of top-k recommendation lists against held-out items.
//
// Conventions. Items and users are dense indices (columns and rows of the
// train matrix). For one user, R is the recommended list (best first, only its
// first k entries count) and T the user's set of held-out test items. With
// hits(i) = 1 if R[i] is in T, H = sum_{i<k} hits(i) and m = min(k, |T|):
//
//   recall@k        H / m        ("normalised recall", as in Steck 2019 and
//                                 Liang et al. 2018: 1.0 is reachable even
//                                 when |T| > k)
//   recall_plain@k  H / |T|      (the textbook definition)
//   precision@k     H / k        (a list shorter than k is not rewarded)
//   NDCG@k          DCG / IDCG, binary relevance,
//                   DCG = sum_{i<k} hits(i) / log2(i + 2),
//                   IDCG = sum_{i<m} 1 / log2(i + 2)
//   AP@k            (1/m) sum_{i<k} hits(i) * H(i) / (i + 1), H(i) = hits in
//                   R[0..i]; MAP@k is its mean over users
//
// Duplicate entries in R count once (only their first occurrence can hit).
// User-level metrics are averaged over the users that have a non-empty test
// set; every user counts equally.
//
// Beyond accuracy (each optional, NaN in the report when not requested):
//   coverage            distinct items in all lists / number of items
//   diversity           intra-list diversity: mean over item pairs of a list of
//                       1 - cos(v_a, v_b) (a zero vector has cosine 0 with
//                       anything), averaged over lists with >= 2 items
//   brand_max_share     share of the list taken by its most frequent brand,
//                       over the list's length (items without a brand count
//                       in the length but belong to no brand), averaged over
//                       non-empty lists; 1/len(list) is the best possible
//   brand_hhi           Herfindahl index of the brand shares (sum of squared
//                       shares, same denominators), averaged likewise
//   compliance          fraction of evaluated users whose list satisfies a
//                       caller's predicate (e.g. "no rule violated")
//   cold_recall@k       recall@k restricted to cold test items: for users whose
//                       T contains cold items Tc, |R[:k] ∩ Tc| / min(k, |Tc|),
//                       averaged over those users
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/id_map.h"
#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

// A model that produces top-k lists: the contract every baseline and the
// engine's own pipeline implement for evaluation.
class Recommender {
 public:
  virtual ~Recommender() = default;

  // Up to k item indices for `user`, best first, no duplicates.
  // `train_history` is the user's known items (any order); models score from
  // it, so a user the model never saw (or user = -1 for an anonymous session)
  // works the same way. Must be thread-safe: Evaluate calls it concurrently.
  // An error fails the whole evaluation (it is never scored as an empty list).
  virtual Result<std::vector<int32_t>> Recommend(int32_t user,
                                                 std::span<const int32_t> train_history,
                                                 int k) const = 0;

  // Short name for reports ("toppop", "itemknn", "ease").
  virtual std::string name() const = 0;
};

// --- Per-list metrics (pure functions; `test` must be sorted ascending and
// unique; only the first k entries of `recommended` are used). ---

struct ListMetrics {
  double recall = 0;        // H / min(k, |T|)
  double recall_plain = 0;  // H / |T|
  double precision = 0;     // H / k
  double ndcg = 0;
  double ap = 0;
  int64_t hits = 0;  // H
};

// All-zero when `test` is empty or k <= 0.
ListMetrics ScoreList(std::span<const int32_t> recommended, std::span<const int32_t> test, int k);

// Mean pairwise 1 - cosine between the rows of `item_vectors` named by `list`;
// NaN for lists with fewer than 2 items. Indices must be < item_vectors.rows.
double IntraListDiversity(std::span<const int32_t> list, const Matrix& item_vectors);

// Share of `list` held by its most frequent brand; brands[i] < 0 = no brand.
// NaN for an empty list.
double BrandMaxShare(std::span<const int32_t> list, std::span<const int32_t> brands);

// Sum over brands of (count / len(list))^2; NaN for an empty list.
double BrandHhi(std::span<const int32_t> list, std::span<const int32_t> brands);

// --- Whole-model evaluation ---

// Per-call options. Spans and pointers are borrowed: the caller keeps them
// alive during Evaluate.
struct EvalOptions {
  int k = 10;  // list length scored (the @k of every metric)
  // Evaluate at most this many users with a non-empty test set (0 = all);
  // the sample is drawn with `seed` and is the same on every run.
  int64_t max_users = 0;
  uint64_t seed = 42;   // draws the max_users sample
  int num_threads = 0;  // OpenMP threads; 0 = OpenMP default

  const Matrix* item_vectors = nullptr;  // diversity; rows = items
  std::span<const int32_t> item_brands;  // brand code per item (-1 = none)
  std::span<const uint8_t> cold_items;   // 1 = cold item; enables cold_recall
  // 1 = a new or cold item (Engine::ExplorationItems); enables explore_share.
  std::span<const uint8_t> explore_items;
  // Returns true when `list` (for train row `user`) breaks no rule; enables
  // compliance. Called concurrently from several threads.
  std::function<bool(int32_t user, std::span<const int32_t> list)> complies;
};

// Aggregates, means over evaluated users (see the definitions at the top).
struct EvalReport {
  std::string model;
  int k = 0;
  int64_t users = 0;  // users evaluated
  double recall = 0;
  double recall_plain = 0;
  double precision = 0;
  double ndcg = 0;
  double map = 0;
  double coverage = 0;
  double diversity = std::numeric_limits<double>::quiet_NaN();
  double brand_max_share = std::numeric_limits<double>::quiet_NaN();
  double brand_hhi = std::numeric_limits<double>::quiet_NaN();
  double compliance = std::numeric_limits<double>::quiet_NaN();
  double cold_recall = std::numeric_limits<double>::quiet_NaN();
  // Mean share of a list's items that are new or cold: their exposure.
  double explore_share = std::numeric_limits<double>::quiet_NaN();
  int64_t cold_users = 0;  // users with >= 1 cold test item
  double seconds = 0;      // wall time of the Recommend calls

  // {"model": ..., "k": ..., "recall": ..., ...}; NaN metrics become null.
  nlohmann::json ToJson() const;
  // "ease k=10 users=5000 recall=0.3412 ndcg=0.2871 ..." (set metrics only).
  std::string ToString() const;
};

// Evaluates `model` on every user (row) of `test` with a non-empty test row:
// the history passed to Recommend is the user's row of `train` (column
// indices), and the list is scored against the user's row of `test`. Lists
// longer than k are cut to k. Users run in parallel; all sums are reduced in
// user order, so the report is identical for any thread count.
//
// InvalidArgument when k <= 0, when train and test differ in shape, when an
// optional per-item input does not have one entry per item, or when the model
// returns an item index outside [0, items) (naming model, user and index).
[[nodiscard]] Result<EvalReport> Evaluate(const Recommender& model, const CsrMatrix& train,
                                          const CsrMatrix& test, const EvalOptions& opts = {});

// Keeps a seeded sample of max_users of `users` (all when max_users <= 0
// or there are no more), sorted; the same sample on every run and platform.
void SampleUsers(std::vector<int32_t>* users, int64_t max_users, uint64_t seed);

// Re-indexes the rows of `test` (users `test_users`) onto `train_users`, so a
// test file read on its own lines up with the train matrix. The result has
// train_users.size() rows and test.cols columns; test users absent from train
// are dropped and counted in `*dropped_users` (if non-null).
CsrMatrix AlignRows(const IdMap& train_users, const IdMap& test_users, const CsrMatrix& test,
                    int64_t* dropped_users = nullptr);

}  // namespace vitrine
