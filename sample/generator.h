// Synthetic luxury-fashion sample data: a catalog whose every item carries a
// real Fashion-MNIST product image, and an interaction log drawn from a hidden
// model of user tastes, so that every vitrine stage (cf, content, visual,
// rules, evaluation) has something real to find. Library vitrine_sample
// (sample/), linked only by the CLI (`vitrine generate`), tests and benches.
//
// Output directory (every file written to a temporary sibling and renamed
// into place, so a failed run never leaves a half-written file):
//
//   items.csv         item_id,title,brand,tier,category,color,material,season,
//                     price,in_stock,sustainable
//                     ids "I000123" (index in catalog order), price with two
//                     decimals, bools true/false. No field contains a comma.
//   interactions.csv  user_id,item_id,event,timestamp[,channel]
//                     ids "U0000123"; event in view|cart|purchase|return
//                     (and gift_purchase with GeneratorOptions::gift_share);
//                     channel online|store|wishlist only with
//                     GeneratorOptions::omnichannel;
//                     unix seconds; rows grouped by user, time-ordered within
//                     a user.
//   images.idx.gz     IDX ubyte n_items x 28 x 28, gzip, catalog order.
//   truth.json        the hidden model (see below), for tests and evaluation.
//
// The hidden model. K taste clusters each weight item tier, category, visual
// style and price band; an item's affinity to cluster c is the product of
// c's weights for the item's four attributes, and its "taste cluster" is the
// argmax. Each user has a primary cluster (and sometimes a secondary one);
// each event picks a cluster, then an item with probability proportional to
// affinity x popularity, where popularity is Zipf-like over a random item
// rank. Per-user event counts are log-normal (median `events_per_user_median`)
// and each item interaction runs a funnel view -> cart -> purchase -> return.
//
// Images: item i < min(n, 70000) takes a distinct Fashion-MNIST image (a
// seed-dependent permutation of train then t10k, source index >= 60000 is
// t10k); later items reuse a random image shifted by 1-2 px or mirrored. The
// image's class is the item's category; its visual style is a k-means cluster
// (4 per category, fixed seed, over 7x7 block means of all 70k images), so it
// depends only on the image, never on the generator seed.
//
// truth.json: {"format":"vitrine-generator-truth","version":1,"seed",
//   "params":{...}, "categories":[...], "tiers":[...],
//   "price_band_upper_bounds":[...], "styles_per_category":4,
//   "clusters":[{"id","name","user_share","tier_weights","category_weights",
//                "style_weights"(10 x 4),"price_band_weights"}],
//   "items":{"taste_cluster","visual_style"(category*4+s),"popularity",
//            "source_image","flip","shift_x","shift_y","price_band"},
//   "users":{"cluster","secondary_cluster"(-1 = none),"events"},
//   "trend_items":[...] (only with GeneratorOptions::trend_items > 0),
//   "gift_items":[...] (only with GeneratorOptions::gift_share > 0),
//   "next_category":[10 category indices] (only with next_step_share > 0)}
// Arrays under "items"/"users" are in catalog / user-index order.
//
// Determinism: the same options produce byte-identical files on the same
// standard library (all sampling goes through our own functions of
// std::mt19937_64 output, never std:: distributions).
//
// Memory is O(items + users): interactions are streamed to disk user by
// user and images are gzip-streamed, so 1M items / 1M users / 20M events
// fit in a few hundred MB.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/status.h"

namespace vitrine {

// Retail category names, indexed by Fashion-MNIST class label 0..9.
inline constexpr std::array<const char*, 10> kFashionCategories = {
    "tshirt",  "trousers", "pullover", "dress", "coat",
    "sandals", "shirt",    "sneakers", "bag",   "ankle_boots"};

struct GeneratorOptions {
  int64_t num_items = 2000;  // >= 1
  int64_t num_users = 1000;  // >= 1
  uint64_t seed = 42;
  // Directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
  // Empty: $VITRINE_FASHION_MNIST, else /usr/share/datasets/fashion-mnist.
  std::filesystem::path fashion_mnist_dir;
  double events_per_user_median = 6.0;   // > 0; log-normal median
  double events_per_user_sigma = 1.2;    // >= 0; log-normal shape (tail weight)
  int64_t max_events_per_user = 5000;    // cap on the heavy tail
  int num_clusters = 14;                 // hidden taste clusters, 1..64
  double zipf_exponent = 1.0;            // item popularity ~ 1 / rank^exponent
  int64_t days = 180;                    // length of the interaction window
  int64_t start_timestamp = 1751328000;  // 2025-07-01T00:00:00Z
  // Items past this index reuse (shift/flip) an image. Fashion-MNIST has
  // 70000; lower values exist so tests can exercise reuse on small catalogs.
  int64_t unique_images = 70000;
  // A planted trend (engine/trend.h): this many random items get a burst of
  // views (and some carts) in the last day of the window, max(20, users /
  // 25) views each in expectation, far above any item's daily rate. The
  // other events are unchanged (the burst draws from its own stream).
  // truth.json lists them as "trend_items". 0 = no burst.
  int64_t trend_items = 0;
  // Planted gifts (docs/retail.md, Gifts): each purchase is, with this
  // probability, a "gift_purchase" of one of a few gift items (max(5, items
  // / 100), drawn at random; truth.json "gift_items") instead, never
  // returned. Its own random stream, like the trend burst. 0 = no gifts.
  double gift_share = 0;
  // Planted style progression (docs/retail.md, Next step): the categories
  // form a random cycle (truth.json "next_category": the category index that
  // follows each one). Whenever a user's next item comes from a fresh pick
  // of group (not staying in the session's group), with this probability it
  // comes from the category following the user's previous item's, still by
  // the user's taste. Its own random stream; the other draws are unchanged,
  // though the items they land on differ. 0 = none.
  double next_step_share = 0;
  // Omnichannel input (docs/retail.md): interactions.csv gains a `channel`
  // column (online, store, wishlist); each purchase (and its return) is in
  // store, and each cart a wishlist add, with this probability. Its own
  // random stream: the events are the same with or without it. 0 = no
  // channel column.
  double omnichannel = 0;
};

struct GeneratorReport {
  int64_t items = 0;
  int64_t users = 0;
  int64_t events = 0;
  double median_events_per_user = 0;
  std::filesystem::path items_csv, interactions_csv, images, truth;
};

// $VITRINE_FASHION_MNIST if set and non-empty, else the Debian package path.
std::filesystem::path DefaultFashionMnistDir();

// Writes the four files into `out_dir` (created if missing; other files in it
// are left alone). Errors: InvalidArgument for bad options, NotFound naming
// the dataset path (and how to get it) when Fashion-MNIST is missing,
// IOError/Corruption for unreadable input or unwritable output. Progress goes
// to stderr via core/progress.h. Not thread-safe with respect to `out_dir`.
Result<GeneratorReport> GenerateSampleData(const GeneratorOptions& options,
                                           const std::filesystem::path& out_dir);

}  // namespace vitrine
