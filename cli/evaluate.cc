// vitrine evaluate: offline quality of a bundle against held-out
// interactions, side by side with baselines and block ablations.
#include "engine/evaluate.h"

#include <cmath>

#include "cli/command.h"
#include "cli/query_common.h"
#include "core/interactions.h"
#include "core/progress.h"
#include "engine/baselines.h"
#include "engine/engine_recommender.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "evaluate";

std::string Cell(double v) { return std::isnan(v) ? "-" : FormatFloat(v, 4); }

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine evaluate",
                        "Offline evaluation on held-out interactions (see `vitrine split`): the "
                        "bundle's hybrid model, its block ablations and baselines, on the same "
                        "split.");
  opts.custom_help("--bundle B --test F [options]");
  opts.add_options()("bundle", "Bundle built from the train split", cxxopts::value<std::string>())(
      "test", "Held-out interactions CSV (same columns as the train file)",
      cxxopts::value<std::string>())("k", "Cut-off", cxxopts::value<int>()->default_value("10"))(
      "weights", "Hybrid block weights (default: the bundle's)", cxxopts::value<std::string>())(
      "models",
      "Comma-separated: default (the bundle's answers: learned ranker over the merged "
      "pool, if trained), hybrid (ranker off: the fused ANN score), cold-start, cf-only, "
      "content-only, visual-only, item-item (that candidate source alone), toppop, itemknn, ease",
      cxxopts::value<std::string>()->default_value("default,hybrid,cold-start,cf-only,content-only,"
                                                   "visual-only,item-item,toppop,itemknn,ease"))(
      "max-users", "Evaluate a seeded sample of this many users (0 = all)",
      cxxopts::value<int64_t>()->default_value("0"))(
      "events", "Event weights of the test file, e.g. view=1,cart=4,purchase=10",
      cxxopts::value<std::string>())(
      "rules", "Brand rules for the bundle's models; every model's lists get a compliance score",
      cxxopts::value<std::string>())("format", "table, json or csv",
                                     cxxopts::value<std::string>()->default_value("table"));
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle", "test"},
                       "  vitrine split --interactions demo/data/interactions.csv --train "
                       "demo/split/train.csv --test demo/split/test.csv\n"
                       "  vitrine build --items demo/data/items.csv --interactions "
                       "demo/split/train.csv --images demo/data/images.idx.gz --out demo/eval\n"
                       "  vitrine evaluate --bundle demo/eval --test demo/split/test.csv");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  auto fmt = ParseFormat(r["format"].as<std::string>());
  if (!fmt.ok()) return UsageError(kName, fmt.status().message());
  const int k = r["k"].as<int>();
  if (k < 1) return UsageError(kName, "-k must be at least 1");
  std::map<std::string, float> hybrid_weights;
  if (r.count("weights")) {
    auto w = ParseWeightsFlag(r["weights"].as<std::string>());
    if (!w.ok()) return UsageError(kName, w.status().message());
    hybrid_weights = *w;
  }
  InteractionsReadOptions ropts;
  if (r.count("events")) {
    auto e = EventWeights::Parse(r["events"].as<std::string>());
    if (!e.ok()) return UsageError(kName, e.status().message());
    ropts.events = *e;
  }

  auto engine_r = Engine::Open(r["bundle"].as<std::string>());
  if (!engine_r.ok()) return Fail(kName, engine_r.status());
  const Engine& engine = **engine_r;
  if (!engine.has_cf()) {
    return Fail(kName, Status::InvalidArgument(r["bundle"].as<std::string>() +
                                               ": built without interactions; nothing to "
                                               "evaluate against"));
  }
  const std::string test_path = r["test"].as<std::string>();
  auto test = Interactions::ReadCsv(test_path, engine.catalog().ids, ropts);
  if (!test.ok()) return Fail(kName, test.status());
  int64_t dropped = 0;
  CsrMatrix test_m = AlignRows(engine.users(), test->users, test->matrix, &dropped);
  if (dropped > 0) {
    LogInfo("%s: %lld test users are not in the bundle (no train history); skipped",
            test_path.c_str(), static_cast<long long>(dropped));
  }
  const CsrMatrix train = engine.TrainMatrix();

  EvalOptions eo;
  eo.k = k;
  eo.max_users = r["max-users"].as<int64_t>();
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
  if (r.count("rules")) {
    auto parsed = RuleSet::ParseFile(r["rules"].as<std::string>());
    if (!parsed.ok()) return Fail(kName, parsed.status());
    if (Status st = parsed->Bind(engine.catalog()); !st.ok()) return Fail(kName, st);
    rules = std::make_unique<RuleSet>(std::move(*parsed));
    if (rules->FiltersDependOnRequest()) {
      return Fail(kName, Status::InvalidArgument(r["rules"].as<std::string>() +
                                                 ": evaluate needs request-independent rules "
                                                 "(no CurrentItem, $PARAM, context or WHEN)"));
    }
    auto allowed = rules->StaticAllowedItems(engine.attributes());
    if (!allowed.ok()) return Fail(kName, allowed.status());
    rules_allowed = std::move(*allowed);
    auto per_request = rules->ForRequest(RequestContext{});
    if (!per_request.ok()) return Fail(kName, per_request.status());
    auto caps = std::make_shared<std::vector<CapRule>>(per_request->caps());
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
  }
  std::vector<uint8_t> cold(static_cast<size_t>(engine.catalog().size()));
  for (int32_t i = 0; i < engine.catalog().size(); ++i) cold[i] = engine.is_cold(i) ? 1 : 0;
  eo.cold_items = cold;

  Bitmap cold_items;
  for (int32_t i = 0; i < engine.catalog().size(); ++i) {
    if (cold[static_cast<size_t>(i)]) cold_items.add(static_cast<uint32_t>(i));
  }
  std::vector<std::unique_ptr<Recommender>> models;
  std::string list = r["models"].as<std::string>();
  for (size_t pos = 0; pos <= list.size();) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string m = list.substr(pos, end - pos);
    pos = end + 1;
    if (m.empty()) continue;
    auto only = [&](const std::string& block) {
      std::map<std::string, float> w;
      for (const auto& b : engine.layout()) w[b.name] = b.name == block ? 1.0f : 0.0f;
      return w;
    };
    auto has_block = [&](const std::string& block) {
      for (const auto& b : engine.layout()) {
        if (b.name == block) return true;
      }
      return false;
    };
    // The bundle's own answers, with per-model block weights and rules.
    auto bundle_model = [&](std::map<std::string, float> weights, const Bitmap* allowed,
                            bool with_rules, bool ranker = false) {
      QueryParams q;
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
      models.push_back(bundle_model(hybrid_weights, nullptr, true, true));
    } else if (m == "hybrid") {
      models.push_back(bundle_model(hybrid_weights, nullptr, true));
    } else if (m == "cold-start") {
      // The bundle's answers ranking only the cold items: can it place a new
      // product in front of the shoppers who will want it?
      models.push_back(bundle_model(hybrid_weights, &cold_items, false, true));
    } else if (m == "item-item") {
      if (engine.item_neighbors() == nullptr) {
        LogInfo("item-item: the bundle has no item-item neighbours; skipped");
        continue;
      }
      models.push_back(std::make_unique<ItemNeighborsRecommender>(*engine.item_neighbors()));
    } else if (m == "cf-only" || m == "content-only" || m == "visual-only") {
      const std::string block = m.substr(0, m.find('-'));
      if (!has_block(block)) {
        LogInfo("%s: the bundle has no %s block; skipped", m.c_str(), block.c_str());
        continue;
      }
      models.push_back(bundle_model(only(block), nullptr, true));
    } else if (m == "toppop") {
      auto t = std::make_unique<TopPop>();
      if (Status st = t->Fit(train); !st.ok()) return Fail(kName, st);
      models.push_back(std::move(t));
    } else if (m == "itemknn") {
      auto t = std::make_unique<ItemKnn>();
      if (Status st = t->Fit(train); !st.ok()) return Fail(kName, st);
      models.push_back(std::move(t));
    } else if (m == "ease") {
      auto t = std::make_unique<Ease>();
      if (Status st = t->Fit(train); !st.ok()) {
        LogInfo("ease: %s; skipped", st.message().c_str());
        continue;
      }
      models.push_back(std::move(t));
    } else {
      return UsageError(kName, "--models: unknown model '" + m + "'");
    }
  }

  Table t;
  t.header = {"model",     "recall",      "precision",   "ndcg",  "map",    "coverage",
              "diversity", "brand_share", "cold_recall", "users", "seconds"};
  if (rules) t.header.insert(t.header.end() - 2, "compliance");
  for (auto& i : t.header) {
    if (i == "recall" || i == "precision" || i == "ndcg" || i == "map")
      i += "@" + std::to_string(k);
  }
  for (const auto& m : models) {
    StageTimer timer("evaluate " + m->name());
    auto rep = Evaluate(*m, train, test_m, eo);
    if (!rep.ok()) return Fail(kName, rep.status());
    timer.Done(rep->ToString());
    t.rows.push_back({m->name(), Cell(rep->recall), Cell(rep->precision), Cell(rep->ndcg),
                      Cell(rep->map), Cell(rep->coverage), Cell(rep->diversity),
                      Cell(rep->brand_max_share), Cell(rep->cold_recall),
                      std::to_string(rep->users), FormatFloat(rep->seconds, 2)});
    if (rules) t.rows.back().insert(t.rows.back().end() - 2, Cell(rep->compliance));
  }
  // Does retrieval or ranking limit quality? The share of test items that
  // the merged candidate pool holds at all.
  std::string pool_line;
  if (engine.ranker() != nullptr || engine.item_neighbors() != nullptr) {
    StageTimer timer("candidate pool recall");
    auto pr = CandidatePoolRecall(engine, train, test_m, eo.max_users > 0 ? eo.max_users : 2000);
    if (!pr.ok()) return Fail(kName, pr.status());
    timer.Done();
    pool_line = "candidate pool recall " + FormatFloat(pr->recall, 4) + " (" +
                FormatFloat(pr->mean_pool, 0) + " candidates per user on average, " +
                std::to_string(pr->users) + " users)";
  }
  // Cold-start recall "well above random" needs the random reference: a
  // random list of k cold items hits a given cold test item with k / n_cold.
  const auto n_cold = static_cast<int64_t>(cold_items.cardinality());
  t.rows.push_back(
      {"random (expected)", "-", "-", "-", "-", "-", "-", "-",
       Cell(n_cold > 0 ? std::min(1.0, static_cast<double>(k) / static_cast<double>(n_cold))
                       : std::nan("")),
       "-", "-"});
  if (rules) t.rows.back().insert(t.rows.back().end() - 2, "-");
  t.Print(*fmt);
  if (!pool_line.empty()) {
    if (*fmt == Format::kTable) {
      std::printf("\n%s\n", pool_line.c_str());
    } else {
      LogInfo("%s", pool_line.c_str());
    }
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("evaluate", "Offline quality against held-out interactions, with baselines", Run);

}  // namespace vitrine::cli
