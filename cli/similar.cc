// vitrine similar: the items nearest to an item (or to each item of a file).
#include <fstream>

#include "cli/command.h"
#include "cli/query_common.h"
#include "core/file_util.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "similar";

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine similar", "Items similar to a given item.");
  opts.custom_help("--bundle B (--item ID | --items-file F) [options]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory", cxxopts::value<std::string>())
      ("item", "Query item id", cxxopts::value<std::string>())
      ("items-file", "File of query item ids, one per line", cxxopts::value<std::string>())
      ("format", "table, json or csv", cxxopts::value<std::string>()->default_value("table"))
      ("output", "Write results to this file instead of stdout", cxxopts::value<std::string>());
  // clang-format on
  AddQueryFlags(opts);
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle"},
                       "  vitrine similar --bundle demo/bundle --item I000042 -k 5 --explain\n"
                       "  vitrine similar --bundle demo/bundle --item I000042 --diversity mmr:0.5 "
                       "--rule 'CAP 2 PER brand'\n"
                       "  vitrine similar --bundle demo/bundle --item I000042 "
                       "--rule 'INCLUDE WHERE category = CurrentItem.category'\n"
                       "  vitrine similar --bundle demo/bundle --items-file ids.txt --format csv");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  if (!r.count("item") == !r.count("items-file")) {
    return UsageError(kName, "give exactly one of --item and --items-file");
  }
  auto fmt = ParseFormat(r["format"].as<std::string>());
  if (!fmt.ok()) return UsageError(kName, fmt.status().message());
  std::vector<std::string> queries;
  if (r.count("item")) {
    queries.push_back(r["item"].as<std::string>());
  } else {
    const std::string path = r["items-file"].as<std::string>();
    auto text = ReadFile(path);
    if (!text.ok()) return Fail(kName, text.status());
    queries = SplitList(*text, '\n');
  }
  auto engine = Engine::Open(r["bundle"].as<std::string>());
  if (!engine.ok()) return Fail(kName, engine.status());
  bool usage = false;
  auto setup = ParseQueryFlags(r, **engine, &usage);
  if (!setup.ok()) {
    return usage ? UsageError(kName, setup.status().message()) : Fail(kName, setup.status());
  }
  const QueryParams& q = (*setup)->query;
  const bool explain = r.count("explain") > 0;
  const bool batch = r.count("items-file") > 0;
  Table t = HitsTable(**engine, explain, batch);
  if (batch && *fmt == Format::kCsv && !explain) {
    t.header = {"query_id", "item_id", "rank", "score"};  // the documented batch layout
  }
  for (const auto& id : queries) {
    auto hits = (*engine)->Similar(id, q);
    if (!hits.ok()) {
      return Fail(kName, batch ? hits.status().WithContext(r["items-file"].as<std::string>())
                               : hits.status());
    }
    if (t.header.size() == 4 && t.header[0] == "query_id") {
      int rank = 1;
      for (const Hit& h : *hits) {
        t.rows.push_back({id, (*engine)->catalog().ids.id(h.item), std::to_string(rank++),
                          FormatFloat(h.score, 6)});
      }
    } else {
      AppendHits(**engine, *hits, explain, batch ? id : "", &t);
      if (!batch) LogDiversity(**engine, *hits);
    }
  }
  if (r.count("output")) {
    Status st = WriteFileAtomic(r["output"].as<std::string>(), t.Render(*fmt));
    if (!st.ok()) return Fail(kName, st);
  } else {
    t.Print(*fmt);
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("similar", "Items similar to an item (or a file of items)", Run);

}  // namespace vitrine::cli
