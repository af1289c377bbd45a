// TasteMixture: planted tastes are recovered, queries agree with an exact
// scan, rules are kept, fits are deterministic and bad arrays are refused.
#include "embed/taste_mixture.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace vitrine {
namespace {

constexpr int kTastes = 3;
constexpr int kItemsPerTaste = 40;

// Users drawn from three planted tastes: each taste buys from its own block
// of 40 items (block t = items [40t, 40t + 40)), with 5% noise anywhere.
CsrMatrix Planted(int users, uint32_t seed, std::vector<int>* taste_of = nullptr) {
  std::mt19937 rng(seed);
  CsrMatrix m;
  m.rows = users;
  m.cols = kTastes * kItemsPerTaste;
  m.indptr.push_back(0);
  for (int u = 0; u < users; ++u) {
    const int t = u % kTastes;
    if (taste_of) taste_of->push_back(t);
    std::set<int32_t> row;
    const int n = 3 + static_cast<int>(rng() % 6);
    for (int e = 0; e < n; ++e) {
      const bool noise = rng() % 20 == 0;
      row.insert(noise ? static_cast<int32_t>(rng() % m.cols)
                       : static_cast<int32_t>(t * kItemsPerTaste + rng() % kItemsPerTaste));
    }
    for (int32_t i : row) {
      m.indices.push_back(i);
      m.values.push_back(1.0f);
    }
    m.indptr.push_back(m.nnz());
  }
  return m;
}

TasteMixtureOptions Small() {
  TasteMixtureOptions o;
  o.clusters = kTastes;
  o.iterations = 30;
  o.seed = 7;
  return o;
}

TEST(TasteMixtureTest, RecoversPlantedTastes) {
  const CsrMatrix x = Planted(600, 1);
  auto m = TasteMixture::Fit(x, Small());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  // A short history from one block: its top items all come from that block.
  for (int t = 0; t < kTastes; ++t) {
    const std::vector<int32_t> history = {t * kItemsPerTaste, t * kItemsPerTaste + 1};
    const std::vector<float> r = m->Posterior(history);
    EXPECT_GT(*std::max_element(r.begin(), r.end()), 0.95f) << "taste " << t;
    Bitmap all;
    all.addRange(0, static_cast<uint64_t>(x.cols));
    const auto top = m->Top(r, 10, all, history);
    ASSERT_EQ(top.size(), 10u);
    for (const ScoredItem& s : top) {
      EXPECT_EQ(s.item / kItemsPerTaste, t) << "item " << s.item << " for taste " << t;
      EXPECT_NE(s.item, history[0]);
      EXPECT_NE(s.item, history[1]);
    }
  }
}

TEST(TasteMixtureTest, TopMatchesAnExactScanAndKeepsTheBitmap) {
  const CsrMatrix x = Planted(300, 2);
  auto m = TasteMixture::Fit(x, Small());
  ASSERT_TRUE(m.ok());
  const std::vector<int32_t> history = {3, 50, 90};
  const std::vector<float> r = m->Posterior(history);
  Bitmap allowed;
  for (int32_t i = 0; i < x.cols; i += 2) allowed.add(static_cast<uint32_t>(i));  // even items
  const auto top = m->Top(r, 15, allowed, history);
  // The oracle: every allowed item outside the history, scored and sorted.
  std::vector<ScoredItem> all;
  for (int32_t i = 0; i < x.cols; ++i) {
    if (!allowed.contains(static_cast<uint32_t>(i)) ||
        std::find(history.begin(), history.end(), i) != history.end()) {
      continue;
    }
    all.push_back({i, m->Score(r, i)});
  }
  std::sort(all.begin(), all.end(), [](const ScoredItem& a, const ScoredItem& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  });
  ASSERT_EQ(top.size(), 15u);
  for (size_t j = 0; j < top.size(); ++j) {
    EXPECT_EQ(top[j].item, all[j].item) << "rank " << j;
    EXPECT_FLOAT_EQ(top[j].score, all[j].score);
    EXPECT_EQ(top[j].item % 2, 0);
  }
}

TEST(TasteMixtureTest, TheSameSeedFitsTheSameModelWhateverTheThreads) {
  const CsrMatrix x = Planted(400, 3);
  TasteMixtureOptions a = Small(), b = Small();
  a.threads = 1;
  b.threads = 2;
  auto ma = TasteMixture::Fit(x, a);
  auto mb = TasteMixture::Fit(x, b);
  ASSERT_TRUE(ma.ok() && mb.ok());
  EXPECT_EQ(ma->theta().data, mb->theta().data);
  EXPECT_EQ(ma->prior().data, mb->prior().data);
  TasteMixtureOptions c = Small();
  c.seed = 8;
  auto mc = TasteMixture::Fit(x, c);
  ASSERT_TRUE(mc.ok());
  EXPECT_NE(ma->theta().data, mc->theta().data);
}

TEST(TasteMixtureTest, StoredArraysRoundTripAndDamageIsRefused) {
  auto m = TasteMixture::Fit(Planted(200, 4), Small());
  ASSERT_TRUE(m.ok());
  auto back = TasteMixture::FromArrays(m->theta(), m->prior(), "t");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->theta().data, m->theta().data);

  Matrix theta = m->theta();
  theta.at(5, 1) = -0.1f;
  auto neg = TasteMixture::FromArrays(theta, m->prior(), "t");
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(neg.status().message().find("theta[5][1]"), std::string::npos) << neg.status().ToString();

  theta = m->theta();
  theta.at(5, 1) *= 50;  // taste 1 no longer sums to 1
  auto sum = TasteMixture::FromArrays(theta, m->prior(), "t");
  ASSERT_FALSE(sum.ok());
  EXPECT_NE(sum.status().message().find("taste 1 sums to"), std::string::npos);

  Matrix prior = m->prior();
  prior.data.push_back(0.5f);
  prior.rows += 1;
  EXPECT_FALSE(TasteMixture::FromArrays(m->theta(), prior, "t").ok());
}

TEST(TasteMixtureTest, OptionsAreBounded) {
  TasteMixtureOptions o = Small();
  o.clusters = TasteMixture::kMaxClusters + 1;
  EXPECT_FALSE(o.Validate().ok());
  o = Small();
  o.smoothing = 0;
  EXPECT_FALSE(o.Validate().ok());
  o = Small();
  o.iterations = 0;
  EXPECT_FALSE(o.Validate().ok());
  CsrMatrix empty;
  empty.rows = 2;
  empty.cols = 3;
  empty.indptr = {0, 0, 0};
  EXPECT_FALSE(TasteMixture::Fit(empty, Small()).ok());
}

TEST(TasteMixtureTest, UnknownItemsAreIgnored) {
  auto m = TasteMixture::Fit(Planted(200, 5), Small());
  ASSERT_TRUE(m.ok());
  const std::vector<int32_t> bad = {-1, 100000};
  const std::vector<float> r = m->Posterior(bad);  // the prior
  EXPECT_EQ(r.size(), static_cast<size_t>(kTastes));
  EXPECT_TRUE(std::isnan(m->Score(r, 100000)));
  EXPECT_TRUE(std::isnan(m->Score(r, -3)));
}

}  // namespace
}  // namespace vitrine
