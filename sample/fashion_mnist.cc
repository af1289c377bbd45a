// Fashion-MNIST for the sample generator: dataset loading, per-image visual
// styles (k-means) and shade terciles, and the reuse transforms.
#include "sample/fashion_mnist.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "core/array_io.h"
#include "sample/random.h"

namespace vitrine::sample {
namespace fs = std::filesystem;

Result<fs::path> FindDatasetFile(const fs::path& dir, const std::string& base) {
  std::error_code ec;
  fs::path p = dir / (base + ".gz");
  if (fs::exists(p, ec)) return p;
  p = dir / base;
  if (fs::exists(p, ec)) return p;
  return Status::NotFound((dir / (base + ".gz")).string() +
                          ": Fashion-MNIST not found; install the dataset-fashion-mnist "
                          "package or pass --fashion-mnist DIR (or set "
                          "VITRINE_FASHION_MNIST)");
}

namespace {
Result<IdxArray> ReadDatasetFile(const fs::path& dir, const std::string& base) {
  VITRINE_ASSIGN_OR_RETURN(fs::path p, FindDatasetFile(dir, base));
  return ReadIdx(p);
}
}  // namespace

Result<FashionMnist> LoadFashionMnist(const fs::path& dir) {
  FashionMnist out;
  out.images = MatrixU8(0, kImagePixels);
  for (const char* split : {"train", "t10k"}) {
    VITRINE_ASSIGN_OR_RETURN(IdxArray img,
                             ReadDatasetFile(dir, std::string(split) + "-images-idx3-ubyte"));
    VITRINE_ASSIGN_OR_RETURN(IdxArray lab,
                             ReadDatasetFile(dir, std::string(split) + "-labels-idx1-ubyte"));
    const std::string where = (dir / split).string();
    if (img.dims.size() != 3 || img.dims[1] != 28 || img.dims[2] != 28) {
      return Status::Corruption(where + "-images-idx3-ubyte: expected n x 28 x 28 images");
    }
    if (lab.dims.size() != 1 || lab.dims[0] != img.dims[0]) {
      return Status::Corruption(where + "-labels-idx1-ubyte: expected " +
                                std::to_string(img.dims[0]) + " labels");
    }
    for (uint8_t l : lab.data.data) {
      if (l >= kCategories) {
        return Status::Corruption(where + "-labels-idx1-ubyte: label " + std::to_string(l) +
                                  " out of range 0..9");
      }
    }
    out.images.data.insert(out.images.data.end(), img.data.data.begin(), img.data.data.end());
    out.images.rows += img.data.rows;
    out.labels.insert(out.labels.end(), lab.data.data.begin(), lab.data.data.end());
  }
  if (out.images.rows == 0) return Status::Corruption(dir.string() + ": Fashion-MNIST is empty");
  return out;
}

std::vector<uint8_t> ComputeVisualStyles(const FashionMnist& ds) {
  constexpr int kDim = 49;
  const size_t n = ds.images.rows;
  std::vector<float> feat(n * kDim, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* img = ds.images.row(i);
    float* f = &feat[i * kDim];
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) f[(y / 4) * 7 + x / 4] += img[y * 28 + x] / (16.0f * 255.0f);
    }
  }
  std::vector<uint8_t> style(n, 0);
  for (int c = 0; c < kCategories; ++c) {
    std::vector<size_t> members;
    for (size_t i = 0; i < n; ++i) {
      if (ds.labels[i] == c) members.push_back(i);
    }
    if (members.size() < static_cast<size_t>(kStyles)) continue;
    auto dist = [&](size_t i, const float* ctr) {
      float d = 0;
      for (int j = 0; j < kDim; ++j) {
        const float t = feat[i * kDim + j] - ctr[j];
        d += t * t;
      }
      return d;
    };
    // k-means++ initialisation.
    Rng rng(0x57a1e5 + static_cast<uint64_t>(c));
    std::vector<float> ctr(kStyles * kDim);
    std::vector<double> d2(members.size(), std::numeric_limits<double>::max());
    size_t first = members[rng.Below(members.size())];
    std::copy_n(&feat[first * kDim], kDim, &ctr[0]);
    for (int k = 1; k < kStyles; ++k) {
      double total = 0;
      for (size_t m = 0; m < members.size(); ++m) {
        d2[m] = std::min<double>(d2[m], dist(members[m], &ctr[(k - 1) * kDim]));
        total += d2[m];
      }
      double u = rng.Uniform() * total;
      size_t pick = members.size() - 1;
      for (size_t m = 0; m < members.size(); ++m) {
        if (u < d2[m]) {
          pick = m;
          break;
        }
        u -= d2[m];
      }
      std::copy_n(&feat[members[pick] * kDim], kDim, &ctr[k * kDim]);
    }
    // Lloyd iterations; a fixed count keeps the cost predictable.
    std::vector<int> assign(members.size(), 0);
    for (int iter = 0; iter < 15; ++iter) {
      std::vector<double> sum(kStyles * kDim, 0.0);
      std::vector<int64_t> count(kStyles, 0);
      for (size_t m = 0; m < members.size(); ++m) {
        int best = 0;
        float best_d = dist(members[m], &ctr[0]);
        for (int k = 1; k < kStyles; ++k) {
          const float d = dist(members[m], &ctr[k * kDim]);
          if (d < best_d) best_d = d, best = k;
        }
        assign[m] = best;
        ++count[best];
        for (int j = 0; j < kDim; ++j) sum[best * kDim + j] += feat[members[m] * kDim + j];
      }
      for (int k = 0; k < kStyles; ++k) {
        if (count[k] == 0) continue;  // keep an empty centroid where it is
        for (int j = 0; j < kDim; ++j) ctr[k * kDim + j] = sum[k * kDim + j] / count[k];
      }
    }
    std::array<std::pair<double, int>, kStyles> order;
    for (int k = 0; k < kStyles; ++k) {
      double b = 0;
      for (int j = 0; j < kDim; ++j) b += ctr[k * kDim + j];
      order[k] = {b, k};
    }
    std::sort(order.begin(), order.end());
    std::array<int, kStyles> rank{};
    for (int r = 0; r < kStyles; ++r) rank[order[r].second] = r;
    for (size_t m = 0; m < members.size(); ++m) {
      style[members[m]] = static_cast<uint8_t>(rank[assign[m]]);
    }
  }
  return style;
}

std::vector<uint8_t> ComputeShadeTerciles(const FashionMnist& ds) {
  const size_t n = ds.images.rows;
  std::vector<float> mean(n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* img = ds.images.row(i);
    int64_t sum = 0, cnt = 0;
    for (int j = 0; j < kImagePixels; ++j) {
      if (img[j] > 0) sum += img[j], ++cnt;
    }
    mean[i] = cnt == 0 ? 0.0f : static_cast<float>(sum) / static_cast<float>(cnt);
  }
  std::vector<float> sorted = mean;
  std::sort(sorted.begin(), sorted.end());
  const float t1 = sorted[n / 3], t2 = sorted[2 * n / 3];
  std::vector<uint8_t> shade(n);
  for (size_t i = 0; i < n; ++i) shade[i] = mean[i] < t1 ? 0 : (mean[i] < t2 ? 1 : 2);
  return shade;
}

void TransformImage(const uint8_t* src, bool flip, int dx, int dy, uint8_t* dst) {
  if (flip) {
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) dst[y * 28 + x] = src[y * 28 + 27 - x];
    }
    return;
  }
  std::memset(dst, 0, kImagePixels);
  for (int y = 0; y < 28; ++y) {
    const int sy = y - dy;
    if (sy < 0 || sy >= 28) continue;
    for (int x = 0; x < 28; ++x) {
      const int sx = x - dx;
      if (sx >= 0 && sx < 28) dst[y * 28 + x] = src[sy * 28 + sx];
    }
  }
}

}  // namespace vitrine::sample
