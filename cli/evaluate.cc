// vitrine evaluate: offline quality of a bundle against held-out
// interactions, side by side with baselines and block ablations. The
// evaluation itself is EvaluateBundle (engine/evaluate_bundle.h), shared with
// the Python binding; this file is flags in, table out.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "cli/command.h"
#include "cli/query_common.h"
#include "core/progress.h"
#include "engine/evaluate_bundle.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "evaluate";

std::string Cell(double v) { return std::isnan(v) ? "-" : FormatFloat(v, 4); }

// "default,hybrid,...": every model EvaluateBundle knows.
std::string DefaultModels() {
  std::string s;
  for (std::string_view m : kBundleEvalModels) {
    if (!s.empty()) s += ',';
    s += m;
  }
  return s;
}

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
      "content-only, visual-only, item-item, taste (each candidate source alone), toppop, "
      "itemknn, ease, explore-<share> (default with that share of the slots given to new "
      "and cold items, e.g. explore-0.1)",
      cxxopts::value<std::string>()->default_value(DefaultModels()))(
      "max-users", "Evaluate a seeded sample of this many users (0 = all)",
      cxxopts::value<int64_t>()->default_value("0"))(
      "events", "Event weights of the test file, e.g. view=1,cart=4,purchase=10",
      cxxopts::value<std::string>())(
      "channels", "Channel multipliers of the test file's event weights, e.g. store=1.5",
      cxxopts::value<std::string>())(
      "rules", "Brand rules for the bundle's models; every model's lists get a compliance score",
      cxxopts::value<std::string>())(
      "next-step-column",
      "Catalog column of the next-step hit rate (next-step vs similar-to-last vs toppop on "
      "each user's first new test item); 'none' skips it",
      cxxopts::value<std::string>()->default_value("category"))("format", "table, json or csv",
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
  if (k < 1 || k > 1000) return UsageError(kName, "-k must be in [1, 1000]");
  BundleEvalOptions eval;
  eval.test_path = r["test"].as<std::string>();
  eval.k = k;
  eval.max_users = r["max-users"].as<int64_t>();
  if (r.count("weights")) {
    auto w = ParseWeightsFlag(r["weights"].as<std::string>());
    if (!w.ok()) return UsageError(kName, w.status().message());
    eval.weights = *w;
  }
  if (r.count("channels")) {
    auto c = EventWeights::ParseChannels(r["channels"].as<std::string>());
    if (!c.ok()) return UsageError(kName, "--channels: " + c.status().message());
    eval.read.channels = *c;
  }
  if (r.count("events")) {
    auto e = EventWeights::Parse(r["events"].as<std::string>());
    if (!e.ok()) return UsageError(kName, e.status().message());
    eval.read.events = *e;
  }
  if (r.count("rules")) eval.rules_path = r["rules"].as<std::string>();
  eval.next_step_column = r["next-step-column"].as<std::string>();
  if (eval.next_step_column.empty()) {
    return UsageError(kName, "--next-step-column must name a column ('none' skips the table)");
  }
  // Asked for by name: a column that cannot be used is an error, not a skip.
  eval.next_step_required = r.count("next-step-column") > 0 && eval.next_step_column != "none";
  if (eval.next_step_column == "none") eval.next_step_column.clear();
  eval.models = SplitList(r["models"].as<std::string>(), ',');
  for (const std::string& m : eval.models) {
    if (!IsBundleEvalModel(m)) {
      return UsageError(kName, "--models: unknown model '" + m + "'");
    }
  }

  auto engine = Engine::Open(r["bundle"].as<std::string>());
  if (!engine.ok()) return Fail(kName, engine.status());
  auto ev = EvaluateBundle(**engine, eval);
  if (!ev.ok()) return Fail(kName, ev.status());

  Table t;
  t.header = {"model",     "recall",      "precision",   "ndcg",  "map",    "coverage",
              "diversity", "brand_share", "cold_recall", "new_or_cold_share", "users", "seconds"};
  if (ev->has_compliance) t.header.insert(t.header.end() - 2, "compliance");
  for (auto& i : t.header) {
    if (i == "recall" || i == "precision" || i == "ndcg" || i == "map")
      i += "@" + std::to_string(k);
  }
  for (const EvalReport& rep : ev->reports) {
    t.rows.push_back({rep.model, Cell(rep.recall), Cell(rep.precision), Cell(rep.ndcg),
                      Cell(rep.map), Cell(rep.coverage), Cell(rep.diversity),
                      Cell(rep.brand_max_share), Cell(rep.cold_recall), Cell(rep.explore_share),
                      std::to_string(rep.users),
                      FormatFloat(rep.seconds, 2)});
    if (ev->has_compliance) t.rows.back().insert(t.rows.back().end() - 2, Cell(rep.compliance));
  }
  // Cold-start recall "well above random" needs the random reference.
  t.rows.push_back({"random (expected)", "-", "-", "-", "-", "-", "-", "-",
                    Cell(ev->random_cold_recall), "-", "-", "-"});
  if (ev->has_compliance) t.rows.back().insert(t.rows.back().end() - 2, "-");
  t.Print(*fmt);
  if (ev->pool) {
    const std::string pool_line = "candidate pool recall " + FormatFloat(ev->pool->recall, 4) +
                                  " (" + FormatFloat(ev->pool->mean_pool, 0) +
                                  " candidates per user on average, " +
                                  std::to_string(ev->pool->users) + " users)";
    if (*fmt == Format::kTable) {
      std::printf("\n%s\n", pool_line.c_str());
    } else {
      LogInfo("%s", pool_line.c_str());
    }
  }
  if (ev->next_step) {
    const NextStepEvaluation& ns = *ev->next_step;
    const std::string title = "next-item hit rate@" + std::to_string(k) + " (" +
                              std::to_string(ns.users) + " users; next-step by " + ns.column + ")";
    if (*fmt == Format::kTable) {
      Table nt;
      nt.header = {"model", "hit_rate@" + std::to_string(k), "95% interval", "hits"};
      for (const NextStepHitRate& m : ns.models) {
        nt.rows.push_back({m.model, FormatFloat(m.hit_rate, 4),
                           FormatFloat(m.low, 4) + "-" + FormatFloat(m.high, 4),
                           std::to_string(m.hits)});
      }
      std::printf("\n%s\n", title.c_str());
      nt.Print(*fmt);
    } else {
      for (const NextStepHitRate& m : ns.models) {
        LogInfo("%s: %s %.4f [%.4f, %.4f]", title.c_str(), m.model.c_str(), m.hit_rate, m.low,
                m.high);
      }
    }
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("evaluate", "Offline quality against held-out interactions, with baselines", Run);

}  // namespace vitrine::cli
