// The new-arrival prior ("new" block): newness against hand-computed values,
// its errors, and its effect on queries end to end (a Flat index, so the
// oracle is exact: scores are sum_b w_b cos_b + w_new * newness).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/catalog.h"
#include "core/interactions.h"
#include "engine/builder.h"
#include "engine/catalog_update.h"
#include "engine/engine.h"
#include "sample/generator.h"
#include "tests/scratch_dir.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

fs::path Write(const std::string& name, const std::string& text) {
  const fs::path p = ScratchDir() / name;
  WriteText(p, text);
  return p;
}

Catalog ReadCatalog(const std::string& name, const std::string& csv) {
  auto c = Catalog::ReadCsv(Write(name, csv), {});
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(*c);
}

constexpr double kDay = 86400;

TEST(RecencyTest, NewnessFromAColumnHalvesEveryHalfLife) {
  // Reference = the newest arrival (d); a is 60 days older, b 15, c has no date.
  const Catalog c = ReadCatalog("dated.csv",
                                "item_id,launched\n"
                                "a,2026-09-01\n"
                                "b,2026-10-16\n"
                                "c,\n"
                                "d,2026-10-31\n");
  nlohmann::json info;
  BuildOptions::Recency r{.column = "launched", .half_life_days = 30};
  auto n = ComputeNewness(r, c, nullptr, &info);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(n->size(), 4u);
  EXPECT_NEAR((*n)[0], 0.25, 1e-6);                // 60 days = two half-lives
  EXPECT_NEAR((*n)[1], std::pow(0.5, 0.5), 1e-6);  // 15 days
  EXPECT_EQ((*n)[2], 0.0f);                        // undated: not new
  EXPECT_EQ((*n)[3], 1.0f);                        // the newest
  EXPECT_EQ(info["source"], "column launched");
  int64_t ref = 0;
  ASSERT_TRUE(ParseTimestamp("2026-10-31", &ref));
  EXPECT_EQ(info["reference_time"].get<int64_t>(), ref);

  // Dates read as free text (forced here with a schema) give the same values.
  CatalogReadOptions text_opts;
  text_opts.schema = *Schema::Parse("launched:text");
  auto as_text = Catalog::ReadCsv(ScratchDir() / "dated.csv", text_opts);
  ASSERT_TRUE(as_text.ok()) << as_text.status().ToString();
  auto t = ComputeNewness(r, *as_text, nullptr, &info);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, *n);

  // Unix seconds in a numeric column give the same values.
  const Catalog s = ReadCatalog("unix.csv",
                                "item_id,launched\n"
                                "a,0\n"
                                "b,864000\n");  // 10 days later
  auto m = ComputeNewness({.column = "launched", .half_life_days = 10}, s, nullptr, &info);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_NEAR((*m)[0], 0.5, 1e-6);
  EXPECT_EQ((*m)[1], 1.0f);
}

TEST(RecencyTest, NewnessFromFirstInteractions) {
  const Catalog c = ReadCatalog("items.csv", "item_id,brand\na,x\nb,y\nc,z\n");
  // a first seen on day 0 (u2's later view of a does not move that), b on
  // day 20; c never: a new arrival.
  const fs::path events = Write("events.csv",
                                "user_id,item_id,event,timestamp\n"
                                "u1,a,view,1700000000\n"
                                "u2,a,view,1701728000\n"
                                "u2,b,view,1701728000\n"
                                "u3,b,purchase,1701728000\n");
  auto inter = Interactions::ReadCsv(events, c.ids, {});
  ASSERT_TRUE(inter.ok()) << inter.status().ToString();
  nlohmann::json info;
  auto n = ComputeNewness({.column = "", .half_life_days = 10}, c, &*inter, &info);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_NEAR((*n)[0], 0.25, 1e-6);  // 20 days before the newest arrival
  EXPECT_EQ((*n)[1], 1.0f);
  EXPECT_EQ((*n)[2], 1.0f);
  EXPECT_EQ(info["source"], "first interaction");

  // No timestamps and no column: no arrival information, no block.
  const fs::path plain = Write("plain.csv", "user_id,item_id\nu1,a\n");
  auto untimed = Interactions::ReadCsv(plain, c.ids, {});
  ASSERT_TRUE(untimed.ok());
  auto none = ComputeNewness({}, c, &*untimed, &info);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(RecencyTest, BadColumnsAndHalfLivesAreClearErrors) {
  const Catalog c = ReadCatalog("bad.csv",
                                "item_id,launched,tags\n"
                                "a,2026-09-01,x\n"
                                "b,soon,y\n");
  nlohmann::json info;
  auto e = ComputeNewness({.column = "launched"}, c, nullptr, &info);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("'soon' is not a date"), std::string::npos)
      << e.status().message();
  e = ComputeNewness({.column = "nope"}, c, nullptr, &info);
  EXPECT_NE(e.status().message().find("no column 'nope'"), std::string::npos);
  e = ComputeNewness({.column = "", .half_life_days = 0}, c, nullptr, &info);
  EXPECT_NE(e.status().message().find("half_life_days"), std::string::npos);
}

// A built bundle carries the block; a heavy "new" weight ranks the newest
// unseen items first (oracle: the exact scores over every allowed item), the
// reason says so, and items added later arrive with newness 1.
TEST(RecencyTest, EndToEndRankingAndAddedItems) {
  GeneratorOptions g;
  g.num_items = 400;
  g.num_users = 300;
  g.seed = 5;
  ASSERT_TRUE(GenerateSampleData(g, ScratchDir() / "data").ok());
  BuildOptions o;
  o.ranker.enabled = false;  // not under test here; the ranker has its own tests
  o.items = ScratchDir() / "data" / "items.csv";
  o.interactions = ScratchDir() / "data" / "interactions.csv";
  o.als.factors = 8;
  o.als.iterations = 3;
  o.als.compute_loss = false;
  o.content.dim = 8;
  o.index.spec = "Flat";
  o.recency.half_life_days = 20;
  const fs::path bundle = ScratchDir() / "bundle";
  auto built = BuildBundle(o, bundle);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  auto opened = Engine::Open(bundle);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const Engine& e = **opened;
  const BlockLayout* nb = nullptr;
  for (const auto& b : e.layout()) {
    if (b.name == "new") nb = &b;
  }
  ASSERT_NE(nb, nullptr) << "no 'new' block";
  ASSERT_EQ(nb->dim, 1u);
  auto newness = [&](int32_t i) { return e.vectors().at(static_cast<size_t>(i), nb->offset); };
  // The stored segment is ComputeNewness over the same inputs.
  auto inter = Interactions::ReadCsv(o.interactions, e.catalog().ids, {});
  ASSERT_TRUE(inter.ok());
  nlohmann::json info;
  auto want = ComputeNewness(o.recency, e.catalog(), &*inter, &info);
  ASSERT_TRUE(want.ok());
  for (int32_t i = 0; i < e.catalog().size(); ++i) ASSERT_FLOAT_EQ(newness(i), (*want)[i]) << i;
  EXPECT_EQ(e.bundle().manifest()["recency"]["half_life_days"].get<double>(), 20.0);

  // Recommend with new=50: the exact top-10 by the fused score.
  const std::string user = e.users().id(7);
  RecommendRequest r;
  r.user = user;
  r.query.k = 10;
  r.query.weights = {{"new", 50.0f}};
  auto rec = e.Recommend(r);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  const std::vector<Hit>* hits = &rec->hits;
  ASSERT_EQ(hits->size(), 10u);
  const auto seen = e.UserHistory(7);
  std::vector<float> items_newness;
  for (int32_t i = 0; i < e.catalog().size(); ++i) {
    if (std::find(seen.begin(), seen.end(), i) == seen.end()) items_newness.push_back(newness(i));
  }
  std::sort(items_newness.rbegin(), items_newness.rend());
  // Other blocks add at most sum of their default weights (|cos| <= 1 each;
  // the cf segment is a unit direction against rows of ALS norm <= ~1).
  float others = 0;
  for (const auto& b : e.layout()) {
    if (b.name != "new") others += std::abs(b.weight) * 2;
  }
  for (const Hit& h : *hits) {
    EXPECT_GE(50.0f * newness(h.item), 50.0f * items_newness[9] - others) << h.item;
    EXPECT_EQ(std::find(seen.begin(), seen.end(), h.item), seen.end()) << "seen item returned";
  }
  // The explanation's component for the block is the newness itself.
  const size_t new_index = static_cast<size_t>(nb - e.layout().data());
  for (const Hit& h : *hits) EXPECT_EQ(h.block_cos[new_index], newness(h.item)) << h.item;

  // Similar items with new=50: the reason is the new arrival.
  QueryParams q;
  q.k = 5;
  q.weights = {{"new", 50.0f}};
  auto sim = e.Similar(e.catalog().ids.id(3), q);
  ASSERT_TRUE(sim.ok());
  for (const Hit& h : *sim) EXPECT_EQ(h.reason.rfind("new arrival", 0), 0u) << h.reason;

  // Items added later arrive now: newness 1.
  std::ifstream in(o.items);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  const fs::path added = Write("added.csv", header + "\nNEW" + row + "\n");
  AddItemsOptions ao;
  ao.items = added;
  auto s = AddItems(bundle, ao);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto after = Engine::Open(bundle);
  ASSERT_TRUE(after.ok());
  const int32_t n = (*after)->catalog().size() - 1;
  EXPECT_EQ((*after)->vectors().at(static_cast<size_t>(n), nb->offset), 1.0f);
}

}  // namespace
}  // namespace vitrine
