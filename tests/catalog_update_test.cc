#include "engine/catalog_update.h"

#include <faiss/Index.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "core/array_io.h"
#include "core/bundle.h"
#include "core/file_util.h"
#include "embed/cold_start.h"
#include "embed/content_encoder.h"
#include "embed/fusion.h"
#include "embed/visual_encoder.h"
#include "engine/builder.h"
#include "engine/engine.h"
#include "engine/item_encoder.h"
#include "sample/generator.h"
#include "tests/scratch_dir.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

constexpr int kItems = 300;
constexpr int kBase = 280;  // the bundle is built from the first kBase items

// Every file under `dir` (recursively) -> its bytes.
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) m[fs::relative(e.path(), dir).string()] = Slurp(e.path());
  }
  return m;
}

std::vector<std::string> DirEntries(const fs::path& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

IdxArray SelectImages(const IdxArray& all, const std::vector<int>& rows) {
  IdxArray out;
  out.dims = all.dims;
  out.dims[0] = static_cast<uint32_t>(rows.size());
  out.data = MatrixU8(rows.size(), all.data.cols);
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(all.data.row(static_cast<size_t>(rows[i])), all.data.cols, out.data.row(i));
  return out;
}

std::vector<int> Range(int a, int b) {
  std::vector<int> v;
  for (int i = a; i < b; ++i) v.push_back(i);
  return v;
}

// Shared data: 300 generated items with images; the base catalog is the
// first 280, the rest arrive later through AddItems.
struct Data {
  fs::path dir;
  std::string header;
  std::vector<std::string> rows;  // items.csv data lines, catalog order
  IdxArray images;                // all 300
};

const Data& SampleData() {
  static const Data d = [] {
    Data d;
    d.dir = ScratchDir() / "data";
    GeneratorOptions g;
    g.num_items = kItems;
    g.num_users = 200;
    g.seed = 11;
    if (std::string(VITRINE_FASHION_MNIST_DIR).size() > 0)
      g.fashion_mnist_dir = VITRINE_FASHION_MNIST_DIR;
    auto r = GenerateSampleData(g, d.dir);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto lines = Lines(Slurp(d.dir / "items.csv"));
    d.header = lines[0];
    d.rows.assign(lines.begin() + 1, lines.end());
    auto img = ReadIdx(d.dir / "images.idx.gz");
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    d.images = std::move(*img);
    std::string base = d.header + "\n";
    for (int i = 0; i < kBase; ++i) base += d.rows[static_cast<size_t>(i)] + "\n";
    WriteText(d.dir / "base.csv", base);
    EXPECT_TRUE(
        WriteIdx(d.dir / "base.idx.gz", SelectImages(d.images, Range(0, kBase)), true).ok());
    return d;
  }();
  return d;
}

// A bundle built from the base catalog with index `spec`, copied to a fresh
// directory for the calling test (built once per spec and process).
fs::path BaseBundle(const std::string& spec, const std::string& name, bool images = true) {
  static std::map<std::string, fs::path> built;
  const std::string key = spec + (images ? "+img" : "");
  if (!built.count(key)) {
    const Data& d = SampleData();
    BuildOptions o;
    o.ranker.enabled = false;  // not under test here; the ranker has its own tests
    o.items = d.dir / "base.csv";
    o.interactions = d.dir / "interactions.csv";
    if (images) o.images = d.dir / "base.idx.gz";
    o.als.factors = 16;
    o.als.iterations = 5;
    o.als.compute_loss = false;
    o.content.dim = 16;
    o.visual_encoder.dim = 16;
    o.index.spec = spec;
    o.index.min_train_points = 64;
    const fs::path out = ScratchDir() / ("built_" + std::to_string(built.size()));
    auto s = BuildBundle(o, out);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    built[key] = out;
  }
  const fs::path dst = ScratchDir() / name;
  fs::remove_all(dst);
  fs::copy(built[key], dst, fs::copy_options::recursive);
  return dst;
}

// new.csv / new.idx.gz: items 280..299, plus "T<id>", an exact copy (same
// attributes and image) of a cold base item, whose vector must therefore be
// that item's. Returns the twin's source row.
int WriteNewItems(const fs::path& bundle, const fs::path& csv, const fs::path& idx) {
  const Data& d = SampleData();
  auto e = Engine::Open(bundle);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  int twin = -1;
  for (int i = 0; i < kBase && twin < 0; ++i)
    if ((*e)->is_cold(i)) twin = i;
  EXPECT_GE(twin, 0);
  std::string text = d.header + "\n";
  for (int i = kBase; i < kItems; ++i) text += d.rows[static_cast<size_t>(i)] + "\n";
  text += "T" + d.rows[static_cast<size_t>(twin)] + "\n";
  WriteText(csv, text);
  std::vector<int> rows = Range(kBase, kItems);
  rows.push_back(twin);
  EXPECT_TRUE(WriteIdx(idx, SelectImages(d.images, rows), true).ok());
  return twin;
}

// As the engine builds an item query: each block segment a unit direction,
// 1 in the popularity prior, then scaled by the bundle's similar-items weight.
std::vector<float> ItemQuery(const Engine& e, const float* row) {
  std::vector<float> query(row, row + e.vectors().cols);
  const auto& sim = e.bundle().manifest()["similar_weights"];
  for (const auto& b : e.layout()) {
    const float weight = sim.value(b.name, b.weight);
    double norm = 0;
    for (size_t j = 0; j < b.dim; ++j) norm += double(query[b.offset + j]) * query[b.offset + j];
    for (size_t j = 0; j < b.dim; ++j) {
      float x = norm > 0 ? static_cast<float>(query[b.offset + j] / std::sqrt(norm)) : 0.0f;
      if (b.name == "pop") x = 1.0f;
      query[b.offset + j] = x * weight;
    }
  }
  return query;
}

// Exact oracle for Engine::Similar on a Flat index: the query is the item's
// vector with each block scaled by its default weight; candidates are all
// other rows not in `deleted`.
std::vector<std::pair<int32_t, float>> ExactSimilar(const Engine& e, int32_t q, int k,
                                                    const std::set<int32_t>& deleted) {
  const Matrix& v = e.vectors();
  const std::vector<float> query = ItemQuery(e, v.row(static_cast<size_t>(q)));
  std::vector<std::pair<int32_t, float>> all;
  for (size_t i = 0; i < v.rows; ++i) {
    if (static_cast<int32_t>(i) == q || deleted.count(static_cast<int32_t>(i))) continue;
    double s = 0;
    for (size_t j = 0; j < v.cols; ++j) s += static_cast<double>(query[j]) * v.at(i, j);
    all.emplace_back(static_cast<int32_t>(i), static_cast<float>(s));
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  all.resize(std::min<size_t>(all.size(), static_cast<size_t>(k)));
  return all;
}

void ExpectMatchesExact(const Engine& e, int32_t q, int k, const std::set<int32_t>& deleted) {
  QueryParams opts;
  opts.k = k;
  auto hits = e.Similar(e.catalog().ids.id(q), opts);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  const auto want = ExactSimilar(e, q, k, deleted);
  ASSERT_EQ(hits->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR((*hits)[i].score, want[i].second, 1e-4) << "query " << q << " rank " << i;
    // Ids must agree unless the scores tie.
    if (i + 1 < want.size() && std::abs(want[i].second - want[i + 1].second) > 1e-4 &&
        (i == 0 || std::abs(want[i].second - want[i - 1].second) > 1e-4)) {
      EXPECT_EQ((*hits)[i].item, want[i].first) << "query " << q << " rank " << i;
    }
  }
}

void ExpectVerifies(const fs::path& bundle) {
  auto b = Bundle::Open(bundle, VerifyMode::kFull);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
}

// ---- add --------------------------------------------------------------------

TEST(CatalogUpdateTest, AddedVectorsEqualAFullEncode) {
  const fs::path bundle = BaseBundle("Flat", "add_oracle");
  const fs::path csv = ScratchDir() / "add_oracle_new.csv",
                 idx = ScratchDir() / "add_oracle_new.idx";
  const int twin = WriteNewItems(bundle, csv, idx);
  auto before = Engine::Open(bundle);
  ASSERT_TRUE(before.ok());
  const Matrix old_vectors = (*before)->vectors();

  AddItemsOptions o;
  o.items = csv;
  o.images = idx;
  auto s = AddItems(bundle, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->changed, kItems - kBase + 1);
  EXPECT_EQ(s->items, kItems + 1);
  EXPECT_EQ(s->deleted, 0);
  ExpectVerifies(bundle);

  auto e = Engine::Open(bundle, VerifyMode::kFull);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const Engine& en = **e;
  ASSERT_EQ(en.catalog().size(), kItems + 1);
  ASSERT_EQ(en.vectors().rows, static_cast<size_t>(kItems + 1));
  // Old rows are untouched.
  for (size_t i = 0; i < old_vectors.data.size(); ++i)
    ASSERT_EQ(en.vectors().data[i], old_vectors.data[i]) << i;
  for (int i = kBase; i <= kItems; ++i) {
    EXPECT_TRUE(en.is_cold(i));
    EXPECT_EQ(en.popularity(i), 0.0f);
  }
  EXPECT_EQ(en.catalog().ids.id(kItems), "T" + en.catalog().ids.id(twin));
  EXPECT_EQ(en.manifest().counts.items, kItems + 1);

  // Oracle: encode the whole catalog (base + new rows, as generated) with
  // the stored encoders in one go, as a build of these rows would.
  const Data& d = SampleData();
  std::string full = d.header + "\n";
  for (const auto& r : d.rows) full += r + "\n";
  full += "T" + d.rows[static_cast<size_t>(twin)] + "\n";
  WriteText(ScratchDir() / "add_oracle_full.csv", full);
  const auto& m = en.bundle().manifest();
  CatalogReadOptions ro;
  ro.schema = *Schema::Parse(m["catalog"]["schema"].get<std::string>());
  auto cat = Catalog::ReadCsv(ScratchDir() / "add_oracle_full.csv", ro);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  auto enc = ContentEncoder::FromJson(m["content_encoder"],
                                      *en.bundle().ReadMatrix("content/projection.npy"));
  ASSERT_TRUE(enc.ok());
  Matrix content = *enc->Transform(*cat);
  auto venc = VisualEncoder::FromParameters(VisualEncoderOptions{},
                                            *en.bundle().ReadMatrix("visual/mean.npy"),
                                            *en.bundle().ReadMatrix("visual/components.npy"),
                                            *en.bundle().ReadMatrix("visual/eigenvalues.npy"));
  ASSERT_TRUE(venc.ok());
  std::vector<int> img_rows = Range(0, kItems);
  img_rows.push_back(twin);
  IdxArray all = SelectImages(d.images, img_rows);
  ImageBatch batch;
  batch.height = all.dims[1];
  batch.width = all.dims[2];
  batch.pixels = all.data;
  Matrix visual = *venc->Transform(*venc->Describe(batch));
  Matrix cn = content, vn = visual;
  NormalizeRows(&cn);
  NormalizeRows(&vn);
  auto proj = ColdStartProjector::FromJson(m["cold_start"],
                                           *en.bundle().ReadMatrix("cold_start/weights.npy"));
  ASSERT_TRUE(proj.ok());
  // Cold rows: the projected direction at the norm the build gave cold rows;
  // the popularity prior from the stored counts (new rows: none).
  Matrix cf = *proj->Predict(*ConcatColumns({&cn, &vn}));
  NormalizeRows(&cf);
  for (float& x : cf.data) x *= m["cold_start"]["cf_row_norm"].get<float>();
  const Matrix pop = *en.bundle().ReadMatrix("popularity.npy");
  const float top = *std::max_element(pop.data.begin(), pop.data.end());
  Matrix prior(cf.rows, 1, 0.0f);
  for (size_t i = 0; i < pop.rows; ++i) prior.data[i] = std::log1p(pop.data[i]) / std::log1p(top);
  // The new-arrival prior: base rows as the build computed it from the base
  // catalog's interactions, added rows arrive now (1).
  auto base_cat = Catalog::ReadCsv(d.dir / "base.csv", ro);
  ASSERT_TRUE(base_cat.ok());
  auto inter = Interactions::ReadCsv(d.dir / "interactions.csv", base_cat->ids, {});
  ASSERT_TRUE(inter.ok());
  nlohmann::json info;
  auto base_new = ComputeNewness({}, *base_cat, &*inter, &info);
  ASSERT_TRUE(base_new.ok());
  ASSERT_EQ(base_new->size(), static_cast<size_t>(kBase));
  Matrix fresh(cf.rows, 1, 1.0f);
  std::copy(base_new->begin(), base_new->end(), fresh.data.begin());
  // The trend prior: base rows from the build's window, added rows 0.
  const Matrix base_trend = TrendBlock(inter->activity, kBase, kDefaultTrendWindowHours);
  Matrix trend(cf.rows, 1, 0.0f);
  std::copy(base_trend.data.begin(), base_trend.data.end(), trend.data.begin());
  auto fused = Fuse({{"cf", cf, 1, false},
                     {"content", content, 1},
                     {"visual", visual, 1},
                     {"pop", prior, 1, false},
                     {"new", fresh, 1, false},
                     {"trend", trend, 1, false}});
  ASSERT_TRUE(fused.ok());
  ASSERT_EQ(fused->dim(), en.vectors().cols);
  for (int i = 0; i <= kItems; ++i) {
    const bool added = i >= kBase;
    if (!added && !en.is_cold(i)) continue;  // warm base rows carry their ALS factors
    for (size_t j = 0; j < en.vectors().cols; ++j) {
      ASSERT_NEAR(en.vectors().at(static_cast<size_t>(i), j), fused->vectors.at(i, j), 2e-5)
          << "row " << i << " col " << j;
    }
  }
  // Content and visual segments of warm rows match too.
  for (int i = 0; i < kBase; ++i) {
    for (const auto& b : en.layout()) {
      if (b.name == "cf") continue;
      for (size_t j = b.offset; j < b.offset + b.dim; ++j)
        ASSERT_NEAR(en.vectors().at(static_cast<size_t>(i), j), fused->vectors.at(i, j), 2e-5);
    }
  }
}

TEST(CatalogUpdateTest, SimilarFindsNewItemNearItsTwinAndMatchesExactSearch) {
  const fs::path bundle = BaseBundle("Flat", "add_similar");
  const fs::path csv = ScratchDir() / "add_similar.csv", idx = ScratchDir() / "add_similar.idx";
  const int twin = WriteNewItems(bundle, csv, idx);
  AddItemsOptions o;
  o.items = csv;
  o.images = idx;
  ASSERT_TRUE(AddItems(bundle, o).ok());
  auto e = Engine::Open(bundle);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  QueryParams q;
  q.k = 5;
  auto hits = (*e)->Similar((*e)->catalog().ids.id(twin), q);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].item, kItems) << "the new twin is the nearest item";
  hits = (*e)->Similar((*e)->catalog().ids.id(kItems), q);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].item, twin);
  int new_in_results = 0;
  for (int i = 0; i <= kItems; i += 3) {
    ExpectMatchesExact(**e, i, 10, {});
    auto h = (*e)->Similar((*e)->catalog().ids.id(i), q);
    for (const Hit& x : *h) new_in_results += x.item >= kBase;
  }
  EXPECT_GT(new_in_results, 0) << "new items are retrievable";
}

TEST(CatalogUpdateTest, AddToHnswAndIvfIndexes) {
  for (const std::string spec : {"HNSW16", "IVF4,Flat"}) {
    SCOPED_TRACE(spec);
    const fs::path bundle = BaseBundle(spec, "add_" + spec.substr(0, 3));
    const fs::path csv = ScratchDir() / "add_ann.csv", idx = ScratchDir() / "add_ann.idx";
    const int twin = WriteNewItems(bundle, csv, idx);
    // Remove first: IVF then drops vectors, so the adds need explicit ids.
    ASSERT_TRUE(RemoveItems(bundle, {"I000001", "I000002"}).ok());
    AddItemsOptions o;
    o.items = csv;
    o.images = idx;
    auto s = AddItems(bundle, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->deleted, 2);
    ExpectVerifies(bundle);
    auto e = Engine::Open(bundle);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    QueryParams q;
    q.k = 5;
    auto hits = (*e)->Similar((*e)->catalog().ids.id(twin), q);
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ((*hits)[0].item, kItems);
    // Each new item finds itself as the nearest neighbour of its own vector
    // (ids of added vectors line up with rows).
    std::vector<int64_t> labels;
    std::vector<float> dist;
    SearchParams sp;
    sp.k = 1;
    sp.nprobe = 4;
    for (int i = kBase; i <= kItems; ++i) {
      ASSERT_TRUE((*e)->index()
                      .Search((*e)->vectors().row(static_cast<size_t>(i)), 1, sp, &labels, &dist)
                      .ok());
      const float* v = (*e)->vectors().row(static_cast<size_t>(i));
      double norm2 = 0;
      for (size_t j = 0; j < (*e)->vectors().cols; ++j) norm2 += double(v[j]) * v[j];
      EXPECT_NEAR(dist[0], norm2, 1e-3);  // its own inner product
      if (i != kItems) {
        EXPECT_EQ(labels[0], i);
      }
    }
  }
}

TEST(CatalogUpdateTest, FailedAddsLeaveTheBundleByteIdentical) {
  const fs::path bundle = BaseBundle("Flat", "add_fail");
  const Data& d = SampleData();
  const fs::path csv = ScratchDir() / "bad.csv";
  const fs::path idx = ScratchDir() / "bad.idx";
  ASSERT_TRUE(WriteIdx(idx, SelectImages(d.images, {kBase, kBase + 1}), true).ok());
  WriteText(csv, "");
  const auto before = Snapshot(bundle);
  const auto entries = DirEntries(ScratchDir());
  AddItemsOptions o;
  o.items = csv;
  o.images = idx;
  auto expect_error = [&](const std::string& text, const std::string& want) {
    WriteText(csv, text);
    auto s = AddItems(bundle, o);
    ASSERT_FALSE(s.ok()) << "accepted: " << text;
    EXPECT_NE(s.status().message().find(want), std::string::npos) << s.status().ToString();
    EXPECT_EQ(Snapshot(bundle), before) << want;
    EXPECT_EQ(DirEntries(ScratchDir()), entries) << "no staging directory left behind";
  };
  // A duplicate id: the line and the id.
  expect_error(d.header + "\n" + d.rows[kBase] + "\n" + d.rows[5] + "\n",
               "bad.csv:3: item id 'I000005' is already in the bundle");
  // A missing column.
  std::string no_brand_header = d.header;
  no_brand_header.replace(no_brand_header.find(",brand"), 6, "");
  auto drop_field = [](const std::string& row, int field) {
    std::vector<std::string> f;
    std::stringstream ss(row);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    f.erase(f.begin() + field);
    std::string out;
    for (const auto& y : f) out += (out.empty() ? "" : ",") + y;
    return out;
  };
  expect_error(no_brand_header + "\n" + drop_field(d.rows[kBase], 2) + "\n" +
                   drop_field(d.rows[kBase + 1], 2) + "\n",
               "missing column 'brand'");
  // An extra column.
  expect_error(d.header + ",extra\n" + d.rows[kBase] + ",1\n" + d.rows[kBase + 1] + ",2\n",
               "column 'extra' is not in the catalog");
  // A bad value.
  std::string bad_price = d.rows[kBase];
  {
    // price is the 9th field (index 8).
    std::vector<std::string> f;
    std::stringstream ss(bad_price);
    std::string x;
    while (std::getline(ss, x, ',')) f.push_back(x);
    f[8] = "cheap";
    bad_price.clear();
    for (const auto& y : f) bad_price += (bad_price.empty() ? "" : ",") + y;
  }
  expect_error(d.header + "\n" + bad_price + "\n" + d.rows[kBase + 1] + "\n", "price");
  // Image count mismatch, and no images at all.
  expect_error(d.header + "\n" + d.rows[kBase] + "\n", "2");
  o.images.clear();
  expect_error(d.header + "\n" + d.rows[kBase] + "\n" + d.rows[kBase + 1] + "\n", "--images");
}

// ---- remove -----------------------------------------------------------------

TEST(CatalogUpdateTest, RemovedItemsAreNeverReturned) {
  for (const std::string spec : {"Flat", "HNSW16", "IVF4,Flat"}) {
    SCOPED_TRACE(spec);
    const fs::path bundle = BaseBundle(spec, "remove_" + spec.substr(0, 3));
    std::mt19937 rng(5);
    std::set<int32_t> removed;
    std::vector<std::string> ids;
    while (removed.size() < 40) {
      const int32_t i = static_cast<int32_t>(rng() % kBase);
      if (removed.insert(i).second) ids.push_back(SampleData().rows[i].substr(0, 7));
    }
    // Two batches; repeating an id does not count twice.
    std::vector<std::string> first(ids.begin(), ids.begin() + 25);
    std::vector<std::string> second(ids.begin() + 20, ids.end());
    auto s1 = RemoveItems(bundle, first);
    ASSERT_TRUE(s1.ok()) << s1.status().ToString();
    EXPECT_EQ(s1->changed, 25);
    ExpectVerifies(bundle);
    auto s2 = RemoveItems(bundle, second);
    ASSERT_TRUE(s2.ok());
    EXPECT_EQ(s2->changed, 15);
    EXPECT_EQ(s2->deleted, 40);
    EXPECT_EQ(s2->TombstoneLine(), "tombstones: 40 of 280 items (14.3%)");
    ExpectVerifies(bundle);

    auto e = Engine::Open(bundle, VerifyMode::kFull);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    const Engine& en = **e;
    if (spec.rfind("IVF", 0) == 0) {
      EXPECT_EQ(en.index().faiss_index().ntotal, kBase - 40) << "IVF drops the vectors";
    } else {
      EXPECT_EQ(en.index().faiss_index().ntotal, kBase);
    }
    QueryParams q;
    q.k = 30;
    for (int32_t i = 0; i < kBase; ++i) {
      // Removed items still work as queries.
      auto hits = en.Similar(en.catalog().ids.id(i), q);
      ASSERT_TRUE(hits.ok()) << hits.status().ToString();
      EXPECT_EQ(hits->size(), 30u);
      for (const Hit& h : *hits) ASSERT_FALSE(removed.count(h.item)) << "query " << i;
      if (spec == "Flat" && i % 7 == 0) ExpectMatchesExact(en, i, 10, removed);
    }
    for (int32_t u = 0; u < std::min(50, en.users().size()); ++u) {
      RecommendRequest r;
      r.user = en.users().id(u);
      r.query.k = 20;
      auto rec = en.Recommend(r);
      ASSERT_TRUE(rec.ok()) << rec.status().ToString();
      for (const Hit& h : rec->hits) ASSERT_FALSE(removed.count(h.item));
    }
  }
}

TEST(CatalogUpdateTest, RemoveUnknownIdFailsAndChangesNothing) {
  const fs::path bundle = BaseBundle("Flat", "remove_unknown");
  const auto before = Snapshot(bundle);
  auto s = RemoveItems(bundle, {"I000003", "NOPE"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kNotFound);
  EXPECT_NE(s.status().message().find("'NOPE'"), std::string::npos) << s.status().ToString();
  EXPECT_EQ(Snapshot(bundle), before);
  // An item of the catalog not yet in the bundle is unknown too.
  EXPECT_FALSE(RemoveItems(bundle, {SampleData().rows[kBase].substr(0, 7)}).ok());
  EXPECT_EQ(Snapshot(bundle), before);
}

TEST(CatalogUpdateTest, ReAddingARemovedIdIsAnError) {
  const fs::path bundle = BaseBundle("Flat", "readd");
  ASSERT_TRUE(RemoveItems(bundle, {"I000004"}).ok());
  const fs::path csv = ScratchDir() / "readd.csv";
  WriteText(csv, SampleData().header + "\n" + SampleData().rows[4] + "\n");
  AddItemsOptions o;
  o.items = csv;
  o.images = SampleData().dir / "base.idx.gz";  // never read: the id check comes first
  auto s = AddItems(bundle, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("removed; run 'vitrine compact"), std::string::npos)
      << s.status().ToString();
}

// ---- set-stock -----------------------------------------------------------------

TEST(CatalogUpdateTest, SetInStockUpdatesOnlyThatColumn) {
  const fs::path bundle = BaseBundle("Flat", "stock");
  auto before = Engine::Open(bundle);
  ASSERT_TRUE(before.ok());
  const Catalog old = (*before)->catalog();
  const Column* col = old.column("in_stock");
  ASSERT_NE(col, nullptr);
  ASSERT_EQ(col->type, ColumnType::kBool);
  std::vector<std::string> ids;
  int64_t expect_changed = 0;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(old.ids.id(i));
    expect_changed += col->bools[static_cast<size_t>(i)] != 0;
  }
  auto s = SetInStock(bundle, ids, false);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->changed, expect_changed);
  ExpectVerifies(bundle);
  auto e = Engine::Open(bundle);
  ASSERT_TRUE(e.ok());
  const Catalog& now = (*e)->catalog();
  for (int32_t i = 0; i < old.size(); ++i) {
    for (const auto& c : old.columns) {
      const std::string want = c.name == "in_stock" && i < 40 ? "false" : old.ValueString(c, i);
      ASSERT_EQ(now.ValueString(*now.column(c.name), i), want) << c.name << " row " << i;
    }
  }
  // The rule that hides out-of-stock items now excludes them.
  auto in = (*e)->attributes().Equals("in_stock", "true");
  ASSERT_TRUE(in.ok());
  for (int i = 0; i < 40; ++i) EXPECT_FALSE(in->contains(static_cast<uint32_t>(i)));
  // Setting the same value again changes nothing (and writes nothing).
  const auto snap = Snapshot(bundle);
  auto again = SetInStock(bundle, ids, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->changed, 0);
  EXPECT_EQ(Snapshot(bundle), snap);
  EXPECT_FALSE(SetInStock(bundle, {"NOPE"}, true).ok());
  EXPECT_EQ(Snapshot(bundle), snap);
}

TEST(CatalogUpdateTest, SetInStockWithoutTheColumnIsAClearError) {
  const Data& d = SampleData();
  // A content-only catalog without in_stock.
  std::string text = "item_id,brand,category,price\n";
  for (int i = 0; i < 30; ++i) {
    text += "J" + std::to_string(i) + ",b" + std::to_string(i % 3) + ",c" + std::to_string(i % 4) +
            "," + std::to_string(10 + i) + "\n";
  }
  (void)d;
  WriteText(ScratchDir() / "nostock.csv", text);
  BuildOptions o;
  o.ranker.enabled = false;  // not under test here; the ranker has its own tests
  o.items = ScratchDir() / "nostock.csv";
  o.content.dim = 4;
  o.index.spec = "Flat";
  const fs::path bundle = ScratchDir() / "nostock_bundle";
  ASSERT_TRUE(BuildBundle(o, bundle).ok());
  const auto before = Snapshot(bundle);
  auto s = SetInStock(bundle, {"J1"}, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("no 'in_stock' column"), std::string::npos)
      << s.status().ToString();
  EXPECT_EQ(Snapshot(bundle), before);
  // A content-only bundle takes new items without images.
  WriteText(ScratchDir() / "nostock_new.csv", "item_id,brand,category,price\nJ99,b1,c2,20\n");
  AddItemsOptions a;
  a.items = ScratchDir() / "nostock_new.csv";
  auto add = AddItems(bundle, a);
  ASSERT_TRUE(add.ok()) << add.status().ToString();
  auto e = Engine::Open(bundle);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->catalog().size(), 31);
  ExpectMatchesExact(**e, 30, 5, {});
}

TEST(CatalogUpdateTest, AddWithPrecomputedVisualVectors) {
  // A new shop: no interactions, content plus precomputed (e.g. CNN) vectors.
  std::string text = "item_id,brand,category,price\n";
  for (int i = 0; i < 40; ++i) {
    text += "P" + std::to_string(i) + ",b" + std::to_string(i % 3) + ",c" + std::to_string(i % 4) +
            "," + std::to_string(10 + i) + "\n";
  }
  WriteText(ScratchDir() / "pre.csv", text);
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  Matrix vis(40, 6);
  for (float& x : vis.data) x = g(rng);
  ASSERT_TRUE(WriteNpy(ScratchDir() / "pre.npy", vis).ok());
  BuildOptions o;
  o.ranker.enabled = false;  // not under test here; the ranker has its own tests
  o.items = ScratchDir() / "pre.csv";
  o.visual = ScratchDir() / "pre.npy";
  o.content.dim = 4;
  o.index.spec = "Flat";
  const fs::path bundle = ScratchDir() / "pre_bundle";
  ASSERT_TRUE(BuildBundle(o, bundle).ok());

  WriteText(ScratchDir() / "pre_new.csv",
            "item_id,brand,category,price\nP98,b1,c2,20\nP99,b2,c0,33\n");
  Matrix nv(2, 6);
  for (float& x : nv.data) x = g(rng);
  ASSERT_TRUE(WriteNpy(ScratchDir() / "pre_new.npy", nv).ok());
  AddItemsOptions a;
  a.items = ScratchDir() / "pre_new.csv";
  const auto before = Snapshot(bundle);
  auto s = AddItems(bundle, a);  // no --visual
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("give --visual"), std::string::npos) << s.status().ToString();
  a.images = SampleData().dir / "base.idx.gz";
  EXPECT_FALSE(AddItems(bundle, a).ok());
  EXPECT_EQ(Snapshot(bundle), before);
  a.images.clear();
  a.visual = ScratchDir() / "pre_new.npy";
  s = AddItems(bundle, a);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto e = Engine::Open(bundle);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const BlockLayout* vb = nullptr;
  for (const auto& b : (*e)->layout())
    if (b.name == "visual") vb = &b;
  ASSERT_NE(vb, nullptr);
  Matrix unit = nv;
  NormalizeRows(&unit);
  for (size_t r = 0; r < 2; ++r)
    for (size_t j = 0; j < vb->dim; ++j)
      EXPECT_NEAR((*e)->vectors().at(40 + r, vb->offset + j), unit.at(r, j), 1e-6);
  ExpectMatchesExact(**e, 41, 5, {});
}

// ---- compact ------------------------------------------------------------------

TEST(CatalogUpdateTest, CompactDropsRowsAndMatchesAFreshFlatIndex) {
  const fs::path bundle = BaseBundle("Flat", "compact");
  auto orig = Engine::Open(bundle);
  ASSERT_TRUE(orig.ok());
  const Engine& o = **orig;
  std::set<int32_t> removed;
  std::vector<std::string> ids;
  for (int32_t i = 0; i < kBase; i += 4) {  // 70 of 280 = 25%
    removed.insert(i);
    ids.push_back(o.catalog().ids.id(i));
  }
  // Below the threshold nothing happens.
  ASSERT_TRUE(RemoveItems(bundle, {ids[0]}).ok());
  const auto snap = Snapshot(bundle);
  auto s0 = Compact(bundle, {});
  ASSERT_TRUE(s0.ok());
  EXPECT_FALSE(s0->compacted);
  EXPECT_EQ(s0->deleted, 1);
  EXPECT_EQ(Snapshot(bundle), snap);

  ASSERT_TRUE(RemoveItems(bundle, ids).ok());
  auto s = Compact(bundle, {});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->compacted);
  EXPECT_EQ(s->changed, 70);
  EXPECT_EQ(s->items, kBase - 70);
  EXPECT_EQ(s->deleted, 0);
  ExpectVerifies(bundle);
  auto b = Bundle::Open(bundle);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->Has(kTombstoneFile));

  auto c = Engine::Open(bundle, VerifyMode::kFull);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const Engine& en = **c;
  ASSERT_EQ(en.catalog().size(), kBase - 70);
  std::vector<int32_t> keep;
  for (int32_t i = 0; i < kBase; ++i)
    if (!removed.count(i)) keep.push_back(i);
  Matrix expect(keep.size(), o.vectors().cols);
  for (size_t r = 0; r < keep.size(); ++r) {
    const int32_t i = keep[r];
    ASSERT_EQ(en.catalog().ids.id(static_cast<int32_t>(r)), o.catalog().ids.id(i));
    for (const auto& col : o.catalog().columns) {
      ASSERT_EQ(en.catalog().ValueString(*en.catalog().column(col.name), static_cast<int32_t>(r)),
                o.catalog().ValueString(col, i));
    }
    EXPECT_EQ(en.is_cold(static_cast<int32_t>(r)), o.is_cold(i));
    EXPECT_EQ(en.popularity(static_cast<int32_t>(r)), o.popularity(i));
    std::copy_n(o.vectors().row(static_cast<size_t>(i)), expect.cols, expect.row(r));
  }
  EXPECT_EQ(en.vectors().data, expect.data);

  // Histories: the removed items are gone and the rest renumbered.
  const CsrMatrix before = o.TrainMatrix(), after = en.TrainMatrix();
  ASSERT_EQ(after.rows, before.rows);
  std::vector<int32_t> new_index(kBase, -1);
  for (size_t r = 0; r < keep.size(); ++r)
    new_index[static_cast<size_t>(keep[r])] = static_cast<int32_t>(r);
  for (int64_t u = 0; u < before.rows; ++u) {
    std::vector<std::pair<int32_t, float>> want, got;
    for (int64_t j = before.indptr[u]; j < before.indptr[u + 1]; ++j) {
      const int32_t to = new_index[static_cast<size_t>(before.indices[j])];
      if (to >= 0) want.emplace_back(to, before.values[j]);
    }
    for (int64_t j = after.indptr[u]; j < after.indptr[u + 1]; ++j)
      got.emplace_back(after.indices[j], after.values[j]);
    ASSERT_EQ(got, want) << "user " << u;
  }
  EXPECT_EQ(en.manifest().counts.interactions, after.nnz());

  // Results equal a fresh exact index over the remaining vectors.
  auto fresh = VectorIndex::Build(expect, VectorIndexOptions{.spec = "Flat"});
  ASSERT_TRUE(fresh.ok());
  for (size_t r = 0; r < keep.size(); r += 5) {
    ExpectMatchesExact(en, static_cast<int32_t>(r), 10, {});
    const std::vector<float> qv = ItemQuery(en, expect.row(r));
    std::vector<int64_t> labels;
    std::vector<float> dist;
    SearchParams sp;
    sp.k = 11;
    ASSERT_TRUE((*fresh)->ExactSearch(qv.data(), 1, sp, &labels, &dist).ok());
    QueryParams q;
    q.k = 10;
    auto hits = en.Similar(en.catalog().ids.id(static_cast<int32_t>(r)), q);
    ASSERT_TRUE(hits.ok());
    std::vector<float> want;
    for (size_t j = 0; j < labels.size(); ++j)
      if (labels[j] != static_cast<int64_t>(r)) want.push_back(dist[j]);
    want.resize(10);
    for (size_t j = 0; j < 10; ++j) EXPECT_NEAR((*hits)[j].score, want[j], 1e-4);
  }
  // Users still get recommendations (fold-in and history filtering use the
  // remapped indices).
  RecommendRequest rr;
  rr.user = en.users().id(0);
  EXPECT_TRUE(en.Recommend(rr).ok());
  // Force on a bundle without tombstones re-indexes and keeps everything.
  auto f = Compact(bundle, {.threshold = 0.2, .force = true});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->compacted);
  EXPECT_EQ(f->items, kBase - 70);
}

TEST(CatalogUpdateTest, CompactRebuildsAnHnswIndexWithTheSameSpec) {
  const fs::path bundle = BaseBundle("HNSW16", "compact_hnsw");
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i)
    ids.push_back(SampleData().rows[static_cast<size_t>(i)].substr(0, 7));
  ASSERT_TRUE(RemoveItems(bundle, ids).ok());
  auto s = Compact(bundle, {.threshold = 0.3});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->compacted);
  auto e = Engine::Open(bundle, VerifyMode::kFull);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)->index().faiss_index().ntotal, kBase - 100);
  EXPECT_NE((*e)->index().Describe().find("HNSW M=16"), std::string::npos);
  EXPECT_EQ((*e)->catalog().ids.id(0), SampleData().rows[100].substr(0, 7));
}

TEST(CatalogUpdateTest, VisualOptionsRoundTrip) {
  VisualEncoderOptions o;
  o.hog_grids = {7, 4};
  o.whiten_power = 0.35f;
  o.hog_norm = VisualEncoderOptions::HogNorm::kCell;
  o.dim = 48;
  auto back = VisualOptionsFromJson(VisualOptionsToJson(o));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(VisualOptionsToJson(*back), VisualOptionsToJson(o));
  EXPECT_FALSE(VisualOptionsFromJson(nlohmann::json{{"hog_norm", "weird"}}).ok());
  EXPECT_FALSE(VisualOptionsFromJson(nlohmann::json{{"dim", "x"}}).ok());
}

// ---- CLI ----------------------------------------------------------------------

int RunCli(const std::string& args, std::string* out) {
  const fs::path log = ScratchDir() / "cli.out";
  const int rc = std::system(
      (std::string(VITRINE_BINARY) + " " + args + " >" + log.string() + " 2>&1").c_str());
  *out = Slurp(log);
  return WEXITSTATUS(rc);
}

TEST(CatalogUpdateTest, Cli) {
  const fs::path bundle = BaseBundle("Flat", "cli");
  const fs::path csv = ScratchDir() / "cli_new.csv", idx = ScratchDir() / "cli_new.idx";
  WriteNewItems(bundle, csv, idx);
  const std::string b = " --bundle " + bundle.string();
  std::string out;
  EXPECT_EQ(
      RunCli("items add" + b + " --items " + csv.string() + " --images " + idx.string(), &out), 0)
      << out;
  EXPECT_NE(out.find("added 21 items; tombstones: 0 of 301 items (0.0%)"), std::string::npos)
      << out;
  EXPECT_EQ(
      RunCli("items add" + b + " --items " + csv.string() + " --images " + idx.string(), &out), 1);
  EXPECT_NE(out.find("is already in the bundle"), std::string::npos) << out;
  EXPECT_EQ(RunCli("items remove" + b + " --ids I000001,I000002", &out), 0) << out;
  EXPECT_NE(out.find("removed 2 items; tombstones: 2 of 301 items (0.7%)"), std::string::npos)
      << out;
  WriteText(ScratchDir() / "cli_ids.txt", "I000003\nI000004\n");
  EXPECT_EQ(
      RunCli("items remove" + b + " --ids-file " + (ScratchDir() / "cli_ids.txt").string(), &out),
      0);
  EXPECT_NE(out.find("tombstones: 4 of 301"), std::string::npos) << out;
  EXPECT_EQ(RunCli("items remove" + b + " --ids XYZ", &out), 1);
  EXPECT_NE(out.find("unknown item 'XYZ'"), std::string::npos) << out;
  EXPECT_EQ(RunCli("items remove" + b, &out), 2) << out;
  EXPECT_EQ(RunCli("items set-stock" + b + " --ids I000010 --in-stock maybe", &out), 2);
  EXPECT_EQ(RunCli("items set-stock" + b + " --ids I000010,I000011 --in-stock false", &out), 0)
      << out;
  EXPECT_NE(out.find("set in_stock=false on 2 items"), std::string::npos) << out;
  EXPECT_EQ(RunCli("items frobnicate" + b, &out), 2);
  EXPECT_EQ(RunCli("items add --help", &out), 0);
  EXPECT_NE(out.find("Example"), std::string::npos);
  EXPECT_EQ(RunCli("compact" + b, &out), 0) << out;
  EXPECT_NE(out.find("nothing to do: tombstones: 4 of 301 items (1.3%)"), std::string::npos) << out;
  EXPECT_EQ(RunCli("compact" + b + " --threshold 0.01", &out), 0) << out;
  EXPECT_NE(out.find("dropped 4 removed items; tombstones: 0 of 297 items"), std::string::npos)
      << out;
  EXPECT_EQ(RunCli("similar" + b + " --item I000005 -k 3", &out), 0) << out;
  EXPECT_EQ(RunCli("inspect" + b, &out), 0) << out;
}

}  // namespace
}  // namespace vitrine
