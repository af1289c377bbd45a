// EventLog: the durable, append-only log of the events `vitrine serve`
// accepts (POST /events), written in the interactions format so that the next
// `vitrine build --interactions events.csv` reads it as is:
//
//   user_id,item_id,event,timestamp,channel
//   U0000007,I000042,view,1714557600,
//   "user, with comma",I000043,purchase,1714557660,store
//
// The channel (online, store, wishlist...: core/interactions.h) is empty
// when the event named none; `build` counts an empty channel as 1. A log
// started before channels existed has the four-column header
// kEventLogHeaderWithoutChannel: Open keeps appending to it in that format,
// and has_channel() is false, so that the server refuses events with a
// channel rather than drop it.
//
// Fields are quoted per RFC 4180 when they hold a comma or a quote; ids with
// control characters (newlines) are rejected before they reach the log.
// Timestamps are integer seconds since the Unix epoch (UTC).
//
// Durability: Append returns only after the lines are written with one
// write(2) on an O_APPEND descriptor, then synced per FsyncPolicy:
//   kAlways    fdatasync before Append returns: an acknowledged event
//              survives a crash of the process and of the machine.
//   kInterval  fdatasync on an Append when `interval` has passed since the
//              last sync (and on close): a process crash loses nothing, a
//              power loss the events since the last sync.
//   kNever     leave it to the OS (a process crash still loses nothing).
//
// Recovery: Open appends to an existing log after checking its header; a
// torn last line (a crash in the middle of a write, never acknowledged) is
// cut off so the file stays valid CSV. A failed write is rolled back the
// same way, so a later Append never glues onto half a line.
//
// Thread safety: Append, Sync and the accessors may be called from many
// threads; appends are serialised, each batch's lines stay together.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace vitrine {

struct LoggedEvent {
  std::string user;
  std::string item;
  std::string event;      // "view", "cart", "purchase", ...
  int64_t timestamp = 0;  // seconds since 1970-01-01T00:00:00Z
  std::string channel;    // "store", "wishlist", ...; "" = none given
};

enum class FsyncPolicy { kAlways, kInterval, kNever };

// "always", "interval" (or "interval:250ms", "interval:2s") and "never".
Status ParseFsyncPolicy(std::string_view spec, FsyncPolicy* policy,
                        std::chrono::milliseconds* interval);

constexpr std::string_view kEventLogHeader = "user_id,item_id,event,timestamp,channel";
constexpr std::string_view kEventLogHeaderWithoutChannel = "user_id,item_id,event,timestamp";

class EventLog {
 public:
  // Opens (creating if missing, with its header) the log at `path`. Errors:
  // a file whose first line is neither kEventLogHeader nor
  // kEventLogHeaderWithoutChannel, or an I/O failure.
  static Result<std::unique_ptr<EventLog>> Open(
      const std::filesystem::path& path, FsyncPolicy policy = FsyncPolicy::kAlways,
      std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  ~EventLog();  // syncs and closes
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends the events as one batch (all or none) and syncs per the policy.
  // InvalidArgument, writing nothing, for an event with a channel on a log
  // without the channel column.
  Status Append(std::span<const LoggedEvent> events);
  // The log has the channel column (every log this version creates).
  bool has_channel() const { return has_channel_; }
  // Forces an fdatasync now.
  Status Sync();
  // Rewrites the log without the lines of `users` (forget, engine/forget.h)
  // while no append runs, and appends to the new file from then on. Returns
  // the lines removed (0: the file is untouched). Reads the whole log into
  // memory.
  Result<int64_t> RemoveUsers(const std::set<std::string>& users);

  const std::filesystem::path& path() const { return path_; }
  // Events appended by this process (not counting what the file held).
  int64_t appended() const;
  // Bytes cut off a torn last line by Open (0 if the file was clean).
  int64_t recovered_bytes() const { return recovered_bytes_; }

  // One CSV line (with '\n') for an event; exposed for tests.
  static std::string FormatLine(const LoggedEvent& e, bool with_channel = true);

 private:
  EventLog() = default;

  std::filesystem::path path_;
  FsyncPolicy policy_ = FsyncPolicy::kAlways;
  std::chrono::milliseconds interval_{1000};
  int64_t recovered_bytes_ = 0;
  bool has_channel_ = true;

  mutable std::mutex mu_;
  int fd_ = -1;
  int64_t size_ = 0;  // bytes in the file: the rollback point of a failed write
  int64_t appended_ = 0;
  std::chrono::steady_clock::time_point last_sync_;
};

}  // namespace vitrine
