// Trends (docs/retail.md, "Trending"): which items, and which values of a
// catalog column (categories, brands, colours...), gain demand fastest.
//
//   TrendRequest r;
//   r.window_hours = 24;
//   auto items = engine->Trending(r);            // items->hits, best first
//   r.by = "category";
//   auto groups = engine->GroupTrends(r);        // categories by growth
//
// For a window of W hours ending with the hour `now` (the newest event's
// hour: the bundle's, or a live event's when newer; or the request's `at`):
//   current  = weighted events in hours (now - W, now]
//   previous = weighted events in hours (now - 2W, now - W]
//   growth   = current - previous   (weighted events gained per window)
// This is the rate of increase of AWS Personalize's Trending-Now. Trending
// items are those with growth > 0, largest first (ties: larger current,
// then catalog order), under the request's rules like every other answer.
//
// A group sums its items. Its growth ratio is (a + 0.5) / (b + 0.5) on the
// event counts a (current) and b (previous), with a 95% interval from the
// normal approximation of the log ratio of two Poisson counts:
// exp(log ratio +- 1.96 sqrt(1/(a + 0.5) + 1/(b + 0.5))). A group whose
// interval lies above 1 is rising, below 1 falling, else steady.
//
// The events come from the bundle (the interactions' timed rows of the last
// two weeks, trend/*.npy) plus, in the server, the live events since the
// build (ItemActivity, core/item_activity.h). The bundle's "trend" block is
// the build-time trend over the build's window (manifest "trend"), a prior
// like "pop" and "new": `--weights trend=0.5` mixes it into a recommendation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/bundle.h"
#include "core/item_activity.h"
#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

// Trend windows run from 1 hour to 7 days (half of ItemActivity's horizon).
inline constexpr int64_t kMaxTrendWindowHours = 7 * 24;
inline constexpr int64_t kDefaultTrendWindowHours = 24;

// "1h", "6h", "1d", "7d" (a positive integer and h or d) -> hours in
// [1, kMaxTrendWindowHours]; InvalidArgument naming the value otherwise.
Result<int64_t> ParseTrendWindow(std::string_view text);
// 24 -> "1d", 6 -> "6h".
std::string TrendWindowName(int64_t hours);

// An item's or a group's events in the two windows.
struct TrendCounts {
  double current = 0;   // weighted events, this window
  double previous = 0;  // weighted events, the window before
  double current_events = 0;
  double previous_events = 0;
  double growth() const { return current - previous; }
};

struct GroupTrend {
  std::string value;  // the column's value ("" for items without one)
  TrendCounts counts;
  int32_t items = 0;                     // catalog items with this value
  double ratio = 1;                      // (a + 0.5) / (b + 0.5) on event counts
  double ratio_low = 1, ratio_high = 1;  // its 95% interval
  std::string direction;                 // "rising", "falling" or "steady"
  std::vector<int32_t> top_items;        // its best trending items (up to 3)
};

// Fills ratio, its interval and direction from g->counts.
void SetGroupGrowth(GroupTrend* g);

// The trend prior per item (the "trend" block): log(1 + growth) scaled to
// [0, 1] by the largest growth, 0 for items not growing, over the window of
// `window_hours` ending with the activity's newest hour.
Matrix TrendBlock(const ItemActivity& activity, int32_t items, int64_t window_hours);

// trend/buckets.npy (item, hour as int64) and trend/sums.npy (weight,
// events) in the bundle: written by the build, read by the Engine, renumbered
// by `items remove`.
Status WriteTrendActivity(const ItemActivity& activity, BundleWriter* w);
// NotFound-free: a bundle without trend/ reads as an empty activity. Rows
// naming an item outside [0, items) or a bad hour are Corruption.
Result<ItemActivity> ReadTrendActivity(const Bundle& b, int64_t items);

}  // namespace vitrine
