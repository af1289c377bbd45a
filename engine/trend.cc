// Trends: trending items and groups, the trend block, and the bundle's
// trend/*.npy (engine/trend.h).
#include "engine/trend.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>

#include "core/progress.h"
#include "engine/bundle_schema.h"
#include "engine/engine.h"

namespace vitrine {

Result<int64_t> ParseTrendWindow(std::string_view text) {
  const auto bad = [&] {
    return Status::InvalidArgument("trend window '" + std::string(text.substr(0, 40)) +
                                   "': expected a number of hours or days such as 1h, 6h, 1d or "
                                   "7d, from 1h to 7d");
  };
  if (text.size() < 2) return bad();
  const char unit = text.back();
  if (unit != 'h' && unit != 'd') return bad();
  int64_t n = 0;
  const std::string_view digits = text.substr(0, text.size() - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n < 1 ||
      n > kMaxTrendWindowHours) {
    return bad();
  }
  const int64_t hours = unit == 'd' ? n * 24 : n;
  if (hours > kMaxTrendWindowHours) return bad();
  return hours;
}

std::string TrendWindowName(int64_t hours) {
  return hours % 24 == 0 ? std::to_string(hours / 24) + "d" : std::to_string(hours) + "h";
}

void SetGroupGrowth(GroupTrend* g) {
  const double a = g->counts.current_events + 0.5, b = g->counts.previous_events + 0.5;
  const double log_ratio = std::log(a / b);
  const double half = 1.96 * std::sqrt(1.0 / a + 1.0 / b);
  g->ratio = a / b;
  g->ratio_low = std::exp(log_ratio - half);
  g->ratio_high = std::exp(log_ratio + half);
  g->direction = g->ratio_low > 1 ? "rising" : g->ratio_high < 1 ? "falling" : "steady";
}

namespace {

// Both windows' sums per item.
struct WindowSums {
  std::vector<double> cur_w, prev_w, cur_n, prev_n;
  TrendCounts at(size_t i) const { return {cur_w[i], prev_w[i], cur_n[i], prev_n[i]}; }
};

WindowSums SumWindows(const ItemActivity& a, const ItemActivity* live, int64_t now_hour,
                      int64_t window, int32_t items) {
  WindowSums s;
  const int64_t cur_from = now_hour - window + 1, prev_from = now_hour - 2 * window + 1;
  a.Sums(cur_from, now_hour + 1, items, &s.cur_w, &s.cur_n);
  a.Sums(prev_from, cur_from, items, &s.prev_w, &s.prev_n);
  if (live != nullptr && !live->empty()) {
    WindowSums l;
    live->Sums(cur_from, now_hour + 1, items, &l.cur_w, &l.cur_n);
    live->Sums(prev_from, cur_from, items, &l.prev_w, &l.prev_n);
    for (size_t i = 0; i < s.cur_w.size(); ++i) {
      s.cur_w[i] += l.cur_w[i];
      s.cur_n[i] += l.cur_n[i];
      s.prev_w[i] += l.prev_w[i];
      s.prev_n[i] += l.prev_n[i];
    }
  }
  return s;
}

std::string Amount(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

}  // namespace

Result<int64_t> Engine::TrendHour(const TrendRequest& r) const {
  if (r.window_hours < 1 || r.window_hours > kMaxTrendWindowHours) {
    return Status::InvalidArgument("trend window of " + std::to_string(r.window_hours) +
                                   " hours: expected 1 to " + std::to_string(kMaxTrendWindowHours));
  }
  if (r.at < 0) return Status::InvalidArgument("trend time 'at' must be >= 0 (unix seconds)");
  int64_t newest = activity_.newest_hour();
  if (r.live != nullptr) newest = std::max(newest, r.live->newest_hour());
  if (newest < 0 && manifest_.private_training()) {
    return Status::InvalidArgument(
        "no trend counts to find trends in: the bundle was trained with differential privacy "
        "and no (item, hour) count passed its release threshold (the build log says how many "
        "did; private trends need many customers per item and hour, docs/privacy.md), and no "
        "live events have arrived since the build");
  }
  if (newest < 0) {
    return Status::InvalidArgument(
        "no timed events to find trends in: the interactions had no timestamp column (or none "
        "in the last two weeks of the data), and no live events have arrived since the build");
  }
  // The windows end at `at`, whole hours: the last one counted is the hour
  // before the one `at` falls in. Without `at`, the newest event's hour.
  const int64_t now = r.at > 0 ? r.at / 3600 - 1 : newest;
  // Both windows must lie inside what is kept (ItemActivity::kHorizonHours
  // before the newest event), or the window before would be cut short.
  const int64_t oldest_kept = newest - ItemActivity::kHorizonHours + 1;
  if (now - 2 * r.window_hours + 1 < oldest_kept) {
    return Status::InvalidArgument(
        "the windows (" + TrendWindowName(r.window_hours) + " and the " +
        TrendWindowName(r.window_hours) + " before, ending at hour " + std::to_string(now + 1) +
        ") reach before the events kept, which start at hour " + std::to_string(oldest_kept) +
        " (unix hours): trends look back at most 14 days from the newest event");
  }
  return now;
}

Result<Trending> Engine::Trend(const TrendRequest& r) const {
  VITRINE_ASSIGN_OR_RETURN(const int64_t now, TrendHour(r));
  QueryParams q = r.query;
  if (q.k < 1) return Status::InvalidArgument("k must be >= 1");
  q.k = std::min(q.k, std::max<int32_t>(catalog_.size(), 1));
  Bitmap allowed;
  RequestRules rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, {}, &allowed, &rules));
  const WindowSums sums = SumWindows(activity_, r.live, now, r.window_hours, catalog_.size());

  const auto t_rerank = std::chrono::steady_clock::now();
  // Growing items by growth, ties by the larger current window (a climb to
  // a bigger number), then catalog order; in double, before the float score.
  std::vector<std::pair<TrendCounts, int32_t>> growing;
  for (uint32_t i : allowed) {
    const TrendCounts c = sums.at(i);
    if (c.growth() > 0) growing.push_back({c, static_cast<int32_t>(i)});
  }
  std::stable_sort(growing.begin(), growing.end(), [](const auto& a, const auto& b) {
    if (a.first.growth() != b.first.growth()) return a.first.growth() > b.first.growth();
    return a.first.current > b.first.current;
  });
  growing.resize(std::min(growing.size(), static_cast<size_t>(CandidatePoolSize(q))));
  std::vector<Candidate> cands;
  cands.reserve(growing.size());
  for (const auto& [c, i] : growing) cands.push_back({i, static_cast<float>(c.growth()), nullptr});
  const bool diversify = q.diversity != Diversity::kNone;
  const size_t dim = vectors_->cols;
  UnitVectors unit(diversify ? cands.size() : 0, dim);
  if (diversify && !cands.empty()) {
    // MMR and DPP weigh relevance against similarity on [0, 1].
    const float top = cands.front().score;
    for (Candidate& c : cands) {
      c.score = top > 0 ? c.score / top : 1.0f;
      c.vec = unit.Add(vectors_->row(static_cast<size_t>(c.item)));
    }
  }
  VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked,
                           Rerank(cands, rules, RerankOptionsOf(q, dim), &allowed));
  Trending out;
  out.now_hour = now;
  out.window_hours = r.window_hours;
  out.hits = ToHits(std::move(ranked), rules);
  const std::string w = TrendWindowName(r.window_hours);
  for (Hit& h : out.hits) {
    const TrendCounts c = sums.at(static_cast<size_t>(h.item));
    out.counts.push_back(c);
    h.block_cos = HitBlocks({}, h.item);
    if (h.pinned) {
      h.reason = "pinned";
    } else {
      h.score = static_cast<float>(c.growth());
      h.reason = "trending: " + Amount(c.current) + " weighted events in the last " + w + ", " +
                 Amount(c.previous) + " in the " + w + " before";
    }
    AppendRuleReasons(&h);
  }
  if (q.stats != nullptr) {
    q.stats->pool = static_cast<int64_t>(cands.size());
    q.stats->rerank_seconds += SecondsSince(t_rerank);
  }
  return out;
}

Result<std::vector<GroupTrend>> Engine::GroupTrends(const TrendRequest& r) const {
  VITRINE_ASSIGN_OR_RETURN(const int64_t now, TrendHour(r));
  const Column* col = catalog_.column(r.by);
  if (col == nullptr) {
    std::string names;
    for (const auto& c : catalog_.columns) names += (names.empty() ? "" : ", ") + c.name;
    return Status::InvalidArgument("trends by '" + r.by +
                                   "': no such catalog column (columns: " + names + ")");
  }
  if (col->type != ColumnType::kCategorical) {
    return Status::InvalidArgument("trends by '" + r.by +
                                   "': expected a categorical column (category, brand, colour...)");
  }
  if (r.query.k < 0) return Status::InvalidArgument("k must be >= 0 (0 = every value)");
  QueryParams q = r.query;
  q.k = 1;  // k counts values here, not items; the filters are what matter
  Bitmap allowed;
  RequestRules rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, {}, &allowed, &rules));
  const WindowSums sums = SumWindows(activity_, r.live, now, r.window_hours, catalog_.size());
  // Group code -> sums; items without a value form the group "".
  std::map<int64_t, GroupTrend> groups;
  std::map<int64_t, std::vector<std::pair<double, int32_t>>> growing;  // (-growth, item)
  for (uint32_t i : allowed) {
    const int64_t code = col->codes[i];
    GroupTrend& g = groups[code];
    const TrendCounts c = sums.at(i);
    g.counts.current += c.current;
    g.counts.previous += c.previous;
    g.counts.current_events += c.current_events;
    g.counts.previous_events += c.previous_events;
    ++g.items;
    if (c.growth() > 0) growing[code].push_back({-c.growth(), static_cast<int32_t>(i)});
  }
  std::vector<GroupTrend> out;
  for (auto& [code, g] : groups) {
    g.value = code >= 0 && static_cast<size_t>(code) < col->dictionary.size()
                  ? col->dictionary[static_cast<size_t>(code)]
                  : "";
    SetGroupGrowth(&g);
    auto& top = growing[code];
    std::sort(top.begin(), top.end());
    for (size_t j = 0; j < top.size() && j < 3; ++j) g.top_items.push_back(top[j].second);
    out.push_back(std::move(g));
  }
  std::stable_sort(out.begin(), out.end(), [](const GroupTrend& a, const GroupTrend& b) {
    return a.ratio != b.ratio ? a.ratio > b.ratio : a.counts.current > b.counts.current;
  });
  if (r.query.k > 0 && out.size() > static_cast<size_t>(r.query.k)) {
    out.resize(static_cast<size_t>(r.query.k));
  }
  return out;
}

Matrix TrendBlock(const ItemActivity& activity, int32_t items, int64_t window_hours) {
  Matrix block(static_cast<size_t>(std::max(items, 0)), 1, 0.0f);
  const int64_t now = activity.newest_hour();
  if (now < 0) return block;
  std::vector<double> cur, prev, unused;
  activity.Sums(now - window_hours + 1, now + 1, items, &cur, &unused);
  activity.Sums(now - 2 * window_hours + 1, now - window_hours + 1, items, &prev, &unused);
  double top = 0;
  for (size_t i = 0; i < cur.size(); ++i) top = std::max(top, cur[i] - prev[i]);
  if (top <= 0) return block;
  for (size_t i = 0; i < cur.size(); ++i) {
    const double g = cur[i] - prev[i];
    block.data[i] = g > 0 ? static_cast<float>(std::log1p(g) / std::log1p(top)) : 0.0f;
  }
  return block;
}

Status WriteTrendActivity(const ItemActivity& activity, BundleWriter* w) {
  const std::vector<ItemActivity::Bucket> buckets = activity.Buckets();
  MatrixI64 keys(buckets.size(), 2);
  Matrix sums(buckets.size(), 2);
  for (size_t j = 0; j < buckets.size(); ++j) {
    keys.data[2 * j] = buckets[j].item;
    keys.data[2 * j + 1] = buckets[j].hour;
    sums.data[2 * j] = static_cast<float>(buckets[j].weight);
    sums.data[2 * j + 1] = static_cast<float>(buckets[j].count);
  }
  VITRINE_RETURN_IF_ERROR(w->WriteMatrix(bundle_file::kTrendBuckets, keys));
  return w->WriteMatrix(bundle_file::kTrendSums, sums);
}

Result<ItemActivity> ReadTrendActivity(const Bundle& b, int64_t items) {
  namespace f = bundle_file;
  ItemActivity out;
  if (!b.Has(f::kTrendBuckets)) return out;
  VITRINE_ASSIGN_OR_RETURN(MatrixI64 keys, b.ReadMatrixI64(f::kTrendBuckets));
  VITRINE_ASSIGN_OR_RETURN(Matrix sums, b.ReadMatrix(f::kTrendSums));
  if (keys.cols != 2 || sums.cols != 2 || keys.rows != sums.rows) {
    return Status::Corruption(b.path(f::kTrendSums).string() + ": " + std::to_string(sums.rows) +
                              " rows, " + f::kTrendBuckets + " has " + std::to_string(keys.rows));
  }
  // Bounds that keep every sum over the horizon finite in float.
  constexpr double kMaxBucketSum = 1e15;
  for (size_t j = 0; j < keys.rows; ++j) {
    const int64_t item = keys.data[2 * j], hour = keys.data[2 * j + 1];
    const float weight = sums.data[2 * j], count = sums.data[2 * j + 1];
    if (item < 0 || item >= items || hour <= 0 || hour > int64_t{0xFFFFFFFF}) {
      return Status::Corruption(b.path(f::kTrendBuckets).string() + ": row " + std::to_string(j) +
                                " (item " + std::to_string(item) + ", hour " +
                                std::to_string(hour) + "): expected an item below " +
                                std::to_string(items) + " and an hour in [1, 2^32)");
    }
    if (!(std::fabs(weight) <= kMaxBucketSum) || !(count >= 0 && count <= kMaxBucketSum)) {
      return Status::Corruption(b.path(f::kTrendSums).string() + ": row " + std::to_string(j) +
                                " (weight " + std::to_string(weight) + ", events " +
                                std::to_string(count) +
                                "): expected a weight within +-1e15 and events in [0, 1e15]");
    }
    out.Add({static_cast<int32_t>(item), hour, weight, count});
  }
  return out;
}

}  // namespace vitrine
