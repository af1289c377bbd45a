#include "engine/builder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "core/bundle.h"
#include "core/cluster.h"
#include "core/csv.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "embed/fusion.h"
#include "engine/bundle_schema.h"
#include "engine/forget.h"
#include "engine/item_encoder.h"
#include "engine/privacy.h"
#include "engine/private_build.h"
#include "engine/ranker_training.h"
#include "engine/trend.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

// The catalog as the bundle keeps it: id column plus the typed columns, so a
// reload with the recorded schema reproduces the same Catalog exactly.
std::string CatalogCsv(const Catalog& catalog, const std::string& id_column) {
  std::string out;
  std::vector<std::string> fields;
  std::vector<std::string_view> views;
  fields.push_back(id_column);
  for (const auto& c : catalog.columns) fields.push_back(c.name);
  auto flush = [&] {
    views.assign(fields.begin(), fields.end());
    AppendCsvRow(out, views);
  };
  flush();
  for (int32_t i = 0; i < catalog.size(); ++i) {
    fields.clear();
    fields.push_back(catalog.ids.id(i));
    for (const auto& c : catalog.columns) fields.push_back(catalog.ValueString(c, i));
    flush();
  }
  return out;
}

std::string SchemaString(const Catalog& catalog) {
  std::string s;
  for (const auto& c : catalog.columns) {
    if (!s.empty()) s += ',';
    s += c.name + ":" + ColumnTypeName(c.type);
  }
  return s;
}

// The opt-out file's ids (core/file_util.h ReadIdList) that are users of
// the interactions, in file order. Ids of unknown users are counted, not
// kept: the bundle holds no id it did not already hold.
Result<std::vector<std::string>> ReadOptOut(const std::filesystem::path& path, const IdMap& users) {
  VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> ids, ReadIdList(path));
  std::vector<std::string> kept;
  for (std::string& id : ids) {
    if (users.Find(id)) kept.push_back(std::move(id));
  }
  LogInfo(
      "%s: %zu users opted out of audiences (%zu ids not users of the interactions, "
      "ignored)",
      path.c_str(), kept.size(), ids.size() - kept.size());
  return kept;
}

Matrix ColumnVector(const std::vector<float>& v) {
  Matrix m(v.size(), 1);
  std::copy(v.begin(), v.end(), m.data.begin());
  return m;
}

}  // namespace

Result<std::vector<float>> ComputeNewness(const BuildOptions::Recency& options,
                                          const Catalog& catalog, const Interactions* inter,
                                          nlohmann::json* info) {
  if (!(options.half_life_days > 0) || !std::isfinite(options.half_life_days)) {
    return Status::InvalidArgument("recency: half_life_days must be a positive number, got " +
                                   std::to_string(options.half_life_days));
  }
  const auto n = static_cast<size_t>(catalog.size());
  constexpr int64_t kUnknown = INT64_MIN;
  std::vector<int64_t> arrival(n, kUnknown);
  std::string source;
  if (!options.column.empty()) {
    const Column* col = catalog.column(options.column);
    if (col == nullptr) {
      return Status::InvalidArgument("recency: no column '" + options.column +
                                     "' in the catalog (the arrival date column)");
    }
    if (col->type == ColumnType::kNumeric) {
      for (size_t i = 0; i < n; ++i) {
        const double t = col->numbers[i];
        if (!std::isfinite(t)) continue;
        if (t < static_cast<double>(kMinTimestamp) || t > static_cast<double>(kMaxTimestamp)) {
          return Status::InvalidArgument("recency: column '" + options.column + "' value " +
                                         std::to_string(t) + " (item " +
                                         catalog.ids.id(static_cast<int32_t>(i)) +
                                         ") is not a date between 1900 and 2200 in unix seconds");
        }
        arrival[i] = static_cast<int64_t>(t);
      }
    } else if (col->type == ColumnType::kCategorical) {
      std::vector<int64_t> parsed(col->dictionary.size());
      for (size_t d = 0; d < parsed.size(); ++d) {
        if (!ParseTimestamp(col->dictionary[d], &parsed[d])) {
          return Status::InvalidArgument(
              "recency: column '" + options.column + "' value '" + col->dictionary[d] +
              "' is not a date (expected unix seconds or an ISO-8601 date such as 2026-11-01)");
        }
      }
      for (size_t i = 0; i < n; ++i) {
        if (col->codes[i] >= 0) arrival[i] = parsed[static_cast<size_t>(col->codes[i])];
      }
    } else if (col->type == ColumnType::kText) {
      // Many distinct dates read as free text under type inference.
      for (size_t i = 0; i < n; ++i) {
        if (col->texts[i].empty()) continue;
        if (!ParseTimestamp(col->texts[i], &arrival[i])) {
          return Status::InvalidArgument("recency: column '" + options.column + "' value '" +
                                         col->texts[i] + "' (item " +
                                         catalog.ids.id(static_cast<int32_t>(i)) +
                                         ") is not a date (expected unix seconds or an "
                                         "ISO-8601 date such as 2026-11-01)");
        }
      }
    } else {
      return Status::InvalidArgument("recency: column '" + options.column + "' is " +
                                     ColumnTypeName(col->type) +
                                     "; expected numeric (unix seconds) or dates");
    }
    source = "column " + options.column;
  } else if (inter != nullptr && !inter->timestamps.empty()) {
    // First interaction per item (the earliest of its (user, item) pairs'
    // latest timestamps; aggregation keeps one timestamp per pair).
    for (size_t k = 0; k < inter->timestamps.size(); ++k) {
      const int64_t t = inter->timestamps[k];
      if (t <= 0) continue;
      int64_t& a = arrival[static_cast<size_t>(inter->matrix.indices[k])];
      a = a == kUnknown ? t : std::min(a, t);
    }
    source = "first interaction";
  }
  int64_t reference = kUnknown;
  for (int64_t a : arrival) reference = std::max(reference, a);
  if (reference == kUnknown) return std::vector<float>{};  // nothing to date items by

  std::vector<float> newness(n);
  const double half_life_s = options.half_life_days * 86400.0;
  for (size_t i = 0; i < n; ++i) {
    if (arrival[i] == kUnknown) {
      // Never interacted with: a new arrival; no date in the column: old.
      newness[i] = options.column.empty() ? 1.0f : 0.0f;
    } else {
      const double age = static_cast<double>(reference - arrival[i]);
      newness[i] = static_cast<float>(std::exp2(-age / half_life_s));
    }
  }
  *info = {{"source", source},
           {"reference_time", reference},
           {"half_life_days", options.half_life_days}};
  return newness;
}

Result<BuildInputs> ReadBuildInputs(const BuildOptions& o) {
  BuildInputs in;
  // 1. Catalog.
  StageTimer t_items("read items");
  CatalogReadOptions catalog_options = o.catalog;
  catalog_options.on_progress = [&t_items](int64_t done_mb, int64_t total_mb) {
    t_items.SetTotal(total_mb);
    t_items.Update(done_mb);
  };
  VITRINE_ASSIGN_OR_RETURN(in.catalog, Catalog::ReadCsv(o.items, catalog_options));
  const Catalog& catalog = in.catalog;
  if (catalog.size() == 0) {
    return Status::InvalidArgument(o.items.string() + ": no items (expected a header and rows)");
  }
  t_items.Done(std::to_string(catalog.size()) + " items, " +
               std::to_string(catalog.columns.size()) + " attribute columns");
  if (!o.privacy.sensitive.empty()) {
    VITRINE_ASSIGN_OR_RETURN(AttributeIndex attributes, AttributeIndex::Build(catalog));
    VITRINE_ASSIGN_OR_RETURN(
        Bitmap sensitive, SensitiveItems(catalog, attributes, o.privacy.sensitive, "--sensitive"));
    LogInfo("sensitive items: %llu of %lld (%s); policy %s",
            static_cast<unsigned long long>(sensitive.cardinality()),
            static_cast<long long>(catalog.size()), o.privacy.sensitive.c_str(),
            o.privacy.policy ? "on" : "off");
    if (sensitive.isEmpty()) LogInfo("warning: --sensitive matches no item of %s", o.items.c_str());
  }
  if (catalog.skipped_lines > 0) {
    LogInfo("%s: skipped %lld bad lines", o.items.c_str(),
            static_cast<long long>(catalog.skipped_lines));
  }

  // 2. Interactions (optional).
  Interactions& inter = in.interactions;
  bool& have_cf = in.has_interactions;
  if (!o.interactions.empty()) {
    // ReadCsv prints its own progress and summary line.
    InteractionsReadOptions read = o.interactions_read;
    if (!o.forget_list.empty()) {
      VITRINE_ASSIGN_OR_RETURN(std::set<std::string> forgotten, ReadForgetList(o.forget_list));
      read.skip_users.insert(forgotten.begin(), forgotten.end());
    }
    VITRINE_ASSIGN_OR_RETURN(inter, Interactions::ReadCsv(o.interactions, catalog.ids, read));
    if (inter.unknown_item_events > 0) {
      std::string ex;
      for (const auto& id : inter.unknown_item_examples) ex += (ex.empty() ? "" : ", ") + id;
      LogInfo(
          "%s: %lld events name items absent from %s (e.g. %s); ignored (--strict makes "
          "this an error)",
          o.interactions.c_str(), static_cast<long long>(inter.unknown_item_events),
          o.items.filename().c_str(), ex.c_str());
    }
    if (inter.skipped_lines > 0) {
      LogInfo("%s: skipped %lld bad lines", o.interactions.c_str(),
              static_cast<long long>(inter.skipped_lines));
    }
    have_cf = inter.matrix.nnz() > 0;
    if (!have_cf)
      LogInfo("%s: no usable interactions; building from content and images only",
              o.interactions.c_str());
  }
  return in;
}

namespace {

// Options the stages below would misread rather than refuse. Block weights
// name blocks a bundle may hold and lie in the manifest's range: a typo
// ("contnet") must not be ignored silently.
Status CheckBuildOptions(const BuildOptions& o) {
  if (o.dp.enabled()) {
    VITRINE_RETURN_IF_ERROR(o.dp.Validate());
    if (o.als.cluster != nullptr) {
      return Status::Unsupported(
          "--dp-epsilon: private training runs in one process, not under mpirun");
    }
  }
  if (o.ranker.scorer != "auto" && o.ranker.scorer != kScorerRanker &&
      o.ranker.scorer != kScorerItemItem) {
    return Status::InvalidArgument("ranker: scorer '" + o.ranker.scorer.substr(0, 40) +
                                   "': expected auto, ranker or item_item");
  }
  if (!(o.cold_start.norm_quantile >= 0 && o.cold_start.norm_quantile <= 1)) {
    return Status::InvalidArgument("cold start: norm_quantile must be in [0, 1], got " +
                                   std::to_string(o.cold_start.norm_quantile));
  }
  for (const auto* weights : {&o.block_weights, &o.similar_weights}) {
    for (const auto& [name, w] : *weights) {
      if (std::find(std::begin(kBlockNames), std::end(kBlockNames), name) ==
          std::end(kBlockNames)) {
        std::string known;
        for (const char* b : kBlockNames) known += (known.empty() ? "" : ", ") + std::string(b);
        return Status::InvalidArgument("block weights: unknown block '" + name.substr(0, 40) +
                                       "' (expected one of " + known + ")");
      }
      if (!(w >= 0 && w <= kMaxBlockWeight)) {
        return Status::InvalidArgument("block weights: '" + name + "' = " + std::to_string(w) +
                                       ": expected a number in [0, 1000]");
      }
    }
  }
  return Status::OK();
}

// The collaborative fit. Under MPI every rank runs it (rank 0 from
// BuildFromData, the others from FitAlsOnWorkerRank), so it is written once.
Result<ImplicitALS> FitAls(const BuildOptions& o, const CsrMatrix& user_items) {
  ImplicitALS als(o.als);
  VITRINE_RETURN_IF_ERROR(als.Fit(user_items).WithContext(o.interactions.string()));
  return als;
}

}  // namespace

Result<BuildSummary> BuildBundle(const BuildOptions& o, const fs::path& out) {
  const auto t0 = std::chrono::steady_clock::now();
  VITRINE_RETURN_IF_ERROR(CheckBuildOptions(o));
  VITRINE_ASSIGN_OR_RETURN(BuildInputs in, ReadBuildInputs(o));
  VITRINE_ASSIGN_OR_RETURN(
      BuildSummary summary,
      BuildFromData(o, in.catalog, in.has_interactions ? &in.interactions : nullptr, out));
  summary.unknown_item_events = in.interactions.unknown_item_events;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

Status FitAlsOnWorkerRank(const BuildOptions& o) {
  if (o.als.cluster == nullptr || o.als.cluster->rank() == 0) {
    return Status::Internal("FitAlsOnWorkerRank: only MPI ranks other than 0 call this");
  }
  VITRINE_RETURN_IF_ERROR(CheckBuildOptions(o));
  VITRINE_ASSIGN_OR_RETURN(BuildInputs in, ReadBuildInputs(o));
  if (!in.has_interactions) return Status::OK();  // rank 0 fits nothing either
  return FitAls(o, in.interactions.matrix).status();
}

Result<BuildSummary> BuildFromData(const BuildOptions& o, const Catalog& catalog,
                                   const Interactions* interactions, const fs::path& out) {
  VITRINE_RETURN_IF_ERROR(CheckBuildOptions(o));
  BuildSummary summary;
  summary.items = catalog.size();
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Create(out));
  static const Interactions kNone;
  const Interactions& inter = interactions != nullptr ? *interactions : kNone;
  const bool have_cf = interactions != nullptr && inter.matrix.nnz() > 0;
  summary.users = have_cf ? inter.users.size() : 0;
  // Arrival dates now, so that a bad --arrival-column fails before the
  // expensive stages.
  nlohmann::json recency_info;
  VITRINE_ASSIGN_OR_RETURN(
      std::vector<float> newness,
      ComputeNewness(o.recency, catalog, have_cf && !o.dp.enabled() ? &inter : nullptr,
                     &recency_info));
  summary.interactions = inter.matrix.nnz();

  BundleManifest manifest;
  ItemEncoder encoder;
  namespace f = bundle_file;
  // 3. Collaborative factors first: under MPI the other ranks wait in the
  // fit's collectives from the start, so rank 0 should not make them wait
  // through the encoders.
  ItemBlocks blocks;
  std::optional<PrivateReleases> dp;  // the private build's releases
  if (!have_cf && o.dp.enabled()) {
    LogInfo(
        "differential privacy: no usable interactions, so nothing to train privately; the "
        "bundle holds catalog data only");
  }
  if (have_cf && o.dp.enabled()) {
    VITRINE_ASSIGN_OR_RETURN(dp, TrainPrivately(o.dp, o.als, inter, catalog.size()));
    blocks.cf = dp->item_factors;
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kItemFactors, dp->item_factors));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(
        f::kUserFactors, o.dp.user_rows ? dp->user_factors : Matrix(0, dp->item_factors.cols)));
    manifest.differential_privacy = dp->manifest;
    manifest.dp_epsilon = o.dp.epsilon;
    manifest.dp_delta = o.dp.delta;
  } else if (have_cf) {
    StageTimer t("implicit ALS");
    VITRINE_ASSIGN_OR_RETURN(ImplicitALS als, FitAls(o, inter.matrix));
    t.Done(std::to_string(o.als.factors) + " factors, " + std::to_string(o.als.iterations) +
           " iterations" +
           (o.als.cluster != nullptr ? ", " + std::to_string(o.als.cluster->size()) + " MPI ranks"
                                     : ""));
    blocks.cf = als.item_factors();
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kItemFactors, als.item_factors()));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kUserFactors, als.user_factors()));
  }
  // A private bundle without user rows (--dp-user-rows off) holds nothing
  // per customer: no ids, factors or histories, and no exact counts.
  const bool user_rows = !dp || o.dp.user_rows;
  if (have_cf && !user_rows) {
    summary.users = 0;
    summary.interactions = 0;
    LogInfo("differential privacy: no per-user rows (ids, factors, histories) in the bundle");
  }
  if (have_cf) {
    VITRINE_RETURN_IF_ERROR(
        w.WriteIds(f::kUserIds, user_rows ? inter.users.ids() : std::vector<std::string>{}));
    if (inter.gift_events > 0 && dp) {
      LogInfo("gifts: gift counts are left out of a private bundle");
    } else if (inter.gift_events > 0) {
      Matrix gifts(inter.gift_weights.size(), 1);
      for (size_t i = 0; i < gifts.data.size(); ++i)
        gifts.data[i] = static_cast<float>(std::max(0.0, inter.gift_weights[i]));
      VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kGifts, gifts));
      LogInfo("gifts: %lld gift rows kept out of the buyers' histories",
              static_cast<long long>(inter.gift_events));
    }
    if (!o.opt_out.empty() && user_rows) {
      VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> opted, ReadOptOut(o.opt_out, inter.users));
      VITRINE_RETURN_IF_ERROR(w.WriteIds(f::kOptOut, opted));
    }
    manifest.als = AlsSection{o.als.factors,  o.als.regularization,
                              o.als.alpha,    dp ? o.dp.iterations : o.als.iterations,
                              o.als.cg_steps, o.als.seed};
  }

  // 4. Content block.
  StageTimer t_content("content encoder");
  VITRINE_ASSIGN_OR_RETURN(blocks.content,
                           encoder.FitContent(o.content, catalog, [&](int64_t done, int64_t total) {
                             t_content.SetTotal(total);
                             t_content.Update(done);
                           }));
  t_content.Done(std::to_string(encoder.content().feature_count()) + " features -> " +
                 std::to_string(blocks.content.cols) + " dims");

  // 5. Visual block (optional).
  const VisualSource visual_source{o.images, o.visual, o.image_column, o.items};
  if (!visual_source.empty()) {
    StageTimer t("visual encoder", catalog.size());
    VITRINE_ASSIGN_OR_RETURN(
        blocks.visual,
        encoder.FitVisual(
            o.visual_encoder, visual_source, catalog,
            [&t](size_t done) { t.Update(static_cast<int64_t>(done)); }, w.path(f::kThumbnails)));
    t.Done(std::to_string(blocks.visual.rows) + " x " + std::to_string(blocks.visual.cols));
  }

  // 6. Cold items of the collaborative block, projected from content + visual.
  std::vector<int64_t> cold_flags(static_cast<size_t>(catalog.size()), 1);  // no cf: all cold
  std::vector<float> popularity(static_cast<size_t>(catalog.size()), 0.0f);
  if (have_cf) {
    if (dp) {
      popularity = dp->popularity;
    } else {
      for (int32_t c : inter.matrix.indices) popularity[static_cast<size_t>(c)] += 1.0f;
    }
    StageTimer t_cold("cold-start projector");
    const std::vector<int64_t> counts(popularity.begin(), popularity.end());
    std::string note;
    VITRINE_ASSIGN_OR_RETURN(
        std::vector<bool> cold,
        encoder.FitColdStart(o.cold_start, counts, blocks.content, blocks.visual, &blocks.cf, &note,
                             [&](int64_t done, int64_t total) {
                               t_cold.SetTotal(total);
                               t_cold.Update(done);
                             }));
    for (size_t i = 0; i < cold.size(); ++i) cold_flags[i] = cold[i] ? 1 : 0;
    t_cold.Done(std::to_string(std::count(cold.begin(), cold.end(), true)) +
                " cold items (fewer than " + std::to_string(o.cold_start.min_interactions) +
                " interactions)");
    if (!note.empty()) LogInfo("cold start: %s", note.c_str());

    // Each user's history, for filtering already-seen items and for the
    // content/visual part of a user's query vector.
    StoredHistory history;
    history.timed = true;
    if (user_rows) {
      history.indptr = inter.matrix.indptr;
      history.indices.assign(inter.matrix.indices.begin(), inter.matrix.indices.end());
      history.weights = inter.matrix.values;
      history.times = inter.timestamps;
    } else {
      history.indptr = {0};
    }
    VITRINE_RETURN_IF_ERROR(WriteStoredHistory(&w, history));

    // The popularity prior as a one-dimensional block: log(1 + interactions)
    // scaled to [0, 1]. Queries hold 1 there, so the inner product adds
    // w_pop * prior and the ANN search already favours popular items.
    blocks.pop = Matrix(popularity.size(), 1);
    const float top = *std::max_element(popularity.begin(), popularity.end());
    for (size_t i = 0; i < popularity.size(); ++i) {
      blocks.pop.data[i] = top > 0 ? std::log1p(popularity[i]) / std::log1p(top) : 0.0f;
    }
  } else {
    LogInfo("no interactions: every item is cold; recommendations use content%s only",
            visual_source.empty() ? "" : " and images");
  }
  summary.cold_items = std::count(cold_flags.begin(), cold_flags.end(), 1);
  VITRINE_RETURN_IF_ERROR(encoder.Save(&w, &manifest));
  if (!newness.empty()) {
    // The new-arrival prior, the same way: queries hold 1, the score adds
    // w_new * newness.
    blocks.newness = ColumnVector(newness);
    manifest.recency = std::move(recency_info);
  }
  const ItemActivity& activity = dp ? dp->activity : inter.activity;
  if (!activity.empty()) {
    // The trend prior too, over the build's window; the events themselves
    // stay in the bundle for `trending` and the server's live trends.
    VITRINE_RETURN_IF_ERROR(WriteTrendActivity(activity, &w));
    blocks.trend = TrendBlock(activity, catalog.size(), o.trend_window_hours);
    manifest.trend_window_hours = o.trend_window_hours;
  }

  // 6. Fusion.
  VITRINE_ASSIGN_OR_RETURN(FusedVectors fused, FuseItemBlocks(std::move(blocks), o.block_weights));
  summary.dim = fused.dim();
  manifest.blocks = fused.layout;

  // 7. Index.
  auto vectors = std::make_shared<const Matrix>(std::move(fused.vectors));
  std::unique_ptr<VectorIndex> index;
  IndexSection& is = manifest.index;
  is.ef_construction = o.index.hnsw_ef_construction;
  is.seed = o.index.seed;
  if (o.autotune) {
    StageTimer t("autotune (target recall@10 " + std::to_string(o.autotune_recall).substr(0, 4) +
                 ")");
    AutotuneOptions ao;
    ao.metric = Metric::kInnerProduct;
    ao.target_recall = o.autotune_recall;
    ao.seed = o.index.seed;
    VITRINE_ASSIGN_OR_RETURN(AutotuneResult tuned, Autotune(vectors, ao));
    index = std::move(tuned.index);
    is.spec = tuned.spec;
    is.ef_construction = tuned.index_options.hnsw_ef_construction;
    is.ef_search = tuned.params.ef_search;
    is.nprobe = tuned.params.nprobe;
    is.refine_k_factor = tuned.params.refine_k_factor;
    is.autotune = AutotuneToJson(tuned, ao);
    t.Done(tuned.spec + " ef " + std::to_string(tuned.params.ef_search) + " nprobe " +
           std::to_string(tuned.params.nprobe) + ": recall " +
           std::to_string(tuned.chosen.recall).substr(0, 5) + ", " +
           std::to_string(static_cast<int>(tuned.chosen.qps)) + " QPS" +
           (tuned.met_target ? "" : " (target not met: most accurate point)"));
  } else {
    VectorIndexOptions io = o.index;
    if (io.spec == kAutoIndexSpec) {
      const AutoIndexChoice choice =
          AutoIndex(vectors->rows, vectors->cols, PhysicalMemoryBytes());
      io.spec = choice.spec;
      if (choice.nprobe > 0) is.nprobe = choice.nprobe;
    }
    StageTimer t_index("index " + io.spec, static_cast<int64_t>(vectors->rows));
    io.on_progress = [&t_index](size_t added) { t_index.Update(static_cast<int64_t>(added)); };
    VITRINE_ASSIGN_OR_RETURN(index, VectorIndex::Build(vectors, io));
    is.spec = io.spec;
    t_index.Done(index->Describe() + ", " +
                 std::to_string(static_cast<int>(index->BytesPerVector())) + " bytes/vector");
  }
  VITRINE_RETURN_IF_ERROR(index->Save(w.path(f::kIndex)));
  is.describe = index->Describe();
  is.bytes_per_vector = index->BytesPerVector();

  // 8. Catalog, ids and vectors.
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kVectors, *vectors));
  VITRINE_RETURN_IF_ERROR(w.WriteIds(f::kItemIds, catalog.ids.ids()));
  VITRINE_RETURN_IF_ERROR(w.WriteBytes(f::kItems, CatalogCsv(catalog, o.catalog.id_column)));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kPopularity, ColumnVector(popularity)));
  MatrixI64 cold_m(cold_flags.size(), 1);
  cold_m.data = cold_flags;
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kCold, cold_m));
  manifest.catalog = {o.catalog.id_column, SchemaString(catalog)};
  manifest.counts.items = summary.items;
  manifest.counts.users = summary.users;
  manifest.counts.interactions = summary.interactions;
  manifest.counts.cold_items = summary.cold_items;
  manifest.counts.dim = static_cast<int64_t>(summary.dim);
  manifest.params = o.params;
  manifest.tuning = o.tuning;
  manifest.privacy = o.privacy;
  for (const auto& b : fused.layout) {
    auto it = o.similar_weights.find(b.name);
    manifest.similar_weights[b.name] = it == o.similar_weights.end() ? b.weight : it->second;
  }

  // The index and the fused vectors are on disk now; free them before the
  // stages below, the ranker's whole validation build among them, so that
  // they do not add to that build's peak (1.8 GB at 1M items).
  index.reset();
  vectors.reset();

  // 9. Item-item neighbours and the learned ranker (docs/ranker.md); a
  // private build has no private version of them (engine/private_build.h).
  if (have_cf && dp) {
    LogInfo("differential privacy: no item-item neighbours, taste mixture or ranker");
  } else if (have_cf) {
    StageTimer t("item-item neighbours", inter.matrix.cols);
    VITRINE_ASSIGN_OR_RETURN(ItemNeighbors nb,
                             ItemNeighbors::Build(inter.matrix, o.item_neighbors,
                                                  [&t](int64_t done) { t.Update(done); }));
    VITRINE_RETURN_IF_ERROR(w.WriteBytes(f::kItemNeighbors, nb.Serialize()));
    const auto method = EffectiveMethod(o.item_neighbors, inter.matrix.cols);
    manifest.item_neighbors = {{"method", MethodName(method)},
                               {"neighbors", o.item_neighbors.neighbors},
                               {"shrink", o.item_neighbors.shrink},
                               {"use_weights", o.item_neighbors.use_weights}};
    if (method == ItemNeighborsOptions::Method::kEase) {
      manifest.item_neighbors["ease_lambda"] = o.item_neighbors.ease_lambda;
      manifest.item_neighbors["negative_neighbors"] = o.item_neighbors.negative_neighbors;
    }
    t.Done(std::string(MethodName(method)) + ", " + std::to_string(nb.similarities().nnz()) +
           " pairs");
    if (o.taste_mixture.clusters > 0) {
      TasteMixtureOptions tm = o.taste_mixture;
      tm.seed = o.als.seed;
      tm.threads = o.als.num_threads;
      double ll = 0;
      VITRINE_ASSIGN_OR_RETURN(TasteMixture mixture, TasteMixture::Fit(inter.matrix, tm, &ll));
      VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kTasteTheta, mixture.theta()));
      VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kTastePrior, mixture.prior()));
      manifest.taste_mixture = {{"clusters", tm.clusters},
                                {"iterations", tm.iterations},
                                {"smoothing", tm.smoothing},
                                {"seed", tm.seed},
                                {"log_likelihood_per_interaction", ll}};
    }
    if (o.ranker.enabled) {
      VITRINE_ASSIGN_OR_RETURN(std::optional<std::string> model,
                               TrainRankerForBuild(o, catalog, inter, out, &manifest.ranker));
      if (model) VITRINE_RETURN_IF_ERROR(w.WriteBytes(f::kRanker, *model));
    }
  }
  manifest.Write(&w);

  StageTimer t_commit("write bundle");
  VITRINE_RETURN_IF_ERROR(w.Commit());
  t_commit.Done(out.string());
  return summary;
}

}  // namespace vitrine
