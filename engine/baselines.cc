#include "engine/baselines.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "embed/ease.h"

namespace vitrine {
namespace {

// Sorted, unique, in-range copy of a history: the seen set and the summation
// order (so a shuffled history scores identically).
std::vector<int32_t> CleanHistory(std::span<const int32_t> history, int64_t items) {
  std::vector<int32_t> h;
  h.reserve(history.size());
  for (int32_t i : history) {
    if (i >= 0 && i < items) h.push_back(i);
  }
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  return h;
}

bool Contains(const std::vector<int32_t>& sorted, int32_t x) {
  return std::binary_search(sorted.begin(), sorted.end(), x);
}

// Higher score first, then lower item index.
bool Better(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first != b.first ? a.first > b.first : a.second < b.second;
}

// The k best candidates, best first; O(n) selection then O(k log k).
std::vector<int32_t> TopK(std::vector<std::pair<float, int32_t>>* cands, int k) {
  const size_t m = std::min(cands->size(), static_cast<size_t>(std::max(k, 0)));
  std::nth_element(cands->begin(), cands->begin() + m, cands->end(), Better);
  std::sort(cands->begin(), cands->begin() + m, Better);
  std::vector<int32_t> out(m);
  for (size_t i = 0; i < m; ++i) out[i] = (*cands)[i].second;
  return out;
}

}  // namespace

// ---------------------------------------------------------------- TopPop

Status TopPop::Fit(const CsrMatrix& train) {
  popularity_.assign(static_cast<size_t>(train.cols), 0);
  for (int32_t j : train.indices) ++popularity_[static_cast<size_t>(j)];
  order_.resize(popularity_.size());
  for (size_t j = 0; j < order_.size(); ++j) order_[j] = static_cast<int32_t>(j);
  std::stable_sort(order_.begin(), order_.end(), [this](int32_t a, int32_t b) {
    return popularity_[static_cast<size_t>(a)] > popularity_[static_cast<size_t>(b)];
  });
  return Status::OK();
}

Result<std::vector<int32_t>> TopPop::Recommend(int32_t /*user*/,
                                               std::span<const int32_t> train_history,
                                               int k) const {
  const std::vector<int32_t> seen =
      filter_seen_ ? CleanHistory(train_history, static_cast<int64_t>(order_.size()))
                   : std::vector<int32_t>();
  std::vector<int32_t> out;
  for (int32_t j : order_) {
    if (static_cast<int>(out.size()) >= k) break;
    if (!Contains(seen, j)) out.push_back(j);
  }
  return out;
}

// ---------------------------------------------------------------- ItemKnn

Status ItemKnn::Fit(const CsrMatrix& train) {
  if (opts_.neighbors <= 0) {
    return Status::InvalidArgument("itemknn: neighbors must be > 0, got " +
                                   std::to_string(opts_.neighbors));
  }
  if (!(opts_.shrink >= 0)) {
    return Status::InvalidArgument("itemknn: shrink must be >= 0, got " +
                                   std::to_string(opts_.shrink));
  }
  const int64_t items = train.cols;
  const CsrMatrix by_item = train.Transposed();  // items x users
  std::vector<std::vector<std::pair<int32_t, float>>> rows(static_cast<size_t>(items));

#pragma omp parallel
  {
    // Co-occurrence counts of item i with every j, via the users of i; a dense
    // accumulator plus the list of touched entries keeps each row O(work).
    std::vector<int32_t> co(static_cast<size_t>(items), 0);
    std::vector<int32_t> touched;
    std::vector<std::pair<double, int32_t>> cand;
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < items; ++i) {
      touched.clear();
      for (int64_t p = by_item.indptr[i]; p < by_item.indptr[i + 1]; ++p) {
        const int32_t u = by_item.indices[p];
        for (int64_t q = train.indptr[u]; q < train.indptr[u + 1]; ++q) {
          const int32_t j = train.indices[q];
          if (co[j]++ == 0) touched.push_back(j);
        }
      }
      cand.clear();
      const auto ni = static_cast<double>(by_item.row_size(i));
      for (int32_t j : touched) {
        if (j != i) {
          const auto nj = static_cast<double>(by_item.row_size(j));
          cand.emplace_back(co[j] / (std::sqrt(ni * nj) + opts_.shrink), j);
        }
        co[j] = 0;
      }
      const size_t keep = std::min(cand.size(), static_cast<size_t>(opts_.neighbors));
      auto better = [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      };
      std::nth_element(cand.begin(), cand.begin() + keep, cand.end(), better);
      auto& row = rows[static_cast<size_t>(i)];
      for (size_t t = 0; t < keep; ++t) {
        row.emplace_back(cand[t].second, static_cast<float>(cand[t].first));
      }
      std::sort(row.begin(), row.end());
    }
  }

  sim_ = CsrMatrix();
  sim_.rows = sim_.cols = items;
  sim_.indptr.assign(static_cast<size_t>(items) + 1, 0);
  for (int64_t i = 0; i < items; ++i) {
    for (const auto& [j, s] : rows[static_cast<size_t>(i)]) {
      sim_.indices.push_back(j);
      sim_.values.push_back(s);
    }
    sim_.indptr[static_cast<size_t>(i) + 1] = sim_.nnz();
  }
  return Status::OK();
}

Result<std::vector<int32_t>> ItemKnn::Recommend(int32_t /*user*/,
                                                std::span<const int32_t> train_history,
                                                int k) const {
  if (sim_.indptr.empty()) return std::vector<int32_t>{};
  const std::vector<int32_t> hist = CleanHistory(train_history, sim_.rows);
  // Dense per-thread accumulator plus the list of touched items: O(work) per
  // call, no per-call allocation of the catalog size. Each item's sum is
  // accumulated in (sorted) history order, so results are reproducible.
  thread_local std::vector<float> acc;
  thread_local std::vector<int32_t> touched;
  if (acc.size() < static_cast<size_t>(sim_.rows)) acc.assign(static_cast<size_t>(sim_.rows), 0);
  touched.clear();
  for (int32_t h : hist) {
    for (int64_t p = sim_.indptr[h]; p < sim_.indptr[h + 1]; ++p) {
      const int32_t j = sim_.indices[p];
      if (acc[j] == 0) touched.push_back(j);  // stored similarities are > 0
      acc[j] += sim_.values[p];
    }
  }
  std::vector<std::pair<float, int32_t>> cands;
  for (int32_t j : touched) {
    const float s = acc[j];
    acc[j] = 0;
    if (s > 0 && !(opts_.filter_already_seen && Contains(hist, j))) cands.emplace_back(s, j);
  }
  return TopK(&cands, k);
}

// ---------------------------------------------------------------- Ease

Status Ease::Fit(const CsrMatrix& train) {
  auto b = FitEase(train, opts_.lambda, opts_.max_items);
  if (!b.ok() && b.status().code() == Status::Code::kUnsupported) {
    return Status::Unsupported(b.status().message() + "; use itemknn for large catalogs");
  }
  VITRINE_RETURN_IF_ERROR(b.status());
  b_ = std::move(*b);
  return Status::OK();
}

Result<std::vector<int32_t>> Ease::Recommend(int32_t /*user*/,
                                             std::span<const int32_t> train_history, int k) const {
  const auto n = static_cast<int64_t>(b_.rows);
  if (n == 0) return std::vector<int32_t>{};
  const std::vector<int32_t> hist = CleanHistory(train_history, n);
  std::vector<float> scores(static_cast<size_t>(n), 0.0f);
  for (int32_t h : hist) {
    const float* row = b_.row(static_cast<size_t>(h));
    for (int64_t j = 0; j < n; ++j) scores[j] += row[j];
  }
  // Seen items are skipped by walking the sorted history alongside j; a
  // bounded heap (worst on top) keeps the k best in O(n log k).
  const size_t want = static_cast<size_t>(std::max(k, 0));
  std::vector<std::pair<float, int32_t>> heap;
  heap.reserve(want + 1);
  size_t next_seen = 0;
  for (int64_t j = 0; j < n && want > 0; ++j) {
    const auto item = static_cast<int32_t>(j);
    if (opts_.filter_already_seen && next_seen < hist.size() && hist[next_seen] == item) {
      ++next_seen;
      continue;
    }
    const std::pair<float, int32_t> c(scores[j], item);
    if (heap.size() < want) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), Better);
    } else if (Better(c, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), Better);
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), Better);
    }
  }
  std::sort(heap.begin(), heap.end(), Better);
  std::vector<int32_t> out(heap.size());
  for (size_t i = 0; i < heap.size(); ++i) out[i] = heap[i].second;
  return out;
}

}  // namespace vitrine
