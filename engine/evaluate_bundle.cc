// EvaluateBundle: `vitrine evaluate`'s models, built over one engine and
// scored on one aligned test matrix.
#include "engine/evaluate_bundle.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>

#include "core/progress.h"
#include "engine/baselines.h"

namespace vitrine {
namespace {

// The share of explore-<share>, or NaN for another name.
double ExploreShare(std::string_view m) {
  constexpr std::string_view kPrefix = "explore-";
  if (m.substr(0, kPrefix.size()) != kPrefix) return std::nan("");
  const std::string v(m.substr(kPrefix.size()));
  char* end = nullptr;
  const double share = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(share > 0 && share <= 1)) return std::nan("");
  return share;
}

}  // namespace

bool IsBundleEvalModel(std::string_view m) {
  return std::find(kBundleEvalModels.begin(), kBundleEvalModels.end(), m) !=
             kBundleEvalModels.end() ||
         !std::isnan(ExploreShare(m));
}

namespace {

std::string KnownModelList() {
  std::string s;
  for (std::string_view m : kBundleEvalModels) {
    if (!s.empty()) s += ", ";
    s += m;
  }
  return s;
}

bool HasBlock(const Engine& engine, const std::string& block) {
  for (const auto& b : engine.layout()) {
    if (b.name == block) return true;
  }
  return false;
}

// Weight 1 on `block`, 0 on every other block of the bundle.
std::map<std::string, float> OnlyBlock(const Engine& engine, const std::string& block) {
  std::map<std::string, float> w;
  for (const auto& b : engine.layout()) w[b.name] = b.name == block ? 1.0f : 0.0f;
  return w;
}

}  // namespace

Result<BundleEvaluation> EvaluateBundle(const Engine& engine, const BundleEvalOptions& options) {
  const int k = options.k;
  // Lists longer than this are not what anyone shows, and every model's
  // cost grows with k (a k of the catalog's size is seconds per user).
  constexpr int kMaxK = 1000;
  if (k < 1 || k > kMaxK) {
    return Status::InvalidArgument("k must be in [1, " + std::to_string(kMaxK) + "], got " +
                                   std::to_string(k));
  }
  // Names first: a typo should not cost reading the test file.
  for (const std::string& m : options.models) {
    if (!IsBundleEvalModel(m)) {
      return Status::InvalidArgument("unknown model '" + m +
                                     "' (expected one of: " + KnownModelList() + ")");
    }
  }
  if (!engine.has_cf()) {
    return Status::InvalidArgument(engine.bundle().dir().string() +
                                   ": built without interactions; nothing to evaluate against");
  }
  const std::string& test_path = options.test_path;
  VITRINE_ASSIGN_OR_RETURN(Interactions test,
                           Interactions::ReadCsv(test_path, engine.catalog().ids, options.read));
  BundleEvaluation out;
  out.k = k;
  CsrMatrix test_m = AlignRows(engine.users(), test.users, test.matrix, &out.dropped_users);
  if (out.dropped_users > 0) {
    LogInfo("%s: %lld test users are not in the bundle (no train history); skipped",
            test_path.c_str(), static_cast<long long>(out.dropped_users));
  }
  const CsrMatrix train = engine.TrainMatrix();

  EvalOptions eo;
  eo.k = k;
  eo.max_users = options.max_users;
  eo.item_vectors = &engine.vectors();
  std::vector<int32_t> brands;
  if (const Column* b = engine.catalog().column("brand");
      b != nullptr && b->type == ColumnType::kCategorical) {
    brands = b->codes;
    eo.item_brands = brands;
  }
  // Rule compliance: a list complies when every item passes the filters and
  // no CAP is exceeded (pins only place allowed items, so they cannot break it).
  std::unique_ptr<RuleSet> rules;
  Bitmap rules_allowed;
  if (!options.rules_path.empty()) {
    VITRINE_ASSIGN_OR_RETURN(RuleSet parsed, RuleSet::ParseFile(options.rules_path));
    VITRINE_RETURN_IF_ERROR(parsed.Bind(engine.catalog()));
    rules = std::make_unique<RuleSet>(std::move(parsed));
    if (rules->FiltersDependOnRequest()) {
      return Status::InvalidArgument(options.rules_path +
                                     ": evaluate needs request-independent rules "
                                     "(no CurrentItem, $PARAM, context or WHEN)");
    }
    VITRINE_ASSIGN_OR_RETURN(rules_allowed, rules->StaticAllowedItems(engine.attributes()));
    VITRINE_ASSIGN_OR_RETURN(auto per_request, rules->ForRequest(RequestContext{}));
    auto caps = std::make_shared<std::vector<CapRule>>(per_request.caps());
    eo.complies = [&rules_allowed, caps](int32_t, std::span<const int32_t> list) {
      CapTracker tracker(*caps);
      for (int32_t item : list) {
        if (!rules_allowed.contains(static_cast<uint32_t>(item)) || !tracker.CanAdd(item)) {
          return false;
        }
        tracker.Add(item);
      }
      return true;
    };
    out.has_compliance = true;
  }
  std::vector<uint8_t> cold(static_cast<size_t>(engine.catalog().size()));
  Bitmap cold_items;
  for (int32_t i = 0; i < engine.catalog().size(); ++i) {
    cold[static_cast<size_t>(i)] = engine.is_cold(i) ? 1 : 0;
    if (cold[static_cast<size_t>(i)]) cold_items.add(static_cast<uint32_t>(i));
  }
  eo.cold_items = cold;
  std::vector<uint8_t> explore(static_cast<size_t>(engine.catalog().size()), 0);
  for (uint32_t i : engine.ExplorationItems(QueryParams{}.explore_max_age_days)) explore[i] = 1;
  eo.explore_items = explore;

  // Every model points into `rules`, `rules_allowed` and `cold_items`, which
  // outlive them (all are locals of this call).
  std::vector<std::unique_ptr<Recommender>> models;
  for (const std::string& m : options.models) {
    // The bundle's own answers, with per-model block weights and rules.
    auto bundle_model = [&](std::map<std::string, float> weights, const Bitmap* allowed,
                            bool with_rules, bool ranker = false, float exploration = 0) {
      QueryParams q;
      q.exploration = exploration;
      q.weights = std::move(weights);
      q.allowed = allowed;
      q.use_ranker = ranker;
      if (with_rules && rules) {
        q.rules = rules.get();
        q.static_allowed = &rules_allowed;
      }
      return std::make_unique<EngineRecommender>(engine, m, std::move(q));
    };
    if (m == "default") {
      if (engine.ranker() == nullptr) {
        LogInfo("default: the bundle has no learned ranker, so it is the hybrid; skipped");
        continue;
      }
      models.push_back(bundle_model(options.weights, nullptr, true, true));
    } else if (const double share = ExploreShare(m); !std::isnan(share)) {
      models.push_back(bundle_model(options.weights, nullptr, true, engine.ranker() != nullptr,
                                    static_cast<float>(share)));
    } else if (m == "hybrid") {
      models.push_back(bundle_model(options.weights, nullptr, true));
    } else if (m == "cold-start") {
      // The bundle's answers ranking only the cold items: can it place a new
      // product in front of the shoppers who will want it?
      models.push_back(bundle_model(options.weights, &cold_items, false, true));
    } else if (m == "item-item") {
      if (engine.item_neighbors() == nullptr) {
        LogInfo("item-item: the bundle has no item-item neighbours; skipped");
        continue;
      }
      models.push_back(std::make_unique<ItemNeighborsRecommender>(*engine.item_neighbors()));
    } else if (m == "taste") {
      if (engine.taste_mixture() == nullptr) {
        LogInfo("taste: the bundle has no taste mixture; skipped");
        continue;
      }
      models.push_back(std::make_unique<TasteMixtureRecommender>(*engine.taste_mixture()));
    } else if (m == "cf-only" || m == "content-only" || m == "visual-only") {
      const std::string block = m.substr(0, m.find('-'));
      if (!HasBlock(engine, block)) {
        LogInfo("%s: the bundle has no %s block; skipped", m.c_str(), block.c_str());
        continue;
      }
      models.push_back(bundle_model(OnlyBlock(engine, block), nullptr, true));
    } else if (m == "toppop") {
      auto t = std::make_unique<TopPop>();
      VITRINE_RETURN_IF_ERROR(t->Fit(train));
      models.push_back(std::move(t));
    } else if (m == "itemknn") {
      auto t = std::make_unique<ItemKnn>();
      VITRINE_RETURN_IF_ERROR(t->Fit(train));
      models.push_back(std::move(t));
    } else if (m == "ease") {
      // EASE inverts an items x items matrix; a bundle too large for it is
      // still worth evaluating on the other models.
      auto t = std::make_unique<Ease>();
      if (Status st = t->Fit(train); !st.ok()) {
        LogInfo("ease: %s; skipped", st.message().c_str());
        continue;
      }
      models.push_back(std::move(t));
    }
  }

  for (const auto& m : models) {
    StageTimer timer("evaluate " + m->name());
    VITRINE_ASSIGN_OR_RETURN(EvalReport rep, Evaluate(*m, train, test_m, eo));
    timer.Done(rep.ToString());
    out.reports.push_back(std::move(rep));
  }
  // Does retrieval or ranking limit quality? The share of test items that
  // the merged candidate pool holds at all.
  if (engine.ranker() != nullptr || engine.item_neighbors() != nullptr) {
    StageTimer timer("candidate pool recall");
    VITRINE_ASSIGN_OR_RETURN(out.pool, CandidatePoolRecall(engine, train, test_m,
                                                           eo.max_users > 0 ? eo.max_users : 2000));
    timer.Done();
  }
  // The next-step intent against "similar to the last item" and TopPop.
  if (!options.next_step_column.empty()) {
    Status fit = engine.NextStepModelOf(options.next_step_column).status();
    if (!fit.ok() && options.next_step_required) {
      return fit.WithContext("next-item hit rate");
    }
    if (!fit.ok()) {
      LogInfo("next-step: %s; skipped", fit.message().c_str());
    } else {
      NextStepEvalOptions no;
      no.k = k;
      no.column = options.next_step_column;
      no.max_users = options.max_users;
      VITRINE_ASSIGN_OR_RETURN(NextStepEvaluation ns, EvaluateNextStep(engine, test, no));
      if (ns.users == 0) {
        LogInfo("next-step: no test user has a timed item that is new after their train "
                "history (does the test file have timestamps?); skipped");
      } else {
        out.next_step = std::move(ns);
      }
    }
  }
  // Cold-start recall "well above random" needs the random reference: a
  // random list of k cold items hits a given cold test item with k / n_cold.
  out.cold_items = static_cast<int64_t>(cold_items.cardinality());
  if (out.cold_items > 0) {
    out.random_cold_recall =
        std::min(1.0, static_cast<double>(k) / static_cast<double>(out.cold_items));
  }
  return out;
}

}  // namespace vitrine
