// Ground truth, recall and timed search (see index/measure.h).
#include "index/measure.h"

#include <faiss/impl/IDSelector.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "core/array_io.h"
#include "core/file_util.h"

namespace vitrine {

namespace {

Status CheckShapes(const Matrix& base, const Matrix& queries, int k) {
  if (k < 1) return Status::InvalidArgument("ground truth: k must be >= 1");
  if (base.rows == 0) return Status::InvalidArgument("ground truth: no base vectors");
  if (base.cols != queries.cols) {
    return Status::InvalidArgument("ground truth: queries have dimension " +
                                   std::to_string(queries.cols) + " but the base vectors " +
                                   std::to_string(base.cols));
  }
  return Status::OK();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(i), v.end());
  return v[i];
}

}  // namespace

Result<GroundTruth> ComputeGroundTruth(const Matrix& base, const Matrix& queries, int k,
                                       Metric metric, const Bitmap* filter) {
  VITRINE_RETURN_IF_ERROR(CheckShapes(base, queries, k));
  GroundTruth gt;
  gt.k = k;
  gt.num_queries = queries.rows;
  gt.ids.assign(queries.rows * k, -1);
  std::vector<float> dist(queries.rows * k);
  // A dense byte bitmap: FAISS probes it once per (query, row) pair.
  std::vector<uint8_t> bits;
  std::unique_ptr<faiss::IDSelectorBitmap> sel;
  if (filter) {
    bits.assign((base.rows + 7) / 8, 0);
    for (uint32_t id : *filter) {
      if (id < base.rows) bits[id >> 3] |= static_cast<uint8_t>(1u << (id & 7));
    }
    sel = std::make_unique<faiss::IDSelectorBitmap>(base.rows, bits.data());
  }
  if (queries.rows == 0) return gt;
  if (metric == Metric::kL2) {
    faiss::knn_L2sqr(queries.data.data(), base.data.data(), base.cols, queries.rows, base.rows, k,
                     dist.data(), gt.ids.data(), nullptr, sel.get());
  } else {
    faiss::knn_inner_product(queries.data.data(), base.data.data(), base.cols, queries.rows,
                             base.rows, k, dist.data(), gt.ids.data(), sel.get());
  }
  return gt;
}

uint64_t GroundTruthKey(const Matrix& base, const Matrix& queries, int k, Metric metric,
                        const Bitmap* filter) {
  auto bytes = [](const Matrix& m) {
    return std::string_view(reinterpret_cast<const char*>(m.data.data()),
                            m.data.size() * sizeof(float));
  };
  std::string key = "vitrine-gt-v1 " + std::to_string(base.rows) + "x" + std::to_string(base.cols) +
                    " " + std::to_string(queries.rows) + " k=" + std::to_string(k) +
                    (metric == Metric::kL2 ? " l2 " : " ip ");
  key += Hex64(Xxh64(bytes(base)));
  key += Hex64(Xxh64(bytes(queries)));
  if (filter) {
    std::vector<uint32_t> ids(filter->cardinality());
    filter->toUint32Array(ids.data());
    key += " filter " + Hex64(Xxh64(std::string_view(reinterpret_cast<const char*>(ids.data()),
                                                     ids.size() * sizeof(uint32_t))));
  }
  return Xxh64(key);
}

Result<GroundTruth> CachedGroundTruth(const Matrix& base, const Matrix& queries, int k,
                                      Metric metric, const Bitmap* filter,
                                      const std::filesystem::path& cache_dir, bool* from_cache) {
  if (from_cache) *from_cache = false;
  if (cache_dir.empty()) return ComputeGroundTruth(base, queries, k, metric, filter);
  VITRINE_RETURN_IF_ERROR(CheckShapes(base, queries, k));
  const auto path =
      cache_dir / ("gt-" + Hex64(GroundTruthKey(base, queries, k, metric, filter)) + ".ivecs");
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    auto cached = ReadIvecs(path);
    // A damaged or foreign file is recomputed, not trusted.
    if (cached.ok() && cached->rows == queries.rows && cached->cols == static_cast<size_t>(k)) {
      GroundTruth gt;
      gt.k = k;
      gt.num_queries = queries.rows;
      gt.ids.assign(cached->data.begin(), cached->data.end());
      if (from_cache) *from_cache = true;
      return gt;
    }
  }
  VITRINE_ASSIGN_OR_RETURN(GroundTruth gt, ComputeGroundTruth(base, queries, k, metric, filter));
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) return Status::IOError(cache_dir.string() + ": cannot create: " + ec.message());
  DenseMatrix<int32_t> out(queries.rows, k);
  std::copy(gt.ids.begin(), gt.ids.end(), out.data.begin());
  VITRINE_RETURN_IF_ERROR(WriteIvecs(path, out));
  return gt;
}

double RecallAtK(const std::vector<int64_t>& found, size_t found_stride, const GroundTruth& truth) {
  if (truth.num_queries == 0) return 1.0;
  const size_t k = static_cast<size_t>(truth.k);
  double sum = 0;
  for (size_t q = 0; q < truth.num_queries; ++q) {
    const int64_t* t = truth.ids.data() + q * k;
    const int64_t* f = found.data() + q * found_stride;
    size_t want = 0, hit = 0;
    for (size_t j = 0; j < k; ++j) want += t[j] >= 0;
    if (want == 0) {
      sum += 1;
      continue;
    }
    for (size_t j = 0; j < k; ++j) {
      if (f[j] >= 0 && std::find(t, t + k, f[j]) != t + k) ++hit;
    }
    sum += static_cast<double>(hit) / static_cast<double>(want);
  }
  return sum / static_cast<double>(truth.num_queries);
}

Result<BenchRow> MeasureSearch(const std::string& index, const std::string& params,
                               const SearchFn& search, const Matrix& queries,
                               const GroundTruth& truth, const MeasureOptions& options) {
  const size_t nq = queries.rows, d = queries.cols;
  const int k = truth.k;
  if (truth.num_queries != nq) {
    return Status::InvalidArgument("measure: ground truth has " +
                                   std::to_string(truth.num_queries) + " queries, expected " +
                                   std::to_string(nq));
  }
  const size_t batch = std::max<size_t>(1, options.batch);
  const int threads = std::max(1, options.threads);
  std::vector<int64_t> labels(nq * k, -1);
  {  // Warm caches and lazily built state; untimed.
    const size_t w = std::min(nq, options.warmup);
    std::vector<int64_t> tmp(w * k);
    if (w > 0) VITRINE_RETURN_IF_ERROR(search(queries.data.data(), w, k, tmp.data()));
  }
  const size_t calls = (nq + batch - 1) / batch;
  struct Pass {
    double qps = 0;
    std::vector<double> latencies_us;
  };
  std::vector<Pass> passes;
  for (int rep = 0; rep < std::max(1, options.repeats); ++rep) {
    Pass pass;
    pass.latencies_us.assign(calls, 0);
    std::vector<Status> errors(threads);
    auto worker = [&](int t) {
      // Each caller searches on its own thread only (no OpenMP team inside a
      // batch call), so `threads` is the parallelism that is measured.
      omp_set_num_threads(1);
      for (size_t c = static_cast<size_t>(t); c < calls; c += threads) {
        const size_t begin = c * batch, n = std::min(batch, nq - begin);
        const auto t0 = std::chrono::steady_clock::now();
        Status st = search(queries.data.data() + begin * d, n, k, labels.data() + begin * k);
        const auto t1 = std::chrono::steady_clock::now();
        if (!st.ok()) {
          errors[t] = st;
          return;
        }
        pass.latencies_us[c] = std::chrono::duration<double, std::micro>(t1 - t0).count();
      }
    };
    const int saved = omp_get_max_threads();
    const auto start = std::chrono::steady_clock::now();
    if (threads == 1) {
      worker(0);
    } else {
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
      for (auto& th : pool) th.join();
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    omp_set_num_threads(saved);
    for (const Status& st : errors) VITRINE_RETURN_IF_ERROR(st);
    pass.qps = static_cast<double>(nq) / std::max(secs, 1e-9);
    passes.push_back(std::move(pass));
  }
  std::sort(passes.begin(), passes.end(),
            [](const Pass& a, const Pass& b) { return a.qps < b.qps; });
  const Pass& median = passes[passes.size() / 2];
  BenchRow row;
  row.index = index;
  row.params = params;
  row.k = k;
  row.threads = threads;
  row.recall = RecallAtK(labels, k, truth);
  row.qps = median.qps;
  row.p50_us = Percentile(median.latencies_us, 0.50);
  row.p99_us = Percentile(median.latencies_us, 0.99);
  return row;
}

SearchFn VitrineSearch(const VectorIndex& index, const SearchParams& params) {
  return [&index, params](const float* q, size_t n, int k, int64_t* labels) -> Status {
    SearchParams p = params;
    p.k = k;
    // Thread-local buffers: the returned vectors would otherwise be
    // allocated per call and show up in the latency.
    thread_local std::vector<int64_t> l;
    thread_local std::vector<float> dist;
    VITRINE_RETURN_IF_ERROR(index.Search(q, n, p, &l, &dist));
    std::copy(l.begin(), l.end(), labels);
    return Status::OK();
  };
}

size_t IvfNlist(const VectorIndex& index) {
  const std::string d = index.Describe();  // "... IVF nlist=1024 code_size=..."
  const size_t at = d.find("IVF nlist=");
  return at == std::string::npos ? 0 : std::stoul(d.substr(at + 10));
}

std::vector<int> DefaultEfSweep(int k) {
  std::vector<int> out;
  for (int ef : {10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256}) {
    if (ef >= k && (out.empty() || ef != out.back())) out.push_back(ef);
  }
  if (out.empty() || out.front() > k) out.insert(out.begin(), k);
  return out;
}

std::vector<int> DefaultNprobeSweep(size_t nlist) {
  std::vector<int> out;
  for (size_t p = 1; p <= std::min<size_t>(nlist, 256); p *= 2) out.push_back(static_cast<int>(p));
  return out;
}

Matrix SampleQueries(const Matrix& vectors, size_t count, uint64_t seed) {
  const size_t n = vectors.rows, d = vectors.cols;
  count = std::min(count, n);
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> rows(n);
  for (size_t i = 0; i < n; ++i) rows[i] = static_cast<uint32_t>(i);
  for (size_t i = 0; i < count; ++i) {
    std::uniform_int_distribution<size_t> pick(i, n - 1);
    std::swap(rows[i], rows[pick(rng)]);
  }
  Matrix q(count, d);
  for (size_t i = 0; i < count; ++i) std::copy_n(vectors.row(rows[i]), d, q.row(i));
  if (n < 2) return q;
  // Distance to the nearest other row: the 2 nearest, the first being itself
  // (or a duplicate at distance 0, then the perturbation is 0 too).
  std::vector<float> dist(count * 2);
  std::vector<int64_t> ids(count * 2);
  faiss::knn_L2sqr(q.data.data(), vectors.data.data(), d, count, n, 2, dist.data(), ids.data());
  std::normal_distribution<float> gauss;
  std::vector<float> dir(d);
  for (size_t i = 0; i < count; ++i) {
    double norm = 0;
    for (float& x : dir) {
      x = gauss(rng);
      norm += double{x} * x;
    }
    const double r = 0.5 * std::sqrt(std::max(0.0f, dist[i * 2 + 1])) / std::sqrt(norm);
    float* row = q.row(i);
    for (size_t j = 0; j < d; ++j) row[j] += static_cast<float>(r * dir[j]);
  }
  return q;
}

}  // namespace vitrine
