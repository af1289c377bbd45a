// The schema of a build bundle: the one place that names its files and reads
// and writes the manifest sections the engine relies on
// (docs/bundle-format.md has the format, with every key).
//
// core/bundle.h owns the container: the manifest's format, version and file
// list with sizes and checksums. This file owns what a vitrine build puts in
// it. Every reader of a built bundle (Engine::Open, the live catalog updates,
// `vitrine inspect`) goes through BundleManifest::Read, which
//   1. reads each section into a typed struct, refusing a missing key, a
//      wrong type or an out-of-range number with Corruption naming the key
//      ("B/manifest.json: blocks[2].dim: expected an integer in [1, 65536],
//      got 1000000000"), and
//   2. cross-checks the numbers against the arrays they describe (block dims
//      against the width of vectors.npy, counts against row counts), so that
//      a manifest edited by hand, the one file no checksum covers, cannot make
//      a reader index past an array.
// Writers fill a BundleManifest and call Write; they never index the JSON.
//
// Thread safety: plain values; BundleManifest::Read only reads files.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/bundle.h"
#include "core/status.h"
#include "embed/fusion.h"

namespace vitrine {

// Every file a build bundle can hold, relative to the bundle directory.
namespace bundle_file {
inline constexpr char kVectors[] = "vectors.npy";        // fused item vectors, items x dim
inline constexpr char kItemIds[] = "item_ids.txt";       // one item id per line, row order
inline constexpr char kItems[] = "items.csv";            // the typed catalog
inline constexpr char kIndex[] = "index.faiss";          // the ANN index over vectors.npy
inline constexpr char kPopularity[] = "popularity.npy";  // interactions per item, items x 1
inline constexpr char kCold[] = "cold.npy";              // 1 = cold-start item, items x 1 int64
inline constexpr char kTombstones[] = "deleted.npy";     // removed item rows, sorted int64
inline constexpr char kUserIds[] = "user_ids.txt";       // one user id per line (cf bundles)
// Users never listed in an audience (build --opt-out), one id per line.
inline constexpr char kOptOut[] = "opt_out.txt";
// Summed weight of the gift rows of each item (items x 1 float); optional.
inline constexpr char kGifts[] = "gifts.npy";
// Timed events of the last two weeks by item and hour (engine/trend.h):
// rows x 2 int64 (item row, unix hour) and rows x 2 float (weight, events).
inline constexpr char kTrendBuckets[] = "trend/buckets.npy";
inline constexpr char kTrendSums[] = "trend/sums.npy";
inline constexpr char kItemFactors[] = "cf/item_factors.npy";
inline constexpr char kUserFactors[] = "cf/user_factors.npy";
inline constexpr char kHistoryIndptr[] = "history/indptr.npy";    // users + 1, int64
inline constexpr char kHistoryIndices[] = "history/indices.npy";  // item rows, int64
inline constexpr char kHistoryWeights[] = "history/weights.npy";  // aggregated event weights
// Latest event time (unix seconds, 0 = unknown) per history entry; optional
// (bundles before it answer recently-viewed by weight).
inline constexpr char kHistoryTimestamps[] = "history/timestamps.npy";
inline constexpr char kContentProjection[] = "content/projection.npy";
inline constexpr char kVisualMean[] = "visual/mean.npy";
inline constexpr char kVisualComponents[] = "visual/components.npy";
inline constexpr char kVisualEigenvalues[] = "visual/eigenvalues.npy";
inline constexpr char kColdStartWeights[] = "cold_start/weights.npy";
// The decoded item images, catalog row by row: IDX ubyte n x h x w (x c);
// optional (bundles without images, or from before thumbnails). Served as
// GET /items/{id}/image (serve/thumbnail.h).
inline constexpr char kThumbnails[] = "thumbnails.idx";
inline constexpr char kItemNeighbors[] = "item_neighbors.bin";  // embed/item_neighbors.h
inline constexpr char kRanker[] = "ranker.bin";                 // rank/learned_ranker.h
// embed/taste_mixture.h: theta items x tastes, prior tastes x 1.
inline constexpr char kTasteTheta[] = "taste_mixture/theta.npy";
inline constexpr char kTastePrior[] = "taste_mixture/prior.npy";
}  // namespace bundle_file

// Block names a bundle may hold, in the order a build lays them out.
inline constexpr const char* kBlockNames[] = {"cf", "content", "visual", "pop", "new", "trend"};
// One-dimensional prior blocks: the item holds the prior, a query holds 1.
bool IsPriorBlock(std::string_view name);

// Limits a manifest must respect (documented in docs/bundle-format.md).
inline constexpr int64_t kMaxBlockDim = 65536;
inline constexpr double kMaxBlockWeight = 1000.0;

struct CatalogSection {
  std::string id_column = "item_id";
  std::string schema;  // "col:type,..." as Schema::Parse reads it
};

struct IndexSection {
  std::string spec;  // FAISS-style spec the index was built with
  std::string metric = "inner_product";
  int ef_construction = 0;
  uint64_t seed = 0;
  // The operating point every query uses unless the request overrides it.
  int ef_search = 128;
  int nprobe = 32;
  int refine_k_factor = 4;
  std::string describe;
  double bytes_per_vector = 0;
  nlohmann::json autotune;  // the autotune report, or null
};

struct AlsSection {
  int factors = 0;
  double regularization = 0;
  double alpha = 0;
  int iterations = 0;
  int cg_steps = 0;
  uint64_t seed = 0;
};

struct ManifestCounts {
  int64_t items = 0;
  int64_t users = 0;
  int64_t interactions = 0;
  int64_t cold_items = 0;
  int64_t dim = 0;
  int64_t deleted = 0;  // tombstones (deleted.npy rows)
};

// Discretion (engine/privacy.h): the sensitive items' predicate ("" = none)
// and whether the built-in policy (shared screens, audiences) applies.
struct PrivacySection {
  std::string sensitive;
  bool policy = true;
};

// The manifest sections of a build bundle.
struct BundleManifest {
  CatalogSection catalog;
  std::vector<BlockLayout> blocks;               // contiguous from column 0
  std::map<std::string, float> similar_weights;  // per block, for similar-items queries
  IndexSection index;
  ManifestCounts counts;
  std::optional<AlsSection> als;                     // present iff the bundle has a cf block
  nlohmann::json content_encoder;                    // ContentEncoder::ToJson / FromJson
  nlohmann::json visual_encoder;                     // null without a visual block
  nlohmann::json cold_start;                         // ColdStartProjector::ToJson; null without cf
  float cold_cf_row_norm = 1.0f;                     // cf norm given to cold rows (cold_start)
  nlohmann::json recency;                            // null without a "new" block
  double recency_half_life_days = 0;                 // recency.half_life_days; 0 if absent
  int64_t trend_window_hours = 0;                    // trend.window_hours: the "trend" block's
  nlohmann::json item_neighbors;                     // options; null without item_neighbors.bin
  nlohmann::json taste_mixture;                      // options; null without taste_mixture/
  nlohmann::json ranker;                             // training report; null without ranker.bin
  nlohmann::json tuning;                             // engine/tune.h report; null if not tuned
  PrivacySection privacy;                            // "privacy"; absent when nothing is sensitive
  // "differential_privacy" (embed/private_als.h): the budget a private build
  // spent (epsilon, delta, the bounds and every release's noise); null for
  // an ordinary build. dp_epsilon / dp_delta are its checked numbers.
  nlohmann::json differential_privacy;
  double dp_epsilon = 0, dp_delta = 0;
  bool private_training() const { return dp_epsilon > 0; }
  nlohmann::json params = nlohmann::json::object();  // free-form: the build's flags

  const BlockLayout* block(std::string_view name) const;
  bool has_block(std::string_view name) const { return block(name) != nullptr; }
  int64_t total_dim() const;

  // Reads and validates `bundle`'s manifest sections, then cross-checks them
  // against the arrays they describe (npy headers only; no array is loaded).
  static Result<BundleManifest> Read(const Bundle& bundle);
  // Only step 1 of Read (types and ranges), `where` prefixes messages.
  static Result<BundleManifest> FromJson(const nlohmann::json& m, const std::string& where);

  // Writes every section above into `w`'s manifest (replacing them).
  void Write(BundleWriter* w) const;
};

// The per-user history arrays (history/*.npy): a CSR over user rows.
struct StoredHistory {
  std::vector<int64_t> indptr;   // users + 1
  std::vector<int64_t> indices;  // item rows
  std::vector<float> weights;    // aggregated event weights
  std::vector<int64_t> times;    // latest event time per entry, when `timed`
  bool timed = false;            // the bundle has history/timestamps.npy

  int64_t users() const { return indptr.empty() ? 0 : static_cast<int64_t>(indptr.size()) - 1; }
  // The rows `keep` (user rows, in that order) as a new history.
  StoredHistory SelectUsers(const std::vector<int32_t>& keep) const;
};

// Reads history/*.npy and checks everything a reader indexes by: indptr
// starts at 0, never decreases and spans the entries; every entry is an item
// row below `items` with a finite, non-negative weight; timestamps, if
// present, have one value per entry. Corruption names the file.
Result<StoredHistory> ReadStoredHistory(const Bundle& b, int64_t items);
// Writes the arrays (timestamps.npy when `h.timed`).
Status WriteStoredHistory(BundleWriter* w, const StoredHistory& h);

}  // namespace vitrine
