#include "embed/item_neighbors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "core/file_util.h"
#include "embed/ease.h"

namespace vitrine {
namespace {

constexpr char kMagic[8] = {'V', 'T', 'R', 'N', 'B', 'R', 'S', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 32;
// Items are processed in blocks so the per-row scratch lists stay bounded
// while the finished rows are appended to the CSR in order.
constexpr int64_t kBuildBlock = 4096;

// Higher score first, then lower item index: a strict total order, so every
// top-k below is deterministic.
template <typename S>
bool Better(const std::pair<S, int32_t>& a, const std::pair<S, int32_t>& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// Each user row cut to its `max_items` largest weights (ties to the lower
// column), columns kept ascending.
CsrMatrix TruncateRows(const CsrMatrix& m, int64_t max_items) {
  CsrMatrix out;
  out.rows = m.rows;
  out.cols = m.cols;
  out.indptr.assign(static_cast<size_t>(m.rows) + 1, 0);
  std::vector<std::pair<float, int32_t>> row;
  for (int64_t r = 0; r < m.rows; ++r) {
    row.clear();
    for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p)
      row.emplace_back(m.values[p], m.indices[p]);
    if (static_cast<int64_t>(row.size()) > max_items) {
      std::nth_element(row.begin(), row.begin() + max_items, row.end(), Better<float>);
      row.resize(static_cast<size_t>(max_items));
      std::sort(row.begin(), row.end(),
                [](const auto& a, const auto& b) { return a.second < b.second; });
    }
    for (const auto& [w, c] : row) {
      out.indices.push_back(c);
      out.values.push_back(w);
    }
    out.indptr[static_cast<size_t>(r) + 1] = out.nnz();
  }
  return out;
}

Status CheckCsr(const CsrMatrix& m, std::string_view name) {
  const std::string where(name);
  if (m.rows < 0 || m.rows != m.cols) {
    return Status::Corruption(where + ": expected a square items x items matrix, got " +
                              std::to_string(m.rows) + " x " + std::to_string(m.cols));
  }
  if (m.indptr.size() != static_cast<size_t>(m.rows) + 1 || m.indptr[0] != 0 ||
      m.indptr.back() != m.nnz() || m.values.size() != m.indices.size()) {
    return Status::Corruption(where + ": indptr does not span the " + std::to_string(m.nnz()) +
                              " stored entries");
  }
  for (int64_t r = 0; r < m.rows; ++r) {
    if (m.indptr[r + 1] < m.indptr[r]) {
      return Status::Corruption(where + ": row " + std::to_string(r) + ": indptr decreases");
    }
  }
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t p = m.indptr[r]; p < m.indptr[r + 1]; ++p) {
      const int32_t c = m.indices[p];
      if (c < 0 || c >= m.cols) {
        return Status::Corruption(where + ": row " + std::to_string(r) + ": item " +
                                  std::to_string(c) + " out of range [0, " +
                                  std::to_string(m.cols) + ")");
      }
      if (p > m.indptr[r] && c <= m.indices[p - 1]) {
        return Status::Corruption(where + ": row " + std::to_string(r) +
                                  ": items not strictly ascending");
      }
      if (!std::isfinite(m.values[p])) {
        return Status::Corruption(where + ": row " + std::to_string(r) +
                                  ": non-finite similarity to item " + std::to_string(c));
      }
    }
  }
  return Status::OK();
}

template <typename T>
void Append(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

ItemNeighborsOptions::Method EffectiveMethod(const ItemNeighborsOptions& opts, int64_t items) {
  using M = ItemNeighborsOptions::Method;
  return opts.method == M::kEase && items <= opts.ease_max_items ? M::kEase : M::kCosine;
}

const char* MethodName(ItemNeighborsOptions::Method m) {
  return m == ItemNeighborsOptions::Method::kEase ? "ease" : "cosine";
}

namespace {

// Each row's `positive` largest positive entries of the dense EASE weights
// and its `negative` most negative ones, columns ascending (ties to the
// lower column).
CsrMatrix TopOfEachRow(const Matrix& b, int positive, int negative) {
  const auto items = static_cast<int64_t>(b.rows);
  CsrMatrix sim;
  sim.rows = sim.cols = items;
  sim.indptr.assign(static_cast<size_t>(items) + 1, 0);
  std::vector<std::vector<std::pair<int32_t, float>>> rows(static_cast<size_t>(items));
#pragma omp parallel
  {
    std::vector<std::pair<double, int32_t>> up, down;  // down holds -weight
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < items; ++i) {
      const float* r = b.row(static_cast<size_t>(i));
      up.clear();
      down.clear();
      for (int64_t j = 0; j < items; ++j) {
        if (j == i) continue;
        if (r[j] > 0) up.emplace_back(r[j], static_cast<int32_t>(j));
        if (r[j] < 0 && negative > 0) down.emplace_back(-r[j], static_cast<int32_t>(j));
      }
      auto& row = rows[static_cast<size_t>(i)];
      for (auto* cand : {&up, &down}) {
        const size_t keep =
            std::min(cand->size(), static_cast<size_t>(cand == &up ? positive : negative));
        std::nth_element(cand->begin(), cand->begin() + keep, cand->end(), Better<double>);
        for (size_t t = 0; t < keep; ++t) row.emplace_back((*cand)[t].second, r[(*cand)[t].second]);
      }
      std::sort(row.begin(), row.end());
    }
  }
  for (int64_t i = 0; i < items; ++i) {
    for (const auto& [j, s] : rows[static_cast<size_t>(i)]) {
      sim.indices.push_back(j);
      sim.values.push_back(s);
    }
    sim.indptr[static_cast<size_t>(i) + 1] = sim.nnz();
  }
  return sim;
}

}  // namespace

Result<ItemNeighbors> ItemNeighbors::Build(const CsrMatrix& user_items,
                                           const ItemNeighborsOptions& opts,
                                           const std::function<void(int64_t)>& on_progress) {
  if (opts.neighbors <= 0) {
    return Status::InvalidArgument("item neighbours: neighbors must be > 0, got " +
                                   std::to_string(opts.neighbors));
  }
  if (opts.negative_neighbors < 0) {
    return Status::InvalidArgument("item neighbours: negative_neighbors must be >= 0, got " +
                                   std::to_string(opts.negative_neighbors));
  }
  if (!(opts.shrink >= 0) || !std::isfinite(opts.shrink)) {
    return Status::InvalidArgument("item neighbours: shrink must be finite and >= 0, got " +
                                   std::to_string(opts.shrink));
  }
  if (opts.max_items_per_user < 0) {
    return Status::InvalidArgument("item neighbours: max_items_per_user must be >= 0, got " +
                                   std::to_string(opts.max_items_per_user));
  }
  for (int64_t u = 0; opts.use_weights && u < user_items.rows; ++u) {
    for (int64_t p = user_items.indptr[u]; p < user_items.indptr[u + 1]; ++p) {
      const float w = user_items.values[p];
      if (!(w >= 0) || !std::isfinite(w)) {
        return Status::InvalidArgument("item neighbours: user row " + std::to_string(u) +
                                       ", item " + std::to_string(user_items.indices[p]) +
                                       ": weight " + std::to_string(w) +
                                       " (expected finite and >= 0)");
      }
    }
  }
  // Unweighted: a 0/1 copy, so one code path serves both (and a cap keeps
  // the largest weights before the weights are dropped).
  CsrMatrix copy;
  const bool truncate = opts.max_items_per_user > 0;
  if (truncate) copy = TruncateRows(user_items, opts.max_items_per_user);
  if (!opts.use_weights) {
    if (!truncate) copy = user_items;
    std::fill(copy.values.begin(), copy.values.end(), 1.0f);
  }
  const CsrMatrix& train = truncate || !opts.use_weights ? copy : user_items;
  if (EffectiveMethod(opts, train.cols) == ItemNeighborsOptions::Method::kEase) {
    VITRINE_ASSIGN_OR_RETURN(Matrix b, FitEase(train, opts.ease_lambda, opts.ease_max_items));
    return ItemNeighbors(TopOfEachRow(b, opts.neighbors, opts.negative_neighbors));
  }

  const int64_t items = train.cols;
  const CsrMatrix by_item = train.Transposed();  // items x users
  std::vector<double> sq(static_cast<size_t>(items), 0.0);
  for (int64_t i = 0; i < items; ++i) {
    for (int64_t p = by_item.indptr[i]; p < by_item.indptr[i + 1]; ++p) {
      sq[i] += static_cast<double>(by_item.values[p]) * by_item.values[p];
    }
  }

  CsrMatrix sim;
  sim.rows = sim.cols = items;
  sim.indptr.assign(static_cast<size_t>(items) + 1, 0);
  std::vector<std::vector<std::pair<int32_t, float>>> rows(
      static_cast<size_t>(std::min(items, kBuildBlock)));
#pragma omp parallel
  {
    // Dot products of item i with every j via the users of i: a dense
    // accumulator plus the list of touched entries keeps a row O(work).
    std::vector<double> dot(static_cast<size_t>(items), 0.0);
    std::vector<uint8_t> seen(static_cast<size_t>(items), 0);
    std::vector<int32_t> touched;
    std::vector<std::pair<double, int32_t>> cand;
    for (int64_t block = 0; block < items; block += kBuildBlock) {
      const int64_t end = std::min(items, block + kBuildBlock);
#pragma omp for schedule(dynamic, 64)
      for (int64_t i = block; i < end; ++i) {
        touched.clear();
        for (int64_t p = by_item.indptr[i]; p < by_item.indptr[i + 1]; ++p) {
          const int32_t u = by_item.indices[p];
          const double wi = by_item.values[p];
          for (int64_t q = train.indptr[u]; q < train.indptr[u + 1]; ++q) {
            const int32_t j = train.indices[q];
            if (!seen[j]) {
              seen[j] = 1;
              touched.push_back(j);
            }
            dot[j] += wi * train.values[q];
          }
        }
        cand.clear();
        for (int32_t j : touched) {
          if (j != i && dot[j] > 0) {
            cand.emplace_back(dot[j] / (std::sqrt(sq[i] * sq[j]) + opts.shrink), j);
          }
          dot[j] = 0;
          seen[j] = 0;
        }
        const size_t keep = std::min(cand.size(), static_cast<size_t>(opts.neighbors));
        std::nth_element(cand.begin(), cand.begin() + keep, cand.end(), Better<double>);
        auto& row = rows[static_cast<size_t>(i - block)];
        row.clear();
        for (size_t t = 0; t < keep; ++t) {
          row.emplace_back(cand[t].second, static_cast<float>(cand[t].first));
        }
        std::sort(row.begin(), row.end());
      }
      // (implicit barrier) One thread appends the block's rows in order.
#pragma omp single
      for (int64_t i = block; i < end; ++i) {
        auto& row = rows[static_cast<size_t>(i - block)];
        for (const auto& [j, s] : row) {
          sim.indices.push_back(j);
          sim.values.push_back(s);
        }
        sim.indptr[static_cast<size_t>(i) + 1] = sim.nnz();
        std::vector<std::pair<int32_t, float>>().swap(row);
      }
#pragma omp master
      if (on_progress) on_progress(end);
    }
  }
  sim.indices.shrink_to_fit();
  sim.values.shrink_to_fit();
  return ItemNeighbors(std::move(sim));
}

Result<ItemNeighbors> ItemNeighbors::FromCsr(CsrMatrix similarities) {
  VITRINE_RETURN_IF_ERROR(CheckCsr(similarities, "item neighbours"));
  return ItemNeighbors(std::move(similarities));
}

std::span<const int32_t> ItemNeighbors::neighbors(int32_t item) const {
  const int64_t b = sim_.indptr[item];
  return {sim_.indices.data() + b, static_cast<size_t>(sim_.indptr[item + 1] - b)};
}

std::span<const float> ItemNeighbors::scores(int32_t item) const {
  const int64_t b = sim_.indptr[item];
  return {sim_.values.data() + b, static_cast<size_t>(sim_.indptr[item + 1] - b)};
}

std::vector<ScoredItem> ItemNeighbors::Query(std::span<const int32_t> history,
                                             std::span<const float> weights,
                                             const NeighborQueryParams& params) const {
  const int64_t n = sim_.rows;
  const size_t want = static_cast<size_t>(std::max(params.k, 0));
  if (n == 0 || want == 0) return {};
  if (!weights.empty() && weights.size() != history.size()) return {};
  // Per-thread scratch sized to the catalog, reused across calls: no
  // allocation proportional to the catalog per request. mark bit 1 = scored,
  // bit 2 = in the history.
  thread_local std::vector<float> acc;
  thread_local std::vector<uint8_t> mark;
  thread_local std::vector<int32_t> touched;
  if (acc.size() < static_cast<size_t>(n)) {
    acc.assign(static_cast<size_t>(n), 0.0f);
    mark.assign(static_cast<size_t>(n), 0);
  }
  touched.clear();
  for (int32_t h : history) {
    if (h >= 0 && h < n) mark[h] |= 2;
  }
  for (size_t t = 0; t < history.size(); ++t) {
    const int32_t h = history[t];
    if (h < 0 || h >= n) continue;
    const float w = weights.empty() ? 1.0f : weights[t];
    for (int64_t p = sim_.indptr[h]; p < sim_.indptr[h + 1]; ++p) {
      const int32_t j = sim_.indices[p];
      if (!(mark[j] & 1)) {
        mark[j] |= 1;
        acc[j] = 0.0f;
        touched.push_back(j);
      }
      acc[j] += w * sim_.values[p];
    }
  }
  // Bounded heap, worst on top. The bitmap is probed only for candidates
  // that would enter the heap, which is far fewer than the touched items.
  std::vector<std::pair<float, int32_t>> heap;
  heap.reserve(want + 1);
  for (int32_t j : touched) {
    const std::pair<float, int32_t> c(acc[j], j);
    if (!(c.first > 0)) continue;
    if (params.exclude_history && (mark[j] & 2)) continue;
    if (heap.size() == want && !Better(c, heap.front())) continue;
    if (params.allowed != nullptr && !params.allowed->contains(static_cast<uint32_t>(j))) continue;
    if (heap.size() == want) {
      std::pop_heap(heap.begin(), heap.end(), Better<float>);
      heap.back() = c;
    } else {
      heap.push_back(c);
    }
    std::push_heap(heap.begin(), heap.end(), Better<float>);
  }
  for (int32_t j : touched) mark[j] = 0;
  for (int32_t h : history) {
    if (h >= 0 && h < n) mark[h] = 0;
  }
  std::sort(heap.begin(), heap.end(), Better<float>);
  std::vector<ScoredItem> out(heap.size());
  for (size_t i = 0; i < heap.size(); ++i) out[i] = {heap[i].second, heap[i].first};
  return out;
}

std::string ItemNeighbors::Serialize() const {
  std::string out;
  const int64_t items = sim_.rows;
  const int64_t nnz = sim_.nnz();
  out.reserve(kHeaderBytes + sim_.indptr.size() * 8 + static_cast<size_t>(nnz) * 8 + 8);
  out.append(kMagic, sizeof(kMagic));
  Append(&out, kVersion);
  Append(&out, uint32_t{0});
  Append(&out, items);
  Append(&out, nnz);
  // An empty (default) model still writes indptr = {0}.
  if (sim_.indptr.empty()) {
    Append(&out, int64_t{0});
  } else {
    out.append(reinterpret_cast<const char*>(sim_.indptr.data()), sim_.indptr.size() * 8);
  }
  if (!sim_.indices.empty()) {  // data() of an empty vector may be null
    out.append(reinterpret_cast<const char*>(sim_.indices.data()), sim_.indices.size() * 4);
    out.append(reinterpret_cast<const char*>(sim_.values.data()), sim_.values.size() * 4);
  }
  Append(&out, Xxh64(out));
  return out;
}

Result<ItemNeighbors> ItemNeighbors::Deserialize(std::string_view bytes, std::string_view name) {
  const std::string where(name);
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption(where +
                              ": not an item neighbours file (bad magic, expected VTRNBRS)");
  }
  if (bytes.size() < kHeaderBytes + 8) {
    return Status::Corruption(where + ": truncated: " + std::to_string(bytes.size()) +
                              " bytes, shorter than the 40-byte header and checksum");
  }
  uint32_t version = 0;
  std::memcpy(&version, bytes.data() + 8, 4);
  if (version != kVersion) {
    return Status::Unsupported(where + ": item neighbours format version " +
                               std::to_string(version) + " (this build reads version " +
                               std::to_string(kVersion) + ")");
  }
  int64_t items = 0, nnz = 0;
  std::memcpy(&items, bytes.data() + 16, 8);
  std::memcpy(&nnz, bytes.data() + 24, 8);
  // Sizes are checked against the byte count before anything is allocated;
  // the bounds keep the products below from overflowing.
  constexpr int64_t kMax = int64_t{1} << 40;
  if (items < 0 || nnz < 0 || items > kMax || nnz > kMax) {
    return Status::Corruption(where + ": header sizes out of range (items " +
                              std::to_string(items) + ", nnz " + std::to_string(nnz) + ")");
  }
  const uint64_t need =
      kHeaderBytes + 8 * static_cast<uint64_t>(items + 1) + 8 * static_cast<uint64_t>(nnz) + 8;
  if (bytes.size() != need) {
    return Status::Corruption(
        where + ": " + (bytes.size() < need ? "truncated" : "trailing bytes") + ": expected " +
        std::to_string(need) + " bytes for " + std::to_string(items) + " items and " +
        std::to_string(nnz) + " neighbours, found " + std::to_string(bytes.size()));
  }
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  const uint64_t actual = Xxh64(bytes.substr(0, bytes.size() - 8));
  if (stored != actual) {
    return Status::Corruption(where + ": checksum mismatch (stored xxh64 " + Hex64(stored) +
                              ", computed " + Hex64(actual) + ")");
  }
  CsrMatrix m;
  m.rows = m.cols = items;
  m.indptr.resize(static_cast<size_t>(items) + 1);
  m.indices.resize(static_cast<size_t>(nnz));
  m.values.resize(static_cast<size_t>(nnz));
  const char* p = bytes.data() + kHeaderBytes;
  // An empty vector's data() may be null, and memcpy from or to null is
  // undefined even for 0 bytes (UBSan): copy only what is there.
  auto copy = [&p](auto& v) {
    const size_t n = v.size() * sizeof(v[0]);
    if (n > 0) std::memcpy(v.data(), p, n);
    p += n;
  };
  copy(m.indptr);
  copy(m.indices);
  copy(m.values);
  VITRINE_RETURN_IF_ERROR(CheckCsr(m, where));
  return ItemNeighbors(std::move(m));
}

Status ItemNeighbors::Save(const std::filesystem::path& path) const {
  return WriteFileAtomic(path, Serialize());
}

Result<ItemNeighbors> ItemNeighbors::Load(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFileRaw(path));
  return Deserialize(bytes, path.string());
}

size_t ItemNeighbors::MemoryBytes() const {
  return sim_.indptr.capacity() * 8 + sim_.indices.capacity() * 4 + sim_.values.capacity() * 4;
}

}  // namespace vitrine
