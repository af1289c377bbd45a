// ItemEncoder: how a catalog row becomes a fused item vector. One recipe for
// `vitrine build` (which fits the encoders) and `vitrine items add` (which
// loads them from the bundle and never refits):
//
//   content  ContentEncoder over the attribute columns        (unit rows)
//   visual   VisualEncoder over the item images (IDX, PNG/JPEG) or
//            precomputed vectors, if the catalog has them        (unit rows)
//   cf       ALS item factors for warm items; for cold items (fewer than
//            cold_start.min_interactions interactions, and every item added
//            later) the ColdStartProjector's prediction from
//            [unit content | unit visual], as a direction at a quantile of
//            the warm norms (ColdStartOptions::norm_quantile, the median by
//            default). Rows are divided by the largest warm norm, never
//            normalised one by one: the norm carries ALS's confidence.
//   pop/new/trend  one-column priors in [0, 1]
//
// Fuse() lays the blocks side by side in that order (embed/fusion.h).
//
// Thread safety: a fitted or loaded encoder is immutable; its const methods
// may run concurrently.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/bundle.h"
#include "core/catalog.h"
#include "core/status.h"
#include "embed/cold_start.h"
#include "embed/content_encoder.h"
#include "embed/fusion.h"
#include "embed/visual_encoder.h"
#include "engine/bundle_schema.h"

namespace vitrine {

// Where the item images of a batch of catalog rows come from: at most one of
// these, in row order.
struct VisualSource {
  std::filesystem::path images;  // IDX ubyte(.gz)
  std::filesystem::path visual;  // precomputed .npy / .fvecs
  std::string image_column;      // column of PNG/JPEG paths, relative to `items`' directory
  std::filesystem::path items;   // the CSV the rows came from (for image_column)
  bool empty() const { return images.empty() && visual.empty() && image_column.empty(); }
};

// The per-item blocks before fusion; empty matrices are absent blocks.
struct ItemBlocks {
  Matrix cf, content, visual, pop, newness, trend;
};

class ItemEncoder {
 public:
  ItemEncoder() = default;
  ItemEncoder(ItemEncoder&&) noexcept = default;
  ItemEncoder& operator=(ItemEncoder&&) noexcept = default;

  // --- Build: fit each encoder on the catalog. ---
  Result<Matrix> FitContent(
      const ContentEncoderOptions& options, const Catalog& catalog,
      const std::function<void(int64_t done, int64_t total)>& on_progress = {});
  // With `thumbnails`, also writes the decoded images there, catalog row by
  // row, as an IDX ubyte file (serve/thumbnail.h reads one row per request):
  // the images the encoder saw, at its size (IDX images as they are; image
  // files resampled to canonical_size).
  Result<Matrix> FitVisual(const VisualEncoderOptions& options, const VisualSource& source,
                           const Catalog& catalog,
                           const std::function<void(size_t done)>& on_progress = {},
                           const std::filesystem::path& thumbnails = {});
  const ContentEncoder& content() const { return content_; }
  // Fills the cold rows of `cf` (ALS item factors) from [unit content | unit
  // visual] and scales the block (see the header comment). Returns the cold
  // mask. With no item warm enough to fit the projector on, every row keeps
  // its ALS factors (zero for items nobody touched) and `note` says so.
  Result<std::vector<bool>> FitColdStart(
      const ColdStartOptions& options, std::span<const int64_t> interaction_counts,
      const Matrix& content, const Matrix& visual, Matrix* cf, std::string* note,
      const std::function<void(int64_t, int64_t)>& on_progress = {});

  // --- items add: the encoders a bundle stores. ---
  static Result<ItemEncoder> Load(const Bundle& bundle, const BundleManifest& manifest);
  // Fused vectors of new (cold) rows in `layout`, their images from `source`.
  Result<Matrix> EncodeNew(const Catalog& rows, const VisualSource& source,
                           const std::vector<BlockLayout>& layout) const;

  // Writes the fitted encoders' files and manifest sections.
  Status Save(BundleWriter* w, BundleManifest* manifest) const;

 private:
  enum VisualKind { kNoVisual, kPrecomputed, kIdx, kImageFiles };

  ContentEncoder content_;
  VisualEncoder visual_;
  VisualKind visual_source_ = kNoVisual;
  std::string visual_path_;  // the precomputed file's name, for the manifest
  ImageBatch image_shape_;   // height, width, channels of the fitted images (no pixels)
  std::optional<ColdStartProjector> projector_;
  bool has_cf_ = false;     // FitColdStart ran (or the loaded bundle has a cf block)
  float cold_norm_ = 1.0f;  // cf norm of a cold row
};

// The visual encoder options a build records in manifest visual_encoder
// "options", so images of new items are described exactly as the catalog's
// were. FromJson starts from the defaults and overrides the fields present.
nlohmann::json VisualOptionsToJson(const VisualEncoderOptions& o);
[[nodiscard]] Result<VisualEncoderOptions> VisualOptionsFromJson(const nlohmann::json& j);

// [unit content | unit visual]: the cold-start projector's input.
Result<Matrix> ColdStartFeatures(const Matrix& content, const Matrix& visual);

// Fuses the present blocks in layout order (cf, content, visual, pop, new, trend):
// content and visual rows normalised, cf and the priors as given. Default
// query weights come from `weights` (1 for a block not named).
Result<FusedVectors> FuseItemBlocks(ItemBlocks blocks, const std::map<std::string, float>& weights);

}  // namespace vitrine
