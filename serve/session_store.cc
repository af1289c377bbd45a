#include "serve/session_store.h"

#include <algorithm>

namespace vitrine {

SessionStore::SessionStore(size_t max_users, size_t max_events_per_user, std::chrono::seconds ttl,
                           std::function<int64_t()> now)
    : max_users_(std::max<size_t>(1, max_users)),
      max_events_(std::max<size_t>(1, max_events_per_user)),
      ttl_(std::max<int64_t>(0, ttl.count())),
      now_(now ? std::move(now) : [] {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
      }) {}

void SessionStore::Add(const std::string& user, SessionEvent e) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = now_();
  // The least recently active users are at the back: drop the expired ones
  // (the whole tail that is past its time), so memory holds no session
  // beyond its lifetime for longer than until the next event.
  while (ttl_ > 0 && !lru_.empty()) {
    auto last = users_.find(lru_.back());
    if (!Expired(last->second, now)) break;
    users_.erase(last);
    lru_.pop_back();
  }
  auto it = users_.find(user);
  if (it == users_.end()) {
    if (users_.size() >= max_users_) {
      users_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(user);
    it = users_.emplace(user, Entry{{}, lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  it->second.last_active = now;
  auto& ev = it->second.events;
  // Histories are short (tens of events): erasing the front is cheaper than
  // the bookkeeping of a ring buffer.
  if (ev.size() >= max_events_) ev.erase(ev.begin(), ev.begin() + (ev.size() - max_events_ + 1));
  ev.push_back(std::move(e));
}

std::vector<SessionEvent> SessionStore::Recent(std::string_view user) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = users_.find(std::string(user));
  if (it == users_.end() || Expired(it->second, now_())) return {};
  return it->second.events;
}

bool SessionStore::Erase(const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = users_.find(user);
  if (it == users_.end()) return false;
  lru_.erase(it->second.lru);
  users_.erase(it);
  return true;
}

size_t SessionStore::num_users() const {
  std::lock_guard<std::mutex> lock(mu_);
  return users_.size();
}

}  // namespace vitrine
