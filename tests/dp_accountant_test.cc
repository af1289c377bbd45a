// core/dp_accountant, each function against an oracle that does not share
// its formula: zCDP -> (epsilon, delta) against a brute-force minimisation
// over Renyi orders, the conversion against the exact Gaussian privacy curve
// (it must never claim more than the mechanism gives), the normal quantile
// and the partition threshold against high-precision values (mpmath, 50
// digits) and a seeded simulation, and the budget validator's messages.
#include "core/dp_accountant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vitrine {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The standard normal density, for the conditioning of the quantile.
double NormalPdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }

TEST(DpGaussian, RhoClosedForm) {
  // 2^2 / (2 * 4^2) = 4 / 32.
  EXPECT_DOUBLE_EQ(GaussianRho(2, 4), 0.125);
  EXPECT_DOUBLE_EQ(GaussianRho(1, 1), 0.5);
  EXPECT_EQ(GaussianRho(0, 3), 0);  // a release that depends on no user costs nothing
  for (double sensitivity : {0.1, 1.0, 2.0, 37.5}) {
    for (double rho : {1e-6, 0.01, 0.5, 3.0, 100.0}) {
      const double sigma = GaussianSigma(sensitivity, rho);
      EXPECT_NEAR(GaussianRho(sensitivity, sigma), rho, 1e-14 * rho)
          << "sensitivity " << sensitivity << " rho " << rho;
    }
  }
}

TEST(DpGaussian, NaNOutsidePreconditions) {
  EXPECT_TRUE(std::isnan(GaussianRho(1, 0)));
  EXPECT_TRUE(std::isnan(GaussianRho(1, -1)));
  EXPECT_TRUE(std::isnan(GaussianRho(-1, 1)));
  EXPECT_TRUE(std::isnan(GaussianRho(kNaN, 1)));
  EXPECT_TRUE(std::isnan(GaussianRho(1, kInf)));
  EXPECT_TRUE(std::isnan(GaussianSigma(1, 0)));
  EXPECT_TRUE(std::isnan(GaussianSigma(1, -0.5)));
  EXPECT_TRUE(std::isnan(GaussianSigma(1, kNaN)));
  EXPECT_TRUE(std::isnan(EpsilonFromRho(-0.1, 1e-5)));
  EXPECT_TRUE(std::isnan(EpsilonFromRho(0.5, 0)));
  EXPECT_TRUE(std::isnan(EpsilonFromRho(0.5, 1)));
  EXPECT_TRUE(std::isnan(EpsilonFromRho(0.5, kNaN)));
  EXPECT_TRUE(std::isnan(RhoFromEpsilon(-1, 1e-5)));
  EXPECT_TRUE(std::isnan(RhoFromEpsilon(kInf, 1e-5)));
  EXPECT_TRUE(std::isnan(RhoFromEpsilon(1, 1.5)));
  EXPECT_TRUE(std::isnan(GaussianExactDelta(0, 1, 1)));
  EXPECT_TRUE(std::isnan(GaussianExactDelta(1, 0, 1)));
  EXPECT_TRUE(std::isnan(GaussianExactDelta(1, 1, -1)));
}

// zCDP is Renyi DP of every order alpha > 1 with epsilon(alpha) = alpha rho,
// and RDP of order alpha gives (alpha rho + ln(1/delta) / (alpha - 1), delta)-DP
// (Mironov 2017, Prop. 3). The best order, found by brute force over a
// log-spaced grid, must reproduce the closed form.
TEST(DpConversion, EpsilonFromRhoMatchesBruteForceOverRenyiOrders) {
  constexpr int kPoints = 200'000;
  const double log_lo = std::log(1.001), log_hi = std::log(10000.0);
  const std::vector<std::pair<double, double>> cases = {{0.5, 1e-5},  {0.01, 1e-6}, {2.0, 1e-3},
                                                        {1e-3, 1e-8}, {10.0, 1e-5}, {0.1, 1e-10}};
  for (const auto& [rho, delta] : cases) {
    const double log_inv_delta = -std::log(delta);
    double best = kInf;
    for (int i = 0; i < kPoints; ++i) {
      const double alpha = std::exp(log_lo + (log_hi - log_lo) * i / (kPoints - 1));
      best = std::min(best, alpha * rho + log_inv_delta / (alpha - 1));
    }
    const double closed = EpsilonFromRho(rho, delta);
    EXPECT_NEAR(closed, best, 1e-6 * best) << "rho " << rho << " delta " << delta;
    // A grid minimum can only be above the true one.
    EXPECT_LE(closed, best * (1 + 1e-14)) << "rho " << rho << " delta " << delta;
  }
  EXPECT_EQ(EpsilonFromRho(0, 1e-5), 0);
}

TEST(DpConversion, ReferenceValue) {
  // rho 0.5, delta 1e-5, by hand (digits from mpmath at 30 digits):
  //   ln(1/delta)             = 5 ln 10            = 11.512925464970228420
  //   rho ln(1/delta)         = 11.5129... / 2     = 5.756462732485114210
  //   sqrt(rho ln(1/delta))   = 2.399262956094040604
  //   epsilon = 0.5 + 2 * 2.399262956094040604     = 5.298525912188081208
  EXPECT_NEAR(EpsilonFromRho(0.5, 1e-5), 5.298525912188081, 1e-12);
  EXPECT_NEAR(RhoFromEpsilon(5.298525912188081, 1e-5), 0.5, 1e-12);
}

TEST(DpConversion, RhoFromEpsilonInvertsEpsilonFromRho) {
  for (double delta : {1e-5, 1e-6}) {
    for (double epsilon : {0.1, 1.0, 4.0, 16.0}) {
      const double rho = RhoFromEpsilon(epsilon, delta);
      EXPECT_GT(rho, 0);
      EXPECT_NEAR(EpsilonFromRho(rho, delta), epsilon, 1e-13 * epsilon)
          << "epsilon " << epsilon << " delta " << delta;
    }
  }
  // Small epsilon next to a large ln(1/delta): where the difference of
  // square roots would have cancelled to a few digits. rho ~ eps^2 / (4 L).
  const double rho = RhoFromEpsilon(1e-6, 1e-9);
  EXPECT_NEAR(EpsilonFromRho(rho, 1e-9), 1e-6, 1e-6 * 1e-13);
  EXPECT_EQ(RhoFromEpsilon(0, 1e-6), 0);
}

TEST(DpExactGaussian, OracleItself) {
  // Sensitivity 1, sigma 1, epsilon 1: Phi(-0.5) - e Phi(-1.5) =
  // 0.12693673750664394580... (mpmath).
  EXPECT_NEAR(GaussianExactDelta(1, 1, 1), 0.12693673750664395, 1e-15);
  // Epsilon 760: e^epsilon overflows a double and Phi(-39) underflows it,
  // their product is 0.0062. Phi(1) - that = 0.83514443964113827... (mpmath,
  // with the double-rounded s / (2 sigma) and epsilon sigma / s).
  EXPECT_NEAR(GaussianExactDelta(1, 0.025, 760), 0.835144439641138, 1e-12);
  // Delta(epsilon) decreases in epsilon and in sigma.
  EXPECT_GT(GaussianExactDelta(1, 1, 0.5), GaussianExactDelta(1, 1, 1));
  EXPECT_GT(GaussianExactDelta(1, 1, 1), GaussianExactDelta(1, 2, 1));
}

// The exact curve is the least delta a single Gaussian has at each epsilon;
// a sigma chosen through zCDP for (epsilon, delta) must sit at or under it.
TEST(DpExactGaussian, ZcdpConversionIsNeverTighterThanExactCurve) {
  constexpr double kDelta = 1e-6;
  for (double epsilon : {0.5, 1.0, 4.0, 16.0}) {
    const double sigma = GaussianSigma(1, RhoFromEpsilon(epsilon, kDelta));
    const double exact = GaussianExactDelta(1, sigma, epsilon);
    EXPECT_LE(exact, kDelta) << "epsilon " << epsilon << " sigma " << sigma;
    EXPECT_GT(exact, 0) << "epsilon " << epsilon << " sigma " << sigma;
  }
}

TEST(ZcdpLedger, RhosAddUp) {
  ZcdpLedger ledger;
  EXPECT_EQ(ledger.total_rho(), 0);
  EXPECT_EQ(ledger.Epsilon(1e-6), 0);
  EXPECT_DOUBLE_EQ(ledger.Add("als user factors, iteration 0", 1, 2), 0.125);
  EXPECT_DOUBLE_EQ(ledger.Add("als item Gram, iteration 0", 2, 4), 0.125);
  EXPECT_DOUBLE_EQ(ledger.Add("popularity counts", 1, 1), 0.5);
  EXPECT_DOUBLE_EQ(ledger.total_rho(), 0.75);
  EXPECT_DOUBLE_EQ(ledger.Epsilon(1e-6), EpsilonFromRho(0.75, 1e-6));
  ASSERT_EQ(ledger.entries().size(), 3u);
  EXPECT_EQ(ledger.entries()[1].what, "als item Gram, iteration 0");
  EXPECT_EQ(ledger.entries()[1].sensitivity, 2);
  EXPECT_EQ(ledger.entries()[1].sigma, 4);
  EXPECT_DOUBLE_EQ(ledger.entries()[2].rho, 0.5);
}

TEST(ZcdpLedger, SplittingTheBudgetSpendsExactlyIt) {
  // The intended use: a budget split over iterations comes back whole.
  const double epsilon = 2, delta = 1e-6;
  const int iterations = 12;
  const double sigma = GaussianSigma(1.5, RhoFromEpsilon(epsilon, delta) / iterations);
  ZcdpLedger ledger;
  for (int it = 0; it < iterations; ++it) ledger.Add("iteration " + std::to_string(it), 1.5, sigma);
  EXPECT_NEAR(ledger.Epsilon(delta), epsilon, 1e-12);
}

TEST(ZcdpLedger, RefusesBadReleases) {
  ZcdpLedger ledger;
  EXPECT_THROW(ledger.Add("no noise", 1, 0), std::invalid_argument);
  EXPECT_THROW(ledger.Add("negative sensitivity", -1, 1), std::invalid_argument);
  EXPECT_THROW(ledger.Add("nan sigma", 1, kNaN), std::invalid_argument);
  EXPECT_TRUE(ledger.entries().empty());
  EXPECT_EQ(ledger.total_rho(), 0);
}

TEST(NormalQuantile, ReferenceValues) {
  // mpmath, 50 digits.
  EXPECT_NEAR(NormalQuantile(0.975), 1.959963984540054, 1e-12);
  EXPECT_NEAR(NormalQuantile(0.025), -1.959963984540054, 1e-12);
  EXPECT_NEAR(NormalQuantile(1e-10), -6.361340902404056, 1e-9);
  EXPECT_NEAR(NormalQuantile(1e-10), -6.361340902404056, 1e-14 * 6.4);
  EXPECT_NEAR(NormalQuantile(1e-20), -9.262340089798408, 1e-14 * 9.3);
  EXPECT_NEAR(NormalQuantile(1e-300), -37.04709629936120, 1e-14 * 37.1);
  EXPECT_EQ(NormalQuantile(0.5), 0);
  EXPECT_EQ(NormalQuantile(0), -kInf);
  EXPECT_EQ(NormalQuantile(1), kInf);
  EXPECT_TRUE(std::isnan(NormalQuantile(-0.1)));
  EXPECT_TRUE(std::isnan(NormalQuantile(1.1)));
  EXPECT_TRUE(std::isnan(NormalQuantile(kNaN)));
}

TEST(NormalQuantile, RoundTripsNormalCdf) {
  // Allowed error: 1e-12 relative plus what the rounding of p = Phi(x) to a
  // double costs, ulp(p) / phi(x). Below 0 that is about 2e-16 / |x|; above,
  // p near 1 has lost the tail's digits (at x = 8, 1 - p is 6e-16 and known
  // to one ulp of 1.1e-16), and no quantile can recover them.
  for (int i = 0; i <= 4500; ++i) {
    const double x = -37 + 0.01 * i;
    const double p = NormalCdf(x);
    const double tolerance =
        1e-12 * std::max(1.0, std::abs(x)) + 4 * DBL_EPSILON * p / NormalPdf(x);
    EXPECT_NEAR(NormalQuantile(p), x, tolerance) << "x " << x << " p " << p;
  }
}

TEST(NormalCdf, Tails) {
  // mpmath: Phi(-37) = 5.7255712225245768e-300, Phi(-1) = 0.15865525393145705.
  // At -37 the one rounding of 37 / sqrt 2 costs 37^2 ulps relative, 1e-13.
  EXPECT_NEAR(NormalCdf(-37) / 5.7255712225245768e-300, 1, 5e-13);
  EXPECT_NEAR(NormalCdf(-1), 0.15865525393145705, 1e-16);
  EXPECT_EQ(NormalCdf(0), 0.5);
  EXPECT_NEAR(NormalCdf(1) + NormalCdf(-1), 1, 1e-16);
}

TEST(PartitionThreshold, ReferenceValues) {
  // 1 - 3 Phi^{-1}(1e-3) = 10.2706969185034406... and 1 - 2 Phi^{-1}(1e-20) =
  // 19.5246801795968151... (mpmath); the second one's 1 - 1e-20 is 1 in a double.
  EXPECT_NEAR(PartitionThreshold(3, 10, 1e-2), 10.270696918503441, 1e-12);
  EXPECT_NEAR(PartitionThreshold(2, 1'000'000, 1e-14), 19.524680179596815, 1e-12);
  EXPECT_TRUE(std::isnan(PartitionThreshold(0, 10, 1e-2)));
  EXPECT_TRUE(std::isnan(PartitionThreshold(3, 0, 1e-2)));
  EXPECT_TRUE(std::isnan(PartitionThreshold(3, 10, 0)));
  EXPECT_TRUE(std::isnan(PartitionThreshold(3, 10, 1)));
}

TEST(PartitionThreshold, SingleUserKeyReleasedWithProbabilityDeltaOverPartitions) {
  // A key one user alone holds has count 1; it is released when
  // 1 + N(0, sigma^2) >= tau, which should happen with probability
  // delta / max_partitions = 1e-3. Over 1e6 draws the count is binomial
  // with mean 1000 and standard deviation 31.6: allow 5 of them.
  constexpr double kSigma = 3, kDeltaThreshold = 1e-2;
  constexpr int64_t kMaxPartitions = 10;
  constexpr int kDraws = 1'000'000;
  const double tau = PartitionThreshold(kSigma, kMaxPartitions, kDeltaThreshold);
  std::mt19937_64 rng(20220314);
  std::normal_distribution<double> noise(0, kSigma);
  int released = 0;
  for (int i = 0; i < kDraws; ++i) released += (1 + noise(rng) >= tau);
  const double expected = kDraws * kDeltaThreshold / kMaxPartitions;
  EXPECT_NEAR(released, expected, 5 * std::sqrt(expected * (1 - 1e-3)));
}

TEST(DpBudget, AcceptsOrdinaryBudgets) {
  EXPECT_TRUE(CheckDpBudget(1, 1e-6).ok());
  EXPECT_TRUE(CheckDpBudget(0.01, 1e-12).ok());
  EXPECT_TRUE(CheckDpBudget(1000, 0.099).ok());
  EXPECT_TRUE(CheckDpBudget(1, 0.1).ok());
}

TEST(DpBudget, RefusesNonsense) {
  for (double epsilon : {0.0, -1.0, 0.005, 1e-300, kNaN, kInf, -kInf, 1000.5}) {
    const Status s = CheckDpBudget(epsilon, 1e-6);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << epsilon;
    EXPECT_NE(s.message().find("--dp-epsilon"), std::string::npos) << s.message();
  }
  for (double delta : {0.0, 1.0, -1e-6, 0.1000001, kNaN, kInf}) {
    const Status s = CheckDpBudget(1, delta);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << delta;
    EXPECT_NE(s.message().find("--dp-delta"), std::string::npos) << s.message();
  }
  EXPECT_EQ(CheckDpBudget(-1, 1e-6).message(),
            "--dp-epsilon must be a number in [0.01, 1000], got -1");
  EXPECT_EQ(CheckDpBudget(1, 1).message(),
            "--dp-delta must be a number in (0, 0.1], got 1 (usually well below 1 / the number of "
            "users)");
}

}  // namespace
}  // namespace vitrine
