// vitrine serve: the HTTP/JSON server over a bundle (docs/serving.md).
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "cli/serve_config.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "serve/server.h"

namespace vitrine::cli {
namespace {

// A log's default path: beside the bundle directory, never inside it (a
// rebuild replaces the directory as a whole).
std::filesystem::path BesideBundle(const std::filesystem::path& bundle, const char* name) {
  std::filesystem::path b = bundle.lexically_normal();
  if (b.filename().empty()) b = b.parent_path();  // "demo/bundle/"
  return b.has_parent_path() ? b.parent_path() / name : std::filesystem::path(name);
}

constexpr char kName[] = "serve";

// Signal handlers only set flags; SignalLoop acts on them as ordinary code
// (a reload allocates and takes locks: not allowed in a handler). A mask plus
// sigwait would not do: libraries (OpenBLAS) start threads before main that
// would still receive the signals.
volatile sig_atomic_t g_reload = 0;
volatile sig_atomic_t g_stops = 0;  // SIGTERM / SIGINT received

extern "C" void OnSignal(int sig) {
  if (sig == SIGHUP) {
    g_reload = 1;
  } else if (g_stops < 2) {
    g_stops = g_stops + 1;
  }
}

// Graceful stop: the first SIGTERM (or SIGINT) turns readiness off (/ready
// answers 503) while every route keeps answering for `drain` so a load
// balancer can take the replica out; then the listener closes and the
// requests in progress finish (each bounded by --request-timeout and the
// compute it needs). A second signal skips the rest of the drain.
void SignalLoop(Server* server, const std::atomic<bool>* done, std::chrono::milliseconds drain) {
  std::optional<std::chrono::steady_clock::time_point> stop_at;
  while (!done->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_reload) {
      g_reload = 0;
      Status st = server->Reload();
      if (st.ok()) {
        LogInfo("SIGHUP: reloaded, generation %lld", static_cast<long long>(server->generation()));
      } else {
        std::fprintf(stderr, "vitrine serve: %s\n", st.message().c_str());
      }
    }
    if (g_stops > 0 && !stop_at) {
      server->BeginDrain();
      stop_at = std::chrono::steady_clock::now() + drain;
      if (drain.count() > 0) {
        LogInfo("draining: /ready answers 503, stopping in %.1f s (a second signal stops now)",
                static_cast<double>(drain.count()) / 1000.0);
      }
    }
    if (stop_at && (g_stops > 1 || std::chrono::steady_clock::now() >= *stop_at)) {
      (void)server->WaitUntilRunning(std::chrono::seconds(5));
      server->Stop();
      return;
    }
  }
}

// The admin token: from --admin-token-file, else $VITRINE_ADMIN_TOKEN, else
// none. Never from a flag value, which `ps` shows to every user.
Result<std::string> AdminToken(const cxxopts::ParseResult& r) {
  std::string token;
  if (r.count("admin-token-file")) {
    const std::string file = r["admin-token-file"].as<std::string>();
    VITRINE_ASSIGN_OR_RETURN(token, ReadFileRaw(file));
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
      token.pop_back();
    }
    if (token.empty()) return Status::InvalidArgument(file + ": empty admin token file");
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      LogInfo("warning: %s is readable by other users (chmod 600 it)", file.c_str());
    }
  } else if (const char* env = std::getenv("VITRINE_ADMIN_TOKEN"); env && *env) {
    token = env;
  }
  return token;
}

// "90" or "90s", "30m", "12h", "7d" as seconds; nullopt if malformed or
// outside [1 s, 365 d].
std::optional<int64_t> ParseDurationSeconds(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 9 || text.size() - digits > 1) return std::nullopt;
  int64_t n = std::stoll(text.substr(0, digits));
  const char unit = digits < text.size() ? text[digits] : 's';
  switch (unit) {
    case 's': break;
    case 'm': n *= 60; break;
    case 'h': n *= 3600; break;
    case 'd': n *= 86400; break;
    default: return std::nullopt;
  }
  if (n < 1 || n > 365 * 86400) return std::nullopt;
  return n;
}

// Every flag a config file may set (cli/serve_config.h), in --help order.
const std::vector<ServeKey>& ServeKeys() {
  using K = ServeKey::Kind;
  static const std::vector<ServeKey> keys = {{"bundle", K::kString},
                                             {"host", K::kString},
                                             {"port", K::kInt},
                                             {"threads", K::kInt},
                                             {"admin-token-file", K::kString},
                                             {"bundle-root", K::kString},
                                             {"event-log", K::kString},
                                             {"privacy", K::kString},
                                             {"pseudonym-key-file", K::kString},
                                             {"forget-list", K::kString},
                                             {"fsync", K::kString},
                                             {"events", K::kString},
                                             {"channels", K::kString},
                                             {"session-users", K::kInt64},
                                             {"session-events", K::kInt64},
                                             {"max-k", K::kInt},
                                             {"max-body", K::kInt64},
                                             {"timeout", K::kInt},
                                             {"request-timeout", K::kInt},
                                             {"max-connections", K::kInt},
                                             {"max-per-client", K::kInt},
                                             {"verify", K::kFlag},
                                             {"access-log", K::kString},
                                             {"impression-log", K::kString},
                                             {"curation-log", K::kString},
                                             {"drain-seconds", K::kReal},
                                             {"access-log-max-mb", K::kInt64},
                                             {"state", K::kString},
                                             {"state-prefix", K::kString},
                                             {"session-ttl", K::kString},
                                             {"state-required", K::kFlag},
                                             {"experiment", K::kString},
                                             {"metrics", K::kString}};
  return keys;
}

int Run(int argc, char** argv) {
  cxxopts::Options opts("vitrine serve",
                        "Serve a bundle over HTTP/JSON: /health, /ready, /metrics, /similar/{item}, "
                        "/recommend, /events, /reload (docs/serving.md). SIGHUP reloads the "
                        "bundle; SIGTERM drains (--drain-seconds), then stops.");
  opts.custom_help(
      "--bundle B [--host 127.0.0.1] [--port 8080] [--threads N] [--admin-token-file F] "
      "[options]");
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory", cxxopts::value<std::string>())
      ("host", "Address to listen on", cxxopts::value<std::string>()->default_value("127.0.0.1"))
      ("port", "Port (0 = any free port; the chosen one is printed)",
       cxxopts::value<int>()->default_value("8080"))
      ("threads", "Requests computed at once (slow clients do not hold these)",
       cxxopts::value<int>()->default_value("8"))
      ("admin-token-file", "File holding the token that /events and /reload require as "
       "'Authorization: Bearer <token>' (else $VITRINE_ADMIN_TOKEN; without either, they work "
       "only on a loopback --host)", cxxopts::value<std::string>())
      ("bundle-root", "POST /reload {\"bundle\": P} must stay inside this directory "
       "(default: the directory containing --bundle, symlinks resolved)",
       cxxopts::value<std::string>())
      ("event-log", "CSV log of accepted events (user_id,item_id,event,timestamp,channel); "
       "default <bundle>/../events.csv; 'none' keeps events in memory only",
       cxxopts::value<std::string>())
      ("privacy", "default, or session-only: user ids are stored as keyed-hash pseudonyms "
       "(--pseudonym-key-file) and in-memory sessions expire after --session-ttl (default 30m "
       "then) (docs/privacy.md)", cxxopts::value<std::string>()->default_value("default"))
      ("pseudonym-key-file", "Secret key of the pseudonyms, at least 32 bytes, kept outside "
       "every log (session-only)", cxxopts::value<std::string>())
      ("forget-list", "POST /forget adds the users it forgets to this list, for the next "
       "`vitrine build --forget-list` (docs/privacy.md)", cxxopts::value<std::string>())
      ("fsync", "Event log sync: always, interval[:N(ms|s)] or never",
       cxxopts::value<std::string>()->default_value("always"))
      ("events", "Accepted events and weights, e.g. view=1,cart=4,purchase=10,return=-4",
       cxxopts::value<std::string>())
      ("channels", "Accepted event channels and their multipliers of the event weight, e.g. "
       "online=1,store=1.5,wishlist=0.5 (default online=1,app=1,store=1,wishlist=1)",
       cxxopts::value<std::string>())
      ("session-users", "Users whose recent events are kept in memory",
       cxxopts::value<int64_t>()->default_value("100000"))
      ("session-events", "Recent events kept per user",
       cxxopts::value<int64_t>()->default_value("50"))
      ("max-k", "Largest k a request may ask for", cxxopts::value<int>()->default_value("1000"))
      ("max-body", "Largest request body in bytes",
       cxxopts::value<int64_t>()->default_value("1048576"))
      ("timeout", "Seconds one read or write may wait for the client",
       cxxopts::value<int>()->default_value("5"))
      ("request-timeout", "Seconds a whole request (line, headers, body) may take to arrive; "
       "then 408 and the connection is closed", cxxopts::value<int>()->default_value("10"))
      ("max-connections", "Open connections; more are answered 503 at once",
       cxxopts::value<int>()->default_value("128"))
      ("max-per-client", "Open connections from one IP address; more are answered 429 "
       "(0 = no limit; raise it behind a reverse proxy)",
       cxxopts::value<int>()->default_value("16"))
      ("verify", "Check every bundle file's checksum on (re)load")
      ("access-log", "One JSON line per request to this file ('-' = stderr; default: none)",
       cxxopts::value<std::string>())
      ("curation-log", "Client advisors' decisions in the console (approve, reject, pin...), "
       "applied to their clients' answers; 'none' = no curation (default: curation.csv beside "
       "the bundle directory)", cxxopts::value<std::string>())
      ("impression-log", "What each /recommend, /similar and /complete answer showed, one CSV line per "
       "item, for `vitrine report` (default: none)",
       cxxopts::value<std::string>())
      ("metrics", "on: count requests and answer GET /metrics; off: neither",
       cxxopts::value<std::string>()->default_value("on"))
      ("experiment", "A/B variants of /recommend's defaults from this TOML file; users are "
       "assigned by a hash of their id and the experiment's name (docs/serving.md)",
       cxxopts::value<std::string>())
      ("drain-seconds", "On SIGTERM: seconds /ready answers 503 while requests are still "
       "served, before the listener closes (0 = close at once)",
       cxxopts::value<double>()->default_value("5"))
      ("access-log-max-mb", "Rotate the access log file past this size (to FILE.1)",
       cxxopts::value<int64_t>()->default_value("64"))
      ("state", "Share session histories between replicas through Redis: "
       "redis://HOST[:PORT][/DB] (password from $VITRINE_REDIS_PASSWORD; default: this "
       "process's memory only)", cxxopts::value<std::string>())
      ("state-prefix", "Prefix of every Redis key this server writes",
       cxxopts::value<std::string>()->default_value("vitrine:"))
      ("session-ttl", "A shared session history expires this long after its last event "
       "(90s, 30m, 12h, 7d; default 7d; in session-only serving the in-memory ones too, "
       "default 30m)",
       cxxopts::value<std::string>()->default_value(""))
      ("state-required", "/ready answers 503 while the --state store is down (default: "
       "stay ready and answer from local sessions)")
      ("config", "TOML file of settings: the flags above as keys (port = 8080, verify = "
       "true); flags on the command line win", cxxopts::value<std::string>())
      ("print-config", "Print the effective settings as a --config file and exit");
  // clang-format on
  opts.set_width(100);
  // --config FILE: the file's settings become flags placed before the
  // command line's, which win.
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string file;
    if (args[i] == "--config" && i + 1 < args.size()) file = args[i + 1];
    if (args[i].rfind("--config=", 0) == 0) file = args[i].substr(9);
    if (file.empty()) continue;
    auto from_file = ServeConfigArgs(file, ServeKeys(), args);
    if (!from_file.ok()) return UsageError(kName, "--config " + from_file.status().message());
    args.insert(args.begin() + 1, from_file->begin(), from_file->end());
    break;
  }
  std::vector<char*> argv_merged;
  for (std::string& a : args) argv_merged.push_back(a.data());
  argc = static_cast<int>(argv_merged.size());
  argv = argv_merged.data();
  auto p =
      ParseOrExit(opts, argc, argv, kName, {"bundle"},
                  "  vitrine serve --bundle demo/bundle --port 8080\n"
                  "  curl -s 127.0.0.1:8080/similar/I000042?k=5\n"
                  "  curl -s -H 'Content-Type: application/json' \\\n"
                  "       -d '{\"user\": \"U0000007\", \"k\": 5}' 127.0.0.1:8080/recommend\n"
                  "  kill -HUP <pid>   # reload after `vitrine build --out demo/bundle`\n"
                  "\n"
                  "  # On a network address: a token for /events and /reload (docs/security.md)\n"
                  "  openssl rand -hex 32 > /etc/vitrine/token && chmod 600 /etc/vitrine/token\n"
                  "  vitrine serve --bundle demo/bundle --host 0.0.0.0 \\\n"
                  "       --admin-token-file /etc/vitrine/token\n"
                  "  curl -s -H \"Authorization: Bearer $(cat /etc/vitrine/token)\" \\\n"
                  "       -H 'Content-Type: application/json' -d '{}' 127.0.0.1:8080/reload\n"
                  "\n"
                  "  # Replicas sharing sessions through Redis (docs/operations.md)\n"
                  "  vitrine serve --bundle demo/bundle --port 8081 --state redis://127.0.0.1:6379\n"
                  "  vitrine serve --bundle demo/bundle --port 8082 --state redis://127.0.0.1:6379\n"
                  "\n"
                  "  # Settings in a file (flags on the command line win)\n"
                  "  vitrine serve --bundle demo/bundle --port 9000 --print-config > serve.toml\n"
                  "  vitrine serve --config serve.toml");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  if (r.count("print-config")) {
    std::fputs(PrintServeConfig(r, ServeKeys()).c_str(), stdout);
    return kExitOk;
  }

  ServerOptions o;
  o.bundle = r["bundle"].as<std::string>();
  o.host = r["host"].as<std::string>();
  o.port = r["port"].as<int>();
  o.threads = r["threads"].as<int>();
  if (o.port < 0 || o.port > 65535) return UsageError(kName, "--port must be in [0, 65535]");
  if (o.threads < 1 || o.threads > 1024) return UsageError(kName, "--threads must be in [1, 1024]");
  const std::string log = r.count("event-log") ? r["event-log"].as<std::string>() : "";
  if (log != "none") {
    o.event_log = !log.empty() ? std::filesystem::path(log) : BesideBundle(o.bundle, "events.csv");
  }
  const std::string curation = r.count("curation-log") ? r["curation-log"].as<std::string>() : "";
  if (curation != "none") {
    o.curation_log = !curation.empty() ? std::filesystem::path(curation)
                                       : BesideBundle(o.bundle, "curation.csv");
  }
  if (r.count("forget-list")) o.forget_list = r["forget-list"].as<std::string>();
  Status st = ParseFsyncPolicy(r["fsync"].as<std::string>(), &o.fsync, &o.fsync_interval);
  if (!st.ok()) return UsageError(kName, "--fsync: " + st.message());
  if (r.count("events")) {
    auto e = EventWeights::Parse(r["events"].as<std::string>());
    if (!e.ok()) return UsageError(kName, "--events: " + e.status().message());
    o.events = *e;
  }
  if (r.count("channels")) {
    auto c = EventWeights::ParseChannels(r["channels"].as<std::string>());
    if (!c.ok()) return UsageError(kName, "--channels: " + c.status().message());
    o.channels = *c;
  }
  const int64_t su = r["session-users"].as<int64_t>(), se = r["session-events"].as<int64_t>();
  const int64_t body = r["max-body"].as<int64_t>();
  const int timeout = r["timeout"].as<int>();
  const int request_timeout = r["request-timeout"].as<int>();
  o.max_connections = r["max-connections"].as<int>();
  o.max_per_client = r["max-per-client"].as<int>();
  o.max_k = r["max-k"].as<int>();
  if (su < 1 || se < 1)
    return UsageError(kName, "--session-users and --session-events must be >= 1");
  if (o.max_k < 1) return UsageError(kName, "--max-k must be >= 1");
  if (body < 1) return UsageError(kName, "--max-body must be >= 1");
  if (timeout < 1) return UsageError(kName, "--timeout must be >= 1");
  if (request_timeout < 1) return UsageError(kName, "--request-timeout must be >= 1");
  if (o.max_connections < 1) return UsageError(kName, "--max-connections must be >= 1");
  if (o.max_per_client < 0) return UsageError(kName, "--max-per-client must be >= 0");
  o.session_users = static_cast<size_t>(su);
  o.session_events = static_cast<size_t>(se);
  o.max_body_bytes = static_cast<size_t>(body);
  o.read_timeout = o.write_timeout = std::chrono::seconds(timeout);
  o.request_timeout = std::chrono::seconds(request_timeout);
  if (r.count("bundle-root")) o.bundle_root = r["bundle-root"].as<std::string>();
  auto token = AdminToken(r);
  if (!token.ok()) return Fail(kName, token.status());
  o.admin_token = std::move(*token);
  if (r.count("verify")) o.verify = VerifyMode::kFull;
  if (r.count("access-log")) o.access_log = r["access-log"].as<std::string>();
  if (r.count("impression-log")) o.impression_log = r["impression-log"].as<std::string>();
  if (r.count("experiment")) o.experiment = r["experiment"].as<std::string>();
  {
    auto on = ParseOnOff("metrics", r["metrics"].as<std::string>());
    if (!on.ok()) return UsageError(kName, on.status().message());
    o.metrics = *on;
  }
  {
    const int64_t mb = r["access-log-max-mb"].as<int64_t>();
    if (mb < 1 || mb > (int64_t{1} << 20)) {
      return UsageError(kName, "--access-log-max-mb must be in [1, 1048576]");
    }
    o.access_log_max_bytes = static_cast<uint64_t>(mb) << 20;
  }

  if (r.count("state")) {
    o.state_url = r["state"].as<std::string>();
    RedisStateOptions check;
    st = RedisStateOptions::ParseUrl(o.state_url, &check);
    if (!st.ok()) return UsageError(kName, "--state: " + st.message());
    if (const char* pw = std::getenv("VITRINE_REDIS_PASSWORD"); pw && *pw) o.state_password = pw;
  }
  o.state_prefix = r["state-prefix"].as<std::string>();
  if (o.state_prefix.empty() || o.state_prefix.size() > 256 ||
      !std::all_of(o.state_prefix.begin(), o.state_prefix.end(),
                   [](char c) { return c > 0x20 && c < 0x7f; })) {
    return UsageError(kName, "--state-prefix: 1 to 256 visible ASCII characters (no spaces)");
  }
  const std::string privacy = r["privacy"].as<std::string>();
  if (privacy != "default" && privacy != "session-only") {
    return UsageError(kName, "--privacy must be default or session-only, got '" + privacy + "'");
  }
  o.session_only = privacy == "session-only";
  if (r.count("pseudonym-key-file")) o.pseudonym_key_file = r["pseudonym-key-file"].as<std::string>();
  if (o.session_only && o.pseudonym_key_file.empty()) {
    return UsageError(kName, "--privacy session-only needs --pseudonym-key-file (a secret of at "
                             "least 32 bytes, e.g. head -c 32 /dev/urandom | base64 > key)");
  }
  if (!o.session_only && !o.pseudonym_key_file.empty()) {
    return UsageError(kName, "--pseudonym-key-file is for --privacy session-only");
  }
  {
    // "" (the default): 7 days for the shared store; session-only serving
    // keeps a session for 30 minutes.
    std::string given = r["session-ttl"].as<std::string>();
    if (given.empty()) given = o.session_only ? "30m" : "7d";
    const auto ttl = ParseDurationSeconds(given);
    if (!ttl) {
      return UsageError(kName, "--session-ttl: expected a duration like 90s, 30m, 12h or 7d, "
                               "between 1 s and 365 d");
    }
    o.session_ttl = std::chrono::seconds(*ttl);
  }
  o.state_required = r.count("state-required") > 0;
  if (o.state_required && o.state_url.empty()) {
    return UsageError(kName, "--state-required needs --state");
  }

  const double drain_seconds = r["drain-seconds"].as<double>();
  if (!(drain_seconds >= 0 && drain_seconds <= 3600)) {
    return UsageError(kName, "--drain-seconds must be in [0, 3600]");
  }
  const auto drain = std::chrono::milliseconds(static_cast<int64_t>(drain_seconds * 1000));

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A client that hangs up mid-answer must not kill the server.
  signal(SIGPIPE, SIG_IGN);

  auto server = Server::Create(o);
  if (!server.ok()) return Fail(kName, server.status());
  auto port = (*server)->Bind();
  if (!port.ok()) return Fail(kName, port.status());
  std::printf(
      "vitrine serve: listening on http://%s:%d (bundle %s, %lld items, event log %s, "
      "fsync %s, admin endpoints %s%s%s%s)\n",
      o.host.c_str(), *port, o.bundle.c_str(),
      static_cast<long long>((*server)->engine()->catalog().size()),
      o.event_log.empty() ? "none" : o.event_log.c_str(), r["fsync"].as<std::string>().c_str(),
      o.admin_token.empty() ? "loopback only, no token" : "need the admin token",
      o.state_url.empty() ? "" : ", shared state ", o.state_url.c_str(),
      o.session_only ? ", session-only: user ids stored as pseudonyms" : "");
  std::fflush(stdout);

  std::atomic<bool> done{false};
  std::thread signals(SignalLoop, server->get(), &done, drain);
  st = (*server)->Run();
  done = true;
  signals.join();
  if (!st.ok()) return Fail(kName, st);
  LogInfo("stopped");
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("serve", "Serve a bundle over HTTP/JSON (similar, recommend, events, reload)", Run);

}  // namespace vitrine::cli
