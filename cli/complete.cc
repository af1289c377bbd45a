// vitrine complete: complete the look, one item per complementary category.
#include "cli/command.h"
#include "cli/query_common.h"
#include "core/csv.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "complete";

// "category,complement" rows (header required), in preference order.
Result<std::map<std::string, std::vector<std::string>>> ReadPairs(const std::string& path) {
  VITRINE_ASSIGN_OR_RETURN(auto csv, CsvReader::Open(path));
  if (csv->num_columns() != 2) {
    return Status::InvalidArgument(path + ":1: expected 2 columns (category,complement), found " +
                                   std::to_string(csv->num_columns()));
  }
  std::map<std::string, std::vector<std::string>> pairs;
  while (csv->Next()) pairs[std::string(csv->field(0))].emplace_back(csv->field(1));
  VITRINE_RETURN_IF_ERROR(csv->status());
  return pairs;
}

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine complete",
                        "Complete the look: one item from each complementary category, rules "
                        "applied. Complements are learned from co-occurrence across categories "
                        "in the interactions, or given with --pairs.");
  opts.custom_help("--bundle B --item ID [options]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory", cxxopts::value<std::string>())
      ("item", "Query item id", cxxopts::value<std::string>())
      ("categories", "Complementary categories to fill", cxxopts::value<int>()->default_value("4"))
      ("category-column", "Catalog column holding the category",
       cxxopts::value<std::string>()->default_value("category"))
      ("pairs", "CSV category,complement (header, preference order) instead of learning them",
       cxxopts::value<std::string>())
      ("format", "table, json or csv", cxxopts::value<std::string>()->default_value("table"));
  // clang-format on
  AddQueryFlags(opts);
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle", "item"},
                       "  vitrine complete --bundle demo/bundle --item I000042\n"
                       "  vitrine complete --bundle demo/bundle --item I000042 --categories 2 "
                       "--rule 'INCLUDE WHERE in_stock = true'");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  auto fmt = ParseFormat(r["format"].as<std::string>());
  if (!fmt.ok()) return UsageError(kName, fmt.status().message());
  if (r["categories"].as<int>() < 1) return UsageError(kName, "--categories must be at least 1");
  auto engine = Engine::Open(r["bundle"].as<std::string>());
  if (!engine.ok()) return Fail(kName, engine.status());
  bool usage = false;
  auto setup = ParseQueryFlags(r, **engine, &usage);
  if (!setup.ok()) {
    return usage ? UsageError(kName, setup.status().message()) : Fail(kName, setup.status());
  }
  CompleteRequest req;
  req.item = r["item"].as<std::string>();
  req.max_categories = r["categories"].as<int>();
  req.category_column = r["category-column"].as<std::string>();
  req.query = (*setup)->query;
  if (r.count("pairs")) {
    auto pairs = ReadPairs(r["pairs"].as<std::string>());
    if (!pairs.ok()) return Fail(kName, pairs.status());
    req.pairs = std::move(*pairs);
  }
  auto slots = (*engine)->CompleteTheLook(req);
  if (!slots.ok()) return Fail(kName, slots.status());
  const bool explain = r.count("explain") > 0;
  Table t = HitsTable(**engine, explain, false);
  t.header.insert(t.header.begin() + 1, "for");
  for (const LookSlot& s : *slots) {
    Table one = HitsTable(**engine, explain, false);
    AppendHits(**engine, {s.hit}, explain, "", &one);
    one.rows[0][0] = std::to_string(t.rows.size() + 1);
    one.rows[0].insert(one.rows[0].begin() + 1, s.category);
    t.rows.push_back(std::move(one.rows[0]));
  }
  t.Print(*fmt);
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("complete", "Complete the look: one item per complementary category", Run);

}  // namespace vitrine::cli
