// ItemEncoder::FitColdStart (engine/item_encoder.h): the cf block is scaled
// by its largest warm norm, and cold rows get the chosen quantile of the warm
// norms. Oracle: the norms sorted by hand.
#include "engine/item_encoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace vitrine {
namespace {

float RowNorm(const Matrix& m, size_t i) {
  double s = 0;
  for (size_t j = 0; j < m.cols; ++j) s += static_cast<double>(m.at(i, j)) * m.at(i, j);
  return static_cast<float>(std::sqrt(s));
}

TEST(ItemEncoderColdStart, ColdRowsGetTheChosenQuantileOfTheWarmNorms) {
  constexpr size_t kItems = 41, kDim = 4, kFeatures = 3;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> g;
  Matrix cf(kItems, kDim), content(kItems, kFeatures);
  std::vector<int64_t> counts(kItems);
  for (size_t i = 0; i < kItems; ++i) {
    // Warm rows of distinct norms 1..31; cold rows (every fourth) anything.
    counts[i] = i % 4 == 0 ? 1 : 10;
    for (size_t j = 0; j < kDim; ++j) cf.at(i, j) = g(rng);
    for (size_t j = 0; j < kFeatures; ++j) content.at(i, j) = g(rng);
  }
  std::vector<float> warm;
  for (size_t i = 0; i < kItems; ++i) {
    if (counts[i] < 5) continue;
    const float target = static_cast<float>(warm.size() + 1);
    const float n = RowNorm(cf, i);
    for (size_t j = 0; j < kDim; ++j) cf.at(i, j) *= target / n;
    warm.push_back(target);
  }
  std::sort(warm.begin(), warm.end());  // 1..30
  for (double q : {0.0, 0.25, 0.5, 1.0}) {
    ColdStartOptions o;
    o.norm_quantile = q;
    Matrix block = cf;
    ItemEncoder enc;
    std::string note;
    auto cold = enc.FitColdStart(o, counts, content, Matrix(), &block, &note);
    ASSERT_TRUE(cold.ok()) << cold.status().ToString();
    const float top = warm.back();
    const float want = warm[static_cast<size_t>(q * (warm.size() - 1) + 0.5)] / top;
    for (size_t i = 0; i < kItems; ++i) {
      if ((*cold)[i]) {
        EXPECT_NEAR(RowNorm(block, i), want, 1e-4) << "q " << q << " row " << i;
      } else {
        EXPECT_NEAR(RowNorm(block, i), RowNorm(cf, i) / top, 1e-4) << "q " << q << " row " << i;
      }
    }
  }
}

}  // namespace
}  // namespace vitrine
