// Recall and latency of a vector index, measured the way autotune
// (index/autotune.h) picks an operating point and `vitrine bench` reports
// one: exact ground truth (cached on disk), recall@k, timed single-query or
// batched search, held-out query sampling, and the default knob sweeps.
// Benchmark-only pieces (CSV rows, the Pareto frontier, random filters, the
// hnswlib peer) live in benchlib/, which the server never links.
//
//   GroundTruth gt = *ComputeGroundTruth(base, queries, k, Metric::kL2, nullptr);
//   BenchRow row = *MeasureSearch("HNSW32", "ef=64", VitrineSearch(index, sp), queries, gt, {});
//
// Timing: a SearchFn is called on consecutive slices of `batch` queries; each
// call's wall time is one latency sample (so p50/p99 are per call, which for
// batch 1 is per query). QPS = queries / total wall time of the timed pass.
// With threads > 1, that many std::threads split the queries (each still one
// call per slice) and QPS is over the wall time of the whole pass.
//
// Thread safety: the free functions are reentrant; a SearchFn must be safe to
// call concurrently when threads > 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"
#include "index/attribute_index.h"  // Bitmap
#include "index/vector_index.h"     // Metric, VectorIndex

namespace vitrine {

// Exact neighbours: ids[q * k + j] is query q's j-th nearest allowed base row
// (best first), -1 when fewer than k rows are allowed.
struct GroundTruth {
  int k = 0;
  size_t num_queries = 0;
  std::vector<int64_t> ids;
};

// Brute-force k nearest rows of `base` for each row of `queries` (same
// dimension) under `metric`, restricted to `filter` when non-null. Uses every
// OpenMP thread. Errors: dimension mismatch, k < 1, empty base.
Result<GroundTruth> ComputeGroundTruth(const Matrix& base, const Matrix& queries, int k,
                                       Metric metric, const Bitmap* filter);

// The cache key of a ground truth: xxh64 over base and query contents, k,
// metric and the filter's ids. Any change to one of them changes the key.
uint64_t GroundTruthKey(const Matrix& base, const Matrix& queries, int k, Metric metric,
                        const Bitmap* filter);

// As ComputeGroundTruth, but first looks for "<cache_dir>/gt-<key hex>.ivecs"
// and otherwise writes it (atomically; the directory is created). A cached
// file of the wrong shape is ignored and rewritten. `*from_cache` (optional)
// reports whether the cache answered. An empty cache_dir disables caching.
Result<GroundTruth> CachedGroundTruth(const Matrix& base, const Matrix& queries, int k,
                                      Metric metric, const Bitmap* filter,
                                      const std::filesystem::path& cache_dir,
                                      bool* from_cache = nullptr);

// Mean over queries of |found(q) ∩ truth(q)| / min(k, |truth(q)|), where
// found has num_queries rows of `found_stride` >= k labels (only the first k
// of each row count; -1 entries never match). Queries with an empty truth
// count as recall 1.
double RecallAtK(const std::vector<int64_t>& found, size_t found_stride, const GroundTruth& truth);

// One measured operating point (also a row of `vitrine bench`'s CSV).
struct BenchRow {
  std::string index;   // "HNSW32", "hnswlib M=16 efC=100", ...
  std::string params;  // "ef=64", "nprobe=8", ...
  int k = 10;
  double recall = 0;
  double qps = 0;
  double p50_us = 0;
  double p99_us = 0;
  double build_s = 0;
  double bytes_per_vector = 0;
  int threads = 1;
  // Search knobs behind `params`, for autotune (0 = not applicable).
  int ef_search = 0;
  int nprobe = 0;
};

// Searches `n` queries (n x d row-major) for `k` neighbours, writing n * k
// labels (-1 padded).
using SearchFn = std::function<Status(const float* queries, size_t n, int k, int64_t* labels)>;

struct MeasureOptions {
  int threads = 1;     // concurrent callers
  size_t batch = 1;    // queries per call
  int repeats = 1;     // timed passes; the pass with the median QPS is reported
  size_t warmup = 64;  // queries searched (untimed) before the first pass
};

// Runs `search` over all queries: recall@gt.k against `truth` (from the first
// pass) and the timings described at the top of this file. Fills recall,
// qps, p50_us, p99_us, threads, k, index and params; the caller sets the rest.
Result<BenchRow> MeasureSearch(const std::string& index, const std::string& params,
                               const SearchFn& search, const Matrix& queries,
                               const GroundTruth& truth, const MeasureOptions& options);

// A SearchFn over a VectorIndex with fixed parameters (params.k is replaced
// by the call's k). `index` and params.filter must outlive the function.
SearchFn VitrineSearch(const VectorIndex& index, const SearchParams& params);

// nlist of an IVF index (also under a pre-transform or ",RFlat"), else 0.
size_t IvfNlist(const VectorIndex& index);

// The default sweeps: ef values >= k for HNSW, nprobe values <= nlist for IVF.
std::vector<int> DefaultEfSweep(int k);
std::vector<int> DefaultNprobeSweep(size_t nlist);

// Held-out style queries drawn from the vectors themselves: `count` rows
// picked with `seed`, each moved a random direction by half the distance to
// its nearest other row (so the source row stays a near neighbour but the
// query is not trivially in the index). L2 geometry; used for both metrics.
Matrix SampleQueries(const Matrix& vectors, size_t count, uint64_t seed);

}  // namespace vitrine
