// vitrine items add|remove|set-stock: live catalog updates of a bundle
// (engine/catalog_update.h, docs/live-updates.md). Each writes the bundle
// atomically and prints what it did and the tombstone state.
#include <cstdio>
#include <cstring>

#include "cli/command.h"
#include "core/file_util.h"
#include "engine/catalog_update.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "items";

void PrintSummary(const char* verb, const UpdateSummary& s) {
  std::printf("%s %lld items; %s\n", verb, static_cast<long long>(s.changed),
              s.TombstoneLine().c_str());
}

// Ids from --ids (comma-separated) and/or --ids-file (one per line).
Result<std::vector<std::string>> CollectIds(const cxxopts::ParseResult& r) {
  std::vector<std::string> ids;
  auto add = [&](std::string id) {
    while (!id.empty() && (id.back() == '\r' || id.back() == ' ')) id.pop_back();
    while (!id.empty() && id.front() == ' ') id.erase(0, 1);
    if (!id.empty()) ids.push_back(std::move(id));
  };
  if (r.count("ids")) {
    const std::string s = r["ids"].as<std::string>();
    size_t pos = 0;
    while (pos <= s.size()) {
      size_t end = s.find(',', pos);
      if (end == std::string::npos) end = s.size();
      add(s.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  if (r.count("ids-file")) {
    VITRINE_ASSIGN_OR_RETURN(std::string text, ReadFile(r["ids-file"].as<std::string>()));
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      add(text.substr(pos, end - pos));
      pos = end + 1;
    }
  }
  if (ids.empty()) return Status::InvalidArgument("no item ids: give --ids or --ids-file");
  return ids;
}

void AddIdFlags(cxxopts::Options& opts) {
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory (rewritten in place, atomically)", cxxopts::value<std::string>())
      ("ids", "Comma-separated item ids", cxxopts::value<std::string>())
      ("ids-file", "File of item ids, one per line", cxxopts::value<std::string>());
  // clang-format on
}

int RunAdd(int argc, char** argv) {
  const std::string cmd = "items add";
  cxxopts::Options opts("vitrine items add",
                        "Add new items to a bundle: vectors from the stored encoders "
                        "(new items are cold), appended to the index.");
  opts.custom_help("--bundle B --items new.csv [--images F | --visual F | --image-column C]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory (rewritten in place, atomically)", cxxopts::value<std::string>())
      ("items", "CSV of the new items, with the catalog's columns", cxxopts::value<std::string>())
      ("images", "IDX images of the new items, in row order", cxxopts::value<std::string>())
      ("visual", "Precomputed visual vectors .npy/.fvecs, in row order", cxxopts::value<std::string>())
      ("image-column", "Column of image paths (relative to the items file)", cxxopts::value<std::string>());
  // clang-format on
  auto p = ParseOrExit(opts, argc, argv, cmd, {"bundle", "items"},
                       "  vitrine items add --bundle demo/bundle --items new.csv --images "
                       "new.idx.gz");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  AddItemsOptions o;
  o.items = r["items"].as<std::string>();
  if (r.count("images")) o.images = r["images"].as<std::string>();
  if (r.count("visual")) o.visual = r["visual"].as<std::string>();
  if (r.count("image-column")) o.image_column = r["image-column"].as<std::string>();
  if (r.count("images") + r.count("visual") + r.count("image-column") > 1) {
    return UsageError(cmd, "give at most one of --images, --visual and --image-column");
  }
  auto s = AddItems(r["bundle"].as<std::string>(), o);
  if (!s.ok()) return Fail(cmd, s.status());
  PrintSummary("added", *s);
  return kExitOk;
}

int RunRemove(int argc, char** argv) {
  const std::string cmd = "items remove";
  cxxopts::Options opts("vitrine items remove",
                        "Remove items (discontinued): never returned again; still usable as "
                        "queries. 'vitrine compact' drops them for good.");
  opts.custom_help("--bundle B (--ids I1,I2 | --ids-file F)");
  AddIdFlags(opts);
  auto p = ParseOrExit(opts, argc, argv, cmd, {"bundle"},
                       "  vitrine items remove --bundle demo/bundle --ids I000042,I000043");
  if (p.exit_code >= 0) return p.exit_code;
  auto ids = CollectIds(p.result);
  if (!ids.ok()) return UsageError(cmd, ids.status().message());
  auto s = RemoveItems(p.result["bundle"].as<std::string>(), *ids);
  if (!s.ok()) return Fail(cmd, s.status());
  PrintSummary("removed", *s);
  if (s->changed < static_cast<int64_t>(ids->size())) {
    std::printf("(%lld of the given ids were already removed)\n",
                static_cast<long long>(ids->size() - s->changed));
  }
  return kExitOk;
}

int RunSetStock(int argc, char** argv) {
  const std::string cmd = "items set-stock";
  cxxopts::Options opts("vitrine items set-stock",
                        "Set the in_stock column of items. Hiding out-of-stock items is a rule: "
                        "--rule 'INCLUDE WHERE in_stock = true'.");
  opts.custom_help("--bundle B (--ids I1,I2 | --ids-file F) --in-stock true|false");
  AddIdFlags(opts);
  opts.add_options()("in-stock", "true or false", cxxopts::value<std::string>());
  auto p = ParseOrExit(opts, argc, argv, cmd, {"bundle", "in-stock"},
                       "  vitrine items set-stock --bundle demo/bundle --ids I000007 --in-stock "
                       "false");
  if (p.exit_code >= 0) return p.exit_code;
  const std::string v = p.result["in-stock"].as<std::string>();
  if (v != "true" && v != "false") {
    return UsageError(cmd, "--in-stock expects true or false, found '" + v + "'");
  }
  auto ids = CollectIds(p.result);
  if (!ids.ok()) return UsageError(cmd, ids.status().message());
  auto s = SetInStock(p.result["bundle"].as<std::string>(), *ids, v == "true");
  if (!s.ok()) return Fail(cmd, s.status());
  std::printf("set in_stock=%s on %zu items (%lld changed); %s\n", v.c_str(), ids->size(),
              static_cast<long long>(s->changed), s->TombstoneLine().c_str());
  return kExitOk;
}

int Run(int argc, char** argv) {
  const char* usage =
      "Usage: vitrine items <add|remove|set-stock> --bundle B [options]\n"
      "  add        add new items (vectors from the stored encoders, cold-start cf)\n"
      "  remove     tombstone items (never returned; 'vitrine compact' drops them)\n"
      "  set-stock  set the in_stock column\n"
      "Each rewrites the bundle atomically. 'vitrine items <sub> --help' for details.\n"
      "Example:\n  vitrine items remove --bundle demo/bundle --ids I000042\n";
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string sub = argv[1];
  if (sub == "add") return RunAdd(argc - 1, argv + 1);
  if (sub == "remove") return RunRemove(argc - 1, argv + 1);
  if (sub == "set-stock") return RunSetStock(argc - 1, argv + 1);
  return UsageError(kName, "unknown subcommand '" + sub + "' (expected add, remove or set-stock)");
}

}  // namespace

VITRINE_COMMAND("items", "Add, remove or restock items of a bundle in place", Run);

}  // namespace vitrine::cli
