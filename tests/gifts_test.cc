// Gifts (Intent::kGift): gift rows are kept out of the buyer's own profile
// (the bundle's histories and ALS factors are byte-identical to a build
// without them), a planted gift pattern comes first, the rules hold, and a
// recipient's taste adds the hybrid score documented in docs/retail.md.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "embed/fusion.h"
#include "engine/engine.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using vitrine::testing::RunVitrine;
using vitrine::testing::Slurp;

class GiftsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("vitrine_gifts_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    const fs::path& d = *dir_;
    ASSERT_EQ(
        RunVitrine(
            "generate --items 300 --users 200 --seed 7 --out '" + (d / "data").string() + "'", d),
        0)
        << Slurp(d / "cmd.err");
    // The same events with a gift column, plus planted gifts: 40 givers buy
    // I000010 (20 times), I000020 (12) and I000030 (6) as gifts, half marked
    // by the column and half by the gift_purchase event.
    const std::string plain = Slurp(d / "data" / "interactions.csv");
    std::string with = "user_id,item_id,event,timestamp,gift\n";
    for (const std::string& line : Lines(plain.substr(plain.find('\n') + 1))) {
      with += line + ",\n";
    }
    int row = 0;
    for (const auto& [item, n] : {std::pair{"I000010", 20}, {"I000020", 12}, {"I000030", 6}}) {
      for (int g = 0; g < n; ++g, ++row) {
        const std::string user = "U0000" + std::to_string(1000 + row % 40).substr(1);
        with += user + "," + item +
                (row % 2 ? ",purchase,1760000000,true\n" : ",gift_purchase,1760000000,\n");
      }
    }
    std::ofstream(d / "with_gifts.csv") << with;
    const std::string common = "build --items '" + (d / "data" / "items.csv").string() +
                               "' --factors 8 --iterations 3 --ranker off "
                               "--seed 7 --threads 1 --index Flat";
    ASSERT_EQ(RunVitrine(common + " --interactions '" + (d / "data" / "interactions.csv").string() +
                             "' --out '" + (d / "plain").string() + "'",
                         d),
              0)
        << Slurp(d / "cmd.err");
    ASSERT_EQ(RunVitrine(common + " --interactions '" + (d / "with_gifts.csv").string() +
                             "' --out '" + (d / "gifts").string() + "'",
                         d),
              0)
        << Slurp(d / "cmd.err");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::unique_ptr<Engine> Open(const std::string& name) {
    auto e = Engine::Open(*dir_ / name);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(*e) : nullptr;
  }
  static fs::path* dir_;
};
fs::path* GiftsTest::dir_ = nullptr;

TEST_F(GiftsTest, GiftRowsLeaveTheBuyersOwnProfileUnchanged) {
  for (const char* f : {"history/indptr.npy", "history/indices.npy", "history/weights.npy",
                        "cf/item_factors.npy", "cf/user_factors.npy", "user_ids.txt"}) {
    EXPECT_EQ(Slurp(*dir_ / "plain" / f), Slurp(*dir_ / "gifts" / f)) << f;
  }
  EXPECT_FALSE(fs::exists(*dir_ / "plain" / "gifts.npy"));
  EXPECT_TRUE(fs::exists(*dir_ / "gifts" / "gifts.npy"));
}

TEST_F(GiftsTest, ThePlantedGiftPatternComesFirstUnderTheRules) {
  auto e = Open("gifts");
  ASSERT_NE(e, nullptr);
  RecommendRequest r;  // nobody: popular gifts
  r.intent = Intent::kGift;
  r.query.k = 3;
  auto rec = e->Recommend(r);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  std::vector<std::string> got;
  for (const Hit& h : rec->hits) got.push_back(e->catalog().ids.id(h.item));
  EXPECT_EQ(got, (std::vector<std::string>{"I000010", "I000020", "I000030"}));
  EXPECT_EQ(rec->source, "gifts");
  EXPECT_EQ(rec->hits[0].reason, "often bought as a gift");
  // A price band and a brand exclusion hold.
  const Catalog& cat = e->catalog();
  const int32_t top = *cat.ids.Find("I000010");
  auto rules =
      RuleSet::Parse("EXCLUDE WHERE brand = \"" + cat.ValueString(*cat.column("brand"), top) +
                         "\"\nINCLUDE WHERE price <= $MAX_PRICE\n",
                     "rules");
  ASSERT_TRUE(rules.ok());
  ASSERT_TRUE(rules->Bind(cat).ok());
  r.query.rules = &*rules;
  r.query.context.params["MAX_PRICE"] = "2000";
  r.query.k = 10;
  rec = e->Recommend(r);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  for (const Hit& h : rec->hits) {
    EXPECT_NE(h.item, top);
    EXPECT_LE(cat.column("price")->numbers[static_cast<size_t>(h.item)], 2000.0);
  }
}

TEST_F(GiftsTest, ARecipientsTasteAddsTheHybridScore) {
  auto e = Open("gifts");
  ASSERT_NE(e, nullptr);
  RecommendRequest r;
  r.intent = Intent::kGift;
  r.user = e->users().id(3);  // the recipient
  r.query.k = 20;
  auto rec = e->Recommend(r);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->source, "gifts+user");
  // The oracle: gift prior log(1 + g) / log(1 + max g) plus the recipient's
  // scaled query (priors left out) dotted with the item.
  const auto& layout = e->layout();
  auto q = e->HistoryVector(e->UserHistory(3), e->UserHistoryWeights(3));
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(ScaleQuery(layout, {}, q->data()).ok());
  for (const auto& b : layout) {
    if (IsPriorBlock(b.name)) std::fill_n(q->data() + b.offset, b.dim, 0.0f);
  }
  const std::map<std::string, double> gifts = {{"I000010", 200}, {"I000020", 120}, {"I000030", 60}};
  const auto history = e->UserHistory(3);
  ASSERT_FALSE(rec->hits.empty());
  for (const Hit& h : rec->hits) {
    const std::string id = e->catalog().ids.id(h.item);
    ASSERT_TRUE(gifts.count(id)) << id << " was never bought as a gift";
    EXPECT_EQ(std::count(history.begin(), history.end(), h.item), 0);
    double s = std::log1p(gifts.at(id)) / std::log1p(200.0);
    const float* v = e->vectors().row(static_cast<size_t>(h.item));
    for (size_t j = 0; j < q->size(); ++j) s += double((*q)[j]) * v[j];
    EXPECT_NEAR(h.score, s, 1e-4) << id;
  }
}

TEST_F(GiftsTest, ABundleWithoutGiftsSaysSo) {
  auto e = Open("plain");
  ASSERT_NE(e, nullptr);
  RecommendRequest r;
  r.intent = Intent::kGift;
  auto rec = e->Recommend(r);
  EXPECT_EQ(rec.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(rec.status().message().find("the bundle knows no gifts"), std::string::npos);
  // The CLI takes --intent gift without a recipient.
  ASSERT_EQ(RunVitrine("recommend --bundle '" + (*dir_ / "gifts").string() +
                           "' --intent gift -k 2 --format csv",
                       *dir_),
            0)
      << Slurp(*dir_ / "cmd.err");
  EXPECT_NE(Slurp(*dir_ / "cmd.out").find("I000010"), std::string::npos);
}

// `vitrine generate --gift-share` plants gift purchases of a few items
// (truth.json "gift_items"): a gift request without a recipient finds them,
// and they are in no buyer's history.
TEST(GeneratedGifts, PlantedGiftItemsAreTheGifts) {
  const fs::path dir = vitrine::testing::CachedTestBundle("generated_gifts", "gift_test_bundle",
                                                          "--gift-share 0.5", "--ranker off", "");
  const nlohmann::json truth = nlohmann::json::parse(Slurp(dir / "data" / "truth.json"));
  std::set<std::string> planted;
  for (int i : truth["gift_items"]) {
    char id[16];
    std::snprintf(id, sizeof id, "I%06d", i);
    planted.insert(id);
  }
  ASSERT_EQ(planted.size(), 5u);  // max(5, 300 / 100)
  auto e = Engine::Open(dir / "bundle");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  RecommendRequest r;
  r.intent = Intent::kGift;
  r.query.k = 5;
  auto rec = (*e)->Recommend(r);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_EQ(rec->hits.size(), 5u);
  for (const Hit& h : rec->hits) EXPECT_TRUE(planted.count((*e)->catalog().ids.id(h.item)));
  // Gift rows never reach the buyer's history: an item a user only bought
  // as a gift is not in their history.
  std::map<std::string, std::set<std::string>> own, gifted;
  for (const GeneratedEvent& ev : ReadGeneratedEvents(dir / "data" / "interactions.csv")) {
    (ev.event == "gift_purchase" ? gifted : own)[ev.user].insert(ev.item);
  }
  int checked = 0;
  for (const auto& [user, items] : gifted) {
    auto u = (*e)->users().Find(user);
    if (!u) continue;  // a user with only gift rows has no history at all
    const std::vector<int32_t> history = (*e)->UserHistory(*u);
    for (const std::string& item : items) {
      if (own[user].count(item)) continue;
      const int32_t row = *(*e)->catalog().ids.Find(item);
      EXPECT_EQ(std::count(history.begin(), history.end(), row), 0) << user << " " << item;
      ++checked;
    }
  }
  EXPECT_GT(checked, 10);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
