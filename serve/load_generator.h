// The load generator behind `vitrine bench --server URL`: a fixed number of
// requests to a running `vitrine serve` (similar-items and recommend, mixed
// evenly), from `concurrency` keep-alive clients, stopped early at a time
// bound. It reports per endpoint the requests sent, the answers by status,
// QPS and client-side latency quantiles, and the server's own view of the
// same requests: /metrics scraped before and after, its request counters
// and latency histogram differenced (docs/serving.md, "Load test").
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int64_t requests = 2000;  // in total, over the endpoints
  int concurrency = 4;
  std::chrono::milliseconds time_limit{60000};
  std::vector<std::string> endpoints = {"similar", "recommend"};
  std::vector<std::string> items;  // ids to ask about (similar; recommend histories)
  std::vector<std::string> users;  // ids to recommend for (empty: 3-item histories)
  int k = 10;
};

struct EndpointLoad {
  int64_t sent = 0;
  std::map<int, int64_t> by_status;  // -1: no answer (connection error, timeout)
  std::vector<double> latency_s;     // per answered request, sorted
  double Quantile(double q) const;   // of latency_s; NaN if empty
  // The server's view, from the difference of two /metrics scrapes.
  int64_t server_count = 0;                  // vitrine_http_requests_total, all statuses
  std::vector<std::pair<double, int64_t>> server_buckets;  // (le, cumulative count)
  double ServerQuantile(double q) const;     // the bucket bound holding quantile q
};

struct LoadReport {
  std::map<std::string, EndpointLoad> endpoints;
  double seconds = 0;
  bool time_limited = false;  // stopped by the time bound before every request was sent
  // The server answered /metrics (not `serve --metrics off`): the
  // server_* fields are filled.
  bool server_metrics = true;
};

// `s` with every byte outside RFC 3986's unreserved set written %XX: an
// id as one URL path segment, or a query parameter's value.
std::string PercentEncode(std::string_view s);

// InvalidArgument for bad options (no items, requests or concurrency < 1,
// an unknown endpoint); IOError when the server cannot be reached or its
// /metrics fails (a 404, metrics off, leaves the server's view out).
Result<LoadReport> RunLoad(const LoadOptions& o);

}  // namespace vitrine
