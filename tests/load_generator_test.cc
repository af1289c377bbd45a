// serve/load_generator.h against a real in-process server: every request is
// sent and answered, and the server's /metrics, scraped before and after,
// count exactly the requests the client sent (the oracle: the client's own
// tally). Speed is measured by `vitrine bench --server`, not asserted here.
#include "serve/load_generator.h"

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using testing::MakeTestBundle;
using testing::TestServer;

TEST(LoadGenerator, ServerCountersAgreeExactlyWithTheClient) {
  const fs::path dir = MakeTestBundle("load_generator");
  ServerOptions so;
  so.bundle = dir / "bundle";
  so.threads = 2;
  TestServer server(so);
  ASSERT_TRUE(server.ok());
  const Engine& engine = *server->engine();
  LoadOptions o;
  o.port = server.port();
  o.requests = 301;  // odd: the endpoints get 151 and 150
  o.concurrency = 3;
  for (int32_t i = 0; i < engine.catalog().size(); ++i) o.items.push_back(engine.catalog().ids.id(i));
  for (int32_t u = 0; u < 20; ++u) o.users.push_back(engine.users().id(u));
  o.users.push_back("someone-new");  // answered with popular items, still 200
  auto report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->time_limited);
  ASSERT_EQ(report->endpoints.size(), 2u);
  const EndpointLoad& similar = report->endpoints.at("similar");
  const EndpointLoad& recommend = report->endpoints.at("recommend");
  EXPECT_EQ(similar.sent, 151);
  EXPECT_EQ(recommend.sent, 150);
  for (const EndpointLoad* l : {&similar, &recommend}) {
    EXPECT_EQ(l->by_status.size(), 1u);
    EXPECT_EQ(l->by_status.count(200) ? l->by_status.at(200) : 0, l->sent);
    EXPECT_EQ(l->server_count, l->sent) << "the server counted other requests than were sent";
    ASSERT_FALSE(l->server_buckets.empty());
    EXPECT_EQ(l->server_buckets.back().second, l->sent) << "the histogram's +Inf bucket";
    EXPECT_EQ(static_cast<int64_t>(l->latency_s.size()), l->sent);
    EXPECT_LE(l->Quantile(0.5), l->Quantile(0.99));
    EXPECT_TRUE(std::is_sorted(l->latency_s.begin(), l->latency_s.end()));
  }
  fs::remove_all(dir);
}

TEST(LoadGenerator, AServerWithoutMetricsIsLoadedWithoutItsView) {
  const fs::path dir = MakeTestBundle("load_generator_nometrics");
  ServerOptions so;
  so.bundle = dir / "bundle";
  so.threads = 1;
  so.metrics = false;
  TestServer server(so);
  ASSERT_TRUE(server.ok());
  LoadOptions o;
  o.port = server.port();
  o.requests = 20;
  o.concurrency = 2;
  o.items = {server->engine()->catalog().ids.id(0), server->engine()->catalog().ids.id(1)};
  auto report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->server_metrics);
  for (const auto& [name, l] : report->endpoints) {
    EXPECT_EQ(l.sent, 10) << name;
    EXPECT_EQ(l.by_status.at(200), 10) << name;
    EXPECT_EQ(l.server_count, 0) << name;
    EXPECT_TRUE(l.server_buckets.empty()) << name;
  }
  fs::remove_all(dir);
}

TEST(LoadGenerator, BadOptionsAreRefused) {
  LoadOptions o;
  EXPECT_EQ(RunLoad(o).status().code(), Status::Code::kInvalidArgument);  // no items
  o.items = {"I1"};
  o.endpoints = {"similar", "search"};
  auto r = RunLoad(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown endpoint 'search'"), std::string::npos);
  o.endpoints = {"similar"};
  o.concurrency = 0;
  EXPECT_FALSE(RunLoad(o).ok());
}

TEST(LoadGenerator, AServerThatIsNotThereIsAnIOError) {
  LoadOptions o;
  o.items = {"I1"};
  o.port = 1;  // nothing listens on port 1 here
  auto r = RunLoad(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
}

}  // namespace
}  // namespace vitrine
