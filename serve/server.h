// Server: the HTTP/JSON front of an Engine (`vitrine serve`), on cpp-httplib.
// The endpoints and their JSON are documented with examples in
// docs/serving.md, the threat model and every limit in docs/security.md; in
// short:
//
//   GET  /health                          liveness, bundle, counters
//   GET  /ready                           readiness: 200, or 503 while draining
//   GET  /metrics                         Prometheus text format
//   GET  /openapi.json                    the API contract (docs/openapi.json)
//   GET  /similar/{item}?k=&diversity=&explain=&weights=&rule=&param.X=&context.X=
//   POST /recommend  {user | history, k, context, params, weights, rules, ...}
//   POST /events     {user, item, event, ts}  (or an array of them)     [admin]
//   POST /reload     {} or {"bundle": "path"} (also SIGHUP in the CLI)  [admin]
//   POST /forget     {"user": "U"} or {"users": [...]}: their sessions, event-log
//                    lines and bundle rows removed, the bundle reloaded  [admin]
//
// Every answer is JSON. Errors carry {"error": message, "status": code}:
// 400 bad input (malformed or too deeply nested JSON, invalid UTF-8, numbers
// out of range, wrong types, k out of range, rule errors, too long
// histories), 401 an admin route without the right token, 403 a /reload
// outside the bundle root, 404 an unknown item, 408 a request not received
// within request_timeout, 413 a body over max_body_bytes, 415 a POST that is
// not Content-Type application/json, 429/503 connection limits, 500 a
// failed reload or log write. A handler never lets an exception or a bad
// input take the process down, and error messages quote at most a short,
// clipped piece of the client's input and never a filesystem path.
//
// Access: admin routes (they change state: /events, /reload, /forget) need
// `Authorization: Bearer <admin_token>` when a token is configured. Without
// one, Create refuses a non-loopback `host`, and admin routes answer only
// requests whose Host header names a loopback address (against DNS
// rebinding). Every POST must be Content-Type application/json, which a web
// page cannot send cross-origin without a CORS preflight (never granted).
//
// Reload: the engine is a std::shared_ptr<const Engine> swapped under a
// mutex; a request copies the pointer once at its start, so requests in
// flight finish on the bundle they started with and none fail. A failed
// reload keeps the old bundle serving.
//
// Events: each accepted event goes to the EventLog first (durable per the
// fsync policy; only then is it acknowledged) and then to the SessionStore,
// so the user's next /recommend folds it in.
//
// Connections: each open connection has its own connection thread (at most
// max_connections, at most max_per_client per remote IP; more are refused
// at accept), every request must arrive in full within request_timeout, and
// at most `threads` requests compute at once (serve/http_server.h).
//
// Thread safety: Bind and Run from one thread; Stop, Reload and the
// accessors from any thread. Destroy the Server only after Run returned.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/bundle.h"
#include "core/interactions.h"
#include "core/status.h"
#include "engine/engine.h"
#include "serve/curation.h"
#include "serve/event_log.h"
#include "serve/impression_log.h"
#include "serve/redis_state.h"
#include "serve/session_store.h"

namespace vitrine {

struct ServerOptions {
  std::filesystem::path bundle;  // required
  std::string host = "127.0.0.1";  // address to listen on
  int port = 8080;  // 0: any free port (Server::port() tells which)
  int threads = 8;  // requests computed at once (connections have their own threads)

  // Durable log of accepted events ("" = keep events in memory only).
  std::filesystem::path event_log;
  // POST /forget adds the forgotten users here (engine/forget.h), for the
  // next build's --forget-list ("" = no list).
  std::filesystem::path forget_list;
  // Session-only serving (docs/privacy.md): every user id a request names is
  // replaced by its pseudonym (core/pseudonym.h, the key read from
  // pseudonym_key_file) before anything is stored or looked up, so the event
  // log, the session stores and a bundle built from the log hold pseudonyms
  // only; in-memory sessions expire session_ttl after their last event.
  bool session_only = false;
  std::filesystem::path pseudonym_key_file;  // required with session_only
  FsyncPolicy fsync = FsyncPolicy::kAlways;        // when appended events reach the disk
  std::chrono::milliseconds fsync_interval{1000};  // the period of FsyncPolicy::kInterval
  EventWeights events = EventWeights::Default();  // accepted event names
  // Accepted `channel` values of POST /events and their multipliers of the
  // event weight (core/interactions.h); an event without one counts 1.
  EventWeights channels = EventWeights::DefaultChannels();

  size_t session_users = 100000;  // users with in-memory recent events
  size_t session_events = 50;     // recent events kept per user

  // Session histories shared by replicas (serve/redis_state.h): a
  // "redis://HOST:PORT/DB" URL, or "" for this process's memory only. The
  // local store is kept too, and answers while Redis is down.
  std::string state_url;
  std::string state_prefix = "vitrine:";  // Redis key prefix
  std::string state_password;             // Redis AUTH ("" = none)
  std::chrono::seconds session_ttl{7 * 24 * 3600};  // a shared history expires this long after its last event
  bool state_required = false;  // /ready answers 503 while the state store is down

  // Limits that bound the work and memory of one request.
  int max_k = 1000;                   // results one request may ask for
  size_t max_body_bytes = 1 << 20;    // a request body
  size_t max_history = 1000;          // items in a request's history
  size_t max_rules_bytes = 64 << 10;  // rule text of one request
  size_t max_batch = 1000;  // events in one POST /events
  int max_json_depth = 64;  // nesting of a JSON body

  // Limits on connections and time (docs/security.md).
  std::chrono::milliseconds request_timeout{10000};  // a whole request must arrive within this
  std::chrono::milliseconds read_timeout{5000};      // one read; slow clients are cut off
  std::chrono::milliseconds write_timeout{5000};     // one write of the answer
  std::chrono::milliseconds idle_timeout{5000};      // keep-alive wait for the next request
  int max_connections = 128;                         // open connections; more get 503
  int max_per_client = 16;  // open connections per remote IP; more get 429; 0 = no limit

  // Access control (docs/security.md).
  // Token for the admin routes (/events, /audience, /reload, /forget): at least 16 visible ASCII
  // characters. "" = none: then `host` must be a loopback address.
  std::string admin_token;
  // POST /reload {"bundle": P} loads P only if it resolves (symlinks
  // followed, relative paths taken from the root) to a directory inside
  // this one. "" = the directory that contains `bundle`, symlinks resolved.
  std::filesystem::path bundle_root;

  VerifyMode verify = VerifyMode::kSizesOnly;  // bundle checks on (re)load

  // What client advisors decided in the console (serve/curation.h): a CSV
  // replayed at start and applied to each client's answers ("" = no
  // curation; POST /curation answers 409).
  std::filesystem::path curation_log;

  // What each /recommend, /similar and /complete answer showed, one line per item
  // (serve/impression_log.h), for `vitrine report` ("" = none). Written with
  // one write per answer, synced once a second.
  std::filesystem::path impression_log;

  // One JSON line per answered request (serve/access_log.h): a file, "-"
  // for stderr, or "" for none. A file is rotated past access_log_max_bytes.
  std::filesystem::path access_log;
  uint64_t access_log_max_bytes = 64ull << 20;

  // GET /metrics and the counting behind it (off only to measure its cost
  // or where nothing scrapes).
  bool metrics = true;

  // A/B variants of /recommend's defaults (serve/experiment.h); "" = none.
  std::filesystem::path experiment;
};

class Server {
 public:
  // Checks the options (a non-loopback host without an admin token is an
  // error), opens the bundle and the event log; does not bind yet.
  static Result<std::unique_ptr<Server>> Create(ServerOptions options);
  ~Server();  // stops serving and waits for it
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and returns the bound port (the chosen one for port 0).
  Result<int> Bind();
  // Serves until Stop(). Call after Bind, on the thread that will block.
  Status Run();
  // True once Run is accepting connections; false if `timeout` passes first.
  bool WaitUntilRunning(std::chrono::milliseconds timeout) const;
  // Makes Run return after the requests in progress; safe from any thread
  // (not from a signal handler) and idempotent. A Stop before Run is
  // accepting is lost: wait with WaitUntilRunning first.
  void Stop();
  // Readiness off (/ready answers 503 "draining") while every route keeps
  // answering, so a load balancer stops sending new requests before Stop:
  // the first step of a graceful shutdown. Safe from any thread.
  void BeginDrain();
  // Every route the server answers, as (method, path in docs/openapi.json).
  std::vector<std::pair<std::string, std::string>> routes() const;
  bool draining() const;

  // Opens `bundle` (empty: the current bundle path, e.g. rebuilt in place)
  // and swaps it in atomically. On error the old bundle keeps serving. No
  // bundle-root check here: that is for requests from the network.
  Status Reload(const std::filesystem::path& bundle = {});

  // The engine new requests use.
  std::shared_ptr<const Engine> engine() const;
  // 1 for the bundle opened by Create, +1 per successful reload.
  int64_t generation() const;
  int port() const;
  const SessionStore& sessions() const;
  const ServerOptions& options() const;
  // The canonical bundle root that POST /reload paths must stay in.
  const std::filesystem::path& bundle_root() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vitrine
