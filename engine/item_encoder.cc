#include "engine/item_encoder.h"

#include <algorithm>
#include <cmath>

#include "core/csv.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace vitrine {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* VisualKindName(int kind) {
  switch (kind) {
    case 1:
      return "precomputed";
    case 2:
      return "idx";
    case 3:
      return "image_files";
    default:
      return "";
  }
}

// The images of `rows` named by `source` (IDX or image files).
Result<ImageBatch> LoadImages(const VisualSource& source, const Catalog& rows, int canonical_size) {
  const auto n = static_cast<size_t>(rows.size());
  if (!source.images.empty()) return LoadIdxImages(source.images, n);
  const Column* col = rows.column(source.image_column);
  if (col == nullptr) {
    return Status::InvalidArgument(source.items.string() + ": no column '" + source.image_column +
                                   "' for --image-column");
  }
  std::vector<fs::path> paths;
  paths.reserve(n);
  const fs::path base = source.items.parent_path();
  for (int32_t i = 0; i < rows.size(); ++i) {
    const std::string value = rows.ValueString(*col, i);
    if (value.empty()) {
      return Status::InvalidArgument(source.items.string() + ": item '" + rows.ids.id(i) +
                                     "' has no image path in column '" + source.image_column +
                                     "' (every item of --image-column needs one)");
    }
    fs::path p = value;
    paths.push_back(p.is_absolute() ? p : base / p);
  }
  return LoadImageFiles(paths, canonical_size);
}

// The images as an IDX ubyte file: n x h x w (x c when c > 1), streamed
// from the batch (no second copy of the pixels).
Status WriteThumbnails(const ImageBatch& images, const fs::path& path) {
  std::vector<uint32_t> dims = {static_cast<uint32_t>(images.size()),
                                static_cast<uint32_t>(images.height),
                                static_cast<uint32_t>(images.width)};
  if (images.channels > 1) dims.push_back(static_cast<uint32_t>(images.channels));
  std::string header = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (const uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) header.push_back(static_cast<char>((d >> s) & 0xff));
  }
  AtomicFile f;
  VITRINE_RETURN_IF_ERROR(f.Open(path));
  VITRINE_RETURN_IF_ERROR(f.Append(header));
  VITRINE_RETURN_IF_ERROR(f.Append(std::string_view(
      reinterpret_cast<const char*>(images.pixels.data.data()), images.pixels.data.size())));
  return f.Commit();
}

Matrix Normalized(const Matrix& m) {
  Matrix out = m;
  NormalizeRows(&out);
  return out;
}

// The cf block keeps ALS's inner-product ranking: rows are divided by one
// global constant (the largest warm norm), not normalised one by one, because
// an item's factor norm carries its popularity and confidence. Cold rows (a
// projected direction) get a quantile of the warm norms (the median by
// default): neither buried nor dominant. Returns the norm given to cold rows
// (new items added later get the same).
float ScaleCfBlock(const std::vector<bool>& cold, double norm_quantile, Matrix* cf) {
  std::vector<float> norms(cf->rows);
  std::vector<float> warm;
  for (size_t i = 0; i < cf->rows; ++i) {
    norms[i] = static_cast<float>(std::sqrt(DotDouble(cf->row(i), cf->row(i), cf->cols)));
    if (!cold[i] && norms[i] > 0) warm.push_back(norms[i]);
  }
  if (warm.empty()) {
    // No warm row to scale by: bring every row within the unit ball.
    const float top = norms.empty() ? 0.0f : *std::max_element(norms.begin(), norms.end());
    if (top > 0) {
      for (float& x : cf->data) x /= top;
    }
    return 1.0f;
  }
  const auto at = static_cast<size_t>(
      std::clamp(norm_quantile, 0.0, 1.0) * static_cast<double>(warm.size() - 1) + 0.5);
  std::nth_element(warm.begin(), warm.begin() + static_cast<std::ptrdiff_t>(at), warm.end());
  const float cold_norm = warm[at];
  const float scale = *std::max_element(warm.begin(), warm.end());
  for (size_t i = 0; i < cf->rows; ++i) {
    if (norms[i] <= 0) continue;
    const float f = (cold[i] ? cold_norm / norms[i] : 1.0f) / scale;
    for (size_t j = 0; j < cf->cols; ++j) cf->at(i, j) *= f;
  }
  return cold_norm / scale;
}

}  // namespace

Result<Matrix> ColdStartFeatures(const Matrix& content, const Matrix& visual) {
  const Matrix content_n = Normalized(content);
  if (visual.rows == 0) return content_n;
  const Matrix visual_n = Normalized(visual);
  return ConcatColumns({&content_n, &visual_n});
}

Result<FusedVectors> FuseItemBlocks(ItemBlocks b, const std::map<std::string, float>& weights) {
  auto weight = [&](const char* name) {
    auto it = weights.find(name);
    return it == weights.end() ? 1.0f : it->second;
  };
  std::vector<Block> blocks;
  // cf keeps ALS norms and pop / new are priors in [0, 1]: none is normalised.
  if (b.cf.rows > 0) blocks.push_back({"cf", std::move(b.cf), weight("cf"), false});
  if (b.content.rows > 0) blocks.push_back({"content", std::move(b.content), weight("content")});
  if (b.visual.rows > 0) blocks.push_back({"visual", std::move(b.visual), weight("visual")});
  if (b.pop.rows > 0) blocks.push_back({"pop", std::move(b.pop), weight("pop"), false});
  if (b.newness.rows > 0) blocks.push_back({"new", std::move(b.newness), weight("new"), false});
  if (b.trend.rows > 0) blocks.push_back({"trend", std::move(b.trend), weight("trend"), false});
  return Fuse(std::move(blocks));
}

Result<Matrix> ItemEncoder::FitContent(
    const ContentEncoderOptions& options, const Catalog& catalog,
    const std::function<void(int64_t done, int64_t total)>& on_progress) {
  content_ = ContentEncoder(options);
  return content_.Fit(catalog, on_progress);
}

Result<Matrix> ItemEncoder::FitVisual(const VisualEncoderOptions& options,
                                      const VisualSource& source, const Catalog& catalog,
                                      const std::function<void(size_t done)>& on_progress,
                                      const fs::path& thumbnails) {
  const auto n = static_cast<size_t>(catalog.size());
  if (!source.visual.empty()) {
    visual_source_ = kPrecomputed;
    visual_path_ = source.visual.filename().string();
    return LoadPrecomputedVectors(source.visual, n);
  }
  VITRINE_ASSIGN_OR_RETURN(ImageBatch images, LoadImages(source, catalog, options.canonical_size));
  visual_source_ = source.images.empty() ? kImageFiles : kIdx;
  image_shape_.height = images.height;
  image_shape_.width = images.width;
  image_shape_.channels = images.channels;
  if (!thumbnails.empty()) VITRINE_RETURN_IF_ERROR(WriteThumbnails(images, thumbnails));
  visual_ = VisualEncoder(options);
  return visual_.FitTransform(images, on_progress);
}

Result<std::vector<bool>> ItemEncoder::FitColdStart(
    const ColdStartOptions& options, std::span<const int64_t> counts, const Matrix& content,
    const Matrix& visual, Matrix* cf, std::string* note,
    const std::function<void(int64_t, int64_t)>& on_progress) {
  const bool any_warm = std::any_of(counts.begin(), counts.end(),
                                    [&](int64_t c) { return c >= options.min_interactions; });
  has_cf_ = true;
  std::vector<bool> cold(cf->rows);
  for (size_t i = 0; i < cold.size(); ++i) cold[i] = counts[i] < options.min_interactions;
  if (!any_warm) {
    // A sparse new store: no item has enough interactions to learn the
    // content -> cf map from. Items keep their ALS factors (zero for items
    // nobody touched); content and images still carry them.
    *note = "no item has " + std::to_string(options.min_interactions) +
            " interactions (--cold-threshold): cold items keep their ALS factors, no projector "
            "for items added later";
    projector_.reset();
    cold_norm_ = ScaleCfBlock(std::vector<bool>(cf->rows, false), options.norm_quantile, cf);
    return cold;
  }
  VITRINE_ASSIGN_OR_RETURN(Matrix features, ColdStartFeatures(content, visual));
  ColdStartProjector projector(options);
  VITRINE_ASSIGN_OR_RETURN(cold,
                           FillColdRows(features, counts, options, cf, &projector, on_progress));
  projector_ = std::move(projector);
  cold_norm_ = ScaleCfBlock(cold, options.norm_quantile, cf);
  return cold;
}

Status ItemEncoder::Save(BundleWriter* w, BundleManifest* m) const {
  namespace f = bundle_file;
  VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kContentProjection, content_.projection()));
  m->content_encoder = content_.ToJson();
  if (visual_source_ == kPrecomputed) {
    m->visual_encoder = {{"source", VisualKindName(visual_source_)}, {"path", visual_path_}};
  } else if (visual_source_ != kNoVisual) {
    VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kVisualMean, visual_.mean()));
    VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kVisualComponents, visual_.components()));
    VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kVisualEigenvalues, visual_.eigenvalues()));
    m->visual_encoder = {{"source", VisualKindName(visual_source_)},
                         {"dim", visual_.components().cols},
                         {"image_height", image_shape_.height},
                         {"image_width", image_shape_.width},
                         {"channels", image_shape_.channels},
                         {"options", VisualOptionsToJson(visual_.options())}};
  }
  if (projector_) {
    VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kColdStartWeights, projector_->weights()));
    m->cold_start = projector_->ToJson();
  } else if (has_cf_) {
    // Without a projector the section still records the cold rows' norm. A
    // build saves before it lays out the blocks, so the manifest cannot
    // tell yet whether there is a cf block: the encoder knows.
    m->cold_start = {{"projector", false}};
  }
  m->cold_cf_row_norm = cold_norm_;
  return Status::OK();
}

Result<ItemEncoder> ItemEncoder::Load(const Bundle& b, const BundleManifest& m) {
  namespace f = bundle_file;
  ItemEncoder enc;
  VITRINE_ASSIGN_OR_RETURN(Matrix projection, b.ReadMatrix(f::kContentProjection));
  VITRINE_ASSIGN_OR_RETURN(enc.content_,
                           ContentEncoder::FromJson(m.content_encoder, std::move(projection)));
  if (m.has_block("visual")) {
    const json* source_value = m.visual_encoder.is_object() && m.visual_encoder.contains("source")
                                   ? &m.visual_encoder["source"]
                                   : nullptr;
    const std::string source = source_value != nullptr && source_value->is_string()
                                   ? source_value->get<std::string>()
                                   : std::string();
    if (source == "precomputed") {
      enc.visual_source_ = kPrecomputed;
    } else if (source == "idx" || source == "image_files") {
      enc.visual_source_ = source == "idx" ? kIdx : kImageFiles;
      VITRINE_ASSIGN_OR_RETURN(VisualEncoderOptions opts,
                               VisualOptionsFromJson(m.visual_encoder.value("options", json())));
      VITRINE_ASSIGN_OR_RETURN(Matrix mean, b.ReadMatrix(f::kVisualMean));
      VITRINE_ASSIGN_OR_RETURN(Matrix comp, b.ReadMatrix(f::kVisualComponents));
      VITRINE_ASSIGN_OR_RETURN(Matrix eig, b.ReadMatrix(f::kVisualEigenvalues));
      VITRINE_ASSIGN_OR_RETURN(
          enc.visual_,
          VisualEncoder::FromParameters(opts, std::move(mean), std::move(comp), std::move(eig)));
    } else {
      return Status::Corruption((b.dir() / kBundleManifestName).string() +
                                ": 'visual_encoder.source': expected \"precomputed\", \"idx\" "
                                "or \"image_files\"");
    }
  }
  if (m.has_block("cf") && b.Has(f::kColdStartWeights)) {
    VITRINE_ASSIGN_OR_RETURN(Matrix weights, b.ReadMatrix(f::kColdStartWeights));
    VITRINE_ASSIGN_OR_RETURN(ColdStartProjector p,
                             ColdStartProjector::FromJson(m.cold_start, std::move(weights)));
    enc.projector_ = std::move(p);
  }
  enc.has_cf_ = m.has_block("cf");
  enc.cold_norm_ = m.cold_cf_row_norm;
  return enc;
}

Result<Matrix> ItemEncoder::EncodeNew(const Catalog& rows, const VisualSource& source,
                                      const std::vector<BlockLayout>& layout) const {
  const auto n = static_cast<size_t>(rows.size());
  auto find = [&](const char* name) -> const BlockLayout* {
    for (const auto& b : layout) {
      if (b.name == name) return &b;
    }
    return nullptr;
  };
  ItemBlocks blocks;
  VITRINE_ASSIGN_OR_RETURN(blocks.content, content_.Transform(rows));

  if (visual_source_ == kPrecomputed) {
    if (source.visual.empty() || !source.images.empty() || !source.image_column.empty()) {
      return Status::InvalidArgument(
          source.items.string() +
          ": the bundle's visual block holds precomputed vectors: give --visual "
          "(the new items' vectors, in row order)");
    }
    VITRINE_ASSIGN_OR_RETURN(blocks.visual, LoadPrecomputedVectors(source.visual, n));
  } else if (visual_source_ != kNoVisual) {
    if (!source.visual.empty() || source.images.empty() == source.image_column.empty()) {
      return Status::InvalidArgument(
          source.items.string() +
          ": the bundle's visual block was encoded from images: give --images (IDX, in "
          "row order) or --image-column (image paths)");
    }
    VITRINE_ASSIGN_OR_RETURN(ImageBatch images,
                             LoadImages(source, rows, visual_.options().canonical_size));
    VITRINE_ASSIGN_OR_RETURN(Matrix desc, visual_.Describe(images));
    VITRINE_ASSIGN_OR_RETURN(blocks.visual, visual_.Transform(desc));
  } else if (!source.empty()) {
    return Status::InvalidArgument(source.items.string() +
                                   ": the bundle has no visual block; drop --images / --visual "
                                   "/ --image-column");
  }
  if (const BlockLayout* v = find("visual"); v != nullptr && blocks.visual.cols != v->dim) {
    return Status::InvalidArgument(
        (source.visual.empty() ? source.images : source.visual).string() + ": " +
        std::to_string(blocks.visual.cols) + " visual dimensions, the bundle's visual block has " +
        std::to_string(v->dim));
  }

  if (const BlockLayout* cf = find("cf")) {
    if (projector_) {
      // New items are cold: a projected direction at the cold rows' norm.
      VITRINE_ASSIGN_OR_RETURN(Matrix features, ColdStartFeatures(blocks.content, blocks.visual));
      VITRINE_ASSIGN_OR_RETURN(blocks.cf, projector_->Predict(features));
      NormalizeRows(&blocks.cf);
      for (float& x : blocks.cf.data) x *= cold_norm_;
    } else {
      blocks.cf = Matrix(n, cf->dim, 0.0f);  // no projector: no cf signal until a rebuild
    }
  }
  if (find("pop")) blocks.pop = Matrix(n, 1, 0.0f);      // no interactions yet
  if (find("new")) blocks.newness = Matrix(n, 1, 1.0f);  // arriving now: the newest items
  if (find("trend")) blocks.trend = Matrix(n, 1, 0.0f);  // no events yet: not trending
  std::map<std::string, float> weights;
  for (const auto& b : layout) weights[b.name] = b.weight;
  VITRINE_ASSIGN_OR_RETURN(FusedVectors fused, FuseItemBlocks(std::move(blocks), weights));
  if (fused.layout.size() != layout.size()) {
    return Status::Corruption("items add: the bundle's blocks and the encoders disagree");
  }
  for (size_t i = 0; i < layout.size(); ++i) {
    if (fused.layout[i].name != layout[i].name || fused.layout[i].dim != layout[i].dim) {
      return Status::Corruption("items add: block '" + layout[i].name + "' has " +
                                std::to_string(layout[i].dim) + " dims but its encoder gives " +
                                std::to_string(fused.layout[i].dim));
    }
  }
  return std::move(fused.vectors);
}

nlohmann::json VisualOptionsToJson(const VisualEncoderOptions& o) {
  const char* norm = o.hog_norm == VisualEncoderOptions::HogNorm::kBlock  ? "block"
                     : o.hog_norm == VisualEncoderOptions::HogNorm::kCell ? "cell"
                                                                          : "none";
  return {{"canonical_size", o.canonical_size},
          {"hog_grids", o.hog_grids},
          {"orientation_bins", o.orientation_bins},
          {"signed_orientation", o.signed_orientation},
          {"hog_power", o.hog_power},
          {"hog_norm", norm},
          {"hog_weight", o.hog_weight},
          {"pixel_grid", o.pixel_grid},
          {"pixel_weight", o.pixel_weight},
          {"intensity_bins", o.intensity_bins},
          {"intensity_weight", o.intensity_weight},
          {"hue_bins", o.hue_bins},
          {"saturation_bins", o.saturation_bins},
          {"value_bins", o.value_bins},
          {"colour_weight", o.colour_weight},
          {"dim", o.dim},
          {"whiten_power", o.whiten_power},
          {"whiten_epsilon", o.whiten_epsilon},
          {"l2_normalize", o.l2_normalize},
          {"exact_eigen_max_dim", o.exact_eigen_max_dim}};
}

Result<VisualEncoderOptions> VisualOptionsFromJson(const nlohmann::json& j) {
  VisualEncoderOptions o;
  if (j.is_null()) return o;
  if (!j.is_object()) return Status::Corruption("visual_encoder options: expected a JSON object");
  try {
    o.canonical_size = JsonIntegerOr(j, "canonical_size", o.canonical_size);
    if (j.contains("hog_grids")) o.hog_grids = JsonIntegers<int>(j["hog_grids"], "hog_grids");
    o.orientation_bins = JsonIntegerOr(j, "orientation_bins", o.orientation_bins);
    o.signed_orientation = j.value("signed_orientation", o.signed_orientation);
    o.hog_power = j.value("hog_power", o.hog_power);
    const std::string norm = j.value("hog_norm", std::string("block"));
    if (norm == "block") {
      o.hog_norm = VisualEncoderOptions::HogNorm::kBlock;
    } else if (norm == "cell") {
      o.hog_norm = VisualEncoderOptions::HogNorm::kCell;
    } else if (norm == "none") {
      o.hog_norm = VisualEncoderOptions::HogNorm::kNone;
    } else {
      return Status::Corruption("visual_encoder options: hog_norm '" + norm +
                                "' (expected block, cell or none)");
    }
    o.hog_weight = j.value("hog_weight", o.hog_weight);
    o.pixel_grid = JsonIntegerOr(j, "pixel_grid", o.pixel_grid);
    o.pixel_weight = j.value("pixel_weight", o.pixel_weight);
    o.intensity_bins = JsonIntegerOr(j, "intensity_bins", o.intensity_bins);
    o.intensity_weight = j.value("intensity_weight", o.intensity_weight);
    o.hue_bins = JsonIntegerOr(j, "hue_bins", o.hue_bins);
    o.saturation_bins = JsonIntegerOr(j, "saturation_bins", o.saturation_bins);
    o.value_bins = JsonIntegerOr(j, "value_bins", o.value_bins);
    o.colour_weight = j.value("colour_weight", o.colour_weight);
    o.dim = JsonIntegerOr(j, "dim", o.dim);
    o.whiten_power = j.value("whiten_power", o.whiten_power);
    o.whiten_epsilon = j.value("whiten_epsilon", o.whiten_epsilon);
    o.l2_normalize = j.value("l2_normalize", o.l2_normalize);
    o.exact_eigen_max_dim = JsonIntegerOr(j, "exact_eigen_max_dim", o.exact_eigen_max_dim);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("visual_encoder options: ") + e.what());
  }
  return o;
}

}  // namespace vitrine
