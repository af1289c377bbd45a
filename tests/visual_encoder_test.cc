#include "embed/visual_encoder.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>  // tests lack the stb include dir; the library is linked

#include <Eigen/Dense>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numbers>
#include <random>

#include "core/array_io.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using HogNorm = VisualEncoderOptions::HogNorm;

fs::path TempDir() {
  fs::path p =
      fs::temp_directory_path() /
      ("vitrine_visual_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
       "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::create_directories(p);
  return p;
}

// Options that produce only the HOG block of one grid.
VisualEncoderOptions HogOnly(int size, int grid, int bins, HogNorm norm, float power) {
  VisualEncoderOptions o;
  o.canonical_size = size;
  o.hog_grids = {grid};
  o.orientation_bins = bins;
  o.hog_norm = norm;
  o.hog_power = power;
  o.pixel_grid = 0;
  o.intensity_bins = 0;
  return o;
}

ImageBatch Gray(size_t n, size_t h, size_t w) {
  ImageBatch b;
  b.height = h;
  b.width = w;
  b.channels = 1;
  b.pixels = MatrixU8(n, h * w);
  return b;
}

// --- Descriptor -----------------------------------------------------------

TEST(VisualDescriptor, VerticalEdgeVotesHorizontalGradientBins) {
  const int s = 8, nb = 8;
  ImageBatch im = Gray(2, s, s);
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) {
      im.pixels.at(0, y * s + x) = x < s / 2 ? 0 : 255;  // dark -> light: gradient angle 0
      im.pixels.at(1, y * s + x) = x < s / 2 ? 255 : 0;  // light -> dark: angle pi
    }
  }
  VisualEncoder signed_enc(HogOnly(s, 1, nb, HogNorm::kNone, 1.0f));
  auto d = signed_enc.Describe(im);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->cols, static_cast<size_t>(nb));
  // Bin b covers [b, b+1) * 2pi/nb; angle 0 sits on the border of bins nb-1
  // and 0 and splits evenly between them; angle pi between nb/2-1 and nb/2.
  for (int b = 0; b < nb; ++b) {
    const bool at0 = b == 0 || b == nb - 1, atpi = b == nb / 2 - 1 || b == nb / 2;
    EXPECT_NEAR(d->at(0, b), at0 ? std::sqrt(0.5f) : 0.0f, 1e-6) << "bin " << b;
    EXPECT_NEAR(d->at(1, b), atpi ? std::sqrt(0.5f) : 0.0f, 1e-6) << "bin " << b;
  }
  // Unsigned orientation folds both edges onto the same bins.
  VisualEncoderOptions uo = HogOnly(s, 1, nb, HogNorm::kNone, 1.0f);
  uo.signed_orientation = false;
  auto u = VisualEncoder(uo).Describe(im);
  ASSERT_TRUE(u.ok());
  for (int b = 0; b < nb; ++b) {
    EXPECT_NEAR(u->at(0, b), u->at(1, b), 1e-6);
    EXPECT_NEAR(u->at(0, b), b == 0 || b == nb - 1 ? std::sqrt(0.5f) : 0.0f, 1e-6);
  }
}

TEST(VisualDescriptor, HorizontalEdgeVotesVerticalGradientBins) {
  const int s = 6, nb = 4;  // bins centred at 45, 135, 225, 315 degrees
  ImageBatch im = Gray(1, s, s);
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) im.pixels.at(0, y * s + x) = y < s / 2 ? 0 : 200;
  }
  auto d = VisualEncoder(HogOnly(s, 1, nb, HogNorm::kNone, 1.0f)).Describe(im);
  ASSERT_TRUE(d.ok());
  // Gradient points down (+y): angle pi/2, split between bins 0 and 1.
  EXPECT_NEAR(d->at(0, 0), std::sqrt(0.5f), 1e-6);
  EXPECT_NEAR(d->at(0, 1), std::sqrt(0.5f), 1e-6);
  EXPECT_NEAR(d->at(0, 2), 0.0f, 1e-6);
  EXPECT_NEAR(d->at(0, 3), 0.0f, 1e-6);
}

// Independent HOG: for every cell and bin, sum over pixels of magnitude x
// tent weight in x, y (cell centres, clamped at the border) and orientation
// (circular). Written as "for each output, gather" rather than the encoder's
// "for each pixel, scatter".
std::vector<double> OracleHog(const std::vector<double>& img, int s, int g, int nb, HogNorm norm,
                              double power) {
  auto px = [&](int y, int x) {
    return img[std::clamp(y, 0, s - 1) * s + std::clamp(x, 0, s - 1)];
  };
  const double cell = double(s) / g, two_pi = 2 * std::numbers::pi, bw = two_pi / nb;
  std::vector<double> h(g * g * nb, 0.0);
  for (int cy = 0; cy < g; ++cy) {
    for (int cx = 0; cx < g; ++cx) {
      for (int b = 0; b < nb; ++b) {
        double acc = 0;
        for (int y = 0; y < s; ++y) {
          for (int x = 0; x < s; ++x) {
            const double gx = px(y, x + 1) - px(y, x - 1), gy = px(y + 1, x) - px(y - 1, x);
            const double m = std::hypot(gx, gy);
            if (m == 0) continue;
            const double uy = std::clamp((y + 0.5) / cell - 0.5, 0.0, g - 1.0);
            const double ux = std::clamp((x + 0.5) / cell - 0.5, 0.0, g - 1.0);
            const double wy = std::max(0.0, 1 - std::abs(uy - cy));
            const double wx = std::max(0.0, 1 - std::abs(ux - cx));
            double a = std::atan2(gy, gx);
            double dist = std::abs(std::remainder(a - (b + 0.5) * bw, two_pi));
            const double wo = std::max(0.0, 1 - dist / bw);
            acc += m * wx * wy * wo;
          }
        }
        h[(cy * g + cx) * nb + b] = std::pow(acc, power);
      }
    }
  }
  std::vector<double> out;
  auto l2 = [](std::vector<double> v, double eps) {
    double ss = 0;
    for (double x : v) ss += x * x;
    for (double& x : v) x /= std::sqrt(ss + eps);
    return v;
  };
  if (norm == HogNorm::kBlock) {
    for (int by = 0; by + 1 < g; ++by) {
      for (int bx = 0; bx + 1 < g; ++bx) {
        std::vector<double> blk;
        for (int cy = by; cy < by + 2; ++cy) {
          for (int cx = bx; cx < bx + 2; ++cx) {
            for (int b = 0; b < nb; ++b) blk.push_back(h[(cy * g + cx) * nb + b]);
          }
        }
        for (double v : l2(blk, 0.01)) out.push_back(v);
      }
    }
  } else {
    for (int c = 0; c < g * g; ++c) {
      std::vector<double> cv(h.begin() + c * nb, h.begin() + (c + 1) * nb);
      if (norm == HogNorm::kCell) cv = l2(cv, 0.01);
      out.insert(out.end(), cv.begin(), cv.end());
    }
  }
  return l2(out, 0.0);
}

TEST(VisualDescriptor, MatchesIndependentHogOnRandomImages) {
  const int s = 12, nb = 6;
  std::mt19937 rng(7);
  ImageBatch im = Gray(3, s, s);
  for (auto& v : im.pixels.data) v = static_cast<uint8_t>(rng() % 256);
  struct Case {
    int grid;
    HogNorm norm;
    float power;
  };
  for (const Case& c : {Case{3, HogNorm::kNone, 1.0f}, Case{4, HogNorm::kBlock, 0.5f},
                        Case{3, HogNorm::kCell, 0.5f}, Case{5, HogNorm::kBlock, 1.0f}}) {
    auto d = VisualEncoder(HogOnly(s, c.grid, nb, c.norm, c.power)).Describe(im);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    for (size_t i = 0; i < im.size(); ++i) {
      std::vector<double> img(s * s);
      for (int p = 0; p < s * s; ++p) img[p] = im.pixels.at(i, p) / 255.0;
      const std::vector<double> want = OracleHog(img, s, c.grid, nb, c.norm, c.power);
      ASSERT_EQ(d->cols, want.size()) << "grid " << c.grid;
      for (size_t j = 0; j < want.size(); ++j) {
        ASSERT_NEAR(d->at(i, j), want[j], 2e-5)
            << "grid " << c.grid << " image " << i << " j " << j;
      }
    }
  }
}

TEST(VisualDescriptor, PixelBlockAndIntensityHistogram) {
  VisualEncoderOptions o;
  o.canonical_size = 4;
  o.hog_grids = {};
  o.pixel_grid = 2;
  o.pixel_weight = 1.0f;
  o.intensity_bins = 4;
  o.intensity_weight = 1.0f;
  ImageBatch im = Gray(1, 4, 4);
  // Quadrants 0, 64, 128, 255.
  const uint8_t q[4] = {0, 64, 128, 255};
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) im.pixels.at(0, y * 4 + x) = q[(y / 2) * 2 + x / 2];
  }
  auto d = VisualEncoder(o).Describe(im);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->cols, 8u);
  const double norm = std::sqrt((64.0 * 64 + 128.0 * 128 + 255.0 * 255)) / 255.0;
  EXPECT_NEAR(d->at(0, 0), 0.0, 1e-6);
  EXPECT_NEAR(d->at(0, 1), 64 / 255.0 / norm, 1e-5);
  EXPECT_NEAR(d->at(0, 2), 128 / 255.0 / norm, 1e-5);
  EXPECT_NEAR(d->at(0, 3), 1.0 / norm, 1e-5);
  // 4 pixels in each intensity quarter: sqrt(4) each, L2-normalised -> 0.5.
  for (int b = 0; b < 4; ++b) EXPECT_NEAR(d->at(0, 4 + b), 0.5, 1e-6);
}

TEST(VisualDescriptor, ColourImagesAddHueHistogram) {
  VisualEncoderOptions o = HogOnly(8, 2, 4, HogNorm::kBlock, 0.5f);
  o.hue_bins = 6;
  o.saturation_bins = 2;
  o.value_bins = 2;
  o.colour_weight = 1.0f;
  ImageBatch rgb;
  rgb.height = rgb.width = 8;
  rgb.channels = 3;
  rgb.pixels = MatrixU8(2, 8 * 8 * 3);
  for (size_t p = 0; p < 64; ++p) {
    rgb.pixels.at(0, 3 * p) = 255;      // pure red
    rgb.pixels.at(1, 3 * p + 2) = 255;  // pure blue
  }
  VisualEncoder enc(o);
  EXPECT_EQ(enc.DescriptorDim(3), enc.DescriptorDim(1) + 6 * 2 + 2);
  auto d = enc.Describe(rgb);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const size_t base = enc.DescriptorDim(1);
  // Red: hue bin 0, saturated -> joint bin 0*2+1; value bin 1. Blue: hue 240
  // degrees -> bin 4 -> joint bin 9.
  const float r = std::sqrt(0.5f);
  EXPECT_NEAR(d->at(0, base + 1), r, 1e-6);
  EXPECT_NEAR(d->at(1, base + 9), r, 1e-6);
  EXPECT_NEAR(d->at(0, base + 13), r, 1e-6);
  EXPECT_NEAR(d->at(1, base + 13), r, 1e-6);
  EXPECT_NEAR(d->at(0, base + 9), 0.0f, 1e-6);
}

TEST(VisualDescriptor, ResizesToCanonicalSize) {
  ImageBatch big = Gray(1, 56, 56), small = Gray(1, 28, 28);
  for (int y = 0; y < 56; ++y) {
    for (int x = 0; x < 56; ++x) big.pixels.at(0, y * 56 + x) = x < 28 ? 10 : 240;
  }
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) small.pixels.at(0, y * 28 + x) = x < 14 ? 10 : 240;
  }
  VisualEncoder enc;  // canonical 28
  auto a = enc.Describe(big), b = enc.Describe(small);
  ASSERT_TRUE(a.ok() && b.ok());
  double dot = 0, na = 0, nb = 0;
  for (size_t j = 0; j < a->cols; ++j) {
    dot += a->data[j] * b->data[j];
    na += a->data[j] * a->data[j];
    nb += b->data[j] * b->data[j];
  }
  EXPECT_GT(dot / std::sqrt(na * nb), 0.95);
}

// --- PCA ------------------------------------------------------------------

Matrix RandomDecaying(size_t n, size_t d, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Matrix x(n, d);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) x.at(i, j) = nd(rng) * std::pow(0.85f, float(j)) + 3.0f * j;
  }
  // Mix columns with a fixed random rotation so components are not axes.
  Eigen::MatrixXf r = Eigen::MatrixXf::NullaryExpr(d, d, [&]() { return nd(rng); });
  Eigen::HouseholderQR<Eigen::MatrixXf> qr(r);
  Eigen::MatrixXf q = qr.householderQ();
  Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> xm(
      x.data.data(), n, d);
  Eigen::MatrixXf mixed = xm * q;
  xm = mixed;
  return x;
}

void CheckPcaAgainstEigen(int exact_max_dim) {
  const size_t n = 600, d = 40, k = 8;
  Matrix x = RandomDecaying(n, d, 3);
  // Oracle: double covariance and Eigen's dense solver.
  Eigen::MatrixXd xd(n, d);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) xd(i, j) = x.at(i, j);
  }
  Eigen::RowVectorXd mu = xd.colwise().mean();
  Eigen::MatrixXd xc = xd.rowwise() - mu;
  Eigen::MatrixXd cov = xc.transpose() * xc / double(n - 1);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cov);

  VisualEncoderOptions o;
  o.dim = k;
  o.whiten_power = 0.5f;
  o.whiten_epsilon = 0.0f;
  o.l2_normalize = false;
  o.exact_eigen_max_dim = exact_max_dim;
  VisualEncoder enc(o);
  ASSERT_TRUE(enc.Fit(x).ok());
  ASSERT_EQ(enc.components().rows, k);
  ASSERT_EQ(enc.components().cols, d);
  for (size_t j = 0; j < d; ++j) EXPECT_NEAR(enc.mean().data[j], mu(j), 1e-3);
  for (size_t c = 0; c < k; ++c) {
    const double want = es.eigenvalues()(d - 1 - c);
    EXPECT_NEAR(enc.eigenvalues().data[c], want, 1e-3 * want) << "eigenvalue " << c;
    // Same direction up to sign, and orthonormal rows.
    double dot = 0;
    for (size_t j = 0; j < d; ++j)
      dot += enc.components().at(c, j) * es.eigenvectors()(j, d - 1 - c);
    EXPECT_NEAR(std::abs(dot), 1.0, 2e-3) << "component " << c;
    for (size_t c2 = 0; c2 < k; ++c2) {
      double g = 0;
      for (size_t j = 0; j < d; ++j) g += enc.components().at(c, j) * enc.components().at(c2, j);
      EXPECT_NEAR(g, c == c2 ? 1.0 : 0.0, 1e-4);
    }
  }
  // Fully whitened output: zero mean, identity covariance.
  auto y = enc.Transform(x);
  ASSERT_TRUE(y.ok());
  Eigen::MatrixXd yd(n, k);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < k; ++j) yd(i, j) = y->at(i, j);
  }
  Eigen::MatrixXd yc = yd.rowwise() - yd.colwise().mean();
  Eigen::MatrixXd ycov = yc.transpose() * yc / double(n - 1);
  EXPECT_LT(yd.colwise().mean().cwiseAbs().maxCoeff(), 1e-3);
  EXPECT_LT((ycov - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff(), 5e-3);
}

TEST(VisualPca, ExactSolverMatchesEigen) { CheckPcaAgainstEigen(1024); }
TEST(VisualPca, SubspaceIterationMatchesEigen) { CheckPcaAgainstEigen(0); }

TEST(VisualPca, DeterministicAndRestorable) {
  Matrix x = RandomDecaying(300, 30, 11);
  VisualEncoderOptions o;
  o.dim = 6;
  o.exact_eigen_max_dim = 0;
  VisualEncoder a(o), b(o);
  ASSERT_TRUE(a.Fit(x).ok());
  ASSERT_TRUE(b.Fit(x).ok());
  auto ya = a.Transform(x), yb = b.Transform(x);
  ASSERT_TRUE(ya.ok() && yb.ok());
  EXPECT_EQ(ya->data, yb->data);
  auto c = VisualEncoder::FromParameters(o, a.mean(), a.components(), a.eigenvalues());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto yc = c->Transform(x);
  ASSERT_TRUE(yc.ok());
  EXPECT_EQ(ya->data, yc->data);
  // Output rows are unit length by default.
  double ss = 0;
  for (size_t j = 0; j < ya->cols; ++j) ss += ya->at(0, j) * ya->at(0, j);
  EXPECT_NEAR(ss, 1.0, 1e-5);
  // Partial whitening keeps more of the leading components' scale.
  o.l2_normalize = false;
  o.whiten_power = 0.0f;
  auto plain = VisualEncoder::FromParameters(o, a.mean(), a.components(), a.eigenvalues());
  ASSERT_TRUE(plain.ok());
  auto yp = plain->Transform(x);
  ASSERT_TRUE(yp.ok());
  double v0 = 0, v5 = 0;
  for (size_t i = 0; i < yp->rows; ++i) {
    v0 += yp->at(i, 0) * yp->at(i, 0);
    v5 += yp->at(i, 5) * yp->at(i, 5);
  }
  EXPECT_GT(v0, v5);
}

// FitTransform works in chunks past kEncodeChunk images and fits on a
// sample past kFitSample. Oracles: the one-pass Describe + Fit + Transform
// (identical up to BLAS summation order while every image is in the fit),
// and, past the sample bound, Transform of the full descriptor matrix with
// the encoder the sample fitted (the chunks change nothing), plus a mean
// close to the full catalog's.
TEST(VisualPca, ChunkedFitTransformMatchesTheOnePassOracle) {
  VisualEncoderOptions o;
  o.canonical_size = 8;
  o.hog_grids = {2};
  o.orientation_bins = 6;
  o.dim = 8;
  std::mt19937 rng(5);
  auto random_images = [&](size_t n) {
    ImageBatch im = Gray(n, 8, 8);
    for (auto& p : im.pixels.data) p = static_cast<uint8_t>(rng() % 256);
    return im;
  };
  for (const size_t n : {VisualEncoder::kEncodeChunk + 1000, VisualEncoder::kFitSample + 9000}) {
    const ImageBatch im = random_images(n);
    VisualEncoder chunked(o);
    std::vector<size_t> progress;
    auto y = chunked.FitTransform(im, [&](size_t done) { progress.push_back(done); });
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    ASSERT_EQ(y->rows, n);
    EXPECT_EQ(progress.back(), n);
    EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
    auto desc = chunked.Describe(im);
    ASSERT_TRUE(desc.ok());
    VisualEncoder one_pass(o);
    ASSERT_TRUE(one_pass.Fit(*desc).ok());
    const VisualEncoder& fitted = n <= VisualEncoder::kFitSample ? one_pass : chunked;
    auto want = fitted.Transform(*desc);
    ASSERT_TRUE(want.ok());
    double worst = 0;
    for (size_t i = 0; i < want->data.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(want->data[i] - y->data[i])));
    }
    EXPECT_LT(worst, 1e-4) << n << " images";
    double mean_gap = 0;
    for (size_t j = 0; j < one_pass.mean().cols; ++j) {
      mean_gap = std::max(mean_gap, static_cast<double>(std::fabs(one_pass.mean().data[j] -
                                                                  chunked.mean().data[j])));
    }
    EXPECT_LT(mean_gap, 0.01) << "the sample's mean is the catalog's, closely";
  }
}

TEST(VisualPca, ErrorsAreClear) {
  VisualEncoder enc;
  Matrix x = RandomDecaying(50, 10, 1);
  auto before = enc.Transform(x);
  ASSERT_FALSE(before.ok());
  EXPECT_NE(before.status().message().find("before Fit"), std::string::npos);
  ASSERT_TRUE(enc.Fit(x).ok());
  EXPECT_EQ(enc.components().rows, 10u);  // dim clamped to d
  Matrix wrong(3, 11);
  auto t = enc.Transform(wrong);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("11 columns"), std::string::npos) << t.status().message();
  EXPECT_NE(t.status().message().find("fitted on 10"), std::string::npos);
  EXPECT_FALSE(enc.Fit(Matrix(1, 10)).ok());
  auto bad = VisualEncoder::FromParameters({}, Matrix(1, 5), Matrix(2, 4), Matrix(1, 2));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("components 2 x 4"), std::string::npos);
}

// --- Loading --------------------------------------------------------------

TEST(VisualLoad, PrecomputedVectorsRejectNaNNamingTheRow) {
  const fs::path dir = TempDir();
  Matrix m(5, 3, 0.5f);
  ASSERT_TRUE(WriteNpy(dir / "ok.npy", m).ok());
  auto ok = LoadPrecomputedVectors(dir / "ok.npy", 5);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->rows, 5u);

  m.at(3, 2) = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(WriteNpy(dir / "nan.npy", m).ok());
  auto nan = LoadPrecomputedVectors(dir / "nan.npy");
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.status().message().find("nan.npy: row 3 column 2 is NaN"), std::string::npos)
      << nan.status().message();

  m.at(3, 2) = 0;
  m.at(1, 0) = -std::numeric_limits<float>::infinity();
  ASSERT_TRUE(WriteFvecs(dir / "inf.fvecs", m).ok());
  auto inf = LoadPrecomputedVectors(dir / "inf.fvecs");
  ASSERT_FALSE(inf.ok());
  EXPECT_NE(inf.status().message().find("row 1 column 0 is Inf"), std::string::npos)
      << inf.status().message();

  auto count = LoadPrecomputedVectors(dir / "ok.npy", 6);
  ASSERT_FALSE(count.ok());
  EXPECT_NE(count.status().message().find("has 5 vectors but 6 were expected"), std::string::npos)
      << count.status().message();
  fs::remove_all(dir);
}

TEST(VisualLoad, IdxImageCountMismatchIsClear) {
  const fs::path dir = TempDir();
  IdxArray arr;
  arr.dims = {3, 4, 5};
  arr.data = MatrixU8(3, 20, 7);
  ASSERT_TRUE(WriteIdx(dir / "img-ubyte.gz", arr, true).ok());
  auto ok = LoadIdxImages(dir / "img-ubyte.gz", 3);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->height, 4u);
  EXPECT_EQ(ok->width, 5u);
  auto bad = LoadIdxImages(dir / "img-ubyte.gz", 4);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("has 3 images but 4 were expected"), std::string::npos)
      << bad.status().message();
  IdxArray labels;
  labels.dims = {3};
  labels.data = MatrixU8(3, 1, 1);
  ASSERT_TRUE(WriteIdx(dir / "labels-ubyte", labels, false).ok());
  auto one_d = LoadIdxImages(dir / "labels-ubyte");
  ASSERT_FALSE(one_d.ok());
  EXPECT_NE(one_d.status().message().find("expected IDX images n x h x w"), std::string::npos);
  fs::remove_all(dir);
}

TEST(VisualLoad, PngFilesDecodeResizeAndReportBadFiles) {
  const fs::path dir = TempDir();
  std::vector<uint8_t> px(10 * 6 * 3);
  for (size_t p = 0; p < 60; ++p) {
    px[3 * p] = 200;
    px[3 * p + 1] = 20;
    px[3 * p + 2] = 40;
  }
  ASSERT_NE(stbi_write_png((dir / "a.png").c_str(), 10, 6, 3, px.data(), 30), 0);
  auto b = LoadImageFiles({dir / "a.png", dir / "a.png"}, 8);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->size(), 2u);
  EXPECT_EQ(b->channels, 3u);
  EXPECT_EQ(b->height, 8u);
  EXPECT_NEAR(b->pixels.at(1, 3 * 27), 200, 2);
  EXPECT_NEAR(b->pixels.at(1, 3 * 27 + 1), 20, 2);
  std::ofstream(dir / "broken.jpg") << "not an image";
  auto bad = LoadImageFiles({dir / "a.png", dir / "broken.jpg"}, 8);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("broken.jpg: cannot decode image"), std::string::npos)
      << bad.status().message();
  fs::remove_all(dir);
}

// --- Evaluation helper and quality ----------------------------------------

TEST(VisualEval, PrecisionMatchesBruteForce) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  Matrix c(200, 6), q(30, 6);
  for (auto& v : c.data) v = nd(rng);
  for (auto& v : q.data) v = nd(rng);
  std::vector<int> cl(200), ql(30);
  for (auto& l : cl) l = rng() % 3;
  for (auto& l : ql) l = rng() % 3;
  for (bool cosine : {true, false}) {
    const int k = 7;
    int64_t hits = 0;
    for (size_t i = 0; i < q.rows; ++i) {
      std::vector<std::pair<double, int>> all;
      for (size_t j = 0; j < c.rows; ++j) {
        double dot = 0, nq = 0, ncc = 0, l2 = 0;
        for (size_t t = 0; t < 6; ++t) {
          dot += q.at(i, t) * c.at(j, t);
          nq += q.at(i, t) * q.at(i, t);
          ncc += c.at(j, t) * c.at(j, t);
          l2 += (q.at(i, t) - c.at(j, t)) * (q.at(i, t) - c.at(j, t));
        }
        all.push_back({cosine ? -dot / std::sqrt(nq * ncc) : l2, static_cast<int>(j)});
      }
      std::sort(all.begin(), all.end());
      for (int t = 0; t < k; ++t) hits += cl[all[t].second] == ql[i];
    }
    auto p = SameLabelPrecisionAtK(c, cl, q, ql, k, cosine);
    ASSERT_TRUE(p.ok());
    EXPECT_DOUBLE_EQ(*p, double(hits) / (30.0 * k)) << "cosine " << cosine;
  }
}

// Fashion-MNIST subset (10k catalog, 1k queries): the descriptor must beat
// raw pixels clearly. The full 60k/10k figure comes from `vitrine visual-eval`.
TEST(VisualQuality, BeatsRawPixelsOnFashionMnistSubset) {
  const fs::path dir = VITRINE_FASHION_MNIST_DIR;
  // scripts/install-deps.sh installs dataset-fashion-mnist: absence is a failure.
  ASSERT_TRUE(fs::exists(dir / "train-images-idx3-ubyte.gz")) << "no Fashion-MNIST in " << dir;
  auto train = LoadIdxImages(dir / "train-images-idx3-ubyte.gz");
  auto test = LoadIdxImages(dir / "t10k-images-idx3-ubyte.gz");
  auto trl = ReadIdx(dir / "train-labels-idx1-ubyte.gz");
  auto tel = ReadIdx(dir / "t10k-labels-idx1-ubyte.gz");
  ASSERT_TRUE(train.ok() && test.ok() && trl.ok() && tel.ok());
  const size_t nc = 10000, nq = 1000;
  auto head = [](ImageBatch b, size_t n) {
    b.pixels.rows = n;
    b.pixels.data.resize(n * b.pixels.cols);
    return b;
  };
  ImageBatch cat = head(*train, nc), qry = head(*test, nq);
  std::vector<int> cl(trl->data.data.begin(), trl->data.data.begin() + nc);
  std::vector<int> ql(tel->data.data.begin(), tel->data.data.begin() + nq);
  auto to_float = [](const ImageBatch& b) {
    Matrix m(b.size(), b.pixels.cols);
    for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = b.pixels.data[i] / 255.0f;
    return m;
  };
  auto raw = SameLabelPrecisionAtK(to_float(cat), cl, to_float(qry), ql, 10, true);
  ASSERT_TRUE(raw.ok());

  VisualEncoder enc;  // defaults: the configuration the CLI reports
  auto a = enc.FitTransform(cat);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->cols, 128u);
  auto dq = enc.Describe(qry);
  ASSERT_TRUE(dq.ok());
  auto b = enc.Transform(*dq);
  ASSERT_TRUE(b.ok());
  auto ours = SameLabelPrecisionAtK(*a, cl, *b, ql, 10, true);
  ASSERT_TRUE(ours.ok());
  std::printf("precision@10 on 10k/1k: raw pixels %.4f, vitrine visual %.4f\n", *raw, *ours);
  EXPECT_GT(*ours, *raw + 0.04);
  EXPECT_GT(*ours, 0.80);
}

}  // namespace
}  // namespace vitrine
