// End-to-end CLI tests: the real `vitrine` binary on a tiny generated catalog
// (generate, split, build, inspect, similar, recommend, evaluate) and on a
// movie-style catalog with other columns, plus exit codes for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/csv.h"
#include "core/file_util.h"
#include "core/version.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

struct CmdResult {
  int code = -1;
  std::string out, err;
};

CmdResult Vitrine(const std::string& args) {
  static int counter = 0;
  const fs::path dir =
      fs::path(testing::TempDir()) / ("vitrine_cli_e2e_io_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string o = (dir / ("out" + std::to_string(counter))).string();
  const std::string e = (dir / ("err" + std::to_string(counter++))).string();
  const std::string cmd = std::string(VITRINE_BINARY) + " " + args + " >" + o + " 2>" + e;
  const int st = std::system(cmd.c_str());
  CmdResult r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = ReadFile(o).value();
  r.err = ReadFile(e).value();
  return r;
}

std::vector<std::vector<std::string>> ReadCsvRows(const std::string& text) {
  auto csv = CsvReader::FromString("out.csv", text);
  EXPECT_TRUE(csv.ok()) << csv.status().ToString();
  std::vector<std::vector<std::string>> rows;
  rows.push_back((*csv)->header());
  while ((*csv)->Next()) rows.emplace_back((*csv)->row().begin(), (*csv)->row().end());
  EXPECT_TRUE((*csv)->status().ok()) << (*csv)->status().ToString();
  return rows;
}

// The version comes from project(vitrine VERSION ...) through core/version.h.
TEST(CliVersion, PrintsTheProjectVersion) {
  CmdResult r = Vitrine("--version");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, std::string("vitrine ") + kVersion + "\n");
}

// One tiny catalog and bundle shared by the tests of this file.
class CliE2E : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Per process: ctest runs every test of this suite in its own process,
    // possibly two at a time.
    dir_ = fs::path(testing::TempDir()) / ("vitrine_cli_e2e_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    const std::string d = dir_.string();
    CmdResult g = Vitrine("generate --items 400 --users 600 --seed 3 --out " + d + "/data -q");
    ASSERT_EQ(g.code, 0) << g.err;
    CmdResult s = Vitrine("split --interactions " + d + "/data/interactions.csv --train " + d +
                          "/split/train.csv --test " + d + "/split/test.csv");
    ASSERT_EQ(s.code, 0) << s.err;
    CmdResult b = Vitrine("build -q --ranker off --items " + d + "/data/items.csv --interactions " + d +
                          "/split/train.csv --images " + d +
                          "/data/images.idx.gz --index Flat --out " + d + "/bundle");
    ASSERT_EQ(b.code, 0) << b.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string D() { return dir_.string(); }
  static std::string B() { return "--bundle " + dir_.string() + "/bundle"; }
  static fs::path dir_;
};
fs::path CliE2E::dir_;

TEST_F(CliE2E, InspectVerifiesAndSummarises) {
  CmdResult r = Vitrine("inspect " + B());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("vitrine-bundle version 1"), std::string::npos);
  EXPECT_NE(r.out.find("index.faiss"), std::string::npos);
}

TEST_F(CliE2E, SimilarNeverListsTheQueryAndHonoursRules) {
  CmdResult r = Vitrine("similar " + B() + " --item I000005 -k 15 --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = ReadCsvRows(r.out);
  ASSERT_EQ(rows.size(), 16u);
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_NE(rows[i][1], "I000005");

  // A brand that appears in the unfiltered list is excluded; caps hold.
  const std::string brand = rows[1][3];
  CmdResult f =
      Vitrine("similar " + B() + " --item I000005 -k 10 --format csv --rule 'EXCLUDE WHERE " +
              "brand = \"" + brand + "\"' --rule 'CAP 2 PER category'");
  ASSERT_EQ(f.code, 0) << f.err;
  auto frows = ReadCsvRows(f.out);
  std::map<std::string, int> per_category;
  for (size_t i = 1; i < frows.size(); ++i) {
    EXPECT_NE(frows[i][3], brand);
    EXPECT_LE(++per_category[frows[i][4]], 2) << frows[i][4];
  }
  EXPECT_EQ(frows.size(), 11u) << "k results whenever k items are allowed";
}

TEST_F(CliE2E, SimilarBatchCsvLayout) {
  std::ofstream(D() + "/queries.txt") << "I000001\nI000002\r\nI000003\n";
  CmdResult r =
      Vitrine("similar " + B() + " --items-file " + D() + "/queries.txt -k 4 --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = ReadCsvRows(r.out);
  ASSERT_EQ(rows[0], (std::vector<std::string>{"query_id", "item_id", "rank", "score"}));
  ASSERT_EQ(rows.size(), 13u);
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_NE(rows[i][0], rows[i][1]);
}

TEST_F(CliE2E, RecommendUserHistoryAndAllUsers) {
  const std::string train = ReadFile(D() + "/split/train.csv").value();
  auto rows = ReadCsvRows(train);
  const std::string user = rows[1][0];
  std::set<std::string> seen;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i][0] == user) seen.insert(rows[i][1]);
  }
  CmdResult r = Vitrine("recommend " + B() + " --user " + user + " -k 10 --format csv --explain");
  ASSERT_EQ(r.code, 0) << r.err;
  auto recs = ReadCsvRows(r.out);
  ASSERT_EQ(recs.size(), 11u);
  for (size_t i = 1; i < recs.size(); ++i) {
    EXPECT_EQ(seen.count(recs[i][1]), 0u) << "already-seen item returned: " << recs[i][1];
    EXPECT_FALSE(recs[i].back().empty()) << "every result has a reason";
  }

  CmdResult h = Vitrine("recommend " + B() + " --history I000010,I000011 -k 5 --format json");
  ASSERT_EQ(h.code, 0) << h.err;
  EXPECT_NE(h.out.find("\"item_id\""), std::string::npos);

  CmdResult a = Vitrine("recommend " + B() + " --all-users -k 3 --output " + D() + "/all.csv -q");
  ASSERT_EQ(a.code, 0) << a.err;
  auto all = ReadCsvRows(ReadFile(D() + "/all.csv").value());
  ASSERT_EQ(all[0], (std::vector<std::string>{"user_id", "item_id", "rank", "score"}));
  std::set<std::string> users;
  for (size_t i = 1; i < all.size(); ++i) users.insert(all[i][0]);
  EXPECT_GT(users.size(), 100u);
}

TEST_F(CliE2E, EvaluatePrintsBaselinesAndAblations) {
  CmdResult r = Vitrine(std::string("evaluate ") + B() + " --test " + D() + "/split/test.csv -q");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* m : {"hybrid", "cold-start", "cf-only", "content-only", "visual-only", "toppop",
                        "itemknn", "ease", "ndcg@10", "cold_recall", "next-item hit rate@10",
                        "similar-to-last"}) {
    EXPECT_NE(r.out.find(m), std::string::npos) << m;
  }
  // A next-step column asked for by name must be usable; 'none' skips it.
  const std::string quick = std::string("evaluate ") + B() + " --test " + D() +
                            "/split/test.csv -q --models toppop --max-users 50";
  CmdResult bad = Vitrine(quick + " --next-step-column price");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("next-item hit rate: next-step by 'price': expected a categorical column"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(Vitrine(quick + " --next-step-column ''").code, 2);
  CmdResult none = Vitrine(quick + " --next-step-column none");
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(none.out.find("next-item hit rate"), std::string::npos);
}

TEST_F(CliE2E, CompleteTheLookOnePerComplementaryCategory) {
  CmdResult r = Vitrine("complete " + B() + " --item I000005 --categories 3 --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = ReadCsvRows(r.out);
  ASSERT_EQ(rows[0][1], "for");
  // The query's own category, from the catalog.
  auto items = ReadCsvRows(ReadFile(D() + "/data/items.csv").value());
  std::string own;
  for (const auto& row : items) {
    if (row[0] == "I000005") own = row[4];
  }
  std::set<std::string> cats;
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i][1], rows[i][5]) << "slot category = the item's category";
    EXPECT_NE(rows[i][1], own);
    EXPECT_TRUE(cats.insert(rows[i][1]).second) << "one item per category";
  }
  EXPECT_GE(rows.size(), 2u);
  EXPECT_LE(rows.size(), 4u);

  // Given pairs: exactly those categories, in that order.
  std::ofstream(D() + "/pairs.csv") << "category,complement\n"
                                    << own << ",bag\n"
                                    << own << ",sneakers\n";
  CmdResult g =
      Vitrine("complete " + B() + " --item I000005 --pairs " + D() + "/pairs.csv --format csv");
  ASSERT_EQ(g.code, 0) << g.err;
  auto grows = ReadCsvRows(g.out);
  ASSERT_EQ(grows.size(), 3u);
  EXPECT_EQ(grows[1][1], "bag");
  EXPECT_EQ(grows[2][1], "sneakers");
}

TEST_F(CliE2E, BuildAutotuneRecordsAnOperatingPointThatQueriesUse) {
  CmdResult b =
      Vitrine("build -q --ranker off --autotune --target-recall 0.9 --items " + D() +
              "/data/items.csv --interactions " + D() + "/split/train.csv --out " + D() + "/tuned");
  ASSERT_EQ(b.code, 0) << b.err;
  auto m = nlohmann::json::parse(ReadFile(D() + "/tuned/manifest.json").value());
  ASSERT_TRUE(m["index"].contains("search")) << m["index"].dump();
  EXPECT_GE(m["index"]["autotune"]["recall"].get<double>(), 0.9) << m["index"]["autotune"].dump();
  CmdResult s = Vitrine("similar --bundle " + D() + "/tuned --item I000005 -k 5 --format csv");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(ReadCsvRows(s.out).size(), 6u);
  EXPECT_EQ(Vitrine("build --autotune --index Flat --items x --out y").code, 2);
}

TEST_F(CliE2E, EvaluateReportsRuleComplianceOfTheBundlesLists) {
  std::ofstream(D() + "/eval.rules") << "EXCLUDE WHERE tier = \"high_street\"\nCAP 3 PER brand\n";
  CmdResult r = Vitrine("evaluate " + B() + " --test " + D() + "/split/test.csv --rules " + D() +
                        "/eval.rules --models hybrid --format csv -q");
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = ReadCsvRows(r.out);
  const auto col = std::find(rows[0].begin(), rows[0].end(), "compliance") - rows[0].begin();
  ASSERT_LT(static_cast<size_t>(col), rows[0].size());
  EXPECT_EQ(rows[1][0], "hybrid");
  EXPECT_EQ(rows[1][static_cast<size_t>(col)], "1.0000") << "the rules hold in every list";
}

TEST_F(CliE2E, ANewShopWithoutInteractionsStillBuilds) {
  CmdResult b = Vitrine("build -q --items " + D() + "/data/items.csv --images " + D() +
                        "/data/images.idx.gz --out " + D() + "/newshop");
  ASSERT_EQ(b.code, 0) << b.err;
  CmdResult s = Vitrine("similar --bundle " + D() + "/newshop --item I000005 -k 5 --format csv");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(ReadCsvRows(s.out).size(), 6u);
  CmdResult h = Vitrine("recommend --bundle " + D() + "/newshop --history I000001,I000002 -k 5");
  EXPECT_EQ(h.code, 0) << h.err;
}

// A catalog value with a control character (an escape sequence) is shown
// escaped in a table, never sent raw to the terminal; CSV keeps the data.
TEST_F(CliE2E, TablesEscapeControlCharacters) {
  std::ofstream(D() + "/ctl_items.csv") << "item_id,title,brand\nA1,red\x1b[31m coat,x\n"
                                           "A2,blue coat,y\nA3,green coat,x\n";
  ASSERT_EQ(Vitrine("build -q --items " + D() + "/ctl_items.csv --out " + D() + "/ctl").code, 0);
  CmdResult t = Vitrine("similar --bundle " + D() + "/ctl --item A2 -k 2");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("red\\x1b[31m coat"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find('\x1b'), std::string::npos);
  CmdResult c = Vitrine("similar --bundle " + D() + "/ctl --item A2 -k 2 --format csv");
  EXPECT_NE(c.out.find("red\x1b[31m coat"), std::string::npos) << c.out;
}

TEST_F(CliE2E, BadFlagsExitTwoMissingFilesExitOne) {
  EXPECT_EQ(Vitrine("similar " + B() + " --item I000001 --no-such-flag").code, 2);
  EXPECT_EQ(Vitrine("similar " + B()).code, 2);  // neither --item nor --items-file
  EXPECT_EQ(Vitrine("recommend " + B() + " --user U1 --history I1").code, 2);
  EXPECT_EQ(Vitrine("similar " + B() + " --item I000001 --diversity zigzag").code, 2);
  EXPECT_EQ(Vitrine("similar " + B() + " --item I000001 --diversity mmr:2").code, 2);
  EXPECT_EQ(Vitrine("similar " + B() + " --item I000001 --diversity dpp:1").code, 2);
  // A value cxxopts cannot read names its flag, spelled as given.
  CmdResult k = Vitrine("similar " + B() + " --item I000001 -k abc");
  EXPECT_EQ(k.code, 2);
  EXPECT_NE(k.err.find("-k: cannot read 'abc' (expected a number)"), std::string::npos) << k.err;
  CmdResult ef = Vitrine("similar " + B() + " --item I000001 --ef=1.5x");
  EXPECT_EQ(ef.code, 2);
  EXPECT_NE(ef.err.find("--ef: cannot read '1.5x'"), std::string::npos) << ef.err;
  EXPECT_EQ(Vitrine("nonsense").code, 2);

  CmdResult m = Vitrine("similar --bundle " + D() + "/no_such_bundle --item I000001");
  EXPECT_EQ(m.code, 1);
  EXPECT_NE(m.err.find("no_such_bundle"), std::string::npos) << m.err;

  CmdResult u = Vitrine("similar " + B() + " --item NOPE");
  EXPECT_EQ(u.code, 1);
  EXPECT_NE(u.err.find("NOPE"), std::string::npos) << u.err;

  std::ofstream(D() + "/bad.rules") << "EXCLUDE WHERE brand IN\n";
  CmdResult bad = Vitrine("similar " + B() + " --item I000001 --rules " + D() + "/bad.rules");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("bad.rules:1:"), std::string::npos) << bad.err;

  CmdResult missing = Vitrine("build --items " + D() + "/nope.csv --out " + D() + "/nb");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("nope.csv"), std::string::npos) << missing.err;

  // A bad arrival column fails before the expensive stages, naming the value.
  CmdResult arrival = Vitrine("build --items " + D() + "/data/items.csv --out " + D() +
                              "/nb --arrival-column season");
  EXPECT_EQ(arrival.code, 1);
  EXPECT_NE(arrival.err.find("is not a date"), std::string::npos) << arrival.err;
  EXPECT_EQ(arrival.err.find("content encoder"), std::string::npos) << arrival.err;
  EXPECT_FALSE(std::filesystem::exists(D() + "/nb"));
  EXPECT_EQ(
      Vitrine("build --items " + D() + "/data/items.csv --out " + D() + "/nb --new-half-life 0")
          .code,
      2);
}

// Issue 13: a column whose inferred type two bad cells decide is a warning
// from `vitrine build` (count, lines, values) and, with --strict, an error
// naming the file, line and column; the bundle is not written then.
TEST(CliBuild, NearMissColumnTypeWarnsAndStrictRefuses) {
  const fs::path d =
      fs::path(testing::TempDir()) / ("vitrine_cli_strict_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  std::ofstream items(d / "items.csv");
  items << "item_id,brand,price\n";
  for (int i = 0; i < 600; ++i) {
    items << "I" << i << ",brand" << i % 7 << ","
          << (i == 41    ? "call us"
              : i == 377 ? "12.50 EUR"
                         : std::to_string(10 + i % 90))
          << "\n";
  }
  items.close();
  const std::string csv = (d / "items.csv").string();
  CmdResult w = Vitrine("build --items " + csv + " --index Flat --out " + (d / "b").string());
  ASSERT_EQ(w.code, 0) << w.err;
  EXPECT_NE(w.err.find("warning: " + csv +
                       ": column 'price' (column 3) inferred categorical because 2 of 600 "
                       "values are not a number (line 43 'call us', line 379 '12.50 EUR')"),
            std::string::npos)
      << w.err;

  CmdResult s =
      Vitrine("build --strict --items " + csv + " --index Flat --out " + (d / "s").string());
  EXPECT_EQ(s.code, 1);
  EXPECT_NE(s.err.find(csv + ":43:3: column 'price' would be numeric but 2 of 600 values"),
            std::string::npos)
      << s.err;
  EXPECT_FALSE(fs::exists(d / "s"));
  fs::remove_all(d);
}

// Issue 13: a sparse new store (images, a catalog, a few scattered
// interactions and no item at the cold-start minimum) must build, load and
// answer with content and visual vectors, and say what it skipped. Before,
// the build wrote a manifest without its cold_start section, so every later
// command refused the bundle.
TEST(CliSparseStore, ScatteredInteractionsBuildLoadAndAnswer) {
  const fs::path d =
      fs::path(testing::TempDir()) / ("vitrine_cli_sparse_" + std::to_string(getpid()));
  fs::remove_all(d);
  const std::string data = (d / "data").string();
  CmdResult g = Vitrine("generate -q --items 3000 --users 20 --seed 5 --out " + data);
  ASSERT_EQ(g.code, 0) << g.err;
  // 100 interactions on 100 distinct items (fixed seed), 40 users.
  {
    std::vector<int> items(3000);
    for (int i = 0; i < 3000; ++i) items[static_cast<size_t>(i)] = i;
    std::mt19937 rng(13);
    std::shuffle(items.begin(), items.end(), rng);
    std::ofstream out(d / "sparse.csv");
    out << "user_id,item_id\n";
    char id[16];
    for (int k = 0; k < 100; ++k) {
      std::snprintf(id, sizeof(id), "I%06d", items[static_cast<size_t>(k)]);
      out << "S" << k % 40 << "," << id << "\n";
    }
  }
  const std::string bundle = (d / "bundle").string();
  CmdResult b =
      Vitrine("build --items " + data + "/items.csv --interactions " + (d / "sparse.csv").string() +
              " --images " + data + "/images.idx.gz --out " + bundle);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.out.find("3000 items (3000 cold), 40 users, 100 interactions"), std::string::npos)
      << b.out;
  // What it skipped, and why.
  EXPECT_NE(b.err.find("no item has 5 interactions (--cold-threshold)"), std::string::npos)
      << b.err;

  CmdResult i = Vitrine("inspect --load --bundle " + bundle);
  ASSERT_EQ(i.code, 0) << i.err;
  CmdResult j = Vitrine("inspect --format json --bundle " + bundle);
  ASSERT_EQ(j.code, 0) << j.err;
  const auto counts = nlohmann::json::parse(j.out)["counts"];
  EXPECT_EQ(counts["items"], 3000);
  EXPECT_EQ(counts["cold_items"], 3000);  // none reached 5 interactions
  EXPECT_EQ(counts["users"], 40);
  const auto blocks = nlohmann::json::parse(j.out)["blocks"];
  std::set<std::string> names;
  for (const auto& blk : blocks) names.insert(blk["name"].get<std::string>());
  EXPECT_TRUE(names.count("content") && names.count("visual")) << j.out;

  CmdResult r = Vitrine("recommend --bundle " + bundle + " --user S3 -k 5 --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadCsvRows(r.out).size(), 6u) << r.out;
  CmdResult s = Vitrine("similar --bundle " + bundle + " --item I000001 -k 5 --format csv");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_EQ(ReadCsvRows(s.out).size(), 6u) << s.out;

  // The same catalog with no interactions at all: every item is cold, and
  // the count says so (the issue saw "0 cold").
  CmdResult n = Vitrine("build -q --items " + data + "/items.csv --images " + data +
                        "/images.idx.gz --index Flat --out " + (d / "none").string());
  ASSERT_EQ(n.code, 0) << n.err;
  EXPECT_NE(n.out.find("3000 items (3000 cold)"), std::string::npos) << n.out;
  fs::remove_all(d);
}

// Any items CSV with a header works without code changes: a movie catalog.
TEST(CliMovies, SplitBuildRecommendEvaluateWithInferredTypes) {
  const fs::path d =
      fs::path(testing::TempDir()) / ("vitrine_cli_movies_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  const char* genres[] = {"Drama", "Comedy", "Action", "Horror", "Romance", "Sci-Fi"};
  std::ofstream items(d / "movies.csv");
  items << "item_id,title,year,genres,tags\n";
  for (int i = 0; i < 120; ++i) {
    items << "m" << i << ",\"The " << genres[i % 6] << " Story, part " << i << "\","
          << 1950 + (i * 7) % 70 << "," << genres[i % 6] << ";" << genres[(i / 6) % 6] << ","
          << "tag" << i % 5 << ";tag" << i % 3 << "\n";
  }
  items.close();
  std::ofstream inter(d / "ratings.csv");
  inter << "user_id,item_id,weight,timestamp\n";
  uint64_t x = 12345;
  for (int u = 0; u < 150; ++u) {
    for (int e = 0; e < 8; ++e) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      const int item = (u % 6) + 6 * static_cast<int>((x >> 33) % 20);  // taste = genre
      inter << "u" << u << ",m" << item << "," << 1 + (x >> 40) % 5 << ","
            << 1600000000 + u * 100 + e << "\n";
    }
  }
  inter.close();
  const std::string s = d.string();
  CmdResult sp = Vitrine("split --interactions " + s + "/ratings.csv --train " + s +
                         "/train.csv --test " + s + "/test.csv");
  ASSERT_EQ(sp.code, 0) << sp.err;
  CmdResult b = Vitrine("build -q --items " + s + "/movies.csv --interactions " + s +
                        "/train.csv --out " + s + "/bundle");
  ASSERT_EQ(b.code, 0) << b.err;
  CmdResult ins = Vitrine("inspect --bundle " + s + "/bundle --format json");
  ASSERT_EQ(ins.code, 0) << ins.err;
  EXPECT_NE(ins.out.find("year:numeric"), std::string::npos) << "year inferred numeric";
  EXPECT_NE(ins.out.find("genres:list"), std::string::npos) << "genres inferred as a list";
  EXPECT_NE(ins.out.find("title:text"), std::string::npos) << "title inferred as text";
  CmdResult all = Vitrine("recommend --bundle " + s + "/bundle --all-users -k 5 --output " + s +
                          "/recs.csv -q");
  ASSERT_EQ(all.code, 0) << all.err;
  CmdResult ev = Vitrine("evaluate --bundle " + s + "/bundle --test " + s + "/test.csv -q");
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_NE(ev.out.find("hybrid"), std::string::npos);
  CmdResult r = Vitrine("recommend --bundle " + s + "/bundle --user u3 --rule " +
                        "'INCLUDE WHERE genres = \"Action\"' -k 3 --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  fs::remove_all(d);
}

}  // namespace
}  // namespace vitrine
