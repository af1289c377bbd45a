// The learned ranker inside the engine (engine/ranked_search.cc,
// engine/ranker_training.h): the build trains it, the merged candidate pool
// keeps every rule, its answers come from the pool, a corrupt ranker file is
// refused, and the same seed trains the same model.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <limits>
#include <set>

#include "core/array_io.h"
#include "core/file_util.h"
#include "engine/engine.h"
#include "engine/ranker_training.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using vitrine::testing::MakeTestBundle;
using vitrine::testing::RunVitrine;
using vitrine::testing::Slurp;

class EngineRankerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("engine_ranker");
    auto e = Engine::Open(dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A copy of the test bundle named `name`, its manifest edited by `edit`.
  fs::path CopyBundle(const std::string& name, const std::function<void(json&)>& edit = {}) {
    const fs::path copy = dir_ / name;
    fs::copy(dir_ / "bundle", copy, fs::copy_options::recursive);
    if (edit) {
      json m = json::parse(Slurp(copy / "manifest.json"));
      edit(m);
      std::ofstream(copy / "manifest.json") << m.dump(2);
    }
    return copy;
  }
  // Replaces bundle file `file` of `copy` with `bytes` and keeps the
  // container's checksum right, so the file's own reader is what refuses it.
  static void ReplaceKeepingChecksum(const fs::path& copy, const std::string& file,
                                     const std::string& bytes) {
    fs::remove(copy / file);
    std::ofstream(copy / file, std::ios::binary) << bytes;
    json m = json::parse(Slurp(copy / "manifest.json"));
    m["files"][file]["xxh64"] = Hex64(Xxh64(bytes));
    std::ofstream(copy / "manifest.json") << m.dump(2);
  }
  fs::path dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineRankerTest, TheBuildTrainsARankerAndRecommendationsComeFromThePool) {
  ASSERT_NE(engine_->ranker(), nullptr) << "the test bundle should be large enough to train one";
  ASSERT_NE(engine_->item_neighbors(), nullptr);
  ASSERT_NE(engine_->taste_mixture(), nullptr);
  EXPECT_EQ(engine_->taste_mixture()->num_items(), engine_->catalog().size());
  EXPECT_EQ(engine_->ranker()->feature_names(), kRankerFeatures);
  EXPECT_GT(engine_->manifest().ranker.value("training_users", 0), 0);
  // MakeTestBundle forces the scorer ([ranker] scorer = "ranker"), so that
  // every build flavour answers these tests with the ranker.
  EXPECT_EQ(engine_->manifest().ranker.value("scorer", ""), "ranker");
  for (int32_t u = 0; u < 20; ++u) {
    RecommendRequest r;
    r.user = engine_->users().id(u);
    r.query.k = 10;
    auto rec = engine_->Recommend(r);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    const std::vector<int32_t> history = engine_->UserHistory(u);
    auto pool = engine_->Candidates(history, engine_->UserHistoryWeights(u), r.query, history);
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    const std::set<int32_t> in_pool(pool->items.begin(), pool->items.end());
    ASSERT_EQ(pool->features.size(), pool->items.size() * kRankerFeatures.size());
    for (const Hit& h : rec->hits) {
      EXPECT_TRUE(in_pool.count(h.item)) << "user " << u << " item " << h.item;
      EXPECT_TRUE(std::find(history.begin(), history.end(), h.item) == history.end());
    }
    // Ranked answers are in the ranker's order.
    for (size_t i = 1; i < rec->hits.size(); ++i) {
      EXPECT_GE(rec->hits[i - 1].score, rec->hits[i].score);
    }
  }
}

// k and pool are any int from the CLI and Python: past the catalog they
// mean "every item", and must not size a buffer or overflow (2^31 - 1 once
// aborted with bad_alloc and spun for minutes). Oracle: the catalog size
// and the answer for k = catalog size.
TEST_F(EngineRankerTest, AHugeKOrPoolMeansEveryItem) {
  const int n = engine_->catalog().size();
  const std::string user = engine_->users().id(0);
  for (bool ranker : {true, false}) {
    RecommendRequest huge;
    huge.user = user;
    huge.query.k = std::numeric_limits<int>::max();
    huge.query.pool = std::numeric_limits<int>::max();
    huge.query.use_ranker = ranker;
    huge.query.diversity = Diversity::kMMR;
    auto a = engine_->Recommend(huge);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    RecommendRequest all = huge;
    all.query.k = n;
    all.query.pool = n;
    auto b = engine_->Recommend(all);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_EQ(a->hits.size(), b->hits.size());
    EXPECT_LE(static_cast<int>(a->hits.size()), n);
    for (size_t i = 0; i < a->hits.size(); ++i) EXPECT_EQ(a->hits[i].item, b->hits[i].item);
  }
  QueryParams q;
  q.k = std::numeric_limits<int>::max();
  auto similar = engine_->Similar(engine_->catalog().ids.id(0), q);
  ASSERT_TRUE(similar.ok()) << similar.status().ToString();
  QueryParams q_all;
  q_all.k = n;
  auto similar_all = engine_->Similar(engine_->catalog().ids.id(0), q_all);
  ASSERT_TRUE(similar_all.ok());
  ASSERT_EQ(similar->size(), similar_all->size());
  EXPECT_LE(static_cast<int>(similar->size()), n - 1);  // never the item itself
  auto popular = engine_->Popular(q);
  ASSERT_TRUE(popular.ok());
  EXPECT_EQ(static_cast<int>(popular->size()), n);
  QueryParams reranked;
  reranked.k = std::numeric_limits<int>::max();
  reranked.diversity = Diversity::kMMR;
  EXPECT_EQ(CandidatePoolSize(reranked), std::numeric_limits<int>::max());  // no overflow
}

// Oracle: the rules' bitmap computed on its own, and the cap counted by hand.
TEST_F(EngineRankerTest, CandidateMergingKeepsEveryRule) {
  ASSERT_NE(engine_->ranker(), nullptr);
  const Catalog& cat = engine_->catalog();
  const Column* brand = cat.column("brand");
  ASSERT_NE(brand, nullptr);
  // Exclude the brand of the most popular item: every source would bring it.
  int32_t top = 0;
  for (int32_t i = 0; i < cat.size(); ++i) {
    if (engine_->popularity(i) > engine_->popularity(top)) top = i;
  }
  const std::string banned = cat.ValueString(*brand, top);
  auto rules = RuleSet::Parse("EXCLUDE WHERE brand = \"" + banned +
                                  "\"\nINCLUDE WHERE price <= $MAX\nCAP 1 PER brand\n",
                              "rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_TRUE(rules->Bind(cat).ok());
  QueryParams q;
  q.k = 8;
  q.rules = &*rules;
  q.context.params["MAX"] = "400";
  auto allowed = rules->AllowedItems(engine_->attributes(), q.context);
  ASSERT_TRUE(allowed.ok());
  const Column* price = cat.column("price");
  for (int32_t u = 0; u < 30; ++u) {
    const std::vector<int32_t> history = engine_->UserHistory(u);
    auto pool = engine_->Candidates(history, engine_->UserHistoryWeights(u), q, history);
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    for (int32_t c : pool->items) {
      EXPECT_TRUE(allowed->contains(static_cast<uint32_t>(c))) << "pool item " << c;
      EXPECT_NE(cat.ValueString(*brand, c), banned);
      EXPECT_LE(price->numbers[static_cast<size_t>(c)], 400.0);
    }
    RecommendRequest r;
    r.user = engine_->users().id(u);
    r.query = q;
    auto rec = engine_->Recommend(r);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    std::set<std::string> brands;
    for (const Hit& h : rec->hits) {
      EXPECT_TRUE(allowed->contains(static_cast<uint32_t>(h.item)));
      EXPECT_TRUE(brands.insert(cat.ValueString(*brand, h.item)).second) << "CAP 1 PER brand";
    }
  }
}

TEST_F(EngineRankerTest, ExplainNamesTheRankerFeatures) {
  ASSERT_NE(engine_->ranker(), nullptr);
  RecommendRequest r;
  r.user = engine_->users().id(3);
  r.query.k = 5;
  r.query.explain = true;
  auto rec = engine_->Recommend(r);
  ASSERT_TRUE(rec.ok());
  ASSERT_FALSE(rec->hits.empty());
  for (const Hit& h : rec->hits) {
    ASSERT_FALSE(h.ranker_features.empty());
    EXPECT_NE(std::find(kRankerFeatures.begin(), kRankerFeatures.end(), h.ranker_features[0].name),
              kRankerFeatures.end());
    EXPECT_NE(h.reason.find("ranked on " + h.ranker_features[0].name), std::string::npos)
        << h.reason;
  }
}

TEST_F(EngineRankerTest, ACorruptRankerFileIsRefusedNamingIt) {
  const fs::path copy = CopyBundle("copy");
  std::string bytes = Slurp(copy / "ranker.bin");
  ASSERT_GT(bytes.size(), 100u);
  bytes[bytes.size() / 2] ^= 0x10;
  ReplaceKeepingChecksum(copy, "ranker.bin", bytes);
  auto e = Engine::Open(copy);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("ranker.bin"), std::string::npos) << e.status().message();
  EXPECT_EQ(e.status().code(), Status::Code::kCorruption) << e.status().ToString();
}

TEST_F(EngineRankerTest, ADamagedTasteMixtureIsRefusedNamingIt) {
  const fs::path copy = CopyBundle("copy");
  auto theta = ReadNpyF32(copy / "taste_mixture/theta.npy");
  ASSERT_TRUE(theta.ok()) << theta.status().ToString();
  theta->at(3, 0) *= 1000;  // taste 0 no longer sums to 1
  const fs::path written = dir_ / "theta.npy";
  ASSERT_TRUE(WriteNpy(written, *theta).ok());
  ReplaceKeepingChecksum(copy, "taste_mixture/theta.npy", Slurp(written));
  auto e = Engine::Open(copy);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("theta.npy"), std::string::npos) << e.status().message();
  EXPECT_NE(e.status().message().find("taste 0 sums to"), std::string::npos)
      << e.status().message();
  EXPECT_EQ(e.status().code(), Status::Code::kCorruption) << e.status().ToString();
}

TEST_F(EngineRankerTest, RankerOffAnswersWithTheHybrid) {
  RecommendRequest r;
  r.user = engine_->users().id(5);
  r.query.k = 10;
  r.query.use_ranker = false;
  auto rec = engine_->Recommend(r);
  ASSERT_TRUE(rec.ok());
  for (const Hit& h : rec->hits) EXPECT_TRUE(h.ranker_features.empty());
  for (size_t i = 1; i < rec->hits.size(); ++i) {
    EXPECT_GE(rec->hits[i - 1].score, rec->hits[i].score);
  }
}

// A bundle whose build found the hybrid score better than the ranker
// (manifest ranker.scorer "hybrid") answers as with the ranker off: oracle,
// the original bundle's ranker-off answer for the same users.
TEST_F(EngineRankerTest, AHybridScorerAnswersLikeTheRankerOff) {
  const fs::path copy =
      CopyBundle("hybrid_bundle", [](json& m) { m["ranker"]["scorer"] = "hybrid"; });
  auto e = Engine::Open(copy);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  int differ_from_ranker = 0;
  for (int32_t u = 0; u < 10; ++u) {
    RecommendRequest r;
    r.user = engine_->users().id(u);
    r.query.k = 10;
    auto got = (*e)->Recommend(r);
    auto ranked = engine_->Recommend(r);
    r.query.use_ranker = false;
    auto off = engine_->Recommend(r);
    ASSERT_TRUE(got.ok() && ranked.ok() && off.ok());
    ASSERT_EQ(got->hits.size(), off->hits.size());
    for (size_t i = 0; i < got->hits.size(); ++i) {
      EXPECT_EQ(got->hits[i].item, off->hits[i].item) << "user " << u << " rank " << i;
      EXPECT_FLOAT_EQ(got->hits[i].score, off->hits[i].score);
    }
    for (size_t i = 0; i < got->hits.size() && i < ranked->hits.size(); ++i) {
      differ_from_ranker += got->hits[i].item != ranked->hits[i].item;
    }
  }
  EXPECT_GT(differ_from_ranker, 0) << "the oracle should differ from the ranker's answers";
}

// A pool of cold items only is ordered by the hybrid score (the ranker has
// no labels for items without interactions): oracle, the ranker-off answer
// under the same restriction.
TEST_F(EngineRankerTest, APoolOfColdItemsOnlyIsOrderedLikeTheHybrid) {
  Bitmap cold;
  for (int32_t i = 0; i < engine_->catalog().size(); ++i) {
    if (engine_->is_cold(i)) cold.add(static_cast<uint32_t>(i));
  }
  ASSERT_GT(cold.cardinality(), 20u);
  int compared = 0;
  for (int32_t u = 0; u < 10; ++u) {
    RecommendRequest r;
    r.user = engine_->users().id(u);
    r.query.k = 10;
    r.query.allowed = &cold;
    r.query.explain = true;
    auto ranked = engine_->Recommend(r);
    ASSERT_TRUE(ranked.ok()) << ranked.status().ToString();
    r.query.use_ranker = false;
    r.query.explain = false;
    auto hybrid = engine_->Recommend(r);
    ASSERT_TRUE(hybrid.ok()) << hybrid.status().ToString();
    std::vector<int32_t> a, b;
    for (const Hit& h : ranked->hits) {
      a.push_back(h.item);
      EXPECT_TRUE(engine_->is_cold(h.item));
      EXPECT_NE(h.reason.find("ranked on the hybrid score (new items only)"), std::string::npos)
          << h.reason;
    }
    for (const Hit& h : hybrid->hits) b.push_back(h.item);
    EXPECT_EQ(a, b) << "user " << u;
    for (size_t i = 0; i < std::min(ranked->hits.size(), hybrid->hits.size()); ++i) {
      EXPECT_NEAR(ranked->hits[i].score, hybrid->hits[i].score, 1e-5) << "user " << u;
    }
    compared += !a.empty();
  }
  EXPECT_GT(compared, 5);
}

// A bundle whose build found the item-item score better than the ranker
// (manifest ranker.scorer "item_item") orders the pool by that score: the
// answers carry the scores ItemNeighbors::Query gives, best first.
TEST_F(EngineRankerTest, AnItemItemScorerOrdersByTheItemItemScore) {
  const fs::path copy =
      CopyBundle("item_item_bundle", [](json& m) { m["ranker"]["scorer"] = "item_item"; });
  auto e = Engine::Open(copy);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const int32_t user = 5;
  const std::vector<int32_t> history = (*e)->UserHistory(user);
  ASSERT_FALSE(history.empty());
  NeighborQueryParams p;
  p.k = 1000;
  std::map<int32_t, float> oracle;
  for (const ScoredItem& s : (*e)->item_neighbors()->Query(history, {}, p)) oracle[s.item] = s.score;
  ASSERT_GE(oracle.size(), 5u);

  RecommendRequest r;
  r.user = (*e)->users().id(user);
  r.query.k = 5;
  r.query.explain = true;
  auto rec = (*e)->Recommend(r);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  ASSERT_EQ(rec->hits.size(), 5u);
  float best = 0;
  for (const auto& [item, score] : oracle) best = std::max(best, score);
  EXPECT_NEAR(rec->hits[0].score, best, 1e-4f);
  for (size_t i = 0; i < rec->hits.size(); ++i) {
    const Hit& h = rec->hits[i];
    ASSERT_TRUE(oracle.count(h.item)) << "hit " << i << " is not an item-item candidate";
    EXPECT_NEAR(h.score, oracle[h.item], 1e-4f) << "hit " << i;
    if (i > 0) {
      EXPECT_GE(rec->hits[i - 1].score, h.score);
    }
    EXPECT_NE(h.reason.find("ranked on item_item"), std::string::npos) << h.reason;
  }
}

TEST(RankerTraining, HoldOutLatestKeepsTheNewestPerUser) {
  Interactions inter;
  inter.users.Add("a");
  inter.users.Add("b");
  inter.users.Add("c");
  // a: items 0..4 at times 50,10,40,20,30; b: one item; c: items 1,3 at 5,1.
  inter.matrix.rows = 3;
  inter.matrix.cols = 5;
  inter.matrix.indptr = {0, 5, 6, 8};
  inter.matrix.indices = {0, 1, 2, 3, 4, 2, 1, 3};
  inter.matrix.values = {1, 1, 1, 1, 1, 1, 1, 1};
  inter.timestamps = {50, 10, 40, 20, 30, 7, 5, 1};
  HeldOut h = HoldOutLatest(inter, 0.4);
  // a holds out ceil(0.4 * 5) = 2 newest: items 0 (t50) and 2 (t40).
  EXPECT_EQ(h.test.indptr, (std::vector<int64_t>{0, 2, 2, 3}));
  EXPECT_EQ(h.test.indices, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(h.train.matrix.indices, (std::vector<int32_t>{1, 3, 4, 2, 3}));
  EXPECT_EQ(h.train.timestamps, (std::vector<int64_t>{10, 20, 30, 7, 1}));
  EXPECT_EQ(h.users_with_test, 2);
}

TEST(RankerTraining, TheSameSeedTrainsTheSameModel) {
  const fs::path dir = MakeTestBundle("ranker_determinism");
  const fs::path data = fs::path(VITRINE_BINARY).parent_path() / "serve_test_bundle" / "data";
  for (const char* out : {"a", "b"}) {
    ASSERT_EQ(RunVitrine("build -q --items '" + (data / "items.csv").string() +
                             "' --interactions '" + (data / "interactions.csv").string() +
                             "' --factors 16 --iterations 4 --seed 7 --threads 1 --index Flat "
                             "--out '" + (dir / out).string() + "'",
                         dir),
              0)
        << Slurp(dir / "cmd.err");
  }
  ASSERT_TRUE(fs::exists(dir / "a/ranker.bin"));
  EXPECT_EQ(Slurp(dir / "a/ranker.bin"), Slurp(dir / "b/ranker.bin"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
