#include "index/vector_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <queue>
#include <random>
#include <utility>

#include "core/file_util.h"
#include "core/simd.h"
#include "index/faiss_reader.h"

namespace vitrine {

// Non-owning views of the layers of index_ that the search paths care about,
// found once (the only dynamic_casts in this file) instead of at every call.
struct VectorIndex::Layers {
  faiss::IndexRefine* refine = nullptr;  // ",RFlat": we re-rank ourselves
  faiss::IndexPreTransform* pre = nullptr;
  faiss::Index* core = nullptr;  // what the approximate path searches
  faiss::IndexHNSW* hnsw = nullptr;
  faiss::IndexIVF* ivf = nullptr;
  // HNSW over plain float vectors: the walk reads them directly, from
  // hnsw_xb (the storage's floats, or the vector matrix once they are shed).
  const faiss::IndexFlat* hnsw_flat = nullptr;
  const float* hnsw_xb = nullptr;
  // HNSW over 8-bit scalar-quantised codes: the walk decodes them itself
  // with x_i = vmin_i + scale_i * (code_i + 0.5) (FAISS's QT_8bit and
  // QT_8bit_uniform), checked against FAISS's own decoder in PrepareSq8.
  const faiss::IndexScalarQuantizer* hnsw_sq8 = nullptr;
  std::vector<float> sq_vmin, sq_scale;
  bool flat = false;
  bool idmap = false;

  explicit Layers(faiss::Index* top) {
    faiss::Index* cur = top;
    idmap = dynamic_cast<faiss::IndexIDMap*>(cur) != nullptr;
    if (auto* r = dynamic_cast<faiss::IndexRefine*>(cur)) {
      refine = r;
      cur = r->base_index;
    }
    if (auto* p = dynamic_cast<faiss::IndexPreTransform*>(cur)) {
      pre = p;
      cur = p->index;
    }
    idmap = idmap || dynamic_cast<faiss::IndexIDMap*>(cur) != nullptr;
    core = cur;
    hnsw = dynamic_cast<faiss::IndexHNSW*>(cur);
    if (hnsw) hnsw_flat = dynamic_cast<const faiss::IndexFlat*>(hnsw->storage);
    if (hnsw_flat) hnsw_xb = hnsw_flat->get_xb();
    ivf = dynamic_cast<faiss::IndexIVF*>(cur);
    flat = dynamic_cast<faiss::IndexFlat*>(cur) != nullptr;
  }

  // Needs a trained, filled index; leaves hnsw_sq8 null if the codec is not
  // one we decode or our decoding disagrees with FAISS's.
  void PrepareSq8() {
    auto* sq = hnsw ? dynamic_cast<const faiss::IndexScalarQuantizer*>(hnsw->storage) : nullptr;
    if (!sq || sq->ntotal == 0) return;
    const size_t d = sq->d;
    const auto& t = sq->sq.trained;
    const bool uniform = sq->sq.qtype == faiss::ScalarQuantizer::QT_8bit_uniform;
    if (!(sq->sq.qtype == faiss::ScalarQuantizer::QT_8bit && t.size() == 2 * d) &&
        !(uniform && t.size() == 2)) {
      return;
    }
    sq_vmin.resize(d);
    sq_scale.resize(d);
    for (size_t i = 0; i < d; ++i) {
      sq_vmin[i] = uniform ? t[0] : t[i];
      sq_scale[i] = (uniform ? t[1] : t[d + i]) / 255.0f;
    }
    std::vector<float> ref(d);
    sq->sa_decode(1, sq->codes.data(), ref.data());
    for (size_t i = 0; i < d; ++i) {
      const float mine = sq_vmin[i] + sq_scale[i] * (sq->codes[i] + 0.5f);
      if (std::abs(mine - ref[i]) > 1e-4f * (1 + std::abs(ref[i]))) return;
    }
    hnsw_sq8 = sq;
  }
};

namespace {

// FAISS trusts the index files it reads: ids, offsets and array sizes inside
// them become array indices during a search. A bundle's index can be damaged
// (or made) with a checksum that matches, so before an index is used the
// arrays a search walks are checked against each other: a bad file is a
// Corruption error naming what is inconsistent, never a wild read.
Status CheckQuantizerCodes(const faiss::Index* index, const char* what) {
  if (const auto* fc = dynamic_cast<const faiss::IndexFlatCodes*>(index)) {
    if (fc->codes.size() != static_cast<size_t>(fc->ntotal) * fc->code_size) {
      return Status::Corruption(std::string(what) + ": " + std::to_string(fc->codes.size()) +
                                " code bytes for " + std::to_string(fc->ntotal) + " vectors of " +
                                std::to_string(fc->code_size) + " bytes");
    }
  }
  if (const auto* sq = dynamic_cast<const faiss::IndexScalarQuantizer*>(index)) {
    const size_t t = sq->sq.trained.size();
    if (t != 2 * static_cast<size_t>(sq->d) && t != 2 && t != 0) {
      return Status::Corruption(std::string(what) + ": scalar quantizer ranges of size " +
                                std::to_string(t));
    }
  }
  if (const auto* pq = dynamic_cast<const faiss::IndexPQ*>(index)) {
    if (pq->pq.centroids.size() != pq->pq.M * pq->pq.ksub * pq->pq.dsub) {
      return Status::Corruption(std::string(what) + ": product quantizer codebook size");
    }
  }
  return Status::OK();
}

Status CheckHnsw(const faiss::IndexHNSW& index) {
  const faiss::HNSW& h = index.hnsw;
  const int64_t n = index.ntotal;
  auto bad = [](const std::string& m) { return Status::Corruption("HNSW graph: " + m); };
  if (index.storage == nullptr || index.storage->ntotal != n || index.storage->d != index.d) {
    return bad("its vector storage does not hold the graph's " + std::to_string(n) + " vectors");
  }
  VITRINE_RETURN_IF_ERROR(CheckQuantizerCodes(index.storage, "HNSW storage"));
  if (h.levels.size() != static_cast<size_t>(n) || h.offsets.size() != static_cast<size_t>(n) + 1 ||
      h.offsets[0] != 0 || h.offsets.back() != h.neighbors.size()) {
    return bad("levels, offsets and neighbour lists disagree on the number of nodes");
  }
  const int max_levels = static_cast<int>(h.cum_nneighbor_per_level.size()) - 1;
  if (max_levels < 1 || h.max_level < 0 || h.max_level >= max_levels) {
    return bad("level table of size " + std::to_string(h.cum_nneighbor_per_level.size()) +
               " for a top level of " + std::to_string(h.max_level));
  }
  for (int64_t i = 0; i < n; ++i) {
    const int level = h.levels[static_cast<size_t>(i)];
    if (level < 1 || level > h.max_level + 1 ||
        h.offsets[static_cast<size_t>(i) + 1] - h.offsets[static_cast<size_t>(i)] !=
            static_cast<size_t>(h.cum_nb_neighbors(level))) {
      return bad("node " + std::to_string(i) + " has level " + std::to_string(level) +
                 " and a neighbour list that does not fit it");
    }
  }
  for (const auto id : h.neighbors) {
    if (id < -1 || id >= n) return bad("a neighbour id " + std::to_string(id) + " out of range");
  }
  if (n == 0 ? h.entry_point != -1
             : (h.entry_point < 0 || h.entry_point >= n ||
                h.levels[static_cast<size_t>(h.entry_point)] != h.max_level + 1)) {
    return bad("entry point " + std::to_string(h.entry_point));
  }
  return Status::OK();
}

Status CheckIvf(const faiss::IndexIVF& ivf, int64_t rows) {
  auto bad = [](const std::string& m) { return Status::Corruption("IVF index: " + m); };
  if (ivf.quantizer == nullptr || ivf.quantizer->ntotal != static_cast<int64_t>(ivf.nlist) ||
      ivf.quantizer->d != ivf.d) {
    return bad("the coarse quantizer does not hold its " + std::to_string(ivf.nlist) +
               " centroids");
  }
  VITRINE_RETURN_IF_ERROR(CheckQuantizerCodes(ivf.quantizer, "IVF quantizer"));
  if (const auto* pq = dynamic_cast<const faiss::IndexIVFPQ*>(&ivf)) {
    if (pq->pq.centroids.size() != pq->pq.M * pq->pq.ksub * pq->pq.dsub ||
        pq->pq.code_size != pq->code_size) {
      return bad("product quantizer codebook or code size");
    }
  }
  const auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf.invlists);
  if (lists == nullptr || lists->nlist != ivf.nlist || lists->code_size != ivf.code_size) {
    return bad("inverted lists that are not the " + std::to_string(ivf.nlist) +
               " in-memory lists written by vitrine");
  }
  size_t total = 0;
  for (size_t l = 0; l < lists->nlist; ++l) {
    const auto& ids = lists->ids[l];
    if (lists->codes[l].size() != ids.size() * lists->code_size) {
      return bad("list " + std::to_string(l) + " has codes for a different number of vectors");
    }
    for (const auto id : ids) {
      if (id < 0 || id >= rows) return bad("an id " + std::to_string(id) + " out of range");
    }
    total += ids.size();
  }
  if (total != static_cast<size_t>(ivf.ntotal)) {
    return bad(std::to_string(total) + " ids in the lists for " + std::to_string(ivf.ntotal) +
               " vectors");
  }
  return Status::OK();
}

// The layers are VectorIndex::Layers' (found once by the caller).
struct IndexLayers {
  const faiss::IndexRefine* refine;
  const faiss::IndexPreTransform* pre;
  const faiss::Index* core;
  const faiss::IndexHNSW* hnsw;
  const faiss::IndexIVF* ivf;
};

Status CheckStructure(const faiss::Index& top, const IndexLayers& L, int64_t rows) {
  const int64_t n = top.ntotal;
  if (n < 0 || n > rows) {
    return Status::Corruption("the index claims " + std::to_string(n) + " vectors");
  }
  if (L.refine != nullptr) {
    const faiss::Index* r = L.refine->refine_index;
    if (r == nullptr || r->ntotal != n || r->d != top.d || L.refine->base_index->ntotal != n) {
      return Status::Corruption("the refine layer does not hold the index's vectors");
    }
    VITRINE_RETURN_IF_ERROR(CheckQuantizerCodes(r, "refine layer"));
  }
  if (L.pre != nullptr) {
    int d = L.pre->d;
    for (const faiss::VectorTransform* t : L.pre->chain) {
      const auto* lt = dynamic_cast<const faiss::LinearTransform*>(t);
      if (t == nullptr || t->d_in != d || t->d_out < 1 ||
          (lt != nullptr && (lt->A.size() != static_cast<size_t>(t->d_in) * t->d_out ||
                             (!lt->b.empty() && lt->b.size() != static_cast<size_t>(t->d_out))))) {
        return Status::Corruption("a transform of the index does not fit its dimensions");
      }
      d = t->d_out;
    }
    if (L.pre->index == nullptr || L.pre->index->d != d || L.pre->index->ntotal != n) {
      return Status::Corruption("the transformed index does not fit its transforms");
    }
  }
  if (L.core == nullptr || L.core->ntotal != n) {
    return Status::Corruption("the index layers disagree on the number of vectors");
  }
  if (L.hnsw != nullptr) VITRINE_RETURN_IF_ERROR(CheckHnsw(*L.hnsw));
  if (L.ivf != nullptr) VITRINE_RETURN_IF_ERROR(CheckIvf(*L.ivf, rows));
  return CheckQuantizerCodes(L.core, "index");
}


// FAISS-facing view of a filter bitmap.
struct IDSelectorRoaring : faiss::IDSelector {
  explicit IDSelectorRoaring(const Bitmap* b) : bitmap(b) {}
  bool is_member(faiss::Index::idx_t id) const override {
    return id >= 0 && id <= UINT32_MAX && bitmap->contains(static_cast<uint32_t>(id));
  }
  const Bitmap* bitmap;
};

// Internally smaller is always better: an inner product is negated.
using Scored = std::pair<float, int64_t>;  // (distance, id)

float WorstDistance(Metric m) {
  return m == Metric::kL2 ? std::numeric_limits<float>::infinity()
                          : -std::numeric_limits<float>::infinity();
}

// Writes the best (smallest internal distance) of a max-heap to a result row,
// converting back to the public sign convention.
void DrainHeap(std::priority_queue<Scored>& heap, int k, bool negate, int64_t* labels,
               float* distances) {
  while (static_cast<int>(heap.size()) > k) heap.pop();
  for (int j = static_cast<int>(heap.size()) - 1; j >= 0; --j) {
    labels[j] = heap.top().second;
    distances[j] = negate ? -heap.top().first : heap.top().first;
    heap.pop();
  }
}

std::vector<uint32_t> ToIds(const Bitmap& b) {
  std::vector<uint32_t> ids(b.cardinality());
  b.toUint32Array(ids.data());
  return ids;
}

// Distance kernels for the HNSW walk (core/simd.h). Where the CPU has
// neither AVX2 nor AVX-512, FAISS's own (SSE) float kernels.
using DistKernel = simd::FloatKernel;
using Sq8Kernel = simd::Sq8Kernel;

const simd::Kernels& BestKernels() {
  static const simd::Kernels k = [] {
    simd::Kernels best = simd::Best();
    if (best.level == simd::Level::kBaseline) {
      best.l2 = faiss::fvec_L2sqr;
      best.ip = faiss::fvec_inner_product;
    }
    return best;
  }();
  return k;
}

// Distance (smaller = closer) from the query to stored float vector `id`.
struct FlatDistance {
  const float* xb;
  size_t d;
  const float* q = nullptr;
  DistKernel kernel;
  bool negate;
  float operator()(int id) const {
    const float v = kernel(q, xb + static_cast<size_t>(id) * d, d);
    return negate ? -v : v;
  }
  void Prefetch(int id) const { __builtin_prefetch(xb + static_cast<size_t>(id) * d); }
};

// Distance from the query to 8-bit code `id` (see Sq8Kernel).
struct Sq8Distance {
  const uint8_t* codes;
  size_t d;
  const float* vmin;
  const float* scale;
  Sq8Kernel kernel;
  bool ip;
  std::vector<float> qt;  // per-query transformed query (qp or qs)
  float bias = 0;
  void SetQuery(const float* q) {
    qt.resize(d);
    bias = 0;
    for (size_t i = 0; i < d; ++i) {
      if (ip) {
        qt[i] = q[i] * scale[i];
        bias += q[i] * (vmin[i] + 0.5f * scale[i]);
      } else {
        qt[i] = q[i] - vmin[i] - 0.5f * scale[i];
      }
    }
  }
  float operator()(int id) const {
    const float v = kernel(qt.data(), scale, codes + static_cast<size_t>(id) * d, d);
    return ip ? -(bias + v) : v;
  }
  void Prefetch(int id) const { __builtin_prefetch(codes + static_cast<size_t>(id) * d); }
};

// Any FAISS storage (SQ, PQ, ...) through its DistanceComputer.
struct CodecDistance {
  faiss::DistanceComputer* dc;
  bool negate;
  float operator()(int id) const { return negate ? -(*dc)(id) : (*dc)(id); }
  void Prefetch(int) const {}
};

// One query over the faiss::HNSW graph with a per-call beam width `ef`:
// greedy descent on the upper levels, then a best-first beam search on level
// 0. Nodes outside `allowed` are walked through but never become results, so
// the beam does not stop until it holds ef allowed nodes (or the reachable
// graph is exhausted). Writes up to k results into `out` as a max-heap.
template <typename Dist>
void HnswSearchOne(const faiss::HNSW& g, const Dist& dist, int ef, const Bitmap* allowed,
                   faiss::VisitedTable& visited, std::priority_queue<Scored>& results) {
  if (g.entry_point < 0) return;
  int cur = g.entry_point;
  float dcur = dist(cur);
  size_t b = 0, e = 0;
  for (int level = g.max_level; level >= 1; --level) {
    for (bool moved = true; moved;) {
      moved = false;
      g.neighbor_range(cur, level, &b, &e);
      for (size_t j = b; j < e && g.neighbors[j] >= 0; ++j) {
        const float d = dist(g.neighbors[j]);
        if (d < dcur) dcur = d, cur = g.neighbors[j], moved = true;
      }
    }
  }
  using Node = std::pair<float, int>;
  std::priority_queue<Node, std::vector<Node>, std::greater<>> candidates;  // nearest first
  auto ok = [&](int id) { return allowed == nullptr || allowed->contains(id); };
  const size_t cap = static_cast<size_t>(ef);
  visited.advance();
  visited.set(cur);
  candidates.emplace(dcur, cur);
  if (ok(cur)) results.emplace(dcur, cur);
  while (!candidates.empty()) {
    const auto [dc_c, c] = candidates.top();
    if (results.size() >= cap && dc_c > results.top().first) break;
    candidates.pop();
    g.neighbor_range(c, 0, &b, &e);
    // Prefetch the unvisited neighbours' vectors before computing any of
    // their distances (hnswlib does the same).
    for (size_t j = b; j < e && g.neighbors[j] >= 0; ++j) {
      if (!visited.get(g.neighbors[j])) dist.Prefetch(g.neighbors[j]);
    }
    for (size_t j = b; j < e && g.neighbors[j] >= 0; ++j) {
      const int v = g.neighbors[j];
      if (visited.get(v)) continue;
      visited.set(v);
      const float d = dist(v);
      if (results.size() < cap || d < results.top().first) {
        candidates.emplace(d, v);
        if (ok(v)) {
          results.emplace(d, v);
          if (results.size() > cap) results.pop();
        }
      }
    }
  }
}

// Filtered IVF search with a filter-aware probe order. An unfiltered search
// with nprobe lists considers about nprobe * ntotal / nlist codes. We probe
// lists nearest-first until that many *allowed* codes (and at least k) have
// been seen, so a random filter with allowed fraction f probes ~nprobe / f
// lists, and a filter whose allowed items lie far from the query keeps
// probing until it reaches them (up to 4 * nprobe / f lists).
// Counting costs one bitmap probe per code of a probed list, which the scan
// pays anyway.
void IvfFilteredSearch(const faiss::IndexIVF& ivf, const float* xq, size_t n, int k, int nprobe,
                       const Bitmap& allowed, size_t total, faiss::IDSelector* sel, int64_t* labels,
                       float* distances) {
  using idx_t = faiss::Index::idx_t;
  const double f = static_cast<double>(allowed.cardinality()) / std::max<size_t>(1, total);
  const double target = std::max<double>(
      k, static_cast<double>(nprobe) * static_cast<double>(ivf.ntotal) / ivf.nlist);
  // Coarse candidates: 4x the lists a random filter needs, bounded by nlist.
  const size_t cap =
      std::min<size_t>(ivf.nlist, static_cast<size_t>(std::ceil(4.0 * nprobe / std::max(f, 1e-9))));
  std::vector<idx_t> assign(n * cap);
  std::vector<float> coarse(n * cap);
  ivf.quantizer->search(static_cast<idx_t>(n), xq, static_cast<idx_t>(cap), coarse.data(),
                        assign.data());
  for (size_t q = 0; q < n; ++q) {
    double seen = 0;
    for (size_t j = 0; j < cap; ++j) {
      idx_t& list = assign[q * cap + j];
      if (seen >= target) {
        list = -1;  // FAISS skips lists < 0
        continue;
      }
      if (list < 0) continue;
      faiss::InvertedLists::ScopedIds ids(ivf.invlists, list);
      const size_t len = ivf.invlists->list_size(list);
      for (size_t i = 0; i < len; ++i) seen += allowed.contains(static_cast<uint32_t>(ids[i]));
    }
  }
  faiss::SearchParametersIVF sp;
  sp.nprobe = cap;
  sp.sel = sel;
  ivf.search_preassigned(static_cast<idx_t>(n), xq, k, assign.data(), coarse.data(), distances,
                         labels, false, &sp);
}

Status CheckParams(const SearchParams& p) {
  if (p.k < 1) return Status::InvalidArgument("search: k must be >= 1, got " + std::to_string(p.k));
  if (p.ef_search < 1 || p.nprobe < 1 || p.refine_k_factor < 1) {
    return Status::InvalidArgument("search: ef_search, nprobe and refine_k_factor must be >= 1");
  }
  return Status::OK();
}

}  // namespace

VectorIndex::VectorIndex(std::unique_ptr<faiss::Index> index, std::shared_ptr<const Matrix> vectors)
    : index_(std::move(index)),
      layers_(std::make_unique<Layers>(index_.get())),
      vectors_(std::move(vectors)),
      metric_(index_->metric_type == faiss::METRIC_L2 ? Metric::kL2 : Metric::kInnerProduct) {
  layers_->PrepareSq8();
  ShedFloatCopies();
}

// A flat float layer of the FAISS index (the ",RFlat" refine index, the
// storage of HNSW<M>, or a top-level Flat) holds the same n x d floats as
// vectors_, which every search path reads instead (re-ranking, exact scans,
// the HNSW walk through hnsw_xb). Keeping both would double the largest part
// of a loaded bundle, so such a layer's codes are released here and put back
// only while the index is written (WithFullCodes). A layer is shed only if
// its bytes equal the matrix exactly (not, e.g., behind a PCA/OPQ transform).
void VectorIndex::ShedFloatCopies() {
  const Matrix& m = *vectors_;
  const size_t bytes = m.data.size() * sizeof(float);
  auto shed = [&](faiss::Index* layer) {
    auto* flat = dynamic_cast<faiss::IndexFlat*>(layer);
    if (flat == nullptr || flat->codes.empty() || flat->codes.size() != bytes ||
        static_cast<size_t>(flat->ntotal) != m.rows ||
        std::memcmp(flat->codes.data(), m.data.data(), bytes) != 0 ||
        std::find(shed_.begin(), shed_.end(), flat) != shed_.end()) {
      return;
    }
    std::vector<uint8_t>().swap(flat->codes);
    shed_.push_back(flat);
  };
  Layers& L = *layers_;
  if (L.refine) shed(L.refine->refine_index);
  if (L.hnsw && !L.pre) {
    shed(L.hnsw->storage);
    if (L.hnsw_flat && L.hnsw_flat->codes.empty()) L.hnsw_xb = m.data.data();
  }
  if (L.flat && !L.pre) shed(L.core);
}

template <typename F>
auto VectorIndex::WithFullCodes(F f) const {
  std::lock_guard<std::mutex> lock(full_codes_mu_);
  const Matrix& m = *vectors_;
  const auto* begin = reinterpret_cast<const uint8_t*>(m.data.data());
  // Searches never read a shed layer's codes, so refilling them here does not
  // race with concurrent searches; the mutex orders concurrent writers.
  for (faiss::IndexFlat* flat : shed_)
    flat->codes.assign(begin, begin + m.data.size() * sizeof(float));
  struct Release {
    const std::vector<faiss::IndexFlat*>& shed;
    ~Release() {
      for (faiss::IndexFlat* flat : shed) std::vector<uint8_t>().swap(flat->codes);
    }
  } release{shed_};
  return f(static_cast<const faiss::Index&>(*index_));
}

Result<std::string> VectorIndex::Serialize() const {
  return WithFullCodes([&](const faiss::Index& index) -> Result<std::string> {
    faiss::VectorIOWriter writer;
    try {
      faiss::write_index(&index, &writer);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("faiss::write_index: ") + e.what());
    }
    return std::string(reinterpret_cast<const char*>(writer.data.data()), writer.data.size());
  });
}

Result<std::unique_ptr<faiss::Index>> VectorIndex::CloneFaiss() const {
  // Through the file format: faiss::clone_index does not know IndexRefine or
  // HNSW over SQ codes, read_index knows everything write_index writes.
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, Serialize());
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin(), bytes.end());
  try {
    return std::unique_ptr<faiss::Index>(faiss::read_index(&reader));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss::read_index: ") + e.what());
  }
}

VectorIndex::~VectorIndex() = default;

size_t VectorIndex::size() const { return vectors_->rows; }
size_t VectorIndex::dim() const { return vectors_->cols; }

Result<std::unique_ptr<VectorIndex>> VectorIndex::Build(const Matrix& vectors,
                                                        const VectorIndexOptions& options) {
  return Build(std::make_shared<const Matrix>(vectors), options);
}

Result<std::unique_ptr<VectorIndex>> VectorIndex::Build(std::shared_ptr<const Matrix> vectors,
                                                        const VectorIndexOptions& options) {
  const Matrix& m = *vectors;
  if (m.rows == 0 || m.cols == 0) return Status::InvalidArgument("index: no vectors to index");
  if (m.rows > size_t{INT32_MAX}) return Status::Unsupported("index: more than 2^31 vectors");
  for (size_t i = 0; i < m.data.size(); ++i) {
    if (!std::isfinite(m.data[i])) {
      return Status::InvalidArgument("index: vector " + std::to_string(i / m.cols) +
                                     " has a non-finite value at column " +
                                     std::to_string(i % m.cols));
    }
  }
  const auto faiss_metric =
      options.metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  std::unique_ptr<faiss::Index> index;
  try {
    index.reset(faiss::index_factory(static_cast<int>(m.cols), options.spec.c_str(), faiss_metric));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("index spec '" + options.spec + "': " + e.what());
  }
  const Layers layers(index.get());
  if (layers.idmap) {
    return Status::Unsupported("index spec '" + options.spec +
                               "': IDMap is not needed (ids are row numbers)");
  }
  if (layers.hnsw) layers.hnsw->hnsw.efConstruction = options.hnsw_ef_construction;
  // index_factory turns on polysemous training for 8-bit PQ ("PQ8" without
  // "np"): minutes of simulated annealing for a Hamming filter we never use.
  if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(layers.core)) pq->do_polysemous_training = false;
  if (auto* pq = dynamic_cast<faiss::IndexPQ*>(layers.core)) pq->do_polysemous_training = false;
  try {
    if (!index->is_trained) {
      // A seeded sample: k-means cost grows with n, and 256 points per list is
      // plenty (FAISS itself subsamples beyond that).
      const size_t nlist = layers.ivf ? layers.ivf->nlist : 1;
      const size_t want = std::min(
          m.rows, std::clamp(256 * nlist, options.min_train_points, options.max_train_points));
      if (want == m.rows) {
        index->train(static_cast<faiss::Index::idx_t>(m.rows), m.data.data());
      } else {
        std::vector<uint32_t> rows(m.rows);
        std::iota(rows.begin(), rows.end(), 0u);
        std::mt19937_64 rng(options.seed);
        for (size_t i = 0; i < want; ++i) {
          std::uniform_int_distribution<size_t> pick(i, m.rows - 1);
          std::swap(rows[i], rows[pick(rng)]);
        }
        std::sort(rows.begin(), rows.begin() + want);
        std::vector<float> sample(want * m.cols);
        for (size_t i = 0; i < want; ++i) {
          std::copy_n(m.row(rows[i]), m.cols, sample.data() + i * m.cols);
        }
        index->train(static_cast<faiss::Index::idx_t>(want), sample.data());
      }
    }
    // In chunks, for progress. An IVF list or flat storage gets the same
    // rows in the same order either way; an HNSW graph links each chunk into
    // the graph built so far (as one add() links level by level): a graph
    // of the same kind and quality. Up to kAddChunk rows it is one add().
    const size_t chunk = std::max(kAddChunk, m.rows / 100);
    for (size_t at = 0; at < m.rows; at += chunk) {
      const size_t take = std::min(chunk, m.rows - at);
      index->add(static_cast<faiss::Index::idx_t>(take), m.row(at));
      if (options.on_progress) options.on_progress(at + take);
    }
  } catch (const std::exception& e) {
    return Status::Internal("index spec '" + options.spec + "': faiss: " + e.what());
  }
  return std::unique_ptr<VectorIndex>(new VectorIndex(std::move(index), std::move(vectors)));
}

namespace {

// faiss's writer interface over an AtomicFile: the index goes to disk as
// FAISS writes it, not through an in-memory copy (two of them with
// Serialize's string: 2 GB at 1M items, the build's peak; docs/scale.md).
class AtomicFileWriter : public faiss::IOWriter {
 public:
  explicit AtomicFileWriter(AtomicFile* file) : file_(file) {}
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    if (!status_.ok()) return 0;
    status_ = file_->Append(std::string_view(static_cast<const char*>(ptr), size * nitems));
    return status_.ok() ? nitems : 0;  // short: faiss throws, the status says why
  }
  const Status& status() const { return status_; }

 private:
  AtomicFile* file_;
  Status status_;
};

}  // namespace

Status VectorIndex::Save(const std::filesystem::path& path) const {
  AtomicFile file;
  VITRINE_RETURN_IF_ERROR(file.Open(path));
  AtomicFileWriter writer(&file);
  VITRINE_RETURN_IF_ERROR(WithFullCodes([&](const faiss::Index& index) -> Status {
    try {
      faiss::write_index(&index, &writer);
    } catch (const std::exception& e) {
      if (!writer.status().ok()) return writer.status();
      return Status::Internal(path.string() + ": faiss::write_index: " + e.what());
    }
    return Status::OK();
  }));
  return file.Commit();
}

Result<std::unique_ptr<VectorIndex>> VectorIndex::Load(const std::filesystem::path& path,
                                                       std::shared_ptr<const Matrix> vectors) {
  // Counts in the file are bounded by its size (index/faiss_reader.h).
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> index, ReadFaissFile(path));
  if (!vectors || static_cast<size_t>(index->d) != vectors->cols ||
      static_cast<size_t>(index->ntotal) > vectors->rows) {
    return Status::InvalidArgument(
        path.string() + ": index holds " + std::to_string(index->ntotal) +
        " vectors of dimension " + std::to_string(index->d) + " but the vector matrix is " +
        (vectors ? std::to_string(vectors->rows) + " x " + std::to_string(vectors->cols)
                 : std::string("missing")));
  }
  const Layers layers(index.get());
  if (layers.idmap) {
    return Status::Unsupported(path.string() + ": indexes with an IDMap are not supported");
  }
  Status st = CheckStructure(
      *index, {layers.refine, layers.pre, layers.core, layers.hnsw, layers.ivf},
      static_cast<int64_t>(vectors->rows));
  if (!st.ok()) return st.WithContext(path.string());
  return std::unique_ptr<VectorIndex>(new VectorIndex(std::move(index), std::move(vectors)));
}

Status VectorIndex::Remove(const Bitmap& ids) {
  Bitmap valid = ids;
  valid &= [&] {
    Bitmap all;
    all.addRange(0, size());
    return all;
  }();
  valid -= deleted_;
  if (valid.isEmpty()) return Status::OK();
  deleted_ |= valid;
  // Only IVF keeps ids through remove_ids (Flat compacts and renumbers; HNSW
  // throws); the others rely on the tombstone bitmap alone.
  if (layers_->ivf && !layers_->refine) {
    try {
      IDSelectorRoaring sel(&valid);
      index_->remove_ids(sel);
    } catch (const std::exception& e) {
      return Status::Internal(std::string("faiss remove_ids: ") + e.what());
    }
  }
  return Status::OK();
}

std::string VectorIndex::Describe() const {
  const Layers& L = *layers_;
  std::string s;
  if (L.pre) s += "PreTransform(" + std::to_string(L.pre->chain.size()) + ") + ";
  if (L.hnsw) {
    s += "HNSW M=" + std::to_string(L.hnsw->hnsw.nb_neighbors(1));
  } else if (L.ivf) {
    s += "IVF nlist=" + std::to_string(L.ivf->nlist) +
         " code_size=" + std::to_string(L.ivf->code_size);
  } else if (L.flat) {
    s += "Flat";
  } else {
    s += "other";
  }
  if (L.refine) s += " + exact refine";
  s += metric_ == Metric::kL2 ? " (L2)" : " (inner product)";
  return s;
}

size_t VectorIndex::IndexBytes() const {
  // Written without the shed layers' codes, each of which would add exactly
  // its n x d floats (faiss writes a vector as its size, then its bytes).
  return ResidentIndexBytes() + shed_.size() * vectors_->data.size() * sizeof(float);
}

size_t VectorIndex::ResidentIndexBytes() const {
  std::lock_guard<std::mutex> lock(full_codes_mu_);  // not while WithFullCodes refills
  faiss::VectorIOWriter writer;
  faiss::write_index(index_.get(), &writer);
  return writer.data.size();
}

double VectorIndex::BytesPerVector() const {
  return static_cast<double>(IndexBytes()) / static_cast<double>(std::max<size_t>(1, size()));
}

void VectorIndex::ExactScan(const float* queries, size_t n, int k, const Bitmap* allowed,
                            int64_t* labels, float* distances) const {
  const Matrix& m = *vectors_;
  const bool ip = metric_ == Metric::kInnerProduct;
  std::vector<uint32_t> ids;
  if (allowed) ids = ToIds(*allowed);
  const size_t count = allowed ? ids.size() : m.rows;
#pragma omp parallel for if (n > 1) schedule(dynamic)
  for (size_t q = 0; q < n; ++q) {
    const float* x = queries + q * m.cols;
    std::priority_queue<Scored> heap;
    for (size_t j = 0; j < count; ++j) {
      const size_t id = allowed ? ids[j] : j;
      if (id >= m.rows) break;  // ids are ascending; beyond n are not items
      const float d =
          ip ? -BestKernels().ip(x, m.row(id), m.cols) : BestKernels().l2(x, m.row(id), m.cols);
      if (static_cast<int>(heap.size()) < k) {
        heap.emplace(d, id);
      } else if (Scored(d, id) < heap.top()) {
        heap.pop();
        heap.emplace(d, id);
      }
    }
    DrainHeap(heap, k, ip, labels + q * k, distances + q * k);
  }
}

Status VectorIndex::ExactSearch(const float* queries, size_t n, const SearchParams& params,
                                std::vector<int64_t>* labels, std::vector<float>* distances) const {
  VITRINE_RETURN_IF_ERROR(CheckParams(params));
  labels->assign(n * params.k, -1);
  distances->assign(n * params.k, WorstDistance(metric_));
  Bitmap merged;
  const Bitmap* allowed = params.filter;
  if (!deleted_.isEmpty()) {
    if (params.filter) {
      merged = *params.filter - deleted_;
    } else {
      merged.addRange(0, size());
      merged -= deleted_;
    }
    allowed = &merged;
  }
  ExactScan(queries, n, params.k, allowed, labels->data(), distances->data());
  return Status::OK();
}

Status VectorIndex::SearchApprox(const float* queries, size_t n, const SearchParams& params,
                                 const Bitmap* allowed, int64_t* labels, float* distances) const {
  const Layers& L = *layers_;
  const int k = params.k;
  const bool ip = metric_ == Metric::kInnerProduct;
  // With ",RFlat" fetch more candidates and re-rank them exactly from
  // vectors_: k * refine_k_factor of them, or for HNSW the whole beam of
  // max(ef, k * refine_k_factor) (it is computed anyway, and re-ranking it
  // costs ef float distances, few next to the walk's).
  size_t pool = L.refine ? static_cast<size_t>(k) * params.refine_k_factor : k;
  if (L.refine && L.hnsw) pool = std::max<size_t>(pool, params.ef_search);
  const int kk = static_cast<int>(std::min<size_t>(pool, size()));
  std::vector<int64_t> I(n * kk, -1);
  std::vector<float> D(n * kk, WorstDistance(metric_));
  std::fill(labels, labels + n * k, -1);
  std::fill(distances, distances + n * k, WorstDistance(metric_));
  try {
    const float* xq = queries;
    std::unique_ptr<const float[]> transformed;
    if (L.pre) {
      xq = L.pre->apply_chain(static_cast<faiss::Index::idx_t>(n), queries);
      if (xq != queries) transformed.reset(xq);
    }
    IDSelectorRoaring sel(allowed);
    if (L.hnsw) {
      const int ef = std::max(params.ef_search, kk);
      const bool negate = L.hnsw->storage->metric_type == faiss::METRIC_INNER_PRODUCT;
#pragma omp parallel if (n > 1)
      {
        // Per-thread search state: nothing here is shared between calls.
        // FAISS's distance computer only for codecs we do not decode
        // ourselves (it would read a shed storage's codes).
        std::unique_ptr<faiss::DistanceComputer> dc;
        if (!L.hnsw_flat && !L.hnsw_sq8) dc.reset(L.hnsw->storage->get_distance_computer());
        faiss::VisitedTable visited(static_cast<int>(L.hnsw->ntotal));
        std::priority_queue<Scored> heap;
        const simd::Kernels& kernels = BestKernels();
        FlatDistance flat{nullptr, static_cast<size_t>(L.hnsw->d), nullptr,
                          negate ? kernels.ip : kernels.l2, negate};
        if (L.hnsw_flat) flat.xb = L.hnsw_xb;
        Sq8Distance sq8{nullptr,
                        static_cast<size_t>(L.hnsw->d),
                        L.sq_vmin.data(),
                        L.sq_scale.data(),
                        negate ? kernels.sq8_ip : kernels.sq8_l2,
                        negate,
                        {},
                        0};
        if (L.hnsw_sq8) sq8.codes = L.hnsw_sq8->codes.data();
        CodecDistance codec{dc.get(), negate};
#pragma omp for schedule(dynamic)
        for (size_t q = 0; q < n; ++q) {
          const float* x = xq + q * L.hnsw->d;
          if (L.hnsw_flat) {
            flat.q = x;
            HnswSearchOne(L.hnsw->hnsw, flat, ef, allowed, visited, heap);
          } else if (L.hnsw_sq8) {
            sq8.SetQuery(x);
            HnswSearchOne(L.hnsw->hnsw, sq8, ef, allowed, visited, heap);
          } else {
            dc->set_query(x);
            HnswSearchOne(L.hnsw->hnsw, codec, ef, allowed, visited, heap);
          }
          DrainHeap(heap, kk, negate, I.data() + q * kk, D.data() + q * kk);
        }
      }
    } else if (L.ivf && allowed) {
      IvfFilteredSearch(*L.ivf, xq, n, kk, params.nprobe, *allowed, size(), &sel, I.data(),
                        D.data());
    } else if (L.ivf) {
      faiss::SearchParametersIVF sp;
      sp.nprobe = std::min<size_t>(params.nprobe, L.ivf->nlist);
      L.ivf->search(static_cast<faiss::Index::idx_t>(n), xq, kk, D.data(), I.data(), &sp);
    } else {
      faiss::SearchParameters sp;
      sp.sel = &sel;
      L.core->search(static_cast<faiss::Index::idx_t>(n), xq, kk, D.data(), I.data(),
                     allowed ? &sp : nullptr);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss search: ") + e.what());
  }
  if (!L.refine) {
    std::copy(I.begin(), I.end(), labels);
    std::copy(D.begin(), D.end(), distances);
    return Status::OK();
  }
  const Matrix& m = *vectors_;
  for (size_t q = 0; q < n; ++q) {
    std::priority_queue<Scored> heap;
    const float* x = queries + q * m.cols;
    for (int j = 0; j < kk; ++j) {
      const int64_t id = I[q * kk + j];
      if (id < 0) continue;
      heap.emplace(
          ip ? -BestKernels().ip(x, m.row(id), m.cols) : BestKernels().l2(x, m.row(id), m.cols),
          id);
    }
    DrainHeap(heap, k, ip, labels + q * k, distances + q * k);
  }
  return Status::OK();
}

Status VectorIndex::Search(const float* queries, size_t n, const SearchParams& params,
                           std::vector<int64_t>* labels, std::vector<float>* distances) const {
  VITRINE_RETURN_IF_ERROR(CheckParams(params));
  const int k = params.k;
  labels->assign(n * k, -1);
  distances->assign(n * k, WorstDistance(metric_));
  if (n == 0) return Status::OK();

  // One bitmap of allowed ids: the filter, minus tombstones, within [0, n).
  Bitmap merged;
  const Bitmap* allowed = params.filter;
  const bool clip =
      params.filter && !params.filter->isEmpty() && params.filter->maximum() >= size();
  if (!deleted_.isEmpty() || clip) {
    Bitmap all;
    all.addRange(0, size());
    merged = params.filter ? (*params.filter & all) : all;
    merged -= deleted_;
    allowed = &merged;
  }
  const size_t count = allowed ? allowed->cardinality() : size();
  if (count == 0) return Status::OK();
  if (layers_->flat || static_cast<double>(count) <= params.exact_scan_max_fraction * size()) {
    ExactScan(queries, n, k, allowed, labels->data(), distances->data());
    return Status::OK();
  }
  VITRINE_RETURN_IF_ERROR(
      SearchApprox(queries, n, params, allowed, labels->data(), distances->data()));

  // Never return fewer than min(k, allowed) results: a restrictive filter can
  // starve IVF lists or an HNSW region. Retry wider, then scan exactly.
  const int want = static_cast<int>(std::min<size_t>(k, count));
  for (size_t q = 0; q < n; ++q) {
    int64_t* lq = labels->data() + q * k;
    float* dq = distances->data() + q * k;
    auto found = [&] {
      return static_cast<int>(std::count_if(lq, lq + k, [](int64_t l) { return l >= 0; }));
    };
    if (found() >= want) continue;
    SearchParams wider = params;
    wider.ef_search = params.ef_search * 4;
    wider.nprobe = params.nprobe * 4;
    VITRINE_RETURN_IF_ERROR(SearchApprox(queries + q * dim(), 1, wider, allowed, lq, dq));
    if (found() < want) ExactScan(queries + q * dim(), 1, k, allowed, lq, dq);
  }
  return Status::OK();
}

}  // namespace vitrine
