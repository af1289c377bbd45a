#include "serve/redis_state.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/progress.h"

namespace vitrine {

using json = nlohmann::json;

namespace {

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

constexpr double kMaxEventWeight = 1e6;

bool ParseBoundedInt(std::string_view s, int lo, int hi, int* out) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

std::string Encode(const SessionEvent& e) {
  return json{{"i", e.item}, {"e", e.event}, {"w", e.weight}, {"t", e.timestamp}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

// False for anything but this layout's JSON (another writer's keys, a
// truncated value): such entries are skipped, never trusted.
bool Decode(const std::string& text, SessionEvent* e) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  const auto i = j.find("i"), ev = j.find("e"), w = j.find("w"), t = j.find("t");
  if (i == j.end() || !i->is_string() || ev == j.end() || !ev->is_string() || w == j.end() ||
      !w->is_number() || t == j.end() || !t->is_number_integer()) {
    return false;
  }
  // The server writes event weights (--events: small numbers); anything
  // near float's range would overflow the fold-in.
  const double weight = w->get<double>();
  if (!(std::fabs(weight) <= kMaxEventWeight)) return false;
  e->item = i->get<std::string>();
  e->event = ev->get<std::string>();
  e->weight = static_cast<float>(weight);
  e->timestamp = t->get<int64_t>();
  return true;
}

}  // namespace

Status RedisStateOptions::ParseUrl(std::string_view url, RedisStateOptions* out) {
  const auto bad = [&](const std::string& what) {
    return Status::InvalidArgument("state store URL '" + std::string(url.substr(0, 200)) +
                                   "': " + what +
                                   " (expected redis://HOST[:PORT][/DB], e.g. "
                                   "redis://127.0.0.1:6379/0)");
  };
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) return bad("the scheme must be redis://");
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find('@') != std::string_view::npos) {
    return bad("no credentials in the URL; set $VITRINE_REDIS_PASSWORD");
  }
  std::string_view hostport = rest, db;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    db = rest.substr(slash + 1);
  }
  std::string_view host = hostport, port;
  if (!hostport.empty() && hostport.front() == '[') {  // [IPv6]:port
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return bad("an unclosed '[' in the host");
    host = hostport.substr(1, close - 1);
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("expected ':PORT' after ']'");
      port = after.substr(1);
    }
  } else if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  if (host.empty() || host.size() > 253) return bad("the host is empty or too long");
  if (host.find(':') != std::string_view::npos && hostport.front() != '[') {
    return bad("an IPv6 address goes in brackets: redis://[::1]:6379");
  }
  for (const char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':' &&
        c != '_') {
      return bad("the host may hold letters, digits, '.', '-', '_' and ':' only");
    }
  }
  int port_number = 6379, db_number = 0;
  if (hostport.back() == ':' || (!port.empty() && !ParseBoundedInt(port, 1, 65535, &port_number))) {
    return bad("the port must be in [1, 65535]");
  }
  if (!db.empty() && !ParseBoundedInt(db, 0, 15, &db_number)) {
    return bad("the database must be a number in [0, 15]");
  }
  out->host = std::string(host);
  out->port = port_number;
  out->db = db_number;
  return Status::OK();
}

std::string RedisStateOptions::Url() const {
  const bool v6 = host.find(':') != std::string::npos;
  return "redis://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" +
         std::to_string(db);
}

struct RedisState::Connection {
  std::mutex mu;
  redisContext* ctx = nullptr;
  ~Connection() { Close(); }
  void Close() {
    if (ctx) redisFree(ctx);
    ctx = nullptr;
  }
  // Connects (and authenticates, and selects the database) if not connected.
  Status Open(const RedisStateOptions& o) {
    if (ctx) return Status::OK();
    ctx = redisConnectWithTimeout(o.host.c_str(), o.port, ToTimeval(o.timeout));
    if (!ctx || ctx->err) {
      const std::string why = ctx ? ctx->errstr : "out of memory";
      Close();
      return Status::IOError("cannot connect to " + o.Url() + ": " + why);
    }
    redisSetTimeout(ctx, ToTimeval(o.timeout));
    const auto setup = [&](std::vector<const char*> argv) -> Status {
      auto* r = static_cast<redisReply*>(
          redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), nullptr));
      if (!r) {
        const std::string why = ctx->errstr;
        Close();
        return Status::IOError(o.Url() + ": " + why);
      }
      const bool error = r->type == REDIS_REPLY_ERROR;
      const std::string text = error && r->str ? std::string(r->str, r->len) : "";
      freeReplyObject(r);
      if (error) {
        Close();
        return Status::IOError(o.Url() + ": " + text);
      }
      return Status::OK();
    };
    if (!o.password.empty()) VITRINE_RETURN_IF_ERROR(setup({"AUTH", o.password.c_str()}));
    if (o.db != 0) {
      const std::string db = std::to_string(o.db);
      VITRINE_RETURN_IF_ERROR(setup({"SELECT", db.c_str()}));
    }
    return Status::OK();
  }
};

RedisState::RedisState(RedisStateOptions options) : options_(std::move(options)) {
  const int n = std::max(1, options_.connections);
  for (int i = 0; i < n; ++i) connections_.push_back(std::make_unique<Connection>());
  probe_connection_ = std::make_unique<Connection>();
  Probe();
  prober_ = std::thread([this] { ProbeLoop(); });
}

RedisState::~RedisState() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  prober_.join();
}

bool RedisState::Probe() {
  std::vector<Reply> replies;
  Status st = RunOn(*probe_connection_, {{"PING"}}, &replies);
  if (st.ok() && (replies.empty() || replies[0].is_error)) {
    st = Status::IOError(options_.Url() + ": PING answered " +
                         (replies.empty() ? std::string("nothing") : replies[0].text));
  }
  if (!st.ok()) {
    MarkDown(st.message());
    return false;
  }
  if (!up_.exchange(true)) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (!error_.empty()) LogInfo("state store %s: up again", options_.Url().c_str());
    error_.clear();
  }
  return true;
}

void RedisState::ProbeLoop() {
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, options_.probe_interval, [this] { return stop_; })) {
    lock.unlock();
    Probe();
    lock.lock();
  }
}

void RedisState::MarkDown(const std::string& why) {
  std::lock_guard<std::mutex> lock(error_mu_);
  if (up_.exchange(false) || error_.empty()) {
    LogInfo("state store down (answering from local sessions): %s", why.c_str());
  }
  error_ = why;
}

RedisState::Health RedisState::health() const {
  Health h;
  h.up = up_.load();
  h.round_trips = round_trips_.load();
  h.failures = failures_.load();
  if (!h.up) {
    std::lock_guard<std::mutex> lock(error_mu_);
    h.error = error_;
  }
  return h;
}

// Reads one reply by `deadline`; `received` counts the call's bytes, at most
// kMaxReplyBytes (an array of many large entries is never buffered whole).
// hiredis's own timeout bounds each read(2), not a reply that trickles in.
int RedisState::GetReply(redisContext* c, std::chrono::steady_clock::time_point deadline,
                         size_t* received, void** reply, std::string* why) {
  for (;;) {
    if (redisGetReplyFromReader(c, reply) != REDIS_OK) {
      *why = c->errstr;
      return kBroken;
    }
    if (*reply != nullptr) return kGot;
    if (*received > kMaxReplyBytes) {
      *why = "a reply larger than " + std::to_string(kMaxReplyBytes >> 20) + " MiB";
      return kTooLarge;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{c->fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      *why = "no complete reply within " + std::to_string(options_.timeout.count()) + " ms";
      return kBroken;
    }
    const size_t before = c->reader->len;  // the reader trims only between replies
    if (redisBufferRead(c) != REDIS_OK) {
      *why = c->errstr;
      return kBroken;
    }
    *received += c->reader->len - before;
  }
}

Status RedisState::RunOn(Connection& c, const std::vector<std::vector<std::string>>& commands,
                         std::vector<Reply>* replies) {
  std::lock_guard<std::mutex> lock(c.mu);
  // One deadline for the whole call, the reconnection below included.
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  // A connection that was fine may have been cut (a Redis restart): the
  // first failure on it reconnects once before the store is declared down.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = c.ctx != nullptr;
    VITRINE_RETURN_IF_ERROR(c.Open(options_));
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& cmd : commands) {
      argv.clear();
      lens.clear();
      for (const std::string& a : cmd) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      redisAppendCommandArgv(c.ctx, static_cast<int>(argv.size()), argv.data(), lens.data());
    }
    replies->clear();
    bool broken = false;
    std::string why;
    for (int done = 0; !done;) {  // send (small: hiredis's socket timeout bounds it)
      if (redisBufferWrite(c.ctx, &done) != REDIS_OK) {
        why = c.ctx->errstr;
        broken = true;
        break;
      }
    }
    size_t received = 0;
    for (size_t i = 0; i < commands.size() && !broken; ++i) {
      void* raw = nullptr;
      const int got = GetReply(c.ctx, deadline, &received, &raw, &why);
      if (got == kTooLarge) {
        // One key's oversized data, not an outage: this call fails, the
        // connection (mid-reply) is dropped, the store stays up.
        c.Close();
        return Status::Corruption(options_.Url() + ": " + why);
      }
      if (got != kGot) {
        broken = true;
        break;
      }
      auto* r = static_cast<redisReply*>(raw);
      Reply out;
      out.is_error = r->type == REDIS_REPLY_ERROR;
      if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR ||
           r->type == REDIS_REPLY_STATUS) &&
          r->str) {
        out.text.assign(r->str, r->len);
      } else if (r->type == REDIS_REPLY_INTEGER) {
        out.text = std::to_string(r->integer);
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t k = 0; k < r->elements; ++k) {
          const redisReply* e = r->element[k];
          if (e && e->type == REDIS_REPLY_STRING && e->str) out.items.emplace_back(e->str, e->len);
        }
      }
      freeReplyObject(r);
      replies->push_back(std::move(out));
    }
    if (!broken) return Status::OK();
    if (why.empty()) why = "connection lost";
    c.Close();
    if (!reused || attempt == 1 || std::chrono::steady_clock::now() >= deadline) {
      return Status::IOError(options_.Url() + ": " + why);
    }
  }
  return Status::Internal("unreachable");
}

Status RedisState::Run(const std::vector<std::vector<std::string>>& commands,
                       std::vector<Reply>* replies) {
  if (!up_.load()) {
    ++failures_;
    std::lock_guard<std::mutex> lock(error_mu_);
    return Status::IOError("the state store is down: " + error_);
  }
  Connection& c = *connections_[next_connection_++ % connections_.size()];
  Status st = RunOn(c, commands, replies);
  if (!st.ok()) {
    ++failures_;
    if (st.code() != Status::Code::kCorruption) MarkDown(st.message());  // not for one bad key
    return st;
  }
  ++round_trips_;
  for (const Reply& r : *replies) {
    if (r.is_error) {
      ++failures_;
      return Status::IOError(options_.Url() + " answered an error: " + r.text);
    }
  }
  return Status::OK();
}

Status RedisState::Append(std::span<const std::pair<std::string, SessionEvent>> events) {
  if (events.empty()) return Status::OK();
  std::vector<std::vector<std::string>> cmds;
  std::vector<std::string> users;  // distinct, for the trims and expiries
  const std::string stream = options_.prefix + "events";
  const std::string cap = std::to_string(options_.stream_max_len);
  for (const auto& [user, e] : events) {
    const std::string key = options_.prefix + "session:" + user;
    cmds.push_back({"RPUSH", key, Encode(e)});
    cmds.push_back({"XADD", stream, "MAXLEN", "~", cap, "*", "user", user, "item", e.item,
                    "event", e.event, "weight", json(e.weight).dump(), "ts",
                    std::to_string(e.timestamp)});
    if (std::find(users.begin(), users.end(), user) == users.end()) users.push_back(user);
  }
  const std::string keep = "-" + std::to_string(std::max<size_t>(1, options_.max_events));
  const std::string ttl = std::to_string(std::max<int64_t>(1, options_.ttl.count()));
  for (const std::string& user : users) {
    const std::string key = options_.prefix + "session:" + user;
    cmds.push_back({"LTRIM", key, keep, "-1"});
    cmds.push_back({"EXPIRE", key, ttl});
  }
  std::vector<Reply> replies;
  return Run(cmds, &replies);
}

Result<std::vector<SessionEvent>> RedisState::Recent(std::string_view user) {
  std::vector<Reply> replies;
  const std::string first = "-" + std::to_string(std::max<size_t>(1, options_.max_events));
  VITRINE_RETURN_IF_ERROR(
      Run({{"LRANGE", options_.prefix + "session:" + std::string(user), first, "-1"}}, &replies));
  std::vector<SessionEvent> out;
  for (const std::string& text : replies.at(0).items) {
    SessionEvent e;
    if (Decode(text, &e)) out.push_back(std::move(e));
  }
  return out;
}

namespace {
// Deletes the entries of stream KEYS[1] whose "user" field is ARGV[1], in
// batches of 1,000 from the oldest, inside Redis (one round trip; exclusive
// ranges need Redis 6.2). Returns the count deleted.
constexpr char kForgetStreamScript[] = R"lua(
local deleted, from = 0, '-'
while true do
  local batch = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'user' and fields[i + 1] == ARGV[1] then
        redis.call('XDEL', KEYS[1], entry[1])
        deleted = deleted + 1
        break
      end
    end
  end
  from = '(' .. batch[#batch][1]
end
return deleted
)lua";
}  // namespace

Result<int64_t> RedisState::Forget(const std::set<std::string>& users) {
  std::vector<std::vector<std::string>> cmds;
  for (const std::string& user : users) {
    cmds.push_back({"DEL", options_.prefix + "session:" + user});
    cmds.push_back({"EVAL", kForgetStreamScript, "1", options_.prefix + "events", user});
  }
  std::vector<Reply> replies;
  VITRINE_RETURN_IF_ERROR(Run(cmds, &replies));
  int64_t removed = 0;
  for (const Reply& r : replies) {
    int64_t n = 0;
    const auto [end, ec] = std::from_chars(r.text.data(), r.text.data() + r.text.size(), n);
    if (ec == std::errc() && end == r.text.data() + r.text.size()) removed += n;
  }
  return removed;
}

}  // namespace vitrine
