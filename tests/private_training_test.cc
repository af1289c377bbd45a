// Differentially private training (embed/private_als.h,
// engine/private_build.h): the item step against a dense least-squares
// solve, the noise against its closed-form scale, a 10,000-event user
// against the contribution bound, the budget against the ledger, and a
// private bundle end to end (manifest, inspect, what it refuses).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/dp_accountant.h"
#include "embed/private_als.h"
#include "engine/builder.h"
#include "engine/engine.h"
#include "engine/private_build.h"
#include "sample/generator.h"
#include "scratch_dir.h"
#include "tests/serve_test_util.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The oracle: item j's factors from the dense implicit objective,
//   min_y sum_u C_uj (P_uj - x_u . y)^2 + lambda |y|^2,
// C_uj = 1 + alpha w for observed pairs and a0 otherwise, P_uj = observed.
Eigen::VectorXd DenseItemSolve(const CsrMatrix& m, const Matrix& x, const AlsOptions& als,
                               int32_t item) {
  const int d = als.factors;
  Eigen::MatrixXd a = Eigen::MatrixXd::Identity(d, d) * als.regularization;
  Eigen::VectorXd b = Eigen::VectorXd::Zero(d);
  for (int64_t u = 0; u < m.rows; ++u) {
    double c = als.unobserved_weight, p = 0;
    for (int64_t q = m.indptr[u]; q < m.indptr[u + 1]; ++q) {
      if (m.indices[q] == item) c = 1.0 + als.alpha * m.values[q], p = 1;
    }
    Eigen::VectorXd xu(d);
    for (int k = 0; k < d; ++k) xu[k] = x.row(static_cast<size_t>(u))[k];
    a += c * xu * xu.transpose();
    b += c * p * xu;
  }
  return a.ldlt().solve(b);
}

TEST(PrivateAls, NoiselessItemStepIsTheDenseLeastSquaresSolve) {
  std::mt19937_64 rng(5);
  const CsrMatrix m = BoundContributions(RandomInteractions(40, 15, 0.3, 1, false), 1000, &rng);
  AlsOptions als;
  als.factors = 4;
  als.regularization = 0.3f;
  als.alpha = 2.0f;
  als.unobserved_weight = 0.5f;
  Matrix x(40, 4);
  std::normal_distribution<float> g(0.0f, 0.4f);
  for (float& v : x.data) v = g(rng);
  const Matrix y = PrivateItemStep(m, x, als, 0, 0, 0, &rng);
  for (int32_t j = 0; j < 15; ++j) {
    const Eigen::VectorXd want = DenseItemSolve(m, x, als, j);
    for (int k = 0; k < 4; ++k) {
      EXPECT_NEAR(y.row(static_cast<size_t>(j))[k], want[k], 2e-4) << "item " << j << " k " << k;
    }
  }
}

TEST(PrivateAls, SymmetricNoiseHasTheStatedScale) {
  std::mt19937_64 rng(9);
  constexpr int d = 6, draws = 20000;
  constexpr double sigma = 2.5;
  double sum_diag = 0, sum_off = 0;
  for (int t = 0; t < draws; ++t) {
    std::vector<float> m(d * d, 0.0f);
    AddSymmetricGaussian(m.data(), d, sigma, &rng);
    for (int r = 0; r < d; ++r) {
      for (int c = 0; c < d; ++c) ASSERT_EQ(m[r * d + c], m[c * d + r]);
    }
    sum_diag += m[2 * d + 2] * m[2 * d + 2];
    sum_off += m[1 * d + 4] * m[1 * d + 4];
  }
  // The sample std of 20,000 normals is within 2% of sigma far beyond 5 sd.
  EXPECT_NEAR(std::sqrt(sum_diag / draws), sigma, 0.02 * sigma);
  EXPECT_NEAR(std::sqrt(sum_off / draws), sigma, 0.02 * sigma);
}

TEST(PrivateAls, PlanSpendsTheBudgetInClosedForm) {
  DpOptions dp;
  dp.epsilon = 4;
  dp.delta = 1e-6;
  dp.iterations = 5;
  auto plan = PlanDp(dp);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  // rho = (sqrt(eps + L) - sqrt(L))^2 with L = ln(1 / (delta / 2)).
  const double l = std::log(1.0 / 5e-7);
  const double rho = std::pow(std::sqrt(4.0 + l) - std::sqrt(l), 2);
  EXPECT_NEAR(plan->rho_total, rho, 1e-12);
  EXPECT_NEAR(plan->rho_als_release, rho * 0.8 / 15, 1e-12);
  EXPECT_NEAR(plan->rho_popularity, rho * 0.1, 1e-12);
  // A release's sigma is sensitivity / sqrt(2 rho): sqrt(32) items.
  EXPECT_NEAR(GaussianSigma(std::sqrt(32.0), plan->rho_popularity),
              std::sqrt(32.0) / std::sqrt(2 * rho * 0.1), 1e-9);
}

// One iteration of private ALS: each release's noise is the closed form
// sigma = sensitivity / sqrt(2 rho), with the sensitivities worked by hand
// from k, alpha, a0 and Gamma; and the epsilon of T iterations matches a
// reference computed independently of the ledger (the Renyi-DP curve of
// the summed rho, minimised over orders on a grid).
TEST(PrivateAls, NoiseScaleAndEpsilonMatchTheClosedForms) {
  const CsrMatrix data = RandomInteractions(60, 20, 0.3, 4, false);
  AlsOptions als;
  als.factors = 4;
  als.regularization = 0.5f;
  als.alpha = 3.0f;
  als.unobserved_weight = 1.0f;
  for (int iterations : {1, 4}) {
    DpOptions dp;
    dp.epsilon = 3;
    dp.delta = 1e-5;
    dp.max_items_per_user = 5;
    dp.factor_norm_bound = 2;
    dp.iterations = iterations;
    auto plan = PlanDp(dp);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    std::mt19937_64 rng(8);
    const CsrMatrix bounded = BoundContributions(data, dp.max_items_per_user, &rng);
    ZcdpLedger ledger;
    auto fit = FitPrivateAls(bounded, als, dp, *plan, &rng, &ledger);
    ASSERT_TRUE(fit.ok()) << fit.status().ToString();
    ASSERT_EQ(ledger.entries().size(), 3u * iterations);
    // Gram: a0 Gamma^2; A: sqrt(k) (1 + alpha - a0) Gamma^2; b: sqrt(k) (1 + alpha) Gamma.
    const double want_sensitivity[3] = {4.0, std::sqrt(5.0) * 3.0 * 4.0, std::sqrt(5.0) * 4.0 * 2.0};
    for (size_t i = 0; i < ledger.entries().size(); ++i) {
      const auto& e = ledger.entries()[i];
      EXPECT_NEAR(e.sensitivity, want_sensitivity[i % 3], 1e-9) << e.what;
      EXPECT_NEAR(e.sigma, want_sensitivity[i % 3] / std::sqrt(2 * plan->rho_als_release), 1e-9)
          << e.what;
    }
    double rho = 0;
    for (double s : want_sensitivity) rho += iterations * s * s / (2 * std::pow(s / std::sqrt(2 * plan->rho_als_release), 2));
    double reference = std::numeric_limits<double>::infinity();
    for (double a = 1.0001; a < 1e4; a *= 1.0001) {
      reference = std::min(reference, a * rho + std::log(1 / plan->conversion_delta) / (a - 1));
    }
    EXPECT_NEAR(ledger.Epsilon(plan->conversion_delta), reference, 1e-4 * reference);
    // The ALS part is its share (0.8) of the budget's rho.
    EXPECT_NEAR(ledger.total_rho(), 0.8 * plan->rho_total, 1e-12);
  }
}

TEST(PrivateAls, BadOptionsNameTheirFlag) {
  DpOptions dp;
  dp.epsilon = -1;
  EXPECT_NE(dp.Validate().ToString().find("--dp-epsilon"), std::string::npos);
  dp.epsilon = 1;
  dp.max_items_per_user = 0;
  EXPECT_NE(dp.Validate().ToString().find("--dp-max-items"), std::string::npos);
  dp.max_items_per_user = 8;
  dp.iterations = 0;
  EXPECT_NE(dp.Validate().ToString().find("--dp-iterations"), std::string::npos);
  dp.iterations = 3;
  dp.delta = 0.5;
  EXPECT_NE(dp.Validate().ToString().find("--dp-delta"), std::string::npos);
}

// One user with 10,000 events over 10,000 items weighs as much as anyone
// with k: k items kept, each drawn uniformly, weights clipped to 1; and the
// user's whole contribution to the released item statistics stays within
// the sensitivities the noise is scaled to.
TEST(PrivateAls, TenThousandEventUserIsBoundedToK) {
  constexpr int kItems = 10000, k = 16;
  CsrMatrix m;
  m.rows = 3;
  m.cols = kItems;
  m.indptr = {0};
  for (int i = 0; i < kItems; ++i) m.indices.push_back(i), m.values.push_back(7.0f);
  m.indptr.push_back(kItems);
  for (int i : {3, 9}) m.indices.push_back(i), m.values.push_back(0.5f);
  m.indptr.push_back(static_cast<int64_t>(m.indices.size()));
  m.indptr.push_back(static_cast<int64_t>(m.indices.size()));  // a user with nothing

  std::vector<int> chosen(kItems, 0);
  std::mt19937_64 rng(3);
  constexpr int rounds = 2000;
  for (int t = 0; t < rounds; ++t) {
    std::vector<int64_t> kept;
    const CsrMatrix b = BoundContributions(m, k, &rng, &kept);
    ASSERT_EQ(b.row_size(0), k);
    ASSERT_EQ(b.row_size(1), 2);
    ASSERT_EQ(b.row_size(2), 0);
    ASSERT_EQ(kept.size(), static_cast<size_t>(k + 2));
    for (int64_t q = b.indptr[0]; q < b.indptr[1]; ++q) {
      if (q > b.indptr[0]) ASSERT_LT(b.indices[q - 1], b.indices[q]);
      ASSERT_EQ(b.values[q], 1.0f);
      ASSERT_EQ(m.indices[static_cast<size_t>(kept[static_cast<size_t>(q)])], b.indices[q]);
      ++chosen[static_cast<size_t>(b.indices[q])];
    }
    EXPECT_EQ(b.values[b.indptr[1]], 0.5f);
  }
  // Uniform: item i is kept with probability k / n; over 2,000 rounds the
  // counts of the first and second halves of the items agree within 5%.
  long first = 0, second = 0;
  for (int i = 0; i < kItems; ++i) (i < kItems / 2 ? first : second) += chosen[i];
  EXPECT_EQ(first + second, static_cast<long>(rounds) * k);
  EXPECT_NEAR(static_cast<double>(first) / second, 1.0, 0.05);

  // The user's contribution to b (sum over their items of c x_u) has L2
  // norm sqrt(k) c_max |x_u| <= the stated sensitivity.
  const CsrMatrix b = BoundContributions(m, k, &rng);
  AlsOptions als;
  als.factors = 3;
  als.alpha = 10;
  Matrix x(3, 3);
  for (float& v : x.data) v = 5.0f;  // clipped to Gamma = 1 by the user step
  Matrix clipped = x;
  for (size_t u = 0; u < 3; ++u) {
    float* r = clipped.row(u);
    const double n = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    for (int c = 0; c < 3; ++c) r[c] = static_cast<float>(r[c] / n);
  }
  double contribution = 0;
  for (int64_t q = b.indptr[0]; q < b.indptr[1]; ++q) {
    const double c = 1.0 + als.alpha * b.values[q];
    for (int d = 0; d < 3; ++d) contribution += std::pow(c * clipped.row(0)[d], 2);
  }
  EXPECT_LE(std::sqrt(contribution), std::sqrt(double{k}) * (1 + als.alpha) * 1.0 + 1e-9);
}

class PrivateBundle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(ScratchDir() / "private_bundle");
    GeneratorOptions g;
    g.num_items = 400;
    g.num_users = 600;
    g.seed = 21;
    g.gift_share = 0.1;
    ASSERT_TRUE(GenerateSampleData(g, *dir_ / "data").ok());
  }
  static void TearDownTestSuite() { delete dir_; }
  static BuildOptions Options(double epsilon, uint64_t noise_seed) {
    BuildOptions o;
    o.items = *dir_ / "data" / "items.csv";
    o.interactions = *dir_ / "data" / "interactions.csv";
    o.als.factors = 8;
    o.als.compute_loss = false;
    o.content.dim = 8;
    o.index.spec = "Flat";
    o.dp.epsilon = epsilon;
    o.dp.max_items_per_user = 8;
    o.dp.iterations = 3;
    o.dp.noise_seed = noise_seed;
    return o;
  }
  static fs::path Build(const std::string& name, const BuildOptions& o) {
    const fs::path out = *dir_ / name;
    auto built = BuildBundle(o, out);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return out;
  }
  static fs::path* dir_;
};
fs::path* PrivateBundle::dir_ = nullptr;

TEST_F(PrivateBundle, ManifestRecordsTheBudgetAndEveryRelease) {
  const fs::path out = Build("eps2", Options(2, 11));
  auto e = Engine::Open(out);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const BundleManifest& m = (*e)->manifest();
  ASSERT_TRUE(m.private_training());
  EXPECT_EQ(m.dp_epsilon, 2);
  EXPECT_EQ(m.dp_delta, 1e-6);
  const json& dp = m.differential_privacy;
  // The ledger: 3 releases per iteration, popularity, trend counts; their
  // rho adds up to the budget's, which converts back to epsilon 2.
  ASSERT_EQ(dp["releases"].size(), 3u * 3u + 2u);
  double rho = 0;
  for (const auto& r : dp["releases"]) {
    const double s = r["sensitivity"], sigma = r["sigma"];
    EXPECT_NEAR(r["rho"].get<double>(), s * s / (2 * sigma * sigma), 1e-12);
    rho += r["rho"].get<double>();
  }
  EXPECT_NEAR(rho, dp["rho"].get<double>(), 1e-12);
  EXPECT_NEAR(EpsilonFromRho(rho, 5e-7), 2.0, 1e-9);
  EXPECT_NEAR(dp["epsilon_spent"].get<double>(), 2.0, 1e-9);
  // What has no private version is not in the bundle.
  for (const char* f : {"item_neighbors.bin", "ranker.bin", "cf/gifts.npy"}) {
    EXPECT_FALSE(fs::exists(out / f)) << f;
  }
  EXPECT_FALSE(fs::exists(out / "taste_mixture"));
  // Answers still come: for a user (fold-in) and similar items.
  RecommendRequest r;
  r.user = (*e)->users().id(0);
  r.query.k = 5;
  auto got = (*e)->Recommend(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->hits.size(), 5u);
}

TEST_F(PrivateBundle, AnswersLearnedFromOthersRawHistoriesAreRefused) {
  const fs::path out = Build("eps1", Options(1, 12));
  auto e = Engine::Open(out);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto next = (*e)->NextStepModelOf("category");
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), Status::Code::kUnsupported);
  EXPECT_NE(next.status().message().find("differential privacy (epsilon 1"), std::string::npos)
      << next.status().ToString();
  AudienceRequest a;
  a.item = (*e)->catalog().ids.id(0);
  auto audience = (*e)->FindAudience(a);
  ASSERT_FALSE(audience.ok());
  EXPECT_NE(audience.status().message().find("audience"), std::string::npos);
}

// With alpha = 0 and a0 = 1 no user can change an item's A statistic: it
// is exact, needs no noise and is not in the ledger.
TEST_F(PrivateBundle, ZeroSensitivityReleasesAreExactAndFree) {
  BuildOptions o = Options(2, 14);
  o.als.alpha = 0;
  const fs::path out = Build("alpha0", o);
  auto e = Engine::Open(out);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const json& releases = (*e)->manifest().differential_privacy["releases"];
  ASSERT_EQ(releases.size(), 2u * 3u + 2u);
  for (const auto& r : releases) {
    EXPECT_EQ(r["what"].get<std::string>().find("statistics A"), std::string::npos);
  }
}

// --dp-user-rows off: nothing per customer, so the whole bundle is covered;
// a history still gets answers.
TEST_F(PrivateBundle, WithoutUserRowsNothingPerCustomerIsKept) {
  BuildOptions o = Options(2, 16);
  o.dp.user_rows = false;
  const fs::path out = Build("no_rows", o);
  EXPECT_EQ(Slurp(out / "user_ids.txt"), "");
  auto e = Engine::Open(out);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->users().size(), 0);
  EXPECT_EQ((*e)->manifest().counts.users, 0);
  EXPECT_EQ((*e)->manifest().counts.interactions, 0);
  EXPECT_EQ((*e)->manifest().differential_privacy["per_user_rows"].get<std::string>().rfind("none", 0),
            0u);
  RecommendRequest r;
  r.history = {(*e)->catalog().ids.id(0), (*e)->catalog().ids.id(1)};
  r.query.k = 4;
  auto got = (*e)->Recommend(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->hits.size(), 4u);
}

TEST_F(PrivateBundle, NoiseIsFreshUnlessSeeded) {
  auto factors = [](const fs::path& b) {
    auto e = Engine::Open(b);
    EXPECT_TRUE(e.ok());
    return (*e)->vectors().data;
  };
  const auto a = factors(Build("seeded_a", Options(4, 77)));
  const auto b = factors(Build("seeded_b", Options(4, 77)));
  const auto c = factors(Build("random_a", Options(4, 0)));
  const auto d = factors(Build("random_b", Options(4, 0)));
  EXPECT_EQ(a, b);
  EXPECT_NE(c, d);
  EXPECT_NE(a, c);
}

TEST_F(PrivateBundle, InspectShowsTheBudgetAndFlagsAreChecked) {
  const fs::path out = Build("eps3", Options(3, 13));
  ASSERT_EQ(testing::RunVitrine("inspect --bundle '" + out.string() + "'", *dir_), 0);
  std::ifstream in(*dir_ / "cmd.out");
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("privacy    user-level differential privacy: epsilon 3, delta 1e-06"),
            std::string::npos)
      << text;
  const std::string items = " --items '" + (*dir_ / "data" / "items.csv").string() + "'";
  EXPECT_EQ(testing::RunVitrine("build" + items + " --out x --dp-delta 1e-7", *dir_), 2);
  EXPECT_EQ(testing::RunVitrine("build" + items + " --out x --dp-epsilon -3", *dir_), 2);
  const std::string inter = " --interactions '" + (*dir_ / "data" / "interactions.csv").string() + "'";
  EXPECT_EQ(testing::RunVitrine("build" + items + inter + " --out x --dp-epsilon 2 --tune", *dir_), 2);
  EXPECT_NE(Slurp(*dir_ / "cmd.err").find("cannot be tuned"), std::string::npos);
  EXPECT_EQ(testing::RunVitrine("build" + items + inter + " --out x --dp-epsilon 2 --dp-seed 0", *dir_), 2);
  EXPECT_EQ(testing::RunVitrine("build" + items + inter + " --out x --dp-epsilon 2x", *dir_), 2);
  EXPECT_NE(Slurp(*dir_ / "cmd.err").find("--dp-epsilon: cannot read '2x'"), std::string::npos);
  EXPECT_EQ(
      testing::RunVitrine("build" + items + inter + " --out x --dp-epsilon 2 --ranker on", *dir_),
      2);
  // Not privacy budget but privacy flags: an empty --sensitive predicate
  // would mark nothing, silently.
  EXPECT_EQ(testing::RunVitrine("build" + items + " --out x --sensitive ' '", *dir_), 2);
  EXPECT_FALSE(fs::exists(*dir_ / "x"));
}

}  // namespace
}  // namespace vitrine
