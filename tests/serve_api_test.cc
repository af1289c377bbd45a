// The HTTP API on loopback: every endpoint, every error class. Answers are
// checked against the Engine called directly (the same bundle) and against
// brute-force oracles (popularity order, attribute filters); the event log
// against the real interactions reader.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "core/interactions.h"
#include "serve/event_log.h"
#include "serve/load_generator.h"
#include "serve/session_store.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using testing::MakeTestBundle;
using testing::TestServer;
namespace fs = std::filesystem;

std::vector<std::string> Ids(const json& results) {
  std::vector<std::string> ids;
  for (const auto& r : results) ids.push_back(r["item"].get<std::string>());
  return ids;
}

std::vector<std::string> Ids(const Engine& e, const std::vector<Hit>& hits) {
  std::vector<std::string> ids;
  for (const auto& h : hits) ids.push_back(e.catalog().ids.id(h.item));
  return ids;
}

// ---- pieces without HTTP ----

TEST(SessionStore, BoundsEventsAndEvictsLeastRecentlyActiveUser) {
  SessionStore s(2, 3);
  for (int i = 0; i < 5; ++i) s.Add("a", {"I" + std::to_string(i), "view", 1, i});
  auto a = s.Recent("a");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].item, "I2");
  EXPECT_EQ(a[2].item, "I4");
  s.Add("b", {"X", "view", 1, 0});
  s.Add("a", {"I5", "view", 1, 5});  // a is now the most recent
  s.Add("c", {"Y", "view", 1, 0});   // evicts b
  EXPECT_EQ(s.num_users(), 2u);
  EXPECT_TRUE(s.Recent("b").empty());
  EXPECT_EQ(s.Recent("a").back().item, "I5");
  EXPECT_EQ(s.Recent("c").size(), 1u);
}

TEST(EventLog, QuotesFieldsAndIsReadByTheInteractionsReader) {
  const fs::path dir = fs::temp_directory_path() / ("vitrine_evlog_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    auto log = EventLog::Open(dir / "events.csv");
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    std::vector<LoggedEvent> ev = {{"u,1", "I1", "view", 100},
                                   {"u\"2", "I2", "purchase", 200, "store", "r-7", 3},
                                   {"u3", "I1", "cart", 300, "wishlist"}};
    ASSERT_TRUE((*log)->Append(ev).ok());
    EXPECT_EQ((*log)->appended(), 3);
    EXPECT_TRUE((*log)->has_channel());
    EXPECT_TRUE((*log)->has_attribution());
  }
  EXPECT_EQ(Slurp(dir / "events.csv"),
            "user_id,item_id,event,timestamp,channel,request_id,position\n\"u,1\",I1,view,100,,,\n"
            "\"u\"\"2\",I2,purchase,200,store,r-7,3\nu3,I1,cart,300,wishlist,,\n");
  IdMap items;
  items.Add("I1");
  items.Add("I2");
  InteractionsReadOptions o;
  o.channels = *EventWeights::Parse("online=1,store=2,wishlist=0.5");
  auto in = Interactions::ReadCsv(dir / "events.csv", items, o);
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(in->raw_events, 3);
  EXPECT_TRUE(in->users.Find("u,1").has_value());
  EXPECT_TRUE(in->users.Find("u\"2").has_value());
  // The channel multiplies the event weight; an empty channel counts 1.
  const CsrMatrix& m = in->matrix;
  auto weight = [&](const std::string& user, int32_t item) {
    const int32_t row = *in->users.Find(user);
    for (int64_t k = m.indptr[row]; k < m.indptr[row + 1]; ++k) {
      if (m.indices[k] == item) return m.values[k];
    }
    return -1.0f;
  };
  EXPECT_FLOAT_EQ(weight("u,1", 0), 1.0f);
  EXPECT_FLOAT_EQ(weight("u\"2", 1), 20.0f);
  EXPECT_FLOAT_EQ(weight("u3", 0), 2.0f);
  fs::remove_all(dir);
}

TEST(EventLog, CutsATornLastLineAndRejectsAForeignFile) {
  const fs::path dir = fs::temp_directory_path() / ("vitrine_evtorn_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path p = dir / "events.csv";
  // A log from before channels: appended to in its four columns; an event
  // with a channel is refused, not logged without it.
  std::ofstream(p) << "user_id,item_id,event,timestamp\nu1,I1,view,1\nu2,I";
  {
    auto log = EventLog::Open(p, FsyncPolicy::kNever);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    EXPECT_EQ((*log)->recovered_bytes(), 4);
    EXPECT_FALSE((*log)->has_channel());
    std::vector<LoggedEvent> ev = {{"u3", "I2", "view", 3}};
    ASSERT_TRUE((*log)->Append(ev).ok());
    std::vector<LoggedEvent> with_channel = {{"u4", "I2", "view", 4}, {"u5", "I2", "view", 5, "store"}};
    const Status refused = (*log)->Append(with_channel);
    EXPECT_EQ(refused.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(refused.message().find("no channel column"), std::string::npos) << refused.message();
  }
  EXPECT_EQ(Slurp(p), "user_id,item_id,event,timestamp\nu1,I1,view,1\nu3,I2,view,3\n");
  // A file that is the header without its line end gets one, and events
  // go on the next line (the file is not cut to nothing).
  std::ofstream(dir / "bare.csv") << "user_id,item_id,event,timestamp,channel";
  {
    auto log = EventLog::Open(dir / "bare.csv", FsyncPolicy::kNever);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    std::vector<LoggedEvent> ev = {{"u1", "I1", "view", 1, "store"}};
    ASSERT_TRUE((*log)->Append(ev).ok());
  }
  EXPECT_EQ(Slurp(dir / "bare.csv"), "user_id,item_id,event,timestamp,channel\nu1,I1,view,1,store\n");
  std::ofstream(dir / "other.csv") << "a,b\n1,2\n";
  auto bad = EventLog::Open(dir / "other.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("other.csv:1: expected the header"), std::string::npos)
      << bad.status().message();
  fs::remove_all(dir);
}

TEST(EventLog, ParsesFsyncPolicies) {
  FsyncPolicy p;
  std::chrono::milliseconds iv{0};
  ASSERT_TRUE(ParseFsyncPolicy("always", &p, &iv).ok());
  EXPECT_EQ(p, FsyncPolicy::kAlways);
  ASSERT_TRUE(ParseFsyncPolicy("interval:250ms", &p, &iv).ok());
  EXPECT_EQ(p, FsyncPolicy::kInterval);
  EXPECT_EQ(iv.count(), 250);
  ASSERT_TRUE(ParseFsyncPolicy("interval:2s", &p, &iv).ok());
  EXPECT_EQ(iv.count(), 2000);
  ASSERT_TRUE(ParseFsyncPolicy("never", &p, &iv).ok());
  EXPECT_FALSE(ParseFsyncPolicy("sometimes", &p, &iv).ok());
  EXPECT_FALSE(ParseFsyncPolicy("interval:0ms", &p, &iv).ok());
  EXPECT_FALSE(ParseFsyncPolicy("interval:x", &p, &iv).ok());
}

// ---- the HTTP API ----

class ServeApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(MakeTestBundle("serve_api"));
    ServerOptions o;
    o.bundle = *dir_ / "bundle";
    o.event_log = *dir_ / "events.csv";
    o.fsync = FsyncPolicy::kAlways;
    o.threads = 4;
    o.max_k = 100;
    o.max_body_bytes = 64 << 10;
    o.channels = *EventWeights::Parse("online=1,store=3,wishlist=0.5");
    server_ = new TestServer(o);
  }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(server_->ok()); }

  static httplib::Client Client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30, 0);
    return c;
  }
  // Runs a request and parses the JSON answer; fails the test on no answer
  // or a body that is not JSON.
  static json Get(const std::string& path, int* status) {
    auto r = Client().Get(path.c_str());
    return Parse(r, status);
  }
  static json Post(const std::string& path, const std::string& body, int* status) {
    auto r = Client().Post(path.c_str(), body, "application/json");
    return Parse(r, status);
  }
  static json Parse(const httplib::Result& r, int* status) {
    if (!r) {
      ADD_FAILURE() << "no answer: " << httplib::to_string(r.error());
      *status = -1;
      return json();
    }
    *status = r->status;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    json j = json::parse(r->body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r->body;
    return j;
  }
  // Expects an error answer with `status` whose message contains `needle`.
  // `got` is a pointer: the call's arguments are evaluated in any order, and
  // the status is written by the request in the first argument.
  static void ExpectError(const json& j, const int* got, int status, const std::string& needle) {
    EXPECT_EQ(*got, status) << j.dump();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << j.dump();
    EXPECT_EQ(j["status"], status);
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << j.dump();
  }
  static const Engine& engine() { return *(*server_)->engine(); }

  static fs::path* dir_;
  static TestServer* server_;
};
fs::path* ServeApiTest::dir_ = nullptr;
TestServer* ServeApiTest::server_ = nullptr;

TEST_F(ServeApiTest, Health) {
  int st;
  json j = Get("/health", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["items"], 300);
  EXPECT_GT(j["users"].get<int>(), 100);
  EXPECT_GE(j["generation"].get<int>(), 1);
}

TEST_F(ServeApiTest, ReadyUntilDraining) {
  int st;
  json j = Get("/ready", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["ready"], true);
  EXPECT_GE(j["generation"].get<int>(), 1);
  EXPECT_FALSE((*server_)->draining());
}

// The API contract: GET /openapi.json is docs/openapi.json, every route the
// server registers is documented with its method, and the document has no
// route the server lacks. (python/tests/test_openapi.py validates sample
// answers against its schemas.)
TEST_F(ServeApiTest, OpenApiDocumentCoversEveryRoute) {
  auto r = Client().Get("/openapi.json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json served = json::parse(r->body);
  std::ifstream in(fs::path(VITRINE_SOURCE_DIR) / "docs" / "openapi.json");
  ASSERT_TRUE(in) << "docs/openapi.json";
  const json doc = json::parse(in);
  EXPECT_EQ(served, doc) << "the binary serves a stale copy of docs/openapi.json";
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 2), "3.");
  std::set<std::pair<std::string, std::string>> registered;
  for (const auto& [method, path] : (*server_)->routes()) {
    std::string m = method;
    for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    registered.emplace(m, path);
    ASSERT_TRUE(doc["paths"].contains(path)) << path << " is not in docs/openapi.json";
    EXPECT_TRUE(doc["paths"][path].contains(m)) << method << " " << path;
    EXPECT_TRUE(doc["paths"][path][m].contains("responses")) << method << " " << path;
  }
  EXPECT_GE(registered.size(), 8u);
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [m, op] : ops.items()) {
      EXPECT_TRUE(registered.count({m, path})) << m << " " << path << " is documented, not served";
    }
  }
}

TEST_F(ServeApiTest, SimilarMatchesTheEngine) {
  const std::string item = engine().catalog().ids.id(5);
  int st;
  json j = Get("/similar/" + item + "?k=7&explain=1", &st);
  ASSERT_EQ(st, 200) << j.dump();
  QueryParams q;
  q.k = 7;
  auto want = engine().Similar(item, q);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), *want));
  ASSERT_EQ(j["results"].size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    const json& r = j["results"][i];
    EXPECT_NE(r["item"], item);
    EXPECT_EQ(r["rank"], i + 1);
    EXPECT_NEAR(r["score"].get<double>(), (*want)[i].score, 1e-5);
    EXPECT_FALSE(r["reason"].get<std::string>().empty());
    EXPECT_EQ(r["blocks"].size(), engine().layout().size());
    EXPECT_TRUE(r["attributes"].contains("brand"));
  }
  // Without explain: scores and reasons, no per-block detail.
  j = Get("/similar/" + item + "?k=3", &st);
  ASSERT_EQ(st, 200);
  EXPECT_TRUE(j["results"][0].contains("reason"));
  EXPECT_FALSE(j["results"][0].contains("blocks"));
}

TEST_F(ServeApiTest, SimilarWithRulesAndDiversity) {
  const Catalog& cat = engine().catalog();
  const std::string item = cat.ids.id(11);
  const std::string brand = cat.ValueString(*cat.column("brand"), 11);
  int st;
  json j = Get("/similar/" + item + "?k=10&diversity=mmr:0.5&rule=" +
                   PercentEncode("EXCLUDE WHERE brand = CurrentItem.brand"),
               &st);
  ASSERT_EQ(st, 200) << j.dump();
  ASSERT_EQ(j["results"].size(), 10u);
  for (const auto& r : j["results"]) {
    const int32_t i = *cat.ids.Find(r["item"].get<std::string>());
    EXPECT_NE(cat.ValueString(*cat.column("brand"), i), brand);
  }
}

TEST_F(ServeApiTest, SimilarErrors) {
  int st;
  ExpectError(Get("/similar/NOPE?k=3", &st), &st, 404, "unknown item 'NOPE'");
  const std::string item = engine().catalog().ids.id(1);
  ExpectError(Get("/similar/" + item + "?k=0", &st), &st, 400, "k '0'");
  ExpectError(Get("/similar/" + item + "?k=101", &st), &st, 400, "[1, 100]");
  ExpectError(Get("/similar/" + item + "?k=abc", &st), &st, 400, "expected an integer");
  ExpectError(Get("/similar/" + item + "?diversity=lots", &st), &st, 400, "diversity 'lots'");
  ExpectError(Get("/similar/" + item + "?weights=cf", &st), &st, 400, "expected block=number");
  ExpectError(Get("/similar/" + item + "?weights=style%3D1", &st), &st, 400,
              "unknown block 'style'");
  ExpectError(Get("/similar/" + item + "?kk=3", &st), &st, 400, "unknown query parameter 'kk'");
  ExpectError(Get("/similar/" + item + "?k=3&k=4", &st), &st, 400,
              "query parameter 'k' is given 2 times (only rule and exclude may repeat)");
  ExpectError(Get("/similar/" + item + "?diversity=mmr:2", &st), &st, 400,
              "the MMR lambda must be in [0, 1]");
  ExpectError(Get("/similar/" + item + "?rule=" + PercentEncode("EXCLUDE WHERE"), &st), &st, 400,
              "rules:1:");
  ExpectError(Get("/similar/" + item + "?rule=" + PercentEncode("EXCLUDE WHERE colour = \"red\""), &st),
              &st, 400, "unknown column 'colour'");
  ExpectError(Get("/nothing/here", &st), &st, 404, "no endpoint GET /nothing/here");
}

TEST_F(ServeApiTest, RecommendKnownUserAndHistoryMatchTheEngine) {
  const std::string user = engine().users().id(3);
  int st;
  json j = Post("/recommend", json{{"user", user}, {"k", 6}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["source"], "user");
  EXPECT_EQ(j["fallback"], false);
  RecommendRequest r;
  r.user = user;
  r.query.k = 6;
  auto want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));

  const std::vector<std::string> hist = {engine().catalog().ids.id(20),
                                         engine().catalog().ids.id(40)};
  j = Post("/recommend",
           json{{"history", hist}, {"k", 5}, {"weights", {{"cf", 0.5}, {"visual", 1.0}}}}.dump(),
           &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["source"], "history");
  RecommendRequest h;
  h.history = hist;
  h.query.k = 5;
  h.query.weights = {{"cf", 0.5f}, {"visual", 1.0f}};
  want = engine().Recommend(h);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  for (const auto& res : j["results"]) {
    EXPECT_TRUE(std::find(hist.begin(), hist.end(), res["item"]) == hist.end());
    EXPECT_EQ(res["reason"].get<std::string>().rfind("similar to ", 0), 0u) << res.dump();
  }
}

// Oracle: every item sorted by popularity (desc, then index), filtered by
// the attribute test, first k.
std::vector<std::string> PopularOracle(const Engine& e, int k,
                                       const std::function<bool(int32_t)>& keep) {
  std::vector<int32_t> all;
  for (int32_t i = 0; i < e.catalog().size(); ++i) {
    if (keep(i)) all.push_back(i);
  }
  std::stable_sort(all.begin(), all.end(),
                   [&](int32_t a, int32_t b) { return e.popularity(a) > e.popularity(b); });
  std::vector<std::string> ids;
  for (int i = 0; i < k && i < static_cast<int>(all.size()); ++i) {
    ids.push_back(e.catalog().ids.id(all[i]));
  }
  return ids;
}

TEST_F(ServeApiTest, UnknownUserGetsPopularItemsThatPassTheRules) {
  int st;
  json j = Post("/recommend", json{{"user", "nobody-at-all"}, {"k", 8}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["source"], "popular");
  EXPECT_EQ(j["fallback"], true);
  EXPECT_EQ(Ids(j["results"]), PopularOracle(engine(), 8, [](int32_t) { return true; }));
  EXPECT_EQ(j["results"][0]["reason"], "popular");

  // The CLI gives the same answer, marked as a fallback, with exit 0.
  ASSERT_EQ(vitrine::testing::RunVitrine("recommend --bundle '" + (*dir_ / "bundle").string() +
                                             "' --user nobody-at-all -k 8 --format csv",
                                         *dir_),
            0)
      << Slurp(*dir_ / "cmd.err");
  std::vector<std::string> cli_ids;
  {
    std::istringstream lines(Slurp(*dir_ / "cmd.out"));
    std::string line;
    std::getline(lines, line);  // header: rank,item_id,...
    while (std::getline(lines, line)) {
      const size_t a = line.find(',');
      cli_ids.push_back(line.substr(a + 1, line.find(',', a + 1) - a - 1));
    }
  }
  EXPECT_EQ(cli_ids, Ids(j["results"]));
  EXPECT_NE(Slurp(*dir_ / "cmd.err").find("fallback"), std::string::npos);

  const Catalog& cat = engine().catalog();
  const Column* category = cat.column("category");
  const std::string top_cat = cat.ValueString(*category, *cat.ids.Find(Ids(j["results"])[0]));
  j = Post("/recommend",
           json{{"user", "nobody-at-all"},
                {"k", 8},
                {"rules", {"EXCLUDE WHERE category = $CAT"}},
                {"params", {{"CAT", top_cat}}}}
               .dump(),
           &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["fallback"], true);
  EXPECT_EQ(Ids(j["results"]), PopularOracle(engine(), 8, [&](int32_t i) {
              return cat.ValueString(*category, i) != top_cat;
            }));
}

TEST_F(ServeApiTest, RecommendErrors) {
  int st;
  ExpectError(Post("/recommend", "{\"user\": ", &st), &st, 400, "malformed JSON");
  ExpectError(Post("/recommend", "[1,2]", &st), &st, 400, "must be a JSON object");
  ExpectError(Post("/recommend", "{\"k\": 5}", &st), &st, 400, "give 'user' or 'history'");
  ExpectError(Post("/recommend", R"({"user": "u", "k": 0})", &st), &st, 400, "'k' must be");
  ExpectError(Post("/recommend", R"({"user": "u", "k": 1000})", &st), &st, 400, "'k' must be");
  ExpectError(Post("/recommend", R"({"user": "u", "k": "5"})", &st), &st, 400, "'k' must be");
  ExpectError(Post("/recommend", R"({"user": 7})", &st), &st, 400, "'user' must be a string");
  ExpectError(Post("/recommend", R"({"user": "u", "colour": 1})", &st), &st, 400,
              "unknown field 'colour'");
  ExpectError(Post("/recommend", R"({"history": ["NOPE"]})", &st), &st, 404, "unknown item 'NOPE'");
  ExpectError(Post("/recommend", R"({"user": "u", "rules": "INCLUDE WHERE price <="})", &st), &st,
              400, "rules:1:");
  ExpectError(
      Post("/recommend", R"({"user": "u", "rules": ["BOOST 2 WHERE brand = \"x\"", "PIN"]})", &st),
      &st, 400, "rules:2:");
  ExpectError(Post("/recommend", R"({"user": "u", "rules": "INCLUDE WHERE price <= $MAX"})", &st),
              &st, 400, "MAX");
  ExpectError(Post("/recommend", R"({"user": "u", "weights": {"cf": "x"}})", &st), &st, 400,
              "weights.cf");
  // Oversized body: 413, still a JSON error, and the server keeps serving.
  const std::string big = "{\"user\": \"" + std::string(100 << 10, 'x') + "\"}";
  ExpectError(Post("/recommend", big, &st), &st, 413, "too large");
  json h = Get("/health", &st);
  EXPECT_EQ(st, 200);
}

TEST_F(ServeApiTest, AudienceMatchesTheEngine) {
  const std::string item = engine().catalog().ids.id(12);
  int st = 0;
  json j = Post("/audience", json{{"item", item}, {"k", 7}, {"search", "exact"}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  AudienceRequest r;
  r.item = item;
  r.query.k = 7;
  auto a = engine().FindAudience(r);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_EQ(j["results"].size(), a->members.size());
  for (size_t i = 0; i < a->members.size(); ++i) {
    EXPECT_EQ(j["results"][i]["user"], engine().users().id(a->members[i].user));
    EXPECT_NEAR(j["results"][i]["score"].get<double>(), a->members[i].score, 1e-5);
    EXPECT_EQ(j["results"][i]["reason"], a->members[i].reason);
  }
  EXPECT_EQ(j["eligible"], a->eligible);
  EXPECT_EQ(j["search"], "exact");
  // A user opted out in the request is not listed.
  const std::string first = j["results"][0]["user"];
  j = Post("/audience", json{{"item", item}, {"k", 7}, {"opt_out", {first}}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  for (const json& m : j["results"]) EXPECT_NE(m["user"], first);

  ExpectError(Post("/audience", R"({"k": 5})", &st), &st, 400, "give 'item'");
  ExpectError(Post("/audience", R"({"item": "NOPE"})", &st), &st, 404, "unknown item 'NOPE'");
  ExpectError(Post("/audience", json{{"item", item}, {"search", "fast"}}.dump(), &st), &st, 400,
              "'search' must be");
  ExpectError(Post("/audience", json{{"item", item}, {"opt_out", "u1"}}.dump(), &st), &st, 400,
              "'opt_out' must be an array");
  ExpectError(Post("/audience", json{{"item", item}, {"weights", "cf=1"}}.dump(), &st), &st, 400,
              "weights");
  const Catalog& cat = engine().catalog();
  const std::string brand = cat.ValueString(*cat.column("brand"), 12);
  ExpectError(Post("/audience",
                   json{{"item", item}, {"rules", "EXCLUDE WHERE brand = \"" + brand + "\""}}.dump(),
                   &st),
              &st, 400, "does not pass the rules");
}

TEST_F(ServeApiTest, EventsAreLoggedAndFoldedIntoTheNextRecommendation) {
  const std::string item = engine().catalog().ids.id(77);
  int st;
  // A new user: the event alone is their history.
  json j = Post(
      "/events",
      json{{"user", "new-shopper"}, {"item", item}, {"event", "cart"}, {"ts", 1714557600}}.dump(),
      &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["accepted"], 1);
  EXPECT_EQ(j["user_events"], 1);
  j = Post("/recommend", json{{"user", "new-shopper"}, {"k", 5}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["source"], "events");
  EXPECT_EQ(j["fallback"], false);
  RecommendRequest r;
  r.history = {item};
  r.history_weights = {4.0f};  // a cart event (default event weights)
  r.query.k = 5;
  auto want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));

  // A known user: training history (its stored weights) + the new event
  // (a view, weight 1), folded in.
  const std::string user = engine().users().id(9);
  const std::string item2 = engine().catalog().ids.id(123);
  j = Post("/events",
           json{{"user", user}, {"item", item2}, {"event", "view"}, {"ts", "2024-05-01T10:00:00Z"}}
               .dump(),
           &st);
  ASSERT_EQ(st, 200) << j.dump();
  j = Post("/recommend", json{{"user", user}, {"k", 5}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["source"], "user+events");
  RecommendRequest u;
  const int32_t uid = *engine().users().Find(user);
  const auto train = engine().UserHistory(uid);
  const auto train_w = engine().UserHistoryWeights(uid);
  ASSERT_EQ(train.size(), train_w.size());
  float item2_weight = 1;  // the view
  for (size_t k = 0; k < train.size(); ++k) {
    if (engine().catalog().ids.id(train[k]) == item2) {
      item2_weight += train_w[k];
    } else {
      u.history.push_back(std::string(engine().catalog().ids.id(train[k])));
      u.history_weights.push_back(train_w[k]);
    }
  }
  u.history.push_back(item2);
  u.history_weights.push_back(item2_weight);
  u.query.k = 5;
  want = engine().Recommend(u);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  for (const auto& res : j["results"]) EXPECT_NE(res["item"], item2);

  // Both events are in the durable log, in the interactions format.
  const std::string log = Slurp(*dir_ / "events.csv");
  EXPECT_EQ(log.rfind("user_id,item_id,event,timestamp,channel,request_id,position\n", 0), 0u);
  EXPECT_NE(log.find("new-shopper," + item + ",cart,1714557600,,,\n"), std::string::npos) << log;
  EXPECT_NE(log.find(user + "," + item2 + ",view,1714557600,,,\n"), std::string::npos) << log;
}

// Negative feedback: a hide_brand event keeps the brand out of every later
// answer for that user, and the request's own not_interested / hide_brands
// do the same for one answer; both equal the engine's answer.
TEST_F(ServeApiTest, NegativeFeedbackEventsAndFieldsKeepItemsAndBrandsOut) {
  const Catalog& cat = engine().catalog();
  const std::string liked = cat.ids.id(60);
  int st;
  json j = Post("/events", json{{"user", "picky"}, {"item", liked}, {"event", "purchase"}}.dump(),
                &st);
  ASSERT_EQ(st, 200) << j.dump();
  j = Post("/recommend", json{{"user", "picky"}, {"k", 10}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  const std::string trigger = j["results"][0]["item"];
  const int32_t trigger_row = *cat.ids.Find(trigger);
  const std::string brand = cat.ValueString(*cat.column("brand"), trigger_row);
  j = Post("/events", json{{"user", "picky"}, {"item", trigger}, {"event", "hide_brand"}}.dump(),
           &st);
  ASSERT_EQ(st, 200) << j.dump();
  j = Post("/recommend", json{{"user", "picky"}, {"k", 50}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  ASSERT_FALSE(j["results"].empty());
  for (const auto& res : j["results"]) {
    EXPECT_NE(cat.ValueString(*cat.column("brand"), *cat.ids.Find(res["item"].get<std::string>())),
              brand);
  }
  RecommendRequest r;
  r.user = "picky";
  r.recent = {{liked, 10.0f, Feedback::kTaste}, {trigger, -1.0f, Feedback::kHideBrand}};
  r.max_history = 1000;
  r.query.k = 50;
  auto want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));

  // The request's own fields.
  const std::string other = cat.ids.id(61);
  j = Post("/recommend",
           json{{"history", {liked}}, {"k", 10}, {"not_interested", {other}},
                {"hide_brands", {brand}}, {"negative_weight", 1.5}}
               .dump(),
           &st);
  ASSERT_EQ(st, 200) << j.dump();
  RecommendRequest h;
  h.history = {liked};
  h.not_interested = {other};
  h.hidden_brands = {brand};
  h.negative_weight = 1.5f;
  h.max_history = 1000;
  h.query.k = 10;
  want = engine().Recommend(h);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  ExpectError(Post("/recommend", json{{"history", {liked}}, {"negative_weight", -1}}.dump(), &st),
              &st, 400, "'negative_weight' must be");
  ExpectError(Post("/recommend", json{{"history", {liked}}, {"hide_brands", "x"}}.dump(), &st),
              &st, 400, "'hide_brands' must be an array");
  ExpectError(Post("/recommend", json{{"history", {liked}}, {"hide_brands", {"No Such"}}}.dump(),
                   &st),
              &st, 400, "cannot hide brand 'No Such'");
  ExpectError(Post("/recommend", json{{"history", {liked}}, {"not_interested", {"NOPE"}}}.dump(),
                   &st),
              &st, 404, "unknown item 'NOPE'");
}

TEST_F(ServeApiTest, IntentsMatchTheEngine) {
  const std::string user = engine().users().id(4);
  int st;
  json j = Post("/recommend", json{{"user", user}, {"k", 5}, {"intent", "recently-viewed"}}.dump(),
                &st);
  ASSERT_EQ(st, 200) << j.dump();
  RecommendRequest r;
  r.user = user;
  r.intent = Intent::kRecentlyViewed;
  r.max_history = 1000;
  r.query.k = 5;
  auto want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  j = Post("/recommend",
           json{{"user", user}, {"intent", "buy-again"}, {"replenishable", {"tshirt", "shirt"}}}
               .dump(),
           &st);
  ASSERT_EQ(st, 200) << j.dump();
  r.intent = Intent::kBuyAgain;
  r.replenishable_categories = {"tshirt", "shirt"};
  r.query.k = 10;
  want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  // next-step: the engine's answer, with its reasons.
  j = Post("/recommend", json{{"user", user}, {"k", 6}, {"intent", "next-step"}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  r = RecommendRequest{};
  r.user = user;
  r.intent = Intent::kNextStep;
  r.query.k = 6;
  want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  ASSERT_FALSE(j["results"].empty());
  EXPECT_EQ(j["results"][0]["reason"].get<std::string>().rfind("next step after ", 0), 0u)
      << j.dump();
  ExpectError(Post("/recommend",
                   json{{"user", user}, {"intent", "next-step"}, {"category_column", "nope"}}.dump(),
                   &st),
              &st, 400, "next-step by 'nope': no such catalog column");
  ExpectError(Post("/recommend", json{{"user", user}, {"intent", "next"}}.dump(), &st), &st, 400,
              "intent 'next': expected for-you, recently-viewed, buy-again, gift or next-step");
  ExpectError(Post("/recommend", json{{"user", user}, {"intent", "buy-again"}}.dump(), &st), &st,
              400, "buy-again needs replenishable items");
}

// Event weights reach the fold-in: a purchase counts 10, a view 1, repeated
// events of an item add up (as training aggregates them).
TEST_F(ServeApiTest, SessionEventsCarryTheirEventWeights) {
  const std::string a = engine().catalog().ids.id(40), b = engine().catalog().ids.id(41);
  int st;
  for (const auto& [item, event] : std::vector<std::pair<std::string, std::string>>{
           {a, "view"}, {b, "purchase"}, {a, "view"}}) {
    json j =
        Post("/events", json{{"user", "weigher"}, {"item", item}, {"event", event}}.dump(), &st);
    ASSERT_EQ(st, 200) << j.dump();
  }
  json j = Post("/recommend", json{{"user", "weigher"}, {"k", 8}, {"explain", true}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  RecommendRequest r;
  r.history = {b, a};  // a's latest event is the newest
  r.history_weights = {10.0f, 2.0f};
  r.query.k = 8;
  auto want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  for (size_t i = 0; i < want->hits.size(); ++i) {
    EXPECT_NEAR(j["results"][i]["score"].get<double>(), want->hits[i].score, 1e-5);
  }
}

// A channel multiplies the event weight (serve --channels store=3 here), as
// `build` does; it is logged; unknown channels are refused; a log from
// before channels refuses events with one (409) and keeps the rest.
TEST_F(ServeApiTest, EventChannelsWeighTheEventAndAreLogged) {
  const std::string a = engine().catalog().ids.id(60), b = engine().catalog().ids.id(61);
  int st;
  json j = Post("/events",
                json{{"user", "in-store"}, {"item", a}, {"event", "purchase"}, {"channel", "store"},
                     {"ts", 1714557000}}
                    .dump(),
                &st);
  ASSERT_EQ(st, 200) << j.dump();
  j = Post("/events",
           json{{"user", "in-store"}, {"item", b}, {"event", "view"}, {"channel", "wishlist"},
                {"ts", 1714557100}}
               .dump(),
           &st);
  ASSERT_EQ(st, 200) << j.dump();
  j = Post("/recommend", json{{"user", "in-store"}, {"k", 6}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  RecommendRequest r;
  r.history = {a, b};
  r.history_weights = {30.0f, 0.5f};  // purchase 10 x store 3, view 1 x wishlist 0.5
  r.query.k = 6;
  auto want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  const std::string log = Slurp(*dir_ / "events.csv");
  EXPECT_NE(log.find("in-store," + a + ",purchase,1714557000,store,,\n"), std::string::npos) << log;
  ExpectError(Post("/events", json{{"user", "u"}, {"item", a}, {"channel", "kiosk"}}.dump(), &st),
              &st, 400, "unknown channel 'kiosk' (known: online, store, wishlist; serve --channels)");
  ExpectError(Post("/events", json{{"user", "u"}, {"item", a}, {"channel", 3}}.dump(), &st), &st,
              400, "'channel' must be a string");

  const fs::path old_log = *dir_ / "old_events.csv";
  std::ofstream(old_log) << "user_id,item_id,event,timestamp\nu1," << a << ",view,1\n";
  ServerOptions o;
  o.bundle = *dir_ / "bundle";
  o.event_log = old_log;
  o.threads = 2;
  TestServer old(o);
  ASSERT_TRUE(old.ok());
  httplib::Client c("127.0.0.1", old.port());
  auto refused = c.Post("/events", json{{"user", "u2"}, {"item", a}, {"channel", "store"}}.dump(),
                        "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_NE(refused->body.find("started before channels"), std::string::npos) << refused->body;
  auto kept = c.Post("/events", json{{"user", "u2"}, {"item", a}, {"ts", 2}}.dump(),
                     "application/json");
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->status, 200) << kept->body;
  EXPECT_EQ(Slurp(old_log), "user_id,item_id,event,timestamp\nu1," + a + ",view,1\nu2," + a +
                                ",view,2\n");
}

TEST_F(ServeApiTest, AReturnTakesTheItemOutOfTheHistoryAndTheResults) {
  const std::string x = engine().catalog().ids.id(150), y = engine().catalog().ids.id(151);
  int st;
  for (const auto& [item, event] : std::vector<std::pair<std::string, std::string>>{
           {x, "purchase"}, {y, "view"}, {x, "return"}}) {
    json j =
        Post("/events", json{{"user", "returner"}, {"item", item}, {"event", event}}.dump(), &st);
    ASSERT_EQ(st, 200) << j.dump();
  }
  json j = Post("/recommend", json{{"user", "returner"}, {"k", 8}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["source"], "events");
  // The history is y alone; the returned x is excluded and, as negative
  // evidence, pushed away from (tests/negative_feedback_test.cc checks the
  // arithmetic against its oracle).
  RecommendRequest r;
  r.recent = {{x, 10.0f}, {y, 1.0f}, {x, -4.0f}};
  r.max_history = 1000;
  r.query.k = 8;
  auto want = engine().Recommend(r);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(Ids(j["results"]), Ids(engine(), want->hits));
  for (const auto& res : j["results"]) EXPECT_NE(res["item"], x);
  r.return_weight = 0;  // without the push: y's history with x excluded
  auto plain = engine().Recommend(r);
  RecommendRequest by_history;
  by_history.history = {y};
  by_history.query.k = 8;
  by_history.query.exclude = {*engine().catalog().ids.Find(x)};
  auto want_plain = engine().Recommend(by_history);
  ASSERT_TRUE(plain.ok() && want_plain.ok());
  EXPECT_EQ(Ids(engine(), plain->hits), Ids(engine(), want_plain->hits));
}

// A client that starts a request and stalls is cut off after the read
// timeout; other clients are served meanwhile.
TEST_F(ServeApiTest, AStalledClientIsCutOff) {
  ServerOptions o;
  o.bundle = *dir_ / "bundle";
  o.threads = 2;
  o.read_timeout = std::chrono::milliseconds(300);
  TestServer slow(o);
  ASSERT_TRUE(slow.ok());
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(slow.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string partial =
      "POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 100\r\n\r\n{\"us";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  httplib::Client other("127.0.0.1", slow.port());
  auto h = other.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  // The server gives up on the stalled request after the read timeout and
  // answers 400 with a JSON error (at most 10 s of polling here; the timeout
  // is 0.3 s).
  std::string got;
  for (int i = 0; i < 100 && got.find("}") == std::string::npos; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
  EXPECT_NE(got.find("{\"error\":\"incomplete or malformed HTTP request"), std::string::npos)
      << got;
}

TEST_F(ServeApiTest, EventErrorsLogNothing) {
  const std::string item = engine().catalog().ids.id(2);
  const size_t before = Slurp(*dir_ / "events.csv").size();
  int st;
  ExpectError(Post("/events", "{oops", &st), &st, 400, "malformed JSON");
  ExpectError(Post("/events", "3", &st), &st, 400, "event object");
  ExpectError(Post("/events", json{{"user", "u"}, {"item", "NOPE"}}.dump(), &st), &st, 404,
              "unknown item 'NOPE'");
  ExpectError(Post("/events", json{{"user", "u"}, {"item", item}, {"event", "like"}}.dump(), &st),
              &st, 400, "unknown event 'like' (known: cart, gift_purchase, hide_brand, not_interested, purchase, return, view)");
  ExpectError(Post("/events", json{{"item", item}}.dump(), &st), &st, 400, "missing 'user'");
  ExpectError(Post("/events", json{{"user", "a\nb"}, {"item", item}}.dump(), &st), &st, 400,
              "control character");
  ExpectError(Post("/events", json{{"user", "u"}, {"item", item}, {"ts", "yesterday"}}.dump(), &st),
              &st, 400, "'ts'");
  ExpectError(Post("/events", json{{"user", "u"}, {"item", item}, {"when", 1}}.dump(), &st), &st,
              400, "unknown field 'when'");
  // A batch with one bad event is rejected whole.
  json batch =
      json::array({json{{"user", "b1"}, {"item", item}}, json{{"user", "b2"}, {"item", "NOPE"}}});
  ExpectError(Post("/events", batch.dump(), &st), &st, 404, "event 1: unknown item");
  EXPECT_EQ(Slurp(*dir_ / "events.csv").size(), before);
  // A good batch is accepted whole.
  batch = json::array({json{{"user", "b1"}, {"item", item}, {"ts", 5}},
                       json{{"user", "b2"}, {"item", item}, {"ts", 6}}});
  json j = Post("/events", batch.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["accepted"], 2);
  EXPECT_NE(
      Slurp(*dir_ / "events.csv").find("b1," + item + ",view,5,,,\nb2," + item + ",view,6,,,\n"),
      std::string::npos);
}

TEST_F(ServeApiTest, ReloadSwapsTheBundleAndAFailedReloadKeepsServing) {
  int st;
  const int64_t g0 = (*server_)->generation();
  json j = Post("/reload", "", &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["generation"], g0 + 1);
  j = Post("/reload", json{{"bundle", (*dir_ / "bundle").string()}}.dump(), &st);
  ASSERT_EQ(st, 200) << j.dump();
  EXPECT_EQ(j["generation"], g0 + 2);
  // A missing bundle inside the bundle root: 500, and the old one serves on
  // (paths outside the root: serve_security_test).
  ExpectError(
      Post("/reload",
           json{{"bundle", ((*server_)->bundle_root() / "no-such-bundle").string()}}.dump(), &st),
      &st, 500, "still serving generation " + std::to_string(g0 + 2));
  ExpectError(Post("/reload", "{\"bundle\": 3}", &st), &st, 400, "'bundle' must be");
  ExpectError(Post("/reload", "nope", &st), &st, 400, "malformed JSON");
  j = Get("/health", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["generation"], g0 + 2);
  j = Get("/similar/" + engine().catalog().ids.id(0) + "?k=2", &st);
  EXPECT_EQ(st, 200);
  EXPECT_EQ(j["generation"], g0 + 2);
}

}  // namespace
}  // namespace vitrine
