// Curation: what a client advisor decided for a client, kept durably and
// applied to that client's later answers (the console, docs/console.md).
//
//   approve  the item counts as positive evidence for the client (folded
//            into their history as a `cart` event would be)
//   reject   the item never comes back in the client's answers
//   never    the same, and the answer moves away from it (as the client's
//            own not_interested does)
//   pin      the item holds `position` (1-based) in the client's answers; one
//            item per position: a newer pin there unpins the older
//   revoke   undoes whatever the item had: approve, reject, never or pin
//   shortlist  a shortlist sent to the client (one record per item, in
//            order); kept as a record, it changes no answer
//
// The log is a CSV on AppendLog (serve/append_log.h), synced before an
// action is acknowledged, and replayed at start:
//
//   timestamp,user_id,item_id,action,position,advisor,note
//   1765100000,U0000007,I000042,pin,1,anna,
//
// user_id is the client as stored (a pseudonym in session-only serving);
// `forget` removes a client's lines. Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "serve/append_log.h"

namespace vitrine {

constexpr std::string_view kCurationLogHeader =
    "timestamp,user_id,item_id,action,position,advisor,note";

struct CurationRecord {
  int64_t timestamp = 0;
  std::string user, item, action;
  int64_t position = 0;  // pin only; 1-based
  std::string advisor, note;
};

// What holds for one client now.
struct ClientCuration {
  std::set<std::string> approved, rejected, never;
  std::map<std::string, int64_t> pins;  // item -> 1-based position
  bool empty() const {
    return approved.empty() && rejected.empty() && never.empty() && pins.empty();
  }
};

// InvalidArgument naming the field for an unknown action, a pin without a
// position in [1, max_position], or a position on another action.
Status CheckCurationRecord(const CurationRecord& r, int64_t max_position);

class CurationStore {
 public:
  // Opens (creating) the log and replays it; a bad line is an error naming
  // file:line.
  static Result<std::unique_ptr<CurationStore>> Open(const std::filesystem::path& path);

  // Logs the records (one write, synced) and then applies them: all or none.
  // InvalidArgument, writing nothing, for a record CheckCurationRecord
  // refuses (positions up to 1,000,000).
  Status Record(const std::vector<CurationRecord>& records);
  ClientCuration Of(const std::string& user) const;
  // The client's records, oldest first (shortlists included).
  std::vector<CurationRecord> History(const std::string& user) const;
  // forget: the users' lines leave the log and the state.
  Result<int64_t> RemoveUsers(const std::set<std::string>& users);
  const std::filesystem::path& path() const { return log_->path(); }

  static std::string FormatLine(const CurationRecord& r);

 private:
  CurationStore() = default;
  void ApplyLocked(const CurationRecord& r);

  std::unique_ptr<AppendLog> log_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, ClientCuration> state_;
  std::unordered_map<std::string, std::vector<CurationRecord>> history_;
};

}  // namespace vitrine
