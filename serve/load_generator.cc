// RunLoad: keep-alive clients over cpp-httplib, one latency sample per
// answer, /metrics scraped before and after.
#include "serve/load_generator.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

namespace vitrine {
namespace {

using Clock = std::chrono::steady_clock;

// Counters and histogram buckets of one endpoint from the exposition text.
struct Scrape {
  std::map<std::string, int64_t> count;                                  // endpoint -> requests
  std::map<std::string, std::vector<std::pair<double, int64_t>>> buckets;  // endpoint -> (le, n)
};

std::string Label(const std::string& line, const std::string& key) {
  const size_t at = line.find(key + "=\"");
  if (at == std::string::npos) return "";
  const size_t b = at + key.size() + 2, e = line.find('"', b);
  return e == std::string::npos ? "" : line.substr(b, e - b);
}

// Empty when the server answers 404 (`serve --metrics off`).
Result<std::optional<Scrape>> ScrapeMetrics(httplib::Client& c) {
  auto r = c.Get("/metrics");
  if (r && r->status == 404) return std::optional<Scrape>();
  if (!r || r->status != 200) {
    return Status::IOError("GET /metrics: " +
                           (r ? "status " + std::to_string(r->status) : httplib::to_string(r.error())));
  }
  Scrape s;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    const double value = std::strtod(line.c_str() + space + 1, nullptr);
    const std::string endpoint = Label(line, "endpoint");
    if (line.rfind("vitrine_http_requests_total{", 0) == 0) {
      s.count[endpoint] += static_cast<int64_t>(value);
    } else if (line.rfind("vitrine_http_request_duration_seconds_bucket{", 0) == 0) {
      const std::string le = Label(line, "le");
      const double bound = le == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(le);
      s.buckets[endpoint].push_back({bound, static_cast<int64_t>(value)});
    }
  }
  return std::optional<Scrape>(std::move(s));
}

}  // namespace

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += {'%', kHex[ch >> 4], kHex[ch & 15]};
    }
  }
  return out;
}

double EndpointLoad::Quantile(double q) const {
  if (latency_s.empty()) return std::numeric_limits<double>::quiet_NaN();
  const size_t i = std::min(latency_s.size() - 1,
                            static_cast<size_t>(std::ceil(q * static_cast<double>(latency_s.size()))) -
                                (q > 0 ? 1 : 0));
  return latency_s[i];
}

double EndpointLoad::ServerQuantile(double q) const {
  if (server_buckets.empty() || server_buckets.back().second == 0) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const double target = q * static_cast<double>(server_buckets.back().second);
  for (const auto& [le, n] : server_buckets) {
    if (static_cast<double>(n) >= target) return le;
  }
  return server_buckets.back().first;
}

Result<LoadReport> RunLoad(const LoadOptions& o) {
  if (o.items.empty()) return Status::InvalidArgument("load: no item ids to ask about");
  if (o.requests < 1) return Status::InvalidArgument("load: requests must be >= 1");
  if (o.concurrency < 1 || o.concurrency > 1024) {
    return Status::InvalidArgument("load: concurrency must be in [1, 1024]");
  }
  if (o.endpoints.empty()) return Status::InvalidArgument("load: no endpoint");
  for (const std::string& e : o.endpoints) {
    if (e != "similar" && e != "recommend") {
      return Status::InvalidArgument("load: unknown endpoint '" + e +
                                     "' (expected similar or recommend)");
    }
  }
  httplib::Client probe(o.host, o.port);
  probe.set_read_timeout(30, 0);
  VITRINE_ASSIGN_OR_RETURN(std::optional<Scrape> before, ScrapeMetrics(probe));

  LoadReport report;
  for (const std::string& e : o.endpoints) report.endpoints[e];
  std::mutex mu;
  std::atomic<int64_t> next{0};
  const auto start = Clock::now();
  const auto deadline = start + o.time_limit;
  std::atomic<bool> timed_out{false};
  auto worker = [&] {
    httplib::Client c(o.host, o.port);
    c.set_keep_alive(true);
    c.set_tcp_nodelay(true);  // a POST's headers and body go out as two writes
    c.set_read_timeout(30, 0);
    std::map<std::string, EndpointLoad> local;
    for (int64_t i = next++; i < o.requests; i = next++) {
      if (Clock::now() >= deadline) {
        timed_out = true;
        break;
      }
      const std::string& endpoint = o.endpoints[static_cast<size_t>(i) % o.endpoints.size()];
      // A fixed, spread-out walk over the ids (7919 is prime).
      const size_t pick = static_cast<size_t>(i) * 7919;
      const auto t0 = Clock::now();
      auto send = [&]() -> httplib::Result {
        if (endpoint == "similar") {
          const std::string& item = o.items[pick % o.items.size()];
          return c.Get(("/similar/" + PercentEncode(item) +
                        "?k=" + std::to_string(o.k)).c_str());
        }
        nlohmann::json body{{"k", o.k}};
        if (!o.users.empty()) {
          body["user"] = o.users[pick % o.users.size()];
        } else {
          body["history"] = {o.items[pick % o.items.size()], o.items[(pick + 1) % o.items.size()],
                             o.items[(pick + 2) % o.items.size()]};
        }
        return c.Post("/recommend", body.dump(), "application/json");
      };
      const httplib::Result r = send();
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      EndpointLoad& l = local[endpoint];
      ++l.sent;
      ++l.by_status[r ? r->status : -1];
      if (r) l.latency_s.push_back(s);
    }
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [e, l] : local) {
      EndpointLoad& total = report.endpoints[e];
      total.sent += l.sent;
      for (const auto& [st, n] : l.by_status) total.by_status[st] += n;
      total.latency_s.insert(total.latency_s.end(), l.latency_s.begin(), l.latency_s.end());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < o.concurrency; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report.time_limited = timed_out.load();

  // The server counts a request once its answer is written, so the last
  // answers can reach the client before they are counted: scrape until
  // every endpoint's count covers what was sent, for at most 2 s (a server
  // that really counted fewer is then reported as it is).
  for (auto& [e, l] : report.endpoints) std::sort(l.latency_s.begin(), l.latency_s.end());
  report.server_metrics = before.has_value();
  if (!before) return report;
  Scrape after;
  for (int attempt = 0;; ++attempt) {
    VITRINE_ASSIGN_OR_RETURN(std::optional<Scrape> scrape, ScrapeMetrics(probe));
    if (!scrape) return Status::IOError("GET /metrics: status 404 after the load test");
    after = std::move(*scrape);
    bool covered = true;
    for (const auto& [e, l] : report.endpoints) {
      covered = covered && after.count[e] - before->count[e] >= l.sent;
    }
    if (covered || attempt >= 40) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& [e, l] : report.endpoints) {
    l.server_count = after.count[e] - before->count[e];
    const auto& a = after.buckets[e];
    const auto& b = before->buckets[e];
    for (size_t j = 0; j < a.size(); ++j) {
      const int64_t was = j < b.size() ? b[j].second : 0;
      l.server_buckets.push_back({a[j].first, a[j].second - was});
    }
  }
  return report;
}

}  // namespace vitrine
