// ServerMetrics: what `GET /metrics` exposes, in Prometheus' text exposition
// format (version 0.0.4): counters and latency histograms the server feeds
// as it answers, and the gauges it reads when scraped. Names follow the
// Prometheus conventions: the `vitrine_` prefix, base units (`_seconds`,
// `_bytes`) and `_total` on counters. docs/serving.md lists every series.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vitrine {

// Cumulative-bucket histogram over fixed upper bounds: seconds by default.
class LatencyHistogram {
 public:
  // From 0.25 ms to 10 s, about 2.5x apart: a cached similar-items answer
  // is well under a millisecond, a cold recommend with the ranker a few.
  static constexpr std::array<double, 14> kBounds = {0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                     0.01,    0.025,  0.05,  0.1,    0.25,
                                                     0.5,     1,      2.5,   10};
  // Candidate pool sizes: k alone up to the largest pools a request may ask for.
  static constexpr std::array<double, 10> kPoolSizeBounds = {10,  25,   50,   100,  250,
                                                             500, 1000, 2500, 5000, 10000};
  LatencyHistogram() : LatencyHistogram(kBounds) {}
  // `bounds` ascending; it must outlive the histogram (a static array).
  explicit LatencyHistogram(std::span<const double> bounds)
      : bounds_(bounds), counts_(bounds.size() + 1, 0) {}
  void Observe(double value);
  // `name`_bucket / _sum / _count lines with `labels` ("endpoint=\"x\"", or "").
  void Render(std::string_view name, std::string_view labels, std::string* out) const;

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  // Off (`serve --metrics off`), every Observe/Add returns at once; set
  // before the server takes requests.
  void Disable() { enabled_ = false; }
  bool enabled() const { return enabled_; }

  // One answered request. `endpoint` is the route's name ("similar",
  // "recommend", ...; "other" for no route); `seconds` is empty when the
  // request's start is unknown (httplib refused it before routing).
  void ObserveRequest(std::string_view endpoint, int status, std::optional<double> seconds);
  void AddEventsAccepted(int64_t n);
  void AddEventsRejected(int64_t n);
  void ObserveEventLogAppend(double seconds);  // one durable append, fsync included
  void ObserveStateStore(double seconds);      // one call to the shared state store
  // One answer's candidate pool and the time ordering it took (AnswerStats).
  void ObserveAnswer(std::string_view endpoint, int64_t pool, double rerank_seconds);

  // What the server reads at scrape time.
  struct Gauges {
    int64_t bundle_generation = 0;
    int64_t bundle_items = 0;
    int64_t bundle_users = 0;
    double bundle_load_seconds = 0;
    int64_t session_users = 0;
    int64_t open_connections = 0;
    int64_t refused_connections = 0;  // a counter, kept by HttpServer
    int64_t events_logged = 0;
    double uptime_seconds = 0;
    int64_t resident_memory_bytes = 0;
    // The shared state store (serve/redis_state.h); -1: none configured.
    int64_t state_store_up = -1;
    int64_t state_store_round_trips = 0;  // counters, kept by RedisState
    int64_t state_store_failures = 0;
  };
  std::string Render(const Gauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status) -> count
  std::map<std::string, LatencyHistogram> latency_;           // endpoint -> histogram
  LatencyHistogram event_log_append_;
  LatencyHistogram state_store_;
  std::map<std::string, LatencyHistogram> pool_size_;  // endpoint -> pool sizes
  std::map<std::string, LatencyHistogram> rerank_;     // endpoint -> rerank seconds
  int64_t events_accepted_ = 0;
  int64_t events_rejected_ = 0;
  bool enabled_ = true;
};

// The process's resident set size in bytes (/proc/self/statm), or 0 when
// it cannot be read.
int64_t ProcessResidentBytes();

}  // namespace vitrine
