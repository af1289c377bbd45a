// The embed stage on generator data, checked against the generator's hidden
// truth (truth.json): items of the same hidden taste cluster are nearer than
// random pairs, and items whose interactions are removed (cold) land near the
// vectors their interactions gave them (their warm twins).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>

#include "core/csv.h"
#include "core/file_util.h"
#include "engine/builder.h"
#include "engine/engine.h"
#include "sample/generator.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

class EmbedOnGeneratorData : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::path(testing::TempDir()) / ("vitrine_embed_gen_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    GeneratorOptions g;
    g.num_items = 1500;
    g.num_users = 6000;
    g.seed = 11;
    ASSERT_TRUE(GenerateSampleData(g, dir_ / "data").ok());
    truth_ = nlohmann::json::parse(ReadFile(dir_ / "data" / "truth.json").value());
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static Result<std::unique_ptr<Engine>> Build(const fs::path& interactions,
                                               const std::string& name) {
    BuildOptions o;
    o.ranker.enabled = false;  // not under test here; the ranker has its own tests
    o.items = dir_ / "data" / "items.csv";
    o.interactions = interactions;
    o.images = dir_ / "data" / "images.idx.gz";
    o.index.spec = "Flat";
    auto s = BuildBundle(o, dir_ / name);
    if (!s.ok()) return s.status();
    return Engine::Open(dir_ / name);
  }
  static fs::path dir_;
  static nlohmann::json truth_;
};
fs::path EmbedOnGeneratorData::dir_;
nlohmann::json EmbedOnGeneratorData::truth_;

TEST_F(EmbedOnGeneratorData, SameTasteClusterIsNearerThanRandom) {
  auto e = Build(dir_ / "data" / "interactions.csv", "full");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const auto cluster = truth_["items"]["taste_cluster"].get<std::vector<int>>();
  const Matrix& v = (*e)->vectors();
  ASSERT_EQ(cluster.size(), v.rows);
  // Per block and for the fused vector: mean cosine over same-cluster pairs
  // against all pairs, on warm items (cold ones are projections).
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<size_t> pick(0, v.rows - 1);
  for (const auto& b : (*e)->layout()) {
    if (IsPriorBlock(b.name)) continue;  // 1-d priors, no direction
    double same = 0, any = 0;
    int n_same = 0, n_any = 0;
    for (int t = 0; t < 200000 && (n_same < 3000 || n_any < 3000); ++t) {
      const size_t i = pick(rng), j = pick(rng);
      if (i == j || (*e)->is_cold(static_cast<int32_t>(i)) ||
          (*e)->is_cold(static_cast<int32_t>(j)))
        continue;
      const double c = Cosine({v.row(i) + b.offset, b.dim}, {v.row(j) + b.offset, b.dim});
      if (cluster[i] == cluster[j] && n_same < 3000) same += c, ++n_same;
      if (n_any < 3000) any += c, ++n_any;
    }
    ASSERT_GT(n_same, 500);
    SCOPED_TRACE(b.name);
    std::printf("%s block: same-cluster cosine %.3f, random pairs %.3f\n", b.name.c_str(),
                same / n_same, any / n_any);
    EXPECT_GT(same / n_same, any / n_any + 0.04)
        << "same-cluster " << same / n_same << " vs random " << any / n_any;
  }
}

TEST_F(EmbedOnGeneratorData, ColdItemsLandNearTheirWarmTwins) {
  auto full = Build(dir_ / "data" / "interactions.csv", "full2");
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  // The 40 warm items with the most interactions lose all of them.
  std::vector<std::pair<float, int32_t>> by_pop;
  for (int32_t i = 0; i < (*full)->catalog().size(); ++i) {
    if (!(*full)->is_cold(i)) by_pop.emplace_back((*full)->popularity(i), i);
  }
  std::sort(by_pop.rbegin(), by_pop.rend());
  std::set<std::string> removed;
  for (int t = 0; t < 40; ++t) removed.insert((*full)->catalog().ids.id(by_pop[t].second));
  auto csv = CsvReader::Open(dir_ / "data" / "interactions.csv");
  ASSERT_TRUE(csv.ok());
  std::string out = "user_id,item_id,event,timestamp\n";
  while ((*csv)->Next()) {
    const auto& r = (*csv)->row();
    if (removed.count(std::string(r[1]))) continue;
    out += std::string(r[0]) + "," + std::string(r[1]) + "," + std::string(r[2]) + "," +
           std::string(r[3]) + "\n";
  }
  ASSERT_TRUE(WriteFileAtomic(dir_ / "cold_interactions.csv", out).ok());
  auto cold = Build(dir_ / "cold_interactions.csv", "cold");
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();

  const BlockLayout* cf = nullptr;
  for (const auto& b : (*cold)->layout()) {
    if (b.name == "cf") cf = &b;
  }
  ASSERT_NE(cf, nullptr);
  // The two builds train ALS on different data, so compare in one space: the
  // cold build's projected cf vector of an item against the cold build's warm
  // items, ranked by cosine; its twin is the item itself as the full build
  // saw it, represented by its warm neighbours there. Oracle: the twin's
  // 20 nearest warm items by cf in the full build overlap with the cold
  // item's 20 nearest warm items in the cold build at least 4x chance.
  auto neighbours = [&](const Engine& e, int32_t item) {
    std::vector<std::pair<double, int32_t>> s;
    for (int32_t j = 0; j < e.catalog().size(); ++j) {
      if (j == item || e.is_cold(j) || removed.count(e.catalog().ids.id(j))) continue;
      s.emplace_back(Cosine({e.vectors().row(item) + cf->offset, cf->dim},
                            {e.vectors().row(j) + cf->offset, cf->dim}),
                     j);
    }
    std::partial_sort(s.begin(), s.begin() + 20, s.end(), std::greater<>());
    std::set<int32_t> top;
    for (int t = 0; t < 20; ++t) top.insert(s[t].second);
    return top;
  };
  double overlap = 0;
  int n = 0;
  size_t warm_pool = 0;
  for (int32_t j = 0; j < (*cold)->catalog().size(); ++j) warm_pool += !(*cold)->is_cold(j);
  for (const auto& id : removed) {
    const int32_t i = *(*cold)->catalog().ids.Find(id);
    ASSERT_TRUE((*cold)->is_cold(i)) << id << " must be cold once its interactions are gone";
    const auto a = neighbours(**full, i), b = neighbours(**cold, i);
    int common = 0;
    for (int32_t x : a) common += b.count(x);
    overlap += common / 20.0;
    ++n;
  }
  const double chance = 20.0 / static_cast<double>(warm_pool);
  std::printf("cold twins: neighbour overlap %.3f, chance %.3f\n", overlap / n, chance);
  EXPECT_GT(overlap / n, 4 * chance) << "mean overlap " << overlap / n << ", chance " << chance;
}

}  // namespace
}  // namespace vitrine
