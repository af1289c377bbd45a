#include "engine/engine.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "core/progress.h"
#include "core/simd.h"
#include "engine/catalog_update.h"
#include "engine/privacy.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

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

}  // namespace

void AppendRuleReasons(Hit* h) {
  if (h->pinned || h->rule_lines.empty()) return;
  const char* verb = h->boost >= 1.0 ? "boosted" : "buried";
  for (int line : h->rule_lines)
    h->reason += std::string("; ") + verb + " by rule " + std::to_string(line);
}

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

Status ParseDiversity(std::string_view spec, QueryParams* q) {
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
    // The ranges rank/diversify.h checks, here so that a bad spec is the
    // caller's usage error, before any work.
    if (colon != std::string::npos && !(value >= 0 && value <= 1)) {
      return Status::InvalidArgument("diversity '" + div + "': the MMR lambda must be in [0, 1]");
    }
    q->diversity = Diversity::kMMR;
    if (colon != std::string::npos) q->mmr_lambda = value;
  } else if (kind == "dpp") {
    if (colon != std::string::npos && !(value >= 0 && value < 1)) {
      return Status::InvalidArgument("diversity '" + div + "': the DPP theta must be in [0, 1)");
    }
    q->diversity = Diversity::kDPP;
    if (colon != std::string::npos) q->dpp_theta = value;
  } else {
    return Status::InvalidArgument("diversity '" + div +
                                   "': expected none, mmr[:lambda] or dpp[:theta]");
  }
  return Status::OK();
}

Result<std::unique_ptr<Engine>> Engine::Open(const fs::path& dir, VerifyMode verify) {
  namespace f = bundle_file;
  std::unique_ptr<Engine> e(new Engine());
  VITRINE_ASSIGN_OR_RETURN(Bundle bundle, Bundle::Open(dir, verify));
  e->bundle_.emplace(std::move(bundle));
  const Bundle& b = *e->bundle_;
  // Every number below has been checked against the arrays it describes.
  VITRINE_ASSIGN_OR_RETURN(e->manifest_, BundleManifest::Read(b));
  const BundleManifest& m = e->manifest_;
  CatalogReadOptions copts;
  copts.id_column = m.catalog.id_column;
  VITRINE_ASSIGN_OR_RETURN(copts.schema, Schema::Parse(m.catalog.schema));
  VITRINE_ASSIGN_OR_RETURN(e->catalog_, Catalog::ReadCsv(b.path(f::kItems), copts));
  if (e->catalog_.size() != m.counts.items) {
    return Status::Corruption(
        b.path(f::kItems).string() + ": " + std::to_string(e->catalog_.size()) +
        " items, manifest.json counts.items is " + std::to_string(m.counts.items));
  }
  e->layout_ = m.blocks;
  e->similar_weights_ = m.similar_weights;
  e->operating_point_.ef_search = m.index.ef_search;
  e->operating_point_.nprobe = m.index.nprobe;
  e->operating_point_.refine_k_factor = m.index.refine_k_factor;
  VITRINE_ASSIGN_OR_RETURN(Matrix vectors, b.ReadMatrix(f::kVectors));
  e->vectors_ = std::make_shared<const Matrix>(std::move(vectors));
  VITRINE_ASSIGN_OR_RETURN(e->index_, VectorIndex::Load(b.path(f::kIndex), e->vectors_));
  VITRINE_ASSIGN_OR_RETURN(e->attributes_, AttributeIndex::Build(e->catalog_));
  if (!m.privacy.sensitive.empty()) {
    VITRINE_ASSIGN_OR_RETURN(
        e->sensitive_,
        SensitiveItems(e->catalog_, e->attributes_, m.privacy.sensitive,
                       (b.dir() / kBundleManifestName).string() + ": privacy.sensitive"));
  }
  // Items removed by `vitrine items remove` (engine/catalog_update.h) become
  // index tombstones, so no search returns them; they remain valid queries.
  VITRINE_ASSIGN_OR_RETURN(std::vector<int64_t> deleted, ReadTombstones(b, m.counts.items));
  if (!deleted.empty()) {
    Bitmap gone;
    for (int64_t d : deleted) gone.add(static_cast<uint32_t>(d));  // in range: ReadTombstones
    VITRINE_RETURN_IF_ERROR(e->index_->Remove(gone));
  }

  VITRINE_ASSIGN_OR_RETURN(MatrixI64 cold, b.ReadMatrixI64(f::kCold));
  e->cold_ = std::move(cold.data);
  VITRINE_ASSIGN_OR_RETURN(Matrix pop, b.ReadMatrix(f::kPopularity));
  e->popularity_ = std::move(pop.data);
  e->attribute_profile_ = AttributeProfile::Build(e->catalog_, e->popularity_);
  if (b.Has(f::kGifts)) {
    VITRINE_ASSIGN_OR_RETURN(Matrix gifts, b.ReadMatrix(f::kGifts));
    float top = 0;
    for (float g : gifts.data) {
      if (!std::isfinite(g) || g < 0) {
        return Status::Corruption(b.path(f::kGifts).string() +
                                  ": a gift weight is negative or not finite");
      }
      top = std::max(top, g);
    }
    e->gift_prior_.resize(gifts.data.size());
    for (size_t i = 0; i < gifts.data.size(); ++i) {
      e->gift_prior_[i] = top > 0 ? std::log1p(gifts.data[i]) / std::log1p(top) : 0.0f;
    }
  }

  e->has_cf_ = m.als.has_value();
  if (e->has_cf_) {
    {
      VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> users, b.ReadIds(f::kUserIds));
      if (static_cast<int64_t>(users.size()) != m.counts.users) {
        return Status::Corruption(
            b.path(f::kUserIds).string() + ": " + std::to_string(users.size()) +
            " users, manifest.json counts.users is " + std::to_string(m.counts.users));
      }
      e->users_.Reserve(users.size());
      for (const auto& u : users) e->users_.Add(u);
    }
    // cf/user_factors.npy is not loaded: a user's cf query is the fold-in of
    // their stored history against the final item factors (implicit's
    // recalculate_user), exact and a few microseconds, so serving holds no
    // per-user vectors (1M users x 64 factors would be 256 MB).
    VITRINE_ASSIGN_OR_RETURN(Matrix itf, b.ReadMatrix(f::kItemFactors));
    AlsOptions cfg;
    cfg.factors = m.als->factors;
    cfg.regularization = static_cast<float>(m.als->regularization);
    cfg.alpha = static_cast<float>(m.als->alpha);
    e->als_ = ImplicitALS(cfg);
    VITRINE_RETURN_IF_ERROR(
        e->als_.SetFactors(Matrix(0, itf.cols), std::move(itf)).WithContext(b.path("cf").string()));
    VITRINE_ASSIGN_OR_RETURN(StoredHistory history, ReadStoredHistory(b, e->catalog_.size()));
    e->hist_indptr_ = std::move(history.indptr);
    e->hist_indices_.assign(history.indices.begin(), history.indices.end());
    e->hist_weights_ = std::move(history.weights);
    e->hist_times_ = std::move(history.times);
    if (b.Has(f::kOptOut)) {
      VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> ids, b.ReadIds(f::kOptOut));
      for (const std::string& id : ids) {
        if (auto u = e->users_.Find(id)) e->opted_out_.push_back(*u);
      }
      std::sort(e->opted_out_.begin(), e->opted_out_.end());
    }
  }
  if (b.Has(f::kItemNeighbors)) {
    VITRINE_ASSIGN_OR_RETURN(std::string bytes, b.ReadBytes(f::kItemNeighbors));
    VITRINE_ASSIGN_OR_RETURN(ItemNeighbors nb,
                             ItemNeighbors::Deserialize(bytes, b.path(f::kItemNeighbors).string()));
    if (nb.num_items() > e->catalog_.size()) {
      return Status::Corruption(b.path(f::kItemNeighbors).string() + ": " +
                                std::to_string(nb.num_items()) + " items, the catalog has " +
                                std::to_string(e->catalog_.size()));
    }
    e->neighbors_.emplace(std::move(nb));
  }
  if (b.Has(f::kTasteTheta)) {
    VITRINE_ASSIGN_OR_RETURN(Matrix theta, b.ReadMatrix(f::kTasteTheta));
    VITRINE_ASSIGN_OR_RETURN(Matrix prior, b.ReadMatrix(f::kTastePrior));
    VITRINE_ASSIGN_OR_RETURN(TasteMixture mixture,
                             TasteMixture::FromArrays(std::move(theta), std::move(prior),
                                                      b.path(f::kTasteTheta).string()));
    e->mixture_.emplace(std::move(mixture));
  }
  if (b.Has(f::kRanker)) {
    VITRINE_ASSIGN_OR_RETURN(std::string bytes, b.ReadBytes(f::kRanker));
    VITRINE_ASSIGN_OR_RETURN(
        LearnedRanker ranker,
        LearnedRanker::Deserialize(bytes, b.path(f::kRanker).string(), kRankerFeatures));
    e->ranker_.emplace(std::move(ranker));
    // Checked by BundleManifest::Read: a string, "ranker", "item_item" or "hybrid".
    e->rank_by_item_item_ = e->manifest_.ranker.value("scorer", "ranker") == "item_item";
    e->answer_with_hybrid_ = e->manifest_.ranker.value("scorer", "ranker") == "hybrid";
  }
  for (const auto& block : e->layout_) {
    if (block.name != "new" || !m.recency.is_object()) continue;
    e->half_life_days_ = m.recency_half_life_days;
    e->newness_.resize(static_cast<size_t>(e->catalog_.size()));
    for (size_t i = 0; i < e->newness_.size(); ++i)
      e->newness_[i] = e->vectors_->row(i)[block.offset];
  }
  VITRINE_ASSIGN_OR_RETURN(e->activity_, ReadTrendActivity(b, e->catalog_.size()));
  e->by_popularity_.resize(static_cast<size_t>(e->catalog_.size()));
  for (int32_t i = 0; i < e->catalog_.size(); ++i) e->by_popularity_[static_cast<size_t>(i)] = i;
  std::stable_sort(e->by_popularity_.begin(), e->by_popularity_.end(),
                   [&](int32_t a, int32_t c) { return e->popularity(a) > e->popularity(c); });
  // Loading went through whole-file buffers (index bytes, parsed CSV, npy
  // copies) that are freed now; hand their pages back to the OS instead of
  // keeping them in glibc's heap (a server reloading bundles would otherwise
  // hold the peak, not the loaded size).
  malloc_trim(0);
  return e;
}

Status Engine::RefuseOnPrivateBundle(const std::string& what) const {
  if (!manifest_.private_training()) return Status::OK();
  char budget[64];
  std::snprintf(budget, sizeof budget, "epsilon %g, delta %g", manifest_.dp_epsilon,
                manifest_.dp_delta);
  return Status::Unsupported(what + ": this bundle was trained with differential privacy (" +
                             budget +
                             "), and this answer would be learned from other customers' raw "
                             "histories, outside that guarantee (docs/privacy.md)");
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

std::vector<int64_t> Engine::UserHistoryTimes(int32_t user) const {
  if (user < 0 || static_cast<size_t>(user) + 1 >= hist_indptr_.size()) return {};
  const auto b = hist_indptr_[user], e = hist_indptr_[user + 1];
  if (hist_times_.empty()) return std::vector<int64_t>(static_cast<size_t>(e - b), 0);
  return {hist_times_.begin() + b, hist_times_.begin() + e};
}

void Engine::SetPriorSegment(std::vector<float>* query, float value) const {
  for (const auto& b : layout_) {
    if (IsPriorBlock(b.name))
      std::fill_n(query->begin() + static_cast<std::ptrdiff_t>(b.offset), b.dim, value);
  }
}

int32_t Engine::ClosestHistoryItem(std::span<const int32_t> history, const float* v) const {
  int32_t best = -1;
  float best_s = -1e30f;
  for (int32_t h : history) {
    const float s = Dot(vectors_->row(static_cast<size_t>(h)), v, vectors_->cols);
    if (s > best_s) best_s = s, best = h;
  }
  return best;
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
      VITRINE_ASSIGN_OR_RETURN(std::vector<float> x, als_.FoldIn(items, w));
      std::copy(x.begin(), x.end(), q.begin() + static_cast<std::ptrdiff_t>(b.offset));
    }
    NormalizeInPlace(q.data() + b.offset, b.dim);
  }
  SetPriorSegment(&q);
  return q;
}

void Engine::PushAway(const QueryParams& q, std::vector<float>* query) const {
  if (q.push_away.empty()) return;
  for (const auto& b : layout_) {
    if (IsPriorBlock(b.name)) continue;
    float* qb = query->data() + b.offset;
    std::vector<float> unit(b.dim);
    for (const auto& [item, strength] : q.push_away) {
      const float* v = vectors_->row(static_cast<size_t>(item)) + b.offset;
      std::copy(v, v + b.dim, unit.begin());
      NormalizeInPlace(unit.data(), b.dim);
      for (size_t j = 0; j < b.dim; ++j) qb[j] -= strength * unit[j];
    }
    NormalizeInPlace(qb, b.dim);
  }
}

Feedback FeedbackOfEvent(std::string_view event) {
  if (event == "not_interested") return Feedback::kNotInterested;
  if (event == "hide_brand") return Feedback::kHideBrand;
  if (event == "gift_purchase") return Feedback::kGift;
  return Feedback::kTaste;
}

RerankOptions RerankOptionsOf(const QueryParams& q, size_t dim) {
  RerankOptions ro;
  ro.k = q.k;
  ro.diversity = q.diversity;
  ro.lambda = q.mmr_lambda;
  ro.theta = q.dpp_theta;
  ro.dim = static_cast<int>(dim);
  return ro;
}

int CandidatePoolSize(const QueryParams& q) {
  const bool rerank = q.rules != nullptr || q.diversity != Diversity::kNone;
  if (!rerank) return q.k;
  // In 64 bits: kDefaultPoolFactor * k must not overflow for any int k.
  const int64_t by_default = std::max<int64_t>(int64_t{kDefaultPoolFactor} * q.k, 100);
  const int64_t pool = std::max<int64_t>(q.k, q.pool > 0 ? q.pool : by_default);
  return static_cast<int>(std::min<int64_t>(pool, std::numeric_limits<int>::max()));
}

namespace {
// A k or pool past the catalog's size means "every item". Bounded at the
// entry points, so that no buffer or loop is sized by a request's number
// (the CLI and Python take any int; 2^31 - 1 must not allocate or spin).
void BoundToCatalog(QueryParams* q, int32_t items) {
  const int n = std::max<int32_t>(items, 1);
  q->k = std::min(q->k, n);
  q->pool = std::min(q->pool, n);
}
}  // namespace

Status Engine::Allowed(const QueryParams& q, std::optional<int32_t> current_item,
                       const std::vector<int32_t>& drop, Bitmap* allowed,
                       RequestRules* rules) const {
  if (q.k < 1) return Status::InvalidArgument("k must be at least 1, got " + std::to_string(q.k));
  // Everything that decides whether an item may appear is one bitmap, used
  // inside the ANN search (docs/architecture.md), never as a post-filter.
  *allowed = q.allowed != nullptr ? *q.allowed : attributes_.All();
  if (q.rules != nullptr) {
    RequestContext ctx = q.context;
    ctx.current_item = current_item;
    VITRINE_ASSIGN_OR_RETURN(Bitmap by_rules,
                             q.rules->AllowedItems(attributes_, ctx, q.static_allowed));
    *allowed &= by_rules;
    VITRINE_ASSIGN_OR_RETURN(*rules, q.rules->ForRequest(ctx));
  }
  for (int32_t d : drop) allowed->remove(static_cast<uint32_t>(d));
  *allowed -= index_->deleted();  // tombstones, so that PIN rules cannot bring them back
  for (int32_t d : q.exclude) allowed->remove(static_cast<uint32_t>(d));
  // A shared screen never shows a sensitive item (engine/privacy.h); inside
  // the search, like every other filter, so k items still come back.
  if (discretion_policy() && IsSharedScreen(q.context)) *allowed -= sensitive_;
  return Status::OK();
}

std::vector<Hit> Engine::ToHits(std::vector<RankedItem> ranked, const RequestRules& rules) {
  std::vector<Hit> hits;
  hits.reserve(ranked.size());
  for (RankedItem& r : ranked) {
    Hit h;
    h.item = r.item;
    h.score = r.score;
    h.pinned = r.pinned;
    h.rule_lines = std::move(r.rule_lines);
    if (!h.rule_lines.empty()) h.boost = rules.BoostFactor(h.item);
    hits.push_back(std::move(h));
  }
  return hits;
}

Result<std::vector<Hit>> Engine::Search(std::vector<float> query, const QueryParams& q,
                                        const std::vector<int32_t>& drop,
                                        std::span<const int32_t> history,
                                        std::optional<int32_t> current_item) const {
  Bitmap allowed;
  RequestRules request_rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, current_item, drop, &allowed, &request_rules));
  const std::vector<float> unscaled = query;
  VITRINE_RETURN_IF_ERROR(ScaleQuery(layout_, q.weights, query.data()));

  const bool rerank = q.rules != nullptr || q.diversity != Diversity::kNone;
  int pool = CandidatePoolSize(q);
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

    if (q.stats != nullptr)
      q.stats->pool = static_cast<int64_t>(cands.size());  // the last, largest
    if (!rerank) {
      std::stable_sort(cands.begin(), cands.end(),
                       [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
      hits.clear();
      for (const Candidate& c : cands) {
        Hit h;
        h.item = c.item;
        h.score = c.score;
        hits.push_back(std::move(h));
      }
      break;
    }
    const auto t_rerank = std::chrono::steady_clock::now();
    VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked,
                             Rerank(cands, request_rules, RerankOptionsOf(q, dim), &allowed));
    hits = ToHits(std::move(ranked), request_rules);
    if (q.stats != nullptr) q.stats->rerank_seconds += SecondsSince(t_rerank);  // every round's
    if (static_cast<int>(hits.size()) >= q.k || pool >= n_allowed) break;
    pool = static_cast<int>(std::min<int64_t>(n_allowed, static_cast<int64_t>(pool) * 4));
  }
  Explain(unscaled, q, history, &hits);
  return hits;
}

std::vector<float> Engine::HitBlocks(const std::vector<float>& unscaled_query, int32_t item) const {
  const float* v = vectors_->row(static_cast<size_t>(item));
  std::vector<float> out = unscaled_query.empty() ? std::vector<float>(layout_.size(), 0.0f)
                                                  : BlockCosines(layout_, unscaled_query.data(), v);
  for (size_t b = 0; b < layout_.size(); ++b) {
    if (IsPriorBlock(layout_[b].name)) out[b] = v[layout_[b].offset];  // the prior itself
  }
  return out;
}

void Engine::Explain(const std::vector<float>& unscaled, const QueryParams& q,
                     std::span<const int32_t> history, std::vector<Hit>* hits) const {
  for (Hit& h : *hits) {
    const float* v = vectors_->row(static_cast<size_t>(h.item));
    h.block_cos = HitBlocks(unscaled, h.item);
    // The reason: the history item that contributes most (like implicit's
    // explain), else the block that contributes most to the score.
    if (h.pinned) {
      h.reason = "pinned";
    } else if (!history.empty()) {
      const int32_t because = ClosestHistoryItem(history, v);
      h.reason = MayName(h.item, because) ? "similar to " + catalog_.ids.id(because) + " you viewed"
                                          : DiscreetReason(catalog_, h.item);
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
    AppendRuleReasons(&h);
    if (is_cold(h.item)) h.reason += " (cold-start item)";
  }
}

Result<std::vector<Hit>> Engine::Popular(const QueryParams& request) const {
  QueryParams q = request;
  BoundToCatalog(&q, catalog_.size());
  Bitmap allowed;
  RequestRules rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, {}, &allowed, &rules));
  std::vector<Candidate> cands;
  cands.reserve(allowed.cardinality());
  for (uint32_t i : allowed) cands.push_back({static_cast<int32_t>(i), popularity(i), nullptr});
  const size_t take = std::min(static_cast<size_t>(CandidatePoolSize(q)), cands.size());
  // Ties (equal popularity) go to the lower item index, so answers are stable.
  std::partial_sort(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(take), cands.end(),
                    [](const Candidate& a, const Candidate& b) {
                      return a.score != b.score ? a.score > b.score : a.item < b.item;
                    });
  cands.resize(take);
  std::vector<Hit> hits;
  if (q.stats != nullptr) q.stats->pool = static_cast<int64_t>(cands.size());
  if (q.rules != nullptr) {
    const auto t_rerank = std::chrono::steady_clock::now();
    RerankOptions ro;
    ro.k = q.k;  // popularity has no vectors to diversify on
    VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked, Rerank(cands, rules, ro, &allowed));
    hits = ToHits(std::move(ranked), rules);
    if (q.stats != nullptr) q.stats->rerank_seconds += SecondsSince(t_rerank);
  } else {
    for (const Candidate& c : cands) {
      Hit h;
      h.item = c.item;
      h.score = c.score;
      hits.push_back(std::move(h));
    }
  }
  for (Hit& h : hits) {
    h.reason = h.pinned ? "pinned" : "popular";
    AppendRuleReasons(&h);
  }
  return hits;
}
std::vector<float> Engine::ItemQuery(int32_t item) const {
  const float* v = vectors_->row(static_cast<size_t>(item));
  std::vector<float> query(v, v + vectors_->cols);
  // Stored cf rows keep ALS norms (popularity); a query segment is a direction.
  for (const auto& b : layout_) NormalizeInPlace(query.data() + b.offset, b.dim);
  SetPriorSegment(&query);
  return query;
}

Result<std::vector<Hit>> Engine::Similar(std::string_view id, const QueryParams& q) const {
  VITRINE_ASSIGN_OR_RETURN(int32_t item, FindItem(id));
  QueryParams with_defaults = q;
  BoundToCatalog(&with_defaults, catalog_.size());
  for (const auto& [name, w] : similar_weights_) with_defaults.weights.emplace(name, w);
  return Search(ItemQuery(item), with_defaults, {item}, {}, item);
}
Result<Recommendation> Engine::Recommend(const RecommendRequest& r) const {
  if (!r.history_weights.empty() && r.history_weights.size() != r.history.size()) {
    return Status::InvalidArgument("history has " + std::to_string(r.history.size()) +
                                   " items but " + std::to_string(r.history_weights.size()) +
                                   " weights");
  }
  Recommendation out;
  auto add_source = [&out](const char* s) {
    out.source += (out.source.empty() ? "" : "+") + std::string(s);
  };
  const std::optional<int32_t> user = r.user ? users_.Find(*r.user) : std::nullopt;
  // (item, weight, latest event time), stored history first, then live
  // inputs oldest first; live inputs are newer than anything stored.
  struct Entry {
    int32_t item;
    float weight;
    int64_t time;
  };
  constexpr int64_t kLive = std::numeric_limits<int64_t>::max();
  std::vector<Entry> entries;
  if (user) {
    const int64_t b = hist_indptr_[*user], e = hist_indptr_[*user + 1];
    for (int64_t k = b; k < e; ++k) {
      entries.push_back(
          {hist_indices_[k], hist_weights_[k], hist_times_.empty() ? 0 : hist_times_[k]});
    }
    if (!entries.empty()) add_source("user");
  }
  if (!(r.query.exploration >= 0 && r.query.exploration <= 1) ||
      !(r.query.explore_max_age_days >= 0 && r.query.explore_max_age_days <= 36500)) {
    return Status::InvalidArgument(
        "exploration must be in [0, 1] and its maximum age in [0, 36500] days");
  }
  if (!(r.negative_weight >= 0 && r.negative_weight <= kMaxNegativeWeight) ||
      !(r.return_weight >= 0 && r.return_weight <= kMaxNegativeWeight)) {
    return Status::InvalidArgument("negative and return weights must be in [0, " +
                                   std::to_string(kMaxNegativeWeight) + "]");
  }
  // Negative feedback: items never shown, pushed away from, and brands hidden.
  std::map<int32_t, float> push_away;  // item -> strength (the largest given)
  std::unordered_set<int32_t> rejected;
  std::vector<std::string> hidden_brands = r.hidden_brands;
  auto reject = [&](int32_t i, float strength) {
    rejected.insert(i);
    float& s = push_away[i];
    s = std::max(s, strength);
  };
  for (const std::string& id : r.not_interested) {
    VITRINE_ASSIGN_OR_RETURN(int32_t i, FindItem(id));
    reject(i, r.negative_weight);
  }
  const Column* brand = catalog_.column(r.brand_column);
  if (!r.hidden_brands.empty() && (brand == nullptr || brand->type != ColumnType::kCategorical)) {
    return Status::InvalidArgument("cannot hide brands: no categorical column '" + r.brand_column +
                                   "' in the catalog");
  }
  for (const std::string& value : r.hidden_brands) {
    if (std::find(brand->dictionary.begin(), brand->dictionary.end(), value) ==
        brand->dictionary.end()) {
      return Status::InvalidArgument("cannot hide brand '" + value + "': no item has " +
                                     r.brand_column + " = '" + value + "'");
    }
  }
  std::vector<int32_t> returned;  // items whose latest live event is net-negative
  if (!r.recent.empty()) {
    add_source("events");
    std::unordered_set<int32_t> gone;
    for (const RecentEvent& ev : r.recent) {
      // Events for items a reloaded bundle lacks are skipped, not errors.
      const auto i = catalog_.ids.Find(ev.item);
      if (!i) continue;
      if (ev.feedback == Feedback::kGift) continue;  // the buyer's taste is not in it
      if (ev.feedback != Feedback::kTaste) {
        reject(*i, r.negative_weight);
        // A catalog without the brand column hides the item alone.
        if (ev.feedback == Feedback::kHideBrand && brand != nullptr &&
            brand->type == ColumnType::kCategorical) {
          const int32_t code = brand->codes[static_cast<size_t>(*i)];
          if (code >= 0) hidden_brands.push_back(brand->dictionary[static_cast<size_t>(code)]);
        }
      } else if (ev.weight > 0) {
        entries.push_back({*i, ev.weight, ev.time > 0 ? ev.time : kLive});
        gone.erase(*i);
      } else {
        gone.insert(*i);
      }
    }
    std::erase_if(entries, [&](const Entry& en) { return gone.count(en.item) > 0; });
    returned.assign(gone.begin(), gone.end());
    std::sort(returned.begin(), returned.end());
    for (int32_t i : returned) {
      if (r.return_weight > 0 && !rejected.count(i)) {
        float& s = push_away[i];
        s = std::max(s, r.return_weight);
      }
    }
  }
  std::erase_if(entries, [&](const Entry& en) { return rejected.count(en.item) > 0; });
  if (!r.history.empty()) {
    add_source("history");
    for (size_t h = 0; h < r.history.size(); ++h) {
      VITRINE_ASSIGN_OR_RETURN(int32_t i, FindItem(r.history[h]));
      entries.push_back({i, r.history_weights.empty() ? 1.0f : r.history_weights[h], kLive});
    }
  }
  std::vector<int32_t> items;
  std::vector<float> weights;
  std::vector<int64_t> times;  // latest event time of each item (kLive for live inputs)
  if (r.recent.empty() && r.history.empty()) {
    for (const Entry& en : entries) {
      items.push_back(en.item), weights.push_back(en.weight), times.push_back(en.time);
    }
  } else {
    // Live inputs: each item once, at its most recent position, its weights
    // summed; the newest max_history.
    std::unordered_map<int32_t, float> total;
    std::unordered_map<int32_t, int64_t> latest;
    for (const Entry& en : entries) {
      total[en.item] += en.weight;
      latest[en.item] = std::max(latest[en.item], en.time);
    }
    std::unordered_set<int32_t> seen;
    const size_t cap = r.max_history > 0 ? r.max_history : entries.size();
    for (auto it = entries.rbegin(); it != entries.rend() && items.size() < cap; ++it) {
      if (!seen.insert(it->item).second) continue;
      items.push_back(it->item);
      weights.push_back(total[it->item]);
      times.push_back(latest[it->item]);
    }
    std::reverse(items.begin(), items.end());
    std::reverse(weights.begin(), weights.end());
    std::reverse(times.begin(), times.end());
  }

  QueryParams q = r.query;
  BoundToCatalog(&q, catalog_.size());
  q.exclude.insert(q.exclude.end(), returned.begin(), returned.end());
  q.exclude.insert(q.exclude.end(), rejected.begin(), rejected.end());
  std::sort(hidden_brands.begin(), hidden_brands.end());
  hidden_brands.erase(std::unique(hidden_brands.begin(), hidden_brands.end()), hidden_brands.end());
  for (const std::string& value : hidden_brands) {
    VITRINE_ASSIGN_OR_RETURN(Bitmap items_of_brand, attributes_.Equals(r.brand_column, value));
    for (uint32_t i : items_of_brand) q.exclude.push_back(static_cast<int32_t>(i));
  }
  for (const auto& [i, strength] : push_away) {
    if (strength > 0) q.push_away.emplace_back(i, strength);
  }
  if (r.intent == Intent::kGift) {
    // Whoever the request names is the recipient; without one, popular gifts.
    VITRINE_ASSIGN_OR_RETURN(out.hits, Gifts(q, items, weights, r.filter_already_seen));
    out.source = items.empty() ? "gifts" : "gifts+" + out.source;
    return out;
  }
  if (r.intent == Intent::kRecentlyViewed || r.intent == Intent::kBuyAgain) {
    // The person's own items: nothing known is an empty answer, not popular items.
    VITRINE_ASSIGN_OR_RETURN(out.hits, OwnItems(r, q, items, weights, times));
    if (out.source.empty()) out.source = "none";
    return out;
  }
  if (items.empty()) {
    // Nothing known about this person: popular items that pass the rules.
    out.source = "popular";
    out.fallback = true;
    VITRINE_ASSIGN_OR_RETURN(out.hits, Popular(q));
    return out;
  }
  std::vector<int32_t> drop;
  if (r.filter_already_seen) drop = items;
  if (r.intent == Intent::kNextStep) {
    VITRINE_ASSIGN_OR_RETURN(out.hits, NextStep(r, q, items, weights, times, drop));
    return out;
  }
  const bool ranked = ranker_ && q.use_ranker && !answer_with_hybrid_;
  // The hybrid query; the ranked path folds the history in itself
  // (Candidates), so it is made here only for the hybrid path or exploration.
  std::vector<float> query;
  if (!ranked || q.exploration > 0) {
    VITRINE_ASSIGN_OR_RETURN(query, HistoryVector(items, weights));
    PushAway(q, &query);
  }
  if (ranked) {
    VITRINE_ASSIGN_OR_RETURN(out.hits, RankedSearch(items, weights, q, drop));
  } else {
    // Exploration needs the query after this search: a copy then, else moved.
    VITRINE_ASSIGN_OR_RETURN(
        out.hits, Search(q.exploration > 0 ? std::vector<float>(query) : std::move(query), q, drop,
                         items, std::nullopt));
  }
  if (q.exploration > 0) {
    VITRINE_RETURN_IF_ERROR(Explore(std::move(query), q, drop, items, &out.hits));
  }
  return out;
}
}  // namespace vitrine
