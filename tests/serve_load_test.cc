// A bounded load test on loopback: client threads send a fixed mix of
// /similar, /recommend and /events while the bundle is reloaded twice; every
// request must succeed. Prints QPS and p50/p99 latency (never asserted).
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using testing::MakeTestBundle;
using testing::TestServer;
namespace fs = std::filesystem;

constexpr int kClients = 4;
constexpr int kMinPerClient = 1000;  // requests each client sends at least...
constexpr int kMaxPerClient = 5000;  // ...and at most (keeps going until both reloads are done)
constexpr int kReloads = 2;
constexpr auto kTimeLimit = std::chrono::seconds(40);

struct Sample {
  double us = 0;
  int status = 0;
  int64_t generation = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

TEST(ServeLoadTest, NoFailedRequestWhileReloading) {
  const fs::path dir = MakeTestBundle("serve_load");
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = dir / "events.csv";
  o.fsync = FsyncPolicy::kInterval;
  o.threads = 4;
  // Each request opens a new connection, and on a loaded machine the
  // server's threads for answered ones may not have closed yet when the
  // client reconnects: more than the default 16 per client IP can be open
  // for a moment and the next one is refused (429). This test is about
  // reloads, not connection limits (ServeSecurityTest has those).
  o.max_per_client = 0;
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  const auto engine = server->engine();
  const int n_items = engine->catalog().size();
  const int n_users = engine->users().size();
  ASSERT_GT(n_users, 0);

  std::atomic<int> completed{0};
  std::atomic<int> reloads_done{0};
  std::atomic<bool> reload_failed{false};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + kTimeLimit;
  std::vector<std::vector<Sample>> samples(kClients);
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", server.port());
      c.set_read_timeout(20, 0);
      for (int i = 0; i < kMaxPerClient && std::chrono::steady_clock::now() < deadline; ++i) {
        if (i >= kMinPerClient && reloads_done.load() >= kReloads) break;
        const int r = (i * 7 + t * 13) % 10;
        const std::string item = engine->catalog().ids.id((i * 31 + t) % n_items);
        const auto t0 = std::chrono::steady_clock::now();
        auto send = [&]() -> httplib::Result {
          if (r < 5) {
            return c.Get(("/similar/" + item + "?k=10" + (r == 4 ? "&diversity=mmr" : "")).c_str());
          } else if (r < 9) {
            json body{{"k", 10}};
            if (r == 5) body["user"] = engine->users().id((i * 17 + t) % n_users);
            if (r == 6) body["history"] = json::array({item});
            if (r == 7) body["user"] = "load-" + std::to_string(t);  // events or popular
            if (r == 8) {
              body["user"] = engine->users().id(i % n_users);
              body["rules"] = "CAP 2 PER brand\nEXCLUDE WHERE in_stock = false";
            }
            return c.Post("/recommend", body.dump(), "application/json");
          } else {
            const json ev{{"user", "load-" + std::to_string(t)}, {"item", item}, {"ts", i}};
            return c.Post("/events", ev.dump(), "application/json");
          }
        };
        const httplib::Result res = send();
        Sample s;
        s.us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                   .count();
        s.status = res ? res->status : -1;
        if (res && res->status == 200 && r < 9) {
          s.generation = json::parse(res->body, nullptr, false).value("generation", int64_t{0});
        }
        samples[t].push_back(s);
        completed.fetch_add(1);
      }
    });
  }
  // Reload at 1/3 and 2/3 of the minimum request count, with requests in
  // flight on every client thread.
  const int total_min = kClients * kMinPerClient;
  for (int k = 1; k <= kReloads; ++k) {
    while (completed.load() < total_min * k / (kReloads + 1) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    httplib::Client admin("127.0.0.1", server.port());
    admin.set_read_timeout(30, 0);
    auto r = admin.Post("/reload", "", "application/json");
    if (!r || r->status != 200) reload_failed = true;
    reloads_done.fetch_add(1);
  }
  for (auto& c : clients) c.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<double> lat;
  int failures = 0;
  std::map<int, int> failed_status;  // status (-1: no answer) -> count, for the message
  int64_t min_gen = 1 << 30, max_gen = 0;
  for (const auto& v : samples) {
    for (const Sample& s : v) {
      lat.push_back(s.us);
      if (s.status != 200) {
        ++failures;
        ++failed_status[s.status];
      }
      if (s.generation > 0) {
        min_gen = std::min(min_gen, s.generation);
        max_gen = std::max(max_gen, s.generation);
      }
    }
  }
  EXPECT_FALSE(reload_failed.load());
  EXPECT_EQ(failures, 0) << [&] {
    std::string m = "failed answers by status:";
    for (const auto& [status, n] : failed_status) {
      m += " " + std::to_string(status) + " x" + std::to_string(n);
    }
    return m;
  }();
  EXPECT_GE(static_cast<int>(lat.size()), total_min) << "stopped by the time limit";
  EXPECT_EQ(min_gen, 1);
  EXPECT_EQ(max_gen, 1 + kReloads);
  EXPECT_EQ(server->generation(), 1 + kReloads);
  std::printf(
      "[ load  ] %zu requests (50%% similar, 40%% recommend, 10%% events), %d client threads, "
      "4 server threads, %d reloads: %.1f s, %.0f QPS, p50 %.2f ms, p99 %.2f ms, "
      "%d failed, generations %lld..%lld\n",
      lat.size(), kClients, kReloads, secs, static_cast<double>(lat.size()) / secs,
      Percentile(lat, 0.50) / 1000, Percentile(lat, 0.99) / 1000, failures,
      static_cast<long long>(min_gen), static_cast<long long>(max_gen));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
