// AbReport: what each A/B variant's answers led to, with confidence
// intervals, from the impression log and the event log joined by
// engine/attribution.h (`vitrine report`, docs/ab-testing.md).
//
// Per variant, over its impressions (one item shown at one position):
//   ctr                     impressions clicked / impressions
//   cart_rate               impressions added to the cart / impressions
//   conversion              impressions purchased / impressions
//   revenue_per_impression  price of the purchases / impressions (needs prices)
//   return_rate             purchased impressions returned / purchased ones
//   coverage                distinct items shown / catalog items (or, with no
//                           catalog size, distinct items shown)
// An impression counts once per kind however many events of that kind it
// got; revenue counts each purchase event.
//
// Intervals: users are the unit the experiment randomises, so the bootstrap
// resamples users (a Poisson bootstrap: each user's weight is Poisson(1) per
// replicate), each variant independently, and takes percentile intervals of
// each metric and of its difference against the control. An answer to no
// user is its own unit. The same seed gives the same intervals. Coverage is
// a count of distinct items, which every resample sees fewer of: its
// replicates are shifted to centre on the observed value first, and it
// compares variants fairly only when they had about the same traffic.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "engine/attribution.h"

namespace vitrine {

struct AbReportOptions {
  std::string control;       // "" = "control" if a variant has that name, else the first by name
  int bootstrap = 1000;      // replicates, >= 50
  double confidence = 0.95;  // of every interval
  uint64_t seed = 42;
  // Which event names count as each kind.
  std::vector<std::string> click_events = {"click", "view"};
  std::vector<std::string> cart_events = {"cart"};
  std::vector<std::string> purchase_events = {"purchase", "gift_purchase"};
  std::vector<std::string> return_events = {"return"};
  AttributionOptions attribution;
  int64_t bucket_seconds = 0;  // of the series over time; 0 = a day, or an hour under 3 days
  // item id -> price, for revenue; empty = no revenue metric.
  std::unordered_map<std::string, double> prices;
  int64_t catalog_items = 0;  // 0 = coverage as a count of items
};

struct Estimate {
  double value = 0, low = 0, high = 0;
};

// The metrics in report order; revenue_per_impression only with prices.
std::vector<std::string> AbMetricNames(bool with_revenue);

struct VariantSummary {
  std::string name;   // "" for answers outside any experiment: shown as "(none)"
  int64_t units = 0;  // users (and answers to no user)
  int64_t requests = 0, impressions = 0;
  int64_t clicks = 0, carts = 0, purchases = 0, returns = 0;  // impressions with one
  double revenue = 0;
  int64_t distinct_items = 0;
  std::map<std::string, Estimate> metrics;
  std::map<std::string, Estimate> vs_control;  // variant - control; empty for the control
};

struct SeriesPoint {
  int64_t bucket_start = 0;                                       // seconds since the epoch
  std::map<std::string, int64_t> impressions, clicks, purchases;  // by variant
};

struct AbReport {
  std::string control;
  std::vector<VariantSummary> variants;  // the control first, then by name
  std::vector<std::string> metric_names;
  int64_t events = 0;
  int64_t outcome_counts[kAttributionOutcomes] = {};
  int64_t position_mismatches = 0;
  int64_t bucket_seconds = 0;
  std::vector<SeriesPoint> series;
  AbReportOptions options;
};

// InvalidArgument for no impressions, a control that is no variant, or
// options out of range.
Result<AbReport> BuildAbReport(std::span<const ImpressionRecord> impressions,
                               std::span<const EventRecord> events, const AbReportOptions& options);

}  // namespace vitrine
