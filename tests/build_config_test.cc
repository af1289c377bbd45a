// The build config file (engine/build_config.h): what is written reads back
// to the same options, and every bad value is refused naming the file, line,
// column and key, leaving the options untouched.
#include "engine/build_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/ranker_training.h"

namespace vitrine {
namespace {

BuildOptions Odd() {
  BuildOptions o;
  o.items = "items \"quoted\"\\path\n.csv";
  o.als.factors = 48;
  o.als.regularization = 0.1f;
  o.als.alpha = 2.5f;
  o.als.iterations = 7;
  o.als.solver = AlsSolver::kCholesky;
  o.als.seed = 123456789012345;
  o.content.dim = 17;
  o.content.min_count = 3;
  o.visual_encoder.whiten_power = 0.35f;
  o.cold_start.min_interactions = 0;
  o.cold_start.lambda = 1e-3;
  o.recency.half_life_days = 12.5;
  o.item_neighbors.method = ItemNeighborsOptions::Method::kCosine;
  o.item_neighbors.ease_lambda = 123.25;
  o.ranker.enabled = false;
  o.ranker.scorer = kScorerItemItem;
  o.ranker.max_users = 777;
  o.block_weights = {{"cf", 1.0f},  {"content", 0.3f}, {"visual", 0.05f},
                     {"pop", 0.7f}, {"new", 0.0f},     {"trend", 0.25f}};
  return o;
}

TEST(BuildConfig, WhatIsWrittenReadsBackTheSame) {
  const BuildOptions o = Odd();
  auto text = WriteBuildConfig(
      o, {"input.items", "als.factors", "als.regularization", "als.alpha", "als.iterations",
          "als.solver", "als.seed", "content.dim", "content.min_count", "visual.whiten_power",
          "cold_start.min_interactions", "cold_start.lambda", "recency.half_life_days",
          "item_neighbors.method", "item_neighbors.ease_lambda", "ranker.enabled",
          "ranker.scorer", "ranker.users", "weights"},
      "a comment\nover two lines");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(text->rfind("# a comment\n# over two lines\n", 0), 0u) << *text;
  EXPECT_NE(text->find("regularization = 0.1\n"), std::string::npos) << *text;
  BuildOptions back;
  ASSERT_TRUE(ApplyBuildConfigText(*text, "t.toml", &back).ok()) << *text;
  EXPECT_EQ(back.items, o.items);
  EXPECT_EQ(back.als.factors, 48);
  EXPECT_EQ(back.als.regularization, 0.1f);
  EXPECT_EQ(back.als.alpha, 2.5f);
  EXPECT_EQ(back.als.iterations, 7);
  EXPECT_EQ(back.als.solver, AlsSolver::kCholesky);
  EXPECT_EQ(back.als.seed, 123456789012345u);
  EXPECT_EQ(back.content.dim, 17);
  EXPECT_EQ(back.content.min_count, 3);
  EXPECT_EQ(back.visual_encoder.whiten_power, 0.35f);
  EXPECT_EQ(back.cold_start.min_interactions, 0);
  EXPECT_EQ(back.cold_start.lambda, 1e-3);
  EXPECT_EQ(back.recency.half_life_days, 12.5);
  EXPECT_EQ(back.item_neighbors.method, ItemNeighborsOptions::Method::kCosine);
  EXPECT_EQ(back.item_neighbors.ease_lambda, 123.25);
  EXPECT_FALSE(back.ranker.enabled);
  EXPECT_EQ(back.ranker.scorer, kScorerItemItem);
  EXPECT_EQ(back.ranker.max_users, 777);
  EXPECT_EQ(back.block_weights, o.block_weights);
  // Keys not written keep their defaults.
  EXPECT_EQ(back.content.numeric_buckets, BuildOptions().content.numeric_buckets);
}

TEST(BuildConfig, UnknownOrReadOnlyKeysCannotBeWritten) {
  EXPECT_FALSE(WriteBuildConfig(BuildOptions(), {"als.factorz"}).ok());
  EXPECT_FALSE(WriteBuildConfig(BuildOptions(), {"input.schema"}).ok());
}

// Each bad file: the error names file:line:col, the key and what was expected.
TEST(BuildConfig, BadValuesAreRefusedNamingTheKeyAndLeaveTheOptionsAlone) {
  struct Case {
    std::string text, where, expect;
  };
  const std::vector<Case> cases = {
      {"[als]\nfactors = 1e300\n", "c.toml:2:11", "'als.factors': expected an integer in [1, 4096]"},
      {"[als]\nfactors = -5\n", "c.toml:2:11", "'als.factors'"},
      {"[als]\nfactors = 2.5\n", "c.toml:2:11", "'als.factors'"},
      {"[als]\nfactors = \"64\"\n", "c.toml:2:11", "'als.factors'"},
      {"[als]\niterations = nan\n", "c.toml:2:14", "'als.iterations'"},
      {"[als]\nalpha = inf\n", "c.toml:2:9", "'als.alpha': expected a number in [0, 1000000]"},
      {"[als]\nsolver = \"lu\"\n", "c.toml:2:10", "expected one of \"cg\" | \"cholesky\""},
      {"[content]\ndim = 1000000000000\n", "c.toml:2:7", "'content.dim'"},
      {"[content]\ncolumn_weights = 3\n", "c.toml:2:18", "'content.column_weights'"},
      {"[content]\ncolumn_weights = { brand = -1 }\n", "c.toml:2:28",
       "'content.column_weights.brand': expected a number in [0, 1000]"},
      {"[visual]\ndim = 0\n", "c.toml:2:7", "'visual.dim'"},
      {"[cold_start]\nmin_interactions = -3\n", "c.toml:2:20", "'cold_start.min_interactions'"},
      {"[recency]\nhalf_life_days = 0\n", "c.toml:2:18", "expected a number in (0, 1000000]"},
      {"[ranker]\nenabled = 1\n", "c.toml:2:11", "'ranker.enabled': expected true or false"},
      {"[ranker]\nscorer = \"best\"\n", "c.toml:2:10", "'ranker.scorer'"},
      {"[ranker]\nusers = 0\n", "c.toml:2:9", "'ranker.users'"},
      {"[index]\nef_construction = 0\n", "c.toml:2:19", "'index.ef_construction'"},
      {"[input]\nitems = 5\n", "c.toml:2:9", "'input.items': expected a string"},
      {"[input]\nschema = \"price:nums\"\n", "c.toml:2:10", "unknown column type 'nums'"},
      {"[weights]\ncf = inf\n", "c.toml:2:6", "'weights.cf': expected a number in [0, 1000]"},
      {"weights = 2\n", "c.toml:1:11", "'weights': expected a table"},
      {"als = 5\n", "c.toml:1:7", "'als' must be a table"},
      {"[alz]\nfactors = 5\n", "c.toml:1:1", "unknown section 'alz'"},
      {"[als]\nfactorz = 5\n", "c.toml:2:11", "unknown key 'als.factorz'"},
      {"[als\n", "c.toml:1:5", ""},
  };
  for (const Case& c : cases) {
    BuildOptions o;
    o.als.factors = 11;
    Status st = ApplyBuildConfigText(c.text, "c.toml", &o);
    ASSERT_FALSE(st.ok()) << c.text;
    EXPECT_EQ(st.message().rfind(c.where + ": ", 0), 0u) << c.text << " -> " << st.message();
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.text << " -> " << st.message();
    EXPECT_EQ(o.als.factors, 11) << c.text;
  }
}

TEST(BuildConfig, AnOversizedFileIsRefusedBeforeItIsRead) {
  const auto path = std::filesystem::temp_directory_path() / "vitrine_build_config_big.toml";
  {
    std::ofstream f(path);
    f << "# " << std::string(kMaxBuildConfigBytes, 'x') << "\n";
  }
  BuildOptions o;
  Status st = ApplyBuildConfig(path.string(), &o);
  std::filesystem::remove(path);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("at most"), std::string::npos) << st.message();
}

// toml++ recurses once per dotted-key level: 100,000 levels overflowed the
// stack before engine/config_file.h counted the dots on a line.
TEST(BuildConfig, KeysNestedTooDeepAreRefusedNotACrash) {
  std::string text = "a";
  for (int i = 0; i < 100000; ++i) text += ".a";
  text += " = 1\n";
  BuildOptions o;
  Status st = ApplyBuildConfigText(text, "deep.toml", &o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("deep.toml:1: more than 1000 dots"), std::string::npos)
      << st.message();
  // Dots inside strings do not count.
  st = ApplyBuildConfigText("[input]\nitems = \"" + std::string(5000, '.') + "\"\n", "s.toml", &o);
  EXPECT_TRUE(st.ok()) << st.message();
}

// A weight for a block no bundle has is a typo, refused before any input is
// read (the items path does not exist), from a config file or from code.
TEST(BuildConfig, AWeightOfAnUnknownBlockIsRefused) {
  BuildOptions o;
  ASSERT_TRUE(ApplyBuildConfigText("[weights]\ncontnet = 0.5\n", "c.toml", &o).ok());
  o.items = "/nonexistent/items.csv";
  auto built = BuildBundle(o, "/nonexistent/out");
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().message(),
            "block weights: unknown block 'contnet' (expected one of cf, content, visual, pop, new, "
            "trend)");
  BuildOptions p;
  p.similar_weights["visual"] = -1;
  p.items = "/nonexistent/items.csv";
  built = BuildBundle(p, "/nonexistent/out");
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.status().message().find("'visual' = -1"), std::string::npos)
      << built.status().message();
}

// Set from code rather than read from a file, the same values are refused
// by the build itself.
TEST(BuildConfig, TheBuildRefusesBadOptionsSetFromCode) {
  BuildOptions o;
  o.items = "/nonexistent/items.csv";
  o.ranker.scorer = "Ranker";
  auto built = BuildBundle(o, "/nonexistent/out");
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.status().message().find("scorer 'Ranker'"), std::string::npos)
      << built.status().message();
  o.ranker.scorer = "auto";
  o.cold_start.norm_quantile = std::nan("");
  built = BuildBundle(o, "/nonexistent/out");
  ASSERT_FALSE(built.ok());
  EXPECT_NE(built.status().message().find("norm_quantile"), std::string::npos)
      << built.status().message();
}

// What an earlier `tune --save-config` wrote reads back: integer values for
// number keys, [weights] before other sections. Dates and booleans are not
// numbers.
TEST(BuildConfig, IntegersAreNumbersButDatesAndBooleansAreNot) {
  BuildOptions o;
  ASSERT_TRUE(ApplyBuildConfigText("[weights]\ncf = 1\n\n[als]\nalpha = 10\nregularization = 1\n"
                                   "[item_neighbors]\nease_lambda = 500\n",
                                   "old.toml", &o)
                  .ok());
  EXPECT_EQ(o.block_weights["cf"], 1.0f);
  EXPECT_EQ(o.als.alpha, 10.0f);
  EXPECT_EQ(o.item_neighbors.ease_lambda, 500.0);
  for (const char* bad : {"[als]\nfactors = 1979-05-27\n", "[als]\nalpha = true\n",
                          "[als]\nfactors = [64]\n", "[als]\nseed = -1\n"}) {
    BuildOptions p;
    Status st = ApplyBuildConfigText(bad, "c.toml", &p);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("c.toml:2:"), std::string::npos) << st.message();
  }
  // Seeds take every non-negative int64, exactly.
  BuildOptions q;
  ASSERT_TRUE(ApplyBuildConfigText("[als]\nseed = 9223372036854775807\n", "c.toml", &q).ok());
  EXPECT_EQ(q.als.seed, 9223372036854775807u);
  ASSERT_TRUE(ApplyBuildConfigText("[als]\nseed = 9007199254740993\n", "c.toml", &q).ok());
  EXPECT_EQ(q.als.seed, 9007199254740993u);
}

TEST(BuildConfig, TheReferenceListsEveryKeyItReads) {
  const std::string ref = BuildConfigReference();
  for (const char* key : {"als.factors", "ranker.scorer", "item_neighbors.ease_lambda",
                          "weights.BLOCK", "content.column_weights.NAME", "input.events"}) {
    EXPECT_NE(ref.find(key), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace vitrine
