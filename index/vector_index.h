// VectorIndex: approximate nearest-neighbour search over the item vectors,
// backed by FAISS and described by a faiss::index_factory spec string.
//
//   auto index = VectorIndex::Build(vectors, {.spec = "HNSW32"});
//   SearchParams p{.k = 10, .ef_search = 128, .filter = &allowed};
//   index->Search(queries, nq, p, &labels, &distances);
//
// Ids: the label of a vector is its row in the matrix it was built from (the
// item index in catalog order). No IDMap is used: FAISS assigns sequential ids
// 0..n-1 on add(), which is exactly that.
//
// Distances: for Metric::kInnerProduct the inner product (larger = closer,
// results sorted descending); for Metric::kL2 the squared L2 distance
// (results sorted ascending). Quantised indexes (SQ, PQ) return approximate
// distances unless the spec ends with ",RFlat", in which case candidates are
// re-ranked with exact distances computed from the stored vectors.
//
// Supported specs: anything index_factory builds without an IDMap; these
// get special treatment:
//   "Flat"                      exact search
//   "HNSW<M>[,SQ8|,PQ<m>|...]"  per-call ef_search (own graph traversal,
//                               see below), filters
//   "IVF<n>,Flat|SQ8|PQ<m>"     per-call nprobe, filters (under a filter,
//                               lists are probed nearest-first until nprobe
//                               lists' worth of allowed codes were seen)
//   "OPQ<m>,..." / "PCA<d>,..." pre-transforms applied to the queries
//   "...,RFlat"                 exact re-ranking of k * refine_k_factor candidates
//                               (HNSW: of its whole beam, max(ef, k * factor))
//
// Why the HNSW search is our own code: Debian's FAISS 1.7.3 ignores
// SearchParametersHNSW::efSearch (the beam size comes from the shared
// hnsw.efSearch member), so a per-call ef would need a data race. We traverse
// the faiss::HNSW graph (greedy descent on upper levels, beam search of width
// ef on level 0) with per-call state only. Under a filter, non-allowed nodes
// are still traversed but never enter the result set (hnswlib-style), so the
// search keeps walking until it has ef allowed results.
//
// Filters (docs/architecture.md): SearchParams::filter is a bitmap of allowed
// ids. When it allows few items (SearchParams::exact_scan_max_fraction, chosen from
// measurements in docs/index.md) the index scans those items exactly instead
// of walking the graph / lists. When the approximate search returns fewer
// than k results although k items are allowed, it is retried with 4x ef /
// nprobe, then answered by an exact scan: Search always returns
// min(k, allowed items) results.
//
// Tombstones: Remove() marks ids deleted; they are excluded from every search
// (merged into each filter). FAISS's remove_ids is called as well for IVF
// indexes (which keep ids); HNSW cannot remove and Flat would renumber ids, so
// those keep the vector and rely on the tombstone only.
//
// Thread safety: Search, ExactSearch and the accessors are const and safe to
// call concurrently from many threads (no shared mutable state; a batch of
// n > 1 queries is parallelised with OpenMP, a single query runs on the
// calling thread). Remove must not run concurrently with anything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"
#include "index/attribute_index.h"  // Bitmap

namespace faiss {
struct Index;
struct IndexFlat;
}  // namespace faiss

namespace vitrine {

enum class Metric { kInnerProduct, kL2 };

// Below this fraction of allowed items (after tombstones), a filtered search
// is an exact scan over the allowed rows (the crossover measured in
// docs/index.md).
inline constexpr double kExactScanMaxFraction = 0.10;

// How Build makes the index; fixed for its life.
struct VectorIndexOptions {
  std::string spec = "HNSW32";            // faiss::index_factory description
  Metric metric = Metric::kInnerProduct;  // what Search ranks by
  int hnsw_ef_construction = 40;  // HNSW build beam (FAISS default 40)
  // Training sample for IVF / PQ / SQ / OPQ: min(n, clamp(256 * nlist,
  // min_train_points, max_train_points)) rows drawn with `seed`.
  size_t min_train_points = 16384;
  size_t max_train_points = 262144;
  uint64_t seed = 1234;  // draws the training sample
  // Called after each chunk of vectors is added (kAddChunk rows, or n/100
  // when larger), with the rows added so far: progress for long builds.
  std::function<void(size_t added)> on_progress;
};

// Rows per index add() call of Build: small enough for progress every few
// seconds at HNSW speeds, large enough that FAISS's parallel add has work.
inline constexpr size_t kAddChunk = 20000;

// The knobs of one Search call: per call and owned by the caller (FAISS's
// SearchParameters), so Search stays const and thread-safe.
struct SearchParams {
  int k = 10;                      // results wanted
  int ef_search = 64;              // HNSW level-0 beam width (raised to k)
  int nprobe = 16;                 // IVF lists scanned (capped at nlist)
  const Bitmap* filter = nullptr;  // allowed ids; null = all. Not owned.
  // Candidates re-ranked per result for a ",RFlat" spec (k * factor; HNSW
  // re-ranks max(ef_search, k * factor), so 1 lets ef_search alone decide).
  int refine_k_factor = 4;
  // A filter allowing at most this fraction of the items is answered by an
  // exact scan over them (0 = never; benchmarks use it to compare paths).
  double exact_scan_max_fraction = kExactScanMaxFraction;
};

class VectorIndex {
 public:
  ~VectorIndex();
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // Builds and fills the index from `vectors` (n x d, row i = id i), which
  // the index keeps (shared, never modified) for exact scans and re-ranking.
  // Errors: bad spec (message quotes FAISS), empty or non-finite vectors.
  static Result<std::unique_ptr<VectorIndex>> Build(std::shared_ptr<const Matrix> vectors,
                                                    const VectorIndexOptions& options);
  static Result<std::unique_ptr<VectorIndex>> Build(const Matrix& vectors,
                                                    const VectorIndexOptions& options);

  // Writes the FAISS index (faiss::write_index format) atomically to `path`.
  // Tombstones are not written (the bundle stores them). Serialize returns
  // the same bytes. Both are safe to call concurrently with searches.
  Status Save(const std::filesystem::path& path) const;
  Result<std::string> Serialize() const;

  // Reads an index written by Save. `vectors` must be the matrix it was built
  // from (same n and d). The metric comes from the file.
  static Result<std::unique_ptr<VectorIndex>> Load(const std::filesystem::path& path,
                                                   std::shared_ptr<const Matrix> vectors);

  // Searches `n` queries (n x dim() row-major). On success `labels` and
  // `distances` hold n * k entries, row q = query q, best first. Slots beyond
  // the number of allowed items are -1 with distance +inf (L2) / -inf (IP).
  // Errors: k < 1, ef_search < 1, nprobe < 1, a FAISS failure.
  Status Search(const float* queries, size_t n, const SearchParams& params,
                std::vector<int64_t>* labels, std::vector<float>* distances) const;

  // Brute-force search over all (or the allowed, non-deleted) stored vectors;
  // same contract as Search. The oracle for recall and the small-filter path.
  Status ExactSearch(const float* queries, size_t n, const SearchParams& params,
                     std::vector<int64_t>* labels, std::vector<float>* distances) const;

  // Marks `ids` deleted (tombstones). Not thread-safe with Search.
  Status Remove(const Bitmap& ids);
  const Bitmap& deleted() const { return deleted_; }

  size_t size() const;  // vectors added, including deleted ones
  size_t dim() const;
  Metric metric() const { return metric_; }
  // "HNSW M=32", "IVF nlist=256", "Flat", ... with pre-transform/refine noted.
  std::string Describe() const;

  // Bytes of the serialised FAISS index, as Save writes it; O(index size).
  size_t IndexBytes() const;
  // Bytes the index holds in memory (up to small overhead): IndexBytes()
  // minus the float layers shed because they duplicate the vector matrix.
  size_t ResidentIndexBytes() const;
  double BytesPerVector() const;  // IndexBytes() / size()

  // The FAISS index, for inspection (types, ntotal, graph). Its flat float
  // layers that duplicate the vector matrix (",RFlat", HNSW<M>'s storage,
  // Flat) hold no codes in memory: do not search it directly. CloneFaiss
  // returns a complete, independent copy that raw FAISS can search.
  const faiss::Index& faiss_index() const { return *index_; }
  Result<std::unique_ptr<faiss::Index>> CloneFaiss() const;

 private:
  struct Layers;
  VectorIndex(std::unique_ptr<faiss::Index> index, std::shared_ptr<const Matrix> vectors);

  // Releases flat layers that duplicate vectors_ (see the .cc); runs f on
  // the index with them refilled.
  void ShedFloatCopies();
  template <typename F>
  auto WithFullCodes(F f) const;

  // The approximate path for queries already known to need it.
  Status SearchApprox(const float* queries, size_t n, const SearchParams& params,
                      const Bitmap* allowed, int64_t* labels, float* distances) const;
  void ExactScan(const float* queries, size_t n, int k, const Bitmap* allowed, int64_t* labels,
                 float* distances) const;

  std::unique_ptr<faiss::Index> index_;
  std::unique_ptr<Layers> layers_;  // non-owning views into index_
  std::shared_ptr<const Matrix> vectors_;
  Metric metric_ = Metric::kInnerProduct;
  Bitmap deleted_;
  std::vector<faiss::IndexFlat*> shed_;  // layers of index_ holding no codes
  mutable std::mutex full_codes_mu_;
};

}  // namespace vitrine
