// The generator's output files: items.csv, images.idx.gz and truth.json.
#include "sample/writers.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>

namespace vitrine::sample {
namespace {

std::string_view Bytes(const void* data, size_t n) { return {static_cast<const char*>(data), n}; }

template <typename T>
void AppendIntArray(std::string& s, const std::vector<T>& v) {
  s += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    AppendInt(s, static_cast<int64_t>(v[i]));
  }
  s += ']';
}

}  // namespace

Status WriteItemsCsv(const Items& it, AtomicFile& f) {
  std::string s;
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
    VITRINE_RETURN_IF_ERROR(FlushIfLarge(s, f));
  }
  return f.Append(s);
}

Status WriteImages(const Items& it, const FashionMnist& ds, AtomicFile& f, StageTimer& timer) {
  uint8_t header[16] = {0, 0, 0x08, 3};
  const uint32_t dims[3] = {static_cast<uint32_t>(it.n), 28, 28};
  for (int d = 0; d < 3; ++d) {
    for (int b = 0; b < 4; ++b)
      header[4 + 4 * d + b] = static_cast<uint8_t>(dims[d] >> (24 - 8 * b));
  }
  VITRINE_RETURN_IF_ERROR(f.Append(Bytes(header, sizeof(header))));
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
    VITRINE_RETURN_IF_ERROR(f.Append(Bytes(block.data(), (end - start) * kImagePixels)));
    timer.Update(end);
  }
  return Status::OK();
}

Status WriteTruth(const GeneratorOptions& o, const Items& it, const std::vector<Cluster>& clusters,
                  const Users& users, AtomicFile& f) {
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
                 {"secondary_cluster_events", kSecondaryClusterEvents},
                 {"stay_in_group", kStayInGroup},
                 {"trend_items", o.trend_items},
                 {"gift_share", o.gift_share},
                 {"next_step_share", o.next_step_share},
                 {"omnichannel", o.omnichannel}};
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
  std::string s = j.dump();
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
  VITRINE_RETURN_IF_ERROR(FlushIfLarge(s, f));
  s += ",\"popularity\":[";
  char num[32];
  for (int64_t i = 0; i < it.n; ++i) {
    if (i) s += ',';
    std::snprintf(num, sizeof(num), "%.6g", static_cast<double>(it.popularity[i]));
    s += num;
    VITRINE_RETURN_IF_ERROR(FlushIfLarge(s, f));
  }
  s += "]},\"users\":{\"cluster\":";
  AppendIntArray(s, users.cluster);
  s += ",\"secondary_cluster\":";
  AppendIntArray(s, users.secondary);
  s += ",\"events\":";
  AppendIntArray(s, users.events);
  s += "}";
  if (!users.trend_items.empty()) {
    s += ",\"trend_items\":";
    AppendIntArray(s, users.trend_items);
  }
  if (!users.gift_items.empty()) {
    s += ",\"gift_items\":";
    AppendIntArray(s, users.gift_items);
  }
  if (!users.next_category.empty()) {
    s += ",\"next_category\":";
    AppendIntArray(s, users.next_category);
  }
  s += "}\n";
  return f.Append(s);
}

}  // namespace vitrine::sample
