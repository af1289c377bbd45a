#include "engine/catalog_update.h"

#include <faiss/Index.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "core/catalog.h"
#include "core/csv.h"
#include "embed/cold_start.h"
#include "embed/content_encoder.h"
#include "embed/fusion.h"
#include "index/vector_index.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

// ---- bundle helpers -------------------------------------------------------

struct CatalogInfo {
  std::string id_column;
  CatalogReadOptions read;
};

Result<CatalogInfo> CatalogInfoOf(const Bundle& b) {
  const auto& m = b.manifest();
  if (!m.contains("catalog") || !m.contains("index")) {
    return Status::Corruption((b.dir() / kBundleManifestName).string() +
                              ": no 'catalog' or 'index' section: not a vitrine build bundle");
  }
  CatalogInfo info;
  info.id_column = m["catalog"].value("id_column", "item_id");
  info.read.id_column = info.id_column;
  VITRINE_ASSIGN_OR_RETURN(info.read.schema, Schema::Parse(m["catalog"].value("schema", "")));
  return info;
}

Result<Catalog> ReadBundleCatalog(const Bundle& b, const CatalogInfo& info) {
  VITRINE_RETURN_IF_ERROR(b.VerifyFile("items.csv"));
  return Catalog::ReadCsv(b.path("items.csv"), info.read);
}

// Rows `rows` of `catalog` in the bundle's normalised CSV form (the form
// BuildBundle writes), with or without the header line.
std::string CatalogRowsCsv(const Catalog& catalog, const std::string& id_column,
                           const std::vector<int32_t>& rows, bool header) {
  std::string out;
  std::vector<std::string> fields;
  std::vector<std::string_view> views;
  auto flush = [&] {
    views.assign(fields.begin(), fields.end());
    AppendCsvRow(out, views);
  };
  if (header) {
    fields.push_back(id_column);
    for (const auto& c : catalog.columns) fields.push_back(c.name);
    flush();
  }
  for (int32_t i : rows) {
    fields.clear();
    fields.push_back(catalog.ids.id(i));
    for (const auto& c : catalog.columns) fields.push_back(catalog.ValueString(c, i));
    flush();
  }
  return out;
}

std::vector<int32_t> AllRows(int32_t n) {
  std::vector<int32_t> r(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = i;
  return r;
}

const BundleBlock* FindBlock(const Bundle& b, std::string_view name) {
  for (const auto& blk : b.blocks())
    if (blk.name == name) return &blk;
  return nullptr;
}

// Appends the rows of `extra` to `m` (same column count, checked by callers).
template <typename T>
void AppendRows(DenseMatrix<T>* m, const DenseMatrix<T>& extra) {
  m->data.insert(m->data.end(), extra.data.begin(), extra.data.end());
  m->rows += extra.rows;
}

// Rows `keep` of `m`.
template <typename T>
DenseMatrix<T> SelectRows(const DenseMatrix<T>& m, const std::vector<int32_t>& keep) {
  DenseMatrix<T> out(keep.size(), m.cols);
  for (size_t i = 0; i < keep.size(); ++i)
    std::copy_n(m.row(static_cast<size_t>(keep[i])), m.cols, out.row(i));
  return out;
}

// The FAISS layer that decides how ids behave: IVF keeps explicit ids (so it
// can remove vectors and needs explicit ids for adds after a removal).
const faiss::IndexIVF* IvfCore(const faiss::Index* index) {
  if (auto* p = dynamic_cast<const faiss::IndexPreTransform*>(index)) index = p->index;
  return dynamic_cast<const faiss::IndexIVF*>(index);
}

Result<std::unique_ptr<faiss::Index>> ReadFaiss(const Bundle& b) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, b.ReadBytes("index.faiss"));
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin(), bytes.end());
  try {
    return std::unique_ptr<faiss::Index>(faiss::read_index(&reader));
  } catch (const std::exception& e) {
    return Status::Corruption(b.path("index.faiss").string() +
                              ": not a readable FAISS index: " + e.what());
  }
}

Status WriteFaiss(const faiss::Index& index, BundleWriter& w) {
  faiss::VectorIOWriter writer;
  try {
    faiss::write_index(&index, &writer);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss::write_index: ") + e.what());
  }
  w.manifest()["index"]["bytes_per_vector"] =
      static_cast<double>(writer.data.size()) / std::max<double>(1.0, index.ntotal);
  return w.WriteBytes(
      "index.faiss",
      std::string_view(reinterpret_cast<const char*>(writer.data.data()), writer.data.size()));
}

Status WriteFaiss(const VectorIndex& index, BundleWriter& w) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, index.Serialize());
  w.manifest()["index"]["bytes_per_vector"] =
      static_cast<double>(bytes.size()) / std::max<double>(1.0, static_cast<double>(index.size()));
  return w.WriteBytes("index.faiss", bytes);
}

Status WriteTombstones(BundleWriter& w, const std::vector<int64_t>& deleted) {
  if (deleted.empty()) {
    w.manifest()["counts"].erase("deleted");
    return w.Remove(kTombstoneFile);
  }
  MatrixI64 m(deleted.size(), 1);
  m.data = deleted;
  w.manifest()["counts"]["deleted"] = static_cast<int64_t>(deleted.size());
  return w.WriteMatrix(kTombstoneFile, m);
}

// Item ids -> row indices; an unknown id is NotFound naming it.
Result<std::vector<int32_t>> ResolveIds(const std::vector<std::string>& bundle_ids,
                                        const std::vector<std::string>& ids,
                                        const fs::path& bundle) {
  if (ids.empty()) return Status::InvalidArgument("no item ids given");
  std::unordered_map<std::string_view, int32_t> index;
  index.reserve(bundle_ids.size());
  for (size_t i = 0; i < bundle_ids.size(); ++i)
    index.emplace(bundle_ids[i], static_cast<int32_t>(i));
  std::vector<int32_t> rows;
  for (const auto& id : ids) {
    auto it = index.find(id);
    if (it == index.end()) {
      return Status::NotFound(bundle.string() + ": unknown item '" + id + "'");
    }
    rows.push_back(it->second);
  }
  return rows;
}

// ---- add ------------------------------------------------------------------

// Checks the new file's header against the catalog and that no id is
// already in the bundle (naming the line).
Status CheckNewRows(const fs::path& path, const CatalogInfo& info, const Catalog& catalog,
                    const std::vector<std::string>& bundle_ids,
                    const std::vector<int64_t>& deleted) {
  VITRINE_ASSIGN_OR_RETURN(auto csv, CsvReader::Open(path));
  VITRINE_ASSIGN_OR_RETURN(int id_col, csv->ColumnIndex(info.id_column));
  for (const auto& c : catalog.columns) VITRINE_RETURN_IF_ERROR(csv->ColumnIndex(c.name).status());
  for (const auto& h : csv->header()) {
    if (h != info.id_column && catalog.column(h) == nullptr) {
      return Status::InvalidArgument(path.string() + ": column '" + h +
                                     "' is not in the catalog (new rows must have exactly "
                                     "the catalog's columns)");
    }
  }
  std::unordered_map<std::string_view, int64_t> known;
  for (size_t i = 0; i < bundle_ids.size(); ++i) known.emplace(bundle_ids[i], i);
  const std::unordered_set<int64_t> removed(deleted.begin(), deleted.end());
  while (csv->Next()) {
    const std::string id(csv->field(id_col));
    auto it = known.find(id);
    if (it != known.end()) {
      return Status::InvalidArgument(
          csv->Where() + ": item id '" + id + "' is already in the bundle" +
          (removed.count(it->second) ? " (removed; run 'vitrine compact --force' before "
                                       "adding it again)"
                                     : ""));
    }
  }
  return csv->status();
}

Result<Matrix> NewVisualBlock(const Bundle& b, const BundleBlock& block, const AddItemsOptions& o,
                              size_t n) {
  const nlohmann::json ve = b.manifest().value("visual_encoder", nlohmann::json::object());
  const std::string source = ve.value("source", "");
  const int inputs = !o.images.empty() + !o.visual.empty() + !o.image_column.empty();
  Matrix v;
  if (source == "precomputed") {
    if (o.visual.empty() || inputs != 1) {
      return Status::InvalidArgument(
          o.items.string() +
          ": the bundle's visual block holds precomputed vectors: give --visual "
          "(the new items' vectors, in row order)");
    }
    VITRINE_ASSIGN_OR_RETURN(v, LoadPrecomputedVectors(o.visual, n));
  } else {
    if (!o.visual.empty() || inputs != 1) {
      return Status::InvalidArgument(
          o.items.string() +
          ": the bundle's visual block was encoded from images: give --images (IDX, in "
          "row order) or --image-column (image paths)");
    }
    VITRINE_ASSIGN_OR_RETURN(VisualEncoderOptions opts,
                             VisualOptionsFromJson(ve.value("options", nlohmann::json())));
    ImageBatch images;
    if (!o.images.empty()) {
      VITRINE_ASSIGN_OR_RETURN(images, LoadIdxImages(o.images, n));
    } else {
      VITRINE_ASSIGN_OR_RETURN(auto csv, CsvReader::Open(o.items));
      VITRINE_ASSIGN_OR_RETURN(int col, csv->ColumnIndex(o.image_column));
      std::vector<fs::path> paths;
      while (csv->Next()) {
        fs::path p = std::string(csv->field(col));
        paths.push_back(p.is_absolute() ? p : o.items.parent_path() / p);
      }
      VITRINE_RETURN_IF_ERROR(csv->status());
      VITRINE_ASSIGN_OR_RETURN(images, LoadImageFiles(paths, opts.canonical_size));
    }
    VITRINE_ASSIGN_OR_RETURN(Matrix mean, b.ReadMatrix("visual/mean.npy"));
    VITRINE_ASSIGN_OR_RETURN(Matrix comp, b.ReadMatrix("visual/components.npy"));
    VITRINE_ASSIGN_OR_RETURN(Matrix eig, b.ReadMatrix("visual/eigenvalues.npy"));
    VITRINE_ASSIGN_OR_RETURN(
        VisualEncoder enc,
        VisualEncoder::FromParameters(opts, std::move(mean), std::move(comp), std::move(eig)));
    VITRINE_ASSIGN_OR_RETURN(Matrix desc, enc.Describe(images));
    VITRINE_ASSIGN_OR_RETURN(v, enc.Transform(desc));
  }
  if (static_cast<int64_t>(v.cols) != block.dim) {
    return Status::InvalidArgument((o.visual.empty() ? o.images : o.visual).string() + ": " +
                                   std::to_string(v.cols) + " visual dimensions, the bundle's " +
                                   "visual block has " + std::to_string(block.dim));
  }
  return v;
}

// The fused vectors of `catalog`'s rows, encoded with the bundle's stored
// encoders (see the header for the recipe).
Result<Matrix> EncodeNewItems(const Bundle& b, const Catalog& catalog, const AddItemsOptions& o) {
  const size_t n = static_cast<size_t>(catalog.size());
  VITRINE_ASSIGN_OR_RETURN(Matrix projection, b.ReadMatrix("content/projection.npy"));
  VITRINE_ASSIGN_OR_RETURN(
      ContentEncoder content,
      ContentEncoder::FromJson(b.manifest().value("content_encoder", nlohmann::json()),
                               std::move(projection)));
  VITRINE_ASSIGN_OR_RETURN(Matrix content_block, content.Transform(catalog));

  Matrix visual_block;
  const BundleBlock* visual = FindBlock(b, "visual");
  if (visual != nullptr) {
    VITRINE_ASSIGN_OR_RETURN(visual_block, NewVisualBlock(b, *visual, o, n));
  } else if (!o.images.empty() || !o.visual.empty() || !o.image_column.empty()) {
    return Status::InvalidArgument(b.dir().string() +
                                   ": the bundle has no visual block; drop --images / --visual "
                                   "/ --image-column");
  }

  Matrix cf_block;
  if (FindBlock(b, "cf") != nullptr) {
    // As BuildBundle fills cold rows: the projector maps [unit content |
    // unit visual] to the cf block.
    Matrix content_n = content_block;
    NormalizeRows(&content_n);
    std::vector<const Matrix*> inputs = {&content_n};
    Matrix visual_n;
    if (visual != nullptr) {
      visual_n = visual_block;
      NormalizeRows(&visual_n);
      inputs.push_back(&visual_n);
    }
    VITRINE_ASSIGN_OR_RETURN(Matrix features, ConcatColumns(inputs));
    VITRINE_ASSIGN_OR_RETURN(Matrix weights, b.ReadMatrix("cold_start/weights.npy"));
    VITRINE_ASSIGN_OR_RETURN(
        ColdStartProjector projector,
        ColdStartProjector::FromJson(b.manifest().value("cold_start", nlohmann::json()),
                                     std::move(weights)));
    VITRINE_ASSIGN_OR_RETURN(cf_block, projector.Predict(features));
    // New items are cold: a projected direction at the norm BuildBundle gave
    // its cold rows (the cf block is not row-normalised; see builder.cc).
    NormalizeRows(&cf_block);
    const float norm =
        b.manifest().value("cold_start", nlohmann::json::object()).value("cf_row_norm", 1.0f);
    for (float& x : cf_block.data) x *= norm;
  }
  Matrix prior(n, 1, 0.0f);    // no interactions yet
  Matrix newness(n, 1, 1.0f);  // arriving now: the newest items of the bundle

  std::vector<Block> blocks;
  for (const auto& blk : b.blocks()) {
    Matrix* m = blk.name == "cf"        ? &cf_block
                : blk.name == "content" ? &content_block
                : blk.name == "visual"  ? &visual_block
                : blk.name == "pop"     ? &prior
                : blk.name == "new"     ? &newness
                                        : nullptr;
    if (m == nullptr) {
      return Status::Unsupported(b.dir().string() + ": cannot encode new items for block '" +
                                 blk.name + "'");
    }
    if (static_cast<int64_t>(m->cols) != blk.dim) {
      return Status::Corruption(b.dir().string() + ": block '" + blk.name + "' has " +
                                std::to_string(blk.dim) + " dims but its encoder gives " +
                                std::to_string(m->cols));
    }
    // cf keeps ALS norms and pop / new are priors in [0, 1]: none is normalised.
    const bool normalize = blk.name != "cf" && blk.name != "pop" && blk.name != "new";
    blocks.push_back({blk.name, std::move(*m), static_cast<float>(blk.weight), normalize});
  }
  VITRINE_ASSIGN_OR_RETURN(FusedVectors fused, Fuse(std::move(blocks)));
  return std::move(fused.vectors);
}

// Adds rows [first, vectors.rows) of `vectors` to the bundle's index.
Status AddToIndex(const Bundle& b, const Matrix& vectors, size_t first, BundleWriter& w) {
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> index, ReadFaiss(b));
  if (static_cast<size_t>(index->d) != vectors.cols) {
    return Status::Corruption(b.path("index.faiss").string() + ": dimension " +
                              std::to_string(index->d) + ", vectors.npy has " +
                              std::to_string(vectors.cols));
  }
  const auto m = static_cast<faiss::Index::idx_t>(vectors.rows - first);
  try {
    if (static_cast<size_t>(index->ntotal) == first) {
      index->add(m, vectors.row(first));  // sequential ids first, first+1, ...
    } else {
      // An IVF index that dropped removed vectors: ntotal no longer equals
      // the next row number, so the ids must be explicit.
      std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(m));
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<faiss::Index::idx_t>(first + i);
      index->add_with_ids(m, vectors.row(first), ids.data());
    }
  } catch (const std::exception& e) {
    return Status::Internal(b.path("index.faiss").string() + ": faiss add: " + e.what());
  }
  return WriteFaiss(*index, w);
}

UpdateSummary Summary(int64_t changed, int64_t items, int64_t deleted) {
  UpdateSummary s;
  s.changed = changed;
  s.items = items;
  s.deleted = deleted;
  return s;
}

}  // namespace

std::string UpdateSummary::TombstoneLine() const {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "tombstones: %lld of %lld items (%.1f%%)",
                static_cast<long long>(deleted), static_cast<long long>(items),
                100.0 * deleted_fraction());
  return buf;
}

Result<std::vector<int64_t>> ReadTombstones(const Bundle& b) {
  if (!b.Has(kTombstoneFile)) return std::vector<int64_t>{};
  VITRINE_ASSIGN_OR_RETURN(MatrixI64 m, b.ReadMatrixI64(kTombstoneFile));
  const int64_t n = b.count("items").value_or(INT64_MAX);
  for (size_t i = 0; i < m.data.size(); ++i) {
    if (m.data[i] < 0 || m.data[i] >= n || (i > 0 && m.data[i] <= m.data[i - 1])) {
      return Status::Corruption(b.path(kTombstoneFile).string() + ": entry " + std::to_string(i) +
                                " (" + std::to_string(m.data[i]) +
                                ") is not an item index in ascending order below " +
                                std::to_string(n));
    }
  }
  return std::move(m.data);
}

Result<UpdateSummary> AddItems(const fs::path& dir, const AddItemsOptions& o) {
  if (o.items.empty()) return Status::InvalidArgument("no items file given");
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_ASSIGN_OR_RETURN(CatalogInfo info, CatalogInfoOf(b));
  VITRINE_ASSIGN_OR_RETURN(Catalog catalog, ReadBundleCatalog(b, info));
  VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> ids, b.ReadIds("item_ids.txt"));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b));
  VITRINE_RETURN_IF_ERROR(CheckNewRows(o.items, info, catalog, ids, deleted));

  // The schema types every catalog column, so the new rows parse exactly as
  // the catalog's did (no re-inference on a handful of rows).
  CatalogReadOptions read = info.read;
  for (const auto& c : catalog.columns) {
    if (read.schema.Find(c.name) == nullptr) read.schema.overrides.emplace_back(c.name, c.type);
  }
  VITRINE_ASSIGN_OR_RETURN(Catalog fresh, Catalog::ReadCsv(o.items, read));
  if (fresh.size() == 0) return Status::InvalidArgument(o.items.string() + ": no rows to add");
  const size_t old_n = ids.size(), m = static_cast<size_t>(fresh.size());

  VITRINE_ASSIGN_OR_RETURN(Matrix added, EncodeNewItems(b, fresh, o));
  VITRINE_ASSIGN_OR_RETURN(Matrix vectors, b.ReadMatrix("vectors.npy"));
  if (vectors.rows != old_n || vectors.cols != added.cols) {
    return Status::Corruption(b.path("vectors.npy").string() + ": " + std::to_string(vectors.rows) +
                              " x " + std::to_string(vectors.cols) + ", expected " +
                              std::to_string(old_n) + " x " + std::to_string(added.cols));
  }
  AppendRows(&vectors, added);
  VITRINE_RETURN_IF_ERROR(AddToIndex(b, vectors, old_n, w));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("vectors.npy", vectors));

  for (int32_t i = 0; i < fresh.size(); ++i) ids.push_back(fresh.ids.id(i));
  VITRINE_RETURN_IF_ERROR(w.WriteIds("item_ids.txt", ids));
  // Old rows stay byte for byte; the new ones are rendered in the catalog's
  // column order (fresh's columns may be in another order).
  Catalog ordered;
  ordered.ids = fresh.ids;
  for (const auto& c : catalog.columns) ordered.columns.push_back(*fresh.column(c.name));
  VITRINE_ASSIGN_OR_RETURN(std::string csv, b.ReadBytes("items.csv"));
  csv += CatalogRowsCsv(ordered, info.id_column, AllRows(fresh.size()), false);
  VITRINE_RETURN_IF_ERROR(w.WriteBytes("items.csv", csv));

  VITRINE_ASSIGN_OR_RETURN(MatrixI64 cold, b.ReadMatrixI64("cold.npy"));
  AppendRows(&cold, MatrixI64(m, cold.cols, 1));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cold.npy", cold));
  VITRINE_ASSIGN_OR_RETURN(Matrix pop, b.ReadMatrix("popularity.npy"));
  AppendRows(&pop, Matrix(m, pop.cols, 0.0f));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("popularity.npy", pop));
  if (b.Has("cf/item_factors.npy")) {
    VITRINE_ASSIGN_OR_RETURN(Matrix itf, b.ReadMatrix("cf/item_factors.npy"));
    AppendRows(&itf, Matrix(m, itf.cols, 0.0f));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cf/item_factors.npy", itf));
  }

  auto& counts = w.manifest()["counts"];
  counts["items"] = static_cast<int64_t>(old_n + m);
  if (FindBlock(b, "cf") != nullptr)
    counts["cold_items"] = counts.value("cold_items", int64_t{0}) + static_cast<int64_t>(m);
  VITRINE_RETURN_IF_ERROR(w.Commit());
  return Summary(static_cast<int64_t>(m), static_cast<int64_t>(old_n + m),
                 static_cast<int64_t>(deleted.size()));
}

Result<UpdateSummary> RemoveItems(const fs::path& dir, const std::vector<std::string>& ids) {
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_RETURN_IF_ERROR(CatalogInfoOf(b).status());
  VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> bundle_ids, b.ReadIds("item_ids.txt"));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int32_t> rows, ResolveIds(bundle_ids, ids, dir));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b));
  const size_t before = deleted.size();
  deleted.insert(deleted.end(), rows.begin(), rows.end());
  std::sort(deleted.begin(), deleted.end());
  deleted.erase(std::unique(deleted.begin(), deleted.end()), deleted.end());
  const auto n = static_cast<int64_t>(bundle_ids.size());
  UpdateSummary s = Summary(static_cast<int64_t>(deleted.size() - before), n,
                            static_cast<int64_t>(deleted.size()));
  if (s.changed == 0) return s;  // all already removed: nothing to write

  VITRINE_RETURN_IF_ERROR(WriteTombstones(w, deleted));
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> probe, ReadFaiss(b));
  if (IvfCore(probe.get()) != nullptr) {
    // IVF drops the vectors for real (smaller file, faster scans); the
    // tombstone file still lists them for the vectors matrix and compact.
    VITRINE_ASSIGN_OR_RETURN(Matrix vectors, b.ReadMatrix("vectors.npy"));
    VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> index,
                             VectorIndex::Load(b.path("index.faiss"),
                                               std::make_shared<const Matrix>(std::move(vectors))));
    Bitmap gone;
    for (int64_t d : deleted) gone.add(static_cast<uint32_t>(d));
    VITRINE_RETURN_IF_ERROR(index->Remove(gone));
    VITRINE_RETURN_IF_ERROR(WriteFaiss(*index, w));
  }
  VITRINE_RETURN_IF_ERROR(w.Commit());
  return s;
}

Result<UpdateSummary> SetInStock(const fs::path& dir, const std::vector<std::string>& ids,
                                 bool in_stock) {
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_ASSIGN_OR_RETURN(CatalogInfo info, CatalogInfoOf(b));
  VITRINE_ASSIGN_OR_RETURN(Catalog catalog, ReadBundleCatalog(b, info));
  Column* col = catalog.column(kInStockColumn);
  if (col == nullptr || col->type != ColumnType::kBool) {
    return Status::InvalidArgument(b.path("items.csv").string() + ": " +
                                   (col == nullptr
                                        ? std::string("no '") + kInStockColumn + "' column"
                                        : std::string("column '") + kInStockColumn + "' is " +
                                              ColumnTypeName(col->type) + ", not bool") +
                                   " (set-stock needs a bool in_stock column in the catalog)");
  }
  VITRINE_ASSIGN_OR_RETURN(std::vector<int32_t> rows, ResolveIds(catalog.ids.ids(), ids, dir));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b));
  int64_t changed = 0;
  for (int32_t r : rows) {
    int8_t& v = col->bools[static_cast<size_t>(r)];
    if (v != static_cast<int8_t>(in_stock)) ++changed, v = static_cast<int8_t>(in_stock);
  }
  UpdateSummary s = Summary(changed, catalog.size(), static_cast<int64_t>(deleted.size()));
  if (changed == 0) return s;
  VITRINE_RETURN_IF_ERROR(w.WriteBytes(
      "items.csv", CatalogRowsCsv(catalog, info.id_column, AllRows(catalog.size()), true)));
  VITRINE_RETURN_IF_ERROR(w.Commit());
  return s;
}

Result<UpdateSummary> Compact(const fs::path& dir, const CompactOptions& o) {
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_ASSIGN_OR_RETURN(CatalogInfo info, CatalogInfoOf(b));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b));
  VITRINE_ASSIGN_OR_RETURN(Catalog catalog, ReadBundleCatalog(b, info));
  const int32_t n = catalog.size();
  UpdateSummary s = Summary(0, n, static_cast<int64_t>(deleted.size()));
  if (!o.force && s.deleted_fraction() <= o.threshold) return s;
  if (static_cast<int64_t>(deleted.size()) == n) {
    return Status::InvalidArgument(dir.string() +
                                   ": every item is removed; a bundle needs at least one item");
  }
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));

  // keep: surviving old rows in order; remap: old row -> new row or -1.
  std::vector<int32_t> keep, remap(static_cast<size_t>(n), -1);
  {
    size_t d = 0;
    for (int32_t i = 0; i < n; ++i) {
      if (d < deleted.size() && deleted[d] == i) {
        ++d;
        continue;
      }
      remap[static_cast<size_t>(i)] = static_cast<int32_t>(keep.size());
      keep.push_back(i);
    }
  }

  VITRINE_ASSIGN_OR_RETURN(Matrix vectors, b.ReadMatrix("vectors.npy"));
  if (vectors.rows != static_cast<size_t>(n)) {
    return Status::Corruption(b.path("vectors.npy").string() + ": " + std::to_string(vectors.rows) +
                              " rows for " + std::to_string(n) + " items");
  }
  auto kept = std::make_shared<const Matrix>(SelectRows(vectors, keep));

  // The index is rebuilt from the kept vectors with the recorded spec; only
  // the index trains again (IVF/PQ codebooks), never the encoders or ALS.
  const auto& idx = b.manifest()["index"];
  VectorIndexOptions io;
  io.spec = idx.value("spec", io.spec);
  io.metric = idx.value("metric", "inner_product") == "l2" ? Metric::kL2 : Metric::kInnerProduct;
  io.hnsw_ef_construction = idx.value("ef_construction", io.hnsw_ef_construction);
  io.seed = idx.value("seed", io.seed);
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> index, VectorIndex::Build(kept, io));
  VITRINE_RETURN_IF_ERROR(WriteFaiss(*index, w));
  w.manifest()["index"]["describe"] = index->Describe();

  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("vectors.npy", *kept));
  VITRINE_RETURN_IF_ERROR(
      w.WriteBytes("items.csv", CatalogRowsCsv(catalog, info.id_column, keep, true)));
  std::vector<std::string> ids;
  for (int32_t i : keep) ids.push_back(catalog.ids.id(i));
  VITRINE_RETURN_IF_ERROR(w.WriteIds("item_ids.txt", ids));
  VITRINE_ASSIGN_OR_RETURN(MatrixI64 cold, b.ReadMatrixI64("cold.npy"));
  cold = SelectRows(cold, keep);
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cold.npy", cold));
  VITRINE_ASSIGN_OR_RETURN(Matrix pop, b.ReadMatrix("popularity.npy"));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix("popularity.npy", SelectRows(pop, keep)));
  auto& counts = w.manifest()["counts"];
  counts["items"] = static_cast<int64_t>(keep.size());
  if (b.Has("cf/item_factors.npy")) {
    VITRINE_ASSIGN_OR_RETURN(Matrix itf, b.ReadMatrix("cf/item_factors.npy"));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("cf/item_factors.npy", SelectRows(itf, keep)));
    int64_t cold_items = 0;
    for (int64_t c : cold.data) cold_items += c != 0;
    counts["cold_items"] = cold_items;
  }
  if (b.Has("history/indptr.npy")) {
    // Histories lose the removed items; the rest are renumbered.
    VITRINE_ASSIGN_OR_RETURN(MatrixI64 indptr, b.ReadMatrixI64("history/indptr.npy"));
    VITRINE_ASSIGN_OR_RETURN(MatrixI64 indices, b.ReadMatrixI64("history/indices.npy"));
    VITRINE_ASSIGN_OR_RETURN(Matrix weights, b.ReadMatrix("history/weights.npy"));
    MatrixI64 new_indptr(indptr.rows, 1, 0);
    std::vector<int64_t> new_indices;
    std::vector<float> new_weights;
    for (size_t u = 0; u + 1 < indptr.data.size(); ++u) {
      for (int64_t j = indptr.data[u]; j < indptr.data[u + 1]; ++j) {
        const int64_t item = indices.data[static_cast<size_t>(j)];
        if (item < 0 || item >= n) {
          return Status::Corruption(b.path("history/indices.npy").string() + ": entry " +
                                    std::to_string(j) + " is item " + std::to_string(item) +
                                    ", not below " + std::to_string(n));
        }
        const int32_t to = remap[static_cast<size_t>(item)];
        if (to < 0) continue;
        new_indices.push_back(to);
        new_weights.push_back(weights.data[static_cast<size_t>(j)]);
      }
      new_indptr.data[u + 1] = static_cast<int64_t>(new_indices.size());
    }
    MatrixI64 ind(new_indices.size(), 1);
    ind.data = std::move(new_indices);
    Matrix wts(new_weights.size(), 1);
    wts.data = std::move(new_weights);
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("history/indptr.npy", new_indptr));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("history/indices.npy", ind));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix("history/weights.npy", wts));
    counts["interactions"] = static_cast<int64_t>(ind.rows);
  }
  VITRINE_RETURN_IF_ERROR(WriteTombstones(w, {}));
  VITRINE_RETURN_IF_ERROR(w.Commit());
  s.changed = static_cast<int64_t>(deleted.size());
  s.items = static_cast<int64_t>(keep.size());
  s.deleted = 0;
  s.compacted = true;
  return s;
}

// ---- visual options --------------------------------------------------------

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
    o.canonical_size = j.value("canonical_size", o.canonical_size);
    o.hog_grids = j.value("hog_grids", o.hog_grids);
    o.orientation_bins = j.value("orientation_bins", o.orientation_bins);
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
    o.pixel_grid = j.value("pixel_grid", o.pixel_grid);
    o.pixel_weight = j.value("pixel_weight", o.pixel_weight);
    o.intensity_bins = j.value("intensity_bins", o.intensity_bins);
    o.intensity_weight = j.value("intensity_weight", o.intensity_weight);
    o.hue_bins = j.value("hue_bins", o.hue_bins);
    o.saturation_bins = j.value("saturation_bins", o.saturation_bins);
    o.value_bins = j.value("value_bins", o.value_bins);
    o.colour_weight = j.value("colour_weight", o.colour_weight);
    o.dim = j.value("dim", o.dim);
    o.whiten_power = j.value("whiten_power", o.whiten_power);
    o.whiten_epsilon = j.value("whiten_epsilon", o.whiten_epsilon);
    o.l2_normalize = j.value("l2_normalize", o.l2_normalize);
    o.exact_eigen_max_dim = j.value("exact_eigen_max_dim", o.exact_eigen_max_dim);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("visual_encoder options: ") + e.what());
  }
  return o;
}

}  // namespace vitrine
