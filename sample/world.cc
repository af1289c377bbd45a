// The invented fashion world: taste clusters, the catalog drawn from the
// Fashion-MNIST images, and the cluster-conditional item sampler.
#include "sample/world.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <string_view>

namespace vitrine::sample {

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

void AssignTasteClusters(const std::vector<Cluster>& clusters, Items* items) {
  Items& it = *items;
  for (int64_t i = 0; i < it.n; ++i) {
    const int g = ItemGroup(it, i);
    int best = 0;
    for (size_t c = 1; c < clusters.size(); ++c) {
      if (clusters[c].Affinity(g) > clusters[best].Affinity(g)) best = static_cast<int>(c);
    }
    it.taste[i] = static_cast<uint8_t>(best);
  }
}

ItemSampler::ItemSampler(const Items& it, const std::vector<Cluster>& clusters) {
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

}  // namespace vitrine::sample
