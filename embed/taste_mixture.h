// TasteMixture: a latent-class model of who buys what (the aspect model of
// Hofmann & Puzicha 1999, a mixture of multinomials over items). Each of K
// hidden tastes k has a share pi_k of the shoppers and a distribution
// theta_k over the items; a history h belongs to taste k with posterior
//
//   R_k(h) ∝ pi_k * prod over items i of h of theta_k(i)
//
// and an item c scores P(c | h) = sum_k R_k(h) theta_k(c).
//
// Why beside EASE and ALS: a short history (a median of a handful of items)
// identifies a taste shared by thousands of shoppers, and the taste ranks
// every item by what those shoppers chose, including items the history has
// no co-occurrence with. It is the learned ranker's third candidate source
// and two of its features (docs/ranker.md, section 7).
//
// Fitted by EM on the 0/1 users x items matrix (every interaction counts 1,
// as the item-item source does), with additive smoothing `smoothing` on
// every theta_k(i) so unseen items keep a finite probability.
// Cost: O(iterations * nnz * clusters) time; clusters x (users + 2 items)
// floats while it fits; items x clusters floats stored.
// Deterministic: the seed draws the initial posteriors; every sum runs in a
// fixed order whatever the thread count.
//
// Thread safety: immutable after Fit / FromArrays; const methods may run
// concurrently.
#pragma once

#include <cstdint>
#include <roaring/roaring.hh>
#include <span>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"
#include "embed/item_neighbors.h"

namespace vitrine {

struct TasteMixtureOptions {
  int clusters = 32;  // 0 = no mixture in the bundle
  int iterations = 40;
  double smoothing = 0.1;  // pseudo-count added to every item of every taste
  uint64_t seed = 42;
  int threads = 0;  // 0 = OpenMP's default

  // InvalidArgument naming the option: clusters in [0, 1024], iterations in
  // [1, 1000], smoothing in (0, 1e6].
  Status Validate() const;
};

class TasteMixture {
 public:
  static constexpr int kMaxClusters = 1024;

  // EM on `interactions` (users x items; values ignored). Users without an
  // interaction take no part. Reports the final mean log-likelihood per
  // interaction in *log_likelihood when given.
  static Result<TasteMixture> Fit(const CsrMatrix& interactions, const TasteMixtureOptions& o,
                                  double* log_likelihood = nullptr);
  // From stored arrays: theta items x clusters (column k sums to 1 over the
  // items), prior clusters x 1. Corruption naming `where` if the shapes
  // disagree or a value is negative, not finite or a column does not sum to
  // about 1.
  static Result<TasteMixture> FromArrays(Matrix theta, Matrix prior, const std::string& where);

  int clusters() const { return static_cast<int>(theta_.cols); }
  int64_t num_items() const { return static_cast<int64_t>(theta_.rows); }
  const Matrix& theta() const { return theta_; }  // items x clusters
  Matrix prior() const;                           // clusters x 1

  // R(h): the history's posterior over the tastes (the prior for an empty
  // history). Items outside the fitted catalog are ignored.
  std::vector<float> Posterior(std::span<const int32_t> history) const;
  // P(item | h) for a posterior; NaN for an item outside the fitted catalog.
  float Score(std::span<const float> posterior, int32_t item) const;
  // The `k` items of highest P(item | h) among `allowed`, history items
  // excluded, best first (ties to the lower index). Fagin's threshold
  // algorithm over each likely taste's precomputed list of its top 2,000
  // items: a query costs O(tastes * depth walked), not O(items), and is
  // exact unless the lists run out first (then it returns the best of the
  // listed items; a tight rule over a large catalog can do that).
  std::vector<ScoredItem> Top(std::span<const float> posterior, int k, const Bitmap& allowed,
                              std::span<const int32_t> history) const;

 private:
  void BuildTopLists();

  Matrix theta_;                // items x clusters
  std::vector<float> log_prior_;
  std::vector<std::vector<int32_t>> top_;  // per taste: its most probable items
};

}  // namespace vitrine
