#include "serve/metrics.h"

#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace vitrine {
namespace {

// A sample value: integers as integers, other numbers with enough digits
// to read back; Prometheus spells infinities +Inf / -Inf and NaN NaN.
std::string Number(double v) {
  if (v != v) return "NaN";
  if (v == 1.0 / 0.0) return "+Inf";
  if (v == -1.0 / 0.0) return "-Inf";
  // The shortest spelling that reads back exactly ("0.005", not
  // "0.0050000000000000001"): bucket bounds are label values, and scrapers
  // and dashboards match them as text.
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void Header(std::string_view name, std::string_view type, std::string_view help,
            std::string* out) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Sample(std::string_view name, std::string_view labels, double value, std::string* out) {
  out->append(name);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  out->append(" ").append(Number(value)).append("\n");
}

// Label values are route names and status codes, but escape anyway: a
// backslash, a double quote and a newline must be escaped in the format.
std::string Label(std::string_view key, std::string_view value) {
  std::string out(key);
  out += "=\"";
  for (const char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

void LatencyHistogram::Observe(double value) {
  size_t b = 0;
  while (b < bounds_.size() && value > bounds_[b]) ++b;
  ++counts_[b];
  sum_ += value;
  ++count_;
}

void LatencyHistogram::Render(std::string_view name, std::string_view labels,
                              std::string* out) const {
  const std::string prefix = labels.empty() ? "" : std::string(labels) + ",";
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= bounds_.size(); ++b) {
    cumulative += counts_[b];
    const std::string le = b < bounds_.size() ? Number(bounds_[b]) : "+Inf";
    Sample(std::string(name) + "_bucket", prefix + Label("le", le), static_cast<double>(cumulative),
           out);
  }
  Sample(std::string(name) + "_sum", labels, sum_, out);
  Sample(std::string(name) + "_count", labels, static_cast<double>(count_), out);
}

void ServerMetrics::ObserveRequest(std::string_view endpoint, int status,
                                   std::optional<double> seconds) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(endpoint), status}];
  if (seconds) latency_[std::string(endpoint)].Observe(*seconds);
}

void ServerMetrics::AddEventsAccepted(int64_t n) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  events_accepted_ += n;
}

void ServerMetrics::AddEventsRejected(int64_t n) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  events_rejected_ += n;
}

void ServerMetrics::ObserveEventLogAppend(double seconds) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  event_log_append_.Observe(seconds);
}

void ServerMetrics::ObserveStateStore(double seconds) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  state_store_.Observe(seconds);
}

void ServerMetrics::ObserveAnswer(std::string_view endpoint, int64_t pool, double rerank_seconds) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(mu_);
  const std::string name(endpoint);
  pool_size_.try_emplace(name, LatencyHistogram::kPoolSizeBounds)
      .first->second.Observe(static_cast<double>(pool));
  rerank_[name].Observe(rerank_seconds);
}

std::string ServerMetrics::Render(const Gauges& g) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  Header("vitrine_http_requests_total", "counter",
         "HTTP requests answered, by endpoint (route) and status code.", &out);
  for (const auto& [key, n] : requests_) {
    Sample("vitrine_http_requests_total",
           Label("endpoint", key.first) + "," + Label("status", std::to_string(key.second)),
           static_cast<double>(n), &out);
  }
  Header("vitrine_http_request_duration_seconds", "histogram",
         "Time from routing a request to writing its answer, by endpoint.", &out);
  for (const auto& [endpoint, h] : latency_) {
    h.Render("vitrine_http_request_duration_seconds", Label("endpoint", endpoint), &out);
  }
  Header("vitrine_candidate_pool_size", "histogram",
         "Candidates scored per answer before rules, caps and diversity, by endpoint.", &out);
  for (const auto& [endpoint, h] : pool_size_) {
    h.Render("vitrine_candidate_pool_size", Label("endpoint", endpoint), &out);
  }
  Header("vitrine_rerank_duration_seconds", "histogram",
         "Time ordering an answer's candidate pool (ranker, rules, caps, pins, diversity), by "
         "endpoint.",
         &out);
  for (const auto& [endpoint, h] : rerank_) {
    h.Render("vitrine_rerank_duration_seconds", Label("endpoint", endpoint), &out);
  }
  Header("vitrine_events_accepted_total", "counter", "Events accepted by POST /events.", &out);
  Sample("vitrine_events_accepted_total", "", static_cast<double>(events_accepted_), &out);
  Header("vitrine_events_rejected_total", "counter",
         "Events in POST /events batches refused as a whole (a bad event, or a failed log write).",
         &out);
  Sample("vitrine_events_rejected_total", "", static_cast<double>(events_rejected_), &out);
  Header("vitrine_event_log_append_duration_seconds", "histogram",
         "One durable append to the event log, fsync included.", &out);
  event_log_append_.Render("vitrine_event_log_append_duration_seconds", "", &out);
  Header("vitrine_event_log_events", "gauge", "Events in the event log since the server started.",
         &out);
  Sample("vitrine_event_log_events", "", static_cast<double>(g.events_logged), &out);
  Header("vitrine_bundle_generation", "gauge",
         "Generation of the bundle being served (1 at start, +1 per reload).", &out);
  Sample("vitrine_bundle_generation", "", static_cast<double>(g.bundle_generation), &out);
  Header("vitrine_bundle_items", "gauge", "Items in the bundle being served.", &out);
  Sample("vitrine_bundle_items", "", static_cast<double>(g.bundle_items), &out);
  Header("vitrine_bundle_users", "gauge", "Users in the bundle being served.", &out);
  Sample("vitrine_bundle_users", "", static_cast<double>(g.bundle_users), &out);
  Header("vitrine_bundle_load_seconds", "gauge", "Time the bundle being served took to load.",
         &out);
  Sample("vitrine_bundle_load_seconds", "", g.bundle_load_seconds, &out);
  Header("vitrine_session_users", "gauge", "Users with live events in the session store.", &out);
  Sample("vitrine_session_users", "", static_cast<double>(g.session_users), &out);
  if (g.state_store_up >= 0) {
    Header("vitrine_state_store_up", "gauge",
           "1 while the shared state store (Redis) answers, 0 while it is down.", &out);
    Sample("vitrine_state_store_up", "", static_cast<double>(g.state_store_up), &out);
    Header("vitrine_state_store_round_trips_total", "counter",
           "Calls to the shared state store that got answers.", &out);
    Sample("vitrine_state_store_round_trips_total", "",
           static_cast<double>(g.state_store_round_trips), &out);
    Header("vitrine_state_store_failures_total", "counter",
           "Calls to the shared state store that failed (down, timeout or error reply).", &out);
    Sample("vitrine_state_store_failures_total", "", static_cast<double>(g.state_store_failures),
           &out);
    Header("vitrine_state_store_duration_seconds", "histogram",
           "One call to the shared state store, a failed one included.", &out);
    state_store_.Render("vitrine_state_store_duration_seconds", "", &out);
  }
  Header("vitrine_http_open_connections", "gauge", "Open client connections.", &out);
  Sample("vitrine_http_open_connections", "", static_cast<double>(g.open_connections), &out);
  Header("vitrine_http_refused_connections_total", "counter",
         "Connections refused over the connection limits (503 and 429).", &out);
  Sample("vitrine_http_refused_connections_total", "", static_cast<double>(g.refused_connections),
         &out);
  Header("vitrine_uptime_seconds", "gauge", "Time since the server started.", &out);
  Sample("vitrine_uptime_seconds", "", g.uptime_seconds, &out);
  Header("vitrine_process_resident_memory_bytes", "gauge", "Resident set size of the process.",
         &out);
  Sample("vitrine_process_resident_memory_bytes", "", static_cast<double>(g.resident_memory_bytes),
         &out);
  return out;
}

int64_t ProcessResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace vitrine
