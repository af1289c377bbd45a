// Fuzzes the bundle loader with mutated manifests: Bundle::Open
// (core/bundle.h), BundleManifest::Read (engine/bundle_schema.h),
// ItemEncoder::Load (engine/item_encoder.h) and Engine::Open (engine/engine.h), then one Similar
// and one Recommend on an engine that opened.
//
// Setup (once per process): the tiny bundle (fuzz_util.h TinyBundle: 60 items,
// cf + content + visual + pop + new blocks, Flat index) is built in a scratch
// directory. Per input, its manifest.json is replaced and the bundle opened.
//
// Input: a manifest as JSON. The "files" section (sizes and checksums, which
// depend on the bytes the build wrote) is spliced in from the real manifest
// when the input has none, so seeds stay valid when the build's output bytes
// change; an input with its own "files" exercises that section too. Bytes that
// are not JSON are written as they are (the parse-error path).
//
// Mutation is structure-aware (LLVMFuzzerCustomMutator): a JSON input is
// parsed and one node changed (a boundary number, another type, deleted,
// duplicated, swapped with another node, or its string mutated by libFuzzer),
// then serialised again, so nearly every input is valid JSON that reaches the
// schema checks and the engine. Non-JSON inputs get libFuzzer's byte
// mutations. Set VITRINE_FUZZ_EMIT_SEED=path to write the real manifest
// (without "files") to `path` at start-up: scripts/fuzz.sh adds it to the
// corpus, so the seed matches the build even after its layout changes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/bundle.h"
#include "engine/bundle_schema.h"
#include "engine/engine.h"
#include "engine/item_encoder.h"
#include "fuzz/fuzz_util.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace vitrine;

json* g_files = nullptr;  // the real manifest's "files"

const fs::path& BundleDir() { return vitrine::fuzz::TinyBundle("manifest"); }

// Every node of `j` (pre-order), with its parent (null for the root).
void Collect(json& j, json* parent, std::vector<std::pair<json*, json*>>* out) {
  out->push_back({&j, parent});
  if (j.is_object() || j.is_array()) {
    for (auto& child : j) Collect(child, &j, out);
  }
}

json Boundary(std::mt19937_64& rng) {
  static const json kValues[] = {
      0,
      -1,
      1,
      2,
      3,
      7,
      8,
      59,
      60,
      61,
      65536,
      65537,
      std::numeric_limits<int32_t>::max(),
      static_cast<int64_t>(std::numeric_limits<int32_t>::max()) + 1,
      std::numeric_limits<int32_t>::min(),
      std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::min(),
      std::numeric_limits<uint64_t>::max(),
      0.5,
      -0.0,
      1e-300,
      1e300,
      -1e300,
      1001.0,
      nullptr,
      true,
      false,
      "",
      "x",
      "cf",
      "content",
      "visual",
      "pop",
      "new",
      "Flat",
      "HNSW32",
      "IVF4,Flat",
      "inner_product",
      "l2",
      "../../etc/passwd",
      "vectors.npy",
      "item_id",
      "price:numeric",
      json::object(),
      json::array(),
  };
  return kValues[rng() % (sizeof(kValues) / sizeof(kValues[0]))];
}

// One structural mutation of `root`; false if none applied.
bool MutateJson(json& root, std::mt19937_64& rng, size_t max_size) {
  std::vector<std::pair<json*, json*>> nodes;
  Collect(root, nullptr, &nodes);
  auto& [node, parent] = nodes[rng() % nodes.size()];
  switch (rng() % 7) {
    case 0:  // a boundary value or another type
      *node = Boundary(rng);
      return true;
    case 1: {  // nudge a number
      if (node->is_number_integer()) {
        const int64_t v = node->get<int64_t>();
        const int64_t deltas[] = {1, -1, 2, -2, 16};
        // Wraps instead of overflowing (signed overflow is UB; UBSan aborts).
        *node = static_cast<int64_t>(static_cast<uint64_t>(v) +
                                     static_cast<uint64_t>(deltas[rng() % 5]));
      } else if (node->is_number_float()) {
        const double v = node->get<double>();
        const double f[] = {2.0, 0.5, -1.0, 1.0 + 1e-7};
        *node = v * f[rng() % 4];
      } else {
        *node = Boundary(rng);
      }
      return true;
    }
    case 2: {  // delete from the parent
      if (parent == nullptr) return false;
      if (parent->is_object()) {
        for (auto it = parent->begin(); it != parent->end(); ++it) {
          if (&*it == node) {
            parent->erase(it.key());
            return true;
          }
        }
      } else if (parent->is_array()) {
        for (size_t i = 0; i < parent->size(); ++i) {
          if (&(*parent)[i] == node) {
            parent->erase(i);
            return true;
          }
        }
      }
      return false;
    }
    case 3: {  // duplicate into an array / add a key to an object
      if (node->is_array() && !node->empty()) {
        node->push_back((*node)[rng() % node->size()]);
        return true;
      }
      if (node->is_object()) {
        static const char* kKeys[] = {
            "files",   "blocks",  "counts",    "index",  "catalog",    "als",
            "recency", "weights", "dim",       "offset", "weight",     "name",
            "items",   "users",   "ef_search", "nprobe", "cold_start", "similar_weights"};
        (*node)[kKeys[rng() % (sizeof(kKeys) / sizeof(kKeys[0]))]] = Boundary(rng);
        return true;
      }
      return false;
    }
    case 4: {  // copy another node over this one (moves a section elsewhere)
      const json copy = *nodes[rng() % nodes.size()].first;
      *node = copy;
      return true;
    }
    case 5: {  // mutate a string's bytes
      if (!node->is_string()) return false;
      std::string s = node->get<std::string>();
      const size_t cap = std::min<size_t>(std::max<size_t>(2 * s.size(), 16), max_size);
      s.resize(cap);
      const size_t n = LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(s.data()),
                                        node->get_ref<const std::string&>().size(), cap);
      s.resize(n);
      *node = s;
      return true;
    }
    default: {  // wrap or unwrap: a value in an array, or an array's first element
      if (node->is_array() && !node->empty()) {
        const json first = (*node)[0];
        *node = first;
      } else {
        *node = json::array({*node});
      }
      return true;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  const fs::path& dir = BundleDir();
  json m = json::parse(vitrine::fuzz::ReadFileOrDie(dir / kBundleManifestName));
  g_files = new json(m["files"]);
  if (const char* seed = std::getenv("VITRINE_FUZZ_EMIT_SEED"); seed != nullptr) {
    m.erase("files");
    vitrine::fuzz::WriteFileOrDie(seed, m.dump(1) + "\n");
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return LLVMFuzzerMutate(data, size, max_size);
  std::mt19937_64 rng(seed);
  // Now and then a byte-level mutation, so malformed JSON is still explored.
  if (rng() % 16 == 0) return LLVMFuzzerMutate(data, size, max_size);
  for (int tries = 0; tries < 4; ++tries) {
    if (!MutateJson(j, rng, max_size)) continue;
    const std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
    if (out.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
    std::copy(out.begin(), out.end(), data);
    return out.size();
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& dir = BundleDir();
  json j = json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    vitrine::fuzz::WriteFileOrDie(dir / kBundleManifestName,
                                  std::string_view(reinterpret_cast<const char*>(data), size));
  } else {
    if (j.is_object() && !j.contains("files")) j["files"] = *g_files;
    vitrine::fuzz::WriteFileOrDie(dir / kBundleManifestName, j.dump());
  }

  auto bundle = Bundle::Open(dir, VerifyMode::kSizesOnly);
  if (bundle.ok()) {
    (void)bundle->format_version();
    (void)bundle->BytesByKind();
    auto manifest = BundleManifest::Read(*bundle);
    if (manifest.ok()) (void)ItemEncoder::Load(*bundle, *manifest);  // what `items add` loads
  }
  auto engine = Engine::Open(dir, VerifyMode::kSizesOnly);
  if (!engine.ok()) return 0;
  const Engine& e = **engine;
  QueryParams q;
  q.k = 5;
  auto similar = e.Similar("I000", q);
  (void)similar;
  RecommendRequest r;
  r.user = "U000";
  r.history = {"I001", "I002"};
  r.query.k = 5;
  auto rec = e.Recommend(r);
  (void)rec;
  return 0;
}
