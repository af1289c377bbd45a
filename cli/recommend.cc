// vitrine recommend: recommendations for a user or a session history.
#include <omp.h>

#include "cli/command.h"
#include "cli/query_common.h"
#include "core/file_util.h"
#include "core/progress.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "recommend";

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine recommend", "Recommendations for a user or a session.");
  opts.custom_help("--bundle B (--user ID | --history ID,ID,... | --all-users | --intent gift) "
                   "[options]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory", cxxopts::value<std::string>())
      ("user", "A user id of the bundle", cxxopts::value<std::string>())
      ("history", "Session item ids, comma-separated (folded in; nothing is stored)",
       cxxopts::value<std::string>())
      ("all-users", "Every user of the bundle, as CSV user_id,item_id,rank,score")
      ("include-seen", "Do not filter items already in the history")
      ("ranker", "on: the learned ranker orders the merged candidate pool (bundles that have "
                 "one); off: the hybrid score alone",
       cxxopts::value<std::string>()->default_value("on"))
      ("not-interested", "Item ids the shopper rejected, comma-separated: never shown, and the "
       "recommendations move away from them", cxxopts::value<std::string>())
      ("hide-brand", "A brand never to show (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("brand-column", "Catalog column holding the brand",
       cxxopts::value<std::string>()->default_value("brand"))
      ("negative-weight", "How far recommendations move away from each rejected item (0-10)",
       cxxopts::value<float>()->default_value("0.5"))
      ("intent", "for-you (new items for the taste), recently-viewed (own items, newest first), "
       "buy-again (own replenishable items), gift (what customers bought as gifts; --user or "
       "--history is the recipient, if known) or next-step (the logical next piece after the "
       "newest item, by the transitions between --category-column values)", cxxopts::value<std::string>()->default_value("for-you"))
      ("replenishable", "Categories that are bought again, comma-separated (buy-again; default: "
       "a boolean catalog column 'replenishable')", cxxopts::value<std::string>())
      ("category-column", "Catalog column holding the category (--replenishable, next-step)",
       cxxopts::value<std::string>()->default_value("category"))
      ("exploration", "Share of the slots (0-1) given to the best new arrivals and cold-start "
       "items", cxxopts::value<float>()->default_value("0"))
      ("explore-max-age", "Days since arrival under which an item counts as new for "
       "--exploration", cxxopts::value<double>()->default_value("30"))
      ("format", "table, json or csv", cxxopts::value<std::string>()->default_value("table"))
      ("output", "Write results to this file instead of stdout", cxxopts::value<std::string>());
  // clang-format on
  AddQueryFlags(opts);
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle"},
                       "  vitrine recommend --bundle demo/bundle --user U0000007 --explain\n"
                       "  vitrine recommend --bundle demo/bundle --user U0000007 --rules rules.txt "
                       "--context climate=warm --param MAXPRICE=500\n"
                       "  vitrine recommend --bundle demo/bundle --history I000010,I000333\n"
                       "  vitrine recommend --bundle demo/bundle --user U0000007 "
                       "--not-interested I000042 --hide-brand Streetform\n"
                       "  vitrine recommend --bundle demo/bundle --user U0000007 --exploration 0.2\n"
                       "  vitrine recommend --bundle demo/bundle --user U0000007 --intent "
                       "recently-viewed\n"
                       "  vitrine recommend --bundle demo/bundle --user U0000007 --intent "
                       "next-step --explain\n"
                       "  vitrine recommend --bundle demo/bundle --intent gift --rule "
                       "'INCLUDE WHERE price <= $MAX_PRICE' --param MAX_PRICE=300\n"
                       "  vitrine recommend --bundle demo/bundle --all-users --output recs.csv");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  const size_t whom = r.count("user") + r.count("history") + r.count("all-users");
  const bool gift = r["intent"].as<std::string>() == "gift";
  if (whom > 1 || (whom == 0 && !gift)) {
    return UsageError(kName, "give exactly one of --user, --history and --all-users (with "
                             "--intent gift, none is a gift for someone unknown)");
  }
  auto fmt = ParseFormat(r["format"].as<std::string>());
  if (!fmt.ok()) return UsageError(kName, fmt.status().message());
  auto engine_r = Engine::Open(r["bundle"].as<std::string>());
  if (!engine_r.ok()) return Fail(kName, engine_r.status());
  const Engine& engine = **engine_r;
  bool usage = false;
  auto setup = ParseQueryFlags(r, engine, &usage);
  if (!setup.ok()) {
    return usage ? UsageError(kName, setup.status().message()) : Fail(kName, setup.status());
  }
  RecommendRequest req;
  req.query = (*setup)->query;
  req.filter_already_seen = r.count("include-seen") == 0;
  const bool explain = r.count("explain") > 0;
  req.query.explain = explain;
  auto ranker = ParseOnOff("ranker", r["ranker"].as<std::string>());
  if (!ranker.ok()) return UsageError(kName, ranker.status().message());
  req.query.use_ranker = *ranker;
  if (r.count("not-interested")) {
    req.not_interested = SplitList(r["not-interested"].as<std::string>(), ',');
  }
  if (r.count("hide-brand")) req.hidden_brands = r["hide-brand"].as<std::vector<std::string>>();
  req.brand_column = r["brand-column"].as<std::string>();
  req.negative_weight = r["negative-weight"].as<float>();
  if (!(req.negative_weight >= 0 && req.negative_weight <= kMaxNegativeWeight)) {
    return UsageError(kName, "--negative-weight must be in [0, 10]");
  }
  {
    auto intent = ParseIntent(r["intent"].as<std::string>());
    if (!intent.ok()) return UsageError(kName, "--" + intent.status().message());
    req.intent = *intent;
  }
  if (r.count("replenishable")) {
    req.replenishable_categories = SplitList(r["replenishable"].as<std::string>(), ',');
  }
  req.category_column = r["category-column"].as<std::string>();
  req.query.exploration = r["exploration"].as<float>();
  req.query.explore_max_age_days = r["explore-max-age"].as<double>();
  if (!(req.query.exploration >= 0 && req.query.exploration <= 1)) {
    return UsageError(kName, "--exploration must be in [0, 1]");
  }
  if (!(req.query.explore_max_age_days >= 0 && req.query.explore_max_age_days <= 36500)) {
    return UsageError(kName, "--explore-max-age must be in [0, 36500] days");
  }

  std::string rendered;
  // Under mpirun each rank scores a contiguous share of the users and rank 0
  // writes them all, in user order (docs/scale.md).
  auto cluster_r = JoinCluster();
  if (!cluster_r.ok()) return Fail(kName, cluster_r.status());
  Cluster* const cluster = *cluster_r;
  if (cluster != nullptr && cluster->size() > 1 && !r.count("all-users")) {
    return FailCluster(kName, Status::InvalidArgument("only --all-users runs across MPI ranks"),
                       cluster);
  }
  if (r.count("all-users")) {
    const IdMap& users = engine.users();
    const auto total = static_cast<int64_t>(users.size());
    const int rank = cluster != nullptr ? cluster->rank() : 0;
    const int ranks = cluster != nullptr ? cluster->size() : 1;
    const int64_t first = total * rank / ranks, last = total * (rank + 1) / ranks;
    const int64_t n = last - first;
    std::vector<std::string> parts(static_cast<size_t>(n));
    Status first_error;
    StageTimer timer("recommend all users", n);
    int64_t done = 0;
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t k = 0; k < n; ++k) {
      const int64_t u = first + k;
      RecommendRequest one = req;
      one.user = users.id(static_cast<int32_t>(u));
      auto rec = engine.Recommend(one);
      std::string& out = parts[static_cast<size_t>(k)];
      if (!rec.ok()) {
#pragma omp critical
        if (first_error.ok()) first_error = rec.status();
        continue;
      }
      int rank = 1;
      for (const Hit& h : rec->hits) {
        out += *one.user + "," + engine.catalog().ids.id(h.item) + "," + std::to_string(rank++) +
               "," + FormatFloat(h.score, 6) + "\n";
      }
#pragma omp atomic
      ++done;
      if (omp_get_thread_num() == 0) timer.Update(done);
    }
    if (!first_error.ok()) return FailCluster(kName, first_error, cluster);
    timer.Done(std::to_string(n) + " users" +
               (ranks > 1 ? " on rank 0 of " + std::to_string(ranks) : ""));
    std::string mine;
    for (const auto& s : parts) mine += s;
    std::vector<std::string> shares{std::move(mine)};
    if (cluster != nullptr) {
      const std::string local = std::move(shares[0]);
      const Status st = cluster->GatherToRoot(local, &shares);
      if (!st.ok()) return FailCluster(kName, st, cluster);
      if (rank != 0) return kExitOk;  // rank 0 writes
    }
    rendered = "user_id,item_id,rank,score\n";
    for (const auto& s : shares) rendered += s;
  } else {
    if (r.count("user")) req.user = r["user"].as<std::string>();
    if (r.count("history")) req.history = SplitList(r["history"].as<std::string>(), ',');
    auto rec = engine.Recommend(req);
    if (!rec.ok()) return Fail(kName, rec.status());
    if (rec->fallback) {
      LogInfo("%s: nothing known about %s: the most popular items (fallback)", kName,
              req.user ? ("user '" + *req.user + "'").c_str() : "this session");
    }
    Table t = HitsTable(engine, explain, false);
    AppendHits(engine, rec->hits, explain, "", &t);
    LogDiversity(engine, rec->hits);
    rendered = t.Render(*fmt);
  }
  if (r.count("output")) {
    Status st = WriteFileAtomic(r["output"].as<std::string>(), rendered);
    if (!st.ok()) return Fail(kName, st);
  } else {
    std::fwrite(rendered.data(), 1, rendered.size(), stdout);
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("recommend", "Recommendations for a user, a session history or all users", Run);

}  // namespace vitrine::cli
