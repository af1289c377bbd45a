// vitrine compact: drop removed items from a bundle for good once their
// tombstones pass a fraction (engine/catalog_update.h).
#include <cstdio>

#include "cli/command.h"
#include "engine/catalog_update.h"

namespace vitrine::cli {
namespace {

constexpr char kName[] = "compact";

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine compact",
                        "Rewrite a bundle without its removed items (rebuilds the index with "
                        "the same spec; no retraining) once tombstones exceed a fraction.");
  opts.custom_help("--bundle B [--threshold 0.2] [--force]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory (rewritten in place, atomically)", cxxopts::value<std::string>())
      ("threshold", "Compact when removed / items exceeds this fraction",
       cxxopts::value<double>()->default_value("0.2"))
      ("force", "Compact whatever the fraction");
  // clang-format on
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle"},
                       "  vitrine compact --bundle demo/bundle --threshold 0.1");
  if (p.exit_code >= 0) return p.exit_code;
  CompactOptions o;
  o.threshold = p.result["threshold"].as<double>();
  o.force = p.result.count("force") > 0;
  if (!(o.threshold >= 0 && o.threshold <= 1)) {
    return UsageError(kName, "--threshold must be in [0, 1]");
  }
  const std::string bundle = p.result["bundle"].as<std::string>();
  auto s = Compact(bundle, o);
  if (!s.ok()) return Fail(kName, s.status());
  if (!s->compacted) {
    std::printf("nothing to do: %s, threshold %.1f%% (--force compacts anyway)\n",
                s->TombstoneLine().c_str(), 100.0 * o.threshold);
  } else {
    std::printf("compacted %s: dropped %lld removed items; %s\n", bundle.c_str(),
                static_cast<long long>(s->changed), s->TombstoneLine().c_str());
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("compact", "Drop removed items from a bundle and rebuild its index", Run);

}  // namespace vitrine::cli
