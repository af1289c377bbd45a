// ItemActivity: weighted events per item per hour, over the last
// kHorizonHours before the newest event seen. Item trends (engine/trend.h)
// are computed from it: at build time from the interaction rows (stored in
// the bundle as trend/*.npy), and while serving from live events too.
//
// Memory is bounded by the distinct (item, hour) pairs inside the horizon:
// buckets older than the horizon can never matter again (the newest time
// only grows) and are dropped whenever the store has doubled since the last
// sweep. Events without a time (0 or before 1970) are ignored: a trend needs
// a time.
//
// Not thread-safe for writes; the server guards its live store with a mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace vitrine {

class ItemActivity {
 public:
  // Twice the longest trend window (7 days): a window and the one before it.
  static constexpr int64_t kHorizonHours = 14 * 24;

  struct Bucket {
    int32_t item = 0;
    int64_t hour = 0;   // unix seconds / 3600
    double weight = 0;  // summed event weights
    double count = 0;   // events
  };

  // One event of `weight` on `item` at unix time `seconds`.
  void Add(int32_t item, int64_t seconds, double weight);
  // Adds a stored bucket (a bundle's trend/*.npy rows).
  void Add(const Bucket& b) { AddBucket(b.item, b.hour, b.weight, b.count); }
  // Adds every bucket of `other` (a live store onto the build's).
  void Merge(const ItemActivity& other);
  // The hour of the newest event, or -1 when empty.
  int64_t newest_hour() const { return newest_hour_; }
  bool empty() const { return buckets_.empty(); }

  // Per item (vectors of `items` entries): summed weights and event counts
  // over hours [from_hour, to_hour). Items outside [0, items) are skipped.
  void Sums(int64_t from_hour, int64_t to_hour, int32_t items, std::vector<double>* weight,
            std::vector<double>* count) const;

  // Buckets inside the horizon, sorted by (item, hour): what the bundle stores.
  std::vector<Bucket> Buckets() const;
  // Item indices renumbered by `remap` (old row -> new row, -1 = removed),
  // keeping only the hours after `after_hour`.
  ItemActivity Remapped(const std::vector<int32_t>& remap, int64_t after_hour = -1) const;

 private:
  static uint64_t Key(int32_t item, int64_t hour) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(item)) << 32) | static_cast<uint32_t>(hour);
  }
  void AddBucket(int32_t item, int64_t hour, double weight, double count);
  void DropOld();

  struct Sum {
    double weight = 0;
    double count = 0;
  };
  std::unordered_map<uint64_t, Sum> buckets_;  // Key(item, hour) -> sums
  int64_t newest_hour_ = -1;
  size_t sweep_at_ = 1 << 16;  // size at which old buckets are next dropped
};

}  // namespace vitrine
