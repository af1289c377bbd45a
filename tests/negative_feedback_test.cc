// Negative feedback (engine/engine.h Feedback, RecommendRequest): rejected
// items and hidden brands never come back, and the query moves away from
// rejected and returned items exactly as documented, checked against the
// score written out from the public pieces over every item.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/matrix.h"
#include "embed/fusion.h"
#include "engine/engine.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using vitrine::testing::MakeTestBundle;

class NegativeFeedbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("negative_feedback");
    auto e = Engine::Open(dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Brand(int32_t item) const {
    const Catalog& c = engine_->catalog();
    return c.ValueString(*c.column("brand"), item);
  }

  // The documented hybrid score of every item for a history pushed away
  // from `push` (item, strength): unit(q_b - sum s unit(v_b)) per block,
  // scaled by the default weights, plus the priors.
  std::vector<double> OracleScores(int32_t user,
                                   const std::vector<std::pair<int32_t, float>>& push) const {
    const auto& layout = engine_->layout();
    auto q = engine_->HistoryVector(engine_->UserHistory(user), engine_->UserHistoryWeights(user));
    EXPECT_TRUE(q.ok());
    for (const auto& b : layout) {
      if (IsPriorBlock(b.name)) continue;
      for (const auto& [item, s] : push) {
        std::vector<float> u(engine_->vectors().row(static_cast<size_t>(item)) + b.offset,
                             engine_->vectors().row(static_cast<size_t>(item)) + b.offset + b.dim);
        double n = 0;
        for (float x : u) n += double(x) * x;
        for (size_t j = 0; j < b.dim; ++j) (*q)[b.offset + j] -= s * float(u[j] / std::sqrt(n));
      }
      double n = 0;
      for (size_t j = 0; j < b.dim; ++j) n += double((*q)[b.offset + j]) * (*q)[b.offset + j];
      for (size_t j = 0; j < b.dim; ++j) (*q)[b.offset + j] = float((*q)[b.offset + j] / std::sqrt(n));
    }
    EXPECT_TRUE(ScaleQuery(layout, {}, q->data()).ok());
    std::vector<double> scores(static_cast<size_t>(engine_->catalog().size()));
    for (size_t i = 0; i < scores.size(); ++i) {
      const float* v = engine_->vectors().row(i);
      for (size_t j = 0; j < q->size(); ++j) scores[i] += double((*q)[j]) * v[j];
    }
    return scores;
  }

  // Checks a ranker-off answer against the oracle: every score, and the
  // top-k of all items the answer may hold (no history item, no `banned`).
  void ExpectOracleAnswer(int32_t user, const RecommendRequest& r,
                          const std::vector<std::pair<int32_t, float>>& push,
                          const std::set<int32_t>& banned) const {
    auto rec = engine_->Recommend(r);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    const auto scores = OracleScores(user, push);
    const auto history = engine_->UserHistory(user);
    std::vector<std::pair<double, int32_t>> all;
    for (int32_t i = 0; i < engine_->catalog().size(); ++i) {
      if (banned.count(i) || std::count(history.begin(), history.end(), i)) continue;
      all.emplace_back(scores[static_cast<size_t>(i)], i);
    }
    std::sort(all.rbegin(), all.rend());
    std::set<int32_t> truth;
    for (int k = 0; k < r.query.k; ++k) truth.insert(all[static_cast<size_t>(k)].second);
    int agree = 0;
    for (const Hit& h : rec->hits) {
      EXPECT_NEAR(h.score, scores[static_cast<size_t>(h.item)], 1e-4) << "item " << h.item;
      EXPECT_EQ(banned.count(h.item), 0u) << "banned item " << h.item << " came back";
      agree += static_cast<int>(truth.count(h.item));
    }
    EXPECT_GE(agree, r.query.k - 1) << "user " << user;  // HNSW may miss one
  }

  fs::path dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(NegativeFeedbackTest, NotInterestedExcludesTheItemAndMovesTheQueryAway) {
  for (int32_t user = 0; user < 10; ++user) {
    RecommendRequest r;
    r.user = engine_->users().id(user);
    r.query.k = 10;
    r.query.use_ranker = false;
    auto before = engine_->Recommend(r);
    ASSERT_TRUE(before.ok());
    const int32_t rejected = before->hits.front().item;
    r.not_interested = {engine_->catalog().ids.id(rejected)};
    ExpectOracleAnswer(user, r, {{rejected, kDefaultNegativeWeight}}, {rejected});
    // The same feedback as a live event.
    r.not_interested.clear();
    r.recent = {{engine_->catalog().ids.id(rejected), -1.0f, Feedback::kNotInterested}};
    ExpectOracleAnswer(user, r, {{rejected, kDefaultNegativeWeight}}, {rejected});
    // The items most like the rejected one lose score.
    auto after = engine_->Recommend(r);
    ASSERT_TRUE(after.ok());
    const auto plain = OracleScores(user, {});
    const auto pushed = OracleScores(user, {{rejected, kDefaultNegativeWeight}});
    EXPECT_LT(pushed[static_cast<size_t>(rejected)], plain[static_cast<size_t>(rejected)]);
  }
}

TEST_F(NegativeFeedbackTest, AReturnIsNegativeEvidenceWithItsOwnWeight) {
  const int32_t user = 3;
  RecommendRequest r;
  r.user = engine_->users().id(user);
  r.query.k = 10;
  r.query.use_ranker = false;
  auto before = engine_->Recommend(r);
  ASSERT_TRUE(before.ok());
  const int32_t bought = before->hits[0].item;
  r.recent = {{engine_->catalog().ids.id(bought), 10.0f}, {engine_->catalog().ids.id(bought), -14.0f}};
  r.return_weight = 0.8f;
  ExpectOracleAnswer(user, r, {{bought, 0.8f}}, {bought});
  r.return_weight = 0;  // returns only excluded, as before negative evidence
  ExpectOracleAnswer(user, r, {}, {bought});
}

TEST_F(NegativeFeedbackTest, AHiddenBrandNeverComesBack) {
  const Catalog& cat = engine_->catalog();
  for (int32_t user = 0; user < 40; user += 3) {
    RecommendRequest r;
    r.user = engine_->users().id(user);
    r.query.k = 10;
    auto before = engine_->Recommend(r);
    ASSERT_TRUE(before.ok());
    const int32_t trigger = before->hits.front().item;
    const std::string brand = Brand(trigger);
    // Even a rule that boosts the brand, diversity, a large k, either scorer.
    auto rules = RuleSet::Parse("BOOST 5 WHERE brand = \"" + brand + "\"\n", "rules");
    ASSERT_TRUE(rules.ok());
    ASSERT_TRUE(rules->Bind(cat).ok());
    for (bool ranker : {true, false}) {
      for (int k : {10, 100}) {
        RecommendRequest hidden = r;
        hidden.recent = {{cat.ids.id(trigger), -1.0f, Feedback::kHideBrand}};
        hidden.query.use_ranker = ranker;
        hidden.query.k = k;
        hidden.query.rules = &*rules;
        hidden.query.diversity = Diversity::kMMR;
        auto rec = engine_->Recommend(hidden);
        ASSERT_TRUE(rec.ok()) << rec.status().ToString();
        EXPECT_FALSE(rec->hits.empty());
        for (const Hit& h : rec->hits) EXPECT_NE(Brand(h.item), brand) << "user " << user;
        // Given with the request instead of as an event.
        hidden.recent.clear();
        hidden.hidden_brands = {brand};
        rec = engine_->Recommend(hidden);
        ASSERT_TRUE(rec.ok()) << rec.status().ToString();
        for (const Hit& h : rec->hits) EXPECT_NE(Brand(h.item), brand) << "user " << user;
      }
    }
  }
}

TEST_F(NegativeFeedbackTest, BadFeedbackIsRefusedWithAReason) {
  RecommendRequest r;
  r.user = engine_->users().id(0);
  r.not_interested = {"NOPE"};
  EXPECT_EQ(engine_->Recommend(r).status().code(), Status::Code::kNotFound);
  r.not_interested.clear();
  r.hidden_brands = {"No Such Maison"};
  auto rec = engine_->Recommend(r);
  EXPECT_EQ(rec.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(rec.status().message().find("cannot hide brand 'No Such Maison'"), std::string::npos);
  r.hidden_brands = {Brand(0)};
  r.brand_column = "colour";
  rec = engine_->Recommend(r);
  EXPECT_NE(rec.status().message().find("no categorical column 'colour'"), std::string::npos);
  r.hidden_brands.clear();
  r.negative_weight = -1;
  EXPECT_EQ(engine_->Recommend(r).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(FeedbackOfEvent("not_interested"), Feedback::kNotInterested);
  EXPECT_EQ(FeedbackOfEvent("hide_brand"), Feedback::kHideBrand);
  EXPECT_EQ(FeedbackOfEvent("return"), Feedback::kTaste);
  EXPECT_EQ(FeedbackOfEvent("gift_purchase"), Feedback::kGift);
  // A live gift purchase leaves the buyer's answer as it was.
  RecommendRequest plain;
  plain.user = engine_->users().id(0);
  plain.query.use_ranker = false;
  RecommendRequest gift = plain;
  gift.recent = {{engine_->catalog().ids.id(9), 10.0f, Feedback::kGift}};
  auto a = engine_->Recommend(plain), b = engine_->Recommend(gift);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->hits.size(), b->hits.size());
  for (size_t i = 0; i < a->hits.size(); ++i) EXPECT_EQ(a->hits[i].item, b->hits[i].item);
}

}  // namespace
}  // namespace vitrine
