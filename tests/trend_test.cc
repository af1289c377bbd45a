// Trends (engine/trend.h, core/item_activity.h): window sums against a
// brute-force count over random events, a planted burst (vitrine generate
// --trend-items) ranked first by the engine, the CLI and the server, group
// counts recomputed from the raw interactions file, live events, rules, and
// the report.
#include "engine/trend.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "core/array_io.h"
#include "core/item_activity.h"
#include "engine/engine.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using vitrine::testing::CachedTestBundle;
using vitrine::testing::RunVitrine;

struct Event {
  int32_t item;
  int64_t time;
  double weight;
};

// ---- ItemActivity against brute force ----

TEST(ItemActivityTest, WindowSumsMatchBruteForce) {
  std::mt19937_64 rng(11);
  const int32_t items = 40;
  const int64_t t0 = 1'700'000'000;
  std::vector<Event> events;
  ItemActivity a;
  for (int n = 0; n < 20000; ++n) {
    // 30 days of events in random order: the older ones fall out of the
    // horizon as newer ones arrive, and some arrive after they have.
    const Event e{static_cast<int32_t>(rng() % items),
                  t0 + static_cast<int64_t>(rng() % (30 * 86400)),
                  static_cast<double>(rng() % 5) - 1.0};
    events.push_back(e);
    a.Add(e.item, e.time, e.weight);
  }
  a.Add(3, 0, 100.0);   // no time: ignored
  a.Add(3, -5, 100.0);  // before 1970: ignored
  int64_t newest = 0;
  for (const Event& e : events) newest = std::max(newest, e.time / 3600);
  ASSERT_EQ(a.newest_hour(), newest);
  for (int64_t window : {1, 6, 24, 168}) {
    std::vector<double> w, n;
    const int64_t from = newest - window + 1;
    a.Sums(from, newest + 1, items, &w, &n);
    std::vector<double> bw(items, 0), bn(items, 0);
    for (const Event& e : events) {
      const int64_t h = e.time / 3600;
      if (h >= from && h <= newest) {
        bw[static_cast<size_t>(e.item)] += e.weight;
        bn[static_cast<size_t>(e.item)] += 1;
      }
    }
    for (int32_t i = 0; i < items; ++i) {
      EXPECT_NEAR(w[static_cast<size_t>(i)], bw[static_cast<size_t>(i)], 1e-9) << window;
      EXPECT_EQ(n[static_cast<size_t>(i)], bn[static_cast<size_t>(i)]) << window;
    }
  }
  // Stored buckets: only the horizon, sorted; they rebuild the same sums.
  ItemActivity copy;
  const auto buckets = a.Buckets();
  for (const auto& b : buckets) {
    EXPECT_GT(b.hour, newest - ItemActivity::kHorizonHours);
    copy.Add(b);
  }
  EXPECT_TRUE(std::is_sorted(buckets.begin(), buckets.end(), [](const auto& x, const auto& y) {
    return x.item != y.item ? x.item < y.item : x.hour < y.hour;
  }));
  std::vector<double> w1, n1, w2, n2;
  a.Sums(newest - 200, newest + 1, items, &w1, &n1);
  copy.Sums(newest - 200, newest + 1, items, &w2, &n2);
  EXPECT_EQ(w1, w2);
  // Renumbered: item 0 removed, the rest move down one row.
  std::vector<int32_t> remap(items);
  for (int32_t i = 0; i < items; ++i) remap[static_cast<size_t>(i)] = i - 1;
  ItemActivity moved = a.Remapped(remap);
  moved.Sums(newest - 200, newest + 1, items, &w2, &n2);
  for (int32_t i = 1; i < items; ++i) {
    EXPECT_EQ(w2[static_cast<size_t>(i - 1)], w1[static_cast<size_t>(i)]);
  }
  EXPECT_EQ(moved.newest_hour(), newest);
}

TEST(TrendWindowTest, ParsesHoursAndDays) {
  EXPECT_EQ(*ParseTrendWindow("1h"), 1);
  EXPECT_EQ(*ParseTrendWindow("36h"), 36);
  EXPECT_EQ(*ParseTrendWindow("1d"), 24);
  EXPECT_EQ(*ParseTrendWindow("7d"), 168);
  for (const char* bad :
       {"", "h", "0h", "8d", "169h", "1w", "-1d", "1.5d", "d1", " 1d", "99999999999999999999h"}) {
    auto r = ParseTrendWindow(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) EXPECT_NE(r.status().message().find("1h to 7d"), std::string::npos) << bad;
  }
  EXPECT_EQ(TrendWindowName(24), "1d");
  EXPECT_EQ(TrendWindowName(6), "6h");
}

TEST(GroupGrowthTest, IntervalCoversAndDirections) {
  GroupTrend g;
  g.counts.current_events = 100;
  g.counts.previous_events = 10;
  SetGroupGrowth(&g);
  EXPECT_NEAR(g.ratio, 100.5 / 10.5, 1e-12);
  EXPECT_LT(g.ratio_low, g.ratio);
  EXPECT_GT(g.ratio_high, g.ratio);
  EXPECT_EQ(g.direction, "rising");
  g.counts.current_events = 3;
  g.counts.previous_events = 4;
  SetGroupGrowth(&g);
  EXPECT_EQ(g.direction, "steady");
  g.counts.current_events = 5;
  g.counts.previous_events = 80;
  SetGroupGrowth(&g);
  EXPECT_EQ(g.direction, "falling");
}

// ---- A planted burst in generated data ----

class PlantedTrend : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = CachedTestBundle("trend", "trend_test_bundle", "--trend-items 2", "--ranker off", "");
    auto e = Engine::Open(dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    const json truth = json::parse(Slurp(dir_ / "data" / "truth.json"));
    for (int32_t i : truth["trend_items"]) planted_.insert(i);
    ASSERT_EQ(planted_.size(), 2u);
    // The oracle's input: the raw rows with the default event weights.
    const auto events = ReadGeneratedEvents(dir_ / "data" / "interactions.csv");
    ASSERT_FALSE(events.empty());
    for (const GeneratedEvent& e : events) {
      rows_.push_back({*engine_->catalog().ids.Find(e.item), e.time, e.weight});
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Weighted events of `item` in hours [from, to), from the raw rows.
  double Sum(int32_t item, int64_t from, int64_t to) const {
    double s = 0;
    for (const Event& e : rows_) {
      if (e.item == item && e.time / 3600 >= from && e.time / 3600 < to) s += e.weight;
    }
    return s;
  }

  fs::path dir_;
  std::unique_ptr<Engine> engine_;
  std::set<int32_t> planted_;
  std::vector<Event> rows_;
};

TEST_F(PlantedTrend, TheBurstIsRankedFirstAndCountsMatchTheRawFile) {
  TrendRequest r;
  r.query.k = 10;
  auto t = engine_->Trend(r);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_GE(t->hits.size(), 2u);
  EXPECT_EQ(std::set<int32_t>({t->hits[0].item, t->hits[1].item}), planted_);
  const int64_t now = t->now_hour;
  for (size_t j = 0; j < t->hits.size(); ++j) {
    const int32_t item = t->hits[j].item;
    EXPECT_NEAR(t->counts[j].current, Sum(item, now - 23, now + 1), 1e-3) << item;
    EXPECT_NEAR(t->counts[j].previous, Sum(item, now - 47, now - 23), 1e-3) << item;
    EXPECT_GT(t->counts[j].growth(), 0);
    if (j > 0) EXPECT_LE(t->counts[j].growth(), t->counts[j - 1].growth() + 1e-9);
    EXPECT_NE(t->hits[j].reason.find("trending"), std::string::npos);
  }
  // The trend block holds the build-time trend: the planted items top it.
  const BlockLayout* trend = engine_->manifest().block("trend");
  ASSERT_NE(trend, nullptr);
  EXPECT_EQ(engine_->manifest().trend_window_hours, 24);
  for (int32_t i : planted_) {
    const float v = engine_->vectors().row(static_cast<size_t>(i))[trend->offset];
    EXPECT_GT(v, 0.9f) << i;
  }
}

TEST_F(PlantedTrend, GroupsSumTheirItemsAndThePlantedCategoriesRise) {
  TrendRequest r;
  r.by = "category";
  r.query.k = 0;  // every value
  auto groups = engine_->GroupTrends(r);
  ASSERT_TRUE(groups.ok()) << groups.status().ToString();
  auto now = engine_->TrendHour(r);
  ASSERT_TRUE(now.ok());
  const Column* col = engine_->catalog().column("category");
  std::map<std::string, double> current;
  for (const Event& e : rows_) {
    const int64_t h = e.time / 3600;
    if (h > *now - 24 && h <= *now) {
      current[col->dictionary[static_cast<size_t>(col->codes[static_cast<size_t>(e.item)])]] +=
          e.weight;
    }
  }
  for (const GroupTrend& g : *groups) {
    EXPECT_NEAR(g.counts.current, current[g.value], 1e-3) << g.value;
    EXPECT_LE(g.ratio_low, g.ratio);
    EXPECT_GE(g.ratio_high, g.ratio);
  }
  for (int32_t i : planted_) {
    const std::string cat =
        col->dictionary[static_cast<size_t>(col->codes[static_cast<size_t>(i)])];
    auto it = std::find_if(groups->begin(), groups->end(),
                           [&](const GroupTrend& g) { return g.value == cat; });
    ASSERT_NE(it, groups->end());
    EXPECT_EQ(it->direction, "rising") << cat;
    EXPECT_NE(std::find(it->top_items.begin(), it->top_items.end(), i), it->top_items.end());
  }
  r.by = "price";
  EXPECT_FALSE(engine_->GroupTrends(r).ok());
  r.by = "nope";
  EXPECT_NE(engine_->GroupTrends(r).status().message().find("no such catalog column"),
            std::string::npos);
}

TEST_F(PlantedTrend, LiveEventsAndRulesApply) {
  // A live burst on an item that was not trending puts it first.
  TrendRequest r;
  r.query.k = 3;
  int32_t quiet = 0;
  while (planted_.count(quiet)) ++quiet;
  ItemActivity live;
  const int64_t now = *engine_->TrendHour(r);
  for (int n = 0; n < 5000; ++n) live.Add(quiet, now * 3600 + 10, 1.0);
  r.live = &live;
  auto t = engine_->Trend(r);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->hits[0].item, quiet);
  EXPECT_NEAR(t->counts[0].current, Sum(quiet, now - 23, now + 1) + 5000, 1e-3);

  // Rules filter inside: only the first planted item's category.
  const Column* col = engine_->catalog().column("category");
  const int32_t first = *planted_.begin();
  const std::string cat =
      col->dictionary[static_cast<size_t>(col->codes[static_cast<size_t>(first)])];
  auto rules = RuleSet::Parse("INCLUDE WHERE category = \"" + cat + "\"\n", "rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_TRUE(rules->Bind(engine_->catalog()).ok());
  r.live = nullptr;
  r.query.rules = &*rules;
  r.query.k = 5;
  t = engine_->Trend(r);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_FALSE(t->hits.empty());
  EXPECT_EQ(t->hits[0].item, first);
  for (const Hit& h : t->hits) {
    EXPECT_EQ(col->codes[static_cast<size_t>(h.item)], col->codes[static_cast<size_t>(first)]);
  }
  // "at" ends the windows at that time (whole hours): the end of the
  // newest hour is the default; half an hour into it counts up to its start.
  r.query.rules = nullptr;
  r.query.k = 5;
  auto base = engine_->Trend(r);
  ASSERT_TRUE(base.ok());
  r.at = (now + 1) * 3600;
  t = engine_->Trend(r);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->now_hour, now);
  ASSERT_EQ(t->hits.size(), base->hits.size());
  for (size_t j = 0; j < t->hits.size(); ++j) EXPECT_EQ(t->hits[j].item, base->hits[j].item);
  r.at = now * 3600 + 1800;
  t = engine_->Trend(r);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->now_hour, now - 1);
  for (size_t j = 0; j < t->hits.size(); ++j) {
    EXPECT_NEAR(t->counts[j].current, Sum(t->hits[j].item, now - 24, now), 1e-3);
  }
  // Windows reaching past the 14 days kept are an error, not short counts.
  r.at = (now - 14 * 24) * 3600;
  EXPECT_NE(engine_->Trend(r).status().message().find("14 days"), std::string::npos);
  r.at = 1'000'000'000;
  EXPECT_FALSE(engine_->Trend(r).ok());
  r.at = 0;
  r.window_hours = 0;
  EXPECT_FALSE(engine_->Trend(r).ok());
}

TEST_F(PlantedTrend, CliTrendingAndTheReport) {
  const std::string b = " --bundle '" + (dir_ / "bundle").string() + "'";
  ASSERT_EQ(RunVitrine("trending -k 2 --format json" + b, dir_), 0) << Slurp(dir_ / "cmd.err");
  const json out = json::parse(Slurp(dir_ / "cmd.out"));
  ASSERT_EQ(out.size(), 2u);
  std::set<int32_t> listed;
  for (const auto& row : out)
    listed.insert(*engine_->catalog().ids.Find(row["item_id"].get<std::string>()));
  EXPECT_EQ(listed, planted_);

  ASSERT_EQ(RunVitrine("trending --by brand -k 3" + b, dir_), 0) << Slurp(dir_ / "cmd.err");
  EXPECT_NE(Slurp(dir_ / "cmd.out").find("direction"), std::string::npos);
  EXPECT_EQ(RunVitrine("trending --window 2w" + b, dir_), 2);
  EXPECT_NE(Slurp(dir_ / "cmd.err").find("1h to 7d"), std::string::npos);
  EXPECT_EQ(RunVitrine("trending --at yesterday" + b, dir_), 2);
  EXPECT_EQ(RunVitrine("trending --by price" + b, dir_), 1);

  const fs::path html = dir_ / "trends.html", svg = dir_ / "trends.svg";
  ASSERT_EQ(RunVitrine("trends --report '" + html.string() + "'" + b, dir_), 0)
      << Slurp(dir_ / "cmd.err");
  const std::string page = Slurp(html);
  EXPECT_NE(page.find("<h2>category</h2>"), std::string::npos);
  EXPECT_NE(page.find("<h2>brand</h2>"), std::string::npos);
  EXPECT_NE(page.find("rising"), std::string::npos);
  ASSERT_EQ(RunVitrine("trends --columns category -k 0 --report '" + svg.string() + "'" + b, dir_),
            0)
      << Slurp(dir_ / "cmd.err");
  const std::string plot = Slurp(svg);
  EXPECT_EQ(plot.rfind("<svg", 0), 0u);
  // One point and one interval per category.
  const size_t categories = engine_->catalog().column("category")->dictionary.size();
  size_t points = 0, intervals = 0;
  for (size_t p = plot.find("class=\"ratio\""); p != std::string::npos;
       p = plot.find("class=\"ratio\"", p + 1)) {
    ++points;
  }
  for (size_t p = plot.find("class=\"interval\""); p != std::string::npos;
       p = plot.find("class=\"interval\"", p + 1)) {
    ++intervals;
  }
  EXPECT_EQ(points, categories);
  EXPECT_EQ(intervals, categories);
  // A failed report leaves the earlier file as it was.
  EXPECT_EQ(RunVitrine("trends --columns nope --report '" + svg.string() + "'" + b, dir_), 1);
  EXPECT_EQ(Slurp(svg), plot);
  EXPECT_EQ(RunVitrine("trends --report out.pdf" + b, dir_), 2);
}

TEST_F(PlantedTrend, OutOfRangeSumsAreRefusedAtOpenNamingTheFile) {
  const fs::path copy = dir_ / "copy";
  fs::copy(dir_ / "bundle", copy, fs::copy_options::recursive);
  auto sums = ReadNpyF32(copy / "trend" / "sums.npy");
  ASSERT_TRUE(sums.ok());
  sums->data[0] = 3e38f;  // finite, but sums of it are not
  fs::remove(copy / "trend" / "sums.npy");
  ASSERT_TRUE(WriteNpy(copy / "trend" / "sums.npy", *sums).ok());
  auto e = Engine::Open(copy);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("trend/sums.npy: row 0"), std::string::npos)
      << e.status().ToString();
}

TEST(TrendReport, EscapesEveryCatalogValue) {
  const fs::path dir =
      fs::temp_directory_path() / ("vitrine_trend_report_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Brands with markup, a U+FFFE (not an XML character) and a quote.
  const std::vector<std::string> brands = {"<b>&amp", "odd\xEF\xBF\xBEname", "Q\"uote"};
  std::string items = "item_id,title,brand,category\n",
              events = "user_id,item_id,event,timestamp\n";
  for (int i = 0; i < 30; ++i) {
    items += "I" + std::to_string(i) + ",t" + std::to_string(i) + ",\"" +
             (i % 3 == 2 ? std::string("Q\"\"uote") : brands[static_cast<size_t>(i % 3)]) + "\",c" +
             std::to_string(i % 2) + "\n";
    for (int u = 0; u < 4; ++u) {
      events += "U" + std::to_string(u) + ",I" + std::to_string(i) + ",view," +
                std::to_string(1'750'000'000 + 3600 * ((i * 7 + u * 13) % 300)) + "\n";
    }
  }
  WriteText(dir / "items.csv", items);
  WriteText(dir / "events.csv", events);
  ASSERT_EQ(RunVitrine("build -q --items '" + (dir / "items.csv").string() + "' --interactions '" +
                           (dir / "events.csv").string() +
                           "' --schema title:text,brand:categorical,category:categorical "
                           "--factors 4 --iterations 2 --ranker off --out '" +
                           (dir / "b").string() + "'",
                       dir),
            0)
      << Slurp(dir / "cmd.err");
  const std::string b = " --bundle '" + (dir / "b").string() + "'";
  ASSERT_EQ(RunVitrine("trends --window 7d -k 0 --columns 'brand, category,brand' --report '" +
                           (dir / "r.svg").string() + "'" + b,
                       dir),
            0)
      << Slurp(dir / "cmd.err");
  const std::string svg = Slurp(dir / "r.svg");
  EXPECT_NE(svg.find("&lt;b&gt;&amp;amp"), std::string::npos) << svg;
  EXPECT_NE(svg.find("Q&quot;uote"), std::string::npos);
  EXPECT_EQ(svg.find("\xEF\xBF\xBE"), std::string::npos);
  EXPECT_NE(svg.find("odd\xEF\xBF\xBDname"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  // Two columns (brand once), every value a point.
  size_t plots = 0;
  for (size_t p = svg.find("growth ratio, this window"); p != std::string::npos;
       p = svg.find("growth ratio, this window", p + 1)) {
    ++plots;
  }
  EXPECT_EQ(plots, 2u);
  // Usage errors: no columns, a missing directory, diversity on values.
  EXPECT_EQ(
      RunVitrine("trends --columns ' , ' --report '" + (dir / "x.svg").string() + "'" + b, dir), 2);
  EXPECT_EQ(RunVitrine("trends --report '" + (dir / "no" / "x.svg").string() + "'" + b, dir), 2);
  EXPECT_FALSE(fs::exists(dir / "no"));
  EXPECT_EQ(RunVitrine("trending --window 7d --by brand --diversity mmr" + b, dir), 2);
  fs::remove_all(dir);
}

TEST_F(PlantedTrend, ServerCountsLiveEvents) {
  ServerOptions o;
  o.bundle = dir_ / "bundle";
  o.threads = 2;
  vitrine::testing::TestServer server(o);
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  auto res = c.Get("/trending?k=2");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json j = json::parse(res->body);
  std::set<int32_t> listed;
  for (const auto& h : j["results"])
    listed.insert(*engine_->catalog().ids.Find(h["item"].get<std::string>()));
  EXPECT_EQ(listed, planted_);
  EXPECT_EQ(j["window"], "1d");

  // Live views of a quiet item within the last hour make it first.
  int32_t quiet = 0;
  while (planted_.count(quiet)) ++quiet;
  const int64_t until = j["until"];
  json batch = json::array();
  for (int n = 0; n < 500; ++n) {
    batch.push_back({{"user", "live" + std::to_string(n)},
                     {"item", engine_->catalog().ids.id(quiet)},
                     {"ts", until - 60}});
  }
  res = c.Post("/events", batch.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  res = c.Get("/trending?k=1");
  ASSERT_TRUE(res);
  j = json::parse(res->body);
  EXPECT_EQ(j["results"][0]["item"], engine_->catalog().ids.id(quiet)) << res->body;
  res = c.Get("/trending?by=category&k=3&window=7d");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["results"].size(), 3u);
  // A reload keeps the live events after the bundle's newest hour and drops
  // those up to it (a rebuild from the event log would hold them).
  batch = json::array();
  for (int n = 0; n < 50; ++n) {
    batch.push_back({{"user", "later" + std::to_string(n)},
                     {"item", engine_->catalog().ids.id(quiet + 1)},
                     {"ts", until + 600}});
  }
  res = c.Post("/events", batch.dump(), "application/json");
  ASSERT_TRUE(res && res->status == 200);
  res = c.Post("/reload", "{}", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  res = c.Get("/trending?k=1");
  ASSERT_TRUE(res);
  j = json::parse(res->body);
  EXPECT_EQ(j["until"], until + 3600);  // the live hour after the bundle's
  EXPECT_EQ(j["results"][0]["item"], engine_->catalog().ids.id(quiet + 1)) << res->body;
  EXPECT_EQ(j["results"][0]["current"], 50.0) << res->body;
  for (const char* bad : {"/trending?window=0h", "/trending?by=price", "/trending?at=x",
                          "/trending?k=0", "/trending?color=red"}) {
    res = c.Get(bad);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << bad << " " << res->body;
  }
}

}  // namespace
}  // namespace vitrine
