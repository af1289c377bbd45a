#include "serve/event_log.h"

#include <string>

namespace vitrine {
namespace fs = std::filesystem;

std::string EventLog::FormatLine(const LoggedEvent& e, int columns) {
  std::string line;
  AppendCsvField(e.user, &line);
  line.push_back(',');
  AppendCsvField(e.item, &line);
  line.push_back(',');
  AppendCsvField(e.event, &line);
  line.push_back(',');
  line += std::to_string(e.timestamp);
  if (columns >= 5) {
    line.push_back(',');
    AppendCsvField(e.channel, &line);
  }
  if (columns >= 7) {
    line.push_back(',');
    AppendCsvField(e.request_id, &line);
    line.push_back(',');
    if (e.position > 0) line += std::to_string(e.position);
  }
  line.push_back('\n');
  return line;
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const fs::path& path, FsyncPolicy policy,
                                                 std::chrono::milliseconds interval) {
  static constexpr int kColumns[] = {7, 5, 4};
  std::unique_ptr<EventLog> log(new EventLog());
  VITRINE_ASSIGN_OR_RETURN(
      log->file_,
      AppendLog::Open(
          path, {kEventLogHeader, kEventLogHeaderWithoutAttribution, kEventLogHeaderWithoutChannel},
          "event log", policy, interval));
  log->columns_ = kColumns[log->file_->header_index()];
  return log;
}

Status EventLog::Append(std::span<const LoggedEvent> events) {
  std::string buf;
  for (const LoggedEvent& e : events) {
    if (!has_channel() && !e.channel.empty()) {
      return Status::InvalidArgument(path().string() +
                                     ": the log has no channel column (it was started before "
                                     "channels); an event with a channel cannot be logged");
    }
    if (!has_attribution() && (!e.request_id.empty() || e.position > 0)) {
      return Status::InvalidArgument(
          path().string() +
          ": the log has no request_id and position columns (it was started before "
          "attribution); an event with either cannot be logged");
    }
    buf += FormatLine(e, columns_);
  }
  VITRINE_RETURN_IF_ERROR(file_->Append(buf));
  appended_ += static_cast<int64_t>(events.size());
  return Status::OK();
}

}  // namespace vitrine
