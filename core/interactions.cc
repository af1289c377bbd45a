#include "core/interactions.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <queue>

#include "core/csv.h"
#include "core/progress.h"

namespace vitrine {
namespace {

constexpr int64_t kNoTimestamp = std::numeric_limits<int64_t>::min();

// One kept row: sorting by `key` orders by user, then item.
struct Event {
  uint64_t key;   // user << 32 | item
  int64_t ts;     // kNoTimestamp if unknown
  double weight;  // summed in double so the order of a pair's rows barely matters
};

// String id -> dense index, insertion ordered: open addressing over one
// contiguous slot array with ids packed in an arena. On a log of millions of
// users it needs about one cache miss per lookup where std::unordered_map
// needs three or four, and hash lookups dominate reading time.
class FlatIds {
 public:
  FlatIds() : slots_(1024, 0), mask_(1023) {}

  size_t size() const { return offsets_.size() - 1; }
  std::string_view at(size_t i) const {
    return {arena_.data() + offsets_[i], static_cast<size_t>(offsets_[i + 1] - offsets_[i])};
  }
  // Index of `id`, or -1.
  int32_t Find(std::string_view id) const {
    const uint64_t h = XXH3_64bits(id.data(), id.size());
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t v = slots_[i];
      if (v == 0) return -1;
      if (v >> 32 == h >> 32 && at((v & 0xffffffffu) - 1) == id) {
        return static_cast<int32_t>((v & 0xffffffffu) - 1);
      }
    }
  }
  int32_t GetOrAdd(std::string_view id) {
    const uint64_t h = XXH3_64bits(id.data(), id.size());
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      const uint64_t v = slots_[i];
      if (v == 0) {
        const auto index = static_cast<int32_t>(size());
        // Slot: hash tag in the high half, index + 1 in the low (0 = empty).
        slots_[i] = (h >> 32 << 32) | (static_cast<uint64_t>(index) + 1);
        arena_.append(id);
        offsets_.push_back(arena_.size());
        if (2 * size() > slots_.size()) Grow();  // load factor <= 1/2
        return index;
      }
      if (v >> 32 == h >> 32 && at((v & 0xffffffffu) - 1) == id) {
        return static_cast<int32_t>((v & 0xffffffffu) - 1);
      }
    }
  }

 private:
  void Grow() {
    std::vector<uint64_t> old(slots_.size() * 2, 0);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const uint64_t v : old) {
      if (v == 0) continue;
      const std::string_view id = at((v & 0xffffffffu) - 1);
      uint64_t i = XXH3_64bits(id.data(), id.size()) & mask_;
      while (slots_[i] != 0) i = (i + 1) & mask_;
      slots_[i] = v;
    }
  }

  std::string arena_;
  std::vector<uint64_t> offsets_{0};
  std::vector<uint64_t> slots_;
  uint64_t mask_;
};

// Sorts a run by (user, item) and folds each pair into one event: weights
// summed, latest timestamp. Nonpositive sums stay (another run may add).
void SortAndFold(std::vector<Event>& run) {
  std::sort(run.begin(), run.end(), [](const Event& a, const Event& b) { return a.key < b.key; });
  size_t kept = 0;
  for (size_t i = 0; i < run.size(); ++i) {
    if (kept > 0 && run[kept - 1].key == run[i].key) {
      run[kept - 1].weight += run[i].weight;
      run[kept - 1].ts = std::max(run[kept - 1].ts, run[i].ts);
    } else {
      run[kept++] = run[i];
    }
  }
  run.resize(kept);
  if (kept < run.capacity() / 2) run.shrink_to_fit();
}

}  // namespace

namespace {

// "name=number,..." for event weights (kind "event") and channel
// multipliers (kind "channel", which must be > 0: a channel says where an
// event happened, never that it counts against the item).
Result<EventWeights> ParseWeightTable(std::string_view spec, std::string_view kind,
                                      std::string_view example) {
  EventWeights ew;
  const std::string k(kind);
  if (TrimBlanks(spec).empty()) {
    return Status::InvalidArgument("empty " + k + " weights, expected e.g. " + std::string(example));
  }
  int entry_no = 0;
  while (true) {
    ++entry_no;
    const size_t comma = spec.find(',');
    const std::string_view entry = TrimBlanks(spec.substr(0, comma));
    const std::string where =
        k + " weights entry " + std::to_string(entry_no) + " '" + std::string(entry.substr(0, 80)) + "'";
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(where + ": expected " + k + "=weight, e.g. " +
                                     std::string(example.substr(0, example.find(','))));
    }
    const std::string_view name = TrimBlanks(entry.substr(0, eq));
    const std::string_view value = TrimBlanks(entry.substr(eq + 1));
    if (name.empty()) {
      return Status::InvalidArgument(where + ": expected " + (kind == "event" ? "an " : "a ") + k +
                                     " name before '='");
    }
    // Names reach CSV logs and terminals: no control characters.
    if (std::any_of(name.begin(), name.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      return Status::InvalidArgument(where + ": the " + k + " name contains a control character");
    }
    double w = 0;
    if (!ParseFiniteDouble(value, &w)) {
      return Status::InvalidArgument(where + ": expected a number after '=', found '" +
                                     std::string(value.substr(0, 40)) + "'");
    }
    // Weights are summed in float: a bound keeps every sum finite.
    if (std::fabs(w) > kMaxEventWeight) {
      return Status::InvalidArgument(where + ": weight " + std::string(value.substr(0, 40)) +
                                     " is outside [-1e6, 1e6]");
    }
    if (kind == "channel" && !(w > 0)) {
      return Status::InvalidArgument(where + ": a channel multiplier must be > 0");
    }
    if (!ew.weights.emplace(std::string(name), static_cast<float>(w)).second) {
      return Status::InvalidArgument(where + ": " + k + " '" + std::string(name) +
                                     "' is named twice");
    }
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return ew;
}

}  // namespace

Result<EventWeights> EventWeights::Parse(std::string_view spec) {
  return ParseWeightTable(spec, "event", "view=1,cart=4,purchase=10");
}

std::string EventWeights::Names() const {
  std::string out;
  for (const auto& [name, v] : weights) out += (out.empty() ? "" : ", ") + name;
  return out;
}

Result<EventWeights> EventWeights::ParseChannels(std::string_view spec) {
  return ParseWeightTable(spec, "channel", "online=1,store=1.5");
}

EventWeights EventWeights::Default() {
  EventWeights ew;
  ew.weights = {{"view", 1.0f},           {"cart", 4.0f},        {"purchase", 10.0f},
                {"return", -4.0f},        {"not_interested", -1.0f}, {"hide_brand", -1.0f},
                {"gift_purchase", 10.0f}};
  return ew;
}

EventWeights EventWeights::DefaultChannels() {
  EventWeights ew;
  ew.weights = {{"online", 1.0f}, {"app", 1.0f}, {"store", 1.0f}, {"wishlist", 1.0f}};
  return ew;
}

Result<Interactions> Interactions::ReadCsv(const std::filesystem::path& path, const IdMap& items,
                                           const InteractionsReadOptions& opts) {
  CsvOptions csv_opts;
  csv_opts.skip_bad_lines = opts.skip_bad_lines;
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> csv, CsvReader::Open(path, csv_opts));
  VITRINE_ASSIGN_OR_RETURN(const int user_col, csv->ColumnIndex(opts.user_column));
  VITRINE_ASSIGN_OR_RETURN(const int item_col, csv->ColumnIndex(opts.item_column));
  auto optional = [&](const std::string& name) {
    return name.empty() ? -1 : csv->FindColumn(name);
  };
  const int weight_col = optional(opts.weight_column);
  const int ts_col = optional(opts.timestamp_column);
  const int event_col = optional(opts.event_column);
  const int channel_col = optional(opts.channel_column);
  const int gift_col = optional(opts.gift_column);
  const std::string known_events = opts.events.Names(), known_channels = opts.channels.Names();

  Interactions out;
  out.gift_weights.assign(items.size(), 0.0);
  FlatIds item_index;
  for (const std::string& id : items.ids()) item_index.GetOrAdd(id);
  FlatIds users;
  std::vector<std::vector<Event>> runs;
  // Rows are buffered in runs; each is sorted and folded on its own, so
  // memory grows in steps (no doubling copy of everything) and pairs repeated
  // within a run cost one event. The first run grows by doubling so that
  // small files allocate little.
  const size_t run_rows = std::max<size_t>(opts.rows_per_run, 1);
  std::vector<Event> run;
  // Logs are often grouped by user: remembering the last one skips most
  // hash lookups.
  std::string last_user;
  int32_t last_user_index = -1;
  // Progress counts MB of the file (compressed MB for gzip), for the
  // percentage and the ETA: 20M rows take tens of seconds to read.
  StageTimer timer("read interactions", csv->file_bytes() >> 20);
  while (csv->Next()) {
    if ((csv->records() & 0xFFFF) == 0) timer.Update(csv->bytes_consumed() >> 20);
    // Reports a bad value: an error, or counted and skipped.
    auto bad = [&](int col, std::string what) {
      std::string msg = csv->Where() + ":" + std::to_string(col + 1) + ": " + std::move(what);
      if (!opts.skip_bad_lines) return Status::InvalidArgument(std::move(msg));
      csv->SkipBadLine(std::move(msg));
      return Status::OK();
    };
    const std::string_view user = csv->field(user_col);
    const std::string_view item = csv->field(item_col);
    if (user.empty()) {
      VITRINE_RETURN_IF_ERROR(bad(user_col, "empty " + opts.user_column + ", expected an id"));
      continue;
    }
    if (item.empty()) {
      VITRINE_RETURN_IF_ERROR(bad(item_col, "empty " + opts.item_column + ", expected an id"));
      continue;
    }
    if (!opts.skip_users.empty() && opts.skip_users.count(user) > 0) {
      ++out.skipped_user_events;
      continue;
    }

    double weight = 1;
    const std::string_view wcell = weight_col >= 0 ? csv->field(weight_col) : "";
    if (!TrimBlanks(wcell).empty()) {
      if (!ParseFiniteDouble(wcell, &weight)) {
        VITRINE_RETURN_IF_ERROR(bad(weight_col, "column '" + opts.weight_column +
                                                    "' expects a number, found '" +
                                                    std::string(wcell) + "'"));
        continue;
      }
    } else if (event_col >= 0) {
      const std::string_view ev = TrimBlanks(csv->field(event_col));
      const auto it = opts.events.weights.find(ev);
      if (it == opts.events.weights.end()) {
        VITRINE_RETURN_IF_ERROR(bad(event_col, "unknown event '" + std::string(ev) +
                                                   "' (known events: " + known_events + ")"));
        continue;
      }
      weight = it->second;
    }
    if (channel_col >= 0) {
      const std::string_view ch = TrimBlanks(csv->field(channel_col));
      if (!ch.empty()) {
        const auto it = opts.channels.weights.find(ch);
        if (it == opts.channels.weights.end()) {
          VITRINE_RETURN_IF_ERROR(bad(channel_col, "unknown channel '" + std::string(ch) +
                                                       "' (known channels: " + known_channels +
                                                       "; add one with --channels NAME=WEIGHT)"));
          continue;
        }
        weight *= it->second;
      }
    }

    int64_t ts = kNoTimestamp;
    if (ts_col >= 0) {
      const std::string_view cell = csv->field(ts_col);
      if (!TrimBlanks(cell).empty() && !ParseTimestamp(cell, &ts)) {
        VITRINE_RETURN_IF_ERROR(
            bad(ts_col, "column '" + opts.timestamp_column +
                            "' expects integer seconds or an ISO-8601 time like "
                            "2024-05-01T10:00:00Z, found '" +
                            std::string(cell) + "'"));
        continue;
      }
    }

    ++out.raw_events;
    const int32_t item_id = item_index.Find(item);
    if (item_id < 0) {
      if (opts.strict) {
        return Status::InvalidArgument(csv->Where() + ":" + std::to_string(item_col + 1) +
                                       ": unknown " + opts.item_column + " '" + std::string(item) +
                                       "' (not in the catalog)");
      }
      ++out.unknown_item_events;
      auto& ex = out.unknown_item_examples;
      if (ex.size() < 5 && std::find(ex.begin(), ex.end(), item) == ex.end()) ex.emplace_back(item);
      continue;
    }
    // Demand over time, gifts included, for item trends.
    if (ts != kNoTimestamp) out.activity.Add(item_id, ts, weight);
    bool gift = false;
    if (gift_col >= 0) {
      const std::string_view cell = TrimBlanks(csv->field(gift_col));
      if (!cell.empty()) {
        const std::optional<bool> b = ParseBool(cell);
        if (!b) {
          VITRINE_RETURN_IF_ERROR(bad(gift_col, "column '" + opts.gift_column +
                                                    "' expects true or false, found '" +
                                                    std::string(cell) + "'"));
          continue;
        }
        gift = *b;
      }
    }
    if (!gift && event_col >= 0) {
      const std::string_view ev = TrimBlanks(csv->field(event_col));
      gift = std::find(opts.gift_events.begin(), opts.gift_events.end(), ev) !=
             opts.gift_events.end();
    }
    if (gift) {
      out.gift_weights[static_cast<size_t>(item_id)] += weight;
      ++out.gift_events;
      continue;
    }
    if (last_user_index < 0 || user != last_user) {
      last_user_index = users.GetOrAdd(user);
      last_user.assign(user);
    }
    // Weights are stored as float in the matrix; round each row the same way.
    run.push_back({static_cast<uint64_t>(last_user_index) << 32 | static_cast<uint32_t>(item_id),
                   ts, static_cast<double>(static_cast<float>(weight))});
    if (run.size() >= run_rows) {
      SortAndFold(run);
      runs.push_back(std::move(run));
      run = {};
      run.reserve(run_rows);
    }
  }
  VITRINE_RETURN_IF_ERROR(csv->status());
  out.skipped_lines = csv->bad_lines();
  out.skipped_line_numbers = csv->bad_line_numbers();
  out.skipped_summary = csv->BadLinesSummary();
  csv.reset();

  SortAndFold(run);
  runs.push_back(std::move(run));
  for (size_t u = 0; u < users.size(); ++u) out.users.Add(users.at(u));
  users = FlatIds();

  // Merge the sorted runs (a heap of their heads), fold pairs that recur
  // across runs, drop nonpositive sums, and write CSR in order.
  size_t upper = 0;
  for (const auto& r : runs) upper += r.size();
  CsrMatrix& m = out.matrix;
  m.rows = out.users.size();
  m.cols = items.size();
  m.indptr.assign(static_cast<size_t>(m.rows) + 1, 0);
  m.indices.reserve(upper);
  m.values.reserve(upper);
  out.timestamps.reserve(upper);
  using Head = std::pair<uint64_t, size_t>;  // (key, run)
  std::priority_queue<Head, std::vector<Head>, std::greater<>> heap;
  std::vector<size_t> pos(runs.size(), 0);
  for (size_t r = 0; r < runs.size(); ++r) {
    if (!runs[r].empty()) heap.push({runs[r][0].key, r});
  }
  while (!heap.empty()) {
    const uint64_t key = heap.top().first;
    double sum = 0;
    int64_t ts = kNoTimestamp;
    while (!heap.empty() && heap.top().first == key) {
      const size_t r = heap.top().second;
      heap.pop();
      const Event& e = runs[r][pos[r]];
      sum += e.weight;
      ts = std::max(ts, e.ts);
      if (++pos[r] < runs[r].size()) heap.push({runs[r][pos[r]].key, r});
    }
    if (sum <= 0) {
      ++out.dropped_nonpositive;
      continue;
    }
    ++m.indptr[(key >> 32) + 1];
    m.indices.push_back(static_cast<int32_t>(key & 0xffffffffu));
    m.values.push_back(static_cast<float>(sum));
    out.timestamps.push_back(ts == kNoTimestamp ? 0 : ts);
  }
  for (size_t r = 0; r < static_cast<size_t>(m.rows); ++r) m.indptr[r + 1] += m.indptr[r];
  timer.Done(std::to_string(out.raw_events) + " events, " + std::to_string(out.users.size()) +
             " users, " + std::to_string(m.nnz()) + " user-item pairs" +
             (opts.skip_users.empty() ? ""
                                      : "; " + std::to_string(out.skipped_user_events) +
                                            " events of forgotten users left out"));
  return out;
}

}  // namespace vitrine
