#include "rank/diversify.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "core/matrix.h"
#include "core/simd.h"

namespace vitrine {
namespace {

Status CheckCommon(std::span<const Candidate> candidates, int dim, int k, bool need_vectors) {
  if (k < 0) return Status::InvalidArgument("k must be >= 0, got " + std::to_string(k));
  for (const Candidate& c : candidates) {
    // NaN would break the strict ordering every selector relies on.
    if (!std::isfinite(c.score)) {
      return Status::InvalidArgument("candidate item " + std::to_string(c.item) +
                                     " has a non-finite score");
    }
  }
  if (!need_vectors) return Status::OK();
  if (dim < 1)
    return Status::InvalidArgument("vector dim must be >= 1, got " + std::to_string(dim));
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].vec == nullptr) {
      return Status::InvalidArgument("candidate item " + std::to_string(candidates[i].item) +
                                     " has no vector; diversity needs one per candidate");
    }
  }
  return Status::OK();
}

bool Eligible(const CapTracker* caps, int32_t item) {
  return caps == nullptr || caps->CanAdd(item);
}

void Take(CapTracker* caps, int32_t item) {
  if (caps != nullptr) caps->Add(item);
}

// Fills `out` up to k with the best-scoring candidates not yet `used`, under caps.
void FillByScore(std::span<const Candidate> candidates, int k, CapTracker* caps,
                 std::vector<char>* used, std::vector<int>* out) {
  std::vector<int> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  // Score order, ties by lower index: the order of a stable sort, but sorted
  // a chunk at a time, as most calls stop after about k candidates. Chunks
  // double, so a long fill stays O(m log m).
  auto better = [&](int a, int b) {
    return candidates[a].score > candidates[b].score ||
           (candidates[a].score == candidates[b].score && a < b);
  };
  size_t sorted = 0;
  size_t chunk = std::max<size_t>(16, 2 * static_cast<size_t>(std::max(k, 0)));
  for (size_t pos = 0; pos < order.size(); ++pos) {
    if (static_cast<int>(out->size()) >= k) break;
    if (pos == sorted) {
      const size_t end = std::min(order.size(), sorted + chunk);
      // nth_element then sort: the same chunk in the same order (`better` is
      // a strict total order), in O(m) rather than partial_sort's O(m log chunk).
      if (end < order.size()) {
        std::nth_element(order.begin() + sorted, order.begin() + end, order.end(), better);
      }
      std::sort(order.begin() + sorted, order.begin() + end, better);
      sorted = end;
      chunk *= 2;
    }
    const int i = order[pos];
    if ((*used)[i] || !Eligible(caps, candidates[i].item)) continue;
    (*used)[i] = 1;
    Take(caps, candidates[i].item);
    out->push_back(i);
  }
}

// Tournament tree over values indexed 0 .. n-1: top() is
// the live index with the largest value, the lower index on ties, or -1 when
// none is left. Removing or updating one index replays log2(n) matches, where
// a binary heap's sift-down takes twice as many data-dependent branches. Each
// node keeps its winner's value next to its index, and an update carries the
// rising winner in registers: it reads only siblings, never the node it has
// just written, nor values[] through an index (an update that did both was a
// chain of dependent loads, 10% of the MMR rerank).
class MaxTree {
 public:
  // Leaves 0 .. n-1, all removed until Set and Build.
  explicit MaxTree(size_t n) : leaves_(std::bit_ceil(std::max<size_t>(n, 1))), node_(2 * leaves_) {}
  // Before Build: gives leaf i its value.
  void Set(int i, double value) { node_[leaves_ + static_cast<size_t>(i)] = {value, i}; }
  // Plays every match, after Set.
  void Build() {
    for (size_t v = leaves_ - 1; v >= 1; --v) node_[v] = Winner(node_[2 * v], node_[2 * v + 1]);
  }
  int top() const { return node_[1].index == kNone ? -1 : node_[1].index; }
  // Replays the matches of `i`, which now has `value`.
  void Update(int i, double value) { Replay(i, {value, i}); }
  void Remove(int i) { Replay(i, Node{}); }

 private:
  static constexpr int kNone = std::numeric_limits<int>::max();
  struct Node {
    double value = -std::numeric_limits<double>::infinity();
    int index = kNone;  // removed and padding leaves lose every match
  };
  // The larger value; on a tie the lower index (values are finite). Written
  // to compile to conditional moves: which one wins is data, and branching
  // on it mispredicted about every other match.
  static Node Winner(Node a, Node b) {
    const bool take_b = (b.value > a.value) | ((b.value == a.value) & (b.index < a.index));
    a.value = take_b ? b.value : a.value;
    a.index = take_b ? b.index : a.index;
    return a;
  }
  void Replay(int i, Node w) {
    size_t v = leaves_ + static_cast<size_t>(i);
    node_[v] = w;
    for (; v > 1; v /= 2) {
      w = Winner(w, node_[v ^ 1]);
      node_[v / 2] = w;
    }
  }

  size_t leaves_;
  std::vector<Node> node_;  // root 1, leaves from leaves_
};

}  // namespace

UnitVectors::UnitVectors(size_t capacity, size_t dim)
    : dim_(dim), stride_((dim + 15) / 16 * 16), capacity_(capacity) {
  constexpr size_t kAlignFloats = 64 / sizeof(float);
  buf_.assign(capacity_ * stride_ + kAlignFloats, 0.0f);
  base_ = buf_.data();
  while (reinterpret_cast<uintptr_t>(base_) % 64 != 0) ++base_;
}

UnitVectors::UnitVectors(UnitVectors&& other) noexcept { *this = std::move(other); }

UnitVectors& UnitVectors::operator=(UnitVectors&& other) noexcept {
  if (this == &other) return *this;
  dim_ = std::exchange(other.dim_, 0);
  stride_ = std::exchange(other.stride_, 0);
  size_ = std::exchange(other.size_, 0);
  capacity_ = std::exchange(other.capacity_, 0);
  buf_ = std::move(other.buf_);  // the heap block, and so base_, stay where they are
  other.buf_.clear();
  base_ = std::exchange(other.base_, nullptr);
  return *this;
}

const float* UnitVectors::Add(const float* v) {
  if (size_ >= capacity_) return nullptr;  // selectors then report the missing vector
  float* row = base_ + size_++ * stride_;
  const double s = DotDouble(v, v, dim_);
  const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
  for (size_t j = 0; j < dim_; ++j) row[j] = v[j] * inv;
  return row;
}

std::span<const int64_t> CapTracker::Groups(size_t c, int32_t item) const {
  const CapRule& rule = caps_[c];
  if (!rule.offsets.empty()) {
    if (item < 0 || static_cast<size_t>(item) + 1 >= rule.offsets.size()) return {};
    return rule.ids.subspan(static_cast<size_t>(rule.offsets[item]),
                            static_cast<size_t>(rule.offsets[item + 1] - rule.offsets[item]));
  }
  scratch_.clear();
  rule.groups(item, &scratch_);
  return scratch_;
}

CapTracker::CapTracker(std::span<const CapRule> caps) : caps_(caps), counts_(caps.size()) {
  // Room for the groups of a typical result list, allocated once.
  for (auto& c : counts_) c.reserve(16);
}

// counts_[c] is sorted by group: at most k groups per cap are ever counted,
// so a binary search beats hashing and needs no allocation per lookup.
bool CapTracker::CanAdd(int32_t item) const {
  for (size_t c = 0; c < caps_.size(); ++c) {
    const auto& counts = counts_[c];
    for (int64_t g : Groups(c, item)) {
      auto it = std::lower_bound(counts.begin(), counts.end(), std::make_pair(g, int32_t{0}),
                                 [](const auto& x, const auto& y) { return x.first < y.first; });
      if ((it == counts.end() || it->first != g ? 0 : it->second) >= caps_[c].limit) return false;
    }
  }
  return true;
}

void CapTracker::Add(int32_t item) {
  for (size_t c = 0; c < caps_.size(); ++c) {
    auto& counts = counts_[c];
    for (int64_t g : Groups(c, item)) {
      auto it = std::lower_bound(counts.begin(), counts.end(), std::make_pair(g, int32_t{0}),
                                 [](const auto& x, const auto& y) { return x.first < y.first; });
      if (it == counts.end() || it->first != g) it = counts.insert(it, {g, 0});
      ++it->second;
    }
  }
}

Result<std::vector<int>> SelectTopK(std::span<const Candidate> candidates, int k,
                                    CapTracker* caps) {
  VITRINE_RETURN_IF_ERROR(CheckCommon(candidates, 0, k, false));
  std::vector<char> used(candidates.size(), 0);
  std::vector<int> out;
  FillByScore(candidates, k, caps, &used, &out);
  return out;
}

Result<std::vector<int>> SelectMMR(std::span<const Candidate> candidates, int dim, int k,
                                   float lambda, CapTracker* caps) {
  VITRINE_RETURN_IF_ERROR(CheckCommon(candidates, dim, k, true));
  if (!(lambda >= 0 && lambda <= 1)) {
    return Status::InvalidArgument("MMR lambda must be in [0, 1], got " + std::to_string(lambda));
  }
  const int m = static_cast<int>(candidates.size());
  std::vector<int> out;
  if (m == 0 || k == 0) return out;
  // Lazy greedy (Minoux's accelerated greedy). After the first pick an item's
  // MMR value only falls as the selected set grows (max_sim only rises), so a
  // value computed against the first few selected items is an upper bound.
  // Each item keeps its last value and how many selected items it covers; the
  // best item by last value is brought up to date against the items selected
  // since, and taken once it stays the best. This selects exactly what the
  // plain O(k M) scan selects (same values, same tie-break: lower index
  // first) with far fewer similarities computed. Ineligible items are dropped
  // when they come out best: caps only tighten.
  auto value_of = [&](int i, double redundancy) {
    return lambda * candidates[i].score - (1.0 - lambda) * redundancy;
  };
  // First pick: no redundancy term yet (the plain scan uses 0, not the -inf
  // the max starts from), so the highest score wins.
  int first = -1;
  std::vector<char> out_of_caps;  // items found ineligible, sized on the first one
  while (true) {
    first = -1;
    double first_value = 0;
    for (int i = 0; i < m; ++i) {
      const double v = value_of(i, 0.0);
      if ((first < 0 || v > first_value) && (out_of_caps.empty() || !out_of_caps[i])) {
        first = i;
        first_value = v;
      }
    }
    if (first < 0 || Eligible(caps, candidates[first].item)) break;
    out_of_caps.resize(static_cast<size_t>(m), 0);
    out_of_caps[first] = 1;
  }
  if (first < 0) return out;
  Take(caps, candidates[first].item);
  out.push_back(first);
  // Per candidate: its largest similarity to the selected items it covers,
  // how many selected items that is, and the number selected when it was
  // last found eligible (caps only change when an item is taken, so it is
  // not checked again until the next pick).
  struct State {
    double max_sim;
    int covered;
    int eligible_at;
  };
  std::vector<State> st(static_cast<size_t>(m));
  // Similarities in float with the CPU's kernel (core/simd.h): MMR only
  // compares cosines of unit vectors. (DPP's incremental Cholesky keeps the
  // double Dot.)
  const simd::FloatKernel ip = simd::Best().ip;
  const float* first_vec = candidates[first].vec;
  MaxTree best(static_cast<size_t>(m));
  // Every similarity to the first pick, in candidate order: streaming the
  // pool once is cheaper than bounding similarities (from each candidate's
  // angle to the query) and computing the ones not ruled out in best-first
  // order, which read rows at random (tried: 2x slower at 200 candidates).
  for (int i = 0; i < m; ++i) {
    const double sim = ip(candidates[i].vec, first_vec, static_cast<size_t>(dim));
    st[i] = {sim, 1, 0};
    best.Set(i, value_of(i, sim));
  }
  best.Build();
  best.Remove(first);
  for (size_t i = 0; i < out_of_caps.size(); ++i) {
    if (out_of_caps[i]) best.Remove(static_cast<int>(i));
  }
  const size_t n_out = static_cast<size_t>(std::min(k, m));
  out.reserve(n_out);
  std::vector<const float*> selected_vecs;
  selected_vecs.reserve(n_out);
  selected_vecs.push_back(candidates[first].vec);
  while (static_cast<int>(out.size()) < k) {
    const int i = best.top();
    if (i < 0) break;
    const int selected = static_cast<int>(out.size());
    State& si = st[i];
    if (si.eligible_at != selected) {
      if (!Eligible(caps, candidates[i].item)) {
        best.Remove(i);
        continue;
      }
      si.eligible_at = selected;
    }
    if (si.covered < selected) {
      double s = si.max_sim;
      for (int t = si.covered; t < selected; ++t) {
        s = std::max<double>(s, ip(selected_vecs[t], candidates[i].vec, static_cast<size_t>(dim)));
      }
      si.max_sim = s;
      si.covered = selected;
      best.Update(i, value_of(i, s));
      continue;
    }
    best.Remove(i);
    Take(caps, candidates[i].item);
    out.push_back(i);
    selected_vecs.push_back(candidates[i].vec);
  }
  return out;
}

Result<std::vector<int>> SelectDPP(std::span<const Candidate> candidates, int dim, int k,
                                   float theta, CapTracker* caps) {
  VITRINE_RETURN_IF_ERROR(CheckCommon(candidates, dim, k, true));
  if (!(theta >= 0 && theta < 1)) {
    return Status::InvalidArgument("DPP theta must be in [0, 1), got " + std::to_string(theta));
  }
  const size_t m = candidates.size();
  std::vector<char> used(m, 0);
  std::vector<int> out;
  if (m == 0 || k == 0) return out;
  // q_i = exp(alpha (s_i - s_max)): subtracting s_max scales L by a constant,
  // which multiplies every candidate's det by the same factor (argmax is
  // unchanged) and keeps exp() from overflowing.
  const double alpha = theta / (2.0 * (1.0 - theta));
  double s_max = -std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates) s_max = std::max<double>(s_max, c.score);
  std::vector<double> q(m), l_ii(m), d2(m);
  for (size_t i = 0; i < m; ++i) {
    q[i] = std::exp(alpha * (candidates[i].score - s_max));
    l_ii[i] =
        q[i] * q[i] * DotDouble(candidates[i].vec, candidates[i].vec, static_cast<size_t>(dim));
    d2[i] = l_ii[i];
  }
  // c[i * k + t]: row i of the incremental Cholesky factor (Chen et al. Alg. 1).
  std::vector<double> c(m * static_cast<size_t>(k), 0.0);
  std::vector<char> dependent(m, 0);
  constexpr double kRelativeEps = 1e-9;
  while (static_cast<int>(out.size()) < k) {
    int j = -1;
    for (size_t i = 0; i < m; ++i) {
      if (used[i] || dependent[i]) continue;
      if (!Eligible(caps, candidates[i].item)) {
        used[i] = 1;
        continue;
      }
      if (!(d2[i] > kRelativeEps * l_ii[i])) {
        dependent[i] = 1;  // residual only shrinks as S grows
        continue;
      }
      if (j < 0 || d2[i] > d2[j]) j = static_cast<int>(i);
    }
    if (j < 0) break;
    const size_t t = out.size();
    used[j] = 1;
    Take(caps, candidates[j].item);
    out.push_back(j);
    const double dj = std::sqrt(d2[j]);
    const double* cj = &c[static_cast<size_t>(j) * k];
    for (size_t i = 0; i < m; ++i) {
      if (used[i] || dependent[i]) continue;
      double* ci = &c[i * k];
      const double l_ji =
          q[j] * q[i] * DotDouble(candidates[j].vec, candidates[i].vec, static_cast<size_t>(dim));
      double cc = 0;
      for (size_t s = 0; s < t; ++s) cc += cj[s] * ci[s];
      const double e = (l_ji - cc) / dj;
      ci[t] = e;
      d2[i] -= e * e;
    }
  }
  // Vectors exhausted (k > rank): fill in score order, still under caps.
  for (size_t i = 0; i < m; ++i) {
    if (dependent[i]) used[i] = 0;
  }
  for (int s : out) used[s] = 1;
  FillByScore(candidates, k, caps, &used, &out);
  return out;
}

std::vector<int32_t> ApplyPins(std::span<const int32_t> ranked, std::span<const PinnedItem> pins,
                               int k) {
  if (k <= 0) return {};
  // Valid pins by position: first pin per item and per position wins.
  std::vector<int32_t> at(static_cast<size_t>(k), -1);
  std::vector<int32_t> pinned_items;
  for (const PinnedItem& p : pins) {
    if (p.position < 0 || p.position >= k || at[p.position] >= 0) continue;
    if (std::find(pinned_items.begin(), pinned_items.end(), p.item) != pinned_items.end()) continue;
    at[p.position] = p.item;
    pinned_items.push_back(p.item);
  }
  std::vector<int32_t> out;
  std::vector<int32_t> seen;  // guards against repeats inside `ranked` too
  auto is_pinned = [&](int32_t item) {
    return std::find(pinned_items.begin(), pinned_items.end(), item) != pinned_items.end();
  };
  size_t r = 0;
  for (int pos = 0; pos < k; ++pos) {
    if (at[pos] >= 0) {
      out.push_back(at[pos]);
      continue;
    }
    while (r < ranked.size() &&
           (is_pinned(ranked[r]) || std::find(seen.begin(), seen.end(), ranked[r]) != seen.end())) {
      ++r;
    }
    if (r < ranked.size()) {
      seen.push_back(ranked[r]);
      out.push_back(ranked[r++]);
    } else {
      // Ranked items ran out: the remaining pins close up behind the list.
      for (int p = pos + 1; p < k; ++p) {
        if (at[p] >= 0) out.push_back(at[p]);
      }
      break;
    }
  }
  return out;
}

double IntraListDiversity(std::span<const float* const> vecs, int dim) {
  const size_t n = vecs.size();
  if (n < 2) return 0.0;
  double sum = 0;
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = a + 1; b < n; ++b)
      sum += 1.0 - DotDouble(vecs[a], vecs[b], static_cast<size_t>(dim));
  }
  return sum / (static_cast<double>(n) * (n - 1) / 2);
}

}  // namespace vitrine
