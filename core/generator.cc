#include "core/generator.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string_view>
#include <vector>

#include "core/array_io.h"
#include "core/file_util.h"
#include "core/matrix.h"
#include "core/progress.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------
// Random numbers. Every draw is our own function of mt19937_64 output (whose
// sequence the standard fixes), so files do not change with the library's
// distribution implementations.

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : eng_(seed) {}
  // One independent stream per generator stage, so changing how one stage
  // draws does not shift every later stage.
  static Rng ForStage(uint64_t seed, uint64_t stage) {
    return Rng(SplitMix64(seed ^ SplitMix64(stage + 0x51a7e)));
  }
  double Uniform() { return static_cast<double>(eng_() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t Below(uint64_t n) {  // [0, n), multiply-shift
    __extension__ using U128 = unsigned __int128;
    return static_cast<uint64_t>((static_cast<U128>(eng_()) * n) >> 64);
  }
  bool Bernoulli(double p) { return Uniform() < p; }
  double Normal() {  // Box-Muller, one value per call (simple and stateless)
    const double u1 = 1.0 - Uniform();
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double Jitter() { return 0.8 + 0.4 * Uniform(); }
  // Index drawn proportional to w[0..n) (linear scan: small n only).
  int Pick(const double* w, int n) {
    double total = 0;
    for (int i = 0; i < n; ++i) total += w[i];
    double u = Uniform() * total;
    for (int i = 0; i < n; ++i) {
      if (u < w[i]) return i;
      u -= w[i];
    }
    return n - 1;
  }

 private:
  std::mt19937_64 eng_;
};

// ---------------------------------------------------------------------------
// The invented fashion world.

constexpr int kCategories = 10;
constexpr int kTiers = 3;
constexpr int kStyles = 4;  // visual styles per category
constexpr int kBands = 4;   // price bands
constexpr int kGroups = kTiers * kCategories * kStyles * kBands;
constexpr int kImagePixels = 28 * 28;
constexpr int kFashionMnistImages = 70000;

constexpr const char* kTierNames[kTiers] = {"luxury", "premium", "high_street"};
constexpr double kTierItemShare[kTiers] = {0.2, 0.35, 0.45};
constexpr double kTierPriceFactor[kTiers] = {14.0, 3.2, 1.0};
constexpr double kBandUpper[kBands - 1] = {100, 300, 1000};  // last band open-ended
constexpr const char* kCategoryNoun[kCategories] = {"t-shirt", "trousers",   "pullover", "dress",
                                                    "coat",    "sandals",    "shirt",    "sneakers",
                                                    "bag",     "ankle boots"};
// High-street base price per category (EUR); tiers multiply it.
constexpr double kBasePrice[kCategories] = {35, 70, 75, 95, 180, 60, 60, 90, 120, 130};

struct Brand {
  const char* name;
  int tier;
  bool sustainable;
};
constexpr Brand kBrands[] = {
    {"Maison Orra", 0, false},  {"Valcourt Paris", 0, false}, {"Atelier Seren", 0, true},
    {"Castellane", 0, false},   {"Ivo Marchetti", 0, false},  {"Maison Lirael", 0, false},
    {"Orsini Noir", 0, false},  {"Hautmont", 0, false},       {"Sable & Rue", 0, true},
    {"Vionnelle", 0, false},    {"Casa Ardente", 0, false},   {"Montclaire", 0, false},
    {"Nordhavn", 1, false},     {"Aster Row", 1, false},      {"Fernhill Studio", 1, false},
    {"Oak & Thread", 1, true},  {"Halden", 1, false},         {"Rowe Atelier", 1, false},
    {"Marlow Lane", 1, false},  {"Solvej", 1, true},          {"Aubrey Kent", 1, false},
    {"Tessaro", 1, false},      {"Linnea Vik", 1, true},      {"Calder & Moss", 1, true},
    {"Brume", 1, true},         {"Urbanite", 2, false},       {"Streetform", 2, false},
    {"Basic Edit", 2, false},   {"Mode Lab", 2, false},       {"Pulse", 2, false},
    {"Daily Thread", 2, false}, {"Northside", 2, false},      {"Kite & Co", 2, true},
    {"Loop", 2, true},          {"Freshfold", 2, true},       {"Citywear", 2, false},
    {"Bright Lane", 2, false},  {"Trendline", 2, false},      {"Nova Basics", 2, false},
    {"Harbour & Co", 2, false},
};
constexpr int kNumBrands = sizeof(kBrands) / sizeof(kBrands[0]);

// Fashion-MNIST stores negated grey levels (background 0), so a bright image
// is a dark garment: palettes are indexed by the image's brightness tercile.
constexpr const char* kPalettes[3][6] = {
    {"white", "ivory", "cream", "beige", "pink", "sand"},
    {"grey", "camel", "red", "blue", "green", "khaki"},
    {"black", "navy", "charcoal", "brown", "burgundy", "olive"},
};

struct Material {
  const char* name;
  double tier_weight[kTiers];
};
struct CategoryMaterials {
  Material m[5];
};
constexpr CategoryMaterials kMaterials[kCategories] = {
    {{{"cotton", {1, 2, 4}},
      {"organic cotton", {1, 2, 1}},
      {"silk", {2, 0.5, 0}},
      {"linen", {1, 1, 0.5}},
      {"jersey", {0.3, 1, 3}}}},
    {{{"wool", {3, 2, 0.5}},
      {"cotton", {1, 2, 3}},
      {"denim", {0.5, 2, 3}},
      {"linen", {1, 1, 1}},
      {"leather", {1, 0.3, 0.1}}}},
    {{{"cashmere", {4, 1, 0}},
      {"wool", {2, 3, 1}},
      {"merino", {1, 2, 0.5}},
      {"cotton", {0.5, 1, 3}},
      {"acrylic", {0, 0.2, 2}}}},
    {{{"silk", {4, 1, 0.2}},
      {"cotton", {0.5, 2, 3}},
      {"linen", {1, 1.5, 1}},
      {"viscose", {0.2, 1, 3}},
      {"satin", {1, 1, 1}}}},
    {{{"cashmere", {3, 0.5, 0}},
      {"wool", {3, 3, 1.5}},
      {"gabardine", {1.5, 1, 0.5}},
      {"leather", {1, 0.5, 0.2}},
      {"polyester", {0, 0.3, 2}}}},
    {{{"leather", {3, 3, 1.5}},
      {"suede", {2, 1, 0.5}},
      {"raffia", {0.5, 1, 1}},
      {"rubber", {0, 0.3, 2}},
      {"vegan leather", {0.3, 1, 1}}}},
    {{{"cotton", {1, 3, 4}},
      {"silk", {3, 0.5, 0.1}},
      {"linen", {1, 1.5, 1}},
      {"poplin", {2, 1.5, 0.5}},
      {"denim", {0.3, 1, 1.5}}}},
    {{{"leather", {3, 3, 2}},
      {"suede", {2, 1, 0.5}},
      {"canvas", {0.5, 1.5, 3}},
      {"mesh", {0.2, 1, 2}},
      {"vegan leather", {0.3, 1, 1}}}},
    {{{"leather", {5, 3, 1}},
      {"canvas", {0.5, 1.5, 2}},
      {"suede", {1, 1, 0.3}},
      {"nylon", {0.5, 1, 2}},
      {"vegan leather", {0.3, 1, 1}}}},
    {{{"leather", {3, 3, 2}},
      {"suede", {2, 1.5, 1}},
      {"vegan leather", {0.3, 1, 1.5}},
      {"patent leather", {1, 0.5, 0.3}},
      {"nubuck", {1, 1, 0.5}}}},
};

constexpr const char* kSeasons[3] = {"SS26", "AW26", "core"};
// Season weights: warm-weather, cold-weather and year-round categories.
constexpr double kSeasonWeights[kCategories][3] = {
    {0.55, 0.15, 0.30}, {0.30, 0.30, 0.40}, {0.10, 0.60, 0.30}, {0.55, 0.15, 0.30},
    {0.10, 0.60, 0.30}, {0.55, 0.15, 0.30}, {0.55, 0.15, 0.30}, {0.30, 0.30, 0.40},
    {0.30, 0.30, 0.40}, {0.10, 0.60, 0.30}};

// Event funnel (per item interaction).
constexpr double kCartGivenView = 0.2;
constexpr double kPurchaseGivenCart = 0.45;
constexpr double kReturnGivenPurchase = 0.2;
constexpr double kStayInGroup = 0.4;  // next view in a session: same group
constexpr double kSecondaryClusterUsers = 0.3;
constexpr double kSecondaryClusterEvents = 0.3;
constexpr const char* kEventNames[4] = {"view", "cart", "purchase", "return"};

int GroupOf(int tier, int category, int style, int band) {
  return ((tier * kCategories + category) * kStyles + style) * kBands + band;
}

// ---------------------------------------------------------------------------
// Output: buffered files written under a temporary sibling name and renamed
// into place only by Commit().

std::string Errno() { return std::strerror(errno); }

Status FsyncPath(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return Status::IOError(path.string() + ": cannot reopen for fsync: " + Errno());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError(path.string() + ": fsync failed: " + Errno());
  return Status::OK();
}

class StagedFile {
 public:
  StagedFile() = default;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  ~StagedFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_ && !tmp_.empty()) {
      std::error_code ec;
      fs::remove(tmp_, ec);
    }
  }

  Status Open(const fs::path& path) {
    final_ = path;
    tmp_ = TempSiblingPath(path);
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) return Status::IOError(tmp_.string() + ": cannot create: " + Errno());
    buf_.reserve(kFlushAt + 4096);
    return Status::OK();
  }
  // The append buffer; call MaybeFlush() after appending.
  std::string& buf() { return buf_; }
  Status MaybeFlush() { return buf_.size() >= kFlushAt ? Flush() : Status::OK(); }
  Status Close() {
    VITRINE_RETURN_IF_ERROR(Flush());
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) return Status::IOError(tmp_.string() + ": close failed: " + Errno());
    return FsyncPath(tmp_);
  }
  Status Commit() {
    std::error_code ec;
    fs::rename(tmp_, final_, ec);
    if (ec) return Status::IOError(final_.string() + ": cannot rename into place: " + ec.message());
    committed_ = true;
    return Status::OK();
  }

 private:
  static constexpr size_t kFlushAt = 1 << 20;
  Status Flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), file_) != buf_.size()) {
      return Status::IOError(tmp_.string() + ": write failed: " + Errno());
    }
    buf_.clear();
    return Status::OK();
  }
  fs::path final_, tmp_;
  FILE* file_ = nullptr;
  std::string buf_;
  bool committed_ = false;
};

// IDX ubyte images streamed through zlib's gzip writer. Level 1: on these
// mostly-black images it is ~2x faster than level 6 for ~3% more bytes.
class StagedGzip {
 public:
  StagedGzip() = default;
  StagedGzip(const StagedGzip&) = delete;
  StagedGzip& operator=(const StagedGzip&) = delete;
  ~StagedGzip() {
    if (gz_ != nullptr) gzclose(gz_);
    if (!committed_ && !tmp_.empty()) {
      std::error_code ec;
      fs::remove(tmp_, ec);
    }
  }
  Status Open(const fs::path& path) {
    final_ = path;
    tmp_ = TempSiblingPath(path);
    gz_ = gzopen(tmp_.c_str(), "wb1");
    if (gz_ == nullptr) return Status::IOError(tmp_.string() + ": cannot create: " + Errno());
    gzbuffer(gz_, 1 << 18);
    return Status::OK();
  }
  Status Write(const void* data, size_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
      if (gzwrite(gz_, p, chunk) != static_cast<int>(chunk)) {
        return Status::IOError(tmp_.string() + ": gzip write failed");
      }
      p += chunk;
      n -= chunk;
    }
    return Status::OK();
  }
  Status Close() {
    const int rc = gzclose(gz_);
    gz_ = nullptr;
    if (rc != Z_OK) return Status::IOError(tmp_.string() + ": gzip close failed");
    return FsyncPath(tmp_);
  }
  Status Commit() {
    std::error_code ec;
    fs::rename(tmp_, final_, ec);
    if (ec) return Status::IOError(final_.string() + ": cannot rename into place: " + ec.message());
    committed_ = true;
    return Status::OK();
  }

 private:
  fs::path final_, tmp_;
  gzFile gz_ = nullptr;
  bool committed_ = false;
};

void AppendInt(std::string& s, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  s.append(buf, r.ptr);
}

// "I000123": zero-padded to `width` digits (more digits if needed).
void AppendId(std::string& s, char prefix, int64_t v, int width) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  const int digits = static_cast<int>(r.ptr - buf);
  s.push_back(prefix);
  if (digits < width) s.append(static_cast<size_t>(width - digits), '0');
  s.append(buf, r.ptr);
}

// ---------------------------------------------------------------------------
// Fashion-MNIST and the visual features derived from it.

struct FashionMnist {
  MatrixU8 images;              // 70000 x 784: train then t10k
  std::vector<uint8_t> labels;  // class 0..9
};

constexpr const char* kDatasetFiles[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// "<dir>/<base>.gz", else "<dir>/<base>", else NotFound with the fix.
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

Result<IdxArray> ReadDatasetFile(const fs::path& dir, const std::string& base) {
  VITRINE_ASSIGN_OR_RETURN(fs::path p, FindDatasetFile(dir, base));
  return ReadIdx(p);
}

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

// Visual style of every dataset image: k-means (k = kStyles) per category
// over 7x7 block means, seeded by a constant so styles depend only on the
// image. Styles are renumbered by centroid brightness for stable meaning.
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

// Brightness tercile (0 light garment .. 2 dark garment) of every image, from
// the mean grey level of its non-background pixels.
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

// Writes item image `src` transformed: mirrored, or shifted by (dx, dy)
// with background (0) filling the uncovered border.
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

// ---------------------------------------------------------------------------
// The catalog and the hidden taste model.

struct Items {
  int64_t n = 0;
  std::vector<int32_t> source;  // Fashion-MNIST image index
  std::vector<uint8_t> flip;
  std::vector<int8_t> dx, dy;
  std::vector<uint8_t> category, style, tier, band, brand, color_shade, color, material, season;
  std::vector<uint8_t> in_stock, sustainable, taste;
  std::vector<float> price, popularity;
};

struct Cluster {
  std::string name;
  double user_share = 0;
  double tier_w[kTiers];
  double category_w[kCategories];
  double style_w[kCategories][kStyles];
  double band_w[kBands];
  double Affinity(int group) const {
    const int b = group % kBands;
    const int s = (group / kBands) % kStyles;
    const int c = (group / (kBands * kStyles)) % kCategories;
    const int t = group / (kBands * kStyles * kCategories);
    return tier_w[t] * category_w[c] * style_w[c][s] * band_w[b];
  }
};

std::vector<Cluster> MakeClusters(int k, Rng& rng) {
  std::vector<Cluster> clusters(k);
  double share_total = 0;
  for (auto& cl : clusters) {
    const int tier = static_cast<int>(rng.Below(kTiers));
    for (int t = 0; t < kTiers; ++t) {
      const int gap = std::abs(t - tier);
      cl.tier_w[t] = (gap == 0 ? 1.0 : gap == 1 ? 0.25 : 0.05) * rng.Jitter();
    }
    // Three favourite categories, drawn without replacement.
    std::array<int, kCategories> cats;
    for (int c = 0; c < kCategories; ++c) cats[c] = c;
    for (int i = 0; i < 3; ++i) {
      std::swap(cats[i], cats[i + rng.Below(kCategories - i)]);
    }
    for (int c = 0; c < kCategories; ++c) cl.category_w[c] = 0.08 * rng.Jitter();
    for (int i = 0; i < 3; ++i) cl.category_w[cats[i]] = rng.Jitter();
    for (int c = 0; c < kCategories; ++c) {
      const int fav = static_cast<int>(rng.Below(kStyles));
      for (int s = 0; s < kStyles; ++s) cl.style_w[c][s] = (s == fav ? 1.0 : 0.2) * rng.Jitter();
    }
    // The favourite price band follows the tier: luxury 2-3, premium 1-2,
    // high street 0-1.
    const int band = (kTiers - 1 - tier) + static_cast<int>(rng.Below(2));
    for (int b = 0; b < kBands; ++b) {
      const int gap = std::abs(b - band);
      cl.band_w[b] = (gap == 0 ? 1.0 : gap == 1 ? 0.3 : 0.05) * rng.Jitter();
    }
    cl.user_share = 0.5 + rng.Uniform();
    share_total += cl.user_share;
    cl.name = std::string(kTierNames[tier]) + ":" + kFashionCategories[cats[0]] + "+" +
              kFashionCategories[cats[1]] + "+" + kFashionCategories[cats[2]];
  }
  for (auto& cl : clusters) cl.user_share /= share_total;
  return clusters;
}

Items MakeItems(const GeneratorOptions& o, const FashionMnist& ds,
                const std::vector<uint8_t>& styles, const std::vector<uint8_t>& shades) {
  Items it;
  const int64_t n = o.num_items;
  it.n = n;
  it.source.resize(n);
  it.flip.assign(n, 0);
  it.dx.assign(n, 0);
  it.dy.assign(n, 0);
  for (auto* v : {&it.category, &it.style, &it.tier, &it.band, &it.brand, &it.color_shade,
                  &it.color, &it.material, &it.season, &it.in_stock, &it.sustainable, &it.taste}) {
    v->assign(n, 0);
  }
  it.price.resize(n);
  it.popularity.resize(n);

  // Images: a seed-dependent permutation of the dataset, reused with small
  // transforms once it runs out.
  Rng img_rng = Rng::ForStage(o.seed, 1);
  const int64_t unique = std::max<int64_t>(
      1, std::min<int64_t>({o.unique_images, static_cast<int64_t>(ds.images.rows), n}));
  std::vector<int32_t> perm(ds.images.rows);
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int32_t>(i);
  for (int64_t i = 0; i < unique; ++i) {
    std::swap(perm[i], perm[i + img_rng.Below(perm.size() - i)]);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (i < unique) {
      it.source[i] = perm[i];
      continue;
    }
    it.source[i] = perm[img_rng.Below(unique)];
    if (img_rng.Bernoulli(0.5)) {
      it.flip[i] = 1;
    } else {
      int dx = 0, dy = 0;
      while (dx == 0 && dy == 0) {
        dx = static_cast<int>(img_rng.Below(5)) - 2;
        dy = static_cast<int>(img_rng.Below(5)) - 2;
      }
      it.dx[i] = static_cast<int8_t>(dx);
      it.dy[i] = static_cast<int8_t>(dy);
    }
  }

  // Attributes.
  Rng rng = Rng::ForStage(o.seed, 2);
  std::array<std::vector<int>, kTiers> tier_brands;
  std::array<std::vector<double>, kTiers> tier_brand_w;
  for (int b = 0; b < kNumBrands; ++b) {
    const int t = kBrands[b].tier;
    tier_brands[t].push_back(b);
    // Within a tier a few brands carry most of the catalog.
    tier_brand_w[t].push_back(1.0 / std::sqrt(1.0 + tier_brands[t].size()));
  }
  for (int64_t i = 0; i < n; ++i) {
    const int src = it.source[i];
    const int cat = ds.labels[src];
    const int tier = rng.Pick(kTierItemShare, kTiers);
    const int brand = tier_brands[tier][rng.Pick(tier_brand_w[tier].data(),
                                                 static_cast<int>(tier_brands[tier].size()))];
    double mat_w[5];
    for (int m = 0; m < 5; ++m) mat_w[m] = kMaterials[cat].m[m].tier_weight[tier];
    const int material = rng.Pick(mat_w, 5);
    const int color = static_cast<int>(rng.Below(6));
    const int season = rng.Pick(kSeasonWeights[cat], 3);
    const double price = kBasePrice[cat] * kTierPriceFactor[tier] * std::exp(0.35 * rng.Normal());
    const double price2 = std::round(price * 100.0) / 100.0;
    int band = 0;
    while (band < kBands - 1 && price2 >= kBandUpper[band]) ++band;
    const bool organic = std::string_view(kMaterials[cat].m[material].name) == "organic cotton";
    const bool sustainable = organic || rng.Bernoulli(kBrands[brand].sustainable ? 0.85 : 0.05);
    it.category[i] = static_cast<uint8_t>(cat);
    it.style[i] = styles[src];
    it.tier[i] = static_cast<uint8_t>(tier);
    it.brand[i] = static_cast<uint8_t>(brand);
    it.material[i] = static_cast<uint8_t>(material);
    it.color_shade[i] = shades[src];
    it.color[i] = static_cast<uint8_t>(color);
    it.season[i] = static_cast<uint8_t>(season);
    it.price[i] = static_cast<float>(price2);
    it.band[i] = static_cast<uint8_t>(band);
    it.in_stock[i] = rng.Bernoulli(0.9) ? 1 : 0;
    it.sustainable[i] = sustainable ? 1 : 0;
  }

  // Popularity: Zipf over a random rank.
  Rng pop_rng = Rng::ForStage(o.seed, 3);
  std::vector<int32_t> rank(n);
  for (int64_t i = 0; i < n; ++i) rank[i] = static_cast<int32_t>(i);
  for (int64_t i = n - 1; i > 0; --i) std::swap(rank[i], rank[pop_rng.Below(i + 1)]);
  for (int64_t i = 0; i < n; ++i) {
    it.popularity[i] = static_cast<float>(std::pow(rank[i] + 1.0, -o.zipf_exponent));
  }
  return it;
}

int ItemGroup(const Items& it, int64_t i) {
  return GroupOf(it.tier[i], it.category[i], it.style[i], it.band[i]);
}

// Samples items with probability proportional to affinity(cluster, item) x
// popularity in two steps: a group (tier, category, style, band) from the
// cluster's group distribution, then an item within the group by popularity.
// Memory is O(items + clusters x groups).
class ItemSampler {
 public:
  ItemSampler(const Items& it, const std::vector<Cluster>& clusters) {
    group_start_.assign(kGroups + 1, 0);
    for (int64_t i = 0; i < it.n; ++i) ++group_start_[ItemGroup(it, i) + 1];
    for (int g = 0; g < kGroups; ++g) group_start_[g + 1] += group_start_[g];
    order_.resize(it.n);
    std::vector<int64_t> fill(group_start_.begin(), group_start_.end() - 1);
    for (int64_t i = 0; i < it.n; ++i) order_[fill[ItemGroup(it, i)]++] = static_cast<int32_t>(i);
    cum_.resize(it.n);
    double acc = 0;
    for (int64_t k = 0; k < it.n; ++k) cum_[k] = (acc += it.popularity[order_[k]]);
    group_cdf_.resize(clusters.size() * kGroups);
    for (size_t c = 0; c < clusters.size(); ++c) {
      double a = 0;
      for (int g = 0; g < kGroups; ++g) {
        a += clusters[c].Affinity(g) * GroupMass(g);
        group_cdf_[c * kGroups + g] = a;
      }
    }
  }

  int SampleGroup(int cluster, Rng& rng) const {
    const double* cdf = &group_cdf_[static_cast<size_t>(cluster) * kGroups];
    const double u = rng.Uniform() * cdf[kGroups - 1];
    const int g = static_cast<int>(std::upper_bound(cdf, cdf + kGroups, u) - cdf);
    return std::min(g, kGroups - 1);
  }

  // Requires a non-empty group (SampleGroup never returns an empty one).
  int32_t SampleInGroup(int g, Rng& rng) const {
    const int64_t lo = group_start_[g], hi = group_start_[g + 1];
    const double base = lo == 0 ? 0.0 : cum_[lo - 1];
    const double u = base + rng.Uniform() * (cum_[hi - 1] - base);
    int64_t k = std::upper_bound(cum_.begin() + lo, cum_.begin() + hi, u) - cum_.begin();
    return order_[std::min(k, hi - 1)];
  }

 private:
  double GroupMass(int g) const {
    const int64_t lo = group_start_[g], hi = group_start_[g + 1];
    if (hi == lo) return 0.0;
    return cum_[hi - 1] - (lo == 0 ? 0.0 : cum_[lo - 1]);
  }
  std::vector<int64_t> group_start_;  // kGroups + 1
  std::vector<int32_t> order_;        // items sorted by group
  std::vector<double> cum_;           // popularity prefix sums along order_
  std::vector<double> group_cdf_;     // clusters x kGroups
};

// ---------------------------------------------------------------------------
// Writers for each file.

Status WriteItemsCsv(const Items& it, StagedFile& f) {
  std::string& s = f.buf();
  s += "item_id,title,brand,tier,category,color,material,season,price,in_stock,sustainable\n";
  char price[32];
  for (int64_t i = 0; i < it.n; ++i) {
    const Brand& brand = kBrands[it.brand[i]];
    const int cat = it.category[i];
    const char* color = kPalettes[it.color_shade[i]][it.color[i]];
    const char* material = kMaterials[cat].m[it.material[i]].name;
    AppendId(s, 'I', i, 6);
    s += ',';
    s += brand.name;
    s += ' ';
    s += color;
    s += ' ';
    s += material;
    s += ' ';
    s += kCategoryNoun[cat];
    s += ',';
    s += brand.name;
    s += ',';
    s += kTierNames[it.tier[i]];
    s += ',';
    s += kFashionCategories[cat];
    s += ',';
    s += color;
    s += ',';
    s += material;
    s += ',';
    s += kSeasons[it.season[i]];
    s += ',';
    std::snprintf(price, sizeof(price), "%.2f", static_cast<double>(it.price[i]));
    s += price;
    s += it.in_stock[i] ? ",true" : ",false";
    s += it.sustainable[i] ? ",true\n" : ",false\n";
    VITRINE_RETURN_IF_ERROR(f.MaybeFlush());
  }
  return Status::OK();
}

Status WriteImages(const Items& it, const FashionMnist& ds, StagedGzip& gz, StageTimer& timer) {
  uint8_t header[16] = {0, 0, 0x08, 3};
  const uint32_t dims[3] = {static_cast<uint32_t>(it.n), 28, 28};
  for (int d = 0; d < 3; ++d) {
    for (int b = 0; b < 4; ++b)
      header[4 + 4 * d + b] = static_cast<uint8_t>(dims[d] >> (24 - 8 * b));
  }
  VITRINE_RETURN_IF_ERROR(gz.Write(header, sizeof(header)));
  constexpr int64_t kBlock = 4096;
  std::vector<uint8_t> block(kBlock * kImagePixels);
  for (int64_t start = 0; start < it.n; start += kBlock) {
    const int64_t end = std::min(it.n, start + kBlock);
    for (int64_t i = start; i < end; ++i) {
      uint8_t* dst = &block[(i - start) * kImagePixels];
      const uint8_t* src = ds.images.row(it.source[i]);
      if (!it.flip[i] && it.dx[i] == 0 && it.dy[i] == 0) {
        std::memcpy(dst, src, kImagePixels);
      } else {
        TransformImage(src, it.flip[i], it.dx[i], it.dy[i], dst);
      }
    }
    VITRINE_RETURN_IF_ERROR(gz.Write(block.data(), (end - start) * kImagePixels));
    timer.Update(end);
  }
  return Status::OK();
}

struct Event {
  int64_t time;  // seconds after the session start, then absolute
  int32_t item;
  int32_t session;
  int32_t seq;  // generation order, breaks timestamp ties
  uint8_t type;
};

// Generates every user's events and streams them to `f`. Fills user arrays.
Status WriteInteractions(const GeneratorOptions& o, const Items& it,
                         const std::vector<Cluster>& clusters, const ItemSampler& sampler,
                         StagedFile& f, std::vector<int8_t>& user_cluster,
                         std::vector<int8_t>& user_secondary, std::vector<int32_t>& user_events,
                         int64_t& total_events) {
  Rng rng = Rng::ForStage(o.seed, 5);
  const int k = static_cast<int>(clusters.size());
  std::vector<double> share(k);
  for (int c = 0; c < k; ++c) share[c] = clusters[c].user_share;
  const int64_t window = o.days * 86400;
  const int64_t end_time = o.start_timestamp + window;
  user_cluster.resize(o.num_users);
  user_secondary.resize(o.num_users);
  user_events.resize(o.num_users);
  total_events = 0;

  std::string& s = f.buf();
  s += "user_id,item_id,event,timestamp\n";
  std::vector<Event> ev;
  std::vector<int64_t> session_start;
  StageTimer timer("interactions", o.num_users);
  for (int64_t u = 0; u < o.num_users; ++u) {
    const int primary = rng.Pick(share.data(), k);
    int secondary = -1;
    if (k > 1 && rng.Bernoulli(kSecondaryClusterUsers)) {
      secondary = static_cast<int>(rng.Below(k - 1));
      if (secondary >= primary) ++secondary;
    }
    const double draw = o.events_per_user_median * std::exp(o.events_per_user_sigma * rng.Normal());
    // Clamp as a double first: llround of a huge draw would overflow.
    const double capped = std::min(draw, static_cast<double>(o.max_events_per_user));
    const int64_t target = std::max<int64_t>(1, std::llround(capped));

    // Item interactions in sessions, with times relative to the session.
    ev.clear();
    int32_t sessions = 0, seq = 0;
    while (static_cast<int64_t>(ev.size()) < target) {
      const int32_t session = sessions++;
      const int length = 1 + static_cast<int>(rng.Below(5));
      int64_t t = 0;
      int group = -1;
      for (int step = 0; step < length && static_cast<int64_t>(ev.size()) < target; ++step) {
        if (group < 0 || !rng.Bernoulli(kStayInGroup)) {
          const int c =
              secondary >= 0 && rng.Bernoulli(kSecondaryClusterEvents) ? secondary : primary;
          group = sampler.SampleGroup(c, rng);
        }
        const int32_t item = sampler.SampleInGroup(group, rng);
        t += 20 + static_cast<int64_t>(rng.Below(280));
        ev.push_back({t, item, session, seq++, 0});
        if (!it.in_stock[item] || !rng.Bernoulli(kCartGivenView)) continue;
        t += 10 + static_cast<int64_t>(rng.Below(110));
        ev.push_back({t, item, session, seq++, 1});
        if (!rng.Bernoulli(kPurchaseGivenCart)) continue;
        t += 60 + static_cast<int64_t>(rng.Below(840));
        ev.push_back({t, item, session, seq++, 2});
        if (!rng.Bernoulli(kReturnGivenPurchase)) continue;
        // Returns arrive 2-20 days later; relative to the session like the rest.
        ev.push_back({t + 86400 * (2 + static_cast<int64_t>(rng.Below(19))) +
                          static_cast<int64_t>(rng.Below(86400)),
                      item, session, seq++, 3});
      }
    }
    // Session starts: sorted uniform times in the window (leaving an hour
    // for the session itself).
    session_start.resize(sessions);
    for (auto& st : session_start) {
      st = o.start_timestamp + static_cast<int64_t>(rng.Below(window - 3600));
    }
    std::sort(session_start.begin(), session_start.end());
    size_t kept = 0;
    for (const Event& e : ev) {
      Event a = e;
      a.time += session_start[e.session];
      if (a.time >= end_time) continue;  // a return after the window closed
      ev[kept++] = a;
    }
    ev.resize(kept);
    std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) {
      return a.time != b.time ? a.time < b.time : a.seq < b.seq;
    });
    if (static_cast<int64_t>(ev.size()) > target) ev.resize(target);

    for (const Event& e : ev) {
      AppendId(s, 'U', u, 7);
      s += ',';
      AppendId(s, 'I', e.item, 6);
      s += ',';
      s += kEventNames[e.type];
      s += ',';
      AppendInt(s, e.time);
      s += '\n';
    }
    VITRINE_RETURN_IF_ERROR(f.MaybeFlush());
    user_cluster[u] = static_cast<int8_t>(primary);
    user_secondary[u] = static_cast<int8_t>(secondary);
    user_events[u] = static_cast<int32_t>(ev.size());
    total_events += static_cast<int64_t>(ev.size());
    if ((u & 1023) == 0) timer.Update(u);
  }
  timer.Done(std::to_string(total_events) + " events");
  return Status::OK();
}

template <typename T>
void AppendIntArray(std::string& s, const std::vector<T>& v) {
  s += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    AppendInt(s, static_cast<int64_t>(v[i]));
  }
  s += ']';
}

Status WriteTruth(const GeneratorOptions& o, const Items& it, const std::vector<Cluster>& clusters,
                  const std::vector<int8_t>& user_cluster,
                  const std::vector<int8_t>& user_secondary,
                  const std::vector<int32_t>& user_events, StagedFile& f) {
  using json = nlohmann::ordered_json;
  json j;
  j["format"] = "vitrine-generator-truth";
  j["version"] = 1;
  j["seed"] = o.seed;
  j["params"] = {{"items", o.num_items},
                 {"users", o.num_users},
                 {"events_per_user_median", o.events_per_user_median},
                 {"events_per_user_sigma", o.events_per_user_sigma},
                 {"max_events_per_user", o.max_events_per_user},
                 {"clusters", o.num_clusters},
                 {"zipf_exponent", o.zipf_exponent},
                 {"days", o.days},
                 {"start_timestamp", o.start_timestamp},
                 {"unique_images", o.unique_images},
                 {"cart_given_view", kCartGivenView},
                 {"purchase_given_cart", kPurchaseGivenCart},
                 {"return_given_purchase", kReturnGivenPurchase},
                 {"secondary_cluster_users", kSecondaryClusterUsers},
                 {"secondary_cluster_events", kSecondaryClusterEvents}};
  j["categories"] = kFashionCategories;
  j["tiers"] = kTierNames;
  j["price_band_upper_bounds"] = kBandUpper;
  j["styles_per_category"] = kStyles;
  json cl = json::array();
  for (size_t c = 0; c < clusters.size(); ++c) {
    const Cluster& x = clusters[c];
    json styles = json::array();
    for (int k = 0; k < kCategories; ++k) styles.push_back(x.style_w[k]);
    cl.push_back({{"id", c},
                  {"name", x.name},
                  {"user_share", x.user_share},
                  {"tier_weights", x.tier_w},
                  {"category_weights", x.category_w},
                  {"style_weights", styles},
                  {"price_band_weights", x.band_w}});
  }
  j["clusters"] = cl;
  // The per-item and per-user arrays can hold millions of entries: append
  // them as text instead of building json values.
  std::string& s = f.buf();
  s = j.dump();
  s.pop_back();  // the closing brace
  std::vector<int32_t> visual(it.n);
  for (int64_t i = 0; i < it.n; ++i) visual[i] = it.category[i] * kStyles + it.style[i];
  s += ",\"items\":{\"taste_cluster\":";
  AppendIntArray(s, it.taste);
  s += ",\"visual_style\":";
  AppendIntArray(s, visual);
  s += ",\"price_band\":";
  AppendIntArray(s, it.band);
  s += ",\"source_image\":";
  AppendIntArray(s, it.source);
  s += ",\"flip\":";
  AppendIntArray(s, it.flip);
  s += ",\"shift_x\":";
  AppendIntArray(s, it.dx);
  s += ",\"shift_y\":";
  AppendIntArray(s, it.dy);
  VITRINE_RETURN_IF_ERROR(f.MaybeFlush());
  s += ",\"popularity\":[";
  char num[32];
  for (int64_t i = 0; i < it.n; ++i) {
    if (i) s += ',';
    std::snprintf(num, sizeof(num), "%.6g", static_cast<double>(it.popularity[i]));
    s += num;
    VITRINE_RETURN_IF_ERROR(f.MaybeFlush());
  }
  s += "]},\"users\":{\"cluster\":";
  AppendIntArray(s, user_cluster);
  s += ",\"secondary_cluster\":";
  AppendIntArray(s, user_secondary);
  s += ",\"events\":";
  AppendIntArray(s, user_events);
  s += "}}\n";
  return Status::OK();
}

Status ValidateOptions(const GeneratorOptions& o) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (o.num_items < 1 || o.num_items > std::numeric_limits<int32_t>::max()) {
    return bad("items must be in 1..2147483647, got " + std::to_string(o.num_items));
  }
  if (o.num_users < 1 || o.num_users > std::numeric_limits<int32_t>::max()) {
    return bad("users must be in 1..2147483647, got " + std::to_string(o.num_users));
  }
  if (!(o.events_per_user_median > 0) || !std::isfinite(o.events_per_user_median)) {
    return bad("events-per-user median must be a positive number");
  }
  if (!(o.events_per_user_sigma >= 0) || o.events_per_user_sigma > 5) {
    return bad("events-per-user sigma must be in [0, 5]");
  }
  if (o.max_events_per_user < 1) return bad("max events per user must be >= 1");
  if (o.num_clusters < 1 || o.num_clusters > 64) {
    return bad("clusters must be in 1..64, got " + std::to_string(o.num_clusters));
  }
  if (!(o.zipf_exponent >= 0) || o.zipf_exponent > 5) return bad("zipf exponent must be in [0, 5]");
  if (o.days < 1) return bad("days must be >= 1");
  if (o.unique_images < 1) return bad("unique images must be >= 1");
  return Status::OK();
}

}  // namespace

fs::path DefaultFashionMnistDir() {
  const char* env = std::getenv("VITRINE_FASHION_MNIST");
  if (env != nullptr && *env != '\0') return env;
  return "/usr/share/datasets/fashion-mnist";
}

Result<GeneratorReport> GenerateSampleData(const GeneratorOptions& o, const fs::path& out_dir) {
  VITRINE_RETURN_IF_ERROR(ValidateOptions(o));
  const fs::path dataset_dir =
      o.fashion_mnist_dir.empty() ? DefaultFashionMnistDir() : o.fashion_mnist_dir;
  // Fail fast (before any progress output) when the dataset is missing.
  for (const char* base : kDatasetFiles) {
    VITRINE_RETURN_IF_ERROR(FindDatasetFile(dataset_dir, base).status());
  }
  StageTimer load_timer("load fashion-mnist");
  VITRINE_ASSIGN_OR_RETURN(FashionMnist ds, LoadFashionMnist(dataset_dir));
  load_timer.Done(std::to_string(ds.images.rows) + " images from " + dataset_dir.string());

  StageTimer style_timer("visual styles");
  const std::vector<uint8_t> styles = ComputeVisualStyles(ds);
  const std::vector<uint8_t> shades = ComputeShadeTerciles(ds);
  style_timer.Done();

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Status::IOError(out_dir.string() + ": cannot create directory: " + ec.message());
  GeneratorReport report;
  report.items_csv = out_dir / "items.csv";
  report.interactions_csv = out_dir / "interactions.csv";
  report.images = out_dir / "images.idx.gz";
  report.truth = out_dir / "truth.json";

  StageTimer items_timer("items");
  Items it = MakeItems(o, ds, styles, shades);
  Rng cluster_rng = Rng::ForStage(o.seed, 4);
  const std::vector<Cluster> clusters = MakeClusters(o.num_clusters, cluster_rng);
  for (int64_t i = 0; i < it.n; ++i) {
    const int g = ItemGroup(it, i);
    int best = 0;
    for (int c = 1; c < o.num_clusters; ++c) {
      if (clusters[c].Affinity(g) > clusters[best].Affinity(g)) best = c;
    }
    it.taste[i] = static_cast<uint8_t>(best);
  }
  StagedFile items_file;
  VITRINE_RETURN_IF_ERROR(items_file.Open(report.items_csv));
  VITRINE_RETURN_IF_ERROR(WriteItemsCsv(it, items_file));
  VITRINE_RETURN_IF_ERROR(items_file.Close());
  items_timer.Done(std::to_string(it.n) + " items");

  {
    StageTimer timer("images", it.n);
    StagedGzip gz;
    VITRINE_RETURN_IF_ERROR(gz.Open(report.images));
    VITRINE_RETURN_IF_ERROR(WriteImages(it, ds, gz, timer));
    VITRINE_RETURN_IF_ERROR(gz.Close());
    // Images are the slowest file: commit it here, the rest follow below.
    VITRINE_RETURN_IF_ERROR(gz.Commit());
  }
  ds = FashionMnist();  // 55 MB no longer needed

  const ItemSampler sampler(it, clusters);
  std::vector<int8_t> user_cluster, user_secondary;
  std::vector<int32_t> user_events;
  StagedFile inter_file;
  VITRINE_RETURN_IF_ERROR(inter_file.Open(report.interactions_csv));
  VITRINE_RETURN_IF_ERROR(WriteInteractions(o, it, clusters, sampler, inter_file, user_cluster,
                                            user_secondary, user_events, report.events));
  VITRINE_RETURN_IF_ERROR(inter_file.Close());

  StagedFile truth_file;
  VITRINE_RETURN_IF_ERROR(truth_file.Open(report.truth));
  VITRINE_RETURN_IF_ERROR(
      WriteTruth(o, it, clusters, user_cluster, user_secondary, user_events, truth_file));
  VITRINE_RETURN_IF_ERROR(truth_file.Close());

  VITRINE_RETURN_IF_ERROR(items_file.Commit());
  VITRINE_RETURN_IF_ERROR(inter_file.Commit());
  VITRINE_RETURN_IF_ERROR(truth_file.Commit());

  report.items = it.n;
  report.users = o.num_users;
  std::vector<int32_t> counts = user_events;
  const size_t mid = counts.size() / 2;
  std::nth_element(counts.begin(), counts.begin() + mid, counts.end());
  double median = counts[mid];
  if (counts.size() % 2 == 0) {
    const int32_t lower = *std::max_element(counts.begin(), counts.begin() + mid);
    median = 0.5 * (median + lower);
  }
  report.median_events_per_user = median;
  return report;
}

}  // namespace vitrine
