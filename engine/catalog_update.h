// Live catalog updates: add, remove and restock items of a built bundle
// without a full rebuild, and compact the bundle once removals pile up
// (docs/live-updates.md).
//
//   AddItemsOptions add;
//   add.items = "new.csv";
//   add.images = "new.idx.gz";             // bundles with an image-built visual block
//   auto s = AddItems("demo/bundle", add);  // s->Describe(): "added 20 items; ..."
//   RemoveItems("demo/bundle", {"I000042"});
//   SetInStock("demo/bundle", {"I000007"}, false);
//   Compact("demo/bundle", {.threshold = 0.2});
//
// Every call rewrites the bundle through one BundleWriter::Update + Commit:
// the previous bundle is verified first (kFull), the new one replaces it in a
// single rename, and any failure (bad input, I/O) leaves the old bundle
// byte-identical. Calls on the same bundle must not run concurrently (the
// last commit would win); a running Engine keeps the files it has loaded and
// sees an update only when reopened.
//
// Add. New rows must carry exactly the catalog's columns (any order; the
// schema recorded at build time types them) and ids not yet in the bundle.
// Their vectors come from the stored encoders, never a refit:
//   content  ContentEncoder::FromJson(manifest content_encoder,
//            content/projection.npy).Transform(new rows)
//   visual   (if the bundle has a visual block) precomputed vectors as they
//            are, or images described and projected with the stored PCA
//            (visual/*.npy + the options in manifest visual_encoder)
//   cf       (if the bundle has a cf block) the ColdStartProjector's
//            prediction from [unit content | unit visual]: new items are cold
// fused by ItemEncoder::EncodeNew in the manifest layout, exactly as a build
// fuses a cold item (content and visual rows at unit norm, cf at the build's
// cold-item norm, pop 0 and new 1). The rows are appended to vectors.npy,
// item_ids.txt, items.csv, cold.npy (1), popularity.npy (0) and
// cf/item_factors.npy (zero rows: an item without interactions has a zero
// ALS factor, and fold-in then ignores it); the FAISS index gets the new
// vectors added (ids continue the row numbering).
//
// Remove. Item rows stay (so indices in histories and the index stay valid);
// their indices go to deleted.npy (int64, sorted), which Engine::Open merges
// into every search as VectorIndex tombstones. IVF indexes also drop the
// vectors physically (remove_ids), so index.faiss shrinks; HNSW and Flat keep
// them. A removed item is never a result but may still be a query (similar,
// or a history item): its vector is still there.
//
// Compact. Drops the removed rows from every per-item file, remaps and
// filters history/*.npy, rebuilds the index with the recorded spec (no
// retraining of the encoders or ALS) and deletes deleted.npy.
//
// Thread safety: the functions share no state; see above for one bundle.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/bundle.h"
#include "core/status.h"
#include "engine/bundle_schema.h"

namespace vitrine {

inline constexpr const char* kTombstoneFile = bundle_file::kTombstones;
inline constexpr char kInStockColumn[] = "in_stock";

// What one update did and the bundle's tombstone state afterwards.
struct UpdateSummary {
  int64_t changed = 0;     // items added / newly removed / updated / dropped by compact
  int64_t items = 0;       // rows in the bundle after the update (removed ones included)
  int64_t deleted = 0;     // tombstones after the update
  bool compacted = false;  // Compact: whether it rewrote the bundle
  double deleted_fraction() const {
    return items > 0 ? static_cast<double>(deleted) / static_cast<double>(items) : 0.0;
  }
  // "tombstones: 12 of 300 items (4.0%)"
  std::string TombstoneLine() const;
};

struct AddItemsOptions {
  std::filesystem::path items;  // required: CSV of the new rows
  // The visual input for bundles with a visual block, in the row order of
  // `items` (exactly one, matching how the bundle was built):
  std::filesystem::path images;  // IDX ubyte(.gz) images (bundles built from IDX)
  std::filesystem::path visual;  // precomputed .npy/.fvecs (bundles built from --visual)
  std::string image_column;      // column of PNG/JPEG paths, relative to items' directory
};

// Appends the rows of options.items. Errors (the bundle is unchanged):
//   new.csv:5: item id 'I000042' is already in the bundle
//   new.csv: missing column 'brand' / new.csv: column 'x' is not in the catalog
//   new.csv: the bundle has a visual block: give --images (it was built from IDX images)
// plus every CSV/type error of Catalog::ReadCsv and the encoders.
[[nodiscard]] Result<UpdateSummary> AddItems(const std::filesystem::path& bundle,
                                             const AddItemsOptions& options);

// Tombstones `ids`. An unknown id is NotFound naming it; an id already removed
// is not counted again. Errors leave the bundle unchanged.
[[nodiscard]] Result<UpdateSummary> RemoveItems(const std::filesystem::path& bundle,
                                                const std::vector<std::string>& ids);

// Sets the bool column in_stock of `ids` in items.csv. Errors: the catalog
// has no in_stock column or it is not bool (InvalidArgument), an unknown id
// (NotFound naming it). Out-of-stock items stay searchable; hiding them is a
// rule (INCLUDE WHERE in_stock = true). `changed` counts rows whose value
// actually changed.
[[nodiscard]] Result<UpdateSummary> SetInStock(const std::filesystem::path& bundle,
                                               const std::vector<std::string>& ids, bool in_stock);

struct CompactOptions {
  double threshold = 0.2;  // compact when deleted / items > threshold
  bool force = false;      // compact whatever the fraction
};

// Rewrites the bundle without its removed rows when the tombstone fraction
// exceeds options.threshold (or force); otherwise changes nothing and
// returns compacted = false. Fails (bundle unchanged) if every item is
// removed.
[[nodiscard]] Result<UpdateSummary> Compact(const std::filesystem::path& bundle,
                                            const CompactOptions& options);

// The sorted tombstone indices of an opened bundle of `items` items (empty
// without deleted.npy). Corruption if an index is out of range or repeated.
[[nodiscard]] Result<std::vector<int64_t>> ReadTombstones(const Bundle& bundle, int64_t items);

}  // namespace vitrine
