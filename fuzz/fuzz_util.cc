#include "fuzz/fuzz_util.h"

#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "core/array_io.h"
#include "engine/builder.h"

namespace vitrine::fuzz {
namespace fs = std::filesystem;

namespace {

fs::path* g_scratch = nullptr;

void RemoveScratch() {
  std::error_code ec;
  if (g_scratch != nullptr) fs::remove_all(*g_scratch, ec);
}

// A small deterministic generator: the tiny catalog must be the same in every
// run, so that a crash input replays against the same data.
struct Lcg {
  uint64_t s;
  uint32_t Next() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(s >> 33);
  }
  uint32_t Below(uint32_t n) { return Next() % n; }
};

constexpr int kItems = 60;
constexpr int kUsers = 40;

}  // namespace

const fs::path& ScratchDir(std::string_view name) {
  if (g_scratch == nullptr) {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    g_scratch = new fs::path(base / ("vitrine-fuzz-" + std::string(name) + "-" +
                                     std::to_string(static_cast<long>(::getpid()))));
    std::error_code ec;
    fs::remove_all(*g_scratch, ec);
    if (!fs::create_directories(*g_scratch, ec)) {
      Fail("cannot create " + g_scratch->string() + ": " + ec.message());
    }
    std::atexit(RemoveScratch);
  }
  return *g_scratch;
}

void WriteFileOrDie(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) Fail("cannot write " + path.string());
}

std::string ReadFileOrDie(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "vitrine fuzz: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string TinyItemsCsv() {
  static const char* kBrands[] = {"Atelier Seren", "Castellane", "Loop", "Pulse", "Nordhavn"};
  static const char* kCategories[] = {"coat", "shirt", "bag", "trousers"};
  static const char* kSeasons[] = {"SS24", "AW24", ""};
  static const char* kTags[] = {"new", "sale", "organic", "limited", "bestseller"};
  static const char* kColours[] = {"ivory", "navy", "camel", "black", "olive", "burgundy"};
  Lcg rng{7};
  std::string out = "item_id,title,brand,category,price,rating,in_stock,tags,season,arrival\n";
  for (int i = 0; i < kItems; ++i) {
    const char* brand = kBrands[rng.Below(5)];
    const char* category = kCategories[rng.Below(4)];
    const char* colour = kColours[rng.Below(6)];
    char id[16];
    std::snprintf(id, sizeof id, "I%03d", i);
    std::string tags = kTags[rng.Below(5)];
    if (rng.Below(2) == 0) tags += std::string(";") + kTags[rng.Below(5)];
    if (rng.Below(7) == 0) tags.clear();
    char price[32];
    std::snprintf(price, sizeof price, "%.2f", 20.0 + rng.Below(200000) / 100.0);
    const std::string rating = rng.Below(6) == 0 ? "" : std::to_string(1 + rng.Below(5));
    const char* stock = rng.Below(3) == 0 ? "false" : "true";
    char arrival[16];
    std::snprintf(arrival, sizeof arrival, "2024-%02u-%02u", 1 + rng.Below(12), 1 + rng.Below(28));
    out += std::string(id) + ",\"" + brand + " " + colour + " " + category + "\"," + brand + "," +
           category + "," + price + "," + rating + "," + stock + "," + tags + "," +
           kSeasons[rng.Below(3)] + "," + arrival + "\n";
  }
  return out;
}

std::string TinyInteractionsCsv() {
  static const char* kEvents[] = {"view", "view", "view", "cart", "purchase", "return"};
  Lcg rng{11};
  std::string out = "user_id,item_id,event,timestamp\n";
  for (int u = 0; u < kUsers; ++u) {
    const int n = 3 + static_cast<int>(rng.Below(8));
    // Each user leans to one block of items, so ALS has structure to find.
    const uint32_t base = rng.Below(kItems);
    for (int e = 0; e < n; ++e) {
      const uint32_t item = (base + rng.Below(12)) % kItems;
      char line[96];
      const uint32_t ts = 1700000000u + rng.Below(5000000);
      std::snprintf(line, sizeof line, "U%03d,I%03u,%s,%u\n", u, item, kEvents[rng.Below(6)], ts);
      out += line;
    }
  }
  return out;
}

const Catalog& TinyCatalog() {
  static const Catalog* catalog = [] {
    const fs::path p = ScratchDir("catalog") / "tiny_items.csv";
    WriteFileOrDie(p, TinyItemsCsv());
    auto c = Catalog::ReadCsv(p);
    if (!c.ok()) Fail("tiny catalog: " + c.status().ToString());
    return new Catalog(std::move(*c));
  }();
  return *catalog;
}

const fs::path& TinyBundle(std::string_view name) {
  static const fs::path* bundle = nullptr;
  if (bundle != nullptr) return *bundle;
  const fs::path dir = ScratchDir(name) / "tiny";
  fs::create_directories(dir);
  WriteFileOrDie(dir / "items.csv", TinyItemsCsv());
  WriteFileOrDie(dir / "interactions.csv", TinyInteractionsCsv());
  // 28 x 28 gray images: a gradient whose direction depends on the category
  // plus noise, so the visual block is not degenerate.
  IdxArray images;
  images.dims = {kItems, 28, 28};
  images.data = MatrixU8(kItems, 28 * 28);
  Lcg rng{13};
  for (int i = 0; i < kItems; ++i) {
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        const int v = (i % 4 < 2 ? x : y) * 8 + static_cast<int>(rng.Below(32));
        images.data.row(i)[y * 28 + x] = static_cast<uint8_t>(std::min(v, 255));
      }
    }
  }
  if (Status st = WriteIdx(dir / "images.idx", images, /*gzip=*/false); !st.ok()) {
    Fail("tiny images: " + st.ToString());
  }

  BuildOptions o;
  o.items = dir / "items.csv";
  o.interactions = dir / "interactions.csv";
  o.images = dir / "images.idx";
  o.als.factors = 8;
  o.als.iterations = 3;
  o.als.num_threads = 1;
  o.als.seed = 7;
  o.content.dim = 8;
  o.visual_encoder.dim = 8;
  o.index.spec = "Flat";
  o.recency.column = "arrival";
  o.block_weights["new"] = 0.1f;
  o.params = {{"fuzz", "tiny bundle"}};
  omp_set_num_threads(1);
  const fs::path out = ScratchDir(name) / "bundle";
  auto summary = BuildBundle(o, out);
  if (!summary.ok()) Fail("tiny bundle: " + summary.status().ToString());
  bundle = new fs::path(out);
  return *bundle;
}

}  // namespace vitrine::fuzz
