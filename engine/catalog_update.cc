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
#include "embed/item_neighbors.h"
#include "engine/bundle_schema.h"
#include "engine/item_encoder.h"
#include "engine/trend.h"
#include "index/faiss_reader.h"
#include "index/vector_index.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

// ---- bundle helpers -------------------------------------------------------

// The bundle's catalog, read with the schema the build recorded.
CatalogReadOptions CatalogReadOptionsOf(const BundleManifest& m) {
  CatalogReadOptions read;
  read.id_column = m.catalog.id_column;
  return read;
}

Result<Catalog> ReadBundleCatalog(const Bundle& b, const BundleManifest& m) {
  VITRINE_RETURN_IF_ERROR(b.VerifyFile(bundle_file::kItems));
  CatalogReadOptions read = CatalogReadOptionsOf(m);
  VITRINE_ASSIGN_OR_RETURN(read.schema, Schema::Parse(m.catalog.schema));
  return Catalog::ReadCsv(b.path(bundle_file::kItems), read);
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

// Appends the rows of `extra` to `m` (same column count, checked by callers).
template <typename T>
void AppendRows(DenseMatrix<T>* m, const DenseMatrix<T>& extra) {
  m->data.insert(m->data.end(), extra.data.begin(), extra.data.end());
  m->rows += extra.rows;
}

// The FAISS layer that decides how ids behave: IVF keeps explicit ids (so it
// can remove vectors and needs explicit ids for adds after a removal).
const faiss::IndexIVF* IvfCore(const faiss::Index* index) {
  if (auto* p = dynamic_cast<const faiss::IndexPreTransform*>(index)) index = p->index;
  return dynamic_cast<const faiss::IndexIVF*>(index);
}

Result<std::unique_ptr<faiss::Index>> ReadFaiss(const Bundle& b) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, b.ReadBytes(bundle_file::kIndex));
  return ReadFaissBytes(bytes, b.path(bundle_file::kIndex).string());
}

Status WriteFaiss(const faiss::Index& index, BundleWriter& w, BundleManifest* m) {
  faiss::VectorIOWriter writer;
  try {
    faiss::write_index(&index, &writer);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("faiss::write_index: ") + e.what());
  }
  m->index.bytes_per_vector =
      static_cast<double>(writer.data.size()) / std::max<double>(1.0, index.ntotal);
  return w.WriteBytes(
      bundle_file::kIndex,
      std::string_view(reinterpret_cast<const char*>(writer.data.data()), writer.data.size()));
}

Status WriteFaiss(const VectorIndex& index, BundleWriter& w, BundleManifest* m) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, index.Serialize());
  m->index.describe = index.Describe();
  m->index.bytes_per_vector =
      static_cast<double>(bytes.size()) / std::max<double>(1.0, static_cast<double>(index.size()));
  return w.WriteBytes(bundle_file::kIndex, bytes);
}

Status WriteTombstones(BundleWriter& w, const std::vector<int64_t>& deleted, BundleManifest* m) {
  m->counts.deleted = static_cast<int64_t>(deleted.size());
  if (deleted.empty()) return w.Remove(kTombstoneFile);
  MatrixI64 rows(deleted.size(), 1);
  rows.data = deleted;
  return w.WriteMatrix(kTombstoneFile, rows);
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
Status CheckNewRows(const fs::path& path, const BundleManifest& m, const Catalog& catalog,
                    const std::vector<std::string>& bundle_ids,
                    const std::vector<int64_t>& deleted) {
  VITRINE_ASSIGN_OR_RETURN(auto csv, CsvReader::Open(path));
  const std::string& id_column = m.catalog.id_column;
  VITRINE_ASSIGN_OR_RETURN(int id_col, csv->ColumnIndex(id_column));
  for (const auto& c : catalog.columns) VITRINE_RETURN_IF_ERROR(csv->ColumnIndex(c.name).status());
  for (const auto& h : csv->header()) {
    if (h != id_column && catalog.column(h) == nullptr) {
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

// Adds rows [first, vectors.rows) of `vectors` to the bundle's index.
Status AddToIndex(const Bundle& b, const Matrix& vectors, size_t first, BundleWriter& w,
                  BundleManifest* manifest) {
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> index, ReadFaiss(b));
  if (static_cast<size_t>(index->d) != vectors.cols) {
    return Status::Corruption(b.path(bundle_file::kIndex).string() + ": dimension " +
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
    return Status::Internal(b.path(bundle_file::kIndex).string() + ": faiss add: " + e.what());
  }
  return WriteFaiss(*index, w, manifest);
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

Result<std::vector<int64_t>> ReadTombstones(const Bundle& b, int64_t n) {
  if (!b.Has(kTombstoneFile)) return std::vector<int64_t>{};
  VITRINE_ASSIGN_OR_RETURN(MatrixI64 m, b.ReadMatrixI64(kTombstoneFile));
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
  namespace f = bundle_file;
  if (o.items.empty()) return Status::InvalidArgument("no items file given");
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_ASSIGN_OR_RETURN(BundleManifest manifest, BundleManifest::Read(b));
  VITRINE_ASSIGN_OR_RETURN(Catalog catalog, ReadBundleCatalog(b, manifest));
  VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> ids, b.ReadIds(f::kItemIds));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b, manifest.counts.items));
  VITRINE_RETURN_IF_ERROR(CheckNewRows(o.items, manifest, catalog, ids, deleted));

  // The schema types every catalog column, so the new rows parse exactly as
  // the catalog's did (no re-inference on a handful of rows).
  CatalogReadOptions read = CatalogReadOptionsOf(manifest);
  VITRINE_ASSIGN_OR_RETURN(read.schema, Schema::Parse(manifest.catalog.schema));
  for (const auto& c : catalog.columns) {
    if (read.schema.Find(c.name) == nullptr) read.schema.overrides.emplace_back(c.name, c.type);
  }
  VITRINE_ASSIGN_OR_RETURN(Catalog fresh, Catalog::ReadCsv(o.items, read));
  if (fresh.size() == 0) return Status::InvalidArgument(o.items.string() + ": no rows to add");
  const size_t old_n = ids.size(), m = static_cast<size_t>(fresh.size());

  VITRINE_ASSIGN_OR_RETURN(ItemEncoder encoder, ItemEncoder::Load(b, manifest));
  const VisualSource source{o.images, o.visual, o.image_column, o.items};
  VITRINE_ASSIGN_OR_RETURN(Matrix added, encoder.EncodeNew(fresh, source, manifest.blocks));
  VITRINE_ASSIGN_OR_RETURN(Matrix vectors, b.ReadMatrix(f::kVectors));
  AppendRows(&vectors, added);
  VITRINE_RETURN_IF_ERROR(AddToIndex(b, vectors, old_n, w, &manifest));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kVectors, vectors));

  for (int32_t i = 0; i < fresh.size(); ++i) ids.push_back(fresh.ids.id(i));
  VITRINE_RETURN_IF_ERROR(w.WriteIds(f::kItemIds, ids));
  // Old rows stay byte for byte; the new ones are rendered in the catalog's
  // column order (fresh's columns may be in another order).
  Catalog ordered;
  ordered.ids = fresh.ids;
  for (const auto& c : catalog.columns) ordered.columns.push_back(*fresh.column(c.name));
  VITRINE_ASSIGN_OR_RETURN(std::string csv, b.ReadBytes(f::kItems));
  csv += CatalogRowsCsv(ordered, manifest.catalog.id_column, AllRows(fresh.size()), false);
  VITRINE_RETURN_IF_ERROR(w.WriteBytes(f::kItems, csv));

  VITRINE_ASSIGN_OR_RETURN(MatrixI64 cold, b.ReadMatrixI64(f::kCold));
  AppendRows(&cold, MatrixI64(m, cold.cols, 1));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kCold, cold));
  VITRINE_ASSIGN_OR_RETURN(Matrix pop, b.ReadMatrix(f::kPopularity));
  AppendRows(&pop, Matrix(m, pop.cols, 0.0f));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kPopularity, pop));
  if (b.Has(f::kGifts)) {  // new items: never bought as a gift yet
    VITRINE_ASSIGN_OR_RETURN(Matrix gifts, b.ReadMatrix(f::kGifts));
    AppendRows(&gifts, Matrix(m, gifts.cols, 0.0f));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kGifts, gifts));
  }
  if (manifest.has_block("cf")) {
    VITRINE_ASSIGN_OR_RETURN(Matrix itf, b.ReadMatrix(f::kItemFactors));
    AppendRows(&itf, Matrix(m, itf.cols, 0.0f));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kItemFactors, itf));
  }
  manifest.counts.items = static_cast<int64_t>(old_n + m);
  manifest.counts.cold_items += static_cast<int64_t>(m);
  manifest.Write(&w);
  VITRINE_RETURN_IF_ERROR(w.Commit());
  return Summary(static_cast<int64_t>(m), static_cast<int64_t>(old_n + m),
                 static_cast<int64_t>(deleted.size()));
}

Result<UpdateSummary> RemoveItems(const fs::path& dir, const std::vector<std::string>& ids) {
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_ASSIGN_OR_RETURN(BundleManifest manifest, BundleManifest::Read(b));
  VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> bundle_ids, b.ReadIds(bundle_file::kItemIds));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int32_t> rows, ResolveIds(bundle_ids, ids, dir));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b, manifest.counts.items));
  const size_t before = deleted.size();
  deleted.insert(deleted.end(), rows.begin(), rows.end());
  std::sort(deleted.begin(), deleted.end());
  deleted.erase(std::unique(deleted.begin(), deleted.end()), deleted.end());
  const auto n = static_cast<int64_t>(bundle_ids.size());
  UpdateSummary s = Summary(static_cast<int64_t>(deleted.size() - before), n,
                            static_cast<int64_t>(deleted.size()));
  if (s.changed == 0) return s;  // all already removed: nothing to write

  VITRINE_RETURN_IF_ERROR(WriteTombstones(w, deleted, &manifest));
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<faiss::Index> probe, ReadFaiss(b));
  if (IvfCore(probe.get()) != nullptr) {
    // IVF drops the vectors for real (smaller file, faster scans); the
    // tombstone file still lists them for the vectors matrix and compact.
    VITRINE_ASSIGN_OR_RETURN(Matrix vectors, b.ReadMatrix(bundle_file::kVectors));
    VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> index,
                             VectorIndex::Load(b.path(bundle_file::kIndex),
                                               std::make_shared<const Matrix>(std::move(vectors))));
    Bitmap gone;
    for (int64_t d : deleted) gone.add(static_cast<uint32_t>(d));
    VITRINE_RETURN_IF_ERROR(index->Remove(gone));
    VITRINE_RETURN_IF_ERROR(WriteFaiss(*index, w, &manifest));
  }
  manifest.Write(&w);
  VITRINE_RETURN_IF_ERROR(w.Commit());
  return s;
}

Result<UpdateSummary> SetInStock(const fs::path& dir, const std::vector<std::string>& ids,
                                 bool in_stock) {
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_ASSIGN_OR_RETURN(BundleManifest manifest, BundleManifest::Read(b));
  VITRINE_ASSIGN_OR_RETURN(Catalog catalog, ReadBundleCatalog(b, manifest));
  Column* col = catalog.column(kInStockColumn);
  if (col == nullptr || col->type != ColumnType::kBool) {
    return Status::InvalidArgument(b.path(bundle_file::kItems).string() + ": " +
                                   (col == nullptr
                                        ? std::string("no '") + kInStockColumn + "' column"
                                        : std::string("column '") + kInStockColumn + "' is " +
                                              ColumnTypeName(col->type) + ", not bool") +
                                   " (set-stock needs a bool in_stock column in the catalog)");
  }
  VITRINE_ASSIGN_OR_RETURN(std::vector<int32_t> rows, ResolveIds(catalog.ids.ids(), ids, dir));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b, manifest.counts.items));
  int64_t changed = 0;
  for (int32_t r : rows) {
    int8_t& v = col->bools[static_cast<size_t>(r)];
    if (v != static_cast<int8_t>(in_stock)) ++changed, v = static_cast<int8_t>(in_stock);
  }
  UpdateSummary s = Summary(changed, catalog.size(), static_cast<int64_t>(deleted.size()));
  if (changed == 0) return s;
  VITRINE_RETURN_IF_ERROR(w.WriteBytes(
      bundle_file::kItems,
      CatalogRowsCsv(catalog, manifest.catalog.id_column, AllRows(catalog.size()), true)));
  VITRINE_RETURN_IF_ERROR(w.Commit());
  return s;
}

Result<UpdateSummary> Compact(const fs::path& dir, const CompactOptions& o) {
  namespace f = bundle_file;
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  VITRINE_ASSIGN_OR_RETURN(BundleManifest manifest, BundleManifest::Read(b));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b, manifest.counts.items));
  VITRINE_ASSIGN_OR_RETURN(Catalog catalog, ReadBundleCatalog(b, manifest));
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

  VITRINE_ASSIGN_OR_RETURN(Matrix vectors, b.ReadMatrix(f::kVectors));
  auto kept = std::make_shared<const Matrix>(SelectRows(vectors, keep));

  // The index is rebuilt from the kept vectors with the recorded spec; only
  // the index trains again (IVF/PQ codebooks), never the encoders or ALS.
  VectorIndexOptions io;
  io.spec = manifest.index.spec;
  io.metric = Metric::kInnerProduct;
  if (manifest.index.ef_construction > 0) io.hnsw_ef_construction = manifest.index.ef_construction;
  io.seed = manifest.index.seed;
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> index, VectorIndex::Build(kept, io));
  VITRINE_RETURN_IF_ERROR(WriteFaiss(*index, w, &manifest));

  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kVectors, *kept));
  VITRINE_RETURN_IF_ERROR(
      w.WriteBytes(f::kItems, CatalogRowsCsv(catalog, manifest.catalog.id_column, keep, true)));
  std::vector<std::string> ids;
  for (int32_t i : keep) ids.push_back(catalog.ids.id(i));
  VITRINE_RETURN_IF_ERROR(w.WriteIds(f::kItemIds, ids));
  VITRINE_ASSIGN_OR_RETURN(MatrixI64 cold, b.ReadMatrixI64(f::kCold));
  cold = SelectRows(cold, keep);
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kCold, cold));
  VITRINE_ASSIGN_OR_RETURN(Matrix pop, b.ReadMatrix(f::kPopularity));
  VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kPopularity, SelectRows(pop, keep)));
  if (b.Has(f::kGifts)) {
    VITRINE_ASSIGN_OR_RETURN(Matrix gifts, b.ReadMatrix(f::kGifts));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kGifts, SelectRows(gifts, keep)));
  }
  if (b.Has(f::kTrendBuckets)) {  // the removed items' events go with them
    VITRINE_ASSIGN_OR_RETURN(ItemActivity activity, ReadTrendActivity(b, n));
    VITRINE_RETURN_IF_ERROR(WriteTrendActivity(activity.Remapped(remap), &w));
  }
  manifest.counts.items = static_cast<int64_t>(keep.size());
  if (b.Has(f::kItemFactors)) {
    VITRINE_ASSIGN_OR_RETURN(Matrix itf, b.ReadMatrix(f::kItemFactors));
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kItemFactors, SelectRows(itf, keep)));
    int64_t cold_items = 0;
    for (int64_t c : cold.data) cold_items += c != 0;
    manifest.counts.cold_items = cold_items;
  }
  if (b.Has(f::kHistoryIndptr)) {
    // Histories lose the removed items; the rest are renumbered.
    VITRINE_ASSIGN_OR_RETURN(StoredHistory history, ReadStoredHistory(b, n));
    StoredHistory kept;
    kept.timed = history.timed;
    kept.indptr.assign(history.indptr.size(), 0);
    for (size_t u = 0; u + 1 < history.indptr.size(); ++u) {
      for (int64_t j = history.indptr[u]; j < history.indptr[u + 1]; ++j) {
        const auto at = static_cast<size_t>(j);
        const int32_t to = remap[static_cast<size_t>(history.indices[at])];
        if (to < 0) continue;
        kept.indices.push_back(to);
        kept.weights.push_back(history.weights[at]);
        if (history.timed) kept.times.push_back(history.times[at]);
      }
      kept.indptr[u + 1] = static_cast<int64_t>(kept.indices.size());
    }
    VITRINE_RETURN_IF_ERROR(WriteStoredHistory(&w, kept));
    manifest.counts.interactions = static_cast<int64_t>(kept.indices.size());
  }
  if (b.Has(f::kItemNeighbors)) {
    // Neighbour lists lose the removed items, rows and columns renumbered.
    VITRINE_ASSIGN_OR_RETURN(std::string bytes, b.ReadBytes(f::kItemNeighbors));
    VITRINE_ASSIGN_OR_RETURN(ItemNeighbors nb,
                             ItemNeighbors::Deserialize(bytes, b.path(f::kItemNeighbors).string()));
    const CsrMatrix& old = nb.similarities();
    CsrMatrix sim;
    sim.rows = sim.cols = static_cast<int64_t>(keep.size());
    sim.indptr.assign(1, 0);
    for (int32_t i : keep) {
      if (i < old.rows) {
        for (int64_t k = old.indptr[i]; k < old.indptr[i + 1]; ++k) {
          const int32_t to = remap[static_cast<size_t>(old.indices[static_cast<size_t>(k)])];
          if (to < 0) continue;
          sim.indices.push_back(to);
          sim.values.push_back(old.values[static_cast<size_t>(k)]);
        }
      }
      sim.indptr.push_back(sim.nnz());
    }
    VITRINE_ASSIGN_OR_RETURN(ItemNeighbors kept_nb, ItemNeighbors::FromCsr(std::move(sim)));
    VITRINE_RETURN_IF_ERROR(w.WriteBytes(f::kItemNeighbors, kept_nb.Serialize()));
  }
  if (b.Has(f::kTasteTheta)) {
    // Each taste loses the removed items' probability; the rest is
    // renormalised so every taste still sums to 1.
    VITRINE_ASSIGN_OR_RETURN(Matrix theta, b.ReadMatrix(f::kTasteTheta));
    std::vector<int32_t> rows;
    for (int32_t i : keep) {
      if (static_cast<size_t>(i) < theta.rows) rows.push_back(i);
    }
    Matrix kept_theta = SelectRows(theta, rows);
    for (size_t j = 0; j < kept_theta.cols; ++j) {
      double sum = 0;
      for (size_t i = 0; i < kept_theta.rows; ++i) sum += kept_theta.at(i, j);
      for (size_t i = 0; i < kept_theta.rows && sum > 0; ++i) {
        kept_theta.at(i, j) = static_cast<float>(kept_theta.at(i, j) / sum);
      }
    }
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kTasteTheta, kept_theta));
  }
  VITRINE_RETURN_IF_ERROR(WriteTombstones(w, {}, &manifest));
  manifest.Write(&w);
  VITRINE_RETURN_IF_ERROR(w.Commit());
  s.changed = static_cast<int64_t>(deleted.size());
  s.items = static_cast<int64_t>(keep.size());
  s.deleted = 0;
  s.compacted = true;
  return s;
}

}  // namespace vitrine
