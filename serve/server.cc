#include "serve/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/json_util.h"
#include "core/progress.h"
#include "core/pseudonym.h"
#include "engine/compiled_rules.h"
#include "engine/forget.h"
#include "rank/diversify.h"
#include "serve/access_log.h"
#include "serve/console_assets.h"
#include "serve/experiment.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/openapi_document.h"
#include "serve/request.h"
#include "serve/thumbnail.h"

namespace vitrine {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using namespace serve_internal;  // NOLINT: the server's own request translation

constexpr size_t kRuleCacheEntries = 128;
constexpr size_t kMaxErrorBytes = 1024;  // an error message, whatever it quotes
constexpr size_t kMinTokenBytes = 16;
// File descriptors at or above FD_SETSIZE make httplib 0.11 (built with
// select()) answer 500, so connections stay well below it.
constexpr int kMaxConnectionsLimit = 900;

// One loaded bundle and what is cached for it; replaced as a whole on reload.
struct Loaded {
  std::shared_ptr<const Engine> engine;
  fs::path path;
  int64_t generation = 0;
  double load_seconds = 0;  // Engine::Open's wall time
  std::mutex mu;  // guards rules
  std::unordered_map<std::string, std::shared_ptr<const CompiledRules>> rules;
};

int HttpStatus(const Status& st) {
  switch (st.code()) {
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kInvalidArgument:
      return 400;
    case Status::Code::kUnsupported:  // valid, but this bundle cannot answer it
      return 422;
    default:
      return 500;
  }
}

// dump() with `replace`: a string that is not UTF-8 (it cannot come from a
// parsed body, but could from a URL or an engine message) becomes U+FFFD
// instead of an exception and a 500.
void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void ReplyError(httplib::Response& res, int status, std::string msg) {
  if (msg.size() > kMaxErrorBytes) msg = Clip(msg, kMaxErrorBytes);
  Reply(res, status, json{{"error", std::move(msg)}, {"status", status}});
}

void ReplyError(httplib::Response& res, const Status& st) {
  ReplyError(res, HttpStatus(st), st.message());
}

struct Prepared {
  QueryParams q;
  std::shared_ptr<const CompiledRules> rules;
  bool explain = false;
};

// Rules compiled against one bundle are shared by the requests that send the
// same rule text (a storefront sends the same few rule sets all day).
Result<std::shared_ptr<const CompiledRules>> CachedRules(Loaded& loaded, const std::string& text) {
  {
    std::lock_guard<std::mutex> lock(loaded.mu);
    auto it = loaded.rules.find(text);
    if (it != loaded.rules.end()) return it->second;
  }
  // Rule errors are the client's: 400 whatever the underlying code.
  auto compiled = CompileRules(*loaded.engine, text, "rules");
  if (!compiled.ok()) return Bad(compiled.status().message());
  auto c = std::make_shared<const CompiledRules>(std::move(*compiled));
  std::lock_guard<std::mutex> lock(loaded.mu);
  if (loaded.rules.size() >= kRuleCacheEntries) loaded.rules.clear();
  loaded.rules.emplace(text, c);
  return c;
}

Result<Prepared> Prepare(Loaded& loaded, const QuerySpec& spec) {
  Prepared p;
  p.q.k = spec.k;
  p.q.pool = spec.pool;
  p.q.weights = spec.weights;
  p.q.context = spec.ctx;
  p.explain = spec.explain;
  p.q.explain = spec.explain;
  VITRINE_RETURN_IF_ERROR(ParseDiversity(spec.diversity, &p.q));
  for (const auto& [name, w] : spec.weights) {
    const auto& layout = loaded.engine->layout();
    if (std::none_of(layout.begin(), layout.end(),
                     [&name = name](const BlockLayout& b) { return b.name == name; })) {
      std::string names;
      for (const auto& b : layout) names += (names.empty() ? "" : ", ") + b.name;
      return Bad("weights: unknown block '" + Clip(name) + "' (blocks: " + names + ")");
    }
  }
  for (const auto& id : spec.exclude) {
    VITRINE_ASSIGN_OR_RETURN(int32_t i, loaded.engine->FindItem(id));
    p.q.exclude.push_back(i);
  }
  if (!spec.rules.empty()) {
    VITRINE_ASSIGN_OR_RETURN(p.rules, CachedRules(loaded, spec.rules));
    p.rules->ApplyTo(&p.q);
  }
  return p;
}

// "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "localhost". Other
// names are not trusted to resolve to loopback.
// A user id the server may store (in the event, impression and curation
// logs, the session stores): one that POST /forget can erase later
// (engine/forget.h), so no stored line is beyond its reach.
Status CheckStoredUser(const json& v) {
  VITRINE_RETURN_IF_ERROR(CheckId(v, "user"));
  Status st = CheckForgettableId(v.get<std::string>());
  return st.ok() ? st : Bad("'user': " + st.message());
}

// The advisor's pins placed into an answer (rank/diversify.h's ApplyPins,
// as PIN rules are): a pinned item keeps its position whatever the ranking.
std::vector<Hit> PinHits(std::vector<Hit> hits, const std::vector<PinnedItem>& pins, int k) {
  std::vector<int32_t> ranked;
  std::map<int32_t, Hit> by_item;
  for (Hit& h : hits) {
    ranked.push_back(h.item);
    by_item[h.item] = std::move(h);
  }
  std::vector<Hit> out;
  for (const int32_t item : ApplyPins(ranked, pins, k)) {
    auto it = by_item.find(item);
    Hit h;
    if (it != by_item.end()) h = std::move(it->second);
    h.item = item;
    for (const PinnedItem& p : pins) {
      if (p.item == item) {
        h.pinned = true;
        h.reason = "pinned by the client advisor";
      }
    }
    out.push_back(std::move(h));
  }
  return out;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr a4{};
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  return false;
}

// The host part of a Host header: "127.0.0.1:8080" -> "127.0.0.1",
// "[::1]:8080" -> "::1", "localhost" -> "localhost".
std::string HostOfHostHeader(std::string_view h) {
  if (h.starts_with("[")) {
    const size_t end = h.find(']');
    return std::string(end == std::string_view::npos ? h.substr(1) : h.substr(1, end - 1));
  }
  const size_t colon = h.find(':');
  return std::string(colon == std::string_view::npos ? h : h.substr(0, colon));
}

// Equal without an early exit: the time depends on the length of `secret`
// only, never on how much of it `given` matches.
bool ConstantTimeEquals(std::string_view given, std::string_view secret) {
  volatile unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < secret.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff = diff | (g ^ static_cast<unsigned char>(secret[i]));
  }
  return diff == 0;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "application/json", "application/json; charset=utf-8": yes. Anything a
// browser may send cross-origin without a preflight (text/plain, forms):
// no.
bool IsJsonMediaType(std::string_view content_type) {
  const std::string_view type = Trim(content_type.substr(0, content_type.find(';')));
  return Lower(type) == "application/json";
}

// A URL decodes to arbitrary bytes; ids and messages must be UTF-8.
bool UrlIsUtf8(const httplib::Request& req) {
  if (FindInvalidUtf8(req.path) != std::string_view::npos) return false;
  for (const auto& [key, value] : req.params) {
    if (FindInvalidUtf8(key) != std::string_view::npos) return false;
    if (FindInvalidUtf8(value) != std::string_view::npos) return false;
  }
  return true;
}

bool IsWithin(const fs::path& path, const fs::path& root) {
  auto r = root.begin(), p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

double MillisSince(std::chrono::steady_clock::time_point t0) { return SecondsSince(t0) * 1000; }

// At most `n` requests compute at once (ServerOptions::threads); the others
// wait for a slot, for a bounded time.
class ComputeSlots {
 public:
  explicit ComputeSlots(int n) : free_(n) {}
  bool AcquireFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return free_ > 0; })) return false;
    --free_;
    return true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

// Who may call a route. kAdmin routes change the server's state (events,
// the bundle; later curation and forget): they need the admin token, or,
// without one, a loopback bind and a loopback Host header.
enum class Access { kPublic, kAdmin };

// "demo/bundle/" -> "bundle": what /health shows of a path (no filesystem
// layout to anyone who can reach the port).
std::string DisplayName(const fs::path& path) {
  fs::path p = path.lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

struct Server::Impl {
  using Handler = void (Impl::*)(const httplib::Request&, httplib::Response&);
  struct Route {
    const char* method;  // "GET" or "POST"
    const char* pattern;
    Handler handler;
    Access access;
    bool computes;  // takes one of the `threads` compute slots
    const char* name;  // the endpoint label of /metrics
    const char* documented_as;  // its path in docs/openapi.json
  };

  ServerOptions options;
  fs::path bundle_root;  // canonical
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<ComputeSlots> slots;
  std::unique_ptr<EventLog> log;
  std::unique_ptr<SessionStore> sessions;
  std::unique_ptr<RedisState> state;  // null: sessions live in this process only
  std::optional<Pseudonymizer> pseudonyms;  // session-only serving
  int port = -1;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<int64_t> requests{0};
  std::atomic<bool> draining{false};
  std::vector<std::pair<std::string, std::string>> routes;  // (method, documented path)
  std::vector<std::pair<const Route*, std::regex>> route_patterns;  // for Admit
  ServerMetrics metrics;
  std::unique_ptr<AccessLog> access_log;  // null: no access log
  std::unique_ptr<ImpressionLog> impressions;  // null: no impression log
  std::unique_ptr<CurationStore> curation;     // null: no curation log
  std::optional<Experiment> experiment;   // --experiment
  std::string request_id_prefix;          // per process: ids stay unique across restarts
  std::atomic<uint64_t> next_request_id{0};

  // Events received since the build, by item row of the loaded bundle, for
  // live trends (engine/trend.h). This replica's events only: replicas do
  // not share them (docs/serving.md). Lock order: forget_mu, reload_mu, live_mu, mu.
  std::mutex live_mu;
  ItemActivity live_activity;

  mutable std::mutex mu;  // guards `loaded` (the pointer, not what it points to)
  std::shared_ptr<Loaded> loaded;
  std::mutex reload_mu;  // one reload at a time
  std::mutex forget_mu;  // one forget at a time (it rewrites the bundle, then reloads)

  std::shared_ptr<Loaded> Current() const {
    std::lock_guard<std::mutex> lock(mu);
    return loaded;
  }

  // The id under which a request's user is stored and looked up: the
  // pseudonym in session-only serving, else the id itself.
  std::string StoredUserId(const std::string& user) const {
    return pseudonyms ? pseudonyms->Of(user) : user;
  }

  // The user's recent events: from the shared store when there is one and
  // it answers, else from this replica's own memory.
  std::vector<SessionEvent> RecentEvents(const std::string& user) {
    if (state) {
      const auto t0 = std::chrono::steady_clock::now();
      auto shared = state->Recent(user);
      metrics.ObserveStateStore(SecondsSince(t0));
      if (shared.ok()) return std::move(*shared);
    }
    return sessions->Recent(user);
  }

  // Makes accepted events visible to the next answers: in this replica's
  // memory, and in the shared store for the other replicas. Returns whether
  // the shared store took them (true when there is none).
  bool RecordEvents(const std::vector<std::pair<std::string, SessionEvent>>& events) {
    for (const auto& [user, e] : events) sessions->Add(user, e);
    if (!state) return true;
    const auto t0 = std::chrono::steady_clock::now();
    const Status st = state->Append(events);
    metrics.ObserveStateStore(SecondsSince(t0));
    return st.ok();
  }

  bool StateStoreUp() const { return !state || state->health().up; }

  Status Reload(const fs::path& requested) {
    std::lock_guard<std::mutex> reload_lock(reload_mu);
    return ReloadLocked(requested);
  }

  // Reload with reload_mu held by the caller.
  Status ReloadLocked(const fs::path& requested) {
    const auto old = Current();
    const fs::path path = requested.empty() ? old->path : requested;
    StageTimer timer("reload " + path.string());
    // The new engine loads while the old one keeps serving.
    const auto t0 = std::chrono::steady_clock::now();
    auto engine = Engine::Open(path, options.verify);
    if (!engine.ok()) {
      timer.Done("failed");
      return engine.status().WithContext("reload failed (still serving generation " +
                                         std::to_string(old->generation) + ")");
    }
    auto next = std::make_shared<Loaded>();
    next->engine = std::shared_ptr<const Engine>(std::move(*engine));
    next->path = path;
    next->generation = old->generation + 1;
    next->load_seconds = MillisSince(t0) / 1000.0;
    {
      // Live trend events follow their items into the new bundle's rows.
      // Those up to the new bundle's newest hour are taken to be in it (a
      // rebuild from the event log), so they are not counted twice.
      std::lock_guard<std::mutex> live_lock(live_mu);
      const Catalog& before = old->engine->catalog();
      std::vector<int32_t> remap(static_cast<size_t>(before.size()), -1);
      for (int32_t i = 0; i < before.size(); ++i) {
        if (auto to = next->engine->catalog().ids.Find(before.ids.id(i))) remap[i] = *to;
      }
      live_activity = live_activity.Remapped(remap, next->engine->activity().newest_hour());
      std::lock_guard<std::mutex> lock(mu);
      loaded = next;
    }
    timer.Done("generation " + std::to_string(next->generation));
    return Status::OK();
  }

  // The resolved path for POST /reload {"bundle": requested}, or nullopt if
  // it is not inside the bundle root (whether or not it exists).
  std::optional<fs::path> ResolveInRoot(const std::string& requested) const {
    const fs::path joined = (bundle_root / fs::path(requested)).lexically_normal();
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(joined, ec);
    if (ec || !IsWithin(canonical, bundle_root)) return std::nullopt;
    return joined;
  }

  bool Authorize(const httplib::Request& req, httplib::Response& res) const;
  httplib::Server::HandlerResponse Admit(const httplib::Request& req, httplib::Response& res);
  void Dispatch(const Route& route, const httplib::Request& req, httplib::Response& res);
  void Routes();
  void HandleSimilar(const httplib::Request& req, httplib::Response& res);
  void HandleRecommend(const httplib::Request& req, httplib::Response& res);
  void HandleEvents(const httplib::Request& req, httplib::Response& res);
  void HandleAudience(const httplib::Request& req, httplib::Response& res);
  void HandleTrending(const httplib::Request& req, httplib::Response& res);
  void HandleReload(const httplib::Request& req, httplib::Response& res);
  void HandleForget(const httplib::Request& req, httplib::Response& res);
  void HandleHealth(const httplib::Request& req, httplib::Response& res);
  void HandleReady(const httplib::Request& req, httplib::Response& res);
  void HandleOpenApi(const httplib::Request& req, httplib::Response& res);
  void HandleMetrics(const httplib::Request& req, httplib::Response& res);
  void HandleComplete(const httplib::Request& req, httplib::Response& res);
  void HandleConsole(const httplib::Request& req, httplib::Response& res);
  void HandleItemImage(const httplib::Request& req, httplib::Response& res);
  void HandleClient(const httplib::Request& req, httplib::Response& res);
  void HandleCuration(const httplib::Request& req, httplib::Response& res);
  // Appends an answer's items to the impression log, if there is one. A
  // failed write is reported on stderr and never fails the answer.
  void LogImpression(const char* endpoint, const std::string& user, const std::string& variant,
                     const Engine& engine, const std::vector<Hit>& hits);
};

namespace {
// The request this connection thread is answering, from routing (Admit) to
// the access hook that runs after its answer is written: httplib runs both
// on the connection's thread, one request at a time.
struct RequestTrace {
  std::optional<std::chrono::steady_clock::time_point> start;
  const char* endpoint = "other";
  std::string request_id;
  std::optional<int64_t> k;           // set by the handlers that take one
  std::optional<int64_t> generation;  // the bundle generation that answered
  std::optional<std::string> variant; // the experiment's variant of the user
};

// A client's X-Request-Id is kept when it is 1-64 characters of
// [A-Za-z0-9._-] (it goes into logs: nothing that could forge a line).
bool IsRequestId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}
thread_local RequestTrace current_request;
}  // namespace

void Server::Impl::LogImpression(const char* endpoint, const std::string& user,
                                 const std::string& variant, const Engine& engine,
                                 const std::vector<Hit>& hits) {
  if (!impressions || hits.empty()) return;
  Impression im;
  im.request_id = current_request.request_id;
  im.user = user;
  im.variant = variant;
  im.endpoint = endpoint;
  im.timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  im.items.reserve(hits.size());
  for (const Hit& h : hits) im.items.push_back(engine.catalog().ids.id(h.item));
  Status st = impressions->Append(im);
  if (!st.ok()) LogInfo("impression log: %s", st.message().c_str());
}

void Server::Impl::HandleMetrics(const httplib::Request&, httplib::Response& res) {
  if (!metrics.enabled()) return ReplyError(res, 404, "metrics are off (serve --metrics off)");
  const auto cur = Current();
  ServerMetrics::Gauges g;
  g.bundle_generation = cur->generation;
  g.bundle_items = cur->engine->catalog().size();
  g.bundle_users = cur->engine->users().size();
  g.bundle_load_seconds = cur->load_seconds;
  g.session_users = static_cast<int64_t>(sessions->num_users());
  if (state) {
    const RedisState::Health h = state->health();
    g.state_store_up = h.up ? 1 : 0;
    g.state_store_round_trips = static_cast<int64_t>(h.round_trips);
    g.state_store_failures = static_cast<int64_t>(h.failures);
  }
  g.open_connections = http->open_connections();
  g.refused_connections = http->refused_connections();
  g.events_logged = log ? static_cast<int64_t>(log->appended()) : 0;
  g.uptime_seconds = MillisSince(started) / 1000.0;
  g.resident_memory_bytes = ProcessResidentBytes();
  res.status = 200;
  res.set_content(metrics.Render(g), "text/plain; version=0.0.4; charset=utf-8");
}

// Readiness: the server binds only after its bundle has loaded, so nothing
// can ask it while it loads; a reload keeps the old bundle answering, so it
// stays ready. A drain (SIGTERM) turns it off, and so does a state store
// that is down when the options say it is required.
void Server::Impl::HandleReady(const httplib::Request&, httplib::Response& res) {
  const bool draining_now = draining.load();
  const bool state_down = options.state_required && !StateStoreUp();
  const bool ready = !draining_now && !state_down;
  json j{{"ready", ready}, {"generation", Current()->generation}};
  if (draining_now) {
    j["reason"] = "draining";
  } else if (state_down) {
    j["reason"] = "state store down";
  }
  Reply(res, ready ? 200 : 503, j);
}

// docs/openapi.json, compiled in (serve/CMakeLists.txt): the contract the
// running binary answers by.
void Server::Impl::HandleConsole(const httplib::Request& req, httplib::Response& res) {
  const std::string asset = req.matches[1];
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  if (asset == "/console.js") {
    res.set_content(kConsoleJs, "text/javascript; charset=utf-8");
  } else if (asset == "/console.css") {
    res.set_content(kConsoleCss, "text/css; charset=utf-8");
  } else {
    res.set_content(kConsoleHtml, "text/html; charset=utf-8");
  }
}

void Server::Impl::HandleItemImage(const httplib::Request& req, httplib::Response& res) {
  const auto cur = Current();
  const std::string item = req.matches[1];
  Status st = CheckIdText(item, "item");
  if (!st.ok()) return ReplyError(res, st);
  auto row = cur->engine->FindItem(item);
  if (!row.ok()) return ReplyError(res, row.status());
  auto png = ThumbnailPng(cur->path / bundle_file::kThumbnails, *row);
  if (!png.ok()) {
    if (png.status().code() != Status::Code::kNotFound) {
      LogInfo("GET /items/%s/image: %s", Clip(item).c_str(), png.status().message().c_str());
      return ReplyError(res, 500, "the bundle's thumbnails cannot be read");
    }
    return ReplyError(res, png.status());
  }
  res.status = 200;
  res.set_header("Cache-Control", "private, max-age=300");
  res.set_content(std::move(*png), "image/png");
}

// A client as the console shows them: their history (training history and
// live events, newest first, at most max_history) with each item's title,
// brand, category and price, and what advisors decided for them.
void Server::Impl::HandleClient(const httplib::Request& req, httplib::Response& res) {
  const auto cur = Current();
  const Engine& engine = *cur->engine;
  const std::string client = req.matches[1];
  Status st = CheckStoredUser(json(client));
  if (!st.ok()) return ReplyError(res, st);
  const std::string user = StoredUserId(client);
  struct Seen {
    std::string item, event;
    int64_t time;
  };
  std::vector<Seen> seen;
  const std::optional<int32_t> known = engine.users().Find(user);
  if (const auto row = known) {
    const auto items = engine.UserHistory(*row);
    const auto times = engine.UserHistoryTimes(*row);
    for (size_t i = 0; i < items.size(); ++i) {
      seen.push_back(
          {engine.catalog().ids.id(items[i]), "history", i < times.size() ? times[i] : 0});
    }
  }
  for (const SessionEvent& e : RecentEvents(user)) seen.push_back({e.item, e.event, e.timestamp});
  std::stable_sort(seen.begin(), seen.end(),
                   [](const Seen& a, const Seen& b) { return a.time > b.time; });
  if (seen.size() > options.max_history) seen.resize(options.max_history);
  static const char* kColumns[] = {"title", "brand", "category", "price"};
  json history = json::array();
  for (const Seen& s : seen) {
    json h{{"item", s.item}, {"event", s.event}, {"ts", s.time}};
    if (auto row = engine.catalog().ids.Find(s.item)) {
      for (const char* c : kColumns) {
        if (const Column* col = engine.catalog().column(c)) {
          h[c] = engine.catalog().ValueString(*col, *row);
        }
      }
    }
    history.push_back(std::move(h));
  }
  json out{{"user", client}, {"known", known.has_value()}, {"history", std::move(history)}};
  if (curation) {
    const ClientCuration c = curation->Of(user);
    json pins = json::object();
    for (const auto& [item, position] : c.pins) pins[item] = position;
    out["curation"] = {
        {"approved", c.approved}, {"rejected", c.rejected}, {"never", c.never}, {"pins", pins}};
    json records = json::array();
    for (const CurationRecord& r : curation->History(user)) {
      json j{{"ts", r.timestamp}, {"item", r.item}, {"action", r.action}};
      if (r.position > 0) j["position"] = r.position;
      if (!r.advisor.empty()) j["advisor"] = r.advisor;
      if (!r.note.empty()) j["note"] = r.note;
      records.push_back(std::move(j));
    }
    out["records"] = std::move(records);
  }
  Reply(res, 200, out);
}

// An advisor's decision (serve/curation.h): {"user", "item", "action",
// "position"?, "advisor"?, "note"?}, or a shortlist: {"user", "action":
// "shortlist", "items": [...], "note"?}. Durable before it is answered.
void Server::Impl::HandleCuration(const httplib::Request& req, httplib::Response& res) {
  const auto cur = Current();
  if (!curation) {
    return ReplyError(res, 409, "the server keeps no curation log (start it with --curation-log)");
  }
  auto body = ParseObjectBody(req, options,
                              {"user", "item", "items", "action", "position", "advisor", "note"});
  if (!body.ok()) return ReplyError(res, body.status());
  Status st = body->contains("user") ? CheckStoredUser((*body)["user"]) : Bad("missing 'user'");
  if (st.ok() && !body->contains("action")) st = Bad("missing 'action'");
  if (st.ok() && !(*body)["action"].is_string()) st = Bad("'action' must be a string");
  if (!st.ok()) return ReplyError(res, st);
  CurationRecord base;
  base.user = StoredUserId((*body)["user"].get<std::string>());
  base.action = (*body)["action"].get<std::string>();
  base.timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (const char* field : {"advisor", "note"}) {
    if (!body->contains(field)) continue;
    const json& v = (*body)[field];
    if (!v.is_string() || v.get<std::string>().size() > 1000 ||
        !CheckIdText(v.get<std::string>(), field).ok()) {
      return ReplyError(res, 400,
                        std::string("'") + field +
                            "' must be a string of at most 1,000 characters without "
                            "control characters");
    }
    (std::string_view(field) == "advisor" ? base.advisor : base.note) = v.get<std::string>();
  }
  std::vector<std::string> items;
  if (base.action == "shortlist") {
    st = StringArrayField(*body, "items", static_cast<size_t>(options.max_k), "item ids", &items);
    if (st.ok() && items.empty()) st = Bad("a shortlist needs 'items': 1 or more item ids");
  } else if (!body->contains("item")) {
    st = Bad("missing 'item'");
  } else {
    st = CheckId((*body)["item"], "item");
    if (st.ok()) items.push_back((*body)["item"].get<std::string>());
  }
  if (!st.ok()) return ReplyError(res, st);
  if (body->contains("position")) {
    const json& p = (*body)["position"];
    if (!p.is_number_integer()) return ReplyError(res, 400, "'position' must be a whole number");
    base.position = p.get<int64_t>();
  }
  std::vector<CurationRecord> records;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!cur->engine->catalog().ids.Find(items[i])) {
      return ReplyError(res, 404, "unknown item '" + Clip(items[i]) + "'");
    }
    CurationRecord r = base;
    r.item = items[i];
    if (base.action == "shortlist") r.position = static_cast<int64_t>(i) + 1;
    st = CheckCurationRecord(r, options.max_k);
    if (!st.ok()) return ReplyError(res, 400, st.message());
    records.push_back(std::move(r));
  }
  st = curation->Record(records);
  if (!st.ok()) {
    LogInfo("POST /curation: %s", st.message().c_str());
    return ReplyError(res, 500, "the curation log write failed; nothing was recorded");
  }
  Reply(res, 200, json{{"recorded", records.size()}, {"action", base.action}});
}

void Server::Impl::HandleOpenApi(const httplib::Request&, httplib::Response& res) {
  res.status = 200;
  res.set_content(kOpenApiDocument, "application/json");
}

// Liveness: 200 whenever the process answers. A shared state store that is
// down makes the status "degraded" (answers come from local sessions), not
// a failure: restarting the replica would not bring Redis back. /health is
// public: the store's address and error go to the server's log, not here.
void Server::Impl::HandleHealth(const httplib::Request&, httplib::Response& res) {
  const auto cur = Current();
  json store{{"kind", state ? "redis" : "memory"}};
  bool store_up = true;
  if (state) {
    const RedisState::Health h = state->health();
    store_up = h.up;
    store["up"] = h.up;
    store["round_trips"] = h.round_trips;
    store["failures"] = h.failures;
  }
  json j{{"status", store_up ? "ok" : "degraded"},
         {"state_store", store},
         {"bundle", DisplayName(cur->path)},
         {"generation", cur->generation},
         {"items", cur->engine->catalog().size()},
         {"users", cur->engine->users().size()},
         {"session_users", sessions->num_users()},
         {"events_logged", log ? log->appended() : 0},
         {"event_log", log ? DisplayName(log->path()) : ""},
         {"impression_log", impressions ? DisplayName(impressions->path()) : ""},
         {"curation_log", curation ? DisplayName(curation->path()) : ""},
         {"impressions_logged", impressions ? impressions->appended() : 0},
         {"requests", requests.load()},
         {"connections", http->open_connections()},
         {"refused_connections", http->refused_connections()},
         {"uptime_s", MillisSince(started) / 1000.0}};
  Reply(res, 200, j);
}

void Server::Impl::HandleSimilar(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto cur = Current();  // this request's bundle, whatever reloads happen
  const std::string item = req.matches[1];
  Status st = CheckIdText(item, "item");
  if (!st.ok()) return ReplyError(res, st);
  QuerySpec spec;
  st = SpecFromQuery(req, options, &spec);
  if (!st.ok()) return ReplyError(res, st);
  auto prepared = Prepare(*cur, spec);
  if (!prepared.ok()) return ReplyError(res, prepared.status());
  current_request.k = spec.k;
  current_request.generation = cur->generation;
  AnswerStats stats;
  prepared->q.stats = &stats;
  auto hits = cur->engine->Similar(item, prepared->q);
  if (!hits.ok()) return ReplyError(res, hits.status());
  metrics.ObserveAnswer("similar", stats.pool, stats.rerank_seconds);
  LogImpression("similar", "", "", *cur->engine, *hits);
  Reply(res, 200,
        json{{"item", item},
             {"k", spec.k},
             {"results", HitsJson(*cur->engine, *hits, spec.explain)},
             {"request_id", current_request.request_id},
             {"generation", cur->generation},
             {"took_ms", MillisSince(t0)}});
}

// Complete the look (engine/complete_look.cc): one item per complementary
// category, as `vitrine complete`. `k` bounds the categories (default 4).
void Server::Impl::HandleComplete(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto cur = Current();
  const std::string item = req.matches[1];
  Status st = CheckIdText(item, "item");
  if (!st.ok()) return ReplyError(res, st);
  QuerySpec spec;
  spec.k = 4;
  st = SpecFromQuery(req, options, &spec, {"category_column"});
  if (!st.ok()) return ReplyError(res, st);
  CompleteRequest r;
  r.item = item;
  r.max_categories = spec.k;
  if (req.has_param("category_column")) {
    r.category_column = req.get_param_value("category_column");
    st = CheckIdText(r.category_column, "category_column");
    if (!st.ok()) return ReplyError(res, st);
  }
  auto prepared = Prepare(*cur, spec);
  if (!prepared.ok()) return ReplyError(res, prepared.status());
  r.query = prepared->q;
  current_request.k = spec.k;
  current_request.generation = cur->generation;
  auto slots = cur->engine->CompleteTheLook(r);
  if (!slots.ok()) return ReplyError(res, slots.status());
  std::vector<Hit> hits;
  for (const LookSlot& slot : *slots) hits.push_back(slot.hit);
  LogImpression("complete", "", "", *cur->engine, hits);
  json results = HitsJson(*cur->engine, hits, spec.explain);
  for (size_t i = 0; i < slots->size(); ++i) {
    results[i]["category"] = (*slots)[i].category;
    results[i]["lift"] = (*slots)[i].lift;
  }
  Reply(res, 200,
        json{{"item", item},
             {"results", std::move(results)},
             {"request_id", current_request.request_id},
             {"generation", cur->generation},
             {"took_ms", MillisSince(t0)}});
}

void Server::Impl::HandleRecommend(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto cur = Current();
  const Engine& engine = *cur->engine;
  auto body = ParseObjectBody(
      req, options,
      {"user", "history", "k", "context", "params", "weights", "rules", "diversity", "explain",
       "pool", "exclude", "filter_already_seen", "not_interested", "hide_brands",
       "negative_weight", "exploration", "explore_max_age_days", "intent", "replenishable",
       "category_column", "ranker"});
  if (!body.ok()) return ReplyError(res, body.status());
  Status st;
  std::optional<std::string> user, client_user;  // stored (maybe a pseudonym), as sent
  if (body->contains("user")) {
    st = CheckStoredUser((*body)["user"]);
    if (!st.ok()) return ReplyError(res, st);
    client_user = (*body)["user"].get<std::string>();
    user = StoredUserId(*client_user);
  }
  // The user's A/B variant sets the fields the request leaves out.
  const Variant* variant = nullptr;
  if (experiment && client_user) {
    variant = &experiment->Assign(*client_user);
    for (const auto& [key, value] : variant->fields.items()) {
      if (!body->contains(key)) (*body)[key] = value;
    }
    current_request.variant = variant->name;
  }
  QuerySpec spec;
  st = SpecFromJson(*body, options, &spec);
  if (!st.ok()) return ReplyError(res, st);
  bool use_ranker = true;
  if (body->contains("ranker")) {
    if (!(*body)["ranker"].is_boolean()) return ReplyError(res, 400, "'ranker' must be true or false");
    use_ranker = (*body)["ranker"].get<bool>();
  }
  std::vector<std::string> history;
  st = StringArrayField(*body, "history", options.max_history, "item ids", &history);
  if (!st.ok()) return ReplyError(res, st);
  const bool gift = body->contains("intent") && (*body)["intent"] == "gift";
  if (!user && !body->contains("history") && !gift) {
    return ReplyError(res, 400, "give 'user' or 'history' (item ids, most recent last)");
  }
  bool filter_seen = true;
  if (body->contains("filter_already_seen")) {
    if (!(*body)["filter_already_seen"].is_boolean()) {
      return ReplyError(res, 400, "'filter_already_seen' must be true or false");
    }
    filter_seen = (*body)["filter_already_seen"].get<bool>();
  }

  // Negative feedback given with the request (live feedback comes as
  // not_interested / hide_brand events), exploration and the intent.
  std::vector<std::string> not_interested, hide_brands, replenishable;
  double negative_weight = kDefaultNegativeWeight, exploration = 0, explore_max_age = 30;
  for (Status s : {StringArrayField(*body, "not_interested", options.max_history, "item ids",
                                    &not_interested),
                   StringArrayField(*body, "hide_brands", options.max_history, "brands",
                                    &hide_brands),
                   StringArrayField(*body, "replenishable", options.max_history, "categories",
                                    &replenishable),
                   NumberField(*body, "negative_weight", 0, kMaxNegativeWeight, &negative_weight),
                   NumberField(*body, "exploration", 0, 1, &exploration),
                   NumberField(*body, "explore_max_age_days", 0, 36500, &explore_max_age)}) {
    if (!s.ok()) return ReplyError(res, s);
  }

  Intent intent = Intent::kForYou;
  if (body->contains("intent")) {
    const json& v = (*body)["intent"];
    if (!v.is_string()) return ReplyError(res, 400, "'intent' must be a string");
    auto parsed = ParseIntent(v.get<std::string>());
    if (!parsed.ok()) return ReplyError(res, parsed.status());
    intent = *parsed;
  }
  std::string category_column = "category";
  if (body->contains("category_column")) {
    st = CheckId((*body)["category_column"], "category_column");
    if (!st.ok()) return ReplyError(res, st);
    category_column = (*body)["category_column"].get<std::string>();
  }
  auto prepared = Prepare(*cur, spec);
  if (!prepared.ok()) return ReplyError(res, prepared.status());

  RecommendRequest r;
  r.not_interested = std::move(not_interested);
  r.hidden_brands = std::move(hide_brands);
  r.negative_weight = static_cast<float>(negative_weight);
  r.intent = intent;
  r.replenishable_categories = std::move(replenishable);
  r.category_column = std::move(category_column);
  r.user = user;
  r.history = std::move(history);
  r.max_history = options.max_history;
  r.filter_already_seen = filter_seen;
  r.query = prepared->q;
  r.query.use_ranker = use_ranker;
  r.query.exploration = static_cast<float>(exploration);
  r.query.explore_max_age_days = explore_max_age;
  AnswerStats stats;
  r.query.stats = &stats;
  if (user) {
    for (const SessionEvent& e : RecentEvents(*user)) {
      r.recent.push_back({e.item, e.weight, FeedbackOfEvent(e.event), e.timestamp});
    }
  }
  // The client advisor's decisions for this client (serve/curation.h).
  std::vector<PinnedItem> pins;
  if (user && curation) {
    const ClientCuration c = curation->Of(*user);
    const auto cart = options.events.weights.find("cart");
    const float approved_weight = cart == options.events.weights.end() ? 1.0f : cart->second;
    for (const std::string& item : c.approved) {
      if (engine.catalog().ids.Find(item)) r.recent.push_back({item, approved_weight});
    }
    for (const auto* items : {&c.rejected, &c.never}) {
      for (const std::string& item : *items) {
        const auto row = engine.catalog().ids.Find(item);
        if (!row) continue;  // removed from the catalog since the decision
        r.query.exclude.push_back(*row);
        if (items == &c.never) r.not_interested.push_back(item);
      }
    }
    for (const auto& [item, position] : c.pins) {
      auto row = engine.catalog().ids.Find(item);
      if (row && position <= spec.k) {
        pins.push_back({*row, static_cast<int32_t>(position - 1)});
        r.query.exclude.push_back(*row);  // placed below, not ranked twice
      }
    }
    std::sort(pins.begin(), pins.end(),
              [](const PinnedItem& a, const PinnedItem& b) { return a.position < b.position; });
  }
  current_request.k = spec.k;
  current_request.generation = cur->generation;
  auto rec = engine.Recommend(r);
  if (!rec.ok()) return ReplyError(res, rec.status());
  if (!pins.empty()) rec->hits = PinHits(std::move(rec->hits), pins, spec.k);
  metrics.ObserveAnswer("recommend", stats.pool, stats.rerank_seconds);
  LogImpression("recommend", user.value_or(""), variant != nullptr ? variant->name : "", engine,
                rec->hits);
  json out{{"results", HitsJson(engine, rec->hits, spec.explain)},
           {"k", spec.k},
           {"source", rec->source},
           {"fallback", rec->fallback},
           {"request_id", current_request.request_id},
           {"generation", cur->generation},
           {"took_ms", MillisSince(t0)}};
  if (client_user) out["user"] = *client_user;
  if (variant != nullptr) out["variant"] = variant->name;
  Reply(res, 200, out);
}

void Server::Impl::HandleAudience(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto cur = Current();
  const Engine& engine = *cur->engine;
  auto body = ParseObjectBody(req, options,
                              {"item", "k", "context", "params", "rules", "opt_out",
                               "include_owners", "search"});
  if (!body.ok()) return ReplyError(res, body.status());
  Status st;
  if (!body->contains("item")) return ReplyError(res, 400, "give 'item' (an item id)");
  st = CheckId((*body)["item"], "item");
  if (!st.ok()) return ReplyError(res, st);
  QuerySpec spec;
  st = SpecFromJson(*body, options, &spec);
  if (!st.ok()) return ReplyError(res, st);
  AudienceRequest r;
  r.item = (*body)["item"].get<std::string>();
  st = StringArrayField(*body, "opt_out", options.max_history, "user ids", &r.opt_out);
  if (!st.ok()) return ReplyError(res, st);
  if (body->contains("include_owners")) {
    if (!(*body)["include_owners"].is_boolean()) {
      return ReplyError(res, 400, "'include_owners' must be true or false");
    }
    r.include_owners = (*body)["include_owners"].get<bool>();
  }
  if (body->contains("search")) {
    const json& v = (*body)["search"];
    auto search = ParseAudienceSearch(v.is_string() ? v.get<std::string>() : "");
    if (!search.ok()) return ReplyError(res, 400, "'search' must be \"auto\", \"exact\" or \"hnsw\"");
    r.search = *search;
  }
  auto prepared = Prepare(*cur, spec);
  if (!prepared.ok()) return ReplyError(res, prepared.status());
  r.query = prepared->q;
  current_request.k = spec.k;
  current_request.generation = cur->generation;
  // Live feedback counts: a shopper who just rejected the item, hid its
  // brand or bought it is not in its campaign.
  r.live_events = [this](const std::string& user) {
    std::vector<RecentEvent> out;
    for (const SessionEvent& e : RecentEvents(user)) {
      out.push_back({e.item, e.weight, FeedbackOfEvent(e.event), e.timestamp});
    }
    return out;
  };
  auto audience = engine.FindAudience(r);
  if (!audience.ok()) return ReplyError(res, audience.status());
  json members = json::array();
  for (const AudienceMember& m : audience->members) {
    members.push_back(
        {{"user", engine.users().id(m.user)}, {"score", m.score}, {"reason", m.reason}});
  }
  Reply(res, 200,
        json{{"item", r.item},
             {"k", spec.k},
             {"results", std::move(members)},
             {"eligible", audience->eligible},
             {"search", audience->search},
             {"generation", cur->generation},
             {"took_ms", MillisSince(t0)}});
}

void Server::Impl::HandleTrending(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  // The live events are numbered by the loaded bundle's item rows: hold
  // their lock from before Current() to the answer, so that a reload (which
  // renumbers them under this lock) cannot come between. Answers are short
  // (two passes over the buckets of the last two weeks).
  std::lock_guard<std::mutex> live_lock(live_mu);
  const auto cur = Current();
  const Engine& engine = *cur->engine;
  QuerySpec spec;
  Status st = SpecFromQuery(req, options, &spec, {"window", "by", "at"});
  if (!st.ok()) return ReplyError(res, st);
  TrendRequest r;
  if (req.has_param("window")) {
    auto hours = ParseTrendWindow(req.get_param_value("window"));
    if (!hours.ok()) return ReplyError(res, 400, "'window': " + hours.status().message());
    r.window_hours = *hours;
  }
  if (req.has_param("at")) {
    const std::string at = req.get_param_value("at");
    if (!ParseTimestamp(at, &r.at) || r.at <= 0) {
      return ReplyError(res, 400,
                        "'at': expected unix seconds or an ISO-8601 time after 1970, found '" +
                            Clip(at) + "'");
    }
  }
  auto prepared = Prepare(*cur, spec);
  if (!prepared.ok()) return ReplyError(res, prepared.status());
  r.query = prepared->q;
  current_request.k = spec.k;
  current_request.generation = cur->generation;
  AnswerStats stats;
  r.query.stats = &stats;
  r.live = &live_activity;
  auto now = engine.TrendHour(r);
  if (!now.ok()) return ReplyError(res, now.status());
  json out{{"window", TrendWindowName(r.window_hours)}, {"until", (*now + 1) * 3600}};
  if (req.has_param("by")) {
    r.by = req.get_param_value("by");
    auto groups = engine.GroupTrends(r);
    if (!groups.ok()) return ReplyError(res, groups.status());
    json results = json::array();
    for (const GroupTrend& g : *groups) {
      json top = json::array();
      for (int32_t i : g.top_items) top.push_back(engine.catalog().ids.id(i));
      results.push_back({{"value", g.value},
                         {"growth", g.ratio},
                         {"growth_low95", g.ratio_low},
                         {"growth_high95", g.ratio_high},
                         {"direction", g.direction},
                         {"events", g.counts.current_events},
                         {"events_before", g.counts.previous_events},
                         {"weighted", g.counts.current},
                         {"weighted_before", g.counts.previous},
                         {"items", g.items},
                         {"top_items", std::move(top)}});
    }
    out["by"] = r.by;
    out["results"] = std::move(results);
  } else {
    auto trending = engine.Trend(r);
    if (!trending.ok()) return ReplyError(res, trending.status());
    metrics.ObserveAnswer("trending", stats.pool, stats.rerank_seconds);
    json results = HitsJson(engine, trending->hits, spec.explain);
    for (size_t j = 0; j < results.size(); ++j) {
      const TrendCounts& c = trending->counts[j];
      results[j]["growth"] = c.growth();
      results[j]["current"] = c.current;
      results[j]["previous"] = c.previous;
    }
    out["results"] = std::move(results);
  }
  out["k"] = spec.k;
  out["generation"] = cur->generation;
  out["took_ms"] = MillisSince(t0);
  Reply(res, 200, out);
}

void Server::Impl::HandleEvents(const httplib::Request& req, httplib::Response& res) {
  const auto cur = Current();
  // Every way out of here that does not accept the batch counts its events
  // as rejected (once the body has parsed into events).
  struct Tally {
    ServerMetrics& metrics;
    int64_t events = 0;
    bool accepted = false;
    ~Tally() {
      if (accepted) {
        metrics.AddEventsAccepted(events);
      } else {
        metrics.AddEventsRejected(events);
      }
    }
  } tally{metrics};
  auto body = ParseBody(req, options);
  if (!body.ok()) return ReplyError(res, body.status());
  std::vector<json> inputs;
  if (body->is_array()) {
    if (body->empty() || body->size() > options.max_batch) {
      return ReplyError(res, 400,
                        "an array of 1 to " + std::to_string(options.max_batch) + " events");
    }
    inputs.assign(body->begin(), body->end());
  } else if (body->is_object()) {
    inputs.push_back(std::move(*body));
  } else {
    return ReplyError(res, 400, "the body must be an event object or an array of them");
  }
  tally.events = static_cast<int64_t>(inputs.size());
  // Validate the whole batch before anything is logged: all or none.
  std::vector<LoggedEvent> events;
  std::vector<float> weights;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (size_t n = 0; n < inputs.size(); ++n) {
    const json& in = inputs[n];
    const std::string where = inputs.size() > 1 ? "event " + std::to_string(n) + ": " : "";
    if (!in.is_object()) return ReplyError(res, 400, where + "an event must be a JSON object");
    Status st = CheckKeys(in, {"user", "item", "event", "ts", "channel", "request_id", "position"});
    if (st.ok() && !in.contains("user")) st = Bad("missing 'user'");
    if (st.ok() && !in.contains("item")) st = Bad("missing 'item'");
    if (st.ok()) st = CheckStoredUser(in["user"]);
    if (st.ok()) st = CheckId(in["item"], "item");
    if (!st.ok()) return ReplyError(res, 400, where + st.message());
    LoggedEvent e;
    e.user = StoredUserId(in["user"].get<std::string>());
    e.item = in["item"].get<std::string>();
    if (!cur->engine->catalog().ids.Find(e.item)) {
      return ReplyError(res, 404, where + "unknown item '" + Clip(e.item) + "'");
    }
    e.event = "view";
    if (in.contains("event")) {
      if (!in["event"].is_string()) return ReplyError(res, 400, where + "'event' must be a string");
      e.event = in["event"].get<std::string>();
    }
    auto w = options.events.weights.find(e.event);
    if (w == options.events.weights.end()) {
      return ReplyError(res, 400,
                        where + "unknown event '" + Clip(e.event) +
                            "' (known: " + options.events.Names() + ")");
    }
    float weight = w->second;
    if (in.contains("channel")) {
      // The channel multiplies the event's weight, as `build` does.
      if (!in["channel"].is_string()) {
        return ReplyError(res, 400, where + "'channel' must be a string");
      }
      e.channel = in["channel"].get<std::string>();
      auto c = options.channels.weights.find(e.channel);
      if (c == options.channels.weights.end()) {
        return ReplyError(res, 400, where + "unknown channel '" + Clip(e.channel) +
                                        "' (known: " + options.channels.Names() +
                                        "; serve --channels)");
      }
      if (log && !log->has_channel()) {
        return ReplyError(res, 409,
                          where + "the server's event log was started before channels (it has "
                                  "no channel column): send the event without 'channel', or "
                                  "start the server on a new log");
      }
      weight *= c->second;
    }
    if (in.contains("request_id") || in.contains("position")) {
      // Which answer showed the item (the request id of its body), for
      // attribution (engine/attribution.h).
      if (in.contains("request_id")) {
        const json& id = in["request_id"];
        if (!id.is_string() || !IsRequestId(id.get<std::string>())) {
          return ReplyError(res, 400,
                            where +
                                "'request_id' must be the request_id of an answer "
                                "(1-64 characters of A-Z a-z 0-9 . _ -)");
        }
        e.request_id = id.get<std::string>();
      }
      if (in.contains("position")) {
        const json& pos = in["position"];
        if (!pos.is_number_integer() || pos.get<int64_t>() < 1 ||
            pos.get<int64_t>() > options.max_k) {
          return ReplyError(res, 400,
                            where + "'position' must be a whole number from 1 to " +
                                std::to_string(options.max_k) +
                                ", the item's "
                                "place in the answer that showed it");
        }
        e.position = pos.get<int64_t>();
      }
      if (log && !log->has_attribution()) {
        return ReplyError(res, 409,
                          where +
                              "the server's event log was started before attribution (it "
                              "has no request_id and position columns): send the event "
                              "without them, or start the server on a new log");
      }
    }
    e.timestamp = now;
    if (in.contains("ts")) {
      // The range `build` accepts (core/value_parse.h), so that every
      // acknowledged event can be rebuilt from the log.
      const json& ts = in["ts"];
      const std::string expected =
          ": expected seconds since the epoch or an ISO-8601 date-time, between "
          "1900-01-01T00:00:00Z and 2200-12-31T23:59:59Z";
      if (ts.is_number()) {
        // Fractions truncate toward zero, as ParseTimestamp reads a CSV
        // cell; the range is checked after (exact: every in-range integer
        // is a double).
        const double t = std::trunc(ts.get<double>());
        if (!(t >= static_cast<double>(kMinTimestamp) && t <= static_cast<double>(kMaxTimestamp))) {
          return ReplyError(res, 400, where + "'ts' " + Describe(ts) + expected);
        }
        e.timestamp = ts.is_number_float() ? static_cast<int64_t>(t) : ts.get<int64_t>();
      } else if (!ts.is_string() || !ParseTimestamp(ts.get<std::string>(), &e.timestamp)) {
        return ReplyError(res, 400, where + "'ts' " + Describe(ts) + expected);
      }
    }
    events.push_back(std::move(e));
    weights.push_back(weight);
  }
  // Durable first, then visible: an acknowledged event is in the log.
  if (log) {
    const auto t_append = std::chrono::steady_clock::now();
    Status st = log->Append(events);
    metrics.ObserveEventLogAppend(MillisSince(t_append) / 1000.0);
    if (!st.ok()) {
      // The message names the log file: for the operator, not the client.
      LogInfo("POST /events: event log: %s", st.message().c_str());
      return ReplyError(res, 500, "the event log write failed; the events were not accepted");
    }
  }
  std::vector<std::pair<std::string, SessionEvent>> session_events;
  session_events.reserve(events.size());
  for (size_t n = 0; n < events.size(); ++n) {
    session_events.push_back(
        {events[n].user, {events[n].item, events[n].event, weights[n], events[n].timestamp}});
  }
  {
    // Demand for live trends: every event but negative feedback, and none
    // from the future (more than an hour of clock skew ahead): one would
    // move "now" past every real event.
    std::lock_guard<std::mutex> lock(live_mu);
    const auto numbered = Current();  // the bundle whose rows live_activity uses now
    for (size_t n = 0; n < events.size(); ++n) {
      const Feedback f = FeedbackOfEvent(events[n].event);
      if (f == Feedback::kNotInterested || f == Feedback::kHideBrand) continue;
      if (events[n].timestamp > now + 3600) continue;
      if (auto item = numbered->engine->catalog().ids.Find(events[n].item)) {
        live_activity.Add(*item, events[n].timestamp, weights[n]);
      }
    }
  }
  // Accepted once logged: a shared store that is down does not refuse
  // events, the answer says they were not shared.
  const bool shared = RecordEvents(session_events);
  tally.accepted = true;
  json out{{"accepted", events.size()}, {"logged", log != nullptr}, {"shared", shared}};
  if (events.size() == 1) out["user_events"] = RecentEvents(events[0].user).size();
  Reply(res, 200, out);
}

// Forget customers (engine/forget.h): the forget list first (a failure
// after it still leaves them out of the next build, and a retry finishes the
// job), then this replica's sessions and the shared store, the event log
// (rewritten under its lock), and the bundle's rows (an atomic rewrite of the
// bundle this replica serves, then a reload). Other replicas drop their own
// in-memory sessions only when asked themselves.
void Server::Impl::HandleForget(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  auto body = ParseBody(req, options);
  if (!body.ok()) return ReplyError(res, body.status());
  if (!body->is_object()) return ReplyError(res, 400, "the body must be a JSON object");
  Status st = CheckKeys(*body, {"user", "users"});
  if (!st.ok()) return ReplyError(res, st);
  std::set<std::string> users;
  if (body->contains("user")) {
    st = CheckId((*body)["user"], "user");
    if (!st.ok()) return ReplyError(res, st);
    users.insert((*body)["user"].get<std::string>());
  }
  std::vector<std::string> listed;
  st = StringArrayField(*body, "users", options.max_batch, "user ids", &listed);
  if (!st.ok()) return ReplyError(res, st);
  users.insert(listed.begin(), listed.end());
  if (users.empty()) return ReplyError(res, 400, "give 'user' or 'users'");
  for (const std::string& u : users) {
    st = CheckForgettableId(u);
    if (!st.ok()) return ReplyError(res, st);
  }
  const size_t asked = users.size();
  if (pseudonyms) {
    // Both: lines from before session-only serving hold the ids themselves.
    std::set<std::string> both = users;
    for (const std::string& u : users) both.insert(pseudonyms->Of(u));
    users = std::move(both);
  }

  std::lock_guard<std::mutex> forget_lock(forget_mu);
  auto fail = [&](const char* step, const Status& why) {
    // The reason names files: for the operator's log, not the client.
    LogInfo("POST /forget: %s: %s", step, why.message().c_str());
    ReplyError(res, 500, std::string("forget failed at the ") + step +
                             "; the server log has the reason; the call can be repeated");
  };
  json out = {{"status", "forgotten"}, {"users", asked}};
  if (!options.forget_list.empty()) {
    auto added = AddToForgetList(options.forget_list, users);
    if (!added.ok()) return fail("forget list", added.status());
    out["forget_list_added"] = *added;
  }
  int64_t sessions_removed = 0;
  for (const std::string& u : users) sessions_removed += sessions->Erase(u) ? 1 : 0;
  out["sessions_removed"] = sessions_removed;
  if (state) {
    auto removed = state->Forget(users);
    if (!removed.ok()) return fail("shared state store", removed.status());
    out["state_store_entries_removed"] = *removed;
  }
  if (log) {
    auto removed = log->RemoveUsers(users);
    if (!removed.ok()) return fail("event log", removed.status());
    out["event_log_lines_removed"] = *removed;
  }
  if (curation) {
    auto removed = curation->RemoveUsers(users);
    if (!removed.ok()) return fail("curation log", removed.status());
    out["curation_log_lines_removed"] = *removed;
  }
  if (impressions) {
    auto removed = impressions->RemoveUsers(users);
    if (!removed.ok()) return fail("impression log", removed.status());
    out["impression_log_lines_removed"] = *removed;
  }
  {
    // Under the reload lock: a /reload between the rewrite's rename and
    // the reload below would read a bundle half old, half new.
    std::lock_guard<std::mutex> reload_lock(reload_mu);
    const auto cur = Current();
    auto in_bundle = ForgetInBundle(cur->path, users);
    if (!in_bundle.ok()) return fail("bundle", in_bundle.status());
    out["bundle_users_removed"] = in_bundle->users;
    out["bundle_history_entries_removed"] = in_bundle->history_entries;
    if (in_bundle->users > 0) {
      st = ReloadLocked(cur->path);
      if (!st.ok()) return fail("reload", st);
    }
  }
  out["generation"] = Current()->generation;
  out["still_influenced_until_next_build"] = StillInfluenced(Current()->engine->manifest());
  out["took_ms"] = MillisSince(t0);
  Reply(res, 200, out);
}

void Server::Impl::HandleReload(const httplib::Request& req, httplib::Response& res) {
  const auto t0 = std::chrono::steady_clock::now();
  fs::path path;  // empty: the current bundle
  if (!req.body.empty()) {
    auto body = ParseBody(req, options);
    if (!body.ok()) return ReplyError(res, body.status());
    if (!body->is_object()) return ReplyError(res, 400, "the body must be a JSON object");
    Status st = CheckKeys(*body, {"bundle"});
    if (!st.ok()) return ReplyError(res, st);
    if (body->contains("bundle")) {
      const json& b = (*body)["bundle"];
      if (!b.is_string() || b.get_ref<const std::string&>().empty()) {
        return ReplyError(res, 400, "'bundle' must be a non-empty path");
      }
      const std::string& requested = b.get_ref<const std::string&>();
      if (std::any_of(requested.begin(), requested.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20; })) {
        return ReplyError(res, 400, "'bundle' contains a control character");
      }
      // The same answer whether or not the path exists: no probing of the
      // filesystem through this endpoint.
      auto resolved = ResolveInRoot(requested);
      if (!resolved) {
        return ReplyError(res, 403,
                          "'bundle' must be a directory inside the server's bundle root "
                          "(--bundle-root)");
      }
      path = *resolved;
    }
  }
  Status st = Reload(path);
  if (!st.ok()) {
    // The reason names files; it goes to the operator's log only.
    LogInfo("POST /reload: %s", st.message().c_str());
    return ReplyError(res, 500,
                      "reload failed (still serving generation " +
                          std::to_string(Current()->generation) +
                          "); the server log has the reason");
  }
  const auto cur = Current();
  Reply(res, 200,
        json{{"status", "reloaded"},
             {"bundle", DisplayName(cur->path)},
             {"generation", cur->generation},
             {"items", cur->engine->catalog().size()},
             {"took_ms", MillisSince(t0)}});
}

bool Server::Impl::Authorize(const httplib::Request& req, httplib::Response& res) const {
  if (options.admin_token.empty()) {
    // Create allowed this only on a loopback bind. A web page can still
    // reach a loopback port through DNS rebinding, but then its Host header
    // names the attacker's domain.
    const std::string host = req.get_header_value("Host");
    if (host.empty() || IsLoopbackHost(HostOfHostHeader(host))) return true;
    ReplyError(res, 403,
               "without an admin token this endpoint only answers requests for a loopback host "
               "(Host: 127.0.0.1, localhost or [::1]); configure a token (docs/security.md)");
    return false;
  }
  const std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "bearer ";
  if (auth.size() < kBearer.size() ||
      Lower(std::string_view(auth).substr(0, kBearer.size())) != kBearer) {
    res.set_header("WWW-Authenticate", "Bearer");
    ReplyError(res, 401, "this endpoint needs 'Authorization: Bearer <admin token>'");
    return false;
  }
  if (!ConstantTimeEquals(Trim(std::string_view(auth).substr(kBearer.size())),
                          options.admin_token)) {
    res.set_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    ReplyError(res, 401, "wrong admin token");
    return false;
  }
  return true;
}

// Before httplib reads a body: the checks a route's attributes ask for, so
// an unauthorised or non-JSON POST costs no body read. A refused request's
// connection is closed after the answer (its body is still unread).
httplib::Server::HandlerResponse Server::Impl::Admit(const httplib::Request& req,
                                                     httplib::Response& res) {
  requests.fetch_add(1, std::memory_order_relaxed);
  const Route* route = nullptr;
  for (const auto& [r, pattern] : route_patterns) {
    if (req.method == r->method && std::regex_match(req.path, pattern)) route = r;
  }
  current_request.start = std::chrono::steady_clock::now();
  current_request.endpoint = route != nullptr ? route->name : "other";
  {
    std::string id = req.get_header_value("X-Request-Id");
    if (!IsRequestId(id)) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "-%06llx",
                    static_cast<unsigned long long>(next_request_id.fetch_add(1) + 1));
      id = request_id_prefix;  // (not prefix + buf: GCC 12 -Wrestrict false positive)
      id += buf;
    }
    res.set_header("X-Request-Id", id);
    current_request.request_id = std::move(id);
  }
  if (route == nullptr) return httplib::Server::HandlerResponse::Unhandled;  // 404 or 405
  auto refuse = [&res] {
    res.set_header("Connection", "close");
    HttpServer::CloseAfterThisResponse();
    return httplib::Server::HandlerResponse::Handled;
  };
  if (!UrlIsUtf8(req)) {
    ReplyError(res, 400, "the URL is not valid UTF-8 (after %-decoding)");
    return refuse();
  }
  if (route->access == Access::kAdmin && !Authorize(req, res)) return refuse();
  if (std::string_view(route->method) == "POST") {
    const std::string type = req.get_header_value("Content-Type");
    if (!IsJsonMediaType(type)) {
      ReplyError(res, 415,
                 "a POST body must be JSON, sent with 'Content-Type: application/json' (got " +
                     (type.empty() ? std::string("none") : "'" + Clip(type) + "'") + ")");
      return refuse();
    }
  }
  return httplib::Server::HandlerResponse::Unhandled;  // on to the route
}

// Every admitted request runs through here: a compute slot if the route
// needs one, and a guard that turns an exception (a bug, or memory) into a
// 500 for that request, never a dead server.
void Server::Impl::Dispatch(const Route& route, const httplib::Request& req,
                            httplib::Response& res) {
  if (route.computes && !slots->AcquireFor(options.request_timeout)) {
    return ReplyError(res, 503, "server busy: no worker was free within the request timeout");
  }
  try {
    (this->*route.handler)(req, res);
  } catch (const std::exception& e) {
    LogInfo("internal error in %s %s: %s", req.method.c_str(), route.pattern,
            Clip(e.what(), 200).c_str());
    ReplyError(res, 500, "internal error");
  }
  if (route.computes) slots->Release();
}

void Server::Impl::Routes() {
  // The route table: one line per endpoint, its access level an attribute.
  static const Route kRoutes[] = {
      {"GET", "/health", &Impl::HandleHealth, Access::kPublic, false, "health", "/health"},
      {"GET", "/ready", &Impl::HandleReady, Access::kPublic, false, "ready", "/ready"},
      {"GET", "/metrics", &Impl::HandleMetrics, Access::kPublic, false, "metrics", "/metrics"},
      {"GET", "/openapi.json", &Impl::HandleOpenApi, Access::kPublic, false, "openapi",
       "/openapi.json"},
      {"GET", R"(/similar/(.+))", &Impl::HandleSimilar, Access::kPublic, true, "similar",
       "/similar/{item}"},
      {"POST", "/recommend", &Impl::HandleRecommend, Access::kPublic, true, "recommend",
       "/recommend"},
      {"GET", R"(/complete/(.+))", &Impl::HandleComplete, Access::kPublic, true, "complete",
       "/complete/{item}"},
      {"POST", "/events", &Impl::HandleEvents, Access::kAdmin, true, "events", "/events"},
      // Lists customers: for client advisors and campaigns, never the storefront.
      {"POST", "/audience", &Impl::HandleAudience, Access::kAdmin, true, "audience", "/audience"},
      {"GET", "/trending", &Impl::HandleTrending, Access::kPublic, true, "trending", "/trending"},
      {"POST", "/reload", &Impl::HandleReload, Access::kAdmin, false, "reload", "/reload"},
      {"POST", "/forget", &Impl::HandleForget, Access::kAdmin, false, "forget", "/forget"},
      // The advisor console (docs/console.md): the page is public, what it
      // shows of a client and every decision need the admin token.
      {"GET", R"(/console(/console\.js|/console\.css)?)", &Impl::HandleConsole, Access::kPublic,
       false, "console", "/console"},
      {"GET", R"(/items/([^/]+)/image)", &Impl::HandleItemImage, Access::kPublic, false,
       "item_image", "/items/{item}/image"},
      {"GET", R"(/clients/([^/]+))", &Impl::HandleClient, Access::kAdmin, false, "client",
       "/clients/{user}"},
      {"POST", "/curation", &Impl::HandleCuration, Access::kAdmin, false, "curation", "/curation"},
  };
  for (const Route& route : kRoutes) routes.emplace_back(route.method, route.documented_as);
  for (const Route& route : kRoutes) route_patterns.emplace_back(&route, std::regex(route.pattern));
  http->set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return Admit(req, res); });
  for (const Route& route : kRoutes) {
    auto handler = [this, &route](const httplib::Request& req, httplib::Response& res) {
      Dispatch(route, req, res);
    };
    if (std::string_view(route.method) == "GET") {
      http->Get(route.pattern, handler);
    } else {
      http->Post(route.pattern, handler);
    }
  }
  // Errors httplib produces itself (no route, 413, 400 on a bad request
  // line or a read that failed) get a JSON body too; ours already have one.
  http->set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string msg = "HTTP error " + std::to_string(res.status);
        if (res.status == 404) msg = "no endpoint " + Clip(req.method) + " " + Clip(req.path);
        if (res.status == 405)
          msg = "method not allowed: " + Clip(req.method) + " " + Clip(req.path);
        if (res.status == 413) msg = "request body too large";
        if (res.status == 400) msg = "incomplete or malformed HTTP request (or a read timeout)";
        if (HttpServer::RequestExpired()) {
          res.status = 408;
          msg = "the request did not arrive in full within " +
                std::to_string(options.request_timeout.count()) + " ms (request timeout)";
        }
        ReplyError(res, res.status, msg);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http->set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                 std::exception_ptr) { ReplyError(res, 500, "internal error"); });
  // After every written answer, routed or not: the request counters and
  // latency histograms of /metrics. A request httplib refused before
  // routing (a malformed request line, a body over the limit) has no start
  // time: it is counted, not timed.
  http->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    std::optional<double> seconds;
    if (current_request.start) {
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                              *current_request.start)
                    .count();
    }
    metrics.ObserveRequest(current_request.endpoint, res.status, seconds);
    if (access_log) {
      AccessRecord r;
      r.request_id = current_request.request_id;
      r.method = Clip(req.method, 16);
      r.endpoint = current_request.endpoint;
      r.status = res.status;
      if (seconds) r.latency_ms = *seconds * 1000;
      r.k = current_request.k;
      r.generation = current_request.generation;
      r.variant = current_request.variant;
      access_log->Write(r);
    }
    current_request = RequestTrace{};
  });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

namespace {

// The checks of Create that need no bundle.
Status CheckOptions(const ServerOptions& o) {
  if (o.bundle.empty()) return Bad("no bundle given");
  if (o.threads < 1) return Bad("threads must be at least 1");
  if (o.max_k < 1) return Bad("max_k must be at least 1");
  if (o.max_json_depth < 1) return Bad("max_json_depth must be at least 1");
  if (o.max_connections < 1 || o.max_connections > kMaxConnectionsLimit) {
    return Bad("max_connections must be in [1, " + std::to_string(kMaxConnectionsLimit) + "]");
  }
  if (o.max_per_client < 0) return Bad("max_per_client must be >= 0 (0: no limit)");
  for (auto t : {o.request_timeout, o.read_timeout, o.write_timeout, o.idle_timeout}) {
    if (t.count() < 1) return Bad("timeouts must be positive");
  }
  if (!o.admin_token.empty()) {
    if (o.admin_token.size() < kMinTokenBytes) {
      return Bad("the admin token must have at least " + std::to_string(kMinTokenBytes) +
                 " characters (e.g. `openssl rand -hex 32`)");
    }
    for (unsigned char c : o.admin_token) {
      if (c <= 0x20 || c >= 0x7f) {
        return Bad("the admin token must be visible ASCII characters (no spaces)");
      }
    }
  } else if (!IsLoopbackHost(o.host)) {
    return Bad("refusing to listen on " + o.host +
               " without an admin token: anyone who can reach it could post events and reload "
               "bundles. Give --admin-token-file FILE or set VITRINE_ADMIN_TOKEN, or listen on "
               "127.0.0.1 (docs/security.md)");
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  VITRINE_RETURN_IF_ERROR(CheckOptions(options));
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const ServerOptions& o = impl->options;
  {
    // Canonical (symlinks resolved), so that ResolveInRoot compares like
    // with like. The default is the directory the bundle really lives in.
    std::error_code ec;
    fs::path bundle = o.bundle.lexically_normal();
    if (!bundle.has_filename() && bundle.has_parent_path()) bundle = bundle.parent_path();
    impl->bundle_root = o.bundle_root.empty() ? fs::weakly_canonical(bundle, ec).parent_path()
                                              : fs::weakly_canonical(o.bundle_root, ec);
    if (ec) return Status::IOError("bundle root: " + ec.message());
  }
  StageTimer timer("open " + o.bundle.string());
  const auto t0 = std::chrono::steady_clock::now();
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Open(o.bundle, o.verify));
  timer.Done();
  impl->loaded = std::make_shared<Loaded>();
  impl->loaded->engine = std::shared_ptr<const Engine>(std::move(engine));
  impl->loaded->path = o.bundle;
  impl->loaded->generation = 1;
  impl->loaded->load_seconds = MillisSince(t0) / 1000.0;
  if (!o.access_log.empty()) {
    VITRINE_ASSIGN_OR_RETURN(impl->access_log, AccessLog::Open(o.access_log, o.access_log_max_bytes));
  }
  if (!o.metrics) impl->metrics.Disable();
  if (!o.experiment.empty()) {
    VITRINE_ASSIGN_OR_RETURN(impl->experiment, Experiment::Load(o.experiment));
    // A variant's fields go through the request parser and against the
    // bundle at start-up, so a bad weight, rule or diversity stops the
    // server here rather than failing every request of that variant.
    for (const Variant& v : impl->experiment->variants()) {
      QuerySpec spec;
      Status st = SpecFromJson(v.fields, o, &spec);
      if (st.ok()) st = Prepare(*impl->loaded, spec).status();
      if (!st.ok()) {
        return Status::InvalidArgument(o.experiment.string() + ": variant '" + v.name +
                                       "': " + st.message());
      }
    }
    LogInfo("experiment %s: %zu variants", impl->experiment->name().c_str(),
            impl->experiment->variants().size());
  }
  {
    // Request ids "<prefix>-<counter>": the prefix, from the start time and
    // the pid, tells this process's ids from an earlier run's.
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08llx",
                  static_cast<unsigned long long>(
                      (static_cast<uint64_t>(
                           std::chrono::system_clock::now().time_since_epoch().count()) ^
                       (static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ULL)) &
                      0xffffffffULL));
    impl->request_id_prefix = buf;
  }
  if (!o.event_log.empty()) {
    VITRINE_ASSIGN_OR_RETURN(impl->log, EventLog::Open(o.event_log, o.fsync, o.fsync_interval));
  }
  if (!o.curation_log.empty()) {
    VITRINE_ASSIGN_OR_RETURN(impl->curation, CurationStore::Open(o.curation_log));
  }
  if (!o.impression_log.empty()) {
    VITRINE_ASSIGN_OR_RETURN(impl->impressions, ImpressionLog::Open(o.impression_log));
  }
  if (o.session_only) {
    if (o.pseudonym_key_file.empty()) {
      return Status::InvalidArgument("session-only serving needs a pseudonym key file");
    }
    VITRINE_ASSIGN_OR_RETURN(Pseudonymizer p, Pseudonymizer::FromKeyFile(o.pseudonym_key_file));
    impl->pseudonyms = std::move(p);
  }
  impl->sessions = std::make_unique<SessionStore>(
      o.session_users, o.session_events,
      o.session_only ? o.session_ttl : std::chrono::seconds(0));
  if (!o.state_url.empty()) {
    RedisStateOptions so;
    VITRINE_RETURN_IF_ERROR(RedisStateOptions::ParseUrl(o.state_url, &so));
    so.prefix = o.state_prefix;
    so.password = o.state_password;
    so.max_events = o.session_events;
    so.ttl = o.session_ttl;
    so.connections = o.threads;
    impl->state = std::make_unique<RedisState>(std::move(so));
    // RedisState logs a store that is down; say so when it is up too.
    if (impl->state->health().up) LogInfo("state store %s: up", impl->state->options().Url().c_str());
  }
  impl->slots = std::make_unique<ComputeSlots>(o.threads);

  HttpServerOptions limits;
  limits.request_timeout = o.request_timeout;
  limits.idle_timeout = o.idle_timeout;
  limits.read_timeout = o.read_timeout;
  limits.write_timeout = o.write_timeout;
  limits.max_connections = o.max_connections;
  limits.max_per_client = o.max_per_client;
  impl->http = std::make_unique<HttpServer>(limits);
  impl->http->set_payload_max_length(o.max_body_bytes);
  impl->Routes();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<int> Server::Bind() {
  Impl& s = *impl_;
  if (s.options.port == 0) {
    s.port = s.http->bind_to_any_port(s.options.host);
  } else {
    s.port = s.http->bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port <= 0) {
    return Status::IOError("cannot bind " + s.options.host + ":" + std::to_string(s.options.port) +
                           " (in use or not a local address)");
  }
  return s.port;
}

Status Server::Run() {
  if (impl_->port <= 0) return Status::Internal("Server::Run before a successful Bind");
  if (!impl_->http->listen_after_bind()) {
    return Status::IOError("the HTTP listener stopped with an error");
  }
  return Status::OK();
}

void Server::Stop() {
  if (impl_->http->is_running()) impl_->http->stop();
  if (impl_->log) (void)impl_->log->Sync();
}

std::vector<std::pair<std::string, std::string>> Server::routes() const { return impl_->routes; }

void Server::BeginDrain() { impl_->draining = true; }
bool Server::draining() const { return impl_->draining.load(); }

bool Server::WaitUntilRunning(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!impl_->http->is_running()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

Status Server::Reload(const fs::path& bundle) { return impl_->Reload(bundle); }

std::shared_ptr<const Engine> Server::engine() const { return impl_->Current()->engine; }
int64_t Server::generation() const { return impl_->Current()->generation; }
int Server::port() const { return impl_->port; }
const SessionStore& Server::sessions() const { return *impl_->sessions; }
const ServerOptions& Server::options() const { return impl_->options; }
const fs::path& Server::bundle_root() const { return impl_->bundle_root; }

}  // namespace vitrine
