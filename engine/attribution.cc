#include "engine/attribution.h"

#include <fstream>
#include <memory>
#include <unordered_map>

#include "core/csv.h"
#include "core/progress.h"
#include "core/value_parse.h"

namespace vitrine {
namespace {

Status BadValue(const CsvReader& csv, std::string_view column, std::string_view expected,
                std::string_view found) {
  return Status::InvalidArgument(csv.Where() + ": column '" + std::string(column) + "' expects " +
                                 std::string(expected) + ", found '" + std::string(found) + "'");
}

Status ReadTimestamp(const CsvReader& csv, int column, int64_t* out) {
  if (!ParseTimestamp(csv.field(column), out)) {
    return BadValue(csv, "timestamp", "seconds since the epoch or an ISO-8601 date-time",
                    csv.field(column));
  }
  return Status::OK();
}

// A 1-based position; an empty cell is 0 when `optional`.
Status ReadPosition(const CsvReader& csv, int column, bool optional, int64_t* out) {
  const std::string_view v = csv.field(column);
  if (v.empty() && optional) {
    *out = 0;
    return Status::OK();
  }
  const auto n = ParseNumber(v);
  if (!n || *n < 1 || *n > 1e9 || *n != static_cast<double>(static_cast<int64_t>(*n))) {
    return BadValue(csv, "position",
                    optional ? "a whole number >= 1 or nothing" : "a whole number >= 1", v);
  }
  *out = static_cast<int64_t>(*n);
  return Status::OK();
}

// A log the server may still be appending to, or left by a crash: a last
// line without its '\n' was never acknowledged (serve/append_log.h cuts it
// on the next start), so it is left out here too, and said so.
Result<std::unique_ptr<CsvReader>> OpenLog(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return CsvReader::Open(path);  // its error names the file
  const std::streamoff size = in.tellg();
  char last = '\n';
  if (size > 0) {
    in.seekg(size - 1);
    in.get(last);
  }
  if (last == '\n') return CsvReader::Open(path);
  in.seekg(0);
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), size);
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
      static_cast<unsigned char>(data[1]) == 0x8b) {
    return CsvReader::Open(path);  // gzip: not a log being written
  }
  const size_t eol = data.rfind('\n');
  const size_t keep = eol == std::string::npos ? data.size() : eol + 1;
  if (eol != std::string::npos) {
    LogInfo("%s: left out a torn last line (%zu bytes without a line end, never acknowledged)",
            path.c_str(), data.size() - keep);
    data.resize(keep);
  }
  return CsvReader::FromString(path.string(), std::move(data));
}

}  // namespace

std::string_view OutcomeName(AttributionOutcome o) {
  switch (o) {
    case AttributionOutcome::kAttributed:
      return "attributed";
    case AttributionOutcome::kNoRequestId:
      return "no_request_id";
    case AttributionOutcome::kUnknownRequest:
      return "unknown_request";
    case AttributionOutcome::kItemNotShown:
      return "item_not_shown";
    case AttributionOutcome::kOtherUser:
      return "other_user";
    case AttributionOutcome::kBeforeImpression:
      return "before_impression";
    case AttributionOutcome::kAfterWindow:
      return "after_window";
  }
  return "?";
}

Result<std::vector<ImpressionRecord>> ReadImpressions(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> csv, OpenLog(path));
  int col[7];
  const char* names[7] = {"request_id", "user_id",  "item_id",  "position",
                          "variant",    "endpoint", "timestamp"};
  for (int i = 0; i < 7; ++i) {
    VITRINE_ASSIGN_OR_RETURN(col[i], csv->ColumnIndex(names[i]));
  }
  std::vector<ImpressionRecord> out;
  while (csv->Next()) {
    ImpressionRecord r;
    r.request_id = csv->field(col[0]);
    if (r.request_id.empty()) return BadValue(*csv, "request_id", "a request id", "");
    r.user = csv->field(col[1]);
    r.item = csv->field(col[2]);
    if (r.item.empty()) return BadValue(*csv, "item_id", "an item id", "");
    VITRINE_RETURN_IF_ERROR(ReadPosition(*csv, col[3], false, &r.position));
    r.variant = csv->field(col[4]);
    r.endpoint = csv->field(col[5]);
    VITRINE_RETURN_IF_ERROR(ReadTimestamp(*csv, col[6], &r.timestamp));
    out.push_back(std::move(r));
  }
  VITRINE_RETURN_IF_ERROR(csv->status());
  return out;
}

Result<std::vector<EventRecord>> ReadEvents(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> csv, OpenLog(path));
  VITRINE_ASSIGN_OR_RETURN(const int user, csv->ColumnIndex("user_id"));
  VITRINE_ASSIGN_OR_RETURN(const int item, csv->ColumnIndex("item_id"));
  VITRINE_ASSIGN_OR_RETURN(const int event, csv->ColumnIndex("event"));
  VITRINE_ASSIGN_OR_RETURN(const int ts, csv->ColumnIndex("timestamp"));
  const int request = csv->FindColumn("request_id");
  const int position = csv->FindColumn("position");
  std::vector<EventRecord> out;
  while (csv->Next()) {
    EventRecord r;
    r.user = csv->field(user);
    r.item = csv->field(item);
    r.event = csv->field(event);
    VITRINE_RETURN_IF_ERROR(ReadTimestamp(*csv, ts, &r.timestamp));
    if (request >= 0) r.request_id = csv->field(request);
    if (position >= 0) VITRINE_RETURN_IF_ERROR(ReadPosition(*csv, position, true, &r.position));
    out.push_back(std::move(r));
  }
  VITRINE_RETURN_IF_ERROR(csv->status());
  return out;
}

Attribution Attribute(std::span<const ImpressionRecord> impressions,
                      std::span<const EventRecord> events, const AttributionOptions& options) {
  std::unordered_map<std::string_view, std::vector<int64_t>> by_request;
  for (size_t i = 0; i < impressions.size(); ++i) {
    by_request[impressions[i].request_id].push_back(static_cast<int64_t>(i));
  }
  Attribution a;
  a.outcome.resize(events.size());
  a.impression.assign(events.size(), -1);
  for (size_t e = 0; e < events.size(); ++e) {
    const EventRecord& ev = events[e];
    AttributionOutcome outcome = AttributionOutcome::kNoRequestId;
    if (!ev.request_id.empty()) {
      auto it = by_request.find(ev.request_id);
      if (it == by_request.end()) {
        outcome = AttributionOutcome::kUnknownRequest;
      } else {
        // The furthest stage any line of this request reached decides the
        // reason: shown the item, to this user, before the event, in time.
        int stage = 0;
        int64_t best = -1;
        for (const int64_t i : it->second) {
          const ImpressionRecord& im = impressions[static_cast<size_t>(i)];
          if (im.item != ev.item) continue;
          stage = std::max(stage, 1);
          if (!im.user.empty() && im.user != ev.user) continue;
          stage = std::max(stage, 2);
          if (ev.timestamp < im.timestamp) continue;
          stage = std::max(stage, 3);
          if (ev.timestamp - im.timestamp > options.window_seconds) continue;
          stage = 4;
          const ImpressionRecord* b = best < 0 ? nullptr : &impressions[static_cast<size_t>(best)];
          const bool later = b == nullptr || im.timestamp > b->timestamp;
          const bool tie_on_position = b != nullptr && im.timestamp == b->timestamp &&
                                       im.position == ev.position && b->position != ev.position;
          if (later || tie_on_position) best = i;
        }
        static constexpr AttributionOutcome kAtStage[] = {
            AttributionOutcome::kItemNotShown, AttributionOutcome::kOtherUser,
            AttributionOutcome::kBeforeImpression, AttributionOutcome::kAfterWindow,
            AttributionOutcome::kAttributed};
        outcome = kAtStage[stage];
        if (outcome == AttributionOutcome::kAttributed) {
          a.impression[e] = best;
          if (ev.position > 0 && ev.position != impressions[static_cast<size_t>(best)].position) {
            ++a.position_mismatches;
          }
        }
      }
    }
    a.outcome[e] = outcome;
    ++a.count[static_cast<int>(outcome)];
  }
  return a;
}

}  // namespace vitrine
