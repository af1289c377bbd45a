#include "index/autotune.h"

#include <faiss/IndexIVF.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "core/progress.h"

namespace vitrine {

namespace {

// The largest power of two at most 4 sqrt(n) that leaves FAISS's k-means
// 39 training points per list.
size_t IvfListCount(size_t n) {
  size_t nlist = 1;
  while (nlist * 2 <= 4 * std::sqrt(static_cast<double>(n)) && nlist * 2 * 39 <= n) nlist *= 2;
  return nlist;
}

}  // namespace

AutoIndexChoice AutoIndex(size_t n, size_t dim, uint64_t memory_bytes) {
  const double hnsw_bytes = static_cast<double>(n) * static_cast<double>(4 * dim + 272);
  const size_t nlist = IvfListCount(n);
  if (hnsw_bytes <= static_cast<double>(memory_bytes) / 2 || nlist < 4 || dim == 0) {
    return {"HNSW32", 0};
  }
  size_t m = 0;  // the most sub-quantisers of 4 or more dimensions
  for (size_t c = dim / 4; c >= 1 && m == 0; --c) {
    if (dim % c == 0) m = c;
  }
  const std::string codes = m >= 8 ? "PQ" + std::to_string(m) : std::string("SQ8");
  const int nprobe = static_cast<int>(std::max<size_t>(32, nlist / 128));
  return {"IVF" + std::to_string(nlist) + "," + codes + ",RFlat", nprobe};
}

uint64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

std::vector<std::string> DefaultAutotuneSpecs(size_t n) {
  // SQ8 codes with exact re-ranking of the beam from the kept vectors: a
  // quarter of the memory traffic per distance (docs/bench.md).
  std::vector<std::string> specs = {"HNSW16", "HNSW32", "HNSW16,SQ8,RFlat"};
  const size_t nlist = IvfListCount(n);
  if (nlist >= 4) specs.push_back("IVF" + std::to_string(nlist) + ",Flat");
  if (n <= 20000) specs.push_back("Flat");
  return specs;
}

nlohmann::json AutotuneToJson(const AutotuneResult& r, const AutotuneOptions& o) {
  std::vector<std::string> candidates;
  for (const BenchRow& row : r.table) {
    if (candidates.empty() || candidates.back() != row.index) candidates.push_back(row.index);
  }
  return {{"spec", r.spec},
          {"metric", o.metric == Metric::kL2 ? "l2" : "ip"},
          {"k", r.params.k},
          {"target_recall", o.target_recall},
          {"met_target", r.met_target},
          {"ef_search", r.params.ef_search},
          {"nprobe", r.params.nprobe},
          {"refine_k_factor", r.params.refine_k_factor},
          {"recall", r.chosen.recall},
          {"qps", r.chosen.qps},
          {"p50_us", r.chosen.p50_us},
          {"p99_us", r.chosen.p99_us},
          {"build_s", r.chosen.build_s},
          {"bytes_per_vector", r.chosen.bytes_per_vector},
          {"hnsw_ef_construction", r.index_options.hnsw_ef_construction},
          {"queries", o.queries ? o.queries->rows : o.num_queries},
          {"candidates", candidates}};
}

Result<AutotuneResult> Autotune(const std::shared_ptr<const Matrix>& vectors,
                                const AutotuneOptions& options) {
  if (!vectors || vectors->rows == 0) return Status::InvalidArgument("autotune: no vectors");
  if (!(options.target_recall > 0 && options.target_recall <= 1)) {
    return Status::InvalidArgument("autotune: target recall must be in (0, 1]");
  }
  if (options.k < 1) return Status::InvalidArgument("autotune: k must be >= 1");
  const Matrix& base = *vectors;
  Matrix sampled;
  if (!options.queries) sampled = SampleQueries(base, options.num_queries, options.seed);
  const Matrix& queries = options.queries ? *options.queries : sampled;
  if (queries.cols != base.cols) {
    return Status::InvalidArgument("autotune: queries have dimension " +
                                   std::to_string(queries.cols) + ", vectors " +
                                   std::to_string(base.cols));
  }
  const int k = static_cast<int>(std::min<size_t>(options.k, base.rows));
  StageTimer gt_timer("autotune: exact ground truth for " + std::to_string(queries.rows) +
                      " queries");
  VITRINE_ASSIGN_OR_RETURN(GroundTruth truth, CachedGroundTruth(base, queries, k, options.metric,
                                                                nullptr, options.cache_dir));
  gt_timer.Done();

  AutotuneResult out;
  const std::vector<std::string> specs =
      options.specs.empty() ? DefaultAutotuneSpecs(base.rows) : options.specs;
  bool have_best = false;
  for (const std::string& spec : specs) {
    VectorIndexOptions io;
    io.spec = spec;
    io.metric = options.metric;
    io.hnsw_ef_construction = options.hnsw_ef_construction;
    io.seed = options.seed;
    StageTimer build_timer("autotune: building " + spec);
    VITRINE_ASSIGN_OR_RETURN(auto index, VectorIndex::Build(vectors, io));
    const double build_s = build_timer.Seconds();
    build_timer.Done();
    const bool hnsw = index->Describe().find("HNSW") != std::string::npos;
    const size_t nlist = IvfNlist(*index);
    const bool ivf = nlist > 0;
    std::vector<int> knobs = {0};
    if (hnsw) knobs = DefaultEfSweep(k);
    if (ivf) knobs = DefaultNprobeSweep(nlist);
    const double bpv = index->BytesPerVector();
    bool spec_won = false;
    for (int knob : knobs) {
      SearchParams sp;
      sp.k = k;
      std::string params = "-";
      // HNSW ",RFlat" re-ranks the whole beam: ef alone is the knob.
      if (hnsw) sp.refine_k_factor = 1;
      if (hnsw) sp.ef_search = knob, params = "ef=" + std::to_string(knob);
      if (ivf) sp.nprobe = knob, params = "nprobe=" + std::to_string(knob);
      VITRINE_ASSIGN_OR_RETURN(BenchRow row, MeasureSearch(spec, params, VitrineSearch(*index, sp),
                                                           queries, truth, options.measure));
      row.build_s = build_s;
      row.bytes_per_vector = bpv;
      row.ef_search = hnsw ? knob : 0;
      row.nprobe = ivf ? knob : 0;
      out.table.push_back(row);
      LogInfo("autotune: %s %s recall@%d %.4f, %.0f QPS", spec.c_str(), params.c_str(), k,
              row.recall, row.qps);
      const bool meets = row.recall >= options.target_recall;
      // Better: meeting the target beats not meeting it; among meeting
      // points the faster wins; among failing points the more accurate.
      const bool better = !have_best || (meets && !out.met_target) ||
                          (meets && out.met_target && row.qps > out.chosen.qps) ||
                          (!meets && !out.met_target && row.recall > out.chosen.recall);
      if (better) {
        have_best = true;
        out.met_target = meets;
        out.chosen = row;
        out.spec = spec;
        out.params = sp;
        out.index_options = io;
        spec_won = true;
      }
      if (meets) break;  // larger knobs are only slower
    }
    if (spec_won) out.index = std::move(index);
  }
  LogInfo("autotune: chose %s %s (recall@%d %.4f, %.0f QPS)%s", out.spec.c_str(),
          out.chosen.params.c_str(), k, out.chosen.recall, out.chosen.qps,
          out.met_target ? "" : " -- target recall not reached");
  return out;
}

}  // namespace vitrine
