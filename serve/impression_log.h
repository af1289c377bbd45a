// ImpressionLog: what the server showed, one CSV line per item of each
// answer, so that `vitrine report` can attribute events to what was shown
// (engine/attribution.h):
//
//   request_id,user_id,item_id,position,variant,endpoint,timestamp
//   5f2a9c1e-000017,U0000007,I000042,1,control,recommend,1714557600
//   5f2a9c1e-000017,U0000007,I000913,2,control,recommend,1714557600
//
// request_id is the answer's (its body's "request_id" and the X-Request-Id
// header); user_id is the user as stored (a pseudonym under session-only
// serving, as in the event log) and empty for an answer to no user;
// position is 1-based; variant is the A/B variant (serve/experiment.h), empty
// outside an experiment; endpoint is recommend, similar or complete; timestamp is
// seconds since the Unix epoch (UTC), the server's clock.
//
// The file mechanics (one write per answer, fsync policy, torn-line
// recovery, forgetting a user's lines) are AppendLog's (serve/append_log.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "serve/append_log.h"

namespace vitrine {

constexpr std::string_view kImpressionLogHeader =
    "request_id,user_id,item_id,position,variant,endpoint,timestamp";

struct Impression {
  std::string request_id;
  std::string user;      // as stored; "" = none
  std::string variant;   // "" = no experiment
  std::string endpoint;  // "recommend", "similar", "complete"
  int64_t timestamp = 0;
  std::vector<std::string> items;  // in the order shown: position = index + 1
};

class ImpressionLog {
 public:
  static Result<std::unique_ptr<ImpressionLog>> Open(
      const std::filesystem::path& path, FsyncPolicy policy = FsyncPolicy::kInterval,
      std::chrono::milliseconds interval = std::chrono::milliseconds(1000));

  // Appends one answer's lines (none for an answer without items).
  Status Append(const Impression& impression);
  Result<int64_t> RemoveUsers(const std::set<std::string>& users) {
    return file_->RemoveUsers(users);
  }
  const std::filesystem::path& path() const { return file_->path(); }
  int64_t appended() const { return appended_.load(); }  // answers logged by this process

  static std::string FormatLines(const Impression& impression);

 private:
  ImpressionLog() = default;
  std::unique_ptr<AppendLog> file_;
  std::atomic<int64_t> appended_{0};
};

}  // namespace vitrine
