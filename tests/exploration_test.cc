// Exploration (QueryParams::exploration): the share of new and cold items in
// a recommendation matches the setting, the items chosen are the best of
// them by the hybrid score (brute force over the catalog), and rules' filters,
// caps and pins still hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/engine.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using vitrine::testing::MakeTestBundle;

class ExplorationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("exploration");
    auto e = Engine::Open(dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    explore_ = engine_->ExplorationItems(30);
    ASSERT_GE(explore_.cardinality(), 20u) << "the test bundle needs new or cold items";
    ASSERT_LT(explore_.cardinality(), 250u);
  }
  void TearDown() override { fs::remove_all(dir_); }
  int Explored(const std::vector<Hit>& hits) const {
    int n = 0;
    for (const Hit& h : hits) n += explore_.contains(static_cast<uint32_t>(h.item)) ? 1 : 0;
    return n;
  }
  fs::path dir_;
  std::unique_ptr<Engine> engine_;
  Bitmap explore_;
};

TEST_F(ExplorationTest, TheShareOfNewAndColdItemsMatchesTheSetting) {
  for (int32_t user = 0; user < 30; ++user) {
    RecommendRequest r;
    r.user = engine_->users().id(user);
    r.query.k = 10;
    auto plain = engine_->Recommend(r);
    ASSERT_TRUE(plain.ok());
    const int natural = Explored(plain->hits);
    for (float w : {0.1f, 0.3f, 0.5f, 1.0f}) {
      for (bool ranker : {true, false}) {
        RecommendRequest x = r;
        x.query.exploration = w;
        x.query.use_ranker = ranker;
        auto rec = engine_->Recommend(x);
        ASSERT_TRUE(rec.ok()) << rec.status().ToString();
        ASSERT_EQ(rec->hits.size(), 10u);
        const int want = static_cast<int>(std::lround(w * 10));
        auto base = r;
        base.query.use_ranker = ranker;
        const int nat = Explored(engine_->Recommend(base)->hits);
        EXPECT_EQ(Explored(rec->hits), std::max(want, nat)) << "user " << user << " w " << w;
        std::set<int32_t> seen;
        for (const Hit& h : rec->hits) EXPECT_TRUE(seen.insert(h.item).second) << "duplicate";
      }
    }
    (void)natural;
  }
}

TEST_F(ExplorationTest, PicksAreTheBestExplorationItemsByTheHybridScore) {
  for (int32_t user = 0; user < 20; ++user) {
    RecommendRequest r;
    r.user = engine_->users().id(user);
    r.query.k = 10;
    r.query.use_ranker = false;
    auto plain = engine_->Recommend(r);
    ASSERT_TRUE(plain.ok());
    r.query.exploration = 0.3f;
    auto rec = engine_->Recommend(r);
    ASSERT_TRUE(rec.ok());
    // The oracle: every exploration item's hybrid score (the whole catalog
    // ranked by the plain request), best first, minus the history and the
    // items the plain answer already lists.
    RecommendRequest all = r;
    all.query.exploration = 0;
    all.query.k = engine_->catalog().size();
    auto everything = engine_->Recommend(all);
    ASSERT_TRUE(everything.ok());
    std::set<int32_t> listed;
    for (const Hit& h : plain->hits) listed.insert(h.item);
    std::vector<int32_t> best;
    for (const Hit& h : everything->hits) {
      if (explore_.contains(static_cast<uint32_t>(h.item)) && !listed.count(h.item))
        best.push_back(h.item);
    }
    const int need = 3 - Explored(plain->hits);
    std::set<int32_t> picks;
    for (const Hit& h : rec->hits) {
      if (!listed.count(h.item)) picks.insert(h.item);
    }
    ASSERT_EQ(static_cast<int>(picks.size()), std::max(need, 0));
    for (int i = 0; i < std::max(need, 0); ++i) {
      EXPECT_TRUE(picks.count(best[static_cast<size_t>(i)])) << "user " << user << " pick " << i;
    }
    // The plain list's order is kept for the items that stay.
    std::vector<int32_t> kept_order;
    for (const Hit& h : rec->hits)
      if (listed.count(h.item)) kept_order.push_back(h.item);
    std::vector<int32_t> plain_order;
    for (const Hit& h : plain->hits)
      if (std::count(kept_order.begin(), kept_order.end(), h.item)) plain_order.push_back(h.item);
    EXPECT_EQ(kept_order, plain_order);
  }
}

TEST_F(ExplorationTest, RulesStillHoldWithExploration) {
  const Catalog& cat = engine_->catalog();
  const Column* brand = cat.column("brand");
  int32_t pin_row = 0;  // an item the price filter keeps
  while (cat.column("price")->numbers[static_cast<size_t>(pin_row)] > 600) ++pin_row;
  const std::string pinned = cat.ids.id(pin_row);
  auto rules = RuleSet::Parse("CAP 1 PER brand\nPIN \"" + pinned + "\" AT 2\nINCLUDE WHERE price <= 600\n",
                              "rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_TRUE(rules->Bind(cat).ok());
  int pins_seen = 0;
  for (int32_t user = 0; user < 20; ++user) {
    RecommendRequest r;
    r.user = engine_->users().id(user);
    r.query.k = 8;
    r.query.rules = &*rules;
    r.query.exploration = 0.5f;
    auto rec = engine_->Recommend(r);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    std::set<std::string> brands;
    for (size_t i = 0; i < rec->hits.size(); ++i) {
      const Hit& h = rec->hits[i];
      EXPECT_TRUE(brands.insert(cat.ValueString(*brand, h.item)).second) << "cap broken";
      EXPECT_LE(cat.column("price")->numbers[static_cast<size_t>(h.item)], 600.0);
      if (h.pinned) EXPECT_EQ(i, 1u) << "the pin moved";
      pins_seen += h.pinned ? 1 : 0;
    }
  }
  EXPECT_GT(pins_seen, 10);
}

// Pins keep their slots and never push the answer past k.
TEST_F(ExplorationTest, PinsAndExplorationNeverExceedK) {
  const Catalog& cat = engine_->catalog();
  auto rules = RuleSet::Parse("PIN \"" + cat.ids.id(1) + "\" AT 1\nPIN \"" + cat.ids.id(2) +
                                  "\" AT 3\nCAP 1 PER brand\n",
                              "rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_TRUE(rules->Bind(cat).ok());
  for (int k : {1, 2, 3, 5, 10}) {
    for (float w : {0.5f, 1.0f}) {
      RecommendRequest r;
      r.user = engine_->users().id(7);
      r.query.k = k;
      r.query.rules = &*rules;
      r.query.exploration = w;
      auto rec = engine_->Recommend(r);
      ASSERT_TRUE(rec.ok()) << rec.status().ToString();
      EXPECT_LE(static_cast<int>(rec->hits.size()), k) << "k " << k << " w " << w;
    }
  }
}

TEST_F(ExplorationTest, TheAgeCutoffAndBadSettings) {
  // Cutoff 0 days: only cold items and items arriving at the reference time.
  const Bitmap only_cold = engine_->ExplorationItems(0);
  EXPECT_LE(only_cold.cardinality(), explore_.cardinality());
  for (int32_t i = 0; i < engine_->catalog().size(); ++i) {
    if (engine_->is_cold(i)) EXPECT_TRUE(only_cold.contains(static_cast<uint32_t>(i)));
  }
  RecommendRequest r;
  r.user = engine_->users().id(0);
  r.query.exploration = 1.5f;
  EXPECT_EQ(engine_->Recommend(r).status().code(), Status::Code::kInvalidArgument);
  r.query.exploration = 0.2f;
  r.query.explore_max_age_days = -1;
  EXPECT_EQ(engine_->Recommend(r).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace vitrine
