// vitrine build: items + interactions + images -> bundle.
#include <chrono>
#include <filesystem>
#include <thread>

#include "cli/command.h"
#include "cli/query_common.h"
#include "core/progress.h"
#include "core/file_util.h"
#include "core/value_parse.h"
#include "engine/build_config.h"
#include "engine/builder.h"
#include "engine/tune.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "build";

constexpr char kTuneName[] = "tune";

void PrintBuilt(const std::string& out, const BuildSummary& s) {
  std::printf("built %s: %d items (%lld cold), %d users, %lld interactions, %zu dims, %.1f s\n",
              out.c_str(), s.items, static_cast<long long>(s.cold_items), s.users,
              static_cast<long long>(s.interactions), s.dim, s.seconds);
}

// The trial table, then the choice.
void PrintTuning(const TuneResult& t) {
  std::printf("%-9s  %5s  %7s  %7s  %s\n", "stage", "trial", "ndcg@10", "seconds", "parameters");
  for (const TuneTrial& x : t.trials) {
    std::string params;
    for (const auto& [k, v] : x.params.items()) {
      params +=
          (params.empty() ? "" : " ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
    }
    std::printf("%-9s  %5d  %7.4f  %7.1f  %s\n", x.stage.c_str(), x.index, x.ndcg, x.seconds,
                params.c_str());
  }
  std::string chosen;
  for (const auto& [k, v] : t.chosen.items()) {
    chosen +=
        (chosen.empty() ? "" : " ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  std::printf("chosen on %lld validation users in %.1f s%s: %s\n",
              static_cast<long long>(t.validation_users), t.seconds,
              t.budget_reached ? " (budget reached: some trials did not run)" : "", chosen.c_str());
}

// `vitrine build` and `vitrine tune` share their flags: tune searches over
// what build would do with them (engine/tune.h).
int Run(int argc, char** argv, bool tune_only) {
  const std::string name = tune_only ? kTuneName : kName;
  cxxopts::Options opts(
      "vitrine " + name,
      tune_only ? "Choose build parameters on a temporal validation split of the interactions: "
                  "the item-item source, ALS, the cold threshold, block weights and the ranker. "
                  "Prints every trial and the choice; --save-config writes it for build --config."
                : "Build a bundle: item vectors (ALS + content + visual), "
                  "cold-start projection and a FAISS index.");
  opts.custom_help(tune_only ? "--items F --interactions F [--images F | --visual F] "
                               "[--budget 10m] [--save-config F]"
                             : "--items F [--interactions F] [--images F | --visual F] --out B "
                               "[--tune] [options]");
  opts.add_options("Input")("items", "Items CSV (item_id + attribute columns)",
                            cxxopts::value<std::string>())(
      "interactions", "Interactions CSV (user_id,item_id[,weight][,timestamp][,event])",
      cxxopts::value<std::string>())("images", "Product images, IDX ubyte(.gz) in catalog order",
                                     cxxopts::value<std::string>())(
      "visual", "Precomputed visual vectors .npy/.fvecs in catalog order",
      cxxopts::value<std::string>())("image-column", "Items column holding PNG/JPEG paths",
                                     cxxopts::value<std::string>())(
      "opt-out", "User ids (one per line) never listed by `vitrine audience`",
      cxxopts::value<std::string>())(
      "forget-list",
      "User ids (one per line, written by `vitrine forget`) whose interactions are left out",
      cxxopts::value<std::string>())(
      "sensitive",
      "Items to treat with discretion, as a rules predicate, e.g. 'category IN (\"lingerie\")' "
      "(docs/privacy.md)",
      cxxopts::value<std::string>())(
      "sensitive-policy",
      "on (default): --sensitive items never reach a shared screen (context shared=true) or an "
      "audience; off: only reasons stay discreet",
      cxxopts::value<std::string>())(
      "dp-epsilon",
      "Train with user-level differential privacy at this epsilon, e.g. 4 (docs/privacy.md)",
      cxxopts::value<double>())("dp-delta", "Its delta (default 1e-6)", cxxopts::value<double>())(
      "dp-max-items", "Items kept per user under --dp-epsilon (default 32)", cxxopts::value<int>())(
      "dp-iterations", "Private ALS iterations (default 5)", cxxopts::value<int>())(
      "dp-seed",
      "Seed of the privacy noise: reproducible runs, no privacy guarantee (default: random)",
      cxxopts::value<uint64_t>())(
      "dp-user-rows",
      "on (default): a private bundle keeps each user's own rows to answer them; off: no user "
      "ids, factors or histories at all (requests send the history)",
      cxxopts::value<std::string>())(
      "schema", "Column types, e.g. price:numeric,tags:list,notes:skip",
      cxxopts::value<std::string>())("channels",
                                     "Channel multipliers of event weights (a 'channel' column), "
                                     "e.g. online=1,store=1.5,wishlist=0.5",
                                     cxxopts::value<std::string>())(
      "events", "Event weights, e.g. view=1,cart=4,purchase=10", cxxopts::value<std::string>())(
      "strict",
      "Interactions naming unknown items are an error, and so is a catalog column whose "
      "inferred type a few cells decide (else a warning)")(
      "skip-bad-lines", "Count and report malformed CSV lines instead of failing")(
      "config", "build.toml with any parameter below (flags win); keys: --config-keys",
      cxxopts::value<std::string>())("config-keys",
                                     "Print every build.toml key, its type and range");
  opts.add_options("Model")("factors", "ALS factors", cxxopts::value<int>())(
      "iterations", "ALS iterations", cxxopts::value<int>())(
      "alpha", "ALS confidence scale (c = 1 + alpha * weight)", cxxopts::value<float>())(
      "regularization", "ALS L2 regularisation", cxxopts::value<float>())(
      "content-dim", "Content block dimension", cxxopts::value<int>())(
      "visual-dim", "Visual block dimension", cxxopts::value<int>())(
      "cold-threshold", "Items with fewer interactions get projected cf vectors",
      cxxopts::value<int64_t>())(
      "arrival-column",
      "Items column with each item's arrival date (unix seconds or ISO-8601) for the "
      "new-arrival prior; default: its first interaction",
      cxxopts::value<std::string>())("new-half-life",
                                     "Days after which an item's newness halves (default 30)",
                                     cxxopts::value<double>())(
      "trend-window",
      "Window of the trend prior: growth over the data's last window against the one before "
      "(1h to 7d; default 1d)",
      cxxopts::value<std::string>())(
      "weights", "Default block weights, e.g. cf=1,content=0.5,visual=0.5",
      cxxopts::value<std::string>())("index",
                                     "FAISS index spec (index_factory string), or auto (the "
                                     "default): HNSW32 while it takes at most half the memory, "
                                     "IVF-PQ with re-ranking above",
                                     cxxopts::value<std::string>())(
      "autotune", "Pick the index spec and ef/nprobe meeting --target-recall fastest")(
      "target-recall", "Recall@10 target of --autotune (default 0.95)", cxxopts::value<double>())(
      "ranker",
      "on: train the learned ranker on a temporal split of the interactions (the default "
      "answers); off: the hybrid score alone",
      cxxopts::value<std::string>())("seed", "Random seed for every stage",
                                     cxxopts::value<uint64_t>())(
      "threads", "Threads for training (0 = all cores)", cxxopts::value<int>());
  opts.add_options("Tuning")(
      "tune", "Run `vitrine tune` first and build with its choice (recorded in the manifest)")(
      "budget", "Tuning time budget: 90s, 10m, 1h (default 10m)", cxxopts::value<std::string>())(
      "trials", "Retrieval trials, the starting configuration included (default 30)",
      cxxopts::value<int>())("save-config", "tune: write the choice as a build --config TOML",
                             cxxopts::value<std::string>());
  if (!tune_only) {
    opts.add_options("Output")("o,out", "Bundle directory to write", cxxopts::value<std::string>());
  }
  opts.set_width(100);
  auto p = ParseOrExit(
      opts, argc, argv, name, {},
      tune_only ? "  vitrine tune --items demo/data/items.csv --interactions demo/split/train.csv "
                  "\\\n      --images demo/data/images.idx.gz --budget 10m --save-config tuned.toml"
                : "  vitrine build --items demo/data/items.csv "
                  "--interactions demo/data/interactions.csv \\\n"
                  "      --images demo/data/images.idx.gz --out demo/bundle");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  if (r.count("config-keys")) {
    std::printf("build.toml keys ([section] then key = value; flags override them):\n%s",
                BuildConfigReference().c_str());
    return kExitOk;
  }
  BuildOptions o;
  if (r.count("config")) {
    Status st = ApplyBuildConfig(r["config"].as<std::string>(), &o);
    if (!st.ok()) return Fail(name, st);
  }
  if (r.count("items")) o.items = r["items"].as<std::string>();
  if (r.count("interactions")) o.interactions = r["interactions"].as<std::string>();
  if (r.count("images")) o.images = r["images"].as<std::string>();
  if (r.count("visual")) o.visual = r["visual"].as<std::string>();
  if (r.count("image-column")) o.image_column = r["image-column"].as<std::string>();
  if (r.count("opt-out")) o.opt_out = r["opt-out"].as<std::string>();
  if (r.count("forget-list")) o.forget_list = r["forget-list"].as<std::string>();
  if (r.count("sensitive")) {
    o.privacy.sensitive = r["sensitive"].as<std::string>();
    if (o.privacy.sensitive.find_first_not_of(" \t") == std::string::npos) {
      return UsageError(name, "--sensitive: empty predicate; expected e.g. 'category IN (\"lingerie\")'");
    }
  }
  if (r.count("sensitive-policy")) {
    auto on = ParseOnOff("sensitive-policy", r["sensitive-policy"].as<std::string>());
    if (!on.ok()) return UsageError(name, on.status().message());
    o.privacy.policy = *on;
  }
  if (r.count("dp-epsilon")) o.dp.epsilon = r["dp-epsilon"].as<double>();
  if (r.count("dp-delta")) o.dp.delta = r["dp-delta"].as<double>();
  if (r.count("dp-max-items")) o.dp.max_items_per_user = r["dp-max-items"].as<int>();
  if (r.count("dp-iterations")) o.dp.iterations = r["dp-iterations"].as<int>();
  if (r.count("dp-seed")) {
    o.dp.noise_seed = r["dp-seed"].as<uint64_t>();
    if (o.dp.noise_seed == 0) return UsageError(name, "--dp-seed: expected a seed >= 1");
  }
  if (r.count("dp-user-rows")) {
    auto on = ParseOnOff("dp-user-rows", r["dp-user-rows"].as<std::string>());
    if (!on.ok()) return UsageError(name, on.status().message());
    o.dp.user_rows = *on;
  }
  const bool dp_flags = r.count("dp-delta") + r.count("dp-max-items") + r.count("dp-iterations") +
                            r.count("dp-seed") + r.count("dp-user-rows") >
                        0;
  if (dp_flags && !o.dp.enabled() && !r.count("dp-epsilon")) {
    return UsageError(name,
                      "--dp-delta, --dp-max-items, --dp-iterations, --dp-seed and --dp-user-rows "
                      "need --dp-epsilon");
  }
  if (o.dp.enabled() || r.count("dp-epsilon")) {
    if (Status st = o.dp.Validate(); !st.ok()) return UsageError(name, st.message());
  }
  if (o.items.empty()) return UsageError(name, "missing required option --items");
  if (!tune_only && !r.count("out")) return UsageError(name, "missing required option --out");
  const bool tune = tune_only || r.count("tune") > 0;
  if (tune && o.dp.enabled()) {
    // Choosing parameters by their held-out score reads the data outside the
    // privacy budget.
    return UsageError(name,
                      "--dp-epsilon cannot be tuned: tuning picks parameters by looking at the "
                      "interactions outside the privacy budget; tune on other data and build "
                      "privately with its --config (docs/privacy.md)");
  }
  if (tune && o.interactions.empty()) {
    return UsageError(name, "tuning needs --interactions (it validates on the latest of them)");
  }
  TuneOptions topts;
  if (r.count("budget")) {
    const auto b = ParseDuration(r["budget"].as<std::string>());
    if (!b) {
      return UsageError(name, "--budget '" + r["budget"].as<std::string>() +
                                  "': expected a positive duration such as 90s, 10m or 1h");
    }
    topts.budget_seconds = *b;
  }
  if (r.count("trials")) {
    topts.max_trials = r["trials"].as<int>();
    if (topts.max_trials < 1) return UsageError(name, "--trials must be at least 1");
  }
  if ((!o.images.empty()) + (!o.visual.empty()) + (!o.image_column.empty()) > 1) {
    return UsageError(name, "give at most one of --images, --visual and --image-column");
  }
  if (r.count("schema")) {
    auto s = Schema::Parse(r["schema"].as<std::string>());
    if (!s.ok()) return UsageError(name, s.status().message());
    o.catalog.schema = *s;
  }
  if (r.count("channels")) {
    auto c = EventWeights::ParseChannels(r["channels"].as<std::string>());
    if (!c.ok()) return UsageError(name, "--channels: " + c.status().message());
    o.interactions_read.channels = *c;
  }
  if (r.count("events")) {
    auto e = EventWeights::Parse(r["events"].as<std::string>());
    if (!e.ok()) return UsageError(name, e.status().message());
    o.interactions_read.events = *e;
  }
  o.interactions_read.strict = o.catalog.strict = r.count("strict") > 0;
  o.interactions_read.skip_bad_lines = o.catalog.skip_bad_lines = r.count("skip-bad-lines") > 0;
  if (r.count("factors")) o.als.factors = r["factors"].as<int>();
  if (r.count("iterations")) o.als.iterations = r["iterations"].as<int>();
  if (r.count("alpha")) o.als.alpha = r["alpha"].as<float>();
  if (r.count("regularization")) o.als.regularization = r["regularization"].as<float>();
  if (r.count("content-dim")) o.content.dim = r["content-dim"].as<int>();
  if (r.count("visual-dim")) o.visual_encoder.dim = r["visual-dim"].as<int>();
  if (r.count("cold-threshold")) o.cold_start.min_interactions = r["cold-threshold"].as<int64_t>();
  if (r.count("arrival-column")) o.recency.column = r["arrival-column"].as<std::string>();
  if (r.count("new-half-life")) {
    o.recency.half_life_days = r["new-half-life"].as<double>();
    if (!(o.recency.half_life_days > 0)) return UsageError(name, "--new-half-life must be > 0");
  }
  if (r.count("trend-window")) {
    auto hours = ParseTrendWindow(r["trend-window"].as<std::string>());
    if (!hours.ok()) return UsageError(name, "--trend-window: " + hours.status().message());
    o.trend_window_hours = *hours;
  }
  if (r.count("index")) o.index.spec = r["index"].as<std::string>();
  if (r.count("autotune")) o.autotune = true;
  if (r.count("ranker")) {
    auto on = ParseOnOff("ranker", r["ranker"].as<std::string>());
    if (!on.ok()) return UsageError(name, on.status().message());
    o.ranker.enabled = *on;
    if (o.ranker.enabled && o.dp.enabled()) {
      return UsageError(name,
                        "--ranker on: a bundle built with --dp-epsilon has no learned ranker (it "
                        "would be trained on the interactions outside the privacy budget)");
    }
  }
  if (r.count("target-recall")) {
    o.autotune_recall = r["target-recall"].as<double>();
    if (!(o.autotune_recall > 0 && o.autotune_recall <= 1)) {
      return UsageError(name, "--target-recall must be in (0, 1]");
    }
  }
  if (o.autotune && r.count("index")) {
    return UsageError(name, "give --index or --autotune, not both");
  }
  if (r.count("threads")) o.als.num_threads = r["threads"].as<int>();
  if (r.count("seed")) {
    const uint64_t s = r["seed"].as<uint64_t>();
    o.als.seed = o.content.seed = o.index.seed = o.ranker.seed = s;
  }
  if (r.count("weights")) {
    auto w = ParseWeightsFlag(r["weights"].as<std::string>());
    if (!w.ok()) return UsageError(name, w.status().message());
    for (auto& [k, v] : *w) o.block_weights[k] = v;
  }
  if (o.als.factors < 1 || o.als.iterations < 1) {
    return UsageError(name, "--factors and --iterations must be at least 1");
  }
  o.params = {{"items", o.items.string()},
              {"interactions", o.interactions.string()},
              {"images", o.images.string()},
              {"visual", o.visual.string()},
              {"index", o.autotune ? std::string("autotune") : o.index.spec},
              {"factors", o.als.factors},
              {"iterations", o.als.iterations},
              {"alpha", o.als.alpha},
              {"regularization", o.als.regularization},
              {"content_dim", o.content.dim},
              {"visual_dim", o.visual_encoder.dim},
              {"cold_threshold", o.cold_start.min_interactions},
              {"cold_norm_quantile", o.cold_start.norm_quantile},
              {"arrival_column", o.recency.column},
              {"new_half_life_days", o.recency.half_life_days}};
  if (r.count("seed")) topts.seed = r["seed"].as<uint64_t>();
  if (!tune) {
    // Under mpirun every rank fits its blocks of the ALS; rank 0 alone
    // reads, encodes, indexes and writes the bundle (docs/scale.md).
    auto cluster = JoinCluster();
    if (!cluster.ok()) return Fail(name, cluster.status());
    o.als.cluster = *cluster;
    if (o.als.cluster != nullptr && o.als.cluster->rank() != 0) {
      const Status st = FitAlsOnWorkerRank(o);
      return st.ok() ? kExitOk : FailCluster(name, st, o.als.cluster);
    }
    const std::string out = r["out"].as<std::string>();
    auto s = BuildBundle(o, out);
    if (!s.ok()) return FailCluster(name, s.status(), o.als.cluster);
    PrintBuilt(out, *s);
    return kExitOk;
  }
  if (LaunchedByMpi()) {
    return UsageError(name, "tuning does not run under mpirun: tune alone, then build on MPI");
  }

  const auto t0 = std::chrono::steady_clock::now();
  auto in = ReadBuildInputs(o);
  if (!in.ok()) return Fail(name, in.status());
  if (!in->has_interactions)
    return Fail(name, Status::InvalidArgument(o.interactions.string() +
                                              ": no usable interactions to tune on"));
  const std::filesystem::path scratch =
      tune_only ? std::filesystem::temp_directory_path() / "vitrine-tune"
                : std::filesystem::path(r["out"].as<std::string>()).parent_path();
  topts.scratch_dir = scratch.empty() ? std::filesystem::path(".") : scratch;
  auto tuned =
      Tune(o, in->catalog, in->interactions, topts,
           [](const TuneTrial& t, int done, int planned, double eta) {
             LogInfo("tune %d/%d %-9s ndcg@10 %.4f  %5.1f s  eta %.0f s  %s", done, planned,
                     t.stage.c_str(), t.ndcg, t.seconds, eta, t.params.dump().c_str());
           });
  if (!tuned.ok()) return Fail(name, tuned.status());
  PrintTuning(*tuned);
  if (tune_only) {
    if (r.count("save-config")) {
      const std::string path = r["save-config"].as<std::string>();
      auto toml = tuned->ToToml();
      if (!toml.ok()) return Fail(name, toml.status());
      Status st = WriteFileAtomic(path, *toml);
      if (!st.ok()) return Fail(name, st);
      std::printf("wrote %s (use: vitrine build --config %s ...)\n", path.c_str(), path.c_str());
    }
    return kExitOk;
  }
  BuildOptions best = tuned->best;
  best.tuning = tuned->ToJson(topts);
  best.params["tuned"] = tuned->chosen;
  const std::string out = r["out"].as<std::string>();
  auto s = BuildFromData(best, in->catalog, &in->interactions, out);
  if (!s.ok()) return Fail(name, s.status());
  s->unknown_item_events = in->interactions.unknown_item_events;
  s->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  PrintBuilt(out, *s);
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("build", "Build a bundle (vectors + index) from items, interactions, images",
                [](int argc, char** argv) { return Run(argc, argv, false); });
VITRINE_COMMAND("tune", "Choose build parameters on a validation split of the interactions",
                [](int argc, char** argv) { return Run(argc, argv, true); });

}  // namespace vitrine::cli
