#include "embed/fusion.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "tests/test_util.h"

namespace vitrine {
namespace {

TEST(FusionTest, ConcatenatesNormalisedBlocksWithLayout) {
  Matrix cf = Gaussian(20, 8, 1), content = Gaussian(20, 5, 2), visual = Gaussian(20, 3, 3);
  for (size_t j = 0; j < 3; ++j) visual.at(4, j) = 0;  // an item without an image
  auto fused = Fuse({{"cf", cf, 1.0f}, {"content", content, 0.5f}, {"visual", visual, 0.25f}});
  ASSERT_TRUE(fused.ok()) << fused.status().ToString();
  ASSERT_EQ(fused->dim(), 16u);
  ASSERT_EQ(fused->vectors.rows, 20u);
  ASSERT_EQ(fused->layout.size(), 3u);
  EXPECT_EQ(fused->layout[1].name, "content");
  EXPECT_EQ(fused->layout[1].offset, 8u);
  EXPECT_EQ(fused->layout[1].dim, 5u);
  EXPECT_FLOAT_EQ(fused->layout[2].weight, 0.25f);
  const Matrix* raw[3] = {&cf, &content, &visual};
  for (size_t i = 0; i < 20; ++i) {
    for (size_t b = 0; b < 3; ++b) {
      const BlockLayout& bl = fused->layout[b];
      double norm2 = 0, dot = 0, rn = 0;
      for (size_t j = 0; j < bl.dim; ++j) {
        const double f = fused->vectors.at(i, bl.offset + j), r = raw[b]->at(i, j);
        norm2 += f * f;
        dot += f * r;
        rn += r * r;
      }
      if (b == 2 && i == 4) {
        EXPECT_EQ(norm2, 0.0) << "zero rows stay zero";
      } else {
        EXPECT_NEAR(norm2, 1.0, 1e-5);
        EXPECT_NEAR(dot, std::sqrt(rn), 1e-4) << "same direction as the input row";
      }
    }
  }
}

TEST(FusionTest, ScaledQueryInnerProductIsWeightedSumOfBlockCosines) {
  Matrix cf = Gaussian(30, 6, 4), content = Gaussian(30, 4, 5), visual = Gaussian(30, 7, 6);
  auto fused = Fuse({{"cf", cf, 1.0f}, {"content", content, 1.0f}, {"visual", visual, 0.3f}});
  ASSERT_TRUE(fused.ok());
  const std::map<std::string, float> weights = {{"cf", 0.7f}, {"content", 0.2f}};
  const float w[3] = {0.7f, 0.2f, 0.3f};  // visual keeps its default
  const Matrix* raw[3] = {&cf, &content, &visual};
  for (size_t q = 0; q < 30; q += 7) {
    std::vector<float> query(fused->vectors.row(q), fused->vectors.row(q) + fused->dim());
    ASSERT_TRUE(ScaleQuery(fused->layout, weights, query.data()).ok());
    for (size_t i = 0; i < 30; ++i) {
      double ip = 0, expected = 0;
      for (size_t j = 0; j < fused->dim(); ++j) ip += double(query[j]) * fused->vectors.at(i, j);
      for (size_t b = 0; b < 3; ++b) {
        expected += w[b] * Cosine(raw[b]->row_span(q), raw[b]->row_span(i));
      }
      EXPECT_NEAR(ip, expected, 1e-5) << "query " << q << " item " << i;
      auto cos = BlockCosines(fused->layout, fused->vectors.row(q), fused->vectors.row(i));
      ASSERT_EQ(cos.size(), 3u);
      for (size_t b = 0; b < 3; ++b) {
        EXPECT_NEAR(cos[b], Cosine(raw[b]->row_span(q), raw[b]->row_span(i)), 1e-5);
      }
    }
  }
}

TEST(FusionTest, RejectsMismatchedRows) {
  auto fused = Fuse({{"cf", Gaussian(10, 4, 1), 1}, {"visual", Gaussian(9, 4, 2), 1}});
  ASSERT_FALSE(fused.ok());
  EXPECT_EQ(fused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(fused.status().message().find("'visual' has 9 rows"), std::string::npos)
      << fused.status().message();
  EXPECT_NE(fused.status().message().find("'cf' has 10"), std::string::npos);
}

TEST(FusionTest, RejectsNonFiniteNamingBlockAndRow) {
  Matrix content = Gaussian(10, 4, 1);
  content.at(7, 2) = std::numeric_limits<float>::quiet_NaN();
  auto fused = Fuse({{"cf", Gaussian(10, 4, 2), 1}, {"content", content, 1}});
  ASSERT_FALSE(fused.ok());
  EXPECT_NE(fused.status().message().find("block 'content' row 7"), std::string::npos)
      << fused.status().message();
  Matrix cf = Gaussian(10, 4, 3);
  cf.at(0, 0) = std::numeric_limits<float>::infinity();
  auto inf = Fuse({{"cf", cf, 1}});
  ASSERT_FALSE(inf.ok());
  EXPECT_NE(inf.status().message().find("block 'cf' row 0"), std::string::npos);
}

TEST(FusionTest, RejectsDuplicateEmptyAndNoBlocks) {
  EXPECT_FALSE(Fuse({}).ok());
  EXPECT_FALSE(Fuse({{"cf", Gaussian(3, 2, 1), 1}, {"cf", Gaussian(3, 2, 2), 1}}).ok());
  EXPECT_FALSE(Fuse({{"", Gaussian(3, 2, 1), 1}}).ok());
  EXPECT_FALSE(Fuse({{"cf", Matrix(3, 0), 1}}).ok());
}

TEST(FusionTest, ScaleQueryRejectsUnknownBlockAndLeavesQueryUnchanged) {
  std::vector<BlockLayout> layout = {{"cf", 0, 2, 1.0f}, {"content", 2, 2, 1.0f}};
  std::vector<float> q = {1, 2, 3, 4};
  Status st = ScaleQuery(layout, {{"cf", 2.0f}, {"visaul", 1.0f}}, q.data());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'visaul'"), std::string::npos);
  EXPECT_EQ(q, (std::vector<float>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace vitrine
