#include "engine/engine.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/simd.h"
#include "engine/catalog_update.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

void NormalizeSegment(float* v, size_t dim) {
  double s = 0;
  for (size_t j = 0; j < dim; ++j) s += static_cast<double>(v[j]) * v[j];
  if (s <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(s));
  for (size_t j = 0; j < dim; ++j) v[j] *= inv;
}

// The CPU's float kernel (core/simd.h); a plain float loop is one serial
// chain of adds (GCC may not reorder float sums).
float Dot(const float* a, const float* b, size_t d) { return simd::InnerProduct(a, b, d); }

const char* BlockReason(const std::string& block) {
  if (block == "cf") return "liked by the same shoppers";
  if (block == "visual") return "visually similar";
  if (block == "pop") return "popular with shoppers";
  if (block == "new") return "new arrival";
  return "similar attributes";
}

// One-dimensional prior blocks: the item's value is the prior itself and a
// query holds 1 there, so the score adds w * prior.
bool IsPrior(const std::string& block) { return block == "pop" || block == "new"; }

}  // namespace

Result<std::map<std::string, float>> ParseBlockWeights(std::string_view spec) {
  std::map<std::string, float> w;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string_view::npos) end = spec.size();
    const std::string part(spec.substr(pos, end - pos));
    const size_t eq = part.find('=');
    char* stop = nullptr;
    const float v = eq == std::string::npos ? 0 : std::strtof(part.c_str() + eq + 1, &stop);
    if (eq == std::string::npos || eq == 0 || stop == part.c_str() + eq + 1 || *stop != '\0' ||
        !std::isfinite(v)) {
      return Status::InvalidArgument("weights: '" + part + "': expected block=number");
    }
    w[part.substr(0, eq)] = v;
    pos = end + 1;
  }
  return w;
}

Status ParseDiversity(std::string_view spec, QueryOptions* q) {
  const std::string div(spec);
  const size_t colon = div.find(':');
  const std::string kind = div.substr(0, colon);
  float value = 0;
  if (colon != std::string::npos) {
    const std::string v = div.substr(colon + 1);
    char* end = nullptr;
    value = std::strtof(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(value)) {
      return Status::InvalidArgument("diversity '" + div + "': expected a number after ':'");
    }
  }
  if (kind == "none" && colon == std::string::npos) {
    q->diversity = Diversity::kNone;
  } else if (kind == "mmr") {
    q->diversity = Diversity::kMMR;
    if (colon != std::string::npos) q->mmr_lambda = value;
  } else if (kind == "dpp") {
    q->diversity = Diversity::kDPP;
    if (colon != std::string::npos) q->dpp_theta = value;
  } else {
    return Status::InvalidArgument("diversity '" + div +
                                   "': expected none, mmr[:lambda] or dpp[:theta]");
  }
  return Status::OK();
}

Result<std::unique_ptr<Engine>> Engine::Open(const fs::path& dir, VerifyMode verify) {
  std::unique_ptr<Engine> e(new Engine());
  VITRINE_ASSIGN_OR_RETURN(Bundle bundle, Bundle::Open(dir, verify));
  e->bundle_.emplace(std::move(bundle));
  const auto& m = e->bundle_->manifest();
  if (!m.contains("catalog") || !m.contains("index")) {
    return Status::Corruption((dir / "manifest.json").string() +
                              ": no 'catalog' or 'index' section: not a vitrine build bundle");
  }
  CatalogReadOptions copts;
  copts.id_column = m["catalog"].value("id_column", "item_id");
  VITRINE_ASSIGN_OR_RETURN(copts.schema, Schema::Parse(m["catalog"].value("schema", "")));
  VITRINE_ASSIGN_OR_RETURN(e->catalog_, Catalog::ReadCsv(e->bundle_->path("items.csv"), copts));
  VITRINE_ASSIGN_OR_RETURN(e->layout_, LayoutFromJson(m["blocks"]));
  e->operating_point_.ef_search = 128;
  e->operating_point_.nprobe = 32;
  if (m["index"].contains("search") && m["index"]["search"].is_object()) {
    const auto& sp = m["index"]["search"];
    e->operating_point_.ef_search = sp.value("ef_search", 128);
    e->operating_point_.nprobe = sp.value("nprobe", 32);
    e->operating_point_.refine_k_factor =
        sp.value("refine_k_factor", e->operating_point_.refine_k_factor);
  }
  if (m.contains("similar_weights") && m["similar_weights"].is_object()) {
    for (const auto& [name, w] : m["similar_weights"].items()) {
      if (w.is_number()) e->similar_weights_[name] = w.get<float>();
    }
  }
  VITRINE_ASSIGN_OR_RETURN(Matrix vectors, e->bundle_->ReadMatrix("vectors.npy"));
  if (vectors.rows != static_cast<size_t>(e->catalog_.size())) {
    return Status::Corruption(e->bundle_->path("vectors.npy").string() + ": " +
                              std::to_string(vectors.rows) + " rows for " +
                              std::to_string(e->catalog_.size()) + " items");
  }
  e->vectors_ = std::make_shared<const Matrix>(std::move(vectors));
  VITRINE_ASSIGN_OR_RETURN(e->index_,
                           VectorIndex::Load(e->bundle_->path("index.faiss"), e->vectors_));
  VITRINE_ASSIGN_OR_RETURN(e->attributes_, AttributeIndex::Build(e->catalog_));
  // Items removed by `vitrine items remove` (engine/catalog_update.h) become
  // index tombstones, so no search returns them; they remain valid queries.
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(*e->bundle_));
  if (!deleted.empty()) {
    Bitmap gone;
    for (int64_t d : deleted) {
      if (d >= e->catalog_.size()) {
        return Status::Corruption(e->bundle_->path(kTombstoneFile).string() + ": item " +
                                  std::to_string(d) + " is beyond the catalog's " +
                                  std::to_string(e->catalog_.size()) + " items");
      }
      gone.add(static_cast<uint32_t>(d));
    }
    VITRINE_RETURN_IF_ERROR(e->index_->Remove(gone));
  }

  VITRINE_ASSIGN_OR_RETURN(MatrixI64 cold, e->bundle_->ReadMatrixI64("cold.npy"));
  e->cold_ = std::move(cold.data);
  VITRINE_ASSIGN_OR_RETURN(Matrix pop, e->bundle_->ReadMatrix("popularity.npy"));
  e->popularity_ = std::move(pop.data);

  e->has_cf_ = e->bundle_->Has("cf/item_factors.npy");
  if (e->has_cf_) {
    {
      VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> users, e->bundle_->ReadIds("user_ids.txt"));
      e->users_.Reserve(users.size());
      for (const auto& u : users) e->users_.Add(u);
    }
    // cf/user_factors.npy is not loaded: a user's cf query is the fold-in of
    // their stored history against the final item factors (implicit's
    // recalculate_user), exact and a few microseconds, so serving holds no
    // per-user vectors (1M users x 64 factors would be 256 MB).
    VITRINE_ASSIGN_OR_RETURN(Matrix itf, e->bundle_->ReadMatrix("cf/item_factors.npy"));
    ImplicitALS::Config cfg;
    cfg.factors = static_cast<int>(itf.cols);
    const size_t factors = itf.cols;
    cfg.regularization = m["als"].value("regularization", cfg.regularization);
    cfg.alpha = m["als"].value("alpha", cfg.alpha);
    e->als_ = ImplicitALS(cfg);
    VITRINE_RETURN_IF_ERROR(e->als_.set_factors(Matrix(0, factors), std::move(itf))
                                .WithContext(e->bundle_->path("cf").string()));
    VITRINE_ASSIGN_OR_RETURN(MatrixI64 indptr, e->bundle_->ReadMatrixI64("history/indptr.npy"));
    VITRINE_ASSIGN_OR_RETURN(MatrixI64 indices, e->bundle_->ReadMatrixI64("history/indices.npy"));
    VITRINE_ASSIGN_OR_RETURN(Matrix weights, e->bundle_->ReadMatrix("history/weights.npy"));
    e->hist_indptr_ = std::move(indptr.data);
    e->hist_indices_.assign(indices.data.begin(), indices.data.end());
    e->hist_weights_ = std::move(weights.data);
  }
  // Loading went through whole-file buffers (index bytes, parsed CSV, npy
  // copies) that are freed now; hand their pages back to the OS instead of
  // keeping them in glibc's heap (a server reloading bundles would otherwise
  // hold the peak, not the loaded size).
  malloc_trim(0);
  return e;
}

Result<int32_t> Engine::FindItem(std::string_view id) const {
  auto i = catalog_.ids.Find(id);
  if (!i) return Status::NotFound("unknown item '" + std::string(id) + "'");
  return *i;
}

std::vector<int32_t> Engine::UserHistory(int32_t user) const {
  if (user < 0 || static_cast<size_t>(user) + 1 >= hist_indptr_.size()) return {};
  return {hist_indices_.begin() + hist_indptr_[user],
          hist_indices_.begin() + hist_indptr_[user + 1]};
}

std::vector<float> Engine::UserHistoryWeights(int32_t user) const {
  if (user < 0 || static_cast<size_t>(user) + 1 >= hist_indptr_.size()) return {};
  return {hist_weights_.begin() + hist_indptr_[user],
          hist_weights_.begin() + hist_indptr_[user + 1]};
}

void Engine::SetPriorSegment(std::vector<float>* query) const {
  for (const auto& b : layout_) {
    if (IsPrior(b.name))
      std::fill_n(query->begin() + static_cast<std::ptrdiff_t>(b.offset), b.dim, 1.0f);
  }
}

CsrMatrix Engine::TrainMatrix() const {
  CsrMatrix m;
  m.rows = users_.size();
  m.cols = catalog_.size();
  m.indptr = hist_indptr_.empty() ? std::vector<int64_t>{0} : hist_indptr_;
  m.indices = hist_indices_;
  m.values = hist_weights_;
  return m;
}

Result<std::vector<float>> Engine::HistoryVector(std::span<const int32_t> items,
                                                 std::span<const float> weights) const {
  const size_t dim = vectors_->cols;
  std::vector<float> q(dim, 0.0f);
  for (size_t h = 0; h < items.size(); ++h) {
    const float* v = vectors_->row(static_cast<size_t>(items[h]));
    const float w = weights.empty() ? 1.0f : weights[h];
    for (size_t j = 0; j < dim; ++j) q[j] += w * v[j];
  }
  for (const auto& b : layout_) {
    if (b.name == "cf" && has_cf_) {
      // The session's taste in cf space is its ALS fold-in, not the mean of
      // item factors (which would ignore the confidence weighting).
      std::vector<float> w(weights.begin(), weights.end());
      if (w.empty()) w.assign(items.size(), 1.0f);
      VITRINE_ASSIGN_OR_RETURN(std::vector<float> x, als_.fold_in(items, w));
      std::copy(x.begin(), x.end(), q.begin() + static_cast<std::ptrdiff_t>(b.offset));
    }
    NormalizeSegment(q.data() + b.offset, b.dim);
  }
  SetPriorSegment(&q);
  return q;
}

Result<std::vector<Hit>> Engine::Search(std::vector<float> query, const QueryOptions& q,
                                        const std::vector<int32_t>& drop,
                                        std::span<const int32_t> history,
                                        std::optional<int32_t> current_item) const {
  if (q.k < 1) return Status::InvalidArgument("k must be at least 1, got " + std::to_string(q.k));
  const std::vector<float> unscaled = query;
  VITRINE_RETURN_IF_ERROR(ScaleQuery(layout_, q.weights, query.data()));

  // Everything that decides whether an item may appear is one bitmap, used
  // inside the ANN search (DESIGN.md decision 2), never as a post-filter.
  Bitmap allowed = q.allowed != nullptr ? *q.allowed : attributes_.All();
  RequestRules request_rules;
  if (q.rules != nullptr) {
    RequestContext ctx = q.context;
    ctx.current_item = current_item;
    VITRINE_ASSIGN_OR_RETURN(Bitmap by_rules,
                             q.rules->AllowedItems(attributes_, ctx, q.static_allowed));
    allowed &= by_rules;
    VITRINE_ASSIGN_OR_RETURN(request_rules, q.rules->ForRequest(ctx));
  }
  for (int32_t d : drop) allowed.remove(static_cast<uint32_t>(d));
  allowed -= index_->deleted();  // tombstones, so that PIN rules cannot bring them back
  for (int32_t d : q.exclude) allowed.remove(static_cast<uint32_t>(d));

  const bool rerank = q.rules != nullptr || q.diversity != Diversity::kNone;
  int pool =
      rerank ? std::max(q.k, q.pool > 0 ? q.pool : std::max(kDefaultPoolFactor * q.k, 100)) : q.k;
  const auto n_allowed = static_cast<int64_t>(allowed.cardinality());
  const size_t dim = vectors_->cols;
  std::vector<Hit> hits;
  // Caps can leave a pool short of k results although more allowed items
  // exist further out: widen the pool (x4) until k results or every allowed
  // item has been a candidate, so k results come back whenever they exist.
  while (true) {
    SearchParams p;
    p.k = pool;
    p.ef_search = std::max(q.ef_search > 0 ? q.ef_search : operating_point_.ef_search, pool);
    p.nprobe = q.nprobe > 0 ? q.nprobe : operating_point_.nprobe;
    p.refine_k_factor = operating_point_.refine_k_factor;
    p.filter = &allowed;
    std::vector<int64_t> labels;
    std::vector<float> dist;
    VITRINE_RETURN_IF_ERROR(index_->Search(query.data(), 1, p, &labels, &dist));

    // Exact scores on the candidates, whatever the index's own (possibly
    // quantised) distance.
    std::vector<Candidate> cands;
    // Unit copies only for MMR/DPP, which compare candidates with each other.
    const bool diversify = q.diversity != Diversity::kNone;
    UnitVectors unit(diversify ? labels.size() : 0, dim);
    for (int64_t id : labels) {
      if (id < 0) continue;
      const float* v = vectors_->row(static_cast<size_t>(id));
      cands.push_back(
          {static_cast<int32_t>(id), Dot(query.data(), v, dim), diversify ? unit.Add(v) : nullptr});
    }

    hits.clear();
    if (!rerank) {
      std::stable_sort(cands.begin(), cands.end(),
                       [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
      for (const Candidate& c : cands) hits.push_back(Hit{c.item, c.score, {}, false, {}, {}});
      break;
    }
    RerankOptions ro;
    ro.k = q.k;
    ro.diversity = q.diversity;
    ro.lambda = q.mmr_lambda;
    ro.theta = q.dpp_theta;
    ro.dim = static_cast<int>(dim);
    VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked,
                             Rerank(cands, request_rules, ro, &allowed));
    for (RankedItem& r : ranked) {
      hits.push_back(Hit{r.item, r.score, {}, r.pinned, std::move(r.rule_lines), {}});
    }
    if (static_cast<int>(hits.size()) >= q.k || pool >= n_allowed) break;
    pool = static_cast<int>(std::min<int64_t>(n_allowed, static_cast<int64_t>(pool) * 4));
  }

  for (Hit& h : hits) {
    const float* v = vectors_->row(static_cast<size_t>(h.item));
    h.block_cos = BlockCosines(layout_, unscaled.data(), v);
    for (size_t b = 0; b < layout_.size(); ++b) {
      if (IsPrior(layout_[b].name)) h.block_cos[b] = v[layout_[b].offset];  // the prior itself
    }
    // The reason: the history item that contributes most (like implicit's
    // explain), else the block that contributes most to the score.
    if (h.pinned) {
      h.reason = "pinned";
    } else if (!history.empty()) {
      int32_t best = history[0];
      float best_s = -1e30f;
      for (int32_t hi : history) {
        const float s = Dot(vectors_->row(static_cast<size_t>(hi)), v, dim);
        if (s > best_s) best_s = s, best = hi;
      }
      h.reason = "similar to " + catalog_.ids.id(best) + " you viewed";
    } else {
      size_t best = 0;
      float best_c = -1e30f;
      for (size_t b = 0; b < layout_.size(); ++b) {
        auto it = q.weights.find(layout_[b].name);
        const float w = it == q.weights.end() ? layout_[b].weight : it->second;
        if (w * h.block_cos[b] > best_c) best_c = w * h.block_cos[b], best = b;
      }
      h.reason = BlockReason(layout_[best].name);
    }
    if (!h.pinned && !h.rule_lines.empty()) {
      const char* verb = request_rules.BoostFactor(h.item) >= 1.0 ? "boosted" : "buried";
      for (int line : h.rule_lines)
        h.reason += std::string("; ") + verb + " by rule " + std::to_string(line);
    }
    if (is_cold(h.item)) h.reason += " (cold-start item)";
  }
  return hits;
}

Result<std::vector<Hit>> Engine::Similar(std::string_view id, const QueryOptions& q) const {
  VITRINE_ASSIGN_OR_RETURN(int32_t item, FindItem(id));
  const float* v = vectors_->row(static_cast<size_t>(item));
  std::vector<float> query(v, v + vectors_->cols);
  // Stored cf rows keep ALS norms (popularity); a query segment is a direction.
  for (const auto& b : layout_) NormalizeSegment(query.data() + b.offset, b.dim);
  SetPriorSegment(&query);
  QueryOptions with_defaults = q;
  for (const auto& [name, w] : similar_weights_) with_defaults.weights.emplace(name, w);
  return Search(std::move(query), with_defaults, {item}, {}, item);
}

namespace {
constexpr int64_t kMinCategoryPairUsers = 5;

// Users per category pair: users[c * n + d] = users with items in both c and
// d (c != d), plus per-category user counts on the diagonal.
std::vector<int64_t> CategoryCooccurrence(const Column& col, const std::vector<int64_t>& indptr,
                                          const std::vector<int32_t>& indices) {
  const size_t n = col.dictionary.size();
  std::vector<int64_t> users(n * n, 0);
  std::vector<int32_t> cats;
  for (size_t u = 0; u + 1 < indptr.size(); ++u) {
    cats.clear();
    for (int64_t p = indptr[u]; p < indptr[u + 1]; ++p) {
      const int32_t c = col.codes[static_cast<size_t>(indices[static_cast<size_t>(p)])];
      if (c >= 0) cats.push_back(c);
    }
    std::sort(cats.begin(), cats.end());
    cats.erase(std::unique(cats.begin(), cats.end()), cats.end());
    for (int32_t a : cats) {
      for (int32_t b : cats) ++users[static_cast<size_t>(a) * n + static_cast<size_t>(b)];
    }
  }
  return users;
}
}  // namespace

Result<std::vector<LookSlot>> Engine::CompleteTheLook(const CompleteRequest& r) const {
  VITRINE_ASSIGN_OR_RETURN(int32_t item, FindItem(r.item));
  const Column* col = catalog_.column(r.category_column);
  if (col == nullptr || col->type != ColumnType::kCategorical) {
    return Status::InvalidArgument("no categorical column '" + r.category_column +
                                   "' in the catalog (--category-column)");
  }
  const int32_t cat = col->codes[static_cast<size_t>(item)];
  if (cat < 0) {
    return Status::InvalidArgument("item '" + r.item + "' has no " + r.category_column);
  }
  // Candidate categories with their lift, best first.
  std::vector<std::pair<double, int32_t>> ranked;
  const std::string& name = col->dictionary[static_cast<size_t>(cat)];
  if (!r.pairs.empty()) {
    auto it = r.pairs.find(name);
    if (it != r.pairs.end()) {
      for (const auto& d : it->second) {
        auto code = std::find(col->dictionary.begin(), col->dictionary.end(), d);
        if (code == col->dictionary.end()) {
          return Status::InvalidArgument("complement '" + d + "' of '" + name + "' is not a " +
                                         r.category_column + " of the catalog");
        }
        ranked.emplace_back(0.0, static_cast<int32_t>(code - col->dictionary.begin()));
      }
    }
  } else {
    if (hist_indptr_.size() < 2) {
      return Status::InvalidArgument(
          "the bundle has no interactions to learn complementary categories from; give pairs "
          "(--pairs)");
    }
    const auto users = CategoryCooccurrence(*col, hist_indptr_, hist_indices_);
    const size_t n = col->dictionary.size();
    const double total = static_cast<double>(hist_indptr_.size() - 1);
    const auto c = static_cast<size_t>(cat);
    for (size_t d = 0; d < n; ++d) {
      const int64_t both = users[c * n + d];
      if (d == c || both < kMinCategoryPairUsers) continue;
      const double lift = static_cast<double>(both) * total /
                          (static_cast<double>(users[c * n + c]) * users[d * n + d]);
      if (lift > 1.0) ranked.emplace_back(lift, static_cast<int32_t>(d));
    }
    std::sort(ranked.begin(), ranked.end(), std::greater<>());
  }

  const float* v = vectors_->row(static_cast<size_t>(item));
  std::vector<float> query(v, v + vectors_->cols);
  for (const auto& b : layout_) NormalizeSegment(query.data() + b.offset, b.dim);
  SetPriorSegment(&query);
  // Across categories, looks do not transfer (a shoe does not look like a
  // coat): shoppers, attributes (tier, price, brand) and popularity do.
  QueryOptions q = r.query;
  q.k = 1;
  for (const auto& [block, w] : std::map<std::string, float>{
           {"cf", 1.0f}, {"content", 0.5f}, {"visual", 0.0f}, {"pop", 0.2f}}) {
    for (const auto& b : layout_) {
      if (b.name == block) q.weights.emplace(block, w);
    }
  }
  std::vector<LookSlot> slots;
  for (const auto& [lift, d] : ranked) {
    if (static_cast<int>(slots.size()) >= r.max_categories) break;
    VITRINE_ASSIGN_OR_RETURN(
        Bitmap in_cat,
        attributes_.Equals(r.category_column, col->dictionary[static_cast<size_t>(d)]));
    if (r.query.allowed != nullptr) in_cat &= *r.query.allowed;
    q.allowed = &in_cat;
    VITRINE_ASSIGN_OR_RETURN(std::vector<Hit> hits, Search(query, q, {item}, {}, item));
    if (hits.empty()) continue;  // nothing of that category passes the rules
    slots.push_back({col->dictionary[static_cast<size_t>(d)], lift, std::move(hits[0])});
    Hit& h = slots.back().hit;
    h.reason = (lift > 0 ? "often bought with " + name + " (lift " +
                               std::to_string(lift).substr(0, 4) + ")"
                         : "pairs with " + name) +
               (h.reason.empty() ? "" : "; " + h.reason);
  }
  return slots;
}

Result<std::vector<Hit>> Engine::Recommend(const RecommendRequest& r) const {
  std::vector<int32_t> items;
  std::vector<float> weights;
  if (r.user) {
    auto u = users_.Find(*r.user);
    if (!u) return Status::NotFound("unknown user '" + *r.user + "'");
    const int64_t b = hist_indptr_[*u], e = hist_indptr_[*u + 1];
    items.assign(hist_indices_.begin() + b, hist_indices_.begin() + e);
    weights.assign(hist_weights_.begin() + b, hist_weights_.begin() + e);
  }
  if (!r.history_weights.empty() && r.history_weights.size() != r.history.size()) {
    return Status::InvalidArgument("history has " + std::to_string(r.history.size()) +
                                   " items but " + std::to_string(r.history_weights.size()) +
                                   " weights");
  }
  for (size_t h = 0; h < r.history.size(); ++h) {
    VITRINE_ASSIGN_OR_RETURN(int32_t i, FindItem(r.history[h]));
    items.push_back(i);
    weights.push_back(r.history_weights.empty() ? 1.0f : r.history_weights[h]);
  }
  if (items.empty()) {
    return Status::InvalidArgument("empty history: give --user or --history item ids");
  }
  VITRINE_ASSIGN_OR_RETURN(std::vector<float> q, HistoryVector(items, weights));
  std::vector<int32_t> drop;
  if (r.filter_already_seen) drop = items;
  return Search(std::move(q), r.query, drop, items, std::nullopt);
}

}  // namespace vitrine
