// The invented luxury-fashion world of the sample generator (internal to
// sample/): tiers, brands, palettes, materials, seasons and prices; the
// generated catalog (Items); the hidden taste clusters; and the sampler that
// draws items for a cluster. See sample/generator.h for the model.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "sample/fashion_mnist.h"
#include "sample/generator.h"
#include "sample/random.h"

namespace vitrine::sample {

constexpr int kTiers = 3;
constexpr int kBands = 4;  // price bands
constexpr int kGroups = kTiers * kCategories * kStyles * kBands;

inline constexpr const char* kTierNames[kTiers] = {"luxury", "premium", "high_street"};
inline constexpr double kTierItemShare[kTiers] = {0.2, 0.35, 0.45};
inline constexpr double kTierPriceFactor[kTiers] = {14.0, 3.2, 1.0};
inline constexpr double kBandUpper[kBands - 1] = {100, 300, 1000};  // last band open-ended
inline constexpr const char* kCategoryNoun[kCategories] = {
    "t-shirt", "trousers", "pullover", "dress", "coat",
    "sandals", "shirt",    "sneakers", "bag",   "ankle boots"};
// High-street base price per category (EUR); tiers multiply it.
inline constexpr double kBasePrice[kCategories] = {35, 70, 75, 95, 180, 60, 60, 90, 120, 130};

struct Brand {
  const char* name;
  int tier;
  bool sustainable;
};
inline constexpr Brand kBrands[] = {
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
inline constexpr const char* kPalettes[3][6] = {
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
inline constexpr CategoryMaterials kMaterials[kCategories] = {
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

inline constexpr const char* kSeasons[3] = {"SS26", "AW26", "core"};
// Season weights: warm-weather, cold-weather and year-round categories.
inline constexpr double kSeasonWeights[kCategories][3] = {
    {0.55, 0.15, 0.30}, {0.30, 0.30, 0.40}, {0.10, 0.60, 0.30}, {0.55, 0.15, 0.30},
    {0.10, 0.60, 0.30}, {0.55, 0.15, 0.30}, {0.55, 0.15, 0.30}, {0.30, 0.30, 0.40},
    {0.30, 0.30, 0.40}, {0.10, 0.60, 0.30}};

// Event funnel (per item interaction).
inline constexpr double kCartGivenView = 0.2;
inline constexpr double kPurchaseGivenCart = 0.45;
inline constexpr double kReturnGivenPurchase = 0.2;
inline constexpr double kStayInGroup = 0.4;  // next view in a session: same group
inline constexpr double kSecondaryClusterUsers = 0.3;
inline constexpr double kSecondaryClusterEvents = 0.3;
inline constexpr const char* kEventNames[5] = {"view", "cart", "purchase", "return",
                                               "gift_purchase"};

inline int GroupOf(int tier, int category, int style, int band) {
  return ((tier * kCategories + category) * kStyles + style) * kBands + band;
}

// The generated catalog, one entry per item in catalog order (struct of
// arrays: 1M items stay a few tens of MB).
struct Items {
  int64_t n = 0;
  std::vector<int32_t> source;  // Fashion-MNIST image index
  std::vector<uint8_t> flip;
  std::vector<int8_t> dx, dy;
  std::vector<uint8_t> category, style, tier, band, brand, color_shade, color, material, season;
  std::vector<uint8_t> in_stock, sustainable, taste;
  std::vector<float> price, popularity;
};

// A hidden taste cluster: weights over tier, category, visual style (per
// category) and price band; an item's affinity is their product.
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

// k clusters with random favourite tier, three categories, a style per
// category and a price band following the tier; user shares sum to 1.
std::vector<Cluster> MakeClusters(int k, Rng& rng);

// The catalog: images (a seed-dependent permutation of the dataset, reused
// with flips and shifts once it runs out), attributes and a Zipf popularity.
// `styles` and `shades` are per dataset image. taste is left 0 for
// AssignTasteClusters.
Items MakeItems(const GeneratorOptions& o, const FashionMnist& ds,
                const std::vector<uint8_t>& styles, const std::vector<uint8_t>& shades);

// Sets every item's taste cluster: the cluster of highest affinity.
void AssignTasteClusters(const std::vector<Cluster>& clusters, Items* items);

inline int ItemGroup(const Items& it, int64_t i) {
  return GroupOf(it.tier[i], it.category[i], it.style[i], it.band[i]);
}

// Samples items with probability proportional to affinity(cluster, item) x
// popularity in two steps: a group (tier, category, style, band) from the
// cluster's group distribution, then an item within the group by popularity.
// Memory is O(items + clusters x groups).
class ItemSampler {
 public:
  ItemSampler(const Items& it, const std::vector<Cluster>& clusters);

  int SampleGroup(int cluster, Rng& rng) const {
    const double* cdf = &group_cdf_[static_cast<size_t>(cluster) * kGroups];
    const double u = rng.Uniform() * cdf[kGroups - 1];
    const int g = static_cast<int>(std::upper_bound(cdf, cdf + kGroups, u) - cdf);
    return std::min(g, kGroups - 1);
  }

  // SampleGroup restricted to the groups of one category; -1 when the
  // cluster's mass there is 0 (no item of the category).
  int SampleGroupInCategory(int cluster, int category, Rng& rng) const {
    const double* cdf = &group_cdf_[static_cast<size_t>(cluster) * kGroups];
    double mass[kTiers * kStyles * kBands];
    double total = 0;
    int n = 0;
    for (int t = 0; t < kTiers; ++t) {
      for (int s = 0; s < kStyles; ++s) {
        for (int b = 0; b < kBands; ++b, ++n) {
          const int g = GroupOf(t, category, s, b);
          total += mass[n] = cdf[g] - (g == 0 ? 0.0 : cdf[g - 1]);
        }
      }
    }
    if (!(total > 0)) return -1;
    double u = rng.Uniform() * total;
    int last_nonempty = -1;  // where rounding past the end lands
    n = 0;
    for (int t = 0; t < kTiers; ++t) {
      for (int s = 0; s < kStyles; ++s) {
        for (int b = 0; b < kBands; ++b, ++n) {
          if (!(mass[n] > 0)) continue;
          last_nonempty = GroupOf(t, category, s, b);
          if (u < mass[n]) return last_nonempty;
          u -= mass[n];
        }
      }
    }
    return last_nonempty;
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

}  // namespace vitrine::sample
