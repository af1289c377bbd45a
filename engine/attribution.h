// Attribution: which events were caused by what the server showed. It joins
// the event log (serve/event_log.h) to the impression log
// (serve/impression_log.h) by request id, exactly:
//
//   impressions.csv  5f2a-000017,U7,I42,3,treatment,recommend,1714557600
//   events.csv       U7,I42,purchase,1714557900,,5f2a-000017,3
//   -> the purchase is attributed to I42 at position 3 of 5f2a-000017.
//
// An event is attributed to the impression line of its request id and item
// when that line exists, belongs to the same user (or to no user), and the
// event is no earlier than the impression and at most `window_seconds`
// later. Every other event gets the reason it was not attributed, so that
// the report can count them rather than lose them silently. A request id
// shown more than once (a client reusing its X-Request-Id) is resolved to
// the latest impression at or before the event.
//
// The readers check the files' columns and values and name file:line on a
// bad one. A last line without its line end (the server was writing it, or
// crashed doing so: never acknowledged) is left out, as the server's own
// recovery would cut it. Events without a request id (most events of a shop's log: the
// shopper browsed on their own) are read and classed kNoRequestId.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

struct ImpressionRecord {
  std::string request_id;
  std::string user;  // "" = an answer to no user
  std::string item;
  int64_t position = 0;  // 1-based
  std::string variant;   // "" = no experiment
  std::string endpoint;
  int64_t timestamp = 0;
};

struct EventRecord {
  std::string user;
  std::string item;
  std::string event;
  int64_t timestamp = 0;
  std::string request_id;  // "" = none
  int64_t position = 0;    // 0 = none
};

// Reads an impression log (serve/impression_log.h's columns; other columns
// are ignored). Errors name file:line and the column.
Result<std::vector<ImpressionRecord>> ReadImpressions(const std::filesystem::path& path);
// Reads an event log or any interactions CSV with user_id, item_id, event
// and timestamp columns; request_id and position are read when present.
Result<std::vector<EventRecord>> ReadEvents(const std::filesystem::path& path);

enum class AttributionOutcome {
  kAttributed,
  kNoRequestId,       // the event names no request
  kUnknownRequest,    // no impression has its request id
  kItemNotShown,      // the request did not show the event's item
  kOtherUser,         // the request was another user's
  kBeforeImpression,  // the event is older than the impression
  kAfterWindow,       // later than window_seconds after the impression
};
constexpr int kAttributionOutcomes = 7;
std::string_view OutcomeName(AttributionOutcome o);

struct AttributionOptions {
  int64_t window_seconds = 7 * 86400;
};

struct Attribution {
  // Per event, in the input order: the outcome and, when attributed, the
  // index of the impression line in the input.
  std::vector<AttributionOutcome> outcome;
  std::vector<int64_t> impression;  // -1 unless attributed
  int64_t count[kAttributionOutcomes] = {};
  // Events whose position differs from the impression line's (attributed by
  // item; the impression's position is the one that counts).
  int64_t position_mismatches = 0;
};

Attribution Attribute(std::span<const ImpressionRecord> impressions,
                      std::span<const EventRecord> events, const AttributionOptions& options = {});

}  // namespace vitrine
