// Interactions: implicit feedback as a CSR user x item matrix.
//
// Input CSV (docs/architecture.md, docs/values.md): header with user_id, item_id and
// optionally weight, timestamp, event (names configurable). Each event maps
// to a weight (`view=1,cart=4,purchase=10`); a weight column overrides. Rows
// for the same (user, item) are aggregated: weights summed, the latest
// timestamp kept. Items absent from the catalog are counted and reported (an
// error under `strict`).
//
// Per row, exactly:
//   weight     the weight column's value if that column exists and the cell
//              is non-empty (a finite number, may be negative); otherwise the
//              event's weight if an event column exists (an event missing
//              from `events` is an error naming the line and the known
//              events); otherwise 1.
//   timestamp  ParseTimestamp() of the cell (core/value_parse.h: integer
//              seconds or ISO-8601, years 1900 to 2200); an empty cell or no
//              timestamp column means "unknown" (0 in the output unless
//              another row of the same pair has one).
//   ids        verbatim (not trimmed); an empty user or item id is a bad line.
// Pairs whose summed weight is <= 0 (a purchase returned, say) are dropped and
// counted in dropped_nonpositive. Users are numbered in order of first
// appearance among rows with a known item, so a user whose pairs were all
// dropped keeps an empty row. Value errors read
//   events.csv:12:3: column 'weight' expects a number, found 'x'
// and, like CSV syntax errors (invalid UTF-8 among them, core/csv.h), are
// counted and skipped under skip_bad_lines.
//
// Progress: a "read interactions" line on stderr (core/progress.h) with
// the share of the file read and an ETA, then its summary.
//
// Memory: the file is streamed; 24 bytes per kept row while reading (less
// where a pair repeats within a run), plus 16 bytes per aggregated pair for
// the result, plus about 40 bytes per (item, hour) with events in the last
// two weeks of the data (ItemActivity). 20M rows of 1M users x 100k items peak at about 0.85 GB.
// An Interactions is a plain value: const access is thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/catalog.h"
#include "core/id_map.h"
#include "core/item_activity.h"
#include "core/matrix.h"
#include "core/status.h"
#include "core/value_parse.h"  // ParseTimestamp, used with these files

namespace vitrine {

// "view=1,cart=4,purchase=10,return=-5" -> map. Unknown events in the data
// are an error naming the line unless listed here. Event names are matched
// exactly (case-sensitive, after trimming spaces); weights are finite numbers
// and may be negative. Parse errors name the entry:
//   "event weights entry 2 'cart=x': expected a number after '=', found 'x'"
// Event and channel weights lie in [-kMaxEventWeight, kMaxEventWeight].
inline constexpr double kMaxEventWeight = 1e6;

struct EventWeights {
  std::map<std::string, float, std::less<>> weights;
  static Result<EventWeights> Parse(std::string_view spec);
  // The same for channel multipliers ("online=1,store=1.5"), which must be
  // > 0; errors say "channel". Names with control characters are refused
  // by both.
  static Result<EventWeights> ParseChannels(std::string_view spec);
  // "cart, purchase, view": the names, for error messages.
  std::string Names() const;
  // view=1,cart=4,purchase=10,return=-4: a return takes back part of the
  // interest a purchase showed (purchase+return = 6 stays positive; a bare
  // return nets <= 0 and is dropped). not_interested=-1,hide_brand=-1: the
  // negative feedback of a shopper (serving treats them as such, see
  // engine/engine.h Feedback); in training they cancel a view.
  static EventWeights Default();
  // Channel multipliers (online=1,app=1,store=1,wishlist=1): where an event
  // happened. A row's weight is its event weight times its channel's, so an
  // in-store purchase and a wishlist add are taste evidence like online ones
  // unless a retailer weighs them otherwise (--channels store=1.5).
  static EventWeights DefaultChannels();
};

struct InteractionsReadOptions {
  std::string user_column = "user_id";  // required column
  std::string item_column = "item_id";  // required column; ids of the catalog
  // Optional columns, used if present in the header; "" = never use.
  std::string weight_column = "weight";
  std::string timestamp_column = "timestamp";
  std::string event_column = "event";
  std::string channel_column = "channel";
  // Gifts: a row whose gift_column is true (true/yes/1) or whose event is in
  // gift_events is a gift. Its weight goes to the item's gift weight, never
  // into the buyer's row: a gift says nothing about the buyer's own taste.
  std::string gift_column = "gift";
  std::vector<std::string> gift_events = {"gift_purchase"};
  EventWeights events = EventWeights::Default();  // weight of each event_column value
  // Multiplier of each channel_column value; unknown channels are an error
  // naming the line, like unknown events. An empty cell counts 1.
  EventWeights channels = EventWeights::DefaultChannels();
  // Users whose rows are skipped entirely, as if absent from the file (the
  // forget list, engine/forget.h): no history, no gift, no trend count.
  std::set<std::string, std::less<>> skip_users;
  bool strict = false;          // unknown items are an error instead of a warning
  bool skip_bad_lines = false;  // malformed lines counted instead of failing
  // Rows buffered, then sorted and folded, per run before the runs are
  // merged (24 bytes each). A tuning knob; small values exercise the merge.
  size_t rows_per_run = size_t{1} << 22;
};

struct Interactions {
  IdMap users;
  CsrMatrix matrix;                                // users x items, aggregated weights
  std::vector<int64_t> timestamps;                 // per nonzero: latest timestamp (0 if none)
  int64_t raw_events = 0;                          // rows read, bad lines excluded
  int64_t unknown_item_events = 0;                 // rows naming items not in the catalog
  int64_t skipped_user_events = 0;                 // rows of skip_users, left out
  std::vector<std::string> unknown_item_examples;  // first 5 distinct, for messages
  int64_t skipped_lines = 0;                       // bad lines under skip_bad_lines
  std::vector<int64_t> skipped_line_numbers;       // first few of them
  std::string skipped_summary;                     // CsvReader::BadLinesSummary(); "" if none
  int64_t dropped_nonpositive = 0;  // (user, item) pairs with weight sum <= 0, dropped
  std::vector<double> gift_weights;  // per catalog item: summed weight of gift rows
  int64_t gift_events = 0;           // gift rows read (not in `matrix`)
  // Every timed row (gifts too) by item and hour, over the last two weeks
  // of the data: what item trends are computed from (engine/trend.h).
  ItemActivity activity;

  // Reads the CSV; item ids resolve against `items` (catalog order = columns).
  // matrix is users.size() x items.size(), columns sorted within each row;
  // timestamps[k] belongs to matrix.indices[k]. Under `strict` an unknown
  // item is an error "events.csv:7:2: unknown item_id 'X' (not in the catalog)".
  static Result<Interactions> ReadCsv(const std::filesystem::path& path, const IdMap& items,
                                      const InteractionsReadOptions& opts = {});
};

}  // namespace vitrine
