#include "engine/ab_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <set>

namespace vitrine {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum Metric { kCtr, kCartRate, kConversion, kRevenue, kReturnRate, kCoverage, kMetrics };
constexpr const char* kMetricName[kMetrics] = {
    "ctr", "cart_rate", "conversion", "revenue_per_impression", "return_rate", "coverage"};

// One randomisation unit's totals within a variant.
struct Unit {
  double impressions = 0, clicks = 0, carts = 0, purchases = 0, returns = 0, revenue = 0;
  std::vector<int32_t> items;  // distinct items shown, for coverage
};

struct Totals {
  double impressions = 0, clicks = 0, carts = 0, purchases = 0, returns = 0, revenue = 0;
  void Add(const Unit& u, double w) {
    impressions += w * u.impressions;
    clicks += w * u.clicks;
    carts += w * u.carts;
    purchases += w * u.purchases;
    returns += w * u.returns;
    revenue += w * u.revenue;
  }
};

double Ratio(double num, double den) { return den > 0 ? num / den : kNaN; }

void Metrics(const Totals& t, double distinct_items, int64_t catalog_items, double* out) {
  out[kCtr] = Ratio(t.clicks, t.impressions);
  out[kCartRate] = Ratio(t.carts, t.impressions);
  out[kConversion] = Ratio(t.purchases, t.impressions);
  out[kRevenue] = Ratio(t.revenue, t.impressions);
  out[kReturnRate] = Ratio(t.returns, t.purchases);
  out[kCoverage] =
      catalog_items > 0 ? distinct_items / static_cast<double>(catalog_items) : distinct_items;
}

// The percentile interval of the finite replicates (NaN when none are).
// `recentre` shifts the replicates so that their mean is `value` first: for
// coverage, a count of distinct items, which a resample (it repeats some
// users and leaves out others) always sees fewer of than the sample does.
Estimate Interval(double value, std::vector<double> reps, double confidence, bool recentre) {
  reps.erase(std::remove_if(reps.begin(), reps.end(), [](double v) { return !std::isfinite(v); }),
             reps.end());
  Estimate e{value, kNaN, kNaN};
  if (reps.empty()) return e;
  if (recentre && std::isfinite(value)) {
    double mean = 0;
    for (const double r : reps) mean += r;
    mean /= static_cast<double>(reps.size());
    for (double& r : reps) r += value - mean;
  }
  std::sort(reps.begin(), reps.end());
  const double alpha = (1 - confidence) / 2;
  auto at = [&](double q) {
    const double pos = q * static_cast<double>(reps.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, reps.size() - 1);
    return reps[lo] + (pos - static_cast<double>(lo)) * (reps[hi] - reps[lo]);
  };
  e.low = at(alpha);
  e.high = at(1 - alpha);
  return e;
}

bool In(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

std::vector<std::string> AbMetricNames(bool with_revenue) {
  std::vector<std::string> out;
  for (int m = 0; m < kMetrics; ++m) {
    if (m == kRevenue && !with_revenue) continue;
    out.push_back(kMetricName[m]);
  }
  return out;
}

Result<AbReport> BuildAbReport(std::span<const ImpressionRecord> impressions,
                               std::span<const EventRecord> events, const AbReportOptions& o) {
  if (impressions.empty()) return Status::InvalidArgument("no impressions to report on");
  if (o.bootstrap < 50 || o.bootstrap > 100000) {
    return Status::InvalidArgument("bootstrap replicates must be in [50, 100000], got " +
                                   std::to_string(o.bootstrap));
  }
  if (!(o.confidence >= 0.5 && o.confidence < 1)) {
    return Status::InvalidArgument("confidence must be in [0.5, 1), got " +
                                   std::to_string(o.confidence));
  }
  AbReport report;
  report.options = o;
  report.events = static_cast<int64_t>(events.size());
  const Attribution attribution = Attribute(impressions, events, o.attribution);
  std::copy(std::begin(attribution.count), std::end(attribution.count), report.outcome_counts);
  report.position_mismatches = attribution.position_mismatches;

  // What each impression line led to.
  const size_t n = impressions.size();
  std::vector<uint8_t> clicked(n), carted(n), purchased(n), returned(n);
  std::vector<double> revenue(n, 0.0);
  for (size_t e = 0; e < events.size(); ++e) {
    if (attribution.impression[e] < 0) continue;
    const size_t i = static_cast<size_t>(attribution.impression[e]);
    const std::string& name = events[e].event;
    if (In(o.click_events, name)) clicked[i] = 1;
    if (In(o.cart_events, name)) carted[i] = 1;
    if (In(o.return_events, name)) returned[i] = 1;
    if (In(o.purchase_events, name)) {
      purchased[i] = 1;
      auto p = o.prices.find(events[e].item);
      if (p != o.prices.end()) revenue[i] += p->second;
    }
  }

  // Variants, their units and the items they showed.
  std::map<std::string, size_t> variant_index;
  for (const auto& im : impressions) variant_index.emplace(im.variant, 0);
  if (!o.control.empty() && !variant_index.count(o.control)) {
    std::string known;
    for (const auto& [name, _] : variant_index) known += (known.empty() ? "" : ", ") + name;
    return Status::InvalidArgument("control variant '" + o.control +
                                   "' has no impressions (variants: " + known + ")");
  }
  report.control = !o.control.empty()               ? o.control
                   : variant_index.count("control") ? "control"
                                                    : variant_index.begin()->first;
  std::vector<std::string> names = {report.control};
  for (const auto& [name, _] : variant_index) {
    if (name != report.control) names.push_back(name);
  }
  for (size_t v = 0; v < names.size(); ++v) variant_index[names[v]] = v;

  std::unordered_map<std::string, int32_t> item_index;
  std::vector<std::unordered_map<std::string, size_t>> unit_index(names.size());
  std::vector<std::vector<Unit>> units(names.size());
  std::vector<std::set<std::string>> requests(names.size());
  for (size_t i = 0; i < n; ++i) {
    const ImpressionRecord& im = impressions[i];
    const size_t v = variant_index[im.variant];
    const std::string key = im.user.empty() ? "\x01" + im.request_id : im.user;
    auto [it, added] = unit_index[v].emplace(key, units[v].size());
    if (added) units[v].emplace_back();
    Unit& u = units[v][it->second];
    u.impressions += 1;
    u.clicks += clicked[i];
    u.carts += carted[i];
    u.purchases += purchased[i];
    u.returns += purchased[i] && returned[i];
    u.revenue += revenue[i];
    auto [item, _] = item_index.emplace(im.item, static_cast<int32_t>(item_index.size()));
    u.items.push_back(item->second);
    requests[v].insert(im.request_id);
  }
  for (auto& vu : units) {
    for (Unit& u : vu) {
      std::sort(u.items.begin(), u.items.end());
      u.items.erase(std::unique(u.items.begin(), u.items.end()), u.items.end());
    }
  }

  // Point estimates and the bootstrap replicates of every metric.
  const bool with_revenue = !o.prices.empty();
  report.metric_names = AbMetricNames(with_revenue);
  std::vector<std::array<double, kMetrics>> point(names.size());
  std::vector<std::array<std::vector<double>, kMetrics>> reps(names.size());
  std::vector<uint32_t> seen_in(item_index.size(), 0);
  for (size_t v = 0; v < names.size(); ++v) {
    Totals all;
    std::set<int32_t> distinct;
    for (const Unit& u : units[v]) {
      all.Add(u, 1);
      distinct.insert(u.items.begin(), u.items.end());
    }
    Metrics(all, static_cast<double>(distinct.size()), o.catalog_items, point[v].data());
    VariantSummary s;
    s.name = names[v];
    s.units = static_cast<int64_t>(units[v].size());
    s.requests = static_cast<int64_t>(requests[v].size());
    s.impressions = static_cast<int64_t>(all.impressions);
    s.clicks = static_cast<int64_t>(all.clicks);
    s.carts = static_cast<int64_t>(all.carts);
    s.purchases = static_cast<int64_t>(all.purchases);
    s.returns = static_cast<int64_t>(all.returns);
    s.revenue = all.revenue;
    s.distinct_items = static_cast<int64_t>(distinct.size());
    report.variants.push_back(std::move(s));

    std::mt19937_64 rng(o.seed + 0x9E3779B97F4A7C15ULL * (v + 1));
    std::poisson_distribution<int> poisson(1.0);
    for (auto& r : reps[v]) r.resize(static_cast<size_t>(o.bootstrap));
    std::fill(seen_in.begin(), seen_in.end(), 0);
    for (int r = 0; r < o.bootstrap; ++r) {
      Totals t;
      int64_t distinct_r = 0;
      const uint32_t stamp = static_cast<uint32_t>(r + 1);
      for (const Unit& u : units[v]) {
        const int w = poisson(rng);
        if (w == 0) continue;
        t.Add(u, w);
        for (const int32_t item : u.items) {
          if (seen_in[static_cast<size_t>(item)] != stamp) {
            seen_in[static_cast<size_t>(item)] = stamp;
            ++distinct_r;
          }
        }
      }
      double m[kMetrics];
      Metrics(t, static_cast<double>(distinct_r), o.catalog_items, m);
      for (int k = 0; k < kMetrics; ++k) reps[v][k][static_cast<size_t>(r)] = m[k];
    }
  }
  for (size_t v = 0; v < names.size(); ++v) {
    for (int k = 0; k < kMetrics; ++k) {
      if (k == kRevenue && !with_revenue) continue;
      const bool recentre = k == kCoverage;
      Estimate& e = report.variants[v].metrics[kMetricName[k]];
      e = Interval(point[v][k], reps[v][k], o.confidence, recentre);
      if (recentre) {
        // Recentred, the interval can pass what is possible: every catalog
        // item, or as many items as there were impressions.
        const double most =
            o.catalog_items > 0
                ? std::min(1.0, static_cast<double>(report.variants[v].impressions) /
                                    static_cast<double>(o.catalog_items))
                : static_cast<double>(report.variants[v].impressions);
        e.low = std::clamp(e.low, 0.0, most);
        e.high = std::clamp(e.high, 0.0, most);
      }
      if (v == 0) continue;
      std::vector<double> diff(static_cast<size_t>(o.bootstrap));
      for (size_t r = 0; r < diff.size(); ++r) diff[r] = reps[v][k][r] - reps[0][k][r];
      report.variants[v].vs_control[kMetricName[k]] =
          Interval(point[v][k] - point[0][k], std::move(diff), o.confidence, recentre);
    }
  }

  // The series over time, by the impression's time.
  int64_t first = impressions[0].timestamp, last = first;
  for (const auto& im : impressions) {
    first = std::min(first, im.timestamp);
    last = std::max(last, im.timestamp);
  }
  report.bucket_seconds = o.bucket_seconds > 0       ? o.bucket_seconds
                          : last - first < 3 * 86400 ? 3600
                                                     : 86400;
  const int64_t b = report.bucket_seconds;
  auto floor_div = [](int64_t a, int64_t d) { return a / d - (a % d != 0 && (a < 0) != (d < 0)); };
  std::map<int64_t, SeriesPoint> series;
  for (size_t i = 0; i < n; ++i) {
    const ImpressionRecord& im = impressions[i];
    const int64_t start = floor_div(im.timestamp, b) * b;
    SeriesPoint& p = series[start];
    p.bucket_start = start;
    p.impressions[im.variant] += 1;
    p.clicks[im.variant] += clicked[i];
    p.purchases[im.variant] += purchased[i];
  }
  for (auto& [_, p] : series) report.series.push_back(std::move(p));
  return report;
}

}  // namespace vitrine
