// Distance kernels (core/simd.h) against double-precision sums, at every
// level this CPU runs, over lengths that hit every loop tail.
#include "core/simd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace vitrine::simd {
namespace {

struct Data {
  std::vector<float> x, y, scale;
  std::vector<uint8_t> codes;
};

Data Random(size_t d, std::mt19937& rng) {
  std::normal_distribution<float> n;
  std::uniform_real_distribution<float> u(0.001f, 0.05f);
  Data r;
  for (size_t i = 0; i < d; ++i) {
    r.x.push_back(n(rng));
    r.y.push_back(n(rng));
    r.scale.push_back(u(rng));
    r.codes.push_back(static_cast<uint8_t>(rng() % 256));
  }
  return r;
}

// Float sums of d terms differ from the double sum by at most about
// d * eps * sum |term|; the kernels' error is far smaller, so this bound
// still catches a missed or doubled element (one term is ~1 / d of the sum).
void ExpectClose(double want, double got, double abs_terms, size_t d, const char* what) {
  const double tol = 1e-6 * abs_terms * std::sqrt(static_cast<double>(d) + 1) + 1e-30;
  EXPECT_NEAR(got, want, tol) << what << " d=" << d;
}

TEST(Simd, EveryLevelMatchesADoubleSum) {
  std::mt19937 rng(7);
  int levels = 0;
  for (Level level : {Level::kBaseline, Level::kAvx2, Level::kAvx512}) {
    const Kernels* k = ForLevel(level);
    if (k == nullptr) continue;  // this CPU cannot run it
    ++levels;
    EXPECT_EQ(k->level, level);
    for (size_t d : {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 193, 784}) {
      const Data v = Random(d, rng);
      double ip = 0, ip_abs = 0, l2 = 0, sq_l2 = 0, sq_l2_abs = 0, sq_ip = 0, sq_ip_abs = 0;
      for (size_t i = 0; i < d; ++i) {
        const double t = double(v.x[i]) * v.y[i];
        ip += t;
        ip_abs += std::abs(t);
        const double diff = double(v.x[i]) - v.y[i];
        l2 += diff * diff;
        const double e = double(v.x[i]) - double(v.scale[i]) * v.codes[i];
        sq_l2 += e * e;
        sq_l2_abs += e * e;
        sq_ip += double(v.x[i]) * v.codes[i];
        sq_ip_abs += std::abs(double(v.x[i]) * v.codes[i]);
      }
      ExpectClose(ip, k->ip(v.x.data(), v.y.data(), d), ip_abs, d, "ip");
      ExpectClose(l2, k->l2(v.x.data(), v.y.data(), d), l2, d, "l2");
      ExpectClose(sq_l2, k->sq8_l2(v.x.data(), v.scale.data(), v.codes.data(), d), sq_l2_abs, d,
                  "sq8_l2");
      ExpectClose(sq_ip, k->sq8_ip(v.x.data(), v.scale.data(), v.codes.data(), d), sq_ip_abs, d,
                  "sq8_ip");
    }
  }
  EXPECT_GE(levels, 1);
  // Best() is one of the levels this CPU runs, the highest.
  const Kernels& best = Best();
  ASSERT_NE(ForLevel(best.level), nullptr);
  if (ForLevel(Level::kAvx512) != nullptr) {
    EXPECT_EQ(best.level, Level::kAvx512);
  }
  EXPECT_EQ(best.ip, ForLevel(best.level)->ip);
}

// Rows read at any alignment (UnitVectors aligns them, other callers may not).
TEST(Simd, UnalignedRowsGiveTheSameAnswer) {
  std::mt19937 rng(11);
  const size_t d = 193;
  std::vector<float> buf(d + 32);
  for (float& f : buf) f = std::normal_distribution<float>()(rng);
  std::vector<float> q(buf.begin(), buf.begin() + d);
  for (size_t off = 0; off < 16; ++off) {
    std::vector<float> copy(buf.begin() + off, buf.begin() + off + d);
    EXPECT_EQ(InnerProduct(buf.data() + off, q.data(), d), InnerProduct(copy.data(), q.data(), d))
        << "offset " << off;
  }
}

}  // namespace
}  // namespace vitrine::simd
