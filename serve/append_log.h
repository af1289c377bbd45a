// AppendLog: the durable, append-only CSV file under the server's logs of
// events (serve/event_log.h) and of impressions (serve/impression_log.h).
// It owns the file mechanics; its users own the columns.
//
//   auto log = AppendLog::Open("impressions.csv", {kHeader}, "impression log",
//                              FsyncPolicy::kInterval);
//   log->Append("U1,I7,5f2a-000017,1,control,recommend,1714557600\n");
//
// Durability: Append writes its lines with one write(2) on an O_APPEND
// descriptor, then syncs per FsyncPolicy:
//   kAlways    fdatasync before Append returns: acknowledged lines survive a
//              crash of the process and of the machine.
//   kInterval  fdatasync on an Append when `interval` has passed since the
//              last sync (and on close): a process crash loses nothing, a
//              power loss the lines since the last sync.
//   kNever     leave it to the OS (a process crash still loses nothing).
//
// Recovery: Open checks the first line against the accepted headers and
// cuts a torn last line (a crash in the middle of a write, never
// acknowledged), so the file stays valid CSV. A failed write is rolled back
// the same way, so a later Append never glues onto half a line.
//
// Thread safety: Append, Sync, RemoveUsers and the accessors may be called
// from many threads; appends are serialised, each call's lines stay together.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

enum class FsyncPolicy { kAlways, kInterval, kNever };

// "always", "interval" (or "interval:250ms", "interval:2s") and "never".
Status ParseFsyncPolicy(std::string_view spec, FsyncPolicy* policy,
                        std::chrono::milliseconds* interval);

// One CSV field, quoted per RFC 4180 when it holds a comma or a quote.
void AppendCsvField(std::string_view field, std::string* line);

class AppendLog {
 public:
  // Opens (creating if missing, with headers[0]) the log at `path`. An
  // existing file's first line must be one of `headers` (header_index()
  // tells which); `what` names the log in errors ("event log").
  static Result<std::unique_ptr<AppendLog>> Open(
      const std::filesystem::path& path, std::vector<std::string_view> headers,
      std::string_view what, FsyncPolicy policy = FsyncPolicy::kAlways,
      std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  ~AppendLog();  // syncs and closes
  AppendLog(const AppendLog&) = delete;
  AppendLog& operator=(const AppendLog&) = delete;

  // Appends whole lines (each ending in '\n') with one write: all or none.
  Status Append(std::string_view lines);
  // Forces an fdatasync now.
  Status Sync();
  // Rewrites the log without the records whose user_id column is one of
  // `users` (engine/forget.h) while no append runs, and appends to the new
  // file from then on. Returns the records removed (0: the file is
  // untouched). Reads the whole log into memory.
  Result<int64_t> RemoveUsers(const std::set<std::string>& users);

  const std::filesystem::path& path() const { return path_; }
  size_t header_index() const { return header_index_; }
  // Bytes cut off a torn last line by Open (0 if the file was clean).
  int64_t recovered_bytes() const { return recovered_bytes_; }

 private:
  AppendLog() = default;

  std::filesystem::path path_;
  FsyncPolicy policy_ = FsyncPolicy::kAlways;
  std::chrono::milliseconds interval_{1000};
  size_t header_index_ = 0;
  int64_t recovered_bytes_ = 0;

  std::mutex mu_;
  int fd_ = -1;
  int64_t size_ = 0;  // bytes in the file: the rollback point of a failed write
  std::chrono::steady_clock::time_point last_sync_;
};

}  // namespace vitrine
