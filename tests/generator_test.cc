// Tests for the sample-data generator (sample/generator.h) and `vitrine
// generate`. Oracles are independent of the generator: the Fashion-MNIST files
// read directly, images flipped/shifted here, statistics recomputed from the
// written CSV files.
#include "sample/generator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/array_io.h"
#include "core/file_util.h"
#include "core/interactions.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kItems = 2000;
constexpr int64_t kUsers = 1000;
constexpr int64_t kUnique = 1500;  // items >= 1500 reuse an image

fs::path TestDir(const std::string& name) {
  return fs::temp_directory_path() /
         ("vitrine_gen_test_" + std::to_string(::getpid()) + "_" + name);
}

GeneratorOptions SmallOptions(uint64_t seed) {
  GeneratorOptions o;
  o.num_items = kItems;
  o.num_users = kUsers;
  o.seed = seed;
  o.unique_images = kUnique;
  o.fashion_mnist_dir = VITRINE_FASHION_MNIST_DIR;
  return o;
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(field);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

std::vector<std::vector<std::string>> ReadCsv(const fs::path& p, std::string* header) {
  std::istringstream in(Slurp(p));
  std::string line;
  std::getline(in, line);
  *header = line;
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) rows.push_back(Split(line));
  return rows;
}

struct Event {
  int64_t user;
  int64_t item;
  std::string type;
  int64_t time;
};

// Generates data set A once per process (ctest runs each test in its own
// process, so only the determinism test pays for the extra runs B and C).
class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_a_ = TestDir("a");
    auto r = GenerateSampleData(SmallOptions(7), dir_a_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    report_ = *r;
    std::string header;
    items_ = ReadCsv(dir_a_ / "items.csv", &header);
    items_header_ = header;
    for (const auto& row : ReadCsv(dir_a_ / "interactions.csv", &header)) {
      ASSERT_EQ(row.size(), 4u);
      ASSERT_EQ(row[0].size(), 8u);
      ASSERT_EQ(row[0][0], 'U');
      ASSERT_EQ(row[1][0], 'I');
      events_.push_back(
          {std::stoll(row[0].substr(1)), std::stoll(row[1].substr(1)), row[2], std::stoll(row[3])});
    }
    events_header_ = header;
    truth_ = nlohmann::json::parse(Slurp(dir_a_ / "truth.json"));
  }
  static void TearDownTestSuite() { fs::remove_all(dir_a_); }

  static inline fs::path dir_a_;
  static inline GeneratorReport report_;
  static inline std::string items_header_, events_header_;
  static inline std::vector<std::vector<std::string>> items_;
  static inline std::vector<Event> events_;
  static inline nlohmann::json truth_;
};

TEST_F(GeneratorTest, SameSeedSameBytesOtherSeedOtherBytes) {
  const fs::path dir_b = TestDir("b"), dir_c = TestDir("c");
  ASSERT_TRUE(GenerateSampleData(SmallOptions(7), dir_b).ok());
  ASSERT_TRUE(GenerateSampleData(SmallOptions(8), dir_c).ok());
  for (const char* f : {"items.csv", "interactions.csv", "truth.json"}) {
    EXPECT_EQ(Slurp(dir_a_ / f), Slurp(dir_b / f)) << f;
  }
  EXPECT_EQ(*Xxh64File(dir_a_ / "images.idx.gz"), *Xxh64File(dir_b / "images.idx.gz"));
  EXPECT_NE(Slurp(dir_a_ / "items.csv"), Slurp(dir_c / "items.csv"));
  EXPECT_NE(Slurp(dir_a_ / "interactions.csv"), Slurp(dir_c / "interactions.csv"));
  // No staging files are left behind.
  for (const auto& e : fs::directory_iterator(dir_a_)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
  fs::remove_all(dir_b);
  fs::remove_all(dir_c);
}

TEST_F(GeneratorTest, ItemsTableIsWellFormed) {
  EXPECT_EQ(items_header_,
            "item_id,title,brand,tier,category,color,material,season,price,in_stock,sustainable");
  ASSERT_EQ(static_cast<int64_t>(items_.size()), kItems);
  const std::set<std::string> tiers = {"luxury", "premium", "high_street"};
  std::set<std::string> categories, brands;
  std::map<std::string, std::string> brand_tier;
  std::map<std::string, std::vector<double>> tier_prices;
  int in_stock = 0;
  for (size_t i = 0; i < items_.size(); ++i) {
    const auto& r = items_[i];
    ASSERT_EQ(r.size(), 11u) << "row " << i;
    char id[16];
    std::snprintf(id, sizeof(id), "I%06zu", i);
    EXPECT_EQ(r[0], id);
    EXPECT_EQ(r[1].rfind(r[2] + " " + r[5] + " " + r[6] + " ", 0), 0u) << r[1];
    EXPECT_TRUE(tiers.count(r[3])) << r[3];
    auto [it, inserted] = brand_tier.emplace(r[2], r[3]);
    EXPECT_EQ(it->second, r[3]) << "brand " << r[2] << " in two tiers";
    categories.insert(r[4]);
    brands.insert(r[2]);
    const auto dot = r[8].find('.');
    ASSERT_NE(dot, std::string::npos) << r[8];
    EXPECT_EQ(r[8].size() - dot, 3u) << "two decimals: " << r[8];
    const double price = std::stod(r[8]);
    EXPECT_GT(price, 0);
    tier_prices[r[3]].push_back(price);
    EXPECT_TRUE(r[9] == "true" || r[9] == "false");
    EXPECT_TRUE(r[10] == "true" || r[10] == "false");
    in_stock += r[9] == "true";
  }
  EXPECT_EQ(categories.size(), kFashionCategories.size());
  for (const char* c : kFashionCategories) EXPECT_TRUE(categories.count(c)) << c;
  EXPECT_GE(brands.size(), 35u);
  EXPECT_NEAR(in_stock / static_cast<double>(kItems), 0.9, 0.03);
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  EXPECT_GT(median(tier_prices["luxury"]), 2 * median(tier_prices["premium"]));
  EXPECT_GT(median(tier_prices["premium"]), 2 * median(tier_prices["high_street"]));
}

// Category and pixels come from the Fashion-MNIST image named in truth.json.
TEST_F(GeneratorTest, ImagesAreFashionMnistImages) {
  std::vector<uint8_t> pixels, labels;
  const fs::path ds = VITRINE_FASHION_MNIST_DIR;
  for (const char* split : {"train", "t10k"}) {
    auto img = ReadIdx(ds / (std::string(split) + "-images-idx3-ubyte.gz"));
    auto lab = ReadIdx(ds / (std::string(split) + "-labels-idx1-ubyte.gz"));
    ASSERT_TRUE(img.ok() && lab.ok());
    pixels.insert(pixels.end(), img->data.data.begin(), img->data.data.end());
    labels.insert(labels.end(), lab->data.data.begin(), lab->data.data.end());
  }
  ASSERT_EQ(labels.size(), 70000u);
  auto out = ReadIdx(dir_a_ / "images.idx.gz");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->dims, (std::vector<uint32_t>{kItems, 28, 28}));
  const auto& src = truth_["items"]["source_image"];
  const auto& flip = truth_["items"]["flip"];
  const auto& sx = truth_["items"]["shift_x"];
  const auto& sy = truth_["items"]["shift_y"];
  const auto& style = truth_["items"]["visual_style"];
  ASSERT_EQ(src.size(), static_cast<size_t>(kItems));
  std::set<int> first_sources;
  std::map<int, int> style_of_source;
  for (int64_t i = 0; i < kItems; ++i) {
    const int s = src[i].get<int>();
    ASSERT_GE(s, 0);
    ASSERT_LT(s, 70000);
    EXPECT_EQ(items_[i][4], kFashionCategories[labels[s]]) << "item " << i;
    EXPECT_EQ(style[i].get<int>() / 4, static_cast<int>(labels[s]));
    auto [it, fresh] = style_of_source.emplace(s, style[i].get<int>());
    EXPECT_EQ(it->second, style[i].get<int>()) << "style must depend only on the image";
    const uint8_t* orig = &pixels[static_cast<size_t>(s) * 784];
    const uint8_t* got = out->data.row(i);
    if (i < kUnique) {
      EXPECT_TRUE(first_sources.insert(s).second) << "image reused before " << kUnique;
      EXPECT_EQ(flip[i].get<int>() + std::abs(sx[i].get<int>()) + std::abs(sy[i].get<int>()), 0);
      EXPECT_TRUE(std::equal(orig, orig + 784, got)) << "item " << i;
      continue;
    }
    EXPECT_TRUE(first_sources.count(s)) << "reused image not in the catalog";
    const int dx = sx[i].get<int>(), dy = sy[i].get<int>();
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        uint8_t want;
        if (flip[i].get<int>()) {
          EXPECT_EQ(dx + dy, 0);
          want = orig[y * 28 + 27 - x];
        } else {
          const int ox = x - dx, oy = y - dy;
          EXPECT_TRUE(std::max(std::abs(dx), std::abs(dy)) >= 1 &&
                      std::max(std::abs(dx), std::abs(dy)) <= 2);
          want = (ox < 0 || ox >= 28 || oy < 0 || oy >= 28) ? 0 : orig[oy * 28 + ox];
        }
        ASSERT_EQ(got[y * 28 + x], want) << "item " << i << " pixel " << x << "," << y;
      }
    }
  }
}

TEST_F(GeneratorTest, InteractionsAreConsistent) {
  EXPECT_EQ(events_header_, "user_id,item_id,event,timestamp");
  ASSERT_FALSE(events_.empty());
  EXPECT_EQ(report_.events, static_cast<int64_t>(events_.size()));
  const int64_t start = 1751328000, end = start + 180 * 86400;
  std::map<std::string, int64_t> funnel;
  std::vector<int64_t> per_user(kUsers, 0);
  std::set<std::pair<int64_t, int64_t>> viewed;  // (user, item)
  int64_t prev_user = -1, prev_time = 0;
  for (const Event& e : events_) {
    ASSERT_GE(e.item, 0);
    ASSERT_LT(e.item, kItems) << "unknown item";
    ASSERT_GE(e.user, 0);
    ASSERT_LT(e.user, kUsers);
    EXPECT_GE(e.time, start);
    EXPECT_LT(e.time, end);
    ASSERT_GE(e.user, prev_user) << "rows grouped by user";
    if (e.user == prev_user) {
      EXPECT_GE(e.time, prev_time) << "time-ordered per user";
    }
    prev_user = e.user;
    prev_time = e.time;
    ++per_user[e.user];
    ++funnel[e.type];
    if (e.type == "view") viewed.insert({e.user, e.item});
    if (e.type != "view") {
      EXPECT_TRUE(viewed.count({e.user, e.item})) << e.type << " before view";
    }
  }
  EXPECT_EQ(funnel.size(), 4u);
  EXPECT_GT(funnel["view"], 2 * funnel["cart"]);
  EXPECT_GT(funnel["cart"], funnel["purchase"]);
  EXPECT_GT(funnel["purchase"], funnel["return"]);
  EXPECT_GT(funnel["return"], 0);
  // Sparse users: median under 10, but a heavy tail.
  std::vector<int64_t> sorted = per_user;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_GE(sorted.front(), 1);
  EXPECT_LT(sorted[kUsers / 2], 10);
  EXPECT_GT(sorted.back(), 5 * sorted[kUsers / 2]);
  EXPECT_DOUBLE_EQ(report_.median_events_per_user,
                   0.5 * (sorted[kUsers / 2 - 1] + sorted[kUsers / 2]));
  const auto& truth_events = truth_["users"]["events"];
  for (int64_t u = 0; u < kUsers; ++u) EXPECT_EQ(truth_events[u].get<int64_t>(), per_user[u]);
}

TEST_F(GeneratorTest, PopularityIsSkewed) {
  std::vector<int64_t> count(kItems, 0);
  for (const Event& e : events_) ++count[e.item];
  std::vector<int64_t> sorted = count;
  std::sort(sorted.rbegin(), sorted.rend());
  const int64_t total = static_cast<int64_t>(events_.size());
  int64_t top = 0;
  for (int64_t i = 0; i < kItems / 100; ++i) top += sorted[i];
  EXPECT_GT(static_cast<double>(top) / total, 0.10) << "top 1% of items";
  // Gini coefficient of event counts over items (ascending order formula).
  std::sort(sorted.begin(), sorted.end());
  double weighted = 0;
  for (int64_t i = 0; i < kItems; ++i) weighted += (i + 1.0) * sorted[i];
  const double gini =
      2 * weighted / (kItems * static_cast<double>(total)) - (kItems + 1.0) / kItems;
  EXPECT_GT(gini, 0.65);  // ~0.82 with Zipf 1, ~0.52 with uniform popularity
  // The hidden popularity drives it: the 1% most popular items by truth get
  // many times their fair share.
  const auto& pop = truth_["items"]["popularity"];
  std::vector<std::pair<double, int64_t>> by_pop;
  for (int64_t i = 0; i < kItems; ++i) by_pop.push_back({pop[i].get<double>(), i});
  std::sort(by_pop.rbegin(), by_pop.rend());
  int64_t top_truth = 0;
  for (int64_t i = 0; i < kItems / 100; ++i) top_truth += count[by_pop[i].second];
  EXPECT_GT(static_cast<double>(top_truth) / total, 5 * 0.01);
}

// Users of a taste cluster interact with items of that cluster far more than
// the catalog-wide share of those items' events would predict.
TEST_F(GeneratorTest, TasteStructureIsReal) {
  const auto& item_cluster = truth_["items"]["taste_cluster"];
  const auto& user_cluster = truth_["users"]["cluster"];
  const int k = static_cast<int>(truth_["clusters"].size());
  ASSERT_EQ(k, 14);
  std::vector<double> share(k, 0), in_cluster(k, 0), user_total(k, 0);
  for (const Event& e : events_) {
    const int ic = item_cluster[e.item].get<int>();
    const int uc = user_cluster[e.user].get<int>();
    share[ic] += 1;
    user_total[uc] += 1;
    if (ic == uc) in_cluster[uc] += 1;
  }
  int checked = 0;
  double lift_sum = 0;
  for (int c = 0; c < k; ++c) {
    if (user_total[c] < 200) continue;
    const double chance = share[c] / static_cast<double>(events_.size());
    const double observed = in_cluster[c] / user_total[c];
    EXPECT_GT(observed, 1.5 * chance) << "cluster " << c;
    lift_sum += observed / std::max(chance, 1e-9);
    ++checked;
  }
  EXPECT_GE(checked, 8);
  EXPECT_GT(lift_sum / checked, 3.0);
}

TEST_F(GeneratorTest, TruthArraysMatchCounts) {
  EXPECT_EQ(truth_["format"], "vitrine-generator-truth");
  EXPECT_EQ(truth_["seed"].get<uint64_t>(), 7u);
  for (const char* key : {"taste_cluster", "visual_style", "popularity", "source_image", "flip",
                          "shift_x", "shift_y", "price_band"}) {
    EXPECT_EQ(truth_["items"][key].size(), static_cast<size_t>(kItems)) << key;
  }
  for (const char* key : {"cluster", "secondary_cluster", "events"}) {
    EXPECT_EQ(truth_["users"][key].size(), static_cast<size_t>(kUsers)) << key;
  }
}

// --omnichannel adds a channel column: purchases (and their returns) in
// store and carts as wishlist adds at about the given share, every other
// event online, and the events themselves the same as without it. The
// interactions reader multiplies each row's event weight by its channel's
// (oracle: a recount of the raw rows).
TEST(GeneratorOmnichannel, AddsAChannelColumnAndKeepsTheEvents) {
  const fs::path plain = TestDir("plain"), multi = TestDir("omni");
  GeneratorOptions o = SmallOptions(11);
  o.num_items = 400;
  o.num_users = 600;
  ASSERT_TRUE(GenerateSampleData(o, plain).ok());
  o.omnichannel = 0.5;
  ASSERT_TRUE(GenerateSampleData(o, multi).ok());
  std::string header_plain, header;
  const auto rows_plain = ReadCsv(plain / "interactions.csv", &header_plain);
  const auto rows = ReadCsv(multi / "interactions.csv", &header);
  EXPECT_EQ(header_plain, "user_id,item_id,event,timestamp");
  EXPECT_EQ(header, "user_id,item_id,event,timestamp,channel");
  ASSERT_EQ(rows.size(), rows_plain.size());
  std::map<std::string, std::map<std::string, int>> by_event;  // event -> channel -> rows
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 5u);
    EXPECT_EQ(std::vector<std::string>(rows[i].begin(), rows[i].begin() + 4), rows_plain[i]) << i;
    ++by_event[rows[i][2]][rows[i][4]];
  }
  for (const auto& [event, channels] : by_event) {
    for (const auto& [channel, n] : channels) {
      const bool allowed = channel == "online" || (channel == "store" && (event == "purchase" ||
                                                                           event == "return")) ||
                           (channel == "wishlist" && event == "cart");
      EXPECT_TRUE(allowed) << event << " in " << channel << " x" << n;
    }
  }
  auto share = [&](const std::string& event, const std::string& channel) {
    int total = 0;
    for (const auto& [c, n] : by_event[event]) total += n;
    return static_cast<double>(by_event[event][channel]) / total;
  };
  ASSERT_GT(by_event["purchase"]["store"] + by_event["purchase"]["online"], 200);
  EXPECT_NEAR(share("purchase", "store"), 0.5, 0.1);
  EXPECT_NEAR(share("cart", "wishlist"), 0.5, 0.1);

  IdMap items;
  for (int64_t i = 0; i < o.num_items; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "I%06lld", static_cast<long long>(i));
    items.Add(id);
  }
  InteractionsReadOptions ro;
  ro.channels = *EventWeights::Parse("online=1,store=2,wishlist=0.25");
  auto in = Interactions::ReadCsv(multi / "interactions.csv", items, ro);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  const std::map<std::string, double> event_w = {
      {"view", 1}, {"cart", 4}, {"purchase", 10}, {"return", -4}};
  const std::map<std::string, double> channel_w = {{"online", 1}, {"store", 2}, {"wishlist", 0.25}};
  std::map<std::pair<std::string, std::string>, double> want;
  for (const auto& r : rows) want[{r[0], r[1]}] += event_w.at(r[2]) * channel_w.at(r[4]);
  int64_t checked = 0;
  for (const auto& [key, w] : want) {
    const auto user = in->users.Find(key.first);
    const int32_t item = *items.Find(key.second);
    float got = 0;
    if (user) {
      for (int64_t k = in->matrix.indptr[*user]; k < in->matrix.indptr[*user + 1]; ++k) {
        if (in->matrix.indices[k] == item) got = in->matrix.values[k];
      }
    }
    EXPECT_NEAR(got, w > 0 ? w : 0.0, 1e-4) << key.first << " " << key.second;
    ++checked;
  }
  EXPECT_GT(checked, 1000);
  fs::remove_all(plain);
  fs::remove_all(multi);
}

TEST(GeneratorOptionsTest, RejectsBadOptionsAndMissingDataset) {
  GeneratorOptions o = SmallOptions(1);
  o.num_items = 0;
  auto r = GenerateSampleData(o, TestDir("bad"));
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  o = SmallOptions(1);
  o.fashion_mnist_dir = TestDir("no_such_dataset");
  r = GenerateSampleData(o, TestDir("bad"));
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_NE(r.status().message().find("no_such_dataset"), std::string::npos);
  EXPECT_NE(r.status().message().find("dataset-fashion-mnist"), std::string::npos);
  EXPECT_FALSE(fs::exists(TestDir("bad")));
}

// Runs `vitrine generate <args>` with optional VAR=value `env` prefix.
int RunCli(const std::string& args, std::string* err, const std::string& env = "") {
  const fs::path err_file = TestDir("cli_err.txt");
  const std::string cmd = env + " " + std::string(VITRINE_BINARY) + " generate " + args +
                          " >/dev/null 2>" + err_file.string();
  const int rc = std::system(cmd.c_str());
  *err = Slurp(err_file);
  fs::remove(err_file);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(GenerateCliTest, ExitCodes) {
  std::string err;
  const std::string out = TestDir("cli_out").string();
  EXPECT_EQ(RunCli("--help", &err), 0);
  EXPECT_EQ(RunCli("--items 10 --users 5", &err), 2);
  EXPECT_NE(err.find("--out"), std::string::npos) << err;
  EXPECT_EQ(RunCli("--items abc --users 5 --out " + out, &err), 2);
  EXPECT_EQ(RunCli("--items 0 --users 5 --out " + out, &err), 2);
  EXPECT_EQ(RunCli("--items 10 --users 5 --events-per-user-median -1 --out " + out, &err), 2);
  EXPECT_EQ(RunCli("--items 10 --users 5 --fashion-mnist /nonexistent/fm --out " + out, &err), 1);
  EXPECT_NE(err.find("/nonexistent/fm"), std::string::npos) << err;
  EXPECT_NE(err.find("dataset-fashion-mnist"), std::string::npos) << err;
  EXPECT_NE(err.find("--fashion-mnist"), std::string::npos) << err;
  // The environment variable overrides the default dataset directory.
  EXPECT_EQ(
      RunCli("--items 10 --users 5 --out " + out, &err, "VITRINE_FASHION_MNIST=/nonexistent/env"),
      1);
  EXPECT_NE(err.find("/nonexistent/env"), std::string::npos) << err;
  EXPECT_EQ(RunCli("--items 30 --users 20 --seed 3 --quiet --out " + out, &err), 0) << err;
  EXPECT_TRUE(fs::exists(fs::path(out) / "items.csv"));
  EXPECT_TRUE(fs::exists(fs::path(out) / "interactions.csv"));
  EXPECT_TRUE(fs::exists(fs::path(out) / "images.idx.gz"));
  EXPECT_TRUE(fs::exists(fs::path(out) / "truth.json"));
  fs::remove_all(out);
}

}  // namespace
}  // namespace vitrine
