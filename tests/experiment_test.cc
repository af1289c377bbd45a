// A/B variants (serve/experiment.h): the file's checks, and an assignment
// that is stable, keeps its shares and follows the published HMAC.
#include "serve/experiment.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace vitrine {
namespace {

constexpr const char* kTwoWay = R"(name = "ranker-vs-hybrid"
[[variant]]
name = "control"
share = 0.5
[[variant]]
name = "hybrid"
share = 0.5
ranker = false
diversity = "mmr:0.5"
weights = { cf = 1.0, content = 0.5 }
rules = "exclude where brand = 'B1'"
)";

TEST(Experiment, ReadsVariantsAndTheirFields) {
  auto e = Experiment::Parse(kTwoWay, "exp.toml");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->name(), "ranker-vs-hybrid");
  ASSERT_EQ(e->variants().size(), 2u);
  EXPECT_EQ(e->variants()[0].name, "control");
  EXPECT_TRUE(e->variants()[0].fields.empty());
  const nlohmann::json& f = e->variants()[1].fields;
  EXPECT_EQ(f["ranker"], false);
  EXPECT_EQ(f["diversity"], "mmr:0.5");
  EXPECT_DOUBLE_EQ(f["weights"]["content"].get<double>(), 0.5);
  EXPECT_EQ(f["rules"], "exclude where brand = 'B1'");
}

void ExpectError(const std::string& text, const std::string& needle) {
  auto e = Experiment::Parse(text, "exp.toml");
  ASSERT_FALSE(e.ok()) << text;
  EXPECT_NE(e.status().message().find(needle), std::string::npos) << e.status().ToString();
}

TEST(Experiment, BadFilesNameTheFileLineAndKey) {
  ExpectError("name = \"x\"\n[[variant]]\nname = \"a\"\nshare = 1\ncolour = 1\n",
              "exp.toml:5:10: variant 1: unknown key 'colour'");
  ExpectError(
      "name = \"x\"\n[[variant]]\nname = \"a\"\nshare = 0.6\n[[variant]]\nname = \"b\"\n"
      "share = 0.6\n",
      "shares add up to 1.2");
  ExpectError(
      "name = \"x\"\n[[variant]]\nname = \"a\"\nshare = 0.5\n[[variant]]\nname = \"a\"\n"
      "share = 0.5\n",
      "the name 'a' is taken");
  ExpectError("name = \"x\"\n[[variant]]\nname = \"a b\"\nshare = 1\n", "'name' must be");
  ExpectError("name = \"x\"\n[[variant]]\nname = \"a\"\nshare = 0\n", "'share' must be");
  ExpectError("name = \"x\"\n[[variant]]\nname = \"a\"\n", "no 'share'");
  ExpectError("name = \"x\"\n[[variant]]\nname = \"a\"\nshare = 1\nranker = \"off\"\n",
              "'ranker' must be true or false");
  ExpectError("name = \"x\"\n[[variant]]\nname = \"a\"\nshare = 1\nweights = { cf = \"1\" }\n",
              "weight 'cf' must be a number");
  ExpectError("[[variant]]\nname = \"a\"\nshare = 1\n", "no 'name'");
  ExpectError("name = \"x\"\n", "no [[variant]] tables");
  ExpectError("name = \"x\"\nvariants = 3\n", "unknown key 'variants'");
  std::string many = "name = \"x\"\n";
  for (int i = 0; i < 17; ++i) {
    many += "[[variant]]\nname = \"v" + std::to_string(i) + "\"\nshare = 0.0625\n";
  }
  ExpectError(many, "at most 16");
  ExpectError("name = \"x\"\n[[variant\n", "exp.toml:2");  // TOML syntax, with its line
}

TEST(Experiment, TheUnitPointIsThePublishedHmac) {
  // RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for
  // nothing?") = 5bdcc146bf60754e...; its first 53 bits over 2^53.
  EXPECT_DOUBLE_EQ(Experiment::UnitPoint("Jefe", "what do ya want for nothing?"),
                   0.3588372037623928);
}

// Three variants of 0.5 / 0.3 / 0.2 under the experiment name `name`.
Experiment ThreeWay(const std::string& name, const std::string& file) {
  auto e = Experiment::Parse("name = \"" + name + R"("
[[variant]]
name = "control"
share = 0.5
[[variant]]
name = "b"
share = 0.3
[[variant]]
name = "c"
share = 0.2
)",
                             file);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(*e);
}

TEST(Experiment, AssignmentIsStableAndKeepsItsShares) {
  const Experiment e = ThreeWay("three-way", "exp.toml");
  const Experiment again = ThreeWay("three-way", "other.toml");
  const Experiment renamed = ThreeWay("three-way-2", "exp.toml");
  constexpr int kUsers = 100000;
  std::map<std::string, int> counts;
  int moved = 0;
  for (int u = 0; u < kUsers; ++u) {
    const std::string id = "U" + std::to_string(u);
    const std::string& v = e.Assign(id).name;
    ++counts[v];
    EXPECT_EQ(e.Assign(id).name, v);      // the same call twice
    EXPECT_EQ(again.Assign(id).name, v);  // a fresh load, e.g. another replica
    moved += renamed.Assign(id).name != v;
  }
  // Binomial standard deviations at 100,000 users are 0.16% or less: 1% is
  // over six of them.
  EXPECT_NEAR(counts["control"] / double(kUsers), 0.5, 0.01);
  EXPECT_NEAR(counts["b"] / double(kUsers), 0.3, 0.01);
  EXPECT_NEAR(counts["c"] / double(kUsers), 0.2, 0.01);
  // Another experiment name draws afresh: a user keeps their variant with
  // probability 0.5^2 + 0.3^2 + 0.2^2 = 0.38.
  EXPECT_NEAR(moved / double(kUsers), 0.62, 0.01);
}

}  // namespace
}  // namespace vitrine
