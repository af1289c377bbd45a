#include "engine/bundle_schema.h"

#include <cmath>
#include <limits>
#include <set>

#include "core/array_io.h"
#include "embed/taste_mixture.h"
#include "engine/trend.h"

namespace vitrine {
namespace {

using json = nlohmann::json;

std::string Got(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";  // never echo an unbounded value
  return s;
}

// Typed reads of one JSON object's keys; every error names the manifest,
// the key path and what was expected.
class Fields {
 public:
  Fields(const json& obj, std::string where, std::string path)
      : obj_(obj), where_(std::move(where)), path_(std::move(path)) {}

  static Result<Fields> Of(const json& parent, const std::string& where, const std::string& key) {
    auto it = parent.find(key);
    if (it == parent.end()) return Missing(where, key, "an object");
    if (!it->is_object()) return Wrong(where, key, "an object", *it);
    return Fields(*it, where, key);
  }

  bool Has(const std::string& key) const { return obj_.contains(key); }

  Status Int(const std::string& key, int64_t lo, int64_t hi, int64_t* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Missing(where_, Path(key), Range("an integer", lo, hi));
    if (!v->is_number_integer()) return Wrong(where_, Path(key), Range("an integer", lo, hi), *v);
    int64_t x = 0;
    if (v->is_number_unsigned()) {
      if (v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
        return Wrong(where_, Path(key), Range("an integer", lo, hi), *v);
      }
      x = static_cast<int64_t>(v->get<uint64_t>());
    } else {
      x = v->get<int64_t>();
    }
    if (x < lo || x > hi) return Wrong(where_, Path(key), Range("an integer", lo, hi), *v);
    *out = x;
    return Status::OK();
  }
  template <typename T>
  Status Int(const std::string& key, int64_t lo, int64_t hi, T* out) const {
    int64_t x = 0;
    VITRINE_RETURN_IF_ERROR(Int(key, lo, hi, &x));
    *out = static_cast<T>(x);
    return Status::OK();
  }
  Status Number(const std::string& key, double lo, double hi, double* out) const {
    const json* v = Find(key);
    const std::string want = "a number in [" + Short(lo) + ", " + Short(hi) + "]";
    if (v == nullptr) return Missing(where_, Path(key), want);
    if (!v->is_number()) return Wrong(where_, Path(key), want, *v);
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) return Wrong(where_, Path(key), want, *v);
    *out = x;
    return Status::OK();
  }
  // A seed: any unsigned 64-bit integer.
  Status Seed(const std::string& key, uint64_t* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Missing(where_, Path(key), "an unsigned integer");
    const bool ok = v->is_number_unsigned() || (v->is_number_integer() && v->get<int64_t>() >= 0);
    if (!ok) return Wrong(where_, Path(key), "an unsigned integer", *v);
    *out = v->get<uint64_t>();
    return Status::OK();
  }
  Status String(const std::string& key, std::string* out, bool allow_empty = true) const {
    const json* v = Find(key);
    const char* want = allow_empty ? "a string" : "a non-empty string";
    if (v == nullptr) return Missing(where_, Path(key), want);
    if (!v->is_string() || (!allow_empty && v->get_ref<const std::string&>().empty())) {
      return Wrong(where_, Path(key), want, *v);
    }
    *out = v->get<std::string>();
    return Status::OK();
  }
  Status Bool(const std::string& key, bool* out) const {
    const json* v = Find(key);
    if (v == nullptr) return Missing(where_, Path(key), "a boolean");
    if (!v->is_boolean()) return Wrong(where_, Path(key), "a boolean", *v);
    *out = v->get<bool>();
    return Status::OK();
  }
  // An optional object or null: `out` gets a copy (null when absent).
  Status OptionalObject(const std::string& key, json* out) const {
    const json* v = Find(key);
    if (v == nullptr || v->is_null()) {
      *out = nullptr;
      return Status::OK();
    }
    if (!v->is_object()) return Wrong(where_, Path(key), "an object", *v);
    *out = *v;
    return Status::OK();
  }

  static Status Missing(const std::string& where, const std::string& path,
                        const std::string& want) {
    return Status::Corruption(where + ": missing key '" + path + "' (expected " + want +
                              "): not a complete vitrine build bundle; rebuild it");
  }
  static Status Wrong(const std::string& where, const std::string& path, const std::string& want,
                      const json& got) {
    return Status::Corruption(where + ": '" + path + "': expected " + want + ", got " + Got(got));
  }

 private:
  const json* Find(const std::string& key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  static std::string Short(double x) {
    std::string s = std::to_string(x);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  static std::string Range(const char* what, int64_t lo, int64_t hi) {
    return std::string(what) + " in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }

  const json& obj_;
  std::string where_;
  std::string path_;
};

constexpr int64_t kMaxCount = std::numeric_limits<int32_t>::max();  // rows are int32 indices

Status ReadBlocks(const json& m, const std::string& where, std::vector<BlockLayout>* blocks) {
  auto it = m.find("blocks");
  if (it == m.end()) return Fields::Missing(where, "blocks", "an array of blocks");
  if (!it->is_array() || it->empty()) {
    return Fields::Wrong(where, "blocks", "a non-empty array of blocks", *it);
  }
  std::set<std::string> seen;
  int64_t next = 0;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& b = (*it)[i];
    const std::string path = "blocks[" + std::to_string(i) + "]";
    if (!b.is_object()) return Fields::Wrong(where, path, "an object", b);
    Fields f(b, where, path);
    BlockLayout blk;
    VITRINE_RETURN_IF_ERROR(f.String("name", &blk.name, /*allow_empty=*/false));
    if (std::find(std::begin(kBlockNames), std::end(kBlockNames), blk.name) ==
        std::end(kBlockNames)) {
      return Fields::Wrong(where, path + ".name", "one of cf, content, visual, pop, new, trend",
                           b["name"]);
    }
    if (!seen.insert(blk.name).second) {
      return Status::Corruption(where + ": '" + path + ".name': block '" + blk.name +
                                "' appears twice");
    }
    int64_t offset = 0, dim = 0;
    VITRINE_RETURN_IF_ERROR(f.Int("offset", next, next, &offset));  // contiguous from 0
    const int64_t max_dim = IsPriorBlock(blk.name) ? 1 : kMaxBlockDim;
    VITRINE_RETURN_IF_ERROR(f.Int("dim", 1, max_dim, &dim));
    double weight = 0;
    VITRINE_RETURN_IF_ERROR(f.Number("weight", 0.0, kMaxBlockWeight, &weight));
    blk.offset = static_cast<size_t>(offset);
    blk.dim = static_cast<size_t>(dim);
    blk.weight = static_cast<float>(weight);
    next += dim;
    blocks->push_back(std::move(blk));
  }
  return Status::OK();
}

// The shape of a listed .npy file, from its header; NotFound if not listed.
Status CheckShape(const Bundle& b, const char* name, int64_t rows, int64_t cols,
                  const std::string& rows_from, const std::string& cols_from) {
  if (!b.Has(name)) {
    return Status::Corruption(b.path(name).string() + ": not in the bundle (the manifest's " +
                              (rows_from.empty() ? cols_from : rows_from) + " needs it)");
  }
  VITRINE_ASSIGN_OR_RETURN(NpyShape shape, ReadNpyShape(b.path(name)));
  const std::string where = b.path(name).string() + ": shape (" + std::to_string(shape.rows) +
                            ", " + std::to_string(shape.cols) + ")";
  if (rows >= 0 && shape.rows != static_cast<size_t>(rows)) {
    return Status::Corruption(where + " but manifest.json " + rows_from + " is " +
                              std::to_string(rows));
  }
  if (cols >= 0 && shape.cols != static_cast<size_t>(cols)) {
    return Status::Corruption(where + " but manifest.json " + cols_from + " is " +
                              std::to_string(cols));
  }
  return Status::OK();
}

}  // namespace

bool IsPriorBlock(std::string_view name) {
  return name == "pop" || name == "new" || name == "trend";
}

const BlockLayout* BundleManifest::block(std::string_view name) const {
  for (const auto& b : blocks) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

int64_t BundleManifest::total_dim() const {
  return blocks.empty() ? 0 : static_cast<int64_t>(blocks.back().offset + blocks.back().dim);
}

Result<BundleManifest> BundleManifest::FromJson(const json& m, const std::string& where) {
  if (!m.is_object()) return Status::Corruption(where + ": expected a JSON object");
  BundleManifest out;

  VITRINE_ASSIGN_OR_RETURN(Fields catalog, Fields::Of(m, where, "catalog"));
  VITRINE_RETURN_IF_ERROR(catalog.String("id_column", &out.catalog.id_column, false));
  VITRINE_RETURN_IF_ERROR(catalog.String("schema", &out.catalog.schema));

  VITRINE_RETURN_IF_ERROR(ReadBlocks(m, where, &out.blocks));

  VITRINE_ASSIGN_OR_RETURN(Fields counts, Fields::Of(m, where, "counts"));
  VITRINE_RETURN_IF_ERROR(counts.Int("items", 1, kMaxCount, &out.counts.items));
  VITRINE_RETURN_IF_ERROR(counts.Int("users", 0, kMaxCount, &out.counts.users));
  VITRINE_RETURN_IF_ERROR(counts.Int("interactions", 0, INT64_MAX, &out.counts.interactions));
  VITRINE_RETURN_IF_ERROR(counts.Int("cold_items", 0, out.counts.items, &out.counts.cold_items));
  VITRINE_RETURN_IF_ERROR(counts.Int("dim", out.total_dim(), out.total_dim(), &out.counts.dim));
  if (counts.Has("deleted")) {
    VITRINE_RETURN_IF_ERROR(counts.Int("deleted", 0, out.counts.items, &out.counts.deleted));
  }

  VITRINE_ASSIGN_OR_RETURN(Fields index, Fields::Of(m, where, "index"));
  VITRINE_RETURN_IF_ERROR(index.String("spec", &out.index.spec, false));
  VITRINE_RETURN_IF_ERROR(index.String("metric", &out.index.metric, false));
  if (out.index.metric != "inner_product") {
    return Fields::Wrong(where, "index.metric", "\"inner_product\"", m["index"]["metric"]);
  }
  if (index.Has("ef_construction")) {
    VITRINE_RETURN_IF_ERROR(index.Int("ef_construction", 0, 1 << 20, &out.index.ef_construction));
  }
  if (index.Has("seed")) VITRINE_RETURN_IF_ERROR(index.Seed("seed", &out.index.seed));
  if (index.Has("describe")) VITRINE_RETURN_IF_ERROR(index.String("describe", &out.index.describe));
  if (index.Has("bytes_per_vector")) {
    VITRINE_RETURN_IF_ERROR(index.Number("bytes_per_vector", 0, 1e12, &out.index.bytes_per_vector));
  }
  if (m["index"].contains("search")) {
    VITRINE_ASSIGN_OR_RETURN(Fields search, Fields::Of(m["index"], where + ": index", "search"));
    VITRINE_RETURN_IF_ERROR(search.Int("ef_search", 1, 1 << 20, &out.index.ef_search));
    VITRINE_RETURN_IF_ERROR(search.Int("nprobe", 1, 1 << 20, &out.index.nprobe));
    VITRINE_RETURN_IF_ERROR(search.Int("refine_k_factor", 1, 1024, &out.index.refine_k_factor));
  }
  if (m["index"].contains("autotune")) out.index.autotune = m["index"]["autotune"];

  auto sim = m.find("similar_weights");
  if (sim != m.end()) {
    if (!sim->is_object()) return Fields::Wrong(where, "similar_weights", "an object", *sim);
    Fields f(*sim, where, "similar_weights");
    for (const auto& [name, v] : sim->items()) {
      if (!out.has_block(name)) {
        return Status::Corruption(where + ": 'similar_weights." + name + "': no such block");
      }
      double w = 0;
      VITRINE_RETURN_IF_ERROR(f.Number(name, 0.0, kMaxBlockWeight, &w));
      out.similar_weights[name] = static_cast<float>(w);
    }
  }

  const bool has_cf = out.has_block("cf");
  if (has_cf) {
    VITRINE_ASSIGN_OR_RETURN(Fields als, Fields::Of(m, where, "als"));
    AlsSection a;
    VITRINE_RETURN_IF_ERROR(als.Int("factors", 1, kMaxBlockDim, &a.factors));
    if (a.factors != static_cast<int>(out.block("cf")->dim)) {
      return Fields::Wrong(where, "als.factors",
                           "the cf block's dim " + std::to_string(out.block("cf")->dim),
                           m["als"]["factors"]);
    }
    VITRINE_RETURN_IF_ERROR(als.Number("regularization", 0, 1e6, &a.regularization));
    VITRINE_RETURN_IF_ERROR(als.Number("alpha", 0, 1e6, &a.alpha));
    VITRINE_RETURN_IF_ERROR(als.Int("iterations", 0, 1 << 20, &a.iterations));
    VITRINE_RETURN_IF_ERROR(als.Int("cg_steps", 0, 1 << 20, &a.cg_steps));
    VITRINE_RETURN_IF_ERROR(als.Seed("seed", &a.seed));
    out.als = a;
    VITRINE_ASSIGN_OR_RETURN(Fields cold, Fields::Of(m, where, "cold_start"));
    double norm = 1;
    VITRINE_RETURN_IF_ERROR(cold.Number("cf_row_norm", 0, 1, &norm));
    out.cold_cf_row_norm = static_cast<float>(norm);
    out.cold_start = m["cold_start"];
  } else if (out.counts.users > 0 && m.contains("als")) {
    return Status::Corruption(where + ": 'als' section without a cf block");
  }

  Fields top(m, where, "");
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("content_encoder", &out.content_encoder));
  if (out.has_block("content") && out.content_encoder.is_null()) {
    return Fields::Missing(where, "content_encoder", "an object");
  }
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("visual_encoder", &out.visual_encoder));
  if (out.has_block("visual") && out.visual_encoder.is_null()) {
    return Fields::Missing(where, "visual_encoder", "an object");
  }
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("recency", &out.recency));
  if (out.recency.is_object() && out.recency.contains("half_life_days")) {
    Fields recency(out.recency, where, "recency");
    VITRINE_RETURN_IF_ERROR(
        recency.Number("half_life_days", 1e-6, 1e6, &out.recency_half_life_days));
  }
  if (out.has_block("trend")) {
    VITRINE_ASSIGN_OR_RETURN(Fields trend, Fields::Of(m, where, "trend"));
    VITRINE_RETURN_IF_ERROR(
        trend.Int("window_hours", 1, kMaxTrendWindowHours, &out.trend_window_hours));
  }
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("item_neighbors", &out.item_neighbors));
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("taste_mixture", &out.taste_mixture));
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("ranker", &out.ranker));
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("tuning", &out.tuning));
  if (m.contains("privacy")) {
    VITRINE_ASSIGN_OR_RETURN(Fields privacy, Fields::Of(m, where, "privacy"));
    VITRINE_RETURN_IF_ERROR(privacy.String("sensitive", &out.privacy.sensitive));
    VITRINE_RETURN_IF_ERROR(privacy.Bool("policy", &out.privacy.policy));
  }
  VITRINE_RETURN_IF_ERROR(top.OptionalObject("differential_privacy", &out.differential_privacy));
  if (out.differential_privacy.is_object()) {
    Fields dp(out.differential_privacy, where, "differential_privacy");
    VITRINE_RETURN_IF_ERROR(dp.Number("epsilon", 0.01, 1000, &out.dp_epsilon));
    VITRINE_RETURN_IF_ERROR(dp.Number("delta", 1e-300, 0.1, &out.dp_delta));
  }
  if (m.contains("params")) {
    VITRINE_RETURN_IF_ERROR(top.OptionalObject("params", &out.params));
    if (out.params.is_null()) out.params = json::object();
  }
  return out;
}

Result<BundleManifest> BundleManifest::Read(const Bundle& b) {
  const std::string where = (b.dir() / kBundleManifestName).string();
  VITRINE_ASSIGN_OR_RETURN(BundleManifest m, FromJson(b.manifest(), where));
  namespace f = bundle_file;
  const int64_t n = m.counts.items;
  VITRINE_RETURN_IF_ERROR(
      CheckShape(b, f::kVectors, n, m.total_dim(), "counts.items", "blocks' total dim"));
  VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kPopularity, n, 1, "counts.items", "(one column)"));
  VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kCold, n, 1, "counts.items", "(one column)"));
  if (b.Has(f::kGifts)) {
    VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kGifts, n, 1, "counts.items", "(one column)"));
  }
  if (b.Has(f::kTrendBuckets) || b.Has(f::kTrendSums)) {
    VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kTrendBuckets, -1, 2, "", "(item, hour)"));
    VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kTrendSums, -1, 2, "", "(weight, events)"));
  }
  for (const char* name : {f::kIndex, f::kItemIds, f::kItems}) {
    if (!b.Has(name)) {
      return Status::Corruption(b.path(name).string() +
                                ": not in the bundle: not a complete vitrine build bundle");
    }
  }
  if (const BlockLayout* cf = m.block("cf")) {
    const auto factors = static_cast<int64_t>(cf->dim);
    VITRINE_RETURN_IF_ERROR(
        CheckShape(b, f::kItemFactors, n, factors, "counts.items", "cf block dim"));
    VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kHistoryIndptr, m.counts.users + 1, 1,
                                       "counts.users (+1)", "(one column)"));
    VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kHistoryIndices, -1, 1, "", "(one column)"));
    VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kHistoryWeights, -1, 1, "", "(one column)"));
    if (b.Has(f::kHistoryTimestamps)) {
      VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kHistoryTimestamps, -1, 1, "", "(one column)"));
    }
    if (!b.Has(f::kUserIds)) {
      return Status::Corruption(b.path(f::kUserIds).string() +
                                ": not in the bundle (a cf bundle lists its users)");
    }
  }
  if (b.Has(f::kRanker) != !m.ranker.is_null()) {
    return Status::Corruption(where + ": 'ranker' section and " + f::kRanker +
                              " must come together");
  }
  if (m.ranker.is_object() && m.ranker.contains("scorer")) {
    const json& sc = m.ranker["scorer"];
    if (!sc.is_string() || (sc != "ranker" && sc != "item_item" && sc != "hybrid")) {
      return Status::Corruption(where +
                                ": 'ranker.scorer': expected \"ranker\", \"item_item\" or "
                                "\"hybrid\"");
    }
    if (sc == "item_item" && !b.Has(f::kItemNeighbors)) {
      return Status::Corruption(
          where + ": 'ranker.scorer' is \"item_item\" but the bundle has no " + f::kItemNeighbors);
    }
  }
  if (b.Has(f::kItemNeighbors) != !m.item_neighbors.is_null()) {
    return Status::Corruption(where + ": 'item_neighbors' section and " + f::kItemNeighbors +
                              " must come together");
  }
  if (b.Has(f::kTasteTheta) != !m.taste_mixture.is_null() ||
      b.Has(f::kTastePrior) != !m.taste_mixture.is_null()) {
    return Status::Corruption(where + ": 'taste_mixture' section, " + f::kTasteTheta + " and " +
                              f::kTastePrior + " must come together");
  }
  if (b.Has(f::kTasteTheta)) {
    // Items added after the build (vitrine items add) have no row yet.
    VITRINE_ASSIGN_OR_RETURN(NpyShape theta, ReadNpyShape(b.path(f::kTasteTheta)));
    if (theta.rows == 0 || theta.rows > static_cast<size_t>(n) || theta.cols == 0 ||
        theta.cols > static_cast<size_t>(TasteMixture::kMaxClusters)) {
      return Status::Corruption(
          b.path(f::kTasteTheta).string() + ": shape (" + std::to_string(theta.rows) + ", " +
          std::to_string(theta.cols) + "), expected 1..counts.items (" + std::to_string(n) +
          ") rows and 1.." + std::to_string(TasteMixture::kMaxClusters) + " tastes");
    }
    VITRINE_RETURN_IF_ERROR(CheckShape(b, f::kTastePrior, static_cast<int64_t>(theta.cols), 1,
                                       "taste count (theta's columns)", "(one column)"));
  }
  if (b.Has(f::kTombstones)) {
    VITRINE_RETURN_IF_ERROR(
        CheckShape(b, f::kTombstones, m.counts.deleted, 1, "counts.deleted", "(one column)"));
  }
  return m;
}

void BundleManifest::Write(BundleWriter* w) const {
  json& m = w->manifest();
  m["catalog"] = {{"id_column", catalog.id_column}, {"schema", catalog.schema}};
  json blocks_json = json::array();
  for (const auto& b : blocks) {
    blocks_json.push_back(
        {{"name", b.name}, {"offset", b.offset}, {"dim", b.dim}, {"weight", b.weight}});
  }
  m["blocks"] = std::move(blocks_json);
  json sim = json::object();
  for (const auto& [name, w8] : similar_weights) sim[name] = w8;
  m["similar_weights"] = std::move(sim);
  json idx = {{"spec", index.spec},
              {"metric", index.metric},
              {"ef_construction", index.ef_construction},
              {"seed", index.seed},
              {"search",
               {{"ef_search", index.ef_search},
                {"nprobe", index.nprobe},
                {"refine_k_factor", index.refine_k_factor}}},
              {"describe", index.describe},
              {"bytes_per_vector", index.bytes_per_vector}};
  if (!index.autotune.is_null()) idx["autotune"] = index.autotune;
  m["index"] = std::move(idx);
  m["counts"] = {{"items", counts.items},
                 {"users", counts.users},
                 {"interactions", counts.interactions},
                 {"cold_items", counts.cold_items},
                 {"dim", counts.dim}};
  if (counts.deleted > 0) m["counts"]["deleted"] = counts.deleted;
  auto set_or_erase = [&m](const char* key, const json& v) {
    if (v.is_null()) {
      m.erase(key);
    } else {
      m[key] = v;
    }
  };
  if (als) {
    m["als"] = {{"factors", als->factors},   {"regularization", als->regularization},
                {"alpha", als->alpha},       {"iterations", als->iterations},
                {"cg_steps", als->cg_steps}, {"seed", als->seed}};
  } else {
    m.erase("als");
  }
  json cold = cold_start;
  if (!cold.is_null()) cold["cf_row_norm"] = cold_cf_row_norm;
  set_or_erase("cold_start", cold);
  set_or_erase("content_encoder", content_encoder);
  set_or_erase("visual_encoder", visual_encoder);
  set_or_erase("recency", recency);
  set_or_erase("trend",
               trend_window_hours > 0 ? json{{"window_hours", trend_window_hours}} : json());
  set_or_erase("item_neighbors", item_neighbors);
  set_or_erase("taste_mixture", taste_mixture);
  set_or_erase("ranker", ranker);
  set_or_erase("tuning", tuning);
  set_or_erase("privacy", privacy.sensitive.empty()
                              ? json()
                              : json{{"sensitive", privacy.sensitive}, {"policy", privacy.policy}});
  set_or_erase("differential_privacy", differential_privacy);
  m["params"] = params.is_null() ? json::object() : params;
}

StoredHistory StoredHistory::SelectUsers(const std::vector<int32_t>& keep) const {
  StoredHistory out;
  out.timed = timed;
  out.indptr.assign(keep.size() + 1, 0);
  for (size_t k = 0; k < keep.size(); ++k) {
    const auto u = static_cast<size_t>(keep[k]);
    for (int64_t j = indptr[u]; j < indptr[u + 1]; ++j) {
      const auto at = static_cast<size_t>(j);
      out.indices.push_back(indices[at]);
      out.weights.push_back(weights[at]);
      if (timed) out.times.push_back(times[at]);
    }
    out.indptr[k + 1] = static_cast<int64_t>(out.indices.size());
  }
  return out;
}

Result<StoredHistory> ReadStoredHistory(const Bundle& b, int64_t items) {
  namespace f = bundle_file;
  StoredHistory h;
  VITRINE_ASSIGN_OR_RETURN(MatrixI64 indptr, b.ReadMatrixI64(f::kHistoryIndptr));
  VITRINE_ASSIGN_OR_RETURN(MatrixI64 indices, b.ReadMatrixI64(f::kHistoryIndices));
  VITRINE_ASSIGN_OR_RETURN(Matrix weights, b.ReadMatrix(f::kHistoryWeights));
  h.indptr = std::move(indptr.data);
  h.indices = std::move(indices.data);
  h.weights = std::move(weights.data);
  if (h.indptr.empty() || h.indptr.front() != 0 ||
      h.indptr.back() != static_cast<int64_t>(h.indices.size()) ||
      h.weights.size() != h.indices.size()) {
    return Status::Corruption(b.path(f::kHistoryIndptr).string() +
                              ": does not span history/indices.npy (" +
                              std::to_string(h.indices.size()) + " entries) and weights.npy (" +
                              std::to_string(h.weights.size()) + ")");
  }
  for (size_t u = 1; u < h.indptr.size(); ++u) {
    if (h.indptr[u] < h.indptr[u - 1]) {
      return Status::Corruption(b.path(f::kHistoryIndptr).string() + ": entry " +
                                std::to_string(u) + " decreases");
    }
  }
  for (size_t k = 0; k < h.indices.size(); ++k) {
    if (h.indices[k] < 0 || h.indices[k] >= items || !std::isfinite(h.weights[k]) ||
        h.weights[k] < 0) {
      return Status::Corruption(b.path(f::kHistoryIndices).string() + ": entry " +
                                std::to_string(k) +
                                " is not an item row with a finite, non-negative weight");
    }
  }
  if (b.Has(f::kHistoryTimestamps)) {
    VITRINE_ASSIGN_OR_RETURN(MatrixI64 times, b.ReadMatrixI64(f::kHistoryTimestamps));
    if (times.data.size() != h.indices.size()) {
      return Status::Corruption(b.path(f::kHistoryTimestamps).string() + ": " +
                                std::to_string(times.data.size()) +
                                " entries, history/indices.npy has " +
                                std::to_string(h.indices.size()));
    }
    h.times = std::move(times.data);
    h.timed = true;
  }
  return h;
}

Status WriteStoredHistory(BundleWriter* w, const StoredHistory& h) {
  namespace f = bundle_file;
  auto column = [](const auto& values) {
    using T = typename std::decay_t<decltype(values)>::value_type;
    DenseMatrix<T> m(values.size(), 1);
    m.data = values;
    return m;
  };
  MatrixI64 indptr = column(h.indptr);
  VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kHistoryIndptr, indptr));
  VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kHistoryIndices, column(h.indices)));
  VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kHistoryWeights, column(h.weights)));
  if (h.timed) {
    VITRINE_RETURN_IF_ERROR(w->WriteMatrix(f::kHistoryTimestamps, column(h.times)));
  }
  return Status::OK();
}

}  // namespace vitrine
