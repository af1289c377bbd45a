// vitrine audience: the users most likely to want an item (clienteling).
#include "cli/command.h"
#include "cli/query_common.h"
#include "core/file_util.h"
#include "core/progress.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "audience";

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine audience",
                        "The users most likely to want an item, best first, with the score the "
                        "item would get in each one's own recommendation and a reason. For "
                        "client advisors and campaigns. Users who opted out (build --opt-out, "
                        "or --opt-out here), users without a history and users who already have "
                        "the item are never listed.");
  opts.custom_help("--bundle B --item ID [-k 100] [options]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory", cxxopts::value<std::string>())
      ("item", "The item to find an audience for", cxxopts::value<std::string>())
      ("k", "Users to list", cxxopts::value<int>()->default_value("100"))
      ("opt-out", "More user ids never to list, one per line", cxxopts::value<std::string>())
      ("include-owners", "Also list users who already have the item")
      ("search", "auto (exact up to 50,000 users, else an HNSW index over users), exact or hnsw",
       cxxopts::value<std::string>()->default_value("auto"))
      ("format", "table, json or csv", cxxopts::value<std::string>()->default_value("table"));
  // clang-format on
  AddRuleFlags(opts);
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle", "item"},
                       "  vitrine audience --bundle demo/bundle --item I000042 -k 20\n"
                       "  vitrine audience --bundle demo/bundle --item I000042 "
                       "--rule 'INCLUDE WHERE in_stock = true' --format csv > campaign.csv");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  auto fmt = ParseFormat(r["format"].as<std::string>());
  if (!fmt.ok()) return UsageError(kName, fmt.status().message());
  AudienceRequest req;
  req.item = r["item"].as<std::string>();
  req.include_owners = r.count("include-owners") > 0;
  auto search = ParseAudienceSearch(r["search"].as<std::string>());
  if (!search.ok()) return UsageError(kName, "--" + search.status().message());
  req.search = *search;
  if (r["k"].as<int>() < 1) return UsageError(kName, "-k must be at least 1");
  auto engine = Engine::Open(r["bundle"].as<std::string>());
  if (!engine.ok()) return Fail(kName, engine.status());
  QuerySetup setup;
  bool usage = false;
  Status st = ParseRuleFlags(r, **engine, &setup, &usage);
  if (!st.ok()) return usage ? UsageError(kName, st.message()) : Fail(kName, st);
  req.query = setup.query;
  req.query.k = r["k"].as<int>();
  if (r.count("opt-out")) {
    const std::string path = r["opt-out"].as<std::string>();
    auto ids = ReadIdList(path);
    if (!ids.ok()) return Fail(kName, ids.status());
    size_t users = 0;
    for (const std::string& id : *ids) users += (*engine)->users().Find(id) ? 1 : 0;
    LogInfo("%s: %zu ids, %zu of them users of the bundle (never listed)", path.c_str(),
            ids->size(), users);
    req.opt_out = std::move(*ids);
  }
  auto audience = (*engine)->FindAudience(req);
  if (!audience.ok()) return Fail(kName, audience.status());
  LogInfo("%lld users could be listed; found by %s search",
          static_cast<long long>(audience->eligible), audience->search.c_str());
  Table t;
  t.header = {"rank", "user_id", "score", "reason"};
  for (const AudienceMember& m : audience->members) {
    t.rows.push_back({std::to_string(t.rows.size() + 1), (*engine)->users().id(m.user),
                      FormatFloat(m.score), m.reason});
  }
  t.Print(*fmt);
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("audience", "The users most likely to want an item (clienteling)", Run);

}  // namespace vitrine::cli
