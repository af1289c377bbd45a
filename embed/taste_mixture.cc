// TasteMixture: EM fit, stored-array checks, posterior and queries.
#include "embed/taste_mixture.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_set>

#include "core/progress.h"

namespace vitrine {
namespace {

// Items kept per taste for Top(); a request asks for a few hundred.
constexpr size_t kTopListLength = 2000;
// Tastes below this share of the most likely one add no candidates.
constexpr float kPosteriorFloor = 1e-3f;

// In-place softmax of log-weights; returns log(sum exp(l)).
double Softmax(float* l, size_t k) {
  const float m = *std::max_element(l, l + k);
  double sum = 0;
  for (size_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(l[j] - m));
  for (size_t j = 0; j < k; ++j) {
    l[j] = static_cast<float>(std::exp(static_cast<double>(l[j] - m)) / sum);
  }
  return static_cast<double>(m) + std::log(sum);
}

}  // namespace

Status TasteMixtureOptions::Validate() const {
  if (clusters < 0 || clusters > TasteMixture::kMaxClusters) {
    return Status::InvalidArgument("taste_mixture.clusters: " + std::to_string(clusters) +
                                   " is outside [0, " +
                                   std::to_string(TasteMixture::kMaxClusters) + "]");
  }
  if (iterations < 1 || iterations > 1000) {
    return Status::InvalidArgument("taste_mixture.iterations: " + std::to_string(iterations) +
                                   " is outside [1, 1000]");
  }
  if (!(smoothing > 0 && smoothing <= 1e6)) {
    return Status::InvalidArgument("taste_mixture.smoothing: " + std::to_string(smoothing) +
                                   " is outside (0, 1e6]");
  }
  return Status::OK();
}

Result<TasteMixture> TasteMixture::Fit(const CsrMatrix& x, const TasteMixtureOptions& o,
                                       double* log_likelihood) {
  VITRINE_RETURN_IF_ERROR(o.Validate());
  if (o.clusters == 0) return Status::InvalidArgument("taste_mixture.clusters is 0: nothing to fit");
  const size_t k = static_cast<size_t>(o.clusters);
  const size_t items = static_cast<size_t>(x.cols);
  if (items == 0) return Status::InvalidArgument("taste mixture: the catalog is empty");
  std::vector<int64_t> active;
  for (int64_t u = 0; u < x.rows; ++u) {
    if (x.row_size(u) > 0) active.push_back(u);
  }
  if (active.empty()) return Status::InvalidArgument("taste mixture: no interactions");
  const CsrMatrix xt = x.Transposed();  // items x users
  // Posteriors per user row (rows without interactions stay unused).
  std::vector<float> r(static_cast<size_t>(x.rows) * k, 0.0f);
  {
    std::mt19937_64 rng(o.seed);
    std::exponential_distribution<double> e(1.0);
    for (int64_t u : active) {
      float* ru = &r[static_cast<size_t>(u) * k];
      double s = 0;
      for (size_t j = 0; j < k; ++j) s += ru[j] = static_cast<float>(e(rng));
      for (size_t j = 0; j < k; ++j) ru[j] = static_cast<float>(ru[j] / s);
    }
  }
  TasteMixture m;
  m.theta_ = Matrix(items, k);
  Matrix log_theta(items, k);
  m.log_prior_.assign(k, 0.0f);
  std::vector<double> user_ll(static_cast<size_t>(x.rows), 0.0);
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
  auto m_step = [&] {
    // Expected counts per (item, taste): each item's users in order, so the
    // sums do not depend on the thread count.
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
    for (int64_t i = 0; i < static_cast<int64_t>(items); ++i) {
      float* t = m.theta_.row(static_cast<size_t>(i));
      std::fill_n(t, k, 0.0f);
      for (int64_t p = xt.indptr[i]; p < xt.indptr[i + 1]; ++p) {
        const float* ru = &r[static_cast<size_t>(xt.indices[p]) * k];
        for (size_t j = 0; j < k; ++j) t[j] += ru[j];
      }
    }
    std::vector<double> mass(k, 0.0), users(k, 0.0);
    for (size_t i = 0; i < items; ++i) {
      for (size_t j = 0; j < k; ++j) mass[j] += m.theta_.at(i, j);
    }
    for (int64_t u : active) {
      for (size_t j = 0; j < k; ++j) users[j] += r[static_cast<size_t>(u) * k + j];
    }
    for (size_t j = 0; j < k; ++j) {
      const double denom = mass[j] + o.smoothing * static_cast<double>(items);
      for (size_t i = 0; i < items; ++i) {
        const double p = (m.theta_.at(i, j) + o.smoothing) / denom;
        m.theta_.at(i, j) = static_cast<float>(p);
        log_theta.at(i, j) = static_cast<float>(std::log(p));
      }
      m.log_prior_[j] = static_cast<float>(
          std::log((users[j] + 1e-9) / (static_cast<double>(active.size()) + 1e-9 * k)));
    }
  };
  StageTimer timer("taste mixture (" + std::to_string(k) + " tastes, EM)", o.iterations);
  double ll = 0;
  for (int it = 0; it < o.iterations; ++it) {
    m_step();
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
    for (int64_t a = 0; a < static_cast<int64_t>(active.size()); ++a) {
      const int64_t u = active[static_cast<size_t>(a)];
      float* ru = &r[static_cast<size_t>(u) * k];
      std::copy(m.log_prior_.begin(), m.log_prior_.end(), ru);
      for (int64_t p = x.indptr[u]; p < x.indptr[u + 1]; ++p) {
        const float* lt = log_theta.row(static_cast<size_t>(x.indices[p]));
        for (size_t j = 0; j < k; ++j) ru[j] += lt[j];
      }
      user_ll[static_cast<size_t>(u)] = Softmax(ru, k);
    }
    ll = 0;
    for (int64_t u : active) ll += user_ll[static_cast<size_t>(u)];
    timer.Update(it + 1);
  }
  m_step();  // theta from the final posteriors
  const double per_interaction = ll / static_cast<double>(std::max<int64_t>(1, x.nnz()));
  if (log_likelihood != nullptr) *log_likelihood = per_interaction;
  timer.Done("log-likelihood " + std::to_string(per_interaction) + " per interaction");
  m.BuildTopLists();
  return m;
}

Result<TasteMixture> TasteMixture::FromArrays(Matrix theta, Matrix prior,
                                              const std::string& where) {
  const size_t k = theta.cols;
  if (k == 0 || k > static_cast<size_t>(kMaxClusters) || theta.rows == 0) {
    return Status::Corruption(where + ": theta is " + std::to_string(theta.rows) + " x " +
                              std::to_string(k) + " (expected items x 1.." +
                              std::to_string(kMaxClusters) + " tastes)");
  }
  if (prior.rows != k || prior.cols != 1) {
    return Status::Corruption(where + ": prior is " + std::to_string(prior.rows) + " x " +
                              std::to_string(prior.cols) + ", expected " + std::to_string(k) +
                              " x 1");
  }
  std::vector<double> sums(k, 0.0);
  for (size_t i = 0; i < theta.rows; ++i) {
    for (size_t j = 0; j < k; ++j) {
      const float p = theta.at(i, j);
      if (!std::isfinite(p) || p <= 0) {
        return Status::Corruption(where + ": theta[" + std::to_string(i) + "][" +
                                  std::to_string(j) + "] is not a positive finite probability");
      }
      sums[j] += p;
    }
  }
  TasteMixture m;
  m.log_prior_.resize(k);
  double prior_sum = 0;
  for (size_t j = 0; j < k; ++j) {
    if (std::fabs(sums[j] - 1.0) > 1e-3) {
      return Status::Corruption(where + ": taste " + std::to_string(j) + " sums to " +
                                std::to_string(sums[j]) + " over the items, expected 1");
    }
    const float p = prior.data[j];
    if (!std::isfinite(p) || p <= 0 || p > 1) {
      return Status::Corruption(where + ": prior[" + std::to_string(j) +
                                "] is not a probability in (0, 1]");
    }
    prior_sum += p;
    m.log_prior_[j] = std::log(p);
  }
  if (std::fabs(prior_sum - 1.0) > 1e-3) {
    return Status::Corruption(where + ": the prior sums to " + std::to_string(prior_sum) +
                              ", expected 1");
  }
  m.theta_ = std::move(theta);
  m.BuildTopLists();
  return m;
}

Matrix TasteMixture::prior() const {
  Matrix p(log_prior_.size(), 1);
  for (size_t j = 0; j < log_prior_.size(); ++j) p.data[j] = std::exp(log_prior_[j]);
  return p;
}

void TasteMixture::BuildTopLists() {
  const size_t k = theta_.cols, n = theta_.rows, len = std::min(n, kTopListLength);
  top_.assign(k, {});
  std::vector<int32_t> order(n);
  for (size_t j = 0; j < k; ++j) {
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
    auto better = [&](int32_t a, int32_t b) {
      const float pa = theta_.at(static_cast<size_t>(a), j);
      const float pb = theta_.at(static_cast<size_t>(b), j);
      return pa != pb ? pa > pb : a < b;
    };
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(len), order.end(),
                      better);
    top_[j].assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(len));
  }
}

std::vector<float> TasteMixture::Posterior(std::span<const int32_t> history) const {
  const size_t k = theta_.cols;
  std::vector<float> l(log_prior_);
  for (int32_t h : history) {
    if (h < 0 || static_cast<size_t>(h) >= theta_.rows) continue;
    const float* t = theta_.row(static_cast<size_t>(h));
    for (size_t j = 0; j < k; ++j) l[j] += std::log(t[j]);
  }
  if (k > 0) Softmax(l.data(), k);
  return l;
}

float TasteMixture::Score(std::span<const float> posterior, int32_t item) const {
  if (item < 0 || static_cast<size_t>(item) >= theta_.rows || posterior.size() != theta_.cols) {
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float* t = theta_.row(static_cast<size_t>(item));
  double s = 0;
  for (size_t j = 0; j < theta_.cols; ++j) s += static_cast<double>(posterior[j]) * t[j];
  return static_cast<float>(s);
}

std::vector<ScoredItem> TasteMixture::Top(std::span<const float> posterior, int k,
                                          const Bitmap& allowed,
                                          std::span<const int32_t> history) const {
  std::vector<ScoredItem> out;
  if (k <= 0 || posterior.size() != theta_.cols || theta_.cols == 0) return out;
  const std::unordered_set<int32_t> seen(history.begin(), history.end());
  const float best = *std::max_element(posterior.begin(), posterior.end());
  // Fagin's threshold algorithm over the likely tastes' lists, walked in
  // step: no item below depth d of every list can score more than
  // sum_j R_j theta_j(the item at depth d of list j), plus, for the tastes
  // not walked, R_j times their largest theta. Stop once k found items beat
  // that bound; the answer is then exact. A list that runs out bounds the
  // rest by its last value.
  std::vector<size_t> walked;
  double rest = 0;
  for (size_t j = 0; j < posterior.size(); ++j) {
    if (posterior[j] >= kPosteriorFloor * best) {
      walked.push_back(j);
    } else if (!top_[j].empty()) {
      rest += static_cast<double>(posterior[j]) * theta_.at(static_cast<size_t>(top_[j][0]), j);
    }
  }
  auto better = [](const ScoredItem& a, const ScoredItem& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  };
  std::vector<ScoredItem> heap;  // the k best so far; heap.front() the worst of them
  std::unordered_set<int32_t> scored;
  const size_t kk = static_cast<size_t>(k);
  const size_t depth = top_.empty() ? 0 : top_[0].size();
  for (size_t d = 0; d < depth; ++d) {
    double bound = rest;
    for (size_t j : walked) {
      const int32_t i = top_[j][d];
      bound += static_cast<double>(posterior[j]) * theta_.at(static_cast<size_t>(i), j);
      if (seen.count(i) || !allowed.contains(static_cast<uint32_t>(i)) ||
          !scored.insert(i).second) {
        continue;
      }
      const ScoredItem c{i, Score(posterior, i)};
      if (heap.size() < kk) {
        heap.push_back(c);
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (better(c, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = c;
        std::push_heap(heap.begin(), heap.end(), better);
      }
    }
    if (heap.size() == kk && static_cast<double>(heap.front().score) >= bound) break;
  }
  out = std::move(heap);
  std::sort(out.begin(), out.end(), better);
  return out;
}

}  // namespace vitrine
