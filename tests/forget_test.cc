// Forgetting a customer (engine/forget.h): on generated data, the bundle
// without the users' rows against the bundle as it was (every other user's
// history and factors unchanged), no file holding their id, CSV files
// filtered against a by-hand filter, a build with the forget list against a
// build on the filtered file (byte-identical users and histories), and the
// server's POST /forget while it answers other requests.
#include "engine/forget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/bundle.h"
#include "core/file_util.h"
#include "engine/builder.h"
#include "engine/engine.h"
#include "sample/generator.h"
#include "tests/scratch_dir.h"
#include "tests/serve_test_util.h"

// After the engine headers: one of the C headers httplib includes defines a
// macro that breaks Eigen's templates.
#include <httplib.h>

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// True if any file under `dir` holds `needle` as bytes.
bool AnyFileHolds(const fs::path& dir, const std::string& needle) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (Slurp(e.path()).find(needle) != std::string::npos) return true;
  }
  return false;
}

// The lines of a CSV file whose first field (user_id) is not in `users`:
// the independent filter ForgetInCsv is checked against.
std::string FilterByHand(const std::string& csv, const std::set<std::string>& users) {
  std::istringstream in(csv);
  std::string line, out;
  bool header = true;
  while (std::getline(in, line)) {
    if (header || !users.count(line.substr(0, line.find(',')))) out += line + "\n";
    header = false;
  }
  return out;
}

class Forget : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(ScratchDir() / "forget");
    GeneratorOptions g;
    g.num_items = 400;
    g.num_users = 500;
    g.seed = 19;
    ASSERT_TRUE(GenerateSampleData(g, *dir_ / "data").ok());
  }
  static void TearDownTestSuite() { delete dir_; }

  static BuildOptions Options(const fs::path& interactions) {
    BuildOptions o;
    o.ranker.enabled = false;
    o.items = *dir_ / "data" / "items.csv";
    o.interactions = interactions;
    o.als.factors = 8;
    o.als.iterations = 3;
    o.als.compute_loss = false;
    o.als.num_threads = 1;
    o.content.dim = 8;
    o.index.spec = "Flat";
    return o;
  }
  static fs::path Build(const BuildOptions& o, const std::string& name) {
    const fs::path out = *dir_ / name;
    auto built = BuildBundle(o, out);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return out;
  }

  static fs::path* dir_;
};
fs::path* Forget::dir_ = nullptr;

TEST_F(Forget, BundleLosesOnlyTheirRowsAndIsIdempotent) {
  const fs::path bundle = Build(Options(*dir_ / "data" / "interactions.csv"), "bundle");
  auto before = Engine::Open(bundle);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const std::set<std::string> gone = {(*before)->users().id(3), (*before)->users().id(41),
                                      "never-seen"};
  auto factors_before = Bundle::Open(bundle)->ReadMatrix(bundle_file::kUserFactors);
  ASSERT_TRUE(factors_before.ok());

  auto s = ForgetInBundle(bundle, gone);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->users, 2);
  EXPECT_EQ(s->history_entries, static_cast<int64_t>((*before)->UserHistory(3).size() +
                                                     (*before)->UserHistory(41).size()));
  for (const std::string& id : gone) EXPECT_FALSE(AnyFileHolds(bundle, id)) << id;

  auto after = Engine::Open(bundle, VerifyMode::kFull);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  const Engine& a = **after;
  const Engine& b = **before;
  ASSERT_EQ(a.users().size(), b.users().size() - 2);
  EXPECT_EQ(a.manifest().counts.users, b.manifest().counts.users - 2);
  EXPECT_EQ(a.manifest().counts.interactions,
            b.manifest().counts.interactions - s->history_entries);
  auto factors_after = Bundle::Open(bundle)->ReadMatrix(bundle_file::kUserFactors);
  ASSERT_TRUE(factors_after.ok());
  for (int32_t u = 0; u < b.users().size(); ++u) {
    const std::string& id = b.users().id(u);
    const auto v = a.users().Find(id);
    if (gone.count(id)) {
      EXPECT_FALSE(v.has_value()) << id;
      continue;
    }
    ASSERT_TRUE(v.has_value()) << id;
    EXPECT_EQ(a.UserHistory(*v), b.UserHistory(u)) << id;
    EXPECT_EQ(a.UserHistoryWeights(*v), b.UserHistoryWeights(u)) << id;
    EXPECT_EQ(a.UserHistoryTimes(*v), b.UserHistoryTimes(u)) << id;
    for (size_t c = 0; c < factors_before->cols; ++c) {
      EXPECT_EQ(factors_after->at(static_cast<size_t>(*v), c),
                factors_before->at(static_cast<size_t>(u), c));
    }
  }
  // Recommending for a forgotten user is the popular fallback now.
  RecommendRequest r;
  r.user = *gone.begin();
  auto rec = a.Recommend(r);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->fallback);

  // Again: nothing found, nothing written.
  const std::string manifest = Slurp(bundle / "manifest.json");
  auto again = ForgetInBundle(bundle, gone);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->users, 0);
  EXPECT_EQ(Slurp(bundle / "manifest.json"), manifest);
}

// Found by hostile testing: a rewrite replaced a symlink with a file (the
// real log kept the lines) and made a 0600 file 0644.
TEST_F(Forget, RewritesFollowLinksAndKeepTheMode) {
  const fs::path real = *dir_ / "real-log.csv", link = *dir_ / "link-log.csv";
  WriteText(real, "user_id,item_id\nU1,I1\nU2,I2\n");
  fs::permissions(real, fs::perms::owner_read | fs::perms::owner_write);
  fs::remove(link);
  fs::create_symlink(real, link);
  auto removed = ForgetInCsv(link, {"U1"});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(Slurp(real), "user_id,item_id\nU2,I2\n");
  EXPECT_EQ(fs::status(real).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(Forget, CsvLinesGoByteForByteAndTheForgetListBuildsAsIfAbsent) {
  const std::string original = Slurp(*dir_ / "data" / "interactions.csv");
  const std::set<std::string> gone = {"U0000007", "U0000100", "U0000101"};
  const fs::path csv = *dir_ / "events.csv";
  WriteText(csv, original);
  auto removed = ForgetInCsv(csv, gone);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  const std::string want = FilterByHand(original, gone);
  EXPECT_EQ(Slurp(csv), want);
  EXPECT_GT(*removed, 0);
  EXPECT_EQ(static_cast<size_t>(*removed), std::count(original.begin(), original.end(), '\n') -
                                               std::count(want.begin(), want.end(), '\n'));
  auto again = ForgetInCsv(csv, gone);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_FALSE(ForgetInCsv(*dir_ / "data" / "items.csv", gone).ok());  // no user_id column

  // The forget list: ids once each, bad ids refused, and never written into
  // a file that is not a forget list (found by hostile testing: a mistyped
  // path appended an id to an interactions CSV).
  const fs::path list = *dir_ / "forgotten.txt";
  EXPECT_EQ(ReadForgetList(list).status().code(), Status::Code::kNotFound);
  ASSERT_EQ(*AddToForgetList(list, gone), 3);
  ASSERT_EQ(*AddToForgetList(list, {"U0000007"}), 0);
  EXPECT_EQ(*ReadForgetList(list), gone);
  for (const char* bad : {"bad\nid", "#comment", " U1", "U1\t", "", "\xff"}) {
    EXPECT_FALSE(AddToForgetList(list, {bad}).ok()) << bad;
  }
  const std::string csv_before = Slurp(csv);
  auto into_csv = AddToForgetList(csv, {"U0000001"});
  ASSERT_FALSE(into_csv.ok());
  EXPECT_NE(into_csv.status().message().find("not a forget list"), std::string::npos);
  EXPECT_EQ(Slurp(csv), csv_before);

  // A forget list that does not exist is an error, not an empty list.
  BuildOptions typo = Options(*dir_ / "data" / "interactions.csv");
  typo.forget_list = *dir_ / "no-such-list.txt";
  auto typo_build = BuildBundle(typo, *dir_ / "typo");
  ASSERT_FALSE(typo_build.ok());
  EXPECT_NE(typo_build.status().message().find("no-such-list.txt"), std::string::npos);

  // A build with the forget list equals a build on the filtered file.
  BuildOptions with_list = Options(*dir_ / "data" / "interactions.csv");
  with_list.forget_list = list;
  const fs::path a = Build(with_list, "with-list");
  const fs::path b = Build(Options(csv), "filtered");
  for (const char* file :
       {bundle_file::kUserIds, bundle_file::kHistoryIndptr, bundle_file::kHistoryIndices,
        bundle_file::kHistoryWeights, bundle_file::kPopularity, bundle_file::kItemFactors}) {
    EXPECT_EQ(Slurp(a / file), Slurp(b / file)) << file;
  }
  for (const std::string& id : gone) EXPECT_FALSE(AnyFileHolds(a, id)) << id;
}

// POST /forget on a running server: the user's posted events leave its
// session store and event log, their rows the bundle (reloaded), and the
// forget list gains them; requests for others keep being answered while it
// runs; a repeat removes nothing.
TEST_F(Forget, ServerForgetsWhileServing) {
  const fs::path bundle = Build(Options(*dir_ / "data" / "interactions.csv"), "served");
  auto opened = Engine::Open(bundle);
  ASSERT_TRUE(opened.ok());
  const std::string user = (*opened)->users().id(5), other = (*opened)->users().id(6);
  const std::string item = (*opened)->catalog().ids.id(0);
  opened->reset();
  ServerOptions o;
  o.bundle = bundle;
  o.event_log = *dir_ / "served-events.csv";
  o.forget_list = *dir_ / "served-forgotten.txt";
  o.threads = 2;
  testing::TestServer server(o);
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(60, 0);
  for (const std::string& u : {user, other}) {
    auto r = c.Post("/events", json{{"user", u}, {"item", item}, {"event", "view"}}.dump(),
                    "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  ASSERT_NE(Slurp(o.event_log).find(user + ","), std::string::npos);

  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, failed{0};
  std::thread reader([&] {
    httplib::Client rc("127.0.0.1", server.port());
    rc.set_read_timeout(60, 0);
    while (!stop) {
      auto r = rc.Post("/recommend", json{{"user", other}, {"k", 5}}.dump(), "application/json");
      (r && r->status == 200 ? answered : failed)++;
    }
  });
  auto r = c.Post("/forget", json{{"user", user}}.dump(), "application/json");
  // Let the reader see the reloaded bundle too.
  const int seen = answered.load();
  while (answered.load() < seen + 3 && failed.load() == 0) std::this_thread::yield();
  stop = true;
  reader.join();
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(failed.load(), 0);
  const json body = json::parse(r->body);
  EXPECT_EQ(body["sessions_removed"], 1);
  EXPECT_EQ(body["event_log_lines_removed"], 1);
  EXPECT_EQ(body["bundle_users_removed"], 1);
  EXPECT_EQ(body["forget_list_added"], 1);
  EXPECT_EQ(body["generation"], 2);
  EXPECT_FALSE(body["still_influenced_until_next_build"].empty());

  EXPECT_TRUE(server->sessions().Recent(user).empty());
  EXPECT_FALSE(server->sessions().Recent(other).empty());
  const std::string log = Slurp(o.event_log);
  EXPECT_EQ(log.find(user), std::string::npos);
  EXPECT_NE(log.find(other + ","), std::string::npos);
  EXPECT_FALSE(AnyFileHolds(bundle, user));
  EXPECT_FALSE(server->engine()->users().Find(user).has_value());
  EXPECT_EQ(ReadForgetList(o.forget_list)->count(user), 1u);

  // Events after the forget are logged to the rewritten file.
  auto later = c.Post("/events", json{{"user", other}, {"item", item}, {"event", "cart"}}.dump(),
                      "application/json");
  ASSERT_TRUE(later);
  EXPECT_EQ(later->status, 200) << later->body;
  EXPECT_NE(Slurp(o.event_log).find(other + "," + item + ",cart"), std::string::npos);

  auto repeat = c.Post("/forget", json{{"users", {user}}}.dump(), "application/json");
  ASSERT_TRUE(repeat);
  ASSERT_EQ(repeat->status, 200) << repeat->body;
  const json again = json::parse(repeat->body);
  EXPECT_EQ(again["sessions_removed"], 0);
  EXPECT_EQ(again["event_log_lines_removed"], 0);
  EXPECT_EQ(again["bundle_users_removed"], 0);
  EXPECT_EQ(again["generation"], 2);  // nothing to reload

  auto bad = c.Post("/forget", json{{"user", ""}}.dump(), "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto none = c.Post("/forget", json::object().dump(), "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 400);
}

}  // namespace
}  // namespace vitrine
