// Diversifier: picks k results out of a scored candidate pool so that the list
// is relevant but not redundant, under CAP rules ("at most n results per
// brand") and PIN rules ("item X at position 1").
//
//   SelectTopK  plain greedy by score (no diversity), caps respected
//   SelectMMR   Maximal Marginal Relevance (Carbonell & Goldstein 1998):
//               argmax_i  lambda * score_i - (1 - lambda) * max_{j in S} sim(i, j)
//               evaluated lazily: the same picks as the plain O(k M dim)
//               scan, usually with little more than M similarities.
//   SelectDPP   Determinantal point process, fast greedy MAP inference with an
//               incremental Cholesky factor (Chen, Zhang, Zhou, NeurIPS 2018),
//               O(k^2 M + k M dim) for M candidates.
//   ApplyPins   places pinned items at fixed positions after selection.
//
// Candidates carry unit vectors (`vec`, `dim` floats, owned by the caller and
// alive during the call); sim(i, j) = <vec_i, vec_j> = cosine similarity.
// Diversity needs a pool larger than k: MMR or DPP over a pool of exactly k
// candidates can only reorder it. Callers should retrieve at least
// kDefaultPoolFactor * k candidates.
//
// Caps are enforced during selection (a candidate that would break a cap is
// skipped, never selected and later removed), so every selector returns
// min(k, number of candidates that fit the caps greedily) items: the result is
// maximal, i.e. every candidate left out would break a cap or k was reached.
//
// Thread safety: all functions are pure apart from the CapTracker they are
// given; concurrent calls with distinct trackers are safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "core/status.h"

namespace vitrine {

// Retrieve at least this many times k candidates before diversifying.
inline constexpr int kDefaultPoolFactor = 10;

struct Candidate {
  int32_t item = 0;            // catalog item index
  float score = 0;             // relevance; higher is better (any sign)
  const float* vec = nullptr;  // unit vector of `dim` floats; required by MMR/DPP
};

// One CAP rule: at most `limit` selected items per group. `groups(item, out)`
// appends the group ids of `item` to `out` (one for a categorical value,
// several for a list column, none when the value is missing: missing values
// are never capped). Must be callable from several threads.
//
// Optionally the same groups as arrays, which CapTracker then reads instead
// of calling `groups` (no call and no copy per check): item i in
// [0, offsets.size() - 1) has the groups ids[offsets[i], offsets[i + 1]),
// other items none. Not owned; must outlive the trackers using the rule.
struct CapRule {
  CapRule() = default;
  CapRule(int32_t limit, std::function<void(int32_t, std::vector<int64_t>*)> groups,
          std::span<const int64_t> offsets = {}, std::span<const int64_t> ids = {})
      : limit(limit), groups(std::move(groups)), offsets(offsets), ids(ids) {}

  int32_t limit = 1;
  std::function<void(int32_t item, std::vector<int64_t>* out)> groups;
  std::span<const int64_t> offsets;  // empty: use `groups`
  std::span<const int64_t> ids;
};

// Counts selected items per group of every cap rule. Not thread-safe (one per
// request); the rules it points to must outlive it.
class CapTracker {
 public:
  explicit CapTracker(std::span<const CapRule> caps);
  // True if adding `item` keeps every cap.
  bool CanAdd(int32_t item) const;
  // Counts `item` as selected (does not check CanAdd).
  void Add(int32_t item);

 private:
  // The groups of `item` under cap c (valid until the next call).
  std::span<const int64_t> Groups(size_t c, int32_t item) const;

  std::span<const CapRule> caps_;
  std::vector<std::vector<std::pair<int64_t, int32_t>>> counts_;  // per cap: (group, count)
  mutable std::vector<int64_t> scratch_;
};

// Unit-length copies of candidate vectors for MMR/DPP similarity, one row per
// candidate. Each row starts on a 64-byte boundary (the row stride is rounded
// up to 16 floats), so a vector load does not straddle cache lines
// (docs/experiments.md has the measurement).
// Rows never move, so the pointers Add returns stay valid for the object's
// lifetime. Not copyable.
class UnitVectors {
 public:
  // Room for `capacity` rows of `dim` floats.
  UnitVectors(size_t capacity, size_t dim);
  UnitVectors(const UnitVectors&) = delete;
  UnitVectors& operator=(const UnitVectors&) = delete;
  // The rows move with the buffer; the moved-from object is empty (Add
  // returns null).
  UnitVectors(UnitVectors&& other) noexcept;
  UnitVectors& operator=(UnitVectors&& other) noexcept;

  // Copies `v` (dim floats) scaled to unit length (a zero vector stays zero)
  // into the next row and returns it; null once `capacity` rows are used.
  const float* Add(const float* v);
  size_t size() const { return size_; }

 private:
  size_t dim_ = 0, stride_ = 0, size_ = 0, capacity_ = 0;
  std::vector<float> buf_;  // over-allocated so that rows can start aligned
  float* base_ = nullptr;   // first aligned float in buf_
};

// Each selector returns indices into `candidates`, in selection order (= rank
// order), at most k of them. `caps` may be null (no caps); selected items are
// added to it, so a tracker pre-loaded with pinned items makes them count.
// Errors (InvalidArgument): k < 0, a NaN or infinite score, lambda outside
// [0, 1], theta outside [0, 1), a null `vec` for MMR/DPP, dim < 1.

// Highest scores first (ties: lower index first).
Result<std::vector<int>> SelectTopK(std::span<const Candidate> candidates, int k,
                                    CapTracker* caps = nullptr);

// MMR with relevance weight `lambda` (1 = pure score order, 0 = pure
// novelty). The first pick is the highest score. Ties: lower index first.
Result<std::vector<int>> SelectMMR(std::span<const Candidate> candidates, int dim, int k,
                                   float lambda, CapTracker* caps = nullptr);

// DPP greedy MAP over the kernel L = diag(q) S diag(q), S_ij = <vec_i, vec_j>,
// q_i = exp(alpha * score_i) with alpha = theta / (2 (1 - theta)) as in Chen et
// al. (theta = 0: diversity only; theta -> 1: relevance only). Each step adds
// the candidate maximising det(L_S+i), i.e. the largest Cholesky residual d_i^2.
// A candidate whose residual falls below 1e-9 * L_ii (its vector lies in the
// span of the selected ones) is no longer a DPP choice; when none is left
// (e.g. k > dim) the remaining slots are filled in score order under the caps.
Result<std::vector<int>> SelectDPP(std::span<const Candidate> candidates, int dim, int k,
                                   float theta, CapTracker* caps = nullptr);

// A pinned item and its 0-based position in the final list.
struct PinnedItem {
  int32_t item = 0;
  int32_t position = 0;
};

// Merges pins into `ranked` (item indices, best first) and returns at most k
// items: pinned items sit at their positions, ranked items fill the other
// positions in order. Never duplicates an item: a ranked item that is also
// pinned is dropped from `ranked`. Pins are taken in order: a pin whose item or
// position was already taken, or whose position is >= k, is ignored. When the
// list is too short to reach a pin's position, the pin follows the last item.
std::vector<int32_t> ApplyPins(std::span<const int32_t> ranked, std::span<const PinnedItem> pins,
                               int k);

// Mean over all pairs of (1 - cosine) of unit vectors; 0 for fewer than 2.
double IntraListDiversity(std::span<const float* const> vecs, int dim);

}  // namespace vitrine
