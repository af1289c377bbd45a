// vitrine forget: a customer's rows out of a bundle, their lines out of
// interaction files and event logs, and their id on the forget list the next
// build leaves out (engine/forget.h, docs/privacy.md).
#include "engine/forget.h"

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/file_util.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "forget";

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine forget",
                        "Forget customers: remove their rows from a bundle (one atomic "
                        "rewrite), their lines from event logs and interaction files, and list "
                        "them for the next build (--forget-list). Idempotent. For a running "
                        "server use its POST /forget instead: it also drops their session and "
                        "rewrites its own event log under its lock.");
  opts.custom_help(
      "--user U[,U2...] | --users-file F  [--bundle B] [--event-log F] [--interactions F] "
      "[--forget-list F]");
  // clang-format off
  opts.add_options()
      ("user", "User ids to forget (comma-separated, or the flag repeated)",
       cxxopts::value<std::vector<std::string>>())
      ("users-file", "User ids to forget, one per line ('#' comments)", cxxopts::value<std::string>())
      ("bundle", "Bundle to remove them from (rewritten in place, atomically)",
       cxxopts::value<std::string>())
      ("event-log", "Event log to remove their lines from (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("interactions", "Interactions CSV to remove their lines from (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("forget-list", "Forget list to add them to (created if missing); give it to `vitrine "
       "build --forget-list`", cxxopts::value<std::string>());
  // clang-format on
  auto p = ParseOrExit(opts, argc, argv, kName, {},
                       "  vitrine forget --user U0000012 --bundle demo/bundle \\\n"
                       "      --event-log demo/events.csv --forget-list demo/forgotten.txt\n"
                       "  vitrine build ... --forget-list demo/forgotten.txt   # the next build");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  std::set<std::string> users;
  if (r.count("user")) {
    for (const std::string& u : r["user"].as<std::vector<std::string>>()) {
      users.insert(u);
    }
  }
  if (r.count("users-file")) {
    auto ids = ReadIdList(r["users-file"].as<std::string>());
    if (!ids.ok()) return Fail(kName, ids.status());
    users.insert(ids->begin(), ids->end());
  }
  if (users.empty()) return UsageError(kName, "give the users to forget: --user or --users-file");
  for (const std::string& u : users) {
    if (Status st = CheckForgettableId(u); !st.ok()) return Fail(kName, st);
  }
  std::vector<std::string> csv_files;
  for (const char* flag : {"event-log", "interactions"}) {
    if (!r.count(flag)) continue;
    for (const std::string& f : r[flag].as<std::vector<std::string>>()) csv_files.push_back(f);
  }
  if (!r.count("bundle") && csv_files.empty() && !r.count("forget-list")) {
    return UsageError(kName,
                      "nothing to forget them in: give --bundle, --event-log, "
                      "--interactions or --forget-list");
  }

  // The forget list first: if a later step fails, the next build still
  // leaves them out, and running the command again finishes the job.
  if (r.count("forget-list")) {
    const std::string list = r["forget-list"].as<std::string>();
    auto added = AddToForgetList(list, users);
    if (!added.ok()) return Fail(kName, added.status());
    std::printf("%s: %lld of %zu ids added (%s)\n", list.c_str(), static_cast<long long>(*added),
                users.size(), *added == 0 ? "all were listed" : "vitrine build --forget-list");
  }
  for (const std::string& f : csv_files) {
    auto removed = ForgetInCsv(f, users);
    if (!removed.ok()) return Fail(kName, removed.status());
    std::printf("%s: %lld lines removed\n", f.c_str(), static_cast<long long>(*removed));
  }
  if (r.count("bundle")) {
    const std::string bundle = r["bundle"].as<std::string>();
    auto s = ForgetInBundle(bundle, users);
    if (!s.ok()) return Fail(kName, s.status());
    std::printf("%s: %lld users and %lld history entries removed%s\n", bundle.c_str(),
                static_cast<long long>(s->users), static_cast<long long>(s->history_entries),
                s->users > 0 ? " (atomic rewrite)" : "");
    auto b = Bundle::Open(bundle, VerifyMode::kSizesOnly);
    if (!b.ok()) return Fail(kName, b.status());
    auto m = BundleManifest::Read(*b);
    if (!m.ok()) return Fail(kName, m.status());
    std::printf("still shaped by their past events until the next build without them:\n");
    for (const std::string& line : StillInfluenced(*m)) std::printf("  %s\n", line.c_str());
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("forget", "Forget customers: bundle rows, event-log lines, the forget list", Run);

}  // namespace vitrine::cli
