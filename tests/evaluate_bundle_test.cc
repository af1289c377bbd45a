// EvaluateBundle (engine/evaluate_bundle.h), the code behind `vitrine
// evaluate` and the Python binding: it refuses bad options before reading
// anything, reports the models asked for in order, and scores each one
// exactly as Evaluate does on its own.
#include "engine/evaluate_bundle.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <utility>

#include "engine/baselines.h"
#include "engine/engine_recommender.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using vitrine::testing::MakeTestBundle;

// What EvaluateBundle's "hybrid" asks the engine: the fused ANN score.
QueryParams RankerOff() {
  QueryParams q;
  q.use_ranker = false;
  return q;
}

class EvaluateBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("evaluate_bundle");
    auto e = Engine::Open(dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    // A held-out file the models can hit: each user's first TopPop item and
    // first hybrid item (neither in their history), plus a user the bundle
    // does not know.
    const CsrMatrix train = engine_->TrainMatrix();
    TopPop toppop;
    ASSERT_TRUE(toppop.Fit(train).ok());
    const EngineRecommender hybrid(*engine_, "hybrid", RankerOff());
    test_path_ = (dir_ / "test.csv").string();
    std::ofstream out(test_path_);
    out << "user_id,item_id\n";
    for (int32_t u = 0; u < kUsers; ++u) {
      const std::vector<int32_t> history = engine_->UserHistory(u);
      for (const Recommender* m :
           {static_cast<const Recommender*>(&toppop), static_cast<const Recommender*>(&hybrid)}) {
        auto list = m->Recommend(u, history, 1);
        ASSERT_TRUE(list.ok()) << list.status().ToString();
        ASSERT_EQ(list->size(), 1u);
        out << engine_->users().id(u) << "," << engine_->catalog().ids.id((*list)[0]) << "\n";
      }
    }
    out << "U_not_in_the_bundle," << engine_->catalog().ids.id(0) << "\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  BundleEvalOptions Options(std::vector<std::string> models) const {
    BundleEvalOptions o;
    o.test_path = test_path_;
    o.models = std::move(models);
    return o;
  }

  static constexpr int32_t kUsers = 40;
  fs::path dir_;
  std::string test_path_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EvaluateBundleTest, AnUnknownModelIsRefusedByNameBeforeAnyFileIsRead) {
  BundleEvalOptions o = Options({"hybrid", "bogus"});
  o.test_path = (dir_ / "no_such_test.csv").string();
  auto r = EvaluateBundle(*engine_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unknown model 'bogus'"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("expected one of: default, hybrid,"), std::string::npos)
      << r.status().ToString();
}

TEST_F(EvaluateBundleTest, KBelowOneIsRefused) {
  BundleEvalOptions o = Options({"toppop"});
  o.k = 0;
  auto r = EvaluateBundle(*engine_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(EvaluateBundleTest, ReportsEveryModelInOrderAsEvaluateScoresIt) {
  ASSERT_NE(engine_->ranker(), nullptr);
  ASSERT_NE(engine_->item_neighbors(), nullptr);
  BundleEvalOptions o = Options({"hybrid", "toppop", "item-item", "hybrid"});
  auto r = EvaluateBundle(*engine_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->k, 10);
  ASSERT_EQ(r->reports.size(), 4u);
  const std::vector<std::string> names = {"hybrid", "toppop", "item-item", "hybrid"};
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(r->reports[i].model, names[i]);
    EXPECT_EQ(r->reports[i].k, 10);
    EXPECT_EQ(r->reports[i].users, kUsers);
    EXPECT_TRUE(std::isnan(r->reports[i].compliance)) << "no rules, no compliance";
  }
  EXPECT_FALSE(r->has_compliance);
  EXPECT_EQ(r->dropped_users, 1);
  EXPECT_EQ(r->reports[0].recall, r->reports[3].recall) << "the same model scores the same";
  ASSERT_TRUE(r->pool.has_value()) << "the bundle has a ranker: the pool is measured";
  EXPECT_EQ(r->pool->users, kUsers);
  EXPECT_GE(r->pool->recall, 0.0);
  EXPECT_LE(r->pool->recall, 1.0);
  if (r->cold_items > 0) {
    EXPECT_DOUBLE_EQ(r->random_cold_recall,
                     std::min(1.0, 10.0 / static_cast<double>(r->cold_items)));
  } else {
    EXPECT_TRUE(std::isnan(r->random_cold_recall));
  }

  // Oracle: the same models evaluated directly on the same matrices; each
  // user's test items include its own first item, so recall is not zero.
  auto test = Interactions::ReadCsv(test_path_, engine_->catalog().ids);
  ASSERT_TRUE(test.ok()) << test.status().ToString();
  const CsrMatrix train = engine_->TrainMatrix();
  const CsrMatrix test_m = AlignRows(engine_->users(), test->users, test->matrix);
  TopPop toppop;
  ASSERT_TRUE(toppop.Fit(train).ok());
  const EngineRecommender hybrid(*engine_, "hybrid", RankerOff());
  EvalOptions eo;
  eo.item_vectors = &engine_->vectors();
  for (const auto& [i, model] : {std::pair<size_t, const Recommender*>{0, &hybrid},
                                 std::pair<size_t, const Recommender*>{1, &toppop}}) {
    auto direct = Evaluate(*model, train, test_m, eo);
    ASSERT_TRUE(direct.ok()) << direct.status().ToString();
    const EvalReport& got = r->reports[i];
    EXPECT_GE(got.recall, 0.5) << got.ToString();
    EXPECT_EQ(got.recall, direct->recall) << got.model;
    EXPECT_EQ(got.ndcg, direct->ndcg) << got.model;
    EXPECT_EQ(got.map, direct->map) << got.model;
    EXPECT_EQ(got.coverage, direct->coverage) << got.model;
    EXPECT_EQ(got.diversity, direct->diversity) << got.model;
  }
}

TEST_F(EvaluateBundleTest, RulesAddComplianceAndMustNotDependOnTheRequest) {
  const fs::path caps = dir_ / "caps.rules";
  std::ofstream(caps) << "CAP 3 PER brand\n";
  BundleEvalOptions o = Options({"hybrid"});
  o.rules_path = caps.string();
  auto r = EvaluateBundle(*engine_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->has_compliance);
  ASSERT_EQ(r->reports.size(), 1u);
  EXPECT_EQ(r->reports[0].compliance, 1.0) << "the bundle's lists keep its own cap";

  const fs::path per_request = dir_ / "per_request.rules";
  std::ofstream(per_request) << "EXCLUDE WHERE brand = CurrentItem.brand\n";
  o.rules_path = per_request.string();
  auto bad = EvaluateBundle(*engine_, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("request-independent"), std::string::npos)
      << bad.status().ToString();
}

}  // namespace
}  // namespace vitrine
