#include "engine/evaluate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "tests/test_util.h"

namespace vitrine {
namespace {

EvalOptions WithK(int k) {
  EvalOptions o;
  o.k = k;
  return o;
}

// Returns a fixed list per user.
class Scripted : public Recommender {
 public:
  explicit Scripted(std::map<int32_t, std::vector<int32_t>> lists) : lists_(std::move(lists)) {}
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t>,
                                         int) const override {
    auto it = lists_.find(user);
    return it == lists_.end() ? std::vector<int32_t>{} : it->second;
  }
  std::string name() const override { return "scripted"; }

 private:
  std::map<int32_t, std::vector<int32_t>> lists_;
};

TEST(ScoreListTest, HandComputedValues) {
  const std::vector<int32_t> test = {1, 3, 4};
  const std::vector<int32_t> rec = {5, 1, 7, 3, 9};
  // k = 5: hits at ranks 1 and 3; m = min(5, 3) = 3.
  ListMetrics m = ScoreList(rec, test, 5);
  EXPECT_EQ(m.hits, 2);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.recall_plain, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.precision, 0.4);
  // (1/log2 3 + 1/log2 5) / (1 + 1/log2 3 + 1/log2 4)
  EXPECT_NEAR(m.ndcg, 0.49818925746641285, 1e-12);
  EXPECT_NEAR(m.ap, (1.0 / 2 + 2.0 / 4) / 3, 1e-12);

  // k = 2: only item 1 hits; recall normalised by min(2, 3) = 2.
  m = ScoreList(rec, test, 2);
  EXPECT_EQ(m.hits, 1);
  EXPECT_DOUBLE_EQ(m.recall, 0.5);
  EXPECT_DOUBLE_EQ(m.recall_plain, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.precision, 0.5);
  EXPECT_NEAR(m.ndcg, 0.38685280723454163, 1e-12);
  EXPECT_NEAR(m.ap, 0.25, 1e-12);
}

TEST(ScoreListTest, DuplicatesShortListsAndEmptyTest) {
  // The repeated 1 must not hit twice.
  ListMetrics m = ScoreList(std::vector<int32_t>{1, 1, 3}, std::vector<int32_t>{1, 3}, 3);
  EXPECT_EQ(m.hits, 2);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_NEAR(m.ndcg, 0.9197207891481876, 1e-12);  // (1 + 1/log2 4) / (1 + 1/log2 3)
  EXPECT_NEAR(m.ap, (1.0 + 2.0 / 3) / 2, 1e-12);

  // A list shorter than k: precision counts k, the rest is perfect.
  m = ScoreList(std::vector<int32_t>{1}, std::vector<int32_t>{1}, 10);
  EXPECT_DOUBLE_EQ(m.precision, 0.1);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(m.ap, 1.0);

  m = ScoreList(std::vector<int32_t>{1, 2}, std::vector<int32_t>{}, 10);
  EXPECT_EQ(m.hits, 0);
  EXPECT_EQ(m.ndcg, 0.0);
  EXPECT_EQ(m.recall, 0.0);
}

TEST(BeyondAccuracyTest, DiversityAndBrands) {
  Matrix v(4, 2);
  const float rows[4][2] = {{1, 0}, {0, 1}, {1, 1}, {0, 0}};
  for (int i = 0; i < 4; ++i) v.at(i, 0) = rows[i][0], v.at(i, 1) = rows[i][1];
  // Pairs: (0,1) cos 0, (0,2) and (1,2) cos 1/sqrt 2.
  EXPECT_NEAR(IntraListDiversity(std::vector<int32_t>{0, 1, 2}, v), (3 - std::sqrt(2.0)) / 3, 1e-9);
  EXPECT_NEAR(IntraListDiversity(std::vector<int32_t>{0, 3}, v), 1.0, 1e-12);  // zero vector
  EXPECT_TRUE(std::isnan(IntraListDiversity(std::vector<int32_t>{0}, v)));

  const std::vector<int32_t> brands = {0, 0, 1, -1, 2};
  const std::vector<int32_t> list = {0, 1, 2, 3};  // brands 0, 0, 1, none
  EXPECT_DOUBLE_EQ(BrandMaxShare(list, brands), 0.5);
  EXPECT_DOUBLE_EQ(BrandHhi(list, brands), (4.0 + 1.0) / 16);
  EXPECT_DOUBLE_EQ(BrandMaxShare(std::vector<int32_t>{3}, brands), 0.0);
  EXPECT_TRUE(std::isnan(BrandMaxShare(std::vector<int32_t>{}, brands)));
}

// Four users, six items; user 2 has no test items and is skipped.
struct Fixture {
  CsrMatrix train = CsrFromRows({{0, 1}, {2}, {3}, {4}}, 6);
  CsrMatrix test = CsrFromRows({{2, 3}, {0}, {}, {5}}, 6);
  Scripted model{{{0, {2, 4, 3}}, {1, {1, 0}}, {2, {5}}, {3, {0, 1, 2}}}};
};

TEST(EvaluateTest, ReportMatchesHandComputedMeans) {
  Fixture f;
  Matrix vec(6, 2);
  const float rows[6][2] = {{1, 0}, {1, 0}, {0, 1}, {0, 1}, {1, 0}, {1, 1}};
  for (int i = 0; i < 6; ++i) vec.at(i, 0) = rows[i][0], vec.at(i, 1) = rows[i][1];
  const std::vector<int32_t> brands = {0, 0, 1, 1, 2, -1};
  const std::vector<uint8_t> cold = {0, 0, 0, 1, 0, 1};
  EvalOptions o;
  o.k = 3;
  o.item_vectors = &vec;
  o.item_brands = brands;
  o.cold_items = cold;
  o.complies = [](int32_t, std::span<const int32_t> l) {
    return std::find(l.begin(), l.end(), 4) == l.end();
  };
  Result<EvalReport> r = Evaluate(f.model, f.train, f.test, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Per user (k = 3):  u0 R=[2,4,3] T={2,3}; u1 R=[1,0] T={0}; u3 R=[0,1,2] T={5}.
  EXPECT_EQ(r->model, "scripted");
  EXPECT_EQ(r->users, 3);
  EXPECT_NEAR(r->recall, (1 + 1 + 0) / 3.0, 1e-12);
  EXPECT_NEAR(r->recall_plain, (1 + 1 + 0) / 3.0, 1e-12);
  EXPECT_NEAR(r->precision, (2.0 / 3 + 1.0 / 3 + 0) / 3, 1e-12);
  EXPECT_NEAR(r->ndcg, (0.9197207891481876 + 1 / std::log2(3.0)) / 3, 1e-12);
  EXPECT_NEAR(r->map, ((1 + 2.0 / 3) / 2 + 0.5 + 0) / 3, 1e-12);
  EXPECT_NEAR(r->coverage, 5.0 / 6, 1e-12);  // items 0..4 recommended, 5 never
  // Diversity: u0 2/3, u1 0, u3 2/3.
  EXPECT_NEAR(r->diversity, 4.0 / 9, 1e-9);
  // Brands: u0 {1,2,1}, u1 {0,0}, u3 {0,0,1}.
  EXPECT_NEAR(r->brand_max_share, (2.0 / 3 + 1 + 2.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(r->brand_hhi, (5.0 / 9 + 1 + 5.0 / 9) / 3, 1e-12);
  // Only u0 recommends item 4.
  EXPECT_NEAR(r->compliance, 2.0 / 3, 1e-12);
  // Cold test items: u0 {3} (hit), u3 {5} (miss); u1 has none.
  EXPECT_EQ(r->cold_users, 2);
  EXPECT_NEAR(r->cold_recall, 0.5, 1e-12);

  const nlohmann::json j = r->ToJson();
  EXPECT_EQ(j["users"], 3);
  EXPECT_NEAR(j["ndcg"].get<double>(), r->ndcg, 1e-15);
  EXPECT_NE(r->ToString().find("cold_recall=0.5000"), std::string::npos) << r->ToString();
}

// Fails for one user: the evaluation must fail, never score that user's
// list as empty.
class FailsForUser3 : public Recommender {
 public:
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t>,
                                         int) const override {
    if (user == 3) return Status::Internal("the index went away");
    return std::vector<int32_t>{0, 1};
  }
  std::string name() const override { return "flaky"; }
};

TEST(EvaluateTest, AFailingModelFailsTheEvaluation) {
  Fixture f;
  FailsForUser3 model;
  Result<EvalReport> r = Evaluate(model, f.train, f.test, WithK(3));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model 'flaky'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("the index went away"), std::string::npos);
}

TEST(EvaluateTest, OptionalMetricsAreNullWhenNotRequested) {
  Fixture f;
  Result<EvalReport> r = Evaluate(f.model, f.train, f.test, WithK(3));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::isnan(r->diversity));
  EXPECT_TRUE(std::isnan(r->compliance));
  EXPECT_TRUE(r->ToJson()["cold_recall"].is_null());
  EXPECT_EQ(r->ToString().find("diversity"), std::string::npos);
}

TEST(EvaluateTest, ListsAreCutToK) {
  Fixture f;
  // At k = 1, u0's list is [2] (hit), u1's [1] (miss), u3's [0] (miss).
  Result<EvalReport> r = Evaluate(f.model, f.train, f.test, WithK(1));
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->recall, 1.0 / 3, 1e-12);
  EXPECT_NEAR(r->coverage, 3.0 / 6, 1e-12);
}

TEST(EvaluateTest, RejectsBadInputWithClearMessages) {
  Fixture f;
  EXPECT_EQ(Evaluate(f.model, f.train, f.test, WithK(0)).status().code(),
            Status::Code::kInvalidArgument);
  CsrMatrix narrow = CsrFromRows({{0}, {0}, {0}, {0}}, 5);
  Status st = Evaluate(f.model, f.train, narrow).status();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("4 x 5"), std::string::npos) << st.message();

  const std::vector<int32_t> short_brands = {0, 1};
  EvalOptions o;
  o.item_brands = short_brands;
  st = Evaluate(f.model, f.train, f.test, o).status();
  EXPECT_NE(st.message().find("item_brands has 2 entries"), std::string::npos) << st.message();

  Scripted bad({{0, {1}}, {1, {6}}, {3, {-1}}});
  st = Evaluate(bad, f.train, f.test).status();
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  // The first bad user in row order is named.
  EXPECT_NE(st.message().find("returned item 6 for user row 1"), std::string::npos) << st.message();
}

// Recommends the user's test items interleaved with noise; deterministic in
// the user id only, so any thread schedule must give the same report.
class Noisy : public Recommender {
 public:
  explicit Noisy(const CsrMatrix* test) : test_(test) {}
  Result<std::vector<int32_t>> Recommend(int32_t user, std::span<const int32_t>,
                                         int k) const override {
    std::mt19937 rng(static_cast<uint32_t>(user));
    std::vector<int32_t> out;
    for (int i = 0; i < k; ++i) {
      const int64_t row = test_->row_size(user);
      if (rng() % 3 == 0 && row > 0) {
        out.push_back(test_->indices[test_->indptr[user] + static_cast<int64_t>(rng() % row)]);
      } else {
        out.push_back(static_cast<int32_t>(rng() % test_->cols));
      }
    }
    return out;
  }
  std::string name() const override { return "noisy"; }

 private:
  const CsrMatrix* test_;
};

TEST(EvaluateTest, SameReportForAnyThreadCountAndSampledUsers) {
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> tr(500), te(500);
  for (int u = 0; u < 500; ++u) {
    for (int j = 0; j < 200; ++j) {
      const uint32_t x = rng() % 100;
      if (x < 5)
        tr[u].push_back(j);
      else if (x < 8)
        te[u].push_back(j);
    }
  }
  const CsrMatrix train = CsrFromRows(tr, 200), test = CsrFromRows(te, 200);
  Noisy model(&test);
  auto run = [&](int threads, int64_t max_users) {
    EvalOptions o;
    o.k = 10;
    o.num_threads = threads;
    o.max_users = max_users;
    Result<EvalReport> r = Evaluate(model, train, test, o);
    EXPECT_TRUE(r.ok());
    nlohmann::json j = r->ToJson();
    j.erase("seconds");
    return j;
  };
  const nlohmann::json one = run(1, 0);
  EXPECT_EQ(one, run(2, 0));
  EXPECT_EQ(one, run(3, 0));
  EXPECT_GT(one["ndcg"].get<double>(), 0.05);
  const nlohmann::json sample = run(2, 100);
  EXPECT_EQ(sample["users"], 100);
  EXPECT_EQ(sample, run(1, 100));
  EXPECT_NE(sample["ndcg"], one["ndcg"]);
}

TEST(AlignRowsTest, ReindexesTestUsersOntoTrainRows) {
  IdMap train_users, test_users;
  for (const char* id : {"a", "b", "c"}) train_users.Add(id);
  for (const char* id : {"c", "x", "a"}) test_users.Add(id);
  const CsrMatrix test = CsrFromRows({{1, 2}, {0}, {3}}, 4);  // c: {1,2}, x: {0}, a: {3}
  int64_t dropped = -1;
  const CsrMatrix out = AlignRows(train_users, test_users, test, &dropped);
  EXPECT_EQ(dropped, 1);  // x
  ASSERT_EQ(out.rows, 3);
  EXPECT_EQ(out.cols, 4);
  EXPECT_EQ(out.indptr, (std::vector<int64_t>{0, 1, 1, 3}));
  EXPECT_EQ(out.indices, (std::vector<int32_t>{3, 1, 2}));
  EXPECT_EQ(out.values.size(), 3u);
}

}  // namespace
}  // namespace vitrine
