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
#include "embed/item_neighbors.h"
#include "embed/private_als.h"
#include "embed/taste_mixture.h"
#include "embed/visual_encoder.h"
#include "engine/bundle_schema.h"
#include "engine/trend.h"
#include "index/autotune.h"
#include "index/vector_index.h"

namespace vitrine {

struct BuildOptions {
  std::filesystem::path items;         // required
  std::filesystem::path interactions;  // optional: empty = content/visual only
  std::filesystem::path images;        // optional: IDX ubyte(.gz), catalog order
  std::filesystem::path visual;        // optional: precomputed .npy/.fvecs, catalog order
  std::string image_column;            // optional: items column of PNG/JPEG paths
  // optional: user ids (one per line) never listed in an audience; those
  // that are users of the interactions go into the bundle (opt_out.txt)
  std::filesystem::path opt_out;
  // optional: user ids forgotten by `vitrine forget` (engine/forget.h), one
  // per line; their interactions are left out as if absent
  std::filesystem::path forget_list;

  CatalogReadOptions catalog;                 // reading items.csv
  InteractionsReadOptions interactions_read;  // reading interactions.csv

  // ALS with the defaults chosen on the generated catalog (32 factors,
  // regularisation 0.1, alpha 10; docs/experiments.md), not the library's;
  // the loss of every iteration goes to stderr.
  AlsOptions als{.factors = 32, .regularization = 0.1f, .alpha = 10.0f, .compute_loss = true};
  ContentEncoderOptions content;        // the content block
  VisualEncoderOptions visual_encoder;  // the visual block (images, not precomputed vectors)
  ColdStartOptions cold_start;          // cf rows of cold items

  // The new-arrival prior, a one-dimensional block "new" holding each item's
  // newness 0.5^(age / half_life) in [0, 1], where age runs from the item's
  // arrival to the newest arrival in the data (the bundle's reference time,
  // manifest "recency"). Arrival is the catalog column `column` (unix seconds
  // or an ISO-8601 date; a missing value counts as old) when given, else the
  // item's first interaction, where an item nobody has interacted with yet
  // is a new arrival (newness 1). Without either (no column, no interaction
  // timestamps) the bundle has no "new" block. Items added later with
  // `vitrine items add` arrive with newness 1.
  struct Recency {
    std::string column;          // catalog arrival column; "" = first interactions
    double half_life_days = 30;  // age at which newness is 0.5
  } recency;

  // Default query weights per block, recorded in the manifest.
  // Measured on the generated catalog (README, "evaluate"): the cf block
  // carries ALS scores (norm <= 1), content and visual are unit cosines, and
  // pop is the popularity prior in [0, 1], new the new-arrival prior in [0, 1].
  // new is off by default, because the generated data has no launch dynamics
  // (docs/experiments.md); a catalog with real arrival dates turns it on per
  // bundle (--weights at build) or per request.
  // trend (engine/trend.h) is off by default like new: a merchandiser
  // turns it on per request (--weights trend=0.3) to lift rising items.
  std::map<std::string, float> block_weights = {{"cf", 1.0f},  {"content", 0.2f}, {"visual", 0.05f},
                                                {"pop", 0.4f}, {"new", 0.0f},     {"trend", 0.0f}};
  // Defaults for "similar items" requests: shoppers expect look-alikes there,
  // so content and images weigh more and the priors not at all.
  std::map<std::string, float> similar_weights = {{"cf", 1.0f},     {"content", 0.5f},
                                                  {"visual", 0.5f}, {"pop", 0.0f},
                                                  {"new", 0.0f},    {"trend", 0.0f}};
  // The window of the "trend" block (engine/trend.h): growth over the last
  // window_hours of the data against the window before.
  int64_t trend_window_hours = kDefaultTrendWindowHours;
  // The item-item candidate source stored in the bundle (item_neighbors.bin).
  ItemNeighborsOptions item_neighbors;
  // The taste mixture, the third candidate source (taste_mixture/; clusters
  // 0 = none).
  TasteMixtureOptions taste_mixture;
  // The learned ranker (engine/ranker_training.h), trained when the bundle
  // has interactions; `enabled = false` (--ranker off) keeps the hybrid.
  struct Ranker {
    bool enabled = true;               // false: no ranker.bin
    int rounds = 100;                  // RankerOptions::rounds
    int max_depth = 6;                 // RankerOptions::max_depth
    double eta = 0.1;                  // RankerOptions::eta
    double validation_fraction = 0.2;  // of each user's latest interactions
    // Query groups trained on (a seeded sample; every fifth is kept to check
    // the model). 20,000 against 3,000 lifted the demo split's NDCG@10 from
    // 0.1225 to 0.1255 but took minutes of LambdaMART on 2 busy cores
    // (docs/ranker.md); the rows take about 80 bytes per candidate.
    int64_t max_users = 10000;
    int64_t min_users = 50;  // fewer: no ranker, the hybrid answers
    // LambdaMART pairs per relevant candidate and round (RankerOptions). 10
    // against 1 moved the demo split's NDCG@10 from 0.1248 to 0.1258 and
    // about doubled the build: left at 1, open to --config [ranker].
    int pairs_per_sample = 1;
    // Which score the bundle answers with: "auto" keeps the ranker unless the
    // item-item score alone ranks the check users' pools better; "ranker" and
    // "item_item" force one (a forced choice is reproducible across compilers
    // and sanitizer builds, whose float rounding can flip a close "auto").
    std::string scorer = "auto";
    uint64_t seed = 42;  // the user sample and XGBoost's sampling
    int threads = 1;     // training threads; deterministic for a seed at 1
  } ranker;
  // index.faiss (its spec unless `autotune`); "auto" = AutoIndex's choice.
  VectorIndexOptions index{.spec = kAutoIndexSpec};
  // Instead of `index.spec`: measure candidate specs on held-out queries and
  // keep the fastest meeting recall@10 >= autotune_recall (index/autotune.h);
  // the operating point (spec, ef / nprobe) is recorded in the manifest and
  // used by every query of the bundle.
  bool autotune = false;
  double autotune_recall = 0.95;  // the recall@10 autotune must reach
  // Extra parameters to record in manifest["params"] (e.g. the CLI flags).
  nlohmann::json params = nlohmann::json::object();
  // The tuning report to record in manifest["tuning"] (engine/tune.h); null
  // when the build was not tuned.
  nlohmann::json tuning;
  // Sensitive items and the discretion policy (engine/privacy.h), recorded in
  // manifest["privacy"]; the predicate is checked against the catalog before
  // anything is trained.
  PrivacySection privacy;
  // Differentially private training (engine/private_build.h); off unless
  // dp.epsilon > 0.
  DpOptions dp;
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

// Per-item newness (see BuildOptions::Recency), or an empty vector when
// there is no arrival information. `info` receives the manifest's "recency"
// section (source, reference time, half-life). `inter` may be null.
Result<std::vector<float>> ComputeNewness(const BuildOptions::Recency& options,
                                          const Catalog& catalog, const Interactions* inter,
                                          nlohmann::json* info);

// The catalog and interactions a build reads, checked and logged.
struct BuildInputs {
  Catalog catalog;
  Interactions interactions;
  bool has_interactions = false;  // at least one usable interaction
};
Result<BuildInputs> ReadBuildInputs(const BuildOptions& options);

// ReadBuildInputs, then BuildFromData.
Result<BuildSummary> BuildBundle(const BuildOptions& options, const std::filesystem::path& out);

// The part of `vitrine build` on an MPI rank other than 0 (options.als.cluster
// set): reads the same inputs and joins rank 0's ALS fit, whose factors rank
// 0 writes. Writes nothing.
Status FitAlsOnWorkerRank(const BuildOptions& options);

// The build from data already read (`interactions` may be null): what
// BuildBundle runs after reading the CSVs, and what the ranker's validation
// bundle is built with.
Result<BuildSummary> BuildFromData(const BuildOptions& options, const Catalog& catalog,
                                   const Interactions* interactions,
                                   const std::filesystem::path& out);

}  // namespace vitrine
