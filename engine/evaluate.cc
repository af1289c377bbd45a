#include "engine/evaluate.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <unordered_map>

namespace vitrine {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::span<const int32_t> RowOf(const CsrMatrix& m, int64_t r) {
  return {m.indices.data() + m.indptr[r], static_cast<size_t>(m.row_size(r))};
}

// Mean of the non-NaN values, in index order (deterministic); NaN if none.
double MeanSkippingNaN(const std::vector<double>& v, int64_t* count = nullptr) {
  double sum = 0;
  int64_t n = 0;
  for (double x : v) {
    if (std::isnan(x)) continue;
    sum += x;
    ++n;
  }
  if (count != nullptr) *count = n;
  return n == 0 ? kNaN : sum / static_cast<double>(n);
}

}  // namespace

ListMetrics ScoreList(std::span<const int32_t> recommended, std::span<const int32_t> test, int k) {
  ListMetrics m;
  if (test.empty() || k <= 0) return m;
  const size_t n = std::min(recommended.size(), static_cast<size_t>(k));
  const int64_t ideal = std::min<int64_t>(k, static_cast<int64_t>(test.size()));
  // A duplicate recommendation must not hit the same test item twice.
  std::vector<uint8_t> used(test.size(), 0);
  double dcg = 0, ap_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    auto it = std::lower_bound(test.begin(), test.end(), recommended[i]);
    if (it == test.end() || *it != recommended[i]) continue;
    uint8_t& u = used[static_cast<size_t>(it - test.begin())];
    if (u) continue;
    u = 1;
    ++m.hits;
    dcg += 1.0 / std::log2(static_cast<double>(i) + 2.0);
    ap_sum += static_cast<double>(m.hits) / static_cast<double>(i + 1);
  }
  double idcg = 0;
  for (int64_t i = 0; i < ideal; ++i) idcg += 1.0 / std::log2(static_cast<double>(i) + 2.0);
  const auto h = static_cast<double>(m.hits);
  m.recall = h / static_cast<double>(ideal);
  m.recall_plain = h / static_cast<double>(test.size());
  m.precision = h / static_cast<double>(k);
  m.ndcg = dcg / idcg;
  m.ap = ap_sum / static_cast<double>(ideal);
  return m;
}

double IntraListDiversity(std::span<const int32_t> list, const Matrix& item_vectors) {
  if (list.size() < 2) return kNaN;
  const size_t d = item_vectors.cols;
  std::vector<double> norms(list.size());
  for (size_t a = 0; a < list.size(); ++a) {
    const float* v = item_vectors.row(static_cast<size_t>(list[a]));
    norms[a] = std::sqrt(DotDouble(v, v, d));
  }
  double sum = 0;
  int64_t pairs = 0;
  for (size_t a = 0; a < list.size(); ++a) {
    const float* va = item_vectors.row(static_cast<size_t>(list[a]));
    for (size_t b = a + 1; b < list.size(); ++b) {
      const float* vb = item_vectors.row(static_cast<size_t>(list[b]));
      double dot = 0;
      for (size_t j = 0; j < d; ++j) dot += static_cast<double>(va[j]) * vb[j];
      const double denom = norms[a] * norms[b];
      sum += 1.0 - (denom > 0 ? dot / denom : 0.0);
      ++pairs;
    }
  }
  return sum / static_cast<double>(pairs);
}

namespace {
// Brand counts of a list, largest first not needed: returns raw counts.
std::vector<int64_t> BrandCounts(std::span<const int32_t> list, std::span<const int32_t> brands) {
  std::unordered_map<int32_t, int64_t> counts;
  for (int32_t item : list) {
    const int32_t b = brands[static_cast<size_t>(item)];
    if (b >= 0) ++counts[b];
  }
  std::vector<int64_t> out;
  out.reserve(counts.size());
  for (const auto& [b, c] : counts) out.push_back(c);
  return out;
}
}  // namespace

double BrandMaxShare(std::span<const int32_t> list, std::span<const int32_t> brands) {
  if (list.empty()) return kNaN;
  int64_t best = 0;
  for (int64_t c : BrandCounts(list, brands)) best = std::max(best, c);
  return static_cast<double>(best) / static_cast<double>(list.size());
}

double BrandHhi(std::span<const int32_t> list, std::span<const int32_t> brands) {
  if (list.empty()) return kNaN;
  // Integer sum of squared counts first, so the result does not depend on the
  // hash map's iteration order.
  int64_t sq = 0;
  for (int64_t c : BrandCounts(list, brands)) sq += c * c;
  const auto n = static_cast<double>(list.size());
  return static_cast<double>(sq) / (n * n);
}

nlohmann::json EvalReport::ToJson() const {
  auto num = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
  return {{"model", model},
          {"k", k},
          {"users", users},
          {"recall", recall},
          {"recall_plain", recall_plain},
          {"precision", precision},
          {"ndcg", ndcg},
          {"map", map},
          {"coverage", coverage},
          {"diversity", num(diversity)},
          {"brand_max_share", num(brand_max_share)},
          {"brand_hhi", num(brand_hhi)},
          {"compliance", num(compliance)},
          {"cold_recall", num(cold_recall)},
          {"cold_users", cold_users},
          {"explore_share", num(explore_share)},
          {"seconds", seconds}};
}

std::string EvalReport::ToString() const {
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf),
                        "%s k=%d users=%lld recall=%.4f recall_plain=%.4f precision=%.4f "
                        "ndcg=%.4f map=%.4f coverage=%.4f",
                        model.c_str(), k, static_cast<long long>(users), recall, recall_plain,
                        precision, ndcg, map, coverage);
  std::string out(buf, static_cast<size_t>(std::max(n, 0)));
  auto add = [&out](const char* name, double x) {
    if (std::isnan(x)) return;
    char b[64];
    std::snprintf(b, sizeof(b), " %s=%.4f", name, x);
    out += b;
  };
  add("diversity", diversity);
  add("brand_max_share", brand_max_share);
  add("brand_hhi", brand_hhi);
  add("compliance", compliance);
  add("cold_recall", cold_recall);
  add("explore_share", explore_share);
  return out;
}

void SampleUsers(std::vector<int32_t>* users, int64_t max_users, uint64_t seed) {
  if (max_users <= 0 || static_cast<int64_t>(users->size()) <= max_users) return;
  // Fisher-Yates with our own index draw: std::shuffle's and the standard
  // distributions' outputs differ between library versions.
  std::mt19937_64 rng(seed);
  for (size_t i = users->size() - 1; i > 0; --i) std::swap((*users)[i], (*users)[rng() % (i + 1)]);
  users->resize(static_cast<size_t>(max_users));
  std::sort(users->begin(), users->end());
}

Result<EvalReport> Evaluate(const Recommender& model, const CsrMatrix& train, const CsrMatrix& test,
                            const EvalOptions& opts) {
  const int k = opts.k;
  if (k <= 0) return Status::InvalidArgument("evaluate: k must be > 0, got " + std::to_string(k));
  if (train.rows != test.rows || train.cols != test.cols) {
    return Status::InvalidArgument("evaluate: train is " + std::to_string(train.rows) + " x " +
                                   std::to_string(train.cols) + " but test is " +
                                   std::to_string(test.rows) + " x " + std::to_string(test.cols) +
                                   " (expected the same users and items)");
  }
  const int64_t items = train.cols;
  auto check_len = [items](const char* what, size_t n) -> Status {
    if (n != 0 && static_cast<int64_t>(n) != items) {
      return Status::InvalidArgument(std::string("evaluate: ") + what + " has " +
                                     std::to_string(n) + " entries, expected one per item (" +
                                     std::to_string(items) + ")");
    }
    return Status::OK();
  };
  if (opts.item_vectors != nullptr) {
    VITRINE_RETURN_IF_ERROR(check_len("item_vectors", opts.item_vectors->rows));
    if (opts.item_vectors->rows == 0 && items != 0) {
      return Status::InvalidArgument("evaluate: item_vectors is empty");
    }
  }
  VITRINE_RETURN_IF_ERROR(check_len("item_brands", opts.item_brands.size()));
  VITRINE_RETURN_IF_ERROR(check_len("cold_items", opts.cold_items.size()));
  VITRINE_RETURN_IF_ERROR(check_len("explore_items", opts.explore_items.size()));

  // Users to evaluate: non-empty test rows, optionally a seeded sample.
  std::vector<int32_t> users;
  for (int64_t u = 0; u < test.rows; ++u) {
    if (test.row_size(u) > 0) users.push_back(static_cast<int32_t>(u));
  }
  SampleUsers(&users, opts.max_users, opts.seed);

  const auto n = static_cast<int64_t>(users.size());
  const bool want_div = opts.item_vectors != nullptr;
  const bool want_brand = !opts.item_brands.empty();
  const bool want_cold = !opts.cold_items.empty();
  const bool want_explore = !opts.explore_items.empty();
  const bool want_rules = static_cast<bool>(opts.complies);

  // Per-user results, reduced in user order after the parallel loop.
  std::vector<ListMetrics> metrics(static_cast<size_t>(n));
  std::vector<double> div(want_div ? n : 0), share(want_brand ? n : 0), hhi(want_brand ? n : 0),
      cold(want_cold ? n : 0), ok(want_rules ? n : 0), explore(want_explore ? n : 0);
  // Recommended-item marks for coverage: one array per thread, OR-merged
  // (order-free, so deterministic) instead of keeping every list.
  std::vector<uint8_t> recommended(static_cast<size_t>(items), 0);
  std::vector<int32_t> bad_item(static_cast<size_t>(n), 0);
  std::vector<uint8_t> bad(static_cast<size_t>(n), 0);
  Status failed;  // the first failure of the model, which fails the evaluation

  const int threads = opts.num_threads > 0 ? opts.num_threads : omp_get_max_threads();
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  {
    std::vector<uint8_t> marks(static_cast<size_t>(items), 0);
#pragma omp for schedule(dynamic, 16)
    for (int64_t p = 0; p < n; ++p) {
      const int32_t u = users[static_cast<size_t>(p)];
      Result<std::vector<int32_t>> got = model.Recommend(u, RowOf(train, u), k);
      if (!got.ok()) {
#pragma omp critical(vitrine_evaluate_failure)
        if (failed.ok()) failed = got.status();
        continue;
      }
      std::vector<int32_t> rec = std::move(*got);
      if (rec.size() > static_cast<size_t>(k)) rec.resize(static_cast<size_t>(k));
      for (int32_t item : rec) {
        if (item < 0 || item >= items) {
          bad[p] = 1;
          bad_item[p] = item;
          break;
        }
      }
      if (bad[p]) continue;
      for (int32_t item : rec) marks[static_cast<size_t>(item)] = 1;
      const std::span<const int32_t> t = RowOf(test, u);
      metrics[p] = ScoreList(rec, t, k);
      if (want_div) div[p] = IntraListDiversity(rec, *opts.item_vectors);
      if (want_brand) {
        share[p] = BrandMaxShare(rec, opts.item_brands);
        hhi[p] = BrandHhi(rec, opts.item_brands);
      }
      if (want_cold) {
        std::vector<int32_t> tc;
        for (int32_t item : t) {
          if (opts.cold_items[static_cast<size_t>(item)]) tc.push_back(item);
        }
        cold[p] = tc.empty() ? kNaN : ScoreList(rec, tc, k).recall;
      }
      if (want_rules) ok[p] = opts.complies(u, rec) ? 1.0 : 0.0;
      if (want_explore) {
        double e = 0;
        for (int32_t item : rec) e += opts.explore_items[static_cast<size_t>(item)];
        explore[p] = rec.empty() ? kNaN : e / static_cast<double>(rec.size());
      }
    }
#pragma omp critical(vitrine_evaluate_coverage)
    for (size_t j = 0; j < marks.size(); ++j) recommended[j] |= marks[j];
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!failed.ok()) return failed.WithContext("evaluate: model '" + model.name() + "'");
  for (int64_t p = 0; p < n; ++p) {
    if (bad[p]) {
      return Status::InvalidArgument("evaluate: model '" + model.name() + "' returned item " +
                                     std::to_string(bad_item[p]) + " for user row " +
                                     std::to_string(users[p]) + ", expected an index in [0, " +
                                     std::to_string(items) + ")");
    }
  }

  EvalReport r;
  r.model = model.name();
  r.k = k;
  r.users = n;
  r.seconds = seconds;
  for (const ListMetrics& m : metrics) {
    r.recall += m.recall;
    r.recall_plain += m.recall_plain;
    r.precision += m.precision;
    r.ndcg += m.ndcg;
    r.map += m.ap;
  }
  if (n > 0) {
    const auto dn = static_cast<double>(n);
    r.recall /= dn;
    r.recall_plain /= dn;
    r.precision /= dn;
    r.ndcg /= dn;
    r.map /= dn;
  }
  int64_t distinct = 0;
  for (uint8_t m : recommended) distinct += m;
  r.coverage = items > 0 ? static_cast<double>(distinct) / static_cast<double>(items) : 0.0;
  if (want_div) r.diversity = MeanSkippingNaN(div);
  if (want_brand) {
    r.brand_max_share = MeanSkippingNaN(share);
    r.brand_hhi = MeanSkippingNaN(hhi);
  }
  if (want_cold) r.cold_recall = MeanSkippingNaN(cold, &r.cold_users);
  if (want_rules) r.compliance = MeanSkippingNaN(ok);
  if (want_explore) r.explore_share = MeanSkippingNaN(explore);
  return r;
}

CsrMatrix AlignRows(const IdMap& train_users, const IdMap& test_users, const CsrMatrix& test,
                    int64_t* dropped_users) {
  CsrMatrix out;
  out.rows = train_users.size();
  out.cols = test.cols;
  out.indptr.assign(static_cast<size_t>(out.rows) + 1, 0);
  for (int32_t r = 0; r < train_users.size(); ++r) {
    if (auto t = test_users.Find(train_users.id(r)); t && *t < test.rows) {
      out.indices.insert(out.indices.end(), test.indices.begin() + test.indptr[*t],
                         test.indices.begin() + test.indptr[*t + 1]);
      out.values.insert(out.values.end(), test.values.begin() + test.indptr[*t],
                        test.values.begin() + test.indptr[*t + 1]);
    }
    out.indptr[static_cast<size_t>(r) + 1] = static_cast<int64_t>(out.indices.size());
  }
  if (dropped_users != nullptr) {
    int64_t dropped = 0;
    for (int32_t t = 0; t < test_users.size(); ++t) dropped += !train_users.Find(test_users.id(t));
    *dropped_users = dropped;
  }
  return out;
}

}  // namespace vitrine
