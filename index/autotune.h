// Autotune: pick the index spec and search parameters that reach a target
// recall@k at the lowest measured single-query latency.
//
//   AutotuneOptions o;  // target recall@10 >= 0.95, inner product
//   o.metric = Metric::kInnerProduct;
//   Result<AutotuneResult> r = Autotune(vectors, o);
//   r->index        // the chosen index, built over all of `vectors`
//   r->spec, r->params, r->chosen   // what to record in the manifest
//
// Procedure: held-out queries (options.queries, or SampleQueries(vectors,
// num_queries, seed): rows of the vectors moved off themselves) get exact
// ground truth; each candidate spec is built over all vectors and its knob
// (ef_search for HNSW, nprobe for IVF; Flat has none) is swept upwards,
// measuring recall and latency (one query per call, options.measure) until
// recall >= target. Among the specs' first points meeting the target, the one
// with the highest QPS (lowest mean latency) wins. When none meets it, the
// point with the highest recall wins and met_target is false.
//
// Cost: one build per candidate spec plus a few hundred timed queries per
// sweep point. Progress goes to stderr (core/progress.h).
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"
#include "index/measure.h"
#include "index/vector_index.h"

namespace vitrine {

// The index a build makes when none is named (`--index auto`, the
// default; docs/scale.md, "Which index"). HNSW32 while its vectors and
// links (4 d + 272 bytes per item) take at most half of `memory_bytes`: on
// the 1M-item bundle it answered at recall 0.99 three times faster than any
// IVF point that reached 0.95. Above, IVF with nlist near 4 sqrt(n), 8-bit
// PQ codes of at least 4 dimensions each (SQ8 when d has no such divisor of
// 8 or more) and an exact re-rank from the vectors. The vectors stay
// resident either way, so the IVF choice saves the links, not the vectors.
// `nprobe` is the lists a query scans (0 for HNSW).
inline constexpr const char* kAutoIndexSpec = "auto";
struct AutoIndexChoice {
  std::string spec;
  int nprobe = 0;
};
AutoIndexChoice AutoIndex(size_t n, size_t dim, uint64_t memory_bytes);
// Physical memory of this machine (sysconf), for AutoIndex.
uint64_t PhysicalMemoryBytes();

struct AutotuneOptions {
  Metric metric = Metric::kInnerProduct;  // of the index built and the ground truth
  double target_recall = 0.95;            // recall@k a spec must reach
  int k = 10;                             // results per query measured
  // Candidate faiss specs; empty = DefaultAutotuneSpecs(n).
  std::vector<std::string> specs;
  // Held-out queries (not owned, must outlive the call); null = sampled.
  const Matrix* queries = nullptr;
  size_t num_queries = 500;  // sampled query count when queries is null
  uint64_t seed = 42;        // query sample and index training sample
  int hnsw_ef_construction = 100;  // build beam of the HNSW candidates
  // How each operating point is timed: single queries, the median of 3 passes.
  MeasureOptions measure{.threads = 1, .batch = 1, .repeats = 3, .warmup = 64};
  std::filesystem::path cache_dir;  // ground-truth cache; empty = none
};

struct AutotuneResult {
  std::string spec;     // the winning faiss spec
  SearchParams params;  // k, ef_search / nprobe of the operating point
  BenchRow chosen;      // its measured recall, qps, latencies, build time
  bool met_target = false;
  std::vector<BenchRow> table;         // every measured point, all specs
  std::unique_ptr<VectorIndex> index;  // the winner, over all vectors
  VectorIndexOptions index_options;    // how `index` was built
};

// Candidates for n vectors: HNSW16, HNSW32 and HNSW16,SQ8,RFlat, an
// IVF<nlist>,Flat with nlist
// a power of two near 4 * sqrt(n) (at most n / 39, FAISS's minimum training
// points per list), and Flat when n <= 20000.
std::vector<std::string> DefaultAutotuneSpecs(size_t n);

// The operating point for the bundle manifest: {"spec", "metric", "k",
// "target_recall", "met_target", "ef_search", "nprobe", "refine_k_factor",
// "recall", "qps", "p50_us", "p99_us", "build_s", "bytes_per_vector",
// "hnsw_ef_construction", "queries", "candidates": [specs]}.
nlohmann::json AutotuneToJson(const AutotuneResult& result, const AutotuneOptions& options);

// Errors: empty vectors, bad target (not in (0, 1]), k < 1, a bad spec, or
// queries of the wrong dimension.
Result<AutotuneResult> Autotune(const std::shared_ptr<const Matrix>& vectors,
                                const AutotuneOptions& options);

}  // namespace vitrine
