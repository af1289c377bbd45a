// EventLog: the durable, append-only log of the events `vitrine serve`
// accepts (POST /events), written in the interactions format so that the next
// `vitrine build --interactions events.csv` reads it as is:
//
//   user_id,item_id,event,timestamp,channel,request_id,position
//   U0000007,I000042,view,1714557600,,,
//   "user, with comma",I000043,purchase,1714557660,store,5f2a9c1e-000017,3
//
// The channel (online, store, wishlist...: core/interactions.h) is empty
// when the event named none; `build` counts an empty channel as 1. The
// request id and position say which answer showed the item (the impression
// log, serve/impression_log.h; `vitrine report` joins the two); both are
// empty when the event named none. A log started by an older version has
// fewer columns (kEventLogHeaderWithoutAttribution, or also without the
// channel): Open keeps appending to it in its format, and Append refuses an
// event with a field the log has no column for, rather than drop it.
//
// Fields are quoted per RFC 4180 when they hold a comma or a quote; ids with
// control characters (newlines) are rejected before they reach the log.
// Timestamps are integer seconds since the Unix epoch (UTC). Durability,
// recovery of a torn last line and thread safety are AppendLog's
// (serve/append_log.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "serve/append_log.h"

namespace vitrine {

struct LoggedEvent {
  std::string user;
  std::string item;
  std::string event;      // "view", "cart", "purchase", ...
  int64_t timestamp = 0;  // seconds since 1970-01-01T00:00:00Z
  std::string channel;    // "store", "wishlist", ...; "" = none given
  std::string request_id;  // the answer that showed the item; "" = none given
  int64_t position = 0;    // its 1-based position in that answer; 0 = none given
};

constexpr std::string_view kEventLogHeader =
    "user_id,item_id,event,timestamp,channel,request_id,position";
constexpr std::string_view kEventLogHeaderWithoutAttribution =
    "user_id,item_id,event,timestamp,channel";
constexpr std::string_view kEventLogHeaderWithoutChannel = "user_id,item_id,event,timestamp";

class EventLog {
 public:
  // Opens (creating if missing, with kEventLogHeader) the log at `path`.
  // Errors: a file whose first line is none of the three headers, or I/O.
  static Result<std::unique_ptr<EventLog>> Open(
      const std::filesystem::path& path, FsyncPolicy policy = FsyncPolicy::kAlways,
      std::chrono::milliseconds interval = std::chrono::milliseconds(1000));

  // Appends the events as one batch (all or none) and syncs per the policy.
  // InvalidArgument, writing nothing, for an event with a channel, a request
  // id or a position that the log has no column for.
  Status Append(std::span<const LoggedEvent> events);
  // The log has the channel column (every log made since channels).
  bool has_channel() const { return columns_ >= 5; }
  // The log has the request_id and position columns (every log this version
  // creates).
  bool has_attribution() const { return columns_ >= 7; }
  // Forces an fdatasync now.
  Status Sync() { return file_->Sync(); }
  // Rewrites the log without the lines of `users` (forget, engine/forget.h).
  Result<int64_t> RemoveUsers(const std::set<std::string>& users) {
    return file_->RemoveUsers(users);
  }

  const std::filesystem::path& path() const { return file_->path(); }
  // Events appended by this process (not counting what the file held).
  int64_t appended() const { return appended_.load(); }
  // Bytes cut off a torn last line by Open (0 if the file was clean).
  int64_t recovered_bytes() const { return file_->recovered_bytes(); }

  // One CSV line (with '\n') for an event in a log of `columns` columns (7,
  // 5 or 4); exposed for tests.
  static std::string FormatLine(const LoggedEvent& e, int columns = 7);

 private:
  EventLog() = default;

  std::unique_ptr<AppendLog> file_;
  int columns_ = 7;
  std::atomic<int64_t> appended_{0};
};

}  // namespace vitrine
