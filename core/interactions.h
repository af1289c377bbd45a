// Interactions: implicit feedback as a CSR user x item matrix.
//
// Input CSV (DESIGN.md "Formats"): header with user_id, item_id and
// optionally weight, timestamp, event (names configurable). Each event maps
// to a weight (`view=1,cart=4,purchase=10`); a weight column overrides. Rows
// for the same (user, item) are aggregated: weights summed, the latest
// timestamp kept. Items absent from the catalog are counted and reported (an
// error under `strict`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/catalog.h"
#include "core/id_map.h"
#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

// "view=1,cart=4,purchase=10,return=-5" -> map. Unknown events in the data
// are an error naming the line unless listed here.
struct EventWeights {
  std::map<std::string, float, std::less<>> weights;
  static Result<EventWeights> Parse(std::string_view spec);
  static EventWeights Default();  // view=1,cart=4,purchase=10,return=0
};

struct InteractionsReadOptions {
  std::string user_column = "user_id";
  std::string item_column = "item_id";
  std::string weight_column = "weight";        // used if present
  std::string timestamp_column = "timestamp";  // used if present
  std::string event_column = "event";          // used if present
  EventWeights events = EventWeights::Default();
  bool strict = false;          // unknown items are an error instead of a warning
  bool skip_bad_lines = false;  // malformed lines counted instead of failing
};

struct Interactions {
  IdMap users;
  CsrMatrix matrix;                                // users x items, aggregated weights
  std::vector<int64_t> timestamps;                 // per nonzero: latest timestamp (0 if none)
  int64_t raw_events = 0;                          // rows read
  int64_t unknown_item_events = 0;                 // rows naming items not in the catalog
  std::vector<std::string> unknown_item_examples;  // first few, for messages
  int64_t skipped_lines = 0;
  int64_t dropped_nonpositive = 0;  // aggregated weight <= 0 (e.g. returns), dropped

  // Reads the CSV; item ids resolve against `items` (catalog order = columns).
  static Result<Interactions> ReadCsv(const std::filesystem::path& path, const IdMap& items,
                                      const InteractionsReadOptions& opts = {});
};

}  // namespace vitrine
