// BuildBundle: runs the embed and index stages over a catalog and writes a
// bundle (docs/bundle-format.md).
//
//   items.csv ──> Catalog ──> ContentEncoder ─────────────┐
//   interactions.csv ──> Interactions ──> ImplicitALS ──> cf ──> ColdStartProjector
//   images / vectors ──> VisualEncoder ───────────────────┘        │
//                                       Fuse(cf, content, visual) <┘ ──> VectorIndex
//
// A catalog without interactions (a new shop) builds from content and images
// alone: the bundle then has no cf block. Every stage logs its wall time on
// stderr. The bundle is written atomically: a failed build leaves the
// previous bundle at `out` untouched.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/catalog.h"
#include "core/interactions.h"
#include "core/status.h"
#include "embed/als.h"
#include "embed/cold_start.h"
#include "embed/content_encoder.h"
#include "embed/visual_encoder.h"
#include "index/autotune.h"
#include "index/vector_index.h"

namespace vitrine {

struct BuildOptions {
  BuildOptions() {
    als.compute_loss = true;  // the loss per iteration is on stderr
    // Defaults measured on the generated catalog (sparse users, median 6
    // events): 32 factors, regularisation 0.1, alpha 10 gave NDCG@10 0.088
    // against 0.061 for the library defaults (64, 0.01, 1).
    als.factors = 32;
    als.regularization = 0.1f;
    als.alpha = 10.0f;
  }

  std::filesystem::path items;         // required
  std::filesystem::path interactions;  // optional: empty = content/visual only
  std::filesystem::path images;        // optional: IDX ubyte(.gz), catalog order
  std::filesystem::path visual;        // optional: precomputed .npy/.fvecs, catalog order
  std::string image_column;            // optional: items column of PNG/JPEG paths

  CatalogReadOptions catalog;
  InteractionsReadOptions interactions_read;

  ImplicitALS::Config als;
  ContentEncoderOptions content;
  VisualEncoderOptions visual_encoder;
  ColdStartOptions cold_start;

  // Default query weights per block, recorded in the manifest.
  // Measured on the generated catalog (README, "evaluate"): the cf block
  // carries ALS scores (norm <= 1), content and visual are unit cosines, and
  // pop is the popularity prior in [0, 1].
  std::map<std::string, float> block_weights = {
      {"cf", 1.0f}, {"content", 0.2f}, {"visual", 0.05f}, {"pop", 0.4f}};
  // Defaults for "similar items" requests: shoppers expect look-alikes there,
  // so content and images weigh more and popularity not at all.
  std::map<std::string, float> similar_weights = {
      {"cf", 1.0f}, {"content", 0.5f}, {"visual", 0.5f}, {"pop", 0.0f}};
  VectorIndexOptions index;
  // Instead of `index.spec`: measure candidate specs on held-out queries and
  // keep the fastest meeting recall@10 >= autotune_recall (index/autotune.h);
  // the operating point (spec, ef / nprobe) is recorded in the manifest and
  // used by every query of the bundle.
  bool autotune = false;
  double autotune_recall = 0.95;
  // Extra parameters to record in manifest["params"] (e.g. the CLI flags).
  nlohmann::json params = nlohmann::json::object();
};

struct BuildSummary {
  int32_t items = 0;
  int32_t users = 0;
  int64_t interactions = 0;
  int64_t cold_items = 0;
  int64_t unknown_item_events = 0;
  size_t dim = 0;
  double seconds = 0;
};

Result<BuildSummary> BuildBundle(const BuildOptions& options, const std::filesystem::path& out);

}  // namespace vitrine
