#include "rank/diversify.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace vitrine {
namespace {

double Dot(const float* a, const float* b, int dim) {
  double s = 0;
  for (int d = 0; d < dim; ++d) s += static_cast<double>(a[d]) * b[d];
  return s;
}

// For MMR's redundancy term: eight independent float accumulators, which the
// compiler vectorises, where one double accumulator is a serial chain of
// dependent adds (the rerank benchmark spent most of its time there). MMR
// only compares cosines of unit vectors; DPP's incremental Cholesky keeps the
// double version.
__attribute__((target_clones("avx512f", "avx2", "default"))) double FastDot(const float* a,
                                                                            const float* b,
                                                                            int dim) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int d = 0;
  for (; d + 8 <= dim; d += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += a[d + l] * b[d + l];
  }
  float s = 0;
  for (; d < dim; ++d) s += a[d] * b[d];
  for (int l = 0; l < 8; ++l) s += acc[l];
  return s;
}

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
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return candidates[a].score > candidates[b].score; });
  for (int i : order) {
    if (static_cast<int>(out->size()) >= k) break;
    if ((*used)[i] || !Eligible(caps, candidates[i].item)) continue;
    (*used)[i] = 1;
    Take(caps, candidates[i].item);
    out->push_back(i);
  }
}

}  // namespace

bool CapTracker::CanAdd(int32_t item) const {
  for (size_t c = 0; c < caps_.size(); ++c) {
    scratch_.clear();
    caps_[c].groups(item, &scratch_);
    for (int64_t g : scratch_) {
      auto it = counts_[c].find(g);
      if ((it == counts_[c].end() ? 0 : it->second) >= caps_[c].limit) return false;
    }
  }
  return true;
}

void CapTracker::Add(int32_t item) {
  for (size_t c = 0; c < caps_.size(); ++c) {
    scratch_.clear();
    caps_[c].groups(item, &scratch_);
    for (int64_t g : scratch_) ++counts_[c][g];
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
  const size_t m = candidates.size();
  // max_sim[i] = max similarity to the selected set, updated once per pick,
  // so each step costs O(M dim) instead of O(M |S| dim).
  std::vector<double> max_sim(m, -std::numeric_limits<double>::infinity());
  std::vector<char> used(m, 0);
  std::vector<int> out;
  while (static_cast<int>(out.size()) < k) {
    int best = -1;
    double best_value = 0;
    for (size_t i = 0; i < m; ++i) {
      if (used[i]) continue;
      if (!Eligible(caps, candidates[i].item)) {
        used[i] = 1;  // caps only tighten: it can never come back
        continue;
      }
      const double redundancy = out.empty() ? 0.0 : max_sim[i];
      const double value = lambda * candidates[i].score - (1.0 - lambda) * redundancy;
      if (best < 0 || value > best_value) {
        best = static_cast<int>(i);
        best_value = value;
      }
    }
    if (best < 0) break;
    used[best] = 1;
    Take(caps, candidates[best].item);
    out.push_back(best);
    for (size_t i = 0; i < m; ++i) {
      if (!used[i]) {
        max_sim[i] = std::max(max_sim[i], FastDot(candidates[i].vec, candidates[best].vec, dim));
      }
    }
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
    l_ii[i] = q[i] * q[i] * Dot(candidates[i].vec, candidates[i].vec, dim);
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
      const double l_ji = q[j] * q[i] * Dot(candidates[j].vec, candidates[i].vec, dim);
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
    for (size_t b = a + 1; b < n; ++b) sum += 1.0 - Dot(vecs[a], vecs[b], dim);
  }
  return sum / (static_cast<double>(n) * (n - 1) / 2);
}

}  // namespace vitrine
