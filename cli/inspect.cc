// vitrine inspect: verify every checksum of a bundle and print its summary.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "cli/command.h"
#include "core/bundle.h"
#include "core/file_util.h"
#include "engine/engine.h"

namespace vitrine::cli {
namespace {

using json = nlohmann::json;

std::string HumanBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

// Prints nested params as "  key.sub = value" lines.
void PrintFlat(const json& j, const std::string& prefix) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) PrintFlat(v, prefix.empty() ? k : prefix + "." + k);
    return;
  }
  // Stage state (vocabularies, biases) can be thousands of values: show its
  // size, not its contents; `--format json` has everything.
  std::string v = j.dump();
  if (j.is_array() && (j.size() > 8 || v.size() > 80)) {
    v = "[" + std::to_string(j.size()) + " values]";
  } else if (v.size() > 80) {
    v = v.substr(0, 77) + "...";
  }
  std::printf("  %s = %s\n", prefix.c_str(), v.c_str());
}

// VmRSS of this process from /proc/self/status (0 if unavailable).
int64_t ResidentBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

bool IsReserved(const std::string& key) {
  for (const char* k : {"format", "format_version", "created_by", "created_at", "updated_at",
                        "params", "blocks", "counts", "files"}) {
    if (key == k) return true;
  }
  return false;
}

void PrintTable(const Bundle& b, const BundleManifest& schema) {
  const json& m = b.manifest();
  std::printf("bundle     %s\n", b.dir().string().c_str());
  std::printf("format     %s version %d\n", kBundleFormatName, b.format_version());
  // A hand-edited manifest may hold anything here: show it, never throw.
  auto text = [&m](const char* key) {
    auto it = m.find(key);
    if (it == m.end()) return std::string("?");
    return it->is_string() ? it->get<std::string>() : it->dump();
  };
  std::printf("created    %s by %s\n", text("created_at").c_str(), text("created_by").c_str());
  if (m.contains("updated_at")) std::printf("updated    %s\n", text("updated_at").c_str());
  std::string counts;
  if (m.contains("counts")) {
    for (const auto& [k, v] : m["counts"].items()) {
      counts += (counts.empty() ? "" : ", ") + k + " " + v.dump();
    }
  }
  std::printf("counts     %s\n", counts.empty() ? "(none)" : counts.c_str());
  if (schema.private_training()) {
    const json& dp = schema.differential_privacy;
    std::printf("privacy    user-level differential privacy: epsilon %g, delta %g (%s; %s)\n",
                schema.dp_epsilon, schema.dp_delta,
                dp.value("accountant", std::string("zCDP")).c_str(),
                dp.value("noise", std::string("?")).c_str());
  }

  std::printf("\nblocks (fused dim %lld)\n", static_cast<long long>(schema.total_dim()));
  std::printf("  %-12s %8s %6s %8s\n", "name", "offset", "dim", "weight");
  for (const BlockLayout& blk : schema.blocks) {
    std::printf("  %-12s %8zu %6zu %8.3f\n", blk.name.c_str(), blk.offset, blk.dim, blk.weight);
  }

  std::printf("\nfiles (%zu, %s)\n", b.files().size(), HumanBytes(b.total_bytes()).c_str());
  std::printf("  %-28s %12s  %-16s  %s\n", "name", "size", "xxh64", "checksum");
  for (const BundleFile& f : b.files()) {
    std::printf("  %-28s %12s  %s  OK\n", f.name.c_str(), HumanBytes(f.size).c_str(),
                Hex64(f.xxh64).c_str());
  }
  std::printf("  by kind:");
  for (const auto& [kind, bytes] : b.BytesByKind()) {
    std::printf(" %s %s;", kind.c_str(), HumanBytes(bytes).c_str());
  }
  std::printf("\n");

  std::printf("\nparams\n");
  if (m.contains("params") && !m["params"].empty()) {
    PrintFlat(m["params"], "");
  } else {
    std::printf("  (none)\n");
  }
  for (const auto& [k, v] : m.items()) {
    if (IsReserved(k)) continue;
    std::printf("\n%s\n", k.c_str());
    PrintFlat(v, "");
  }
}

json Summary(const Bundle& b) {
  const json& m = b.manifest();
  json out = {{"path", b.dir().string()},       {"ok", true},
              {"format", kBundleFormatName},    {"format_version", b.format_version()},
              {"total_bytes", b.total_bytes()}, {"bytes_by_kind", b.BytesByKind()},
              {"warnings", b.warnings()}};
  for (const char* k : {"created_at", "created_by", "updated_at", "counts", "blocks", "params"}) {
    if (m.contains(k)) out[k] = m[k];
  }
  json files = json::array();
  for (const BundleFile& f : b.files()) {
    files.push_back(
        {{"name", f.name}, {"size", f.size}, {"xxh64", Hex64(f.xxh64)}, {"checksum_ok", true}});
  }
  out["files"] = std::move(files);
  json sections = json::object();
  for (const auto& [k, v] : m.items()) {
    if (!IsReserved(k)) sections[k] = v;
  }
  out["sections"] = std::move(sections);
  return out;
}

int RunInspect(int argc, char** argv) {
  const std::string cmd = "inspect";
  cxxopts::Options opts("vitrine inspect",
                        "Verify every file of a bundle against its manifest (size and xxh64) and "
                        "print a summary.\nExits 1 with a one-line error naming the bad file if "
                        "any check fails.\n\nExample:\n  vitrine inspect --bundle demo/bundle\n"
                        "  vitrine inspect --bundle demo/bundle --format json | jq .counts\n");
  opts.add_options()("bundle", "Bundle directory", cxxopts::value<std::string>())(
      "format", "Output: table or json", cxxopts::value<std::string>()->default_value("table"))(
      "load", "Also load the bundle as queries do and report its resident memory");
  Parsed p = ParseOrExit(opts, argc, argv, cmd, {"bundle"});
  if (p.exit_code >= 0) return p.exit_code;
  const std::string format = p.result["format"].as<std::string>();
  if (format != "table" && format != "json") {
    return UsageError(cmd, "--format must be 'table' or 'json', got '" + format + "'");
  }
  Result<Bundle> b = Bundle::Open(p.result["bundle"].as<std::string>(), VerifyMode::kFull);
  if (!b.ok()) return Fail(cmd, b.status());
  for (const std::string& w : b->warnings())
    std::fprintf(stderr, "vitrine inspect: note: %s\n", w.c_str());
  // The manifest's sections against the arrays they describe.
  Result<BundleManifest> schema = BundleManifest::Read(*b);
  if (!schema.ok()) return Fail(cmd, schema.status());
  json summary = Summary(*b);
  if (p.result.count("load")) {
    // Resident memory of a loaded bundle against the size of what it must
    // hold: the vectors and the index as they are on disk.
    malloc_trim(0);  // what verifying the checksums freed is not the bundle's
    const int64_t before = ResidentBytes();
    auto engine = Engine::Open(b->dir(), VerifyMode::kSizesOnly);
    if (!engine.ok()) return Fail(cmd, engine.status());
    const int64_t loaded = ResidentBytes() - before;
    uint64_t vec_index = 0;
    for (const BundleFile& f : b->files()) {
      if (f.name == bundle_file::kVectors || f.name == bundle_file::kIndex) vec_index += f.size;
    }
    summary["memory"] = {{"resident_bytes", loaded},
                         {"vectors_and_index_bytes", vec_index},
                         {"ratio", vec_index ? double(loaded) / double(vec_index) : 0.0},
                         {"index_bytes_per_vector", (*engine)->index().BytesPerVector()}};
  }
  if (format == "json") {
    std::cout << summary.dump(2) << std::endl;
  } else {
    PrintTable(*b, *schema);
    if (summary.contains("memory")) {
      const json& mem = summary["memory"];
      std::printf(
          "\nloaded: %s resident for %s of vectors + index on disk (%.2fx); index %.0f "
          "bytes/vector\n",
          HumanBytes(
              static_cast<uint64_t>(std::max<int64_t>(mem["resident_bytes"].get<int64_t>(), 0)))
              .c_str(),
          HumanBytes(mem["vectors_and_index_bytes"].get<uint64_t>()).c_str(),
          mem["ratio"].get<double>(), mem["index_bytes_per_vector"].get<double>());
    }
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("inspect", "Verify a bundle's checksums and print its summary", RunInspect);

}  // namespace vitrine::cli
