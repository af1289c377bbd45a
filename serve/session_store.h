// SessionStore: each user's recent events, in memory, so that the next
// recommendation for a user folds in what they just did (POST /events).
//
// Bounded both ways: at most `max_events_per_user` events per user (the
// oldest dropped) and at most `max_users` users (the user whose last event is
// oldest evicted first). Item ids are kept as strings, so a history survives
// a bundle reload; ids the new bundle lacks are skipped at query time.
// With a time to live (session-only serving, docs/privacy.md) a user's
// events are also gone `ttl` after their last event: never returned, and
// dropped from memory by the next Add.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vitrine {

struct SessionEvent {
  std::string item;
  std::string event;      // "view", "purchase", ...
  float weight = 1;       // the event's weight (EventWeights)
  int64_t timestamp = 0;  // seconds since the epoch
};

class SessionStore {
 public:
  // `now` tells the time in seconds (a steady clock by default; tests pass
  // their own); ttl 0 = no expiry.
  SessionStore(size_t max_users, size_t max_events_per_user,
               std::chrono::seconds ttl = std::chrono::seconds(0),
               std::function<int64_t()> now = nullptr);

  // Records an event for `user`, making them the most recently active user.
  void Add(const std::string& user, SessionEvent e);
  // The user's events, oldest first; empty for a user without any.
  std::vector<SessionEvent> Recent(std::string_view user) const;
  // Drops the user's events (forget, engine/forget.h); false if it had none.
  bool Erase(const std::string& user);

  size_t num_users() const;
  size_t max_users() const { return max_users_; }
  size_t max_events_per_user() const { return max_events_; }

 private:
  struct Entry {
    std::vector<SessionEvent> events;  // oldest first
    std::list<std::string>::iterator lru;
    int64_t last_active = 0;  // now() at the last Add
  };
  bool Expired(const Entry& e, int64_t now) const {
    return ttl_ > 0 && now - e.last_active >= ttl_;
  }
  const size_t max_users_;
  const size_t max_events_;
  const int64_t ttl_;  // seconds; 0 = none
  std::function<int64_t()> now_;
  mutable std::mutex mu_;
  std::list<std::string> lru_;  // front: most recently active
  std::unordered_map<std::string, Entry> users_;
};

}  // namespace vitrine
