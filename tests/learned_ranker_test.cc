#include "rank/learned_ranker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>

#include "core/file_util.h"
#include "scratch_dir.h"

namespace vitrine {
namespace {

constexpr int kFeatures = 6;
constexpr int kSignal = 2;  // the feature that decides relevance

// Groups of `per_group` candidates; every feature uniform in [0, 1), and the
// label a step function of feature kSignal alone (0..3). Fixed seed.
struct Synthetic {
  std::vector<float> x;
  std::vector<float> y;
  std::vector<uint32_t> groups;
  RankingData data() const { return {x, y, groups}; }
};

Synthetic MakeData(int groups, int per_group, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  Synthetic s;
  for (int g = 0; g < groups; ++g) {
    s.groups.push_back(per_group);
    for (int i = 0; i < per_group; ++i) {
      for (int j = 0; j < kFeatures; ++j) s.x.push_back(u(rng));
      s.y.push_back(std::floor(s.x[s.x.size() - kFeatures + kSignal] * 4.0f));
    }
  }
  return s;
}

std::vector<std::string> Names() {
  std::vector<std::string> n;
  for (int j = 0; j < kFeatures; ++j) {
    std::string name = "f";
    name += std::to_string(j);
    n.push_back(name);
  }
  return n;
}

// NDCG@k of one group ranked by `score` (gain 2^label - 1, log2 discount).
double Ndcg(std::span<const float> label, std::span<const float> score, size_t k) {
  std::vector<size_t> order(label.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return score[a] > score[b]; });
  std::vector<float> ideal(label.begin(), label.end());
  std::sort(ideal.rbegin(), ideal.rend());
  double dcg = 0, idcg = 0;
  for (size_t r = 0; r < std::min(k, label.size()); ++r) {
    dcg += (std::pow(2.0, label[order[r]]) - 1) / std::log2(r + 2.0);
    idcg += (std::pow(2.0, ideal[r]) - 1) / std::log2(r + 2.0);
  }
  return idcg == 0 ? 1.0 : dcg / idcg;
}

RankerOptions SmallParams() {
  RankerOptions p;
  p.rounds = 40;
  p.max_depth = 4;
  p.eta = 0.3;
  p.seed = 7;
  p.nthread = 1;
  p.subsample = 0.8;  // exercises the seeded sampling in the determinism test
  return p;
}

class LearnedRankerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new Synthetic(MakeData(200, 20, 1));
    auto r = LearnedRanker::Train(train_->data(), Names(), SmallParams());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ranker_ = new LearnedRanker(std::move(*r));
  }
  static void TearDownTestSuite() {
    delete ranker_;
    delete train_;
  }
  static Synthetic* train_;
  static LearnedRanker* ranker_;
};
Synthetic* LearnedRankerTest::train_ = nullptr;
LearnedRanker* LearnedRankerTest::ranker_ = nullptr;

TEST_F(LearnedRankerTest, LearnsToRankByTheDecisiveFeature) {
  const Synthetic test = MakeData(100, 20, 99);  // held-out groups
  auto scores = ranker_->Predict(test.x, test.y.size());
  ASSERT_TRUE(scores.ok()) << scores.status().ToString();
  double model = 0, noise = 0;
  for (size_t g = 0; g < test.groups.size(); ++g) {
    const size_t b = g * 20;
    std::span<const float> label(test.y.data() + b, 20);
    model += Ndcg(label, std::span<const float>(scores->data() + b, 20), 10);
    std::vector<float> other(20);  // a noise feature as the score: the floor
    for (size_t i = 0; i < 20; ++i) other[i] = test.x[(b + i) * kFeatures + 0];
    noise += Ndcg(label, other, 10);
  }
  model /= test.groups.size();
  noise /= test.groups.size();
  std::printf("held-out NDCG@10: model %.4f, a noise feature %.4f\n", model, noise);
  EXPECT_GT(model, 0.97);
  EXPECT_LT(noise, 0.8);
}

TEST_F(LearnedRankerTest, ExplanationsNameTheDecisiveFeature) {
  const Synthetic test = MakeData(5, 20, 5);
  std::vector<double> mean_abs(kFeatures, 0.0);
  for (size_t i = 0; i < test.y.size(); ++i) {
    std::span<const float> row(test.x.data() + i * kFeatures, kFeatures);
    auto e = ranker_->Explain(row);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(e->contributions.size(), static_cast<size_t>(kFeatures));
    float score = 0;
    ASSERT_TRUE(ranker_->Predict(row, 1, {&score, 1}).ok());
    EXPECT_NEAR(e->score, score, 1e-3);  // contributions + bias add up to the score
    for (size_t r = 1; r < e->contributions.size(); ++r)
      EXPECT_GE(std::fabs(e->contributions[r - 1].value), std::fabs(e->contributions[r].value));
    for (const auto& c : e->contributions) mean_abs[c.feature] += std::fabs(c.value);
    // Far from the label thresholds the signal feature dominates outright.
    const float v = row[kSignal];
    if (v < 0.1f || v > 0.9f) {
      EXPECT_EQ(e->contributions[0].feature, kSignal) << "row " << i;
      EXPECT_EQ(e->contributions[0].name, "f2");
    }
  }
  const auto top = std::max_element(mean_abs.begin(), mean_abs.end()) - mean_abs.begin();
  EXPECT_EQ(top, kSignal);
}

TEST_F(LearnedRankerTest, SameSeedSameModel) {
  auto again = LearnedRanker::Train(train_->data(), Names(), SmallParams());
  ASSERT_TRUE(again.ok());
  auto a = ranker_->Serialize();
  auto b = again->Serialize();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  const Synthetic test = MakeData(10, 20, 3);
  EXPECT_EQ(*ranker_->Predict(test.x, test.y.size()), *again->Predict(test.x, test.y.size()));
  // The seed matters (subsample < 1 samples rows with it).
  RankerOptions other = SmallParams();
  other.seed = 8;
  auto c = LearnedRanker::Train(train_->data(), Names(), other);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c->Serialize());
}

TEST_F(LearnedRankerTest, ConcurrentPredictMatchesSerial) {
  const Synthetic test = MakeData(40, 200, 13);
  auto serial = ranker_->Predict(test.x, test.y.size());
  ASSERT_TRUE(serial.ok());
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> out(200);
      for (int rep = 0; rep < 30; ++rep) {
        const size_t g = static_cast<size_t>((t * 7 + rep) % 40);
        std::span<const float> rows(test.x.data() + g * 200 * kFeatures, 200 * kFeatures);
        // Both scoring paths, interleaved across threads.
        const Status st = rep % 2 == 0 ? ranker_->Predict(rows, 200, out)
                                       : ranker_->PredictWithXgboost(rows, 200, out);
        if (!st.ok()) ++mismatches[t];
        for (size_t i = 0; i < 200; ++i)
          if (out[i] != (*serial)[g * 200 + i]) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST_F(LearnedRankerTest, FlatForestReproducesXgboostExactly) {
  ASSERT_TRUE(ranker_->uses_flat_forest());
  // Held-out rows and training rows (their values are the split thresholds'
  // neighbours and sometimes equal to them), first complete, then with 10%
  // missing values.
  Synthetic rows = MakeData(20, 20, 77);
  rows.x.insert(rows.x.end(), train_->x.begin(), train_->x.begin() + 400 * kFeatures);
  {
    // Without missing values (the kernel without the NaN test).
    const size_t n = rows.x.size() / kFeatures;
    std::vector<float> flat(n), xgb(n);
    ASSERT_TRUE(ranker_->Predict(rows.x, n, flat).ok());
    ASSERT_TRUE(ranker_->PredictWithXgboost(rows.x, n, xgb).ok());
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(flat[i], xgb[i]) << "row " << i;
  }
  std::mt19937 rng(4);
  for (float& v : rows.x)
    if (rng() % 10 == 0) v = std::nanf("");
  const size_t n = rows.x.size() / kFeatures;
  std::vector<float> flat(n), xgb(n);
  ASSERT_TRUE(ranker_->Predict(rows.x, n, flat).ok());
  ASSERT_TRUE(ranker_->PredictWithXgboost(rows.x, n, xgb).ok());
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(flat[i], xgb[i]) << "row " << i;
  // Batch sizes around the 8-row block.
  for (size_t m : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{17}}) {
    std::vector<float> part(m);
    ASSERT_TRUE(
        ranker_->Predict(std::span<const float>(rows.x).first(m * kFeatures), m, part).ok());
    for (size_t i = 0; i < m; ++i) EXPECT_EQ(part[i], xgb[i]) << "batch " << m << " row " << i;
  }
}

TEST(LearnedRankerTrainTest, DeepForestsFallBackToXgboost) {
  const Synthetic s = MakeData(100, 40, 8);
  RankerOptions p = SmallParams();
  p.rounds = 3;
  p.max_depth = 12;
  p.min_child_weight = 0;
  auto r = LearnedRanker::Train(s.data(), Names(), p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->uses_flat_forest());
  std::vector<float> a(s.y.size()), b(s.y.size());
  ASSERT_TRUE(r->Predict(s.x, s.y.size(), a).ok());
  ASSERT_TRUE(r->PredictWithXgboost(s.x, s.y.size(), b).ok());
  EXPECT_EQ(a, b);
}

TEST_F(LearnedRankerTest, MissingValuesAndSizesAreHandled) {
  std::vector<float> row(kFeatures, std::nanf(""));
  float s = 0;
  EXPECT_TRUE(ranker_->Predict(row, 1, {&s, 1}).ok());
  EXPECT_TRUE(std::isfinite(s));
  EXPECT_EQ(ranker_->Predict(row, 2, {&s, 1}).code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(ranker_->Predict({}, 0).ok());
  EXPECT_EQ(ranker_->Explain(std::span<const float>(row.data(), 3)).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(LearnedRanker().Predict(row, 1).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ranker_->num_features(), kFeatures);
  EXPECT_EQ(ranker_->num_trees(), 40);
}

TEST(LearnedRankerTrainTest, RejectsInconsistentInput) {
  Synthetic s = MakeData(3, 4, 1);
  auto code = [](const Result<LearnedRanker>& r) { return r.status().code(); };
  const auto kBad = Status::Code::kInvalidArgument;
  std::vector<uint32_t> groups = {4, 4, 3};
  EXPECT_EQ(code(LearnedRanker::Train({s.x, s.y, groups}, Names())), kBad);
  groups = {4, 0, 4, 4};
  EXPECT_EQ(code(LearnedRanker::Train({s.x, s.y, groups}, Names())), kBad);
  EXPECT_EQ(
      code(LearnedRanker::Train({std::span<const float>(s.x).first(10), s.y, s.groups}, Names())),
      kBad);
  auto names = Names();
  names[1] = "f0";
  EXPECT_EQ(code(LearnedRanker::Train(s.data(), names)), kBad);
  names[1] = "has space";
  EXPECT_EQ(code(LearnedRanker::Train(s.data(), names)), kBad);
  s.y[2] = -1;
  const auto st = LearnedRanker::Train(s.data(), Names()).status();
  EXPECT_EQ(st.code(), kBad);
  EXPECT_NE(st.message().find("row 2"), std::string::npos) << st.message();
  s.y[2] = 1;
  RankerOptions p;
  p.rounds = 0;
  EXPECT_EQ(code(LearnedRanker::Train(s.data(), Names(), p)), kBad);
  p = {};
  p.eta = 0;
  EXPECT_EQ(code(LearnedRanker::Train(s.data(), Names(), p)), kBad);
}

class LearnedRankerFileTest : public LearnedRankerTest {
 protected:
  void SetUp() override {
    auto b = ranker_->Serialize();
    ASSERT_TRUE(b.ok());
    bytes_ = std::move(*b);
    // magic 8, version 4, count 4, trees 4, reserved 4, names "f0".."f5" (4 + 2 each)
    model_len_at_ = 24 + kFeatures * 6;
  }
  static void Reseal(std::string* b) {
    const uint64_t h = Xxh64(std::string_view(*b).substr(0, b->size() - 8));
    std::memcpy(b->data() + b->size() - 8, &h, 8);
  }
  static Status Load(std::string_view b, std::span<const std::string> expected = {}) {
    return LearnedRanker::Deserialize(b, "ranker.bin", expected).status();
  }
  std::string bytes_;
  size_t model_len_at_ = 0;
};

void ExpectCorruption(const Status& st, const std::string& needle) {
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("ranker.bin"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

TEST_F(LearnedRankerFileTest, RoundTripsThroughBytesAndFile) {
  const auto path = ScratchDir() / "ranker.bin";
  ASSERT_TRUE(ranker_->Save(path).ok());
  auto back = LearnedRanker::Load(path, Names());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->feature_names(), Names());
  EXPECT_EQ(back->num_trees(), 40);
  const Synthetic test = MakeData(5, 20, 21);
  EXPECT_EQ(*back->Predict(test.x, test.y.size()), *ranker_->Predict(test.x, test.y.size()));
  EXPECT_EQ(*back->Serialize(), bytes_);
}

TEST_F(LearnedRankerFileTest, PinsTheHeaderLayout) {
  EXPECT_EQ(bytes_.substr(0, 8), std::string("VTRLTR\r\n"));
  uint32_t v[4];
  std::memcpy(v, bytes_.data() + 8, 16);
  EXPECT_EQ(v[0], 1u);  // version
  EXPECT_EQ(v[1], static_cast<uint32_t>(kFeatures));
  EXPECT_EQ(v[2], 40u);  // trees
  EXPECT_EQ(v[3], 0u);   // reserved
  uint32_t len = 0;
  std::memcpy(&len, bytes_.data() + 24, 4);
  EXPECT_EQ(len, 2u);
  EXPECT_EQ(bytes_.substr(28, 2), "f0");
  uint64_t model_len = 0;
  std::memcpy(&model_len, bytes_.data() + model_len_at_, 8);
  EXPECT_EQ(bytes_.size(), model_len_at_ + 8 + model_len + 8);
  EXPECT_EQ(bytes_[model_len_at_ + 8], '{');  // UBJSON object
}

TEST_F(LearnedRankerFileTest, RefusesCorruptTruncatedOrMismatchedModels) {
  std::string b = bytes_;
  b[1] = 'X';
  ExpectCorruption(Load(b), "bad magic");
  // Truncated anywhere: in the header, a name, the model or the checksum.
  for (size_t cut : {size_t{12}, size_t{26}, model_len_at_ + 4, model_len_at_ + 100,
                     bytes_.size() / 2, bytes_.size() - 1}) {
    ExpectCorruption(Load(std::string_view(bytes_).substr(0, cut)), "truncated");
  }
  ExpectCorruption(Load(bytes_ + "xy"), "trailing bytes");
  b = bytes_;
  b[bytes_.size() - 100] ^= 0x20;  // inside the model
  ExpectCorruption(Load(b), "checksum mismatch");
  b = bytes_;
  b[8] = 9;
  EXPECT_EQ(Load(b).code(), Status::Code::kUnsupported);
  // Valid checksum, wrong tree count in the header.
  b = bytes_;
  b[16] = 41;
  Reseal(&b);
  ExpectCorruption(Load(b), "41");
  // Valid checksum over a model XGBoost cannot parse.
  b = bytes_;
  std::memset(b.data() + model_len_at_ + 8, 'z', 64);
  Reseal(&b);
  ExpectCorruption(Load(b), "not XGBoost UBJSON");
  b = bytes_;
  std::memset(b.data() + model_len_at_ + 9, 'z', 64);  // '{' kept, the rest junk
  Reseal(&b);
  ExpectCorruption(Load(b), "does not parse");
  // The engine's features differ from the model's.
  auto names = Names();
  names[3] = "price_rel";
  ExpectCorruption(Load(bytes_, names), "feature 3 is 'f3' in the model, expected 'price_rel'");
  names.pop_back();
  ExpectCorruption(Load(bytes_, names), "6 features");
}

}  // namespace
}  // namespace vitrine
