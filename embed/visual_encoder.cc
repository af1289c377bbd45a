#include "embed/visual_encoder.h"

#include <cblas.h>
#include <stb_image_resize.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <numeric>
#include <string>

#include "core/array_io.h"
#include "embed/image_file.h"

namespace vitrine {
namespace {

std::string Str(const std::filesystem::path& p) { return p.string(); }

// Scales v[0..n) to unit L2 norm times `weight`; an all-zero group stays zero.
void NormalizeGroup(float* v, size_t n, float weight) {
  double ss = 0;
  for (size_t i = 0; i < n; ++i) ss += static_cast<double>(v[i]) * v[i];
  if (ss <= 0) return;
  const float s = weight / static_cast<float>(std::sqrt(ss));
  for (size_t i = 0; i < n; ++i) v[i] *= s;
}

// Linear split of a continuous coordinate u (in bin units, bin centres at
// integers) between bins floor(u) and floor(u)+1, clamped to [0, n).
struct Split {
  int lo, hi;
  float w_lo, w_hi;
};
Split SplitClamped(float u, int n) {
  const float f = std::floor(u);
  const float t = u - f;
  int lo = static_cast<int>(f), hi = lo + 1;
  lo = std::clamp(lo, 0, n - 1);
  hi = std::clamp(hi, 0, n - 1);
  return {lo, hi, 1.0f - t, t};
}

// Per-image scratch and the descriptor computation itself. The descriptor
// layout is: for each HOG grid its normalised histograms, then the pixel
// block, the intensity histogram, and (colour only) the colour histograms.
class Describer {
 public:
  Describer(const VisualEncoderOptions& o, size_t channels) : o_(o), channels_(channels) {
    const int s = o.canonical_size;
    gray_.resize(static_cast<size_t>(s) * s);
    mag_.resize(gray_.size());
    ang_.resize(gray_.size());
  }

  static size_t Dim(const VisualEncoderOptions& o, size_t channels) {
    size_t d = 0;
    for (int g : o.hog_grids) {
      d += o.hog_norm == VisualEncoderOptions::HogNorm::kBlock && g > 1
               ? static_cast<size_t>(g - 1) * (g - 1) * 4 * o.orientation_bins
               : static_cast<size_t>(g) * g * o.orientation_bins;
    }
    d += static_cast<size_t>(o.pixel_grid) * o.pixel_grid;
    d += o.intensity_bins;
    if (channels == 3) d += static_cast<size_t>(o.hue_bins) * o.saturation_bins + o.value_bins;
    return d;
  }

  // `rgb` is canonical_size^2 * channels bytes.
  void Run(const uint8_t* px, float* out) {
    const int s = o_.canonical_size;
    const size_t npx = static_cast<size_t>(s) * s;
    for (size_t i = 0; i < npx; ++i) {
      if (channels_ == 3) {
        const uint8_t* p = px + 3 * i;
        gray_[i] = (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]) / 255.0f;
      } else {
        gray_[i] = px[i] / 255.0f;
      }
    }
    Gradients();
    float* o = out;
    for (int g : o_.hog_grids) o = Hog(g, o);
    o = PixelBlock(o);
    o = IntensityHistogram(o);
    if (channels_ == 3) o = ColourHistograms(px, o);
  }

 private:
  // Central differences; borders replicate the edge pixel.
  void Gradients() {
    const int s = o_.canonical_size;
    const float range =
        o_.signed_orientation ? 2.0f * std::numbers::pi_v<float> : std::numbers::pi_v<float>;
    for (int y = 0; y < s; ++y) {
      for (int x = 0; x < s; ++x) {
        const float gx = gray_[y * s + std::min(x + 1, s - 1)] - gray_[y * s + std::max(x - 1, 0)];
        const float gy = gray_[std::min(y + 1, s - 1) * s + x] - gray_[std::max(y - 1, 0) * s + x];
        mag_[y * s + x] = std::sqrt(gx * gx + gy * gy);
        float a = std::atan2(gy, gx);  // (-pi, pi]
        if (a < 0) a += 2.0f * std::numbers::pi_v<float>;
        if (a >= range) a -= range;  // unsigned: fold onto [0, pi)
        ang_[y * s + x] = a / range * static_cast<float>(o_.orientation_bins);  // in bin units
      }
    }
  }

  // Trilinear voting (x, y, orientation) into a g x g grid, then power
  // normalisation and per-block (or per-cell) L2 normalisation.
  float* Hog(int g, float* out) {
    const int s = o_.canonical_size, nb = o_.orientation_bins;
    hist_.assign(static_cast<size_t>(g) * g * nb, 0.0f);
    const float cell = static_cast<float>(s) / g;
    for (int y = 0; y < s; ++y) {
      const Split sy = SplitClamped((y + 0.5f) / cell - 0.5f, g);
      for (int x = 0; x < s; ++x) {
        const float m = mag_[y * s + x];
        if (m == 0) continue;
        const Split sx = SplitClamped((x + 0.5f) / cell - 0.5f, g);
        // Orientation is circular: bin centres at integers + 0.5.
        const float u = ang_[y * s + x] - 0.5f;
        const float f = std::floor(u);
        const float t = u - f;
        const int o0 = (static_cast<int>(f) + nb) % nb, o1 = (o0 + 1) % nb;
        auto vote = [&](int cy, int cx, float w) {
          float* h = &hist_[(static_cast<size_t>(cy) * g + cx) * nb];
          h[o0] += w * (1.0f - t);
          h[o1] += w * t;
        };
        vote(sy.lo, sx.lo, m * sy.w_lo * sx.w_lo);
        vote(sy.lo, sx.hi, m * sy.w_lo * sx.w_hi);
        vote(sy.hi, sx.lo, m * sy.w_hi * sx.w_lo);
        vote(sy.hi, sx.hi, m * sy.w_hi * sx.w_hi);
      }
    }
    if (o_.hog_power != 1.0f) {
      for (float& v : hist_) v = std::pow(v, o_.hog_power);
    }
    float* start = out;
    if (o_.hog_norm == VisualEncoderOptions::HogNorm::kBlock && g > 1) {
      for (int by = 0; by + 1 < g; ++by) {
        for (int bx = 0; bx + 1 < g; ++bx) {
          float* b = out;
          for (int cy = by; cy < by + 2; ++cy) {
            for (int cx = bx; cx < bx + 2; ++cx) {
              const float* h = &hist_[(static_cast<size_t>(cy) * g + cx) * nb];
              out = std::copy(h, h + nb, out);
            }
          }
          BlockNormalize(b, out - b);
        }
      }
    } else {
      for (int c = 0; c < g * g; ++c) {
        const float* h = &hist_[static_cast<size_t>(c) * nb];
        out = std::copy(h, h + nb, out);
        if (o_.hog_norm != VisualEncoderOptions::HogNorm::kNone) BlockNormalize(out - nb, nb);
      }
    }
    NormalizeGroup(start, out - start, o_.hog_weight);
    return out;
  }

  // L2 with an epsilon so near-empty blocks (flat background) are not blown
  // up to unit norm: the epsilon is a fraction of the block's expected norm
  // for a clearly edged block.
  static void BlockNormalize(float* v, size_t n) {
    double ss = 0;
    for (size_t i = 0; i < n; ++i) ss += static_cast<double>(v[i]) * v[i];
    const float s = 1.0f / static_cast<float>(std::sqrt(ss + 0.01));
    for (size_t i = 0; i < n; ++i) v[i] *= s;
  }

  float* PixelBlock(float* out) {
    const int p = o_.pixel_grid, s = o_.canonical_size;
    if (p <= 0) return out;
    std::fill(out, out + static_cast<size_t>(p) * p, 0.0f);
    std::vector<float> count(static_cast<size_t>(p) * p, 0.0f);
    for (int y = 0; y < s; ++y) {
      const int cy = std::min(y * p / s, p - 1);
      for (int x = 0; x < s; ++x) {
        const int c = cy * p + std::min(x * p / s, p - 1);
        out[c] += gray_[y * s + x];
        count[c] += 1;
      }
    }
    for (int c = 0; c < p * p; ++c) out[c] /= std::max(count[c], 1.0f);
    NormalizeGroup(out, static_cast<size_t>(p) * p, o_.pixel_weight);
    return out + static_cast<size_t>(p) * p;
  }

  float* IntensityHistogram(float* out) {
    const int nb = o_.intensity_bins;
    if (nb <= 0) return out;
    std::fill(out, out + nb, 0.0f);
    for (float v : gray_) out[std::min(static_cast<int>(v * nb), nb - 1)] += 1;
    for (int i = 0; i < nb; ++i) out[i] = std::sqrt(out[i]);  // Hellinger
    NormalizeGroup(out, nb, o_.intensity_weight);
    return out + nb;
  }

  // Joint hue x saturation histogram plus a value histogram (HSV), sqrt'd.
  // Hue is weighted by saturation so grey pixels do not vote a random hue.
  float* ColourHistograms(const uint8_t* px, float* out) {
    const int nh = o_.hue_bins, ns = o_.saturation_bins, nv = o_.value_bins;
    const size_t d = static_cast<size_t>(nh) * ns + nv;
    std::fill(out, out + d, 0.0f);
    const size_t npx = gray_.size();
    for (size_t i = 0; i < npx; ++i) {
      const float r = px[3 * i] / 255.0f, g = px[3 * i + 1] / 255.0f, b = px[3 * i + 2] / 255.0f;
      const float mx = std::max({r, g, b}), mn = std::min({r, g, b});
      const float c = mx - mn;
      const float sat = mx > 0 ? c / mx : 0.0f;
      float h = 0;  // in [0, 6)
      if (c > 0) {
        if (mx == r) {
          h = std::fmod((g - b) / c + 6.0f, 6.0f);
        } else if (mx == g) {
          h = (b - r) / c + 2.0f;
        } else {
          h = (r - g) / c + 4.0f;
        }
      }
      const int hb = std::min(static_cast<int>(h / 6.0f * nh), nh - 1);
      const int sb = std::min(static_cast<int>(sat * ns), ns - 1);
      out[hb * ns + sb] += 1;
      out[static_cast<size_t>(nh) * ns + std::min(static_cast<int>(mx * nv), nv - 1)] += 1;
    }
    for (size_t i = 0; i < d; ++i) out[i] = std::sqrt(out[i]);
    NormalizeGroup(out, d, o_.colour_weight);
    return out + d;
  }

  const VisualEncoderOptions& o_;
  size_t channels_;
  std::vector<float> gray_, mag_, ang_, hist_;
};

// Resamples images whose size differs from the canonical one (stb's
// Mitchell/box filters: area-correct when shrinking).
Result<MatrixU8> ToCanonical(const ImageBatch& im, int size) {
  const size_t s = static_cast<size_t>(size);
  if (im.height == s && im.width == s) return im.pixels;
  MatrixU8 out(im.size(), s * s * im.channels);
  for (size_t i = 0; i < im.size(); ++i) {
    if (!stbir_resize_uint8(im.pixels.row(i), static_cast<int>(im.width),
                            static_cast<int>(im.height), 0, out.row(i), size, size, 0,
                            static_cast<int>(im.channels))) {
      return Status::Internal("image " + std::to_string(i) + ": resize failed");
    }
  }
  return out;
}

// Top-k eigenpairs of the symmetric d x d row-major `cov`, exactly (Eigen's
// dense solver in double; O(d^3), fine up to ~1000).
void ExactTopEigen(const std::vector<float>& cov, size_t d, size_t k, Eigen::VectorXd* vals,
                   Eigen::MatrixXd* vecs) {
  Eigen::MatrixXd cd(d, d);
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = 0; j < d; ++j) cd(i, j) = cov[i * d + j];
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(cd);
  *vals = es.eigenvalues().reverse().head(k);  // Eigen sorts ascending
  *vecs = es.eigenvectors().rowwise().reverse().leftCols(k);
}

// Top-k eigenpairs by block subspace iteration with Rayleigh-Ritz: each step
// is one d x d x l float sgemm (l = k + oversampling) and a d x l QR, so the
// cost is O(d^2 l) per step instead of the dense solver's O(d^3) (2400-dim
// HOG descriptors: seconds instead of a minute). The start block comes from a
// fixed-seed generator, so the result is deterministic.
void SubspaceTopEigen(const std::vector<float>& cov, size_t d, size_t k, Eigen::VectorXd* vals,
                      Eigen::MatrixXd* vecs) {
  const size_t l = std::min(d, k + std::max<size_t>(32, k / 2));
  uint64_t state = 0x9e3779b97f4a7c15ULL;  // splitmix64
  auto next = [&state]() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53 - 0.5;
  };
  Eigen::MatrixXd q(d, l);
  for (Eigen::Index j = 0; j < q.cols(); ++j) {
    for (Eigen::Index i = 0; i < q.rows(); ++i) q(i, j) = next();
  }
  // Row-major float copies for BLAS: qt is l x d (Q transposed), z = C Q.
  std::vector<float> qt(l * d), zt(l * d);
  Eigen::VectorXd prev = Eigen::VectorXd::Zero(k);
  Eigen::MatrixXd z(d, l);
  constexpr int kMaxIter = 200;
  for (int it = 0; it < kMaxIter; ++it) {
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(q);
    q = qr.householderQ() * Eigen::MatrixXd::Identity(d, l);
    for (size_t j = 0; j < l; ++j) {
      for (size_t i = 0; i < d; ++i) qt[j * d + i] = static_cast<float>(q(i, j));
    }
    // zt (l x d) = qt (l x d) * C (d x d); C is symmetric, so zt = (C Q)^T.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(l), static_cast<int>(d),
                static_cast<int>(d), 1.0f, qt.data(), static_cast<int>(d), cov.data(),
                static_cast<int>(d), 0.0f, zt.data(), static_cast<int>(d));
    for (size_t j = 0; j < l; ++j) {
      for (size_t i = 0; i < d; ++i) z(i, j) = zt[j * d + i];
    }
    // Rayleigh-Ritz on span(Q): the small l x l problem Q^T C Q.
    Eigen::MatrixXd h = q.transpose() * z;
    h = 0.5 * (h + h.transpose());
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(h);
    Eigen::VectorXd ritz = es.eigenvalues().reverse().head(k);
    const double change = (ritz - prev).cwiseAbs().maxCoeff();
    prev = ritz;
    const Eigen::MatrixXd y = es.eigenvectors().rowwise().reverse();
    if (change <= 1e-5 * std::abs(ritz(0)) || it == kMaxIter - 1) {
      *vals = ritz;
      *vecs = q * y.leftCols(k);
      return;
    }
    q = z * y;  // next block: C Q rotated to Ritz order
  }
}
}  // namespace

void L2NormalizeRows(Matrix* m) {
  for (size_t i = 0; i < m->rows; ++i) NormalizeGroup(m->row(i), m->cols, 1.0f);
}

Result<ImageBatch> LoadIdxImages(const std::filesystem::path& path, size_t expected_count) {
  VITRINE_ASSIGN_OR_RETURN(IdxArray arr, ReadIdx(path));
  if (arr.dims.size() != 3) {
    return Status::InvalidArgument(Str(path) + ": expected IDX images n x h x w (3 dims), found " +
                                   std::to_string(arr.dims.size()) + " dims");
  }
  if (expected_count > 0 && arr.dims[0] != expected_count) {
    return Status::InvalidArgument(Str(path) + ": has " + std::to_string(arr.dims[0]) +
                                   " images but " + std::to_string(expected_count) +
                                   " were expected (one per catalog item, in catalog order)");
  }
  // Zero-pixel images have nothing to encode (and stb's resampler asserts
  // on them): refused, as are images larger than any product photo.
  constexpr uint32_t kMaxSide = 16384;
  if (arr.dims[1] < 1 || arr.dims[2] < 1 || arr.dims[1] > kMaxSide || arr.dims[2] > kMaxSide) {
    return Status::InvalidArgument(Str(path) + ": images of " + std::to_string(arr.dims[1]) +
                                   " x " + std::to_string(arr.dims[2]) + " pixels (expected 1.." +
                                   std::to_string(kMaxSide) + " on each side)");
  }
  ImageBatch b;
  b.height = arr.dims[1];
  b.width = arr.dims[2];
  b.channels = 1;
  b.pixels = std::move(arr.data);
  return b;
}

Result<ImageBatch> LoadImageFiles(const std::vector<std::filesystem::path>& paths, int size) {
  if (size <= 0) return Status::InvalidArgument("image size must be positive");
  ImageBatch b;
  b.height = b.width = static_cast<size_t>(size);
  b.channels = 3;
  b.pixels = MatrixU8(paths.size(), b.height * b.width * 3);
  for (size_t i = 0; i < paths.size(); ++i) {
    VITRINE_ASSIGN_OR_RETURN(RgbImage im, DecodeImageFile(paths[i]));
    const int ok = stbir_resize_uint8(im.pixels.data(), im.width, im.height, 0, b.pixels.row(i),
                                      size, size, 0, 3);
    if (!ok) return Status::Internal(Str(paths[i]) + ": resize failed");
  }
  return b;
}

Result<Matrix> LoadPrecomputedVectors(const std::filesystem::path& path, size_t expected_count) {
  VITRINE_ASSIGN_OR_RETURN(Matrix m, ReadVectors(path));
  if (expected_count > 0 && m.rows != expected_count) {
    return Status::InvalidArgument(Str(path) + ": has " + std::to_string(m.rows) + " vectors but " +
                                   std::to_string(expected_count) +
                                   " were expected (one per catalog item, in catalog order)");
  }
  return m;  // ReadVectors refused NaN and Inf, naming the row
}

VisualEncoder::VisualEncoder(VisualEncoderOptions options) : options_(std::move(options)) {}

Status VisualEncoderOptions::Validate() const {
  auto text = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return std::string(buf);
  };
  auto out_of_range = [&](const char* name, double value, double lo, double hi) {
    return Status::InvalidArgument("visual options: " + std::string(name) + " " + text(value) +
                                   " is outside [" + text(lo) + ", " + text(hi) + "]");
  };
  auto check = [&](const char* name, double value, double lo, double hi) {
    return std::isfinite(value) && value >= lo && value <= hi ? Status::OK()
                                                              : out_of_range(name, value, lo, hi);
  };
  constexpr double kHuge = std::numeric_limits<float>::max();
  VITRINE_RETURN_IF_ERROR(check("canonical_size", canonical_size, 2, kMaxCanonicalSize));
  if (hog_grids.size() > kMaxHogGrids) {
    return Status::InvalidArgument("visual options: " + std::to_string(hog_grids.size()) +
                                   " HOG grids, expected at most " + std::to_string(kMaxHogGrids));
  }
  for (int g : hog_grids) VITRINE_RETURN_IF_ERROR(check("HOG grid", g, 1, canonical_size));
  VITRINE_RETURN_IF_ERROR(check("orientation_bins", orientation_bins, 1, kMaxBins));
  VITRINE_RETURN_IF_ERROR(check("pixel_grid", pixel_grid, 0, canonical_size));
  VITRINE_RETURN_IF_ERROR(check("intensity_bins", intensity_bins, 0, kMaxBins));
  VITRINE_RETURN_IF_ERROR(check("hue_bins", hue_bins, 0, kMaxBins));
  VITRINE_RETURN_IF_ERROR(check("saturation_bins", saturation_bins, 0, kMaxBins));
  VITRINE_RETURN_IF_ERROR(check("value_bins", value_bins, 0, kMaxBins));
  VITRINE_RETURN_IF_ERROR(check("hog_power", hog_power, 0, kHuge));
  VITRINE_RETURN_IF_ERROR(check("hog_weight", hog_weight, 0, kHuge));
  VITRINE_RETURN_IF_ERROR(check("pixel_weight", pixel_weight, 0, kHuge));
  VITRINE_RETURN_IF_ERROR(check("intensity_weight", intensity_weight, 0, kHuge));
  VITRINE_RETURN_IF_ERROR(check("colour_weight", colour_weight, 0, kHuge));
  VITRINE_RETURN_IF_ERROR(check("whiten_power", whiten_power, 0, kHuge));
  VITRINE_RETURN_IF_ERROR(check("whiten_epsilon", whiten_epsilon, 0, kHuge));
  VITRINE_RETURN_IF_ERROR(check("dim", dim, 1, kMaxDim));
  return check("exact_eigen_max_dim", exact_eigen_max_dim, 0, std::numeric_limits<int>::max());
}

Result<VisualEncoder> VisualEncoder::FromParameters(VisualEncoderOptions options, Matrix mean,
                                                    Matrix components, Matrix eigenvalues) {
  VITRINE_RETURN_IF_ERROR(options.Validate());
  if (mean.rows != 1 || mean.cols == 0 || components.cols != mean.cols || eigenvalues.rows != 1 ||
      eigenvalues.cols != components.rows || components.rows == 0) {
    return Status::InvalidArgument(
        "visual encoder parameters: expected mean 1 x d, components k x d, eigenvalues 1 x k; "
        "found mean " +
        std::to_string(mean.rows) + " x " + std::to_string(mean.cols) + ", components " +
        std::to_string(components.rows) + " x " + std::to_string(components.cols) +
        ", eigenvalues " + std::to_string(eigenvalues.rows) + " x " +
        std::to_string(eigenvalues.cols));
  }
  VisualEncoder e(std::move(options));
  e.mean_ = std::move(mean);
  e.components_ = std::move(components);
  e.eigenvalues_ = std::move(eigenvalues);
  return e;
}

size_t VisualEncoder::DescriptorDim(size_t channels) const {
  return Describer::Dim(options_, channels);
}

Result<Matrix> VisualEncoder::Describe(const ImageBatch& images) const {
  const VisualEncoderOptions& o = options_;
  if (images.channels != 1 && images.channels != 3) {
    return Status::InvalidArgument("images: expected 1 (gray) or 3 (RGB) channels, found " +
                                   std::to_string(images.channels));
  }
  if (images.pixels.cols != images.height * images.width * images.channels) {
    return Status::InvalidArgument("images: row size does not match height x width x channels");
  }
  VITRINE_RETURN_IF_ERROR(o.Validate());
  VITRINE_ASSIGN_OR_RETURN(MatrixU8 px, ToCanonical(images, o.canonical_size));
  Matrix out(images.size(), DescriptorDim(images.channels));
  const int64_t n = static_cast<int64_t>(images.size());
#pragma omp parallel
  {
    Describer d(o, images.channels);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) d.Run(px.row(i), out.row(i));
  }
  return out;
}

Status VisualEncoder::Fit(const Matrix& x) {
  const size_t n = x.rows, d = x.cols;
  if (n < 2) {
    return Status::InvalidArgument("visual encoder fit: need at least 2 descriptors, got " +
                                   std::to_string(n));
  }
  if (d == 0) {
    return Status::InvalidArgument(
        "visual encoder fit: descriptors have 0 columns (every descriptor group is disabled)");
  }
  const size_t k = std::min<size_t>(std::max(options_.dim, 1), d);
  // Mean in double: 60k rows of float sums lose digits otherwise.
  std::vector<double> mu(d, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const float* r = x.row(i);
    for (size_t j = 0; j < d; ++j) mu[j] += r[j];
  }
  Matrix mean(1, d);
  for (size_t j = 0; j < d; ++j) mean.data[j] = static_cast<float>(mu[j] / n);
  // Covariance of the centred rows with BLAS ssyrk, in blocks of rows so the
  // centred copy stays small.
  std::vector<float> cov(d * d, 0.0f);
  const size_t kBlock = 4096;
  std::vector<float> c(std::min(n, kBlock) * d);
  for (size_t r0 = 0; r0 < n; r0 += kBlock) {
    const size_t m = std::min(kBlock, n - r0);
    for (size_t i = 0; i < m; ++i) {
      const float* r = x.row(r0 + i);
      for (size_t j = 0; j < d; ++j) c[i * d + j] = r[j] - mean.data[j];
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(d), static_cast<int>(m),
                1.0f, c.data(), static_cast<int>(d), 1.0f, cov.data(), static_cast<int>(d));
  }
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = 0; j < i; ++j) cov[i * d + j] = cov[j * d + i];  // ssyrk filled the upper half
  }
  const float inv = 1.0f / static_cast<float>(n - 1);
  for (float& v : cov) v *= inv;
  Eigen::MatrixXd vecs;  // d x k, eigenvectors by decreasing eigenvalue
  Eigen::VectorXd vals;  // k
  if (d <= static_cast<size_t>(options_.exact_eigen_max_dim) || 2 * k >= d) {
    ExactTopEigen(cov, d, k, &vals, &vecs);
  } else {
    SubspaceTopEigen(cov, d, k, &vals, &vecs);
  }
  // A fixed sign (largest-magnitude entry positive) so refits give identical
  // output.
  Matrix comps(k, d), eig(1, k);
  for (size_t c2 = 0; c2 < k; ++c2) {
    eig.data[c2] = static_cast<float>(std::max(vals(c2), 0.0));
    Eigen::Index arg = 0;
    vecs.col(c2).cwiseAbs().maxCoeff(&arg);
    const double sign = vecs(arg, c2) < 0 ? -1.0 : 1.0;
    for (size_t j = 0; j < d; ++j) comps.at(c2, j) = static_cast<float>(sign * vecs(j, c2));
  }
  mean_ = std::move(mean);
  components_ = std::move(comps);
  eigenvalues_ = std::move(eig);
  return Status::OK();
}

Result<Matrix> VisualEncoder::Transform(const Matrix& x) const {
  if (!fitted()) return Status::InvalidArgument("visual encoder: Transform before Fit");
  const size_t d = mean_.cols, k = components_.rows;
  if (x.cols != d) {
    return Status::InvalidArgument("visual encoder: descriptors have " + std::to_string(x.cols) +
                                   " columns but the encoder was fitted on " + std::to_string(d));
  }
  // Centre and project in blocks of rows so the centred copy stays small
  // (60k x 3072 descriptors would otherwise double the memory).
  Matrix y(x.rows, k);
  const size_t kBlock = 4096;
  std::vector<float> c(std::min(x.rows, kBlock) * d);
  for (size_t r0 = 0; r0 < x.rows; r0 += kBlock) {
    const size_t m = std::min(kBlock, x.rows - r0);
    for (size_t i = 0; i < m; ++i) {
      const float* r = x.row(r0 + i);
      for (size_t j = 0; j < d; ++j) c[i * d + j] = r[j] - mean_.data[j];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(k),
                static_cast<int>(d), 1.0f, c.data(), static_cast<int>(d), components_.data.data(),
                static_cast<int>(d), 0.0f, y.row(r0), static_cast<int>(k));
  }
  // Whitening: component i scaled by (lambda_i + eps)^-p. eps relative to
  // the top eigenvalue keeps near-null directions from exploding.
  const float eps = options_.whiten_epsilon * eigenvalues_.data[0];
  std::vector<float> scale(k);
  for (size_t j = 0; j < k; ++j) {
    scale[j] = std::pow(eigenvalues_.data[j] + eps + 1e-30f, -options_.whiten_power);
  }
  for (size_t i = 0; i < y.rows; ++i) {
    float* r = y.row(i);
    for (size_t j = 0; j < k; ++j) r[j] *= scale[j];
  }
  if (options_.l2_normalize) L2NormalizeRows(&y);
  return y;
}

namespace {
// Rows `rows` of `images`, as a batch of their own.
ImageBatch SelectImages(const ImageBatch& images, const std::vector<size_t>& rows) {
  ImageBatch out;
  out.height = images.height;
  out.width = images.width;
  out.channels = images.channels;
  out.pixels = MatrixU8(rows.size(), images.pixels.cols);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(images.pixels.row(rows[i]), images.pixels.cols, out.pixels.row(i));
  }
  return out;
}
}  // namespace

Result<Matrix> VisualEncoder::FitTransform(const ImageBatch& images,
                                           const std::function<void(size_t done)>& on_progress) {
  const size_t n = images.size();
  if (n <= kEncodeChunk) {  // small catalogs: one pass, as before
    VITRINE_ASSIGN_OR_RETURN(Matrix desc, Describe(images));
    VITRINE_RETURN_IF_ERROR(Fit(desc));
    if (on_progress) on_progress(n);
    return Transform(desc);
  }
  // Fit on every image up to kFitSample, else on evenly spaced ones: a
  // deterministic sample that covers the whole catalog order.
  std::vector<size_t> rows;
  const size_t m = std::min(n, kFitSample);
  rows.reserve(m);
  for (size_t i = 0; i < m; ++i) rows.push_back(i * n / m);
  {
    VITRINE_ASSIGN_OR_RETURN(Matrix sample, Describe(SelectImages(images, rows)));
    VITRINE_RETURN_IF_ERROR(Fit(sample));
  }
  Matrix out(n, components_.rows);
  for (size_t at = 0; at < n; at += kEncodeChunk) {
    const size_t take = std::min(kEncodeChunk, n - at);
    rows.resize(take);
    std::iota(rows.begin(), rows.end(), at);
    VITRINE_ASSIGN_OR_RETURN(Matrix desc, Describe(SelectImages(images, rows)));
    VITRINE_ASSIGN_OR_RETURN(Matrix part, Transform(desc));
    std::copy(part.data.begin(), part.data.end(), out.row(at));
    if (on_progress) on_progress(at + take);
  }
  return out;
}

Result<double> SameLabelPrecisionAtK(const Matrix& catalog, const std::vector<int>& catalog_labels,
                                     const Matrix& queries, const std::vector<int>& query_labels,
                                     int k, bool cosine) {
  if (catalog.cols != queries.cols) {
    return Status::InvalidArgument("precision@k: catalog has " + std::to_string(catalog.cols) +
                                   " columns, queries " + std::to_string(queries.cols));
  }
  if (catalog_labels.size() != catalog.rows || query_labels.size() != queries.rows) {
    return Status::InvalidArgument("precision@k: label count does not match row count");
  }
  if (k < 1 || static_cast<size_t>(k) > catalog.rows || queries.rows == 0) {
    return Status::InvalidArgument("precision@k: need 1 <= k <= catalog rows and queries");
  }
  Matrix c = catalog, q = queries;
  if (cosine) {
    L2NormalizeRows(&c);
    L2NormalizeRows(&q);
  }
  // Score = q.c (cosine) or q.c - |c|^2/2 (same order as -|q-c|^2).
  std::vector<float> bias(c.rows, 0.0f);
  if (!cosine) {
    for (size_t j = 0; j < c.rows; ++j) {
      double ss = 0;
      for (size_t t = 0; t < c.cols; ++t) ss += static_cast<double>(c.at(j, t)) * c.at(j, t);
      bias[j] = static_cast<float>(-0.5 * ss);
    }
  }
  const size_t nc = c.rows, d = c.cols, kBlock = 256;
  std::vector<float> s(kBlock * nc);
  int64_t hits = 0;
  for (size_t q0 = 0; q0 < q.rows; q0 += kBlock) {
    const size_t m = std::min(kBlock, q.rows - q0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(nc),
                static_cast<int>(d), 1.0f, q.row(q0), static_cast<int>(d), c.data.data(),
                static_cast<int>(d), 0.0f, s.data(), static_cast<int>(nc));
#pragma omp parallel for schedule(static) reduction(+ : hits)
    for (int64_t i = 0; i < static_cast<int64_t>(m); ++i) {
      // Small sorted top-k by insertion: k is tiny next to nc.
      std::vector<std::pair<float, int>> top;
      top.reserve(k + 1);
      const float* row = &s[i * nc];
      for (size_t j = 0; j < nc; ++j) {
        const float v = row[j] + bias[j];
        if (top.size() == static_cast<size_t>(k) && v <= top.back().first) continue;
        auto it =
            std::upper_bound(top.begin(), top.end(), v,
                             [](float a, const std::pair<float, int>& b) { return a > b.first; });
        top.insert(it, {v, static_cast<int>(j)});
        if (top.size() > static_cast<size_t>(k)) top.pop_back();
      }
      for (const auto& [v, j] : top) hits += catalog_labels[j] == query_labels[q0 + i];
    }
  }
  return static_cast<double>(hits) / (static_cast<double>(q.rows) * k);
}

}  // namespace vitrine
