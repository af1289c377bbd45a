#include "engine/builder.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/bundle.h"
#include "core/csv.h"
#include "core/progress.h"
#include "embed/fusion.h"
#include "engine/catalog_update.h"

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

Matrix ColumnVector(const std::vector<float>& v) {
  Matrix m(v.size(), 1);
  std::copy(v.begin(), v.end(), m.data.begin());
  return m;
}

Result<Matrix> VisualBlock(const BuildOptions& o, const Catalog& catalog, BundleWriter& w) {
  const auto n = static_cast<size_t>(catalog.size());
  if (!o.visual.empty()) {
    VITRINE_ASSIGN_OR_RETURN(Matrix v, LoadPrecomputedVectors(o.visual, n));
    w.manifest()["visual_encoder"] = {{"source", "precomputed"},
                                      {"path", o.visual.filename().string()}};
    return v;
  }
  ImageBatch images;
  if (!o.images.empty()) {
    VITRINE_ASSIGN_OR_RETURN(images, LoadIdxImages(o.images, n));
  } else {
    const Column* col = catalog.column(o.image_column);
    if (col == nullptr) {
      return Status::InvalidArgument(o.items.string() + ": no column '" + o.image_column +
                                     "' for --image-column");
    }
    std::vector<fs::path> paths;
    const fs::path base = o.items.parent_path();
    for (int32_t i = 0; i < catalog.size(); ++i) {
      fs::path p = catalog.ValueString(*col, i);
      paths.push_back(p.is_absolute() ? p : base / p);
    }
    VITRINE_ASSIGN_OR_RETURN(images, LoadImageFiles(paths));
  }
  VisualEncoder encoder(o.visual_encoder);
  VITRINE_ASSIGN_OR_RETURN(Matrix v, encoder.FitTransform(images));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("visual/mean.npy", encoder.mean()));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("visual/components.npy", encoder.components()));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("visual/eigenvalues.npy", encoder.eigenvalues()));
  w.manifest()["visual_encoder"] = {{"source", o.images.empty() ? "image_files" : "idx"},
                                    {"dim", v.cols},
                                    {"image_height", images.height},
                                    {"image_width", images.width},
                                    {"channels", images.channels},
                                    // For `vitrine items add` (engine/catalog_update.h).
                                    {"options", VisualOptionsToJson(o.visual_encoder)}};
  return v;
}

// The cf block keeps ALS's inner-product ranking: rows are divided by one
// global constant (the largest warm norm), not normalised one by one, because
// an item's factor norm carries its popularity and confidence. Cold rows (a
// projected direction) get the median warm norm: neither buried nor dominant.
// Returns the norm given to cold rows (new items added later get the same).
float ScaleCfBlock(const std::vector<bool>& cold, Matrix* cf) {
  std::vector<float> norms(cf->rows);
  std::vector<float> warm;
  for (size_t i = 0; i < cf->rows; ++i) {
    double s = 0;
    for (size_t j = 0; j < cf->cols; ++j) s += static_cast<double>(cf->at(i, j)) * cf->at(i, j);
    norms[i] = static_cast<float>(std::sqrt(s));
    if (!cold[i] && norms[i] > 0) warm.push_back(norms[i]);
  }
  if (warm.empty()) return 1.0f;
  std::nth_element(warm.begin(), warm.begin() + static_cast<std::ptrdiff_t>(warm.size() / 2),
                   warm.end());
  const float median = warm[warm.size() / 2];
  const float scale = *std::max_element(warm.begin(), warm.end());
  for (size_t i = 0; i < cf->rows; ++i) {
    if (norms[i] <= 0) continue;
    const float f = (cold[i] ? median / norms[i] : 1.0f) / scale;
    for (size_t j = 0; j < cf->cols; ++j) cf->at(i, j) *= f;
  }
  return median / scale;
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
        if (std::isfinite(col->numbers[i])) arrival[i] = static_cast<int64_t>(col->numbers[i]);
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

Result<BuildSummary> BuildBundle(const BuildOptions& o, const fs::path& out) {
  const auto t0 = std::chrono::steady_clock::now();
  BuildSummary summary;
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Create(out));

  // 1. Catalog.
  StageTimer t_items("read items");
  VITRINE_ASSIGN_OR_RETURN(Catalog catalog, Catalog::ReadCsv(o.items, o.catalog));
  if (catalog.size() == 0) {
    return Status::InvalidArgument(o.items.string() + ": no items (expected a header and rows)");
  }
  summary.items = catalog.size();
  t_items.Done(std::to_string(catalog.size()) + " items, " +
               std::to_string(catalog.columns.size()) + " attribute columns");
  if (catalog.skipped_lines > 0) {
    LogInfo("%s: skipped %lld bad lines", o.items.c_str(),
            static_cast<long long>(catalog.skipped_lines));
  }

  // 2. Interactions (optional).
  Interactions inter;
  bool have_cf = false;
  if (!o.interactions.empty()) {
    StageTimer t("read interactions");
    VITRINE_ASSIGN_OR_RETURN(
        inter, Interactions::ReadCsv(o.interactions, catalog.ids, o.interactions_read));
    t.Done(std::to_string(inter.raw_events) + " events, " + std::to_string(inter.users.size()) +
           " users, " + std::to_string(inter.matrix.nnz()) + " user-item pairs");
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
  summary.users = inter.users.size();
  // Arrival dates now, so that a bad --arrival-column fails before the
  // expensive stages.
  nlohmann::json recency_info;
  VITRINE_ASSIGN_OR_RETURN(
      std::vector<float> newness,
      ComputeNewness(o.recency, catalog, have_cf ? &inter : nullptr, &recency_info));
  summary.interactions = inter.matrix.nnz();
  summary.unknown_item_events = inter.unknown_item_events;

  // 3. Content block.
  StageTimer t_content("content encoder");
  ContentEncoder content(o.content);
  VITRINE_ASSIGN_OR_RETURN(Matrix content_block, content.Fit(catalog));
  t_content.Done(std::to_string(content.feature_count()) + " features -> " +
                 std::to_string(content_block.cols) + " dims");
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("content/projection.npy", content.projection()));
  w.manifest()["content_encoder"] = content.ToJson();

  // 4. Visual block (optional).
  Matrix visual_block;
  const bool have_visual = !o.images.empty() || !o.visual.empty() || !o.image_column.empty();
  if (have_visual) {
    StageTimer t("visual encoder");
    VITRINE_ASSIGN_OR_RETURN(visual_block, VisualBlock(o, catalog, w));
    t.Done(std::to_string(visual_block.rows) + " x " + std::to_string(visual_block.cols));
  }

  // 5. Collaborative block, with cold items projected from content + visual.
  Matrix cf_block;
  std::vector<int64_t> cold_flags(static_cast<size_t>(catalog.size()), 0);
  std::vector<float> popularity(static_cast<size_t>(catalog.size()), 0.0f);
  if (have_cf) {
    for (int32_t c : inter.matrix.indices) popularity[static_cast<size_t>(c)] += 1.0f;
    StageTimer t("implicit ALS");
    ImplicitALS als(o.als);
    VITRINE_RETURN_IF_ERROR(als.fit(inter.matrix).WithContext(o.interactions.string()));
    t.Done(std::to_string(o.als.factors) + " factors, " + std::to_string(o.als.iterations) +
           " iterations");
    cf_block = als.item_factors();
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cf/item_factors.npy", als.item_factors()));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cf/user_factors.npy", als.user_factors()));
    VITRINE_RETURN_IF_ERROR(w.WriteIds("user_ids.txt", inter.users.ids()));
    w.manifest()["als"] = {{"factors", o.als.factors},   {"regularization", o.als.regularization},
                           {"alpha", o.als.alpha},       {"iterations", o.als.iterations},
                           {"cg_steps", o.als.cg_steps}, {"seed", o.als.seed}};

    StageTimer t_cold("cold-start projector");
    Matrix content_n = content_block;
    NormalizeRows(&content_n);
    std::vector<const Matrix*> inputs = {&content_n};
    Matrix visual_n;
    if (have_visual) {
      visual_n = visual_block;
      NormalizeRows(&visual_n);
      inputs.push_back(&visual_n);
    }
    VITRINE_ASSIGN_OR_RETURN(Matrix features, ConcatColumns(inputs));
    std::vector<int64_t> counts(popularity.begin(), popularity.end());
    ColdStartProjector projector(o.cold_start);
    VITRINE_ASSIGN_OR_RETURN(std::vector<bool> cold,
                             FillColdRows(features, counts, o.cold_start, &cf_block, &projector));
    for (size_t i = 0; i < cold.size(); ++i) {
      cold_flags[i] = cold[i] ? 1 : 0;
      summary.cold_items += cold[i] ? 1 : 0;
    }
    const float cold_norm = ScaleCfBlock(cold, &cf_block);
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cold_start/weights.npy", projector.weights()));
    w.manifest()["cold_start"] = projector.ToJson();
    w.manifest()["cold_start"]["cf_row_norm"] = cold_norm;
    t_cold.Done(std::to_string(summary.cold_items) + " cold items (fewer than " +
                std::to_string(o.cold_start.min_interactions) + " interactions)");

    // Each user's history, for filtering already-seen items and for the
    // content/visual part of a user's query vector.
    MatrixI64 indptr(inter.matrix.indptr.size(), 1);
    std::copy(inter.matrix.indptr.begin(), inter.matrix.indptr.end(), indptr.data.begin());
    MatrixI64 indices(inter.matrix.indices.size(), 1);
    std::copy(inter.matrix.indices.begin(), inter.matrix.indices.end(), indices.data.begin());
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("history/indptr.npy", indptr));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("history/indices.npy", indices));
    VITRINE_RETURN_IF_ERROR(
        w.WriteMatrix("history/weights.npy", ColumnVector(inter.matrix.values)));
  }

  // 6. Fusion.
  std::vector<Block> blocks;
  auto weight = [&](const std::string& name) {
    auto it = o.block_weights.find(name);
    return it == o.block_weights.end() ? 1.0f : it->second;
  };
  if (have_cf) blocks.push_back({"cf", std::move(cf_block), weight("cf"), false});
  blocks.push_back({"content", std::move(content_block), weight("content")});
  if (have_visual) blocks.push_back({"visual", std::move(visual_block), weight("visual")});
  if (have_cf) {
    // The popularity prior as a one-dimensional block: log(1 + interactions)
    // scaled to [0, 1]. Queries hold 1 there, so the inner product adds
    // w_pop * prior and the ANN search already favours popular items.
    Matrix prior(popularity.size(), 1);
    const float top = *std::max_element(popularity.begin(), popularity.end());
    for (size_t i = 0; i < popularity.size(); ++i) {
      prior.data[i] = top > 0 ? std::log1p(popularity[i]) / std::log1p(top) : 0.0f;
    }
    blocks.push_back({"pop", std::move(prior), weight("pop"), false});
  }
  if (!newness.empty()) {
    // The new-arrival prior, the same way: queries hold 1, the score adds
    // w_new * newness.
    Matrix m(newness.size(), 1);
    m.data = std::move(newness);
    blocks.push_back({"new", std::move(m), weight("new"), false});
    w.manifest()["recency"] = std::move(recency_info);
  }
  VITRINE_ASSIGN_OR_RETURN(FusedVectors fused, Fuse(std::move(blocks)));
  summary.dim = fused.dim();
  for (const auto& b : fused.layout) w.AddBlock(b.name, static_cast<int64_t>(b.dim), b.weight);

  // 7. Index.
  auto vectors = std::make_shared<const Matrix>(std::move(fused.vectors));
  std::unique_ptr<VectorIndex> index;
  nlohmann::json index_section = {{"metric", "inner_product"},
                                  {"ef_construction", o.index.hnsw_ef_construction},
                                  {"seed", o.index.seed}};
  if (o.autotune) {
    StageTimer t("autotune (target recall@10 " + std::to_string(o.autotune_recall).substr(0, 4) +
                 ")");
    AutotuneOptions ao;
    ao.metric = Metric::kInnerProduct;
    ao.target_recall = o.autotune_recall;
    ao.seed = o.index.seed;
    VITRINE_ASSIGN_OR_RETURN(AutotuneResult tuned, Autotune(vectors, ao));
    index = std::move(tuned.index);
    index_section["spec"] = tuned.spec;
    index_section["ef_construction"] = tuned.index_options.hnsw_ef_construction;
    index_section["search"] = {{"ef_search", tuned.params.ef_search},
                               {"nprobe", tuned.params.nprobe},
                               {"refine_k_factor", tuned.params.refine_k_factor}};
    index_section["autotune"] = AutotuneToJson(tuned, ao);
    t.Done(tuned.spec + " ef " + std::to_string(tuned.params.ef_search) + " nprobe " +
           std::to_string(tuned.params.nprobe) + ": recall " +
           std::to_string(tuned.chosen.recall).substr(0, 5) + ", " +
           std::to_string(static_cast<int>(tuned.chosen.qps)) + " QPS" +
           (tuned.met_target ? "" : " (target not met: most accurate point)"));
  } else {
    StageTimer t_index("index " + o.index.spec);
    VITRINE_ASSIGN_OR_RETURN(index, VectorIndex::Build(vectors, o.index));
    index_section["spec"] = o.index.spec;
    t_index.Done(index->Describe() + ", " +
                 std::to_string(static_cast<int>(index->BytesPerVector())) + " bytes/vector");
  }
  VITRINE_RETURN_IF_ERROR(index->Save(w.path("index.faiss")));
  index_section["describe"] = index->Describe();
  index_section["bytes_per_vector"] = index->BytesPerVector();
  w.manifest()["index"] = index_section;

  // 8. Catalog, ids and vectors.
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("vectors.npy", *vectors));
  VITRINE_RETURN_IF_ERROR(w.WriteIds("item_ids.txt", catalog.ids.ids()));
  VITRINE_RETURN_IF_ERROR(w.WriteBytes("items.csv", CatalogCsv(catalog, o.catalog.id_column)));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("popularity.npy", ColumnVector(popularity)));
  MatrixI64 cold_m(cold_flags.size(), 1);
  cold_m.data = cold_flags;
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cold.npy", cold_m));
  w.manifest()["catalog"] = {{"id_column", o.catalog.id_column}, {"schema", SchemaString(catalog)}};
  w.manifest()["counts"] = {{"items", summary.items},
                            {"users", summary.users},
                            {"interactions", summary.interactions},
                            {"cold_items", summary.cold_items},
                            {"dim", summary.dim}};
  w.manifest()["params"] = o.params;
  nlohmann::json sim = nlohmann::json::object();
  for (const auto& b : fused.layout) {
    auto it = o.similar_weights.find(b.name);
    sim[b.name] = it == o.similar_weights.end() ? b.weight : it->second;
  }
  w.manifest()["similar_weights"] = sim;

  StageTimer t_commit("write bundle");
  VITRINE_RETURN_IF_ERROR(w.Commit());
  t_commit.Done(out.string());
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace vitrine
