// Engine: a loaded bundle that answers "similar items" and "recommend for
// this user / this session".
//
//   auto engine = Engine::Open("demo/bundle");
//   auto hits = (*engine)->Similar("I000042", {.k = 10});
//   auto recs = (*engine)->Recommend({.user = "U0000007"});  // recs->hits
//
// The Engine is the one place that decides what to answer: which history a
// request stands for (stored history, live events, a session), the popular
// fallback when nothing is known about the person, candidate pool sizes and
// explanation texts. The CLI and the HTTP server only translate requests and
// responses, so they cannot drift apart.
//
// Query vectors (docs/architecture.md): for an item, its fused vector; for a
// user or a session history, the cf block is the ALS fold-in of the history
// (stored user factors are not loaded: a known user is folded in from their
// stored history, exact against the final item factors) and the content and
// visual blocks are the mean of the history items' blocks. Each block segment
// is unit-normalised and then scaled by the request's weights; the prior
// blocks (pop, new, trend) hold 1. A result's score is sum_b w_b <query_b, item_b>
// (see Hit::score), and the per-block components explain it.
//
// Thread safety: after Open the Engine is immutable; Similar and Recommend
// are const and may run concurrently.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/bundle.h"
#include "core/catalog.h"
#include "core/status.h"
#include "embed/als.h"
#include "embed/fusion.h"
#include "embed/item_neighbors.h"
#include "embed/taste_mixture.h"
#include "engine/attribute_profile.h"
#include "engine/audience.h"
#include "engine/bundle_schema.h"
#include "engine/next_step.h"
#include "engine/trend.h"
#include "index/attribute_index.h"
#include "index/vector_index.h"
#include "rank/learned_ranker.h"
#include "rank/rules.h"

namespace vitrine {

struct Hit {
  int32_t item = -1;
  // sum_b w_b <query_b, item_b>, times BOOST/BURY factors: a cosine for the
  // unit blocks, the cosine times the item's ALS norm for cf (norms carry
  // confidence), the prior itself for pop, new and trend.
  float score = 0;
  std::vector<float> block_cos;  // per block, in layout order: cosines; priors: the prior itself
  bool pinned = false;           // placed by a PIN rule
  std::vector<int> rule_lines;   // BOOST/BURY/PIN rules (line numbers) that applied
  std::string reason;            // "similar to I000012 you viewed", "visually similar", ...
  double boost = 1.0;            // product of the BOOST/BURY factors that applied
  // With the learned ranker and QueryParams::explain: the features that
  // moved this item's ranker score most, largest |contribution| first.
  std::vector<FeatureContribution> ranker_features;
};

// Appends "; boosted by rule 3; buried by rule 5" for the rules that moved
// an unpinned hit.
void AppendRuleReasons(Hit* h);

// The knobs of one query (Similar, Recommend, CompleteTheLook): per call, owned by
// the caller, so the Engine's methods stay const (docs/architecture.md,
// "Conventions").
// What answering one request took, for the server's /metrics.
struct AnswerStats {
  int64_t pool = 0;           // candidates scored before rules, caps and diversity
  double rerank_seconds = 0;  // ordering them: the ranker (if any), rules, caps, pins, diversity
};

struct QueryParams {
  int k = 10;                            // results wanted
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
  // 0 = max(kDefaultPoolFactor * k, 100). See CandidatePoolSize.
  int pool = 0;
  // Recommendations of a bundle with a learned ranker (ranker.bin) merge the
  // ANN, item-item and popularity candidates and order them with the ranker;
  // false answers with the hybrid score alone (`--ranker off`).
  bool use_ranker = true;
  bool explain = false;          // fill Hit::ranker_features (costs a TreeSHAP pass per hit)
  AnswerStats* stats = nullptr;  // when set, filled for this answer; not owned
  // Exploration (docs/retail.md): at least round(exploration * k) of the
  // slots of a recommendation go to cold-start items and new arrivals (items
  // at most explore_max_age_days old by the bundle's "new" block), the best
  // of them by the same hybrid score, spread evenly through the list. 0 = off.
  float exploration = 0;
  double explore_max_age_days = 30;
  // Negative evidence: (item, strength). A history query moves away from
  // each item: every block segment becomes unit(q_b - sum strength *
  // unit(item_b)). Filled by Engine::Recommend from negative feedback.
  std::vector<std::pair<int32_t, float>> push_away;
};

// The rerank options of a query over candidates of dimension `dim`.
RerankOptions RerankOptionsOf(const QueryParams& q, size_t dim);

// How many candidates a request retrieves: k without reranking, else the
// request's pool (at least k), by default max(kDefaultPoolFactor * k, 100).
int CandidatePoolSize(const QueryParams& q);

// "cf=0.6,content=0.3" -> block weights (finite numbers). Used by the CLI's
// --weights and the HTTP API's weights. Errors name the bad part.
Result<std::map<std::string, float>> ParseBlockWeights(std::string_view spec);
// "none", "mmr[:lambda]" or "dpp[:theta]" into q->diversity and its parameter.
Status ParseDiversity(std::string_view spec, QueryParams* q);

// What a live event says about the person's taste (docs/retail.md,
// "Negative feedback").
enum class Feedback {
  kTaste,          // a view, cart, purchase, return...: its weight is evidence
  kNotInterested,  // "not interested": never show this item; move away from it
  kHideBrand,      // "hide this brand": never show the item's brand; move away from the item
  kGift,           // bought for someone else: says nothing about the buyer; ignored
};
// The feedback of an event name: "not_interested" and "hide_brand" are
// negative feedback, "gift_purchase" a gift, every other name taste evidence.
Feedback FeedbackOfEvent(std::string_view event);

// A live event of the person since the bundle was built (the serving
// session store's, oldest first). A net weight <= 0 (a return) takes the
// item out of the history and out of the results, and counts as negative
// evidence with RecommendRequest::return_weight.
struct RecentEvent {
  std::string item;
  float weight = 1;
  Feedback feedback = Feedback::kTaste;
  int64_t time = 0;  // the event's time (unix seconds); 0 = unknown, counts as newest
};

// How far the query moves away from an item the person rejected ("not
// interested", a hidden brand's item) and from a returned item, in units of
// the item's block direction. Defaults chosen by reasoning, not tuned:
// a rejection pulls half as hard as one liked item pushes; a return, which
// may be about size or fit rather than taste, a quarter.
inline constexpr float kDefaultNegativeWeight = 0.5f;
inline constexpr float kDefaultReturnWeight = 0.25f;
inline constexpr float kMaxNegativeWeight = 10.0f;

// What a recommendation is for (docs/retail.md, "Intents").
enum class Intent {
  kForYou,          // new items matching the person's taste (the default)
  kRecentlyViewed,  // the person's own items, most recent first
  kBuyAgain,        // the person's replenishable items, most bought first
  kGift,            // what customers bought as gifts, for the person if known
  kNextStep,        // the logical next piece after the person's newest item (engine/next_step.h)
};
// "for-you", "recently-viewed", "buy-again", "gift", "next-step";
// InvalidArgument listing them.
Result<Intent> ParseIntent(std::string_view name);

// Who to recommend for. The history folded in is, oldest first: the user's
// stored training history (when `user` is a user of the bundle), their
// `recent` events, then `history`. With live inputs (recent events or a
// history) each item counts once, at its most recent position, with its
// weights summed, and only the newest `max_history` items are kept (0 = all).
// With nothing known (an unknown or absent user and no history) the answer is
// the most popular items that pass the rules, marked as a fallback.
struct RecommendRequest {
  std::optional<std::string> user;   // a user id (known to the bundle or not)
  std::vector<std::string> history;  // a session: item ids, most recent last
  // Per-history-item weights (event weights, e.g. purchase=10); empty = 1 each.
  std::vector<float> history_weights;
  std::vector<RecentEvent> recent;  // the user's live events, oldest first
  // Negative feedback given with the request (the CLI's --not-interested and
  // --hide-brand): item ids never to show and to move away from, and values
  // of `brand_column` never to show. Unknown ids and values are errors.
  std::vector<std::string> not_interested;
  std::vector<std::string> hidden_brands;
  std::string brand_column = "brand";
  float negative_weight = kDefaultNegativeWeight;  // per rejected item, >= 0
  float return_weight = kDefaultReturnWeight;      // per returned item, >= 0
  // The intent, and for kBuyAgain what is replenishable: items whose
  // boolean catalog column `replenishable` is true, and items whose
  // `category_column` value is in `replenishable_categories`. kNextStep
  // follows the transitions between `category_column` values; with nothing
  // known about the person it answers popular items, as kForYou does.
  Intent intent = Intent::kForYou;
  std::vector<std::string> replenishable_categories;
  std::string category_column = "category";
  size_t max_history = 0;
  bool filter_already_seen = true;
  QueryParams query;
};

// The merged candidate pool of a history and one feature row per candidate
// (kRankerFeatures, in order): what the learned ranker scores, and what the
// build trains it on.
struct CandidatePool {
  std::vector<int32_t> items;
  std::vector<float> features;  // items.size() x kRankerFeatures.size(), row-major
  std::vector<float> fused;     // the hybrid score of each candidate
};

// The ranker's features, in row order (docs/ranker.md describes each).
extern const std::vector<std::string> kRankerFeatures;

struct Recommendation {
  std::vector<Hit> hits;
  // What the answer stands on: "user", "events", "history" joined by '+'
  // ("user+events"), or "popular" for the fallback.
  std::string source;
  bool fallback = false;  // nothing was known about the person: popular items
};

// "Complete the look": one item from each complementary category.
struct CompleteRequest {
  std::string item;
  std::string category_column = "category";
  int max_categories = 4;
  // Given pairs (category -> complements, in order); empty = learned from
  // co-occurrence across categories in the users' histories.
  std::map<std::string, std::vector<std::string>> pairs;
  QueryParams query;  // rules, weights; k is ignored (one item per category)
};

struct LookSlot {
  std::string category;
  double lift = 0;  // co-occurrence lift of (query category, this category); 0 if given
  Hit hit;
};

// "Who would want this item": engine/audience.h defines the score.
struct AudienceRequest {
  std::string item;
  // k = users wanted; rules and context: the item must pass the rules' filters
  // (an item the brand would never show gets no audience). Weights, diversity
  // and the pool do not apply.
  QueryParams query;
  std::vector<std::string> opt_out;  // user ids never to list, beyond the bundle's
  bool include_owners = false;       // also list users who already have the item
  AudienceSearch search = AudienceSearch::kAuto;
  // A user's live events since the build (the server's session store), if
  // any: users who rejected the item or hid its brand are left out, and so
  // are users whose events on the item net positive (new owners) unless
  // include_owners. Called for candidates only, from the calling thread.
  std::function<std::vector<RecentEvent>(const std::string& user)> live_events;
  std::string brand_column = "brand";  // for hide_brand events
};

struct Audience {
  std::vector<AudienceMember> members;  // best first
  int64_t eligible = 0;                 // users that could be listed
  std::string search;                   // "exact" or "hnsw": how they were found
};

// Trending items, or a catalog column's values by growth (engine/trend.h).
struct TrendRequest {
  int64_t window_hours = kDefaultTrendWindowHours;
  int64_t at = 0;  // "now" in unix seconds; 0 = the newest event's hour
  std::string by;  // GroupTrends: the categorical column to group by
  // k (items; groups for GroupTrends, 0 = all), rules (filters, boosts,
  // pins, caps) and diversity, as for every answer. Weights do not apply.
  QueryParams query;
  const ItemActivity* live = nullptr;  // events since the build (the server's); not owned
};

struct Trending {
  std::vector<Hit> hits;            // score = growth; reason names both windows
  std::vector<TrendCounts> counts;  // per hit
  int64_t now_hour = 0;             // the windows end with this hour (unix seconds / 3600)
  int64_t window_hours = 0;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(const std::filesystem::path& bundle,
                                              VerifyMode verify = VerifyMode::kSizesOnly);

  const Bundle& bundle() const { return *bundle_; }
  const BundleManifest& manifest() const { return manifest_; }
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
  const IdMap& users() const { return users_; }
  // The training interactions (users x items) the bundle was built from;
  // empty (0 x items) for a bundle built without interactions.
  CsrMatrix TrainMatrix() const;
  // A user's training history (item indices) and its aggregated event
  // weights, in the same order; empty for unknown users.
  std::vector<int32_t> UserHistory(int32_t user) const;
  std::vector<float> UserHistoryWeights(int32_t user) const;
  // Their latest event times (unix seconds, 0 = unknown), in the same order;
  // all 0 for a bundle without history/timestamps.npy.
  std::vector<int64_t> UserHistoryTimes(int32_t user) const;

  // The k items nearest to `item` (never the item itself).
  Result<std::vector<Hit>> Similar(std::string_view item, const QueryParams& q) const;
  // Errors: an unknown history item (NotFound), history_weights of the wrong
  // length or a bad query (InvalidArgument). An unknown user is not an error.
  Result<Recommendation> Recommend(const RecommendRequest& r) const;
  // The most popular items that pass the query's rules (ties by item index).
  Result<std::vector<Hit>> Popular(const QueryParams& q) const;

  // The candidate pool of a history (item indices, weights), every source
  // under the query's allowed bitmap; `drop` items never appear.
  Result<CandidatePool> Candidates(std::span<const int32_t> items, std::span<const float> weights,
                                   const QueryParams& q, const std::vector<int32_t>& drop) const;
  const LearnedRanker* ranker() const { return ranker_ ? &*ranker_ : nullptr; }
  const ItemNeighbors* item_neighbors() const { return neighbors_ ? &*neighbors_ : nullptr; }
  const TasteMixture* taste_mixture() const { return mixture_ ? &*mixture_ : nullptr; }
  // Complementary categories are those whose lift with the item's category is
  // highest (users who took one also took the other more often than chance,
  // at least kMinCategoryPairUsers users), or the given pairs. Each slot is
  // the best item of that category for the query item under the rules.
  Result<std::vector<LookSlot>> CompleteTheLook(const CompleteRequest& r) const;

  // The users most likely to want r.item (engine/audience.h). Errors: an
  // unknown item (NotFound); k < 1, a bundle without interactions, a removed
  // item or one the rules exclude (InvalidArgument).
  Result<Audience> FindAudience(const AudienceRequest& r) const;
  // The items gaining demand fastest (engine/trend.h). Errors: no timed
  // events at all, a bad window or k (InvalidArgument).
  Result<Trending> Trend(const TrendRequest& r) const;
  // r.by's values by growth ratio, with intervals; items filtered by the
  // rules. Errors: as Trend, and an unknown or non-categorical column.
  Result<std::vector<GroupTrend>> GroupTrends(const TrendRequest& r) const;
  // The hour r's windows end with (inclusive): the hour of r.at, else of
  // the newest event (the bundle's or r.live's). InvalidArgument when there
  // is no timed event at all, or for a bad window.
  Result<int64_t> TrendHour(const TrendRequest& r) const;
  // The bundle's timed events of the last two weeks (trend/*.npy).
  const ItemActivity& activity() const { return activity_; }

  // The next-step model over a categorical catalog column, fitted from the
  // stored histories on first use and kept (engine/next_step.h). Errors: an
  // unknown or unsuitable column, no timed history (InvalidArgument).
  Result<std::shared_ptr<const NextStepModel>> NextStepModelOf(const std::string& column) const;

  // User rows that opted out (`build --opt-out`), sorted.
  const std::vector<int32_t>& opted_out() const { return opted_out_; }
  // Discretion (engine/privacy.h): items matching the manifest's sensitive
  // predicate, and whether the shared-screen and audience policy applies.
  bool is_sensitive(int32_t item) const { return sensitive_.contains(static_cast<uint32_t>(item)); }
  const Bitmap& sensitive_items() const { return sensitive_; }
  bool discretion_policy() const {
    return manifest_.privacy.policy && !manifest_.privacy.sensitive.empty();
  }
  // A bundle trained with differential privacy (engine/private_build.h)
  // answers nothing learned from other users' raw histories: `what` (the
  // next-step model, learned complements, audiences) is Unsupported there,
  // naming the budget. OK for an ordinary bundle.
  Status RefuseOnPrivateBundle(const std::string& what) const;

  // The unscaled query vector for a history (item indices and weights).
  Result<std::vector<float>> HistoryVector(std::span<const int32_t> items,
                                           std::span<const float> weights) const;
  // Moves a history query (unit block segments) away from q.push_away.
  void PushAway(const QueryParams& q, std::vector<float>* query) const;
  // Cold-start items and items at most `max_age_days` old (engine/exploration.cc).
  Bitmap ExplorationItems(double max_age_days) const;

 private:
  Engine() = default;
  // The item query of `item`: its vector with each block segment a unit
  // direction and 1 in the prior blocks.
  std::vector<float> ItemQuery(int32_t item) const;
  // A query holds 1 in the prior blocks (popularity "pop", new arrivals
  // "new"), so the score adds w_pop * pop(item) + w_new * newness(item);
  // 0 leaves the priors out (audiences, gifts: the same for every answer).
  void SetPriorSegment(std::vector<float>* query, float value = 1.0f) const;
  // The item of `history` whose fused vector has the largest inner product
  // with `v` (the first on ties), or -1 for an empty history: the "because"
  // of reasons.
  int32_t ClosestHistoryItem(std::span<const int32_t> history, const float* v) const;
  // A reason may name the person's item `named` for `hit` unless either is
  // sensitive (engine/privacy.h); otherwise it is DiscreetReason(hit).
  bool MayName(int32_t hit, int32_t named) const {
    return !is_sensitive(hit) && (named < 0 || !is_sensitive(named));
  }
  Result<std::vector<Hit>> Search(std::vector<float> query, const QueryParams& q,
                                  const std::vector<int32_t>& drop,
                                  std::span<const int32_t> history,
                                  std::optional<int32_t> current_item) const;
  // The query's allowed items (rules' filters, --only-items, excludes,
  // `drop`, tombstones) and its per-request rules.
  Status Allowed(const QueryParams& q, std::optional<int32_t> current_item,
                 const std::vector<int32_t>& drop, Bitmap* allowed, RequestRules* rules) const;
  // Candidates() that also hands back the allowed bitmap, the request's
  // rules and the unscaled query vector, for the rerank that follows.
  Result<CandidatePool> Candidates(std::span<const int32_t> items, std::span<const float> weights,
                                   const QueryParams& q, const std::vector<int32_t>& drop,
                                   Bitmap* allowed, RequestRules* rules,
                                   std::vector<float>* query) const;
  // Recommend with the learned ranker over the merged pool.
  Result<std::vector<Hit>> RankedSearch(std::span<const int32_t> items,
                                        std::span<const float> weights, const QueryParams& q,
                                        const std::vector<int32_t>& drop) const;
  // Gives q.exploration of the slots of `hits` to the best exploration items
  // for `query` (engine/exploration.cc); rules' filters, pins and caps hold.
  Status Explore(std::vector<float> query, const QueryParams& q, const std::vector<int32_t>& drop,
                 std::span<const int32_t> history, std::vector<Hit>* hits) const;
  // The person's own items for a recently-viewed or buy-again request:
  // `items` oldest first (live events after stored history), `weights` their
  // summed weights, `times` their latest event time (0 = unknown; live events
  // count as newest). engine/intents.cc.
  // A gift request (Intent::kGift, engine/intents.cc): items bought as
  // gifts, by their gift prior plus, with a recipient (`items` not empty),
  // the hybrid score of the recipient's taste.
  Result<std::vector<Hit>> Gifts(const QueryParams& q, std::span<const int32_t> items,
                                 std::span<const float> weights, bool filter_seen) const;
  // A next-step request (Intent::kNextStep, engine/next_step.cc) for a
  // non-empty history; `times` as for OwnItems, `drop` never shown.
  Result<std::vector<Hit>> NextStep(const RecommendRequest& r, const QueryParams& q,
                                    std::span<const int32_t> items, std::span<const float> weights,
                                    std::span<const int64_t> times,
                                    const std::vector<int32_t>& drop) const;
  Result<std::vector<Hit>> OwnItems(const RecommendRequest& r, const QueryParams& q,
                                    std::span<const int32_t> items, std::span<const float> weights,
                                    std::span<const int64_t> times) const;
  // Reranked items as hits, with the boost each one got.
  static std::vector<Hit> ToHits(std::vector<RankedItem> ranked, const RequestRules& rules);
  // Per-block cosines of `item` with an unscaled query (0 without one), and
  // the prior itself in the prior blocks: a hit's block_cos.
  std::vector<float> HitBlocks(const std::vector<float>& unscaled_query, int32_t item) const;
  // Per-block cosines and the reason text of each hit.
  void Explain(const std::vector<float>& unscaled_query, const QueryParams& q,
               std::span<const int32_t> history, std::vector<Hit>* hits) const;

  std::optional<Bundle> bundle_;  // always set after Open
  BundleManifest manifest_;
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
  AttributeProfile attribute_profile_;  // the ranker's attribute-taste features
  std::vector<int64_t> hist_indptr_;
  std::vector<int32_t> hist_indices_;
  std::vector<float> hist_weights_;
  std::vector<int64_t> hist_times_;         // history/timestamps.npy; empty in older bundles
  std::vector<float> gift_prior_;           // gifts.npy as log(1 + w) / log(1 + max); empty without
  std::optional<ItemNeighbors> neighbors_;  // item_neighbors.bin, if built
  std::optional<TasteMixture> mixture_;     // taste_mixture/, if fitted
  std::optional<LearnedRanker> ranker_;     // ranker.bin, if trained
  // The build's check found the item-item score alone ranks the pool better
  // than the ranker (engine/ranker_training.h, step 5): the pool is ordered
  // by it instead.
  bool rank_by_item_item_ = false;
  // The check found the hybrid score ranks better: answers skip the ranker
  // as with --ranker off.
  bool answer_with_hybrid_ = false;
  std::vector<int32_t> by_popularity_;  // item rows, most popular first (ties by row)
  std::vector<int32_t> opted_out_;      // user rows never listed in an audience
  Bitmap sensitive_;                    // manifest privacy.sensitive, evaluated at Open
  std::vector<float> newness_;          // the "new" block per item; empty without one
  double half_life_days_ = 0;           // of newness (manifest "recency"); 0 without a "new" block
  ItemActivity activity_;               // trend/*.npy; empty in bundles without timed events
  // Built by the first Audience request that needs it (engine/audience.cc).
  Result<std::shared_ptr<const AudienceIndex>> AudienceUsers(bool with_index) const;
  mutable std::mutex audience_mu_;
  mutable std::shared_ptr<const AudienceIndex> audience_;
  // Next-step models by column, fitted on first use (NextStepModelOf).
  mutable std::mutex next_step_mu_;
  mutable std::map<std::string, std::shared_ptr<const NextStepModel>> next_step_;
};

}  // namespace vitrine
