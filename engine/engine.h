// Engine: a loaded bundle that answers "similar items" and "recommend for
// this user / this session".
//
//   auto engine = Engine::Open("demo/bundle");
//   auto hits = (*engine)->Similar("I000042", {.k = 10});
//   auto recs = (*engine)->Recommend({.user = "U0000007", .k = 10});
//
// Query vectors (DESIGN.md decision 1): for an item, its fused vector; for a
// user or a session history, the cf block is the ALS fold-in of the history
// (stored user factors are not loaded: a known user is folded in from their
// stored history, exact against the final item factors) and the content and
// visual blocks are the mean of the history items' blocks. Each block segment
// is unit-normalised and then scaled by the request's weights; the prior
// blocks (pop, new) hold 1. A result's score is sum_b w_b <query_b, item_b>
// (see Hit::score), and the per-block components explain it.
//
// Thread safety: after Open the Engine is immutable; Similar and Recommend
// are const and may run concurrently.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/bundle.h"
#include "core/catalog.h"
#include "core/status.h"
#include "embed/als.h"
#include "embed/fusion.h"
#include "index/attribute_index.h"
#include "index/vector_index.h"
#include "rank/rules.h"

namespace vitrine {

struct Hit {
  int32_t item = -1;
  // sum_b w_b <query_b, item_b>, times BOOST/BURY factors: a cosine for the
  // unit blocks, the cosine times the item's ALS norm for cf (norms carry
  // confidence), the prior itself for pop and new.
  float score = 0;
  std::vector<float> block_cos;  // per block, in layout order: cosines; pop/new: the prior
  bool pinned = false;           // placed by a PIN rule
  std::vector<int> rule_lines;   // BOOST/BURY/PIN rules (line numbers) that applied
  std::string reason;            // "similar to I000012 you viewed", "visually similar", ...
};

struct QueryOptions {
  int k = 10;
  std::map<std::string, float> weights;  // block -> weight; unnamed blocks use defaults
  int ef_search = 0;                     // 0 = the bundle's operating point (autotune), else 128
  int nprobe = 0;                        // 0 = the bundle's operating point (autotune), else 32
  const Bitmap* allowed = nullptr;       // restrict candidates (--only-items); not owned
  std::vector<int32_t> exclude;          // explicit excludes

  // Brand rules, bound to this engine's catalog (RuleSet::Bind); not owned.
  // Their filters run inside the ANN search; boosts, pins and caps in the
  // rerank. `static_allowed` (optional) is rules->StaticAllowedItems(), cached
  // by a caller that serves many requests with the same rules.
  const RuleSet* rules = nullptr;
  const Bitmap* static_allowed = nullptr;
  RequestContext context;  // $params and context.keys (current_item is set by Similar)

  Diversity diversity = Diversity::kNone;
  float mmr_lambda = 0.7f;  // relevance weight of MMR
  float dpp_theta = 0.7f;   // relevance/diversity trade-off of DPP
  // Candidates retrieved before reranking (rules or diversity);
  // 0 = max(kDefaultPoolFactor * k, 100).
  int pool = 0;
};

// "cf=0.6,content=0.3" -> block weights (finite numbers). Used by the CLI's
// --weights and the HTTP API's weights. Errors name the bad part.
Result<std::map<std::string, float>> ParseBlockWeights(std::string_view spec);
// "none", "mmr[:lambda]" or "dpp[:theta]" into q->diversity and its parameter.
Status ParseDiversity(std::string_view spec, QueryOptions* q);

struct RecommendRequest {
  std::optional<std::string> user;   // a user of the bundle
  std::vector<std::string> history;  // or a session: item ids, most recent last
  // Per-history-item weights (event weights, e.g. purchase=10); empty = 1 each.
  std::vector<float> history_weights;
  bool filter_already_seen = true;
  QueryOptions query;
};

// "Complete the look": one item from each complementary category.
struct CompleteRequest {
  std::string item;
  std::string category_column = "category";
  int max_categories = 4;
  // Given pairs (category -> complements, in order); empty = learned from
  // co-occurrence across categories in the users' histories.
  std::map<std::string, std::vector<std::string>> pairs;
  QueryOptions query;  // rules, weights; k is ignored (one item per category)
};

struct LookSlot {
  std::string category;
  double lift = 0;  // co-occurrence lift of (query category, this category); 0 if given
  Hit hit;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const std::filesystem::path& bundle,
                                              VerifyMode verify = VerifyMode::kSizesOnly);

  const Bundle& bundle() const { return *bundle_; }
  const Catalog& catalog() const { return catalog_; }
  const std::vector<BlockLayout>& layout() const { return layout_; }
  const Matrix& vectors() const { return *vectors_; }
  const VectorIndex& index() const { return *index_; }
  const AttributeIndex& attributes() const { return attributes_; }
  bool has_cf() const { return has_cf_; }
  bool is_cold(int32_t item) const { return cold_[static_cast<size_t>(item)] != 0; }
  float popularity(int32_t item) const { return popularity_[static_cast<size_t>(item)]; }

  // Item index of an id, or NotFound naming it.
  Result<int32_t> FindItem(std::string_view id) const;
  std::optional<int32_t> FindUser(std::string_view id) const { return users_.Find(id); }
  const IdMap& users() const { return users_; }
  // The training interactions (users x items) the bundle was built from;
  // empty (0 x items) for a bundle built without interactions.
  CsrMatrix TrainMatrix() const;
  // A user's training history (item indices) and its aggregated event
  // weights, in the same order; empty for unknown users.
  std::vector<int32_t> UserHistory(int32_t user) const;
  std::vector<float> UserHistoryWeights(int32_t user) const;

  // The k items nearest to `item` (never the item itself).
  Result<std::vector<Hit>> Similar(std::string_view item, const QueryOptions& q) const;
  Result<std::vector<Hit>> Recommend(const RecommendRequest& r) const;
  // Complementary categories are those whose lift with the item's category is
  // highest (users who took one also took the other more often than chance,
  // at least kMinCategoryPairUsers users), or the given pairs. Each slot is
  // the best item of that category for the query item under the rules.
  Result<std::vector<LookSlot>> CompleteTheLook(const CompleteRequest& r) const;

  // The unscaled query vector for a history (item indices and weights).
  Result<std::vector<float>> HistoryVector(std::span<const int32_t> items,
                                           std::span<const float> weights) const;

 private:
  Engine() = default;
  // A query holds 1 in the prior blocks (popularity "pop", new arrivals
  // "new"), so the score adds w_pop * pop(item) + w_new * newness(item).
  void SetPriorSegment(std::vector<float>* query) const;
  Result<std::vector<Hit>> Search(std::vector<float> query, const QueryOptions& q,
                                  const std::vector<int32_t>& drop,
                                  std::span<const int32_t> history,
                                  std::optional<int32_t> current_item) const;

  std::optional<Bundle> bundle_;  // always set after Open
  Catalog catalog_;
  IdMap users_;
  std::vector<BlockLayout> layout_;
  std::map<std::string, float> similar_weights_;  // defaults for Similar
  SearchParams operating_point_;                  // ef / nprobe / refine factor from the manifest
  std::shared_ptr<const Matrix> vectors_;
  std::unique_ptr<VectorIndex> index_;
  AttributeIndex attributes_;
  ImplicitALS als_;
  bool has_cf_ = false;
  std::vector<int64_t> cold_;
  std::vector<float> popularity_;
  std::vector<int64_t> hist_indptr_;
  std::vector<int32_t> hist_indices_;
  std::vector<float> hist_weights_;
};

}  // namespace vitrine
