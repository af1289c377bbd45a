// Reference recommenders for offline evaluation: what the engine must beat.
//
// All three learn from a train users x items CsrMatrix in which any stored
// entry counts as one interaction (weights are ignored: the binary matrix X).
// Recommend() scores from the history it is given, not from the train
// matrix, so it also serves users and sessions the model never saw. With
// filter_already_seen (default on), history items are never recommended.
// Ties in score go to the lower item index, so results are deterministic.
//
// A fitted model is immutable; Recommend() is const and thread-safe. Call
// Fit() once before Recommend(); Recommend() on an unfitted model returns {}.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"
#include "engine/evaluate.h"

namespace vitrine {

// Most popular items: popularity = number of train users with the item.
class TopPop : public Recommender {
 public:
  explicit TopPop(bool filter_already_seen = true) : filter_seen_(filter_already_seen) {}

  [[nodiscard]] Status Fit(const CsrMatrix& train);
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t> train_history,
                                         int k) const override;
  std::string name() const override { return "toppop"; }

  const std::vector<int64_t>& popularity() const { return popularity_; }  // per item

 private:
  bool filter_seen_;
  std::vector<int64_t> popularity_;
  std::vector<int32_t> order_;  // items by popularity desc, then index asc
};

struct ItemKnnOptions {
  int neighbors = 100;  // similar items kept per item (> 0)
  // Shrinkage in the cosine denominator: sim = c_ij / (sqrt(n_i n_j) + shrink),
  // c_ij = users with both items, n_i = users with item i. 0 = plain cosine.
  double shrink = 0.0;
  bool filter_already_seen = true;
};

// Item-based collaborative filtering: score(j) = sum over history items h of
// S[h, j], where row h of S holds the cosine similarities of h to its top
// `neighbors` most similar other items (ties to the lower index; only
// positive similarities are kept). Only items with a positive score are
// returned, so a list can be shorter than k.
class ItemKnn : public Recommender {
 public:
  explicit ItemKnn(ItemKnnOptions opts = {}) : opts_(opts) {}

  // O(sum over users of |row|^2) time, O(items * neighbors) memory.
  [[nodiscard]] Status Fit(const CsrMatrix& train);
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t> train_history,
                                         int k) const override;
  std::string name() const override { return "itemknn"; }

  // items x items, row h = h's neighbours (columns ascending), values = S[h, j].
  const CsrMatrix& similarities() const { return sim_; }

 private:
  ItemKnnOptions opts_;
  CsrMatrix sim_;
};

struct EaseOptions {
  double lambda = 500.0;      // L2 penalty (> 0)
  int64_t max_items = 20000;  // refuse larger catalogs: the model is dense items^2
  bool filter_already_seen = true;
};

// EASE with the dense weight matrix B of embed/ease.h (the solve, its memory
// and time are documented there): score(j) = sum over history items h of
// B[h][j].
class Ease : public Recommender {
 public:
  explicit Ease(EaseOptions opts = {}) : opts_(opts) {}

  // InvalidArgument for lambda <= 0; Unsupported when the train matrix has
  // more than max_items columns (the message gives both numbers and the memory
  // the model would need).
  [[nodiscard]] Status Fit(const CsrMatrix& train);
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t> train_history,
                                         int k) const override;
  std::string name() const override { return "ease"; }

  const Matrix& weights() const { return b_; }  // items x items, B above

 private:
  EaseOptions opts_;
  Matrix b_;
};

}  // namespace vitrine
