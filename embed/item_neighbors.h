// ItemNeighbors: each item's top-N most similar items, computed once at build
// time from the users x items interaction matrix and stored as a sparse
// items x items CSR, plus the query that turns a history into candidates:
//
//   score(c) = sum over history entries (h, w) of w * sim(h, c)
//
// It is the "item-item" candidate source beside the fused ANN search and
// popularity (docs/ranker.md).
//
// Two similarities (ItemNeighborsOptions::method):
//  * kEase (the default up to ease_max_items items): the item-item weights of
//    EASE (embed/ease.h), B[h][c], which learn how much each item predicts
//    each other with the others accounted for; on long-tail catalogs they rank
//    clearly better than cosine (docs/ranker.md).
//  * kCosine: cosine over the weighted item columns of the interaction matrix
//    with shrinkage (Sarwar et al. 2001; the shrink term as in Koren 2008):
//
//   sim(i, j) = <x_i, x_j> / (sqrt(|x_i|^2 |x_j|^2) + shrink),  i != j
//
// where x_i is item i's column (one entry per user: 1, or the stored weight
// under ItemNeighborsOptions::use_weights). Unweighted, this is exactly
// engine/baselines.h's ItemKnn. Per item, the `neighbors` largest
// positive similarities are kept (ties to the lower item index), and under
// kEase also the `negative_neighbors` most negative weights; a row holds
// them with columns ascending, so the CSR invariant of core/matrix.h holds.
// The matrix is not symmetric after the cut: j may be in i's row and not i
// in j's.
//
// Memory: O(items * neighbors) for the result. EASE needs items^2 floats while
// it builds (embed/ease.h), which is why larger catalogs use cosine. Cosine,
// during Build: a 0/1 copy of
// the interaction matrix and its transpose, and per thread one dense
// accumulator of `items` doubles and one of `items` bytes; never
// items x items.
// Time: O(sum over users of |row|^2); users with many items dominate
// (ItemNeighborsOptions::max_items_per_user bounds that).
//
// Thread safety: an ItemNeighbors is immutable after Build/Load; Query is
// const and safe to call from many threads (scratch space is thread_local).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <roaring/roaring.hh>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

// A set of item indices; the same type as index/attribute_index.h's Bitmap
// (an alias may be declared twice), so the engine's rules bitmap passes
// straight through without embed depending on index.
using Bitmap = ::Roaring;

struct ItemNeighborsOptions {
  enum class Method { kEase, kCosine };
  // kEase falls back to kCosine above ease_max_items (see EffectiveMethod).
  Method method = Method::kEase;
  double ease_lambda = 500.0;        // EASE's L2 penalty (> 0), as the ease baseline
  int64_t ease_max_items = 15000;    // 900 MB while building; larger catalogs use cosine
  int neighbors = 100;  // similar items kept per item (> 0)
  // kEase only: the most negative weights kept per item as well (>= 0). They
  // lower the score of items that go with the history less than their
  // popularity predicts, as dense EASE does; keeping 100 beside the 100
  // positive ones moved the item-item source's NDCG@10 closer to dense EASE
  // on both generated catalogs (docs/ranker.md). They never make an item a
  // candidate: Query returns positive scores only.
  int negative_neighbors = 100;
  // >= 0; damps similarities backed by few users. 100 was best for recall@100
  // on the generated demo split, where it matched dense EASE
  // (docs/ranker.md); it is in units of users, so it scales with the data.
  double shrink = 100.0;
  // false: every stored interaction counts 1 (the values are ignored), which
  // measured better than event weights or 1 + log(weight) on the demo split.
  // true: x_i holds the stored weights.
  bool use_weights = false;
  // Users with more items than this contribute only their
  // `max_items_per_user` largest-weight items (ties to the lower item index);
  // bounds the O(|row|^2) cost of bots and heavy users. 0 = no limit.
  int64_t max_items_per_user = 0;
};

// The method Build uses for a catalog of `items` items under `opts`.
ItemNeighborsOptions::Method EffectiveMethod(const ItemNeighborsOptions& opts, int64_t items);
// "ease" or "cosine" (the manifest's item_neighbors.method).
const char* MethodName(ItemNeighborsOptions::Method m);

// One candidate from a query.
struct ScoredItem {
  int32_t item = -1;
  float score = 0;
};

// Per-call options of ItemNeighbors::Query, owned by the caller.
struct NeighborQueryParams {
  int k = 100;  // at most this many results (>= 0)
  // Leave out the history's own items.
  bool exclude_history = true;
  // Only items in this set may be returned (the engine's rules bitmap);
  // null = all items. Not owned.
  const Bitmap* allowed = nullptr;
};

class ItemNeighbors {
 public:
  ItemNeighbors() = default;

  // Computes the neighbour lists from `user_items` (users x items; values are
  // interaction weights). InvalidArgument for bad options or, under
  // use_weights, a negative or non-finite weight (the message names the user
  // row and item column). `on_progress`, if set, is called on the calling
  // thread with the number of items done so far (the cosine method, in
  // blocks; EASE is one dense solve and reports nothing).
  static Result<ItemNeighbors> Build(const CsrMatrix& user_items,
                                     const ItemNeighborsOptions& opts = {},
                                     const std::function<void(int64_t)>& on_progress = nullptr);

  // Wraps an existing items x items similarity matrix after checking it
  // (square, indptr monotone, columns sorted, unique and in range, scores
  // finite). Corruption names the row at fault.
  static Result<ItemNeighbors> FromCsr(CsrMatrix similarities);

  int64_t num_items() const { return sim_.rows; }
  // items x items; row i = i's neighbours (columns ascending), values = sims.
  const CsrMatrix& similarities() const { return sim_; }

  // Item `item`'s neighbours and their similarities (parallel spans, columns
  // ascending). `item` must be in [0, num_items()).
  std::span<const int32_t> neighbors(int32_t item) const;
  std::span<const float> scores(int32_t item) const;

  // Candidates for a history: score(c) = sum_t weights[t] * sim(history[t], c)
  // over the entries whose row contains c; the k highest-scoring items with a
  // positive score, best first, ties to the lower item index. `weights` is
  // empty (every weight 1) or as long as `history` (otherwise the result is
  // empty). Out-of-range history items are ignored; a repeated item counts
  // once per occurrence. Never returns an item outside params.allowed, nor
  // (with exclude_history) an item of the history.
  std::vector<ScoredItem> Query(std::span<const int32_t> history, std::span<const float> weights,
                                const NeighborQueryParams& params = {}) const;

  // The file format ("item_neighbors.bin"; all integers little-endian):
  //
  //   offset  size          field
  //   0       8             magic "VTRNBRS\0"
  //   8       4             uint32 format version (1)
  //   12      4             uint32 reserved (0)
  //   16      8             int64 items
  //   24      8             int64 nnz
  //   32      8*(items+1)   int64 indptr
  //   ...     4*nnz         int32 indices (columns ascending within a row)
  //   ...     4*nnz         float32 scores
  //   end-8   8             uint64 xxh64 (seed 0) of every byte before it
  //
  // Load rejects a wrong magic, an unknown version, sizes that do not match
  // the file length, a checksum mismatch and an invalid CSR (as FromCsr),
  // each with a message naming the file and what was expected.
  std::string Serialize() const;
  // `name` is used in error messages (a path, or "<bytes>").
  static Result<ItemNeighbors> Deserialize(std::string_view bytes, std::string_view name);
  [[nodiscard]] Status Save(const std::filesystem::path& path) const;  // atomic write
  static Result<ItemNeighbors> Load(const std::filesystem::path& path);

  // Heap bytes of the CSR arrays.
  size_t MemoryBytes() const;

 private:
  explicit ItemNeighbors(CsrMatrix sim) : sim_(std::move(sim)) {}
  CsrMatrix sim_;
};

}  // namespace vitrine
