// Operations: GET /metrics (a strict reading of Prometheus' text format
// 0.0.4, counters that agree exactly with what a client sent) and the
// access log (one JSON line per answer, request ids, rotation by size).
#include <httplib.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "serve/access_log.h"
#include "serve/metrics.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using testing::MakeTestBundle;
using testing::TestServer;
namespace fs = std::filesystem;

// One exposition, read strictly: every line a HELP, a TYPE or a sample;
// each family's TYPE before its samples and only once; every value a
// number. Keys of `samples` are "name{labels}" exactly as written.
struct Exposition {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, double> samples;
  std::vector<std::string> errors;
};

double ParseValue(const std::string& v, bool* ok) {
  *ok = true;
  if (v == "+Inf") return INFINITY;
  if (v == "-Inf") return -INFINITY;
  if (v == "NaN") return NAN;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  *ok = !v.empty() && end == v.c_str() + v.size();
  return d;
}

// The family a sample belongs to: histograms' _bucket/_sum/_count suffixes
// name their family's series.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

Exposition Read(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (\S+))");
  Exposition e;
  std::set<std::string> helped, sampled_families;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  if (text.empty() || text.back() != '\n') e.errors.push_back("the text must end with a newline");
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    const std::string where = "line " + std::to_string(n) + " '" + line + "': ";
    if (std::regex_match(line, m, kHelp)) {
      if (!helped.insert(m[1]).second) e.errors.push_back(where + "second HELP");
    } else if (std::regex_match(line, m, kType)) {
      if (e.types.count(m[1]) || sampled_families.count(m[1])) {
        e.errors.push_back(where + "TYPE after samples or twice");
      }
      e.types[m[1]] = m[2];
    } else if (std::regex_match(line, m, kSample)) {
      const std::string name = m[1];
      const std::string family = FamilyOf(name, e.types);
      if (!e.types.count(family)) e.errors.push_back(where + "sample without a TYPE");
      sampled_families.insert(family);
      bool ok = false;
      const double v = ParseValue(m[3], &ok);
      if (!ok) e.errors.push_back(where + "value is not a number");
      const std::string key = name + m[2].str();
      if (!e.samples.emplace(key, v).second) e.errors.push_back(where + "duplicate series");
    } else {
      e.errors.push_back(where + "neither HELP, TYPE nor a sample");
    }
  }
  return e;
}

// "0.005": the shortest %g spelling that reads back as the same double.
std::string Shortest(double v) {
  for (int p = 6;; ++p) {  // (from 6: "10", not "1e+01")
    std::ostringstream s;
    s.precision(p);
    s << v;
    if (std::stod(s.str()) == v || p >= 17) return s.str();
  }
}

class ServeMetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(MakeTestBundle("serve_metrics"));
    ServerOptions o;
    o.bundle = *dir_ / "bundle";
    o.event_log = *dir_ / "events.csv";
    o.fsync = FsyncPolicy::kAlways;
    o.threads = 2;
    o.access_log = *dir_ / "access.log";
    server_ = new TestServer(o);
  }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(*dir_);
    delete dir_;
  }
  static httplib::Client Client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30, 0);
    return c;
  }
  static fs::path* dir_;
  static TestServer* server_;
};
fs::path* ServeMetricsTest::dir_ = nullptr;
TestServer* ServeMetricsTest::server_ = nullptr;

TEST_F(ServeMetricsTest, CountersAgreeWithTheClientAndTheFormatIsStrict) {
  ASSERT_TRUE(server_->ok());
  const Engine& engine = *(*server_)->engine();
  const std::string item = engine.catalog().ids.id(3);
  const std::string user = engine.users().id(0);
  auto c = Client();
  int similar_ok = 0, similar_404 = 0, other_404 = 0, recommend_ok = 0;
  for (int i = 0; i < 7; ++i) {
    auto r = c.Get(("/similar/" + item + "?k=5").c_str());
    ASSERT_TRUE(r);
    similar_ok += r->status == 200;
  }
  for (int i = 0; i < 3; ++i) similar_404 += c.Get("/similar/NOPE?k=5")->status == 404;
  for (int i = 0; i < 2; ++i) other_404 += c.Get("/no/such/endpoint")->status == 404;
  for (int i = 0; i < 4; ++i) {
    recommend_ok += c.Post("/recommend", json{{"user", user}, {"k", 4}}.dump(),
                           "application/json")->status == 200;
  }
  const json good = json::array({{{"user", "u1"}, {"item", item}},
                                 {{"user", "u2"}, {"item", item}},
                                 {{"user", "u1"}, {"item", item}, {"event", "view"}}});
  ASSERT_EQ(c.Post("/events", good.dump(), "application/json")->status, 200);
  const json bad = json::array({{{"user", "u1"}, {"item", item}}, {{"user", "u2"}, {"item", "NOPE"}}});
  ASSERT_EQ(c.Post("/events", bad.dump(), "application/json")->status, 404);
  ASSERT_EQ(similar_ok, 7);
  ASSERT_EQ(similar_404, 3);
  ASSERT_EQ(other_404, 2);
  ASSERT_EQ(recommend_ok, 4);

  // A request is counted after its answer is written, so the last one can
  // trail the client by a moment: scrape until all 18 are in.
  std::string body, content_type;
  int status = 0;
  Exposition e;
  int scrapes = 0;
  for (int tries = 0; tries < 250; ++tries) {
    auto r = c.Get("/metrics");
    ++scrapes;
    ASSERT_TRUE(r);
    body = r->body;
    status = r->status;
    content_type = r->get_header_value("Content-Type");
    e = Read(body);
    double answered = 0;
    for (const auto& [key, value] : e.samples) {
      if (key.starts_with("vitrine_http_requests_total{") &&
          key.find("endpoint=\"metrics\"") == std::string::npos) {
        answered += value;
      }
    }
    if (answered >= 18) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(status, 200);
  EXPECT_EQ(content_type, "text/plain; version=0.0.4; charset=utf-8");
  for (const auto& err : e.errors) ADD_FAILURE() << err;
  for (const auto& [family, type] : e.types) {
    EXPECT_EQ(family.rfind("vitrine_", 0), 0u) << family;
    if (type == "counter") {
      EXPECT_TRUE(family.ends_with("_total")) << family;
    }
  }
  auto v = [&](const std::string& key) {
    auto it = e.samples.find(key);
    if (it == e.samples.end()) {
      ADD_FAILURE() << "no series " << key << " in\n" << body;
      return -1.0;
    }
    return it->second;
  };
  EXPECT_EQ(v(R"(vitrine_http_requests_total{endpoint="similar",status="200"})"), 7);
  EXPECT_EQ(v(R"(vitrine_http_requests_total{endpoint="similar",status="404"})"), 3);
  EXPECT_EQ(v(R"(vitrine_http_requests_total{endpoint="other",status="404"})"), 2);
  EXPECT_EQ(v(R"(vitrine_http_requests_total{endpoint="recommend",status="200"})"), 4);
  EXPECT_EQ(v(R"(vitrine_http_requests_total{endpoint="events",status="200"})"), 1);
  EXPECT_EQ(v(R"(vitrine_http_requests_total{endpoint="events",status="404"})"), 1);
  EXPECT_EQ(v("vitrine_events_accepted_total"), 3);
  EXPECT_EQ(v("vitrine_events_rejected_total"), 2);
  EXPECT_EQ(v("vitrine_event_log_append_duration_seconds_count"), 1);
  EXPECT_EQ(v("vitrine_event_log_events"), 3);
  EXPECT_EQ(v("vitrine_bundle_generation"), 1);
  EXPECT_EQ(v("vitrine_bundle_items"), engine.catalog().size());
  EXPECT_EQ(v("vitrine_bundle_users"), engine.users().size());
  EXPECT_GT(v("vitrine_bundle_load_seconds"), 0);
  EXPECT_EQ(v("vitrine_session_users"), 2);
  EXPECT_GT(v("vitrine_process_resident_memory_bytes"), 1 << 20);

  // Histograms: cumulative buckets, +Inf equal to the count, one count
  // per timed request.
  for (const char* endpoint : {"similar", "recommend", "events", "other"}) {
    const std::string labels = std::string("endpoint=\"") + endpoint + "\"";
    double previous = 0;
    for (double bound : LatencyHistogram::kBounds) {
      const double b = v("vitrine_http_request_duration_seconds_bucket{" + labels + ",le=\"" +
                         Shortest(bound) + "\"}");
      EXPECT_GE(b, previous) << endpoint << " le=" << bound;
      previous = b;
    }
    const double inf =
        v("vitrine_http_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"}");
    EXPECT_GE(inf, previous);
    EXPECT_EQ(inf, v("vitrine_http_request_duration_seconds_count{" + labels + "}"));
  }
  EXPECT_EQ(v(R"(vitrine_http_request_duration_seconds_count{endpoint="similar"})"), 10);
  EXPECT_EQ(v(R"(vitrine_http_request_duration_seconds_count{endpoint="recommend"})"), 4);
  // One pool and one rerank time per answered (200) query, a pool at least
  // k: the ranked recommend merges several sources over k; a plain similar
  // search retrieves k.
  EXPECT_EQ(v(R"(vitrine_candidate_pool_size_count{endpoint="similar"})"), 7);
  EXPECT_GE(v(R"(vitrine_candidate_pool_size_sum{endpoint="similar"})"), 7 * 5);
  EXPECT_EQ(v(R"(vitrine_candidate_pool_size_count{endpoint="recommend"})"), 4);
  EXPECT_GT(v(R"(vitrine_candidate_pool_size_sum{endpoint="recommend"})"), 4 * 4);
  EXPECT_EQ(v(R"(vitrine_candidate_pool_size_bucket{endpoint="recommend",le="10"})"), 0);
  EXPECT_EQ(v(R"(vitrine_rerank_duration_seconds_count{endpoint="recommend"})"), 4);
  EXPECT_GT(v(R"(vitrine_rerank_duration_seconds_sum{endpoint="recommend"})"), 0);

  // A scrape is counted once its answer is written: a later one sees it.
  for (int tries = 0; tries < 250; ++tries) {
    const Exposition again = Read(c.Get("/metrics")->body);
    const auto it = again.samples.find(R"(vitrine_http_requests_total{endpoint="metrics",status="200"})");
    if (it != again.samples.end() && it->second >= scrapes) {
      EXPECT_LE(it->second, scrapes + tries);  // earlier scrapes of this loop, at most
      break;
    }
    ASSERT_LT(tries, 249) << "the scrapes were never counted";
    ++scrapes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Every answer gets one line, with the fields the client can check. (The
// suite's server is shared: only the lines this test adds are read.)
TEST_F(ServeMetricsTest, TheAccessLogHasOneLinePerAnswer) {
  ASSERT_TRUE(server_->ok());
  const Engine& engine = *(*server_)->engine();
  const fs::path path = *dir_ / "access.log";
  auto read_lines = [&] {
    std::vector<json> lines;
    std::istringstream in(fs::exists(path) ? Slurp(path) : "");
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << line;
      lines.push_back(j);
    }
    return lines;
  };
  // The logger runs after an answer is written, so the line of the last
  // answer can trail the client by a moment.
  auto wait_for = [&](size_t n) {
    std::vector<json> lines = read_lines();
    for (int tries = 0; tries < 250 && lines.size() < n; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      lines = read_lines();
    }
    return lines;
  };
  auto c = Client();
  ASSERT_TRUE(c.Get("/health"));
  const size_t before = wait_for(1).size();

  // Lines are written as answers finish, on each connection's thread, so
  // their order across connections is not the order of the requests: find
  // each by its request id.
  const std::string item = engine.catalog().ids.id(5);
  auto r = c.Get(("/similar/" + item + "?k=3").c_str(), {{"X-Request-Id", "trace-abc.1"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("X-Request-Id"), "trace-abc.1");
  ASSERT_TRUE(c.Get("/similar/NOPE", {{"X-Request-Id", "t2"}}));
  ASSERT_TRUE(c.Get("/no/such/thing", {{"X-Request-Id", "t3"}}));
  ASSERT_TRUE(c.Post("/recommend", {{"X-Request-Id", "t4"}},
                     json{{"user", engine.users().id(1)}, {"k", 2}}.dump(), "application/json"));
  auto forged = c.Get("/health", {{"X-Request-Id", "bad\"id"}});  // not kept: generated instead
  ASSERT_TRUE(forged);
  const std::string generated = forged->get_header_value("X-Request-Id");
  EXPECT_NE(generated, "bad\"id");
  EXPECT_FALSE(generated.empty());

  const std::vector<json> all = wait_for(before + 5);
  ASSERT_EQ(all.size(), before + 5);
  std::map<std::string, json> by_id;
  for (size_t i = before; i < all.size(); ++i) by_id[all[i]["request_id"]] = all[i];
  ASSERT_EQ(by_id.size(), 5u);
  const json& similar = by_id["trace-abc.1"];
  EXPECT_EQ(similar["method"], "GET");
  EXPECT_EQ(similar["endpoint"], "similar");
  EXPECT_EQ(similar["status"], 200);
  EXPECT_EQ(similar["k"], 3);
  EXPECT_EQ(similar["generation"], 1);
  EXPECT_GE(similar["latency_ms"].get<double>(), 0);
  EXPECT_EQ(by_id["t2"]["endpoint"], "similar");
  EXPECT_EQ(by_id["t2"]["status"], 404);
  EXPECT_EQ(by_id["t3"]["endpoint"], "other");
  EXPECT_EQ(by_id["t3"]["status"], 404);
  EXPECT_FALSE(by_id["t3"].contains("k"));
  EXPECT_EQ(by_id["t4"]["endpoint"], "recommend");
  EXPECT_EQ(by_id["t4"]["method"], "POST");
  EXPECT_EQ(by_id["t4"]["k"], 2);
  EXPECT_EQ(by_id[generated]["endpoint"], "health");
  std::set<std::string> ids;
  for (const json& j : all) {
    EXPECT_TRUE(ids.insert(j["request_id"].get<std::string>()).second) << "duplicate id " << j;
    EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z")) << j;
    EXPECT_FALSE(j.contains("user")) << "no user ids in the access log: " << j;
  }
}

TEST(AccessLog, RotatesPastItsSizeKeepingOneOldFile) {
  const fs::path dir = fs::temp_directory_path() / ("vitrine_access_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto log = AccessLog::Open(dir / "a.log", 4096);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  AccessRecord r{"id", "GET", "similar", 200, 1.5, 10, 1};
  const size_t line = AccessLog::Line(r).size();
  const int n = static_cast<int>(3 * 4096 / line);  // about three files' worth
  for (int i = 0; i < n; ++i) {
    r.request_id = "id-" + std::to_string(i);
    (*log)->Write(r);
  }
  log->reset();
  const std::string current = Slurp(dir / "a.log"), old = Slurp(dir / "a.log.1");
  EXPECT_LE(current.size(), 4096u);
  EXPECT_LE(old.size(), 4096u);
  EXPECT_GT(old.size(), 4096u - 2 * line);  // rotated when full, not earlier
  // The newest line is last in the current file, and the two files hold
  // consecutive requests: nothing between them was lost.
  const auto last_id = [](const std::string& text) {
    const size_t start = text.rfind('\n', text.size() - 2);
    return json::parse(text.substr(start == std::string::npos ? 0 : start + 1))["request_id"]
        .get<std::string>();
  };
  EXPECT_EQ(last_id(current), "id-" + std::to_string(n - 1));
  const size_t lines_current = std::count(current.begin(), current.end(), '\n');
  EXPECT_EQ(last_id(old), "id-" + std::to_string(n - 1 - static_cast<int>(lines_current)));
  EXPECT_FALSE(AccessLog::Open(dir / "b.log", 100).ok());  // below the 4096-byte floor
  EXPECT_FALSE(AccessLog::Open(dir / "no" / "such" / "c.log", 1 << 20).ok());
  fs::remove_all(dir);
}

TEST(ServeMetrics, OffMeansNoEndpointAndNoCounting) {
  const fs::path dir = MakeTestBundle("serve_metrics_off");
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = "";
  o.metrics = false;
  {
    TestServer server(o);
    ASSERT_TRUE(server.ok());
    httplib::Client c("127.0.0.1", server.port());
    const std::string item = server->engine()->catalog().ids.id(0);
    auto similar = c.Get(("/similar/" + item + "?k=3").c_str());
    ASSERT_TRUE(similar);
    EXPECT_EQ(similar->status, 200);
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 404);
    EXPECT_NE(m->body.find("metrics are off"), std::string::npos) << m->body;
  }
  fs::remove_all(dir);
}

TEST(LatencyHistogram, BucketsAreCumulativeUpperBounds) {
  LatencyHistogram h;
  h.Observe(0.00025);  // on a bound: counted in that bucket (le is "<=")
  h.Observe(0.003);
  h.Observe(60);  // beyond the last bound: only +Inf
  std::string out;
  h.Render("x", "", &out);
  const Exposition e = Read("# TYPE x histogram\n" + out);
  for (const auto& err : e.errors) ADD_FAILURE() << err;
  EXPECT_EQ(e.samples.at(R"(x_bucket{le="0.00025"})"), 1);
  EXPECT_EQ(e.samples.at(R"(x_bucket{le="0.0025"})"), 1);
  EXPECT_EQ(e.samples.at(R"(x_bucket{le="0.005"})"), 2);
  EXPECT_EQ(e.samples.at(R"(x_bucket{le="10"})"), 2);
  EXPECT_EQ(e.samples.at(R"(x_bucket{le="+Inf"})"), 3);
  EXPECT_EQ(e.samples.at("x_count"), 3);
  EXPECT_DOUBLE_EQ(e.samples.at("x_sum"), 0.00025 + 0.003 + 60);
}

}  // namespace
}  // namespace vitrine
