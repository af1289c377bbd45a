#include "serve/impression_log.h"

namespace vitrine {

std::string ImpressionLog::FormatLines(const Impression& im) {
  // Everything but the item and its position is the same on every line.
  std::string head, tail;
  AppendCsvField(im.request_id, &head);
  head.push_back(',');
  AppendCsvField(im.user, &head);
  head.push_back(',');
  tail.push_back(',');
  AppendCsvField(im.variant, &tail);
  tail.push_back(',');
  AppendCsvField(im.endpoint, &tail);
  tail.push_back(',');
  tail += std::to_string(im.timestamp);
  tail.push_back('\n');
  std::string out;
  for (size_t i = 0; i < im.items.size(); ++i) {
    out += head;
    AppendCsvField(im.items[i], &out);
    out.push_back(',');
    out += std::to_string(i + 1);
    out += tail;
  }
  return out;
}

Result<std::unique_ptr<ImpressionLog>> ImpressionLog::Open(const std::filesystem::path& path,
                                                           FsyncPolicy policy,
                                                           std::chrono::milliseconds interval) {
  std::unique_ptr<ImpressionLog> log(new ImpressionLog());
  VITRINE_ASSIGN_OR_RETURN(log->file_, AppendLog::Open(path, {kImpressionLogHeader},
                                                       "impression log", policy, interval));
  return log;
}

Status ImpressionLog::Append(const Impression& impression) {
  if (impression.items.empty()) return Status::OK();
  VITRINE_RETURN_IF_ERROR(file_->Append(FormatLines(impression)));
  ++appended_;
  return Status::OK();
}

}  // namespace vitrine
