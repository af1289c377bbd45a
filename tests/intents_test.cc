// Intents (engine/intents.cc): recently viewed and buy-again answer with the
// person's own items, in the order recomputed here from the raw interactions
// file (latest event time; summed event weight), live events first, under
// the rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "engine/engine.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using vitrine::testing::MakeTestBundle;

struct Seen {
  double weight = 0;
  int64_t time = 0;
};

class IntentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("intents");
    auto e = Engine::Open(dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    // The oracle's input: the raw events, summed per (user, item) with the
    // default event weights, and the latest time of each pair.
    const auto events = ReadGeneratedEvents(fs::path(VITRINE_BINARY).parent_path() /
                                            "serve_test_bundle" / "data" / "interactions.csv");
    ASSERT_FALSE(events.empty());
    for (const GeneratedEvent& e : events) {
      Seen& s = raw_[e.user][e.item];
      s.weight += e.weight;
      s.time = std::max<int64_t>(s.time, e.time);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The user's kept items (net weight > 0) in the intent's order.
  std::vector<std::string> Expected(const std::string& user, Intent intent,
                                    const std::set<std::string>& categories) const {
    struct Row {
      std::string item;
      int32_t row;
      Seen s;
    };
    std::vector<Row> rows;
    const Column* cat = engine_->catalog().column("category");
    for (const auto& [item, s] : raw_.at(user)) {
      if (s.weight <= 0) continue;
      const int32_t row = *engine_->catalog().ids.Find(item);
      if (intent == Intent::kBuyAgain &&
          !categories.count(engine_->catalog().ValueString(*cat, row)))
        continue;
      rows.push_back({item, row, s});
    }
    auto newer = [](const Row& a, const Row& b) {
      return a.s.time != b.s.time ? a.s.time > b.s.time : a.row > b.row;
    };
    std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
      if (intent == Intent::kBuyAgain && a.s.weight != b.s.weight) return a.s.weight > b.s.weight;
      return newer(a, b);
    });
    std::vector<std::string> out;
    for (const Row& r : rows) out.push_back(r.item);
    return out;
  }
  std::vector<std::string> Ids(const std::vector<Hit>& hits) const {
    std::vector<std::string> out;
    for (const Hit& h : hits) out.push_back(engine_->catalog().ids.id(h.item));
    return out;
  }

  fs::path dir_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, std::map<std::string, Seen>> raw_;
};

TEST_F(IntentsTest, RecentlyViewedIsTheHistoryNewestFirst) {
  int checked = 0;
  for (int32_t u = 0; u < 40; ++u) {
    const std::string user = engine_->users().id(u);
    RecommendRequest r;
    r.user = user;
    r.intent = Intent::kRecentlyViewed;
    r.query.k = 1000;
    auto rec = engine_->Recommend(r);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ(Ids(rec->hits), Expected(user, Intent::kRecentlyViewed, {})) << user;
    checked += rec->hits.size() > 1 ? 1 : 0;
    for (const Hit& h : rec->hits) EXPECT_EQ(h.reason, "you viewed it recently");
  }
  EXPECT_GT(checked, 10);
}

TEST_F(IntentsTest, LiveEventsComeFirstAndReturnsLeave) {
  const std::string user = engine_->users().id(2);
  const auto stored = Expected(user, Intent::kRecentlyViewed, {});
  ASSERT_GE(stored.size(), 2u);
  const std::string a = engine_->catalog().ids.id(250), b = engine_->catalog().ids.id(251);
  RecommendRequest r;
  r.user = user;
  r.intent = Intent::kRecentlyViewed;
  r.query.k = 5;
  r.recent = {{a, 1.0f}, {b, 1.0f}, {stored[0], 10.0f}, {stored[0], -14.0f}};
  auto rec = engine_->Recommend(r);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  std::vector<std::string> want = {b, a};
  for (size_t i = 1; want.size() < 5 && i < stored.size(); ++i) {
    if (stored[i] != a && stored[i] != b) want.push_back(stored[i]);
  }
  EXPECT_EQ(Ids(rec->hits), want);
}

// A live event with a time sorts by that time among the stored ones.
TEST_F(IntentsTest, LiveEventsWithATimeSortByIt) {
  const std::string user = engine_->users().id(2);
  const auto stored = Expected(user, Intent::kRecentlyViewed, {});
  ASSERT_GE(stored.size(), 2u);
  const std::string old_item = engine_->catalog().ids.id(252);
  RecommendRequest r;
  r.user = user;
  r.intent = Intent::kRecentlyViewed;
  r.query.k = 1000;
  r.recent = {{old_item, 1.0f, Feedback::kTaste, 1000000000}};  // 2001: older than all stored
  auto rec = engine_->Recommend(r);
  ASSERT_TRUE(rec.ok());
  ASSERT_FALSE(rec->hits.empty());
  EXPECT_EQ(engine_->catalog().ids.id(rec->hits.back().item), old_item);
  EXPECT_EQ(engine_->catalog().ids.id(rec->hits.front().item), stored.front());
}

TEST_F(IntentsTest, BuyAgainListsReplenishableItemsMostBoughtFirstUnderTheRules) {
  const std::set<std::string> cats = {"tshirt", "dress", "shirt"};
  int nonempty = 0;
  for (int32_t u = 0; u < 60; ++u) {
    const std::string user = engine_->users().id(u);
    RecommendRequest r;
    r.user = user;
    r.intent = Intent::kBuyAgain;
    r.replenishable_categories.assign(cats.begin(), cats.end());
    r.query.k = 1000;
    auto rec = engine_->Recommend(r);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ(Ids(rec->hits), Expected(user, Intent::kBuyAgain, cats)) << user;
    nonempty += rec->hits.empty() ? 0 : 1;
    // The rules hold: excluding one category leaves the others in order.
    auto rules = RuleSet::Parse("EXCLUDE WHERE category = \"dress\"\n", "rules");
    ASSERT_TRUE(rules.ok());
    ASSERT_TRUE(rules->Bind(engine_->catalog()).ok());
    r.query.rules = &*rules;
    auto ruled = engine_->Recommend(r);
    ASSERT_TRUE(ruled.ok());
    EXPECT_EQ(Ids(ruled->hits), Expected(user, Intent::kBuyAgain, {"tshirt", "shirt"})) << user;
  }
  EXPECT_GT(nonempty, 10);
}

TEST_F(IntentsTest, BadIntentsAreRefusedWithAReason) {
  RecommendRequest r;
  r.user = engine_->users().id(0);
  r.intent = Intent::kBuyAgain;  // the test catalog has no 'replenishable' column
  auto rec = engine_->Recommend(r);
  EXPECT_NE(rec.status().message().find("buy-again needs replenishable items"), std::string::npos)
      << rec.status().ToString();
  r.replenishable_categories = {"spaceship"};
  rec = engine_->Recommend(r);
  EXPECT_NE(rec.status().message().find("no item has category = 'spaceship'"), std::string::npos);
  EXPECT_FALSE(ParseIntent("next-best").ok());
  EXPECT_EQ(*ParseIntent("recently-viewed"), Intent::kRecentlyViewed);
  // An unknown user has no items of their own: an empty answer, not popular items.
  r.user = "nobody";
  r.intent = Intent::kRecentlyViewed;
  rec = engine_->Recommend(r);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->hits.empty());
  EXPECT_FALSE(rec->fallback);
}

}  // namespace
}  // namespace vitrine
