// RedisState: session histories shared by every `vitrine serve` replica
// through a Redis server (`serve --state redis://HOST:PORT[/DB]`), so that an
// event posted to one replica changes the next answer of another.
//
// Layout (every key under `prefix`, default "vitrine:"):
//   <prefix>session:<user>  a list of the user's recent events, oldest first,
//                           each a JSON object {"i": item, "e": event,
//                           "w": weight, "t": seconds}; trimmed to
//                           `max_events` and expiring `ttl` after the
//                           user's last event (the privacy policy's bound).
//   <prefix>events          a stream of every accepted event (user, item,
//                           event, weight, ts), capped near `stream_max_len`
//                           entries: for consumers beside the durable file
//                           log, which stays the record of what was accepted.
//
// Failure model: the store is optional to answering. Every call is bounded
// by `timeout` as a whole (a reply that trickles in is cut off) and by 8 MiB
// of reply; a failed call marks the store down and returns an error at
// once until a background probe (a PING every `probe_interval`) sees Redis
// again. The server then answers from each replica's local SessionStore and
// keeps logging events to the file; events accepted while Redis was down are
// not replayed into it.
//
// Thread safety: every method may be called concurrently. Calls spread over
// `connections` hiredis connections, one call per connection at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "serve/session_store.h"

struct redisContext;  // hiredis

namespace vitrine {

struct RedisStateOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string prefix = "vitrine:";
  // AUTH password ("" = none). From $VITRINE_REDIS_PASSWORD in the CLI:
  // never in a URL or flag that `ps` shows.
  std::string password;
  size_t max_events = 50;                       // per user's list
  std::chrono::seconds ttl{7 * 24 * 3600};      // a user's list expires this long after its last event
  size_t stream_max_len = 1000000;              // approximate cap of the events stream
  std::chrono::milliseconds timeout{250};       // connect, and each command
  std::chrono::milliseconds probe_interval{1000};
  int connections = 8;

  // Reads "redis://HOST[:PORT][/DB]" (HOST a name, IPv4 address or
  // [IPv6]; PORT 1-65535, default 6379; DB 0-15, default 0) into host,
  // port and db; the other fields are left alone.
  static Status ParseUrl(std::string_view url, RedisStateOptions* out);
  std::string Url() const;  // "redis://host:port/db"
};

class RedisState {
 public:
  // Probes Redis once before returning (so health() is known at start) and
  // then every probe_interval on a background thread. Never fails: a Redis
  // that is down at start is reported by health() until it comes up.
  explicit RedisState(RedisStateOptions options);
  ~RedisState();
  RedisState(const RedisState&) = delete;
  RedisState& operator=(const RedisState&) = delete;

  // Appends each (user, event) to the user's list (trimmed, expiry renewed)
  // and to the events stream: one pipelined round trip.
  Status Append(std::span<const std::pair<std::string, SessionEvent>> events);
  // The user's recent events, oldest first (at most max_events; entries
  // that are not this layout's JSON are skipped).
  Result<std::vector<SessionEvent>> Recent(std::string_view user);

  // Forgets users (engine/forget.h): deletes their session lists and their
  // entries of the events stream (a scan of the stream inside Redis, which
  // blocks it for about a second per million entries). Returns the session
  // lists and stream entries deleted.
  Result<int64_t> Forget(const std::set<std::string>& users);

  struct Health {
    bool up = false;
    std::string error;         // why it is down ("" when up)
    uint64_t round_trips = 0;  // calls that reached Redis and got answers
    uint64_t failures = 0;     // calls that failed (down, timeout, error reply)
  };
  Health health() const;
  const RedisStateOptions& options() const { return options_; }

 private:
  struct Connection;
  // Runs `commands` (each an argv) pipelined on one connection; on success
  // `replies` holds one Reply per command, copied out of hiredis's objects.
  struct Reply {
    bool is_error = false;
    std::string text;                 // a string or error reply
    std::vector<std::string> items;   // an array reply's string elements
  };
  static constexpr size_t kMaxReplyBytes = size_t{8} << 20;
  enum { kGot, kBroken, kTooLarge };
  int GetReply(redisContext* c, std::chrono::steady_clock::time_point deadline,
               size_t* received, void** reply, std::string* why);
  Status Run(const std::vector<std::vector<std::string>>& commands, std::vector<Reply>* replies);
  Status RunOn(Connection& c, const std::vector<std::vector<std::string>>& commands,
               std::vector<Reply>* replies);
  void MarkDown(const std::string& why);
  void ProbeLoop();
  bool Probe();

  const RedisStateOptions options_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::atomic<uint64_t> next_connection_{0};
  std::atomic<bool> up_{false};
  std::atomic<uint64_t> round_trips_{0};
  std::atomic<uint64_t> failures_{0};
  mutable std::mutex error_mu_;
  std::string error_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::unique_ptr<Connection> probe_connection_;
  std::thread prober_;
};

}  // namespace vitrine
