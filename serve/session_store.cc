#include "serve/session_store.h"

#include <algorithm>

namespace vitrine {

SessionStore::SessionStore(size_t max_users, size_t max_events_per_user)
    : max_users_(std::max<size_t>(1, max_users)),
      max_events_(std::max<size_t>(1, max_events_per_user)) {}

void SessionStore::Add(const std::string& user, SessionEvent e) {
  std::lock_guard<std::mutex> lock(mu_);
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
  auto& ev = it->second.events;
  // Histories are short (tens of events): erasing the front is cheaper than
  // the bookkeeping of a ring buffer.
  if (ev.size() >= max_events_) ev.erase(ev.begin(), ev.begin() + (ev.size() - max_events_ + 1));
  ev.push_back(std::move(e));
}

std::vector<SessionEvent> SessionStore::Recent(std::string_view user) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = users_.find(std::string(user));
  if (it == users_.end()) return {};
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
