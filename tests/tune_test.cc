// `vitrine tune` and `vitrine build --tune` (engine/tune.h) through the real
// binary on the generated test catalog: the same seed gives the same choice
// and the same table, the saved config builds, and a tuned bundle records
// its tuning in the manifest.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using vitrine::testing::MakeTestBundle;
using vitrine::testing::RunVitrine;
using vitrine::testing::Slurp;

// The table without its seconds column (wall time is the one thing that may
// differ between two runs).
std::string WithoutSeconds(const std::string& table) {
  std::istringstream in(table);
  std::ostringstream out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream cols(line);
    std::string stage, trial, ndcg, seconds, rest;
    cols >> stage >> trial >> ndcg >> seconds;
    std::getline(cols, rest);
    if (stage == "chosen") {  // "chosen on N validation users in S s: ..."
      out << line.substr(line.find(':')) << "\n";
    } else {
      out << stage << " " << trial << " " << ndcg << rest << "\n";
    }
  }
  return out.str();
}

class TuneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("tune");
    data_ = fs::read_symlink(dir_ / "bundle").parent_path() / "data";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Inputs() const {
    return "--items '" + (data_ / "items.csv").string() + "' --interactions '" +
           (data_ / "interactions.csv").string() + "' --images '" +
           (data_ / "images.idx.gz").string() + "' --threads 1";
  }
  fs::path dir_, data_;
};

TEST_F(TuneTest, SameSeedSameChoiceAndTable) {
  const std::string base = "tune -q " + Inputs() + " --trials 3 --budget 1h --seed 5";
  ASSERT_EQ(RunVitrine(base + " --save-config '" + (dir_ / "a.toml").string() + "'", dir_), 0)
      << Slurp(dir_ / "cmd.err");
  const std::string first = Slurp(dir_ / "cmd.out");
  ASSERT_EQ(RunVitrine(base + " --save-config '" + (dir_ / "b.toml").string() + "'", dir_), 0)
      << Slurp(dir_ / "cmd.err");
  const std::string second = Slurp(dir_ / "cmd.out");
  EXPECT_NE(first.find("retrieval"), std::string::npos) << first;
  EXPECT_NE(first.find("item-item"), std::string::npos) << first;
  EXPECT_NE(first.find("chosen on"), std::string::npos) << first;
  EXPECT_EQ(WithoutSeconds(first.substr(0, first.find("wrote "))),
            WithoutSeconds(second.substr(0, second.find("wrote "))));
  EXPECT_EQ(Slurp(dir_ / "a.toml"), Slurp(dir_ / "b.toml"));

  // The saved choice is a config build reads back.
  ASSERT_EQ(RunVitrine("build -q " + Inputs() + " --config '" + (dir_ / "a.toml").string() +
                           "' --ranker off --out '" + (dir_ / "from_config").string() + "'",
                       dir_),
            0)
      << Slurp(dir_ / "cmd.err");
}

TEST_F(TuneTest, BuildTuneRecordsTheChoiceInTheManifest) {
  ASSERT_EQ(RunVitrine("build -q " + Inputs() + " --tune --trials 2 --seed 5 --out '" +
                           (dir_ / "tuned").string() + "'",
                       dir_),
            0)
      << Slurp(dir_ / "cmd.err");
  const auto m = nlohmann::json::parse(Slurp(dir_ / "tuned" / "manifest.json"));
  ASSERT_TRUE(m.contains("tuning")) << m.dump();
  EXPECT_EQ(m["tuning"]["seed"], 5);
  EXPECT_TRUE(m["tuning"]["chosen"].contains("regularization"));
  EXPECT_GE(m["tuning"]["trials"].size(), 3u);  // item-item trials and 2 retrieval trials
  ASSERT_EQ(RunVitrine("inspect --bundle '" + (dir_ / "tuned").string() + "' --load", dir_), 0)
      << Slurp(dir_ / "cmd.err");
}

TEST_F(TuneTest, BadBudgetIsAUsageError) {
  EXPECT_EQ(RunVitrine("tune " + Inputs() + " --budget 10x", dir_), 2);
  EXPECT_NE(Slurp(dir_ / "cmd.err").find("--budget '10x'"), std::string::npos)
      << Slurp(dir_ / "cmd.err");
  EXPECT_EQ(RunVitrine("tune --items '" + (data_ / "items.csv").string() + "'", dir_), 2);
  EXPECT_NE(Slurp(dir_ / "cmd.err").find("needs --interactions"), std::string::npos);
}

}  // namespace
}  // namespace vitrine
