// ItemActivity: hourly buckets per item inside the trend horizon.
#include "core/item_activity.h"

#include <algorithm>

namespace vitrine {

void ItemActivity::Add(int32_t item, int64_t seconds, double weight) {
  // Hours must fit the key's 32 bits (until the year 2459); before 1970 or
  // unknown (0) is no time at all.
  if (item < 0 || seconds <= 0 || seconds / 3600 > int64_t{0xFFFFFFFF}) return;
  AddBucket(item, seconds / 3600, weight, 1);
}

void ItemActivity::AddBucket(int32_t item, int64_t hour, double weight, double count) {
  if (newest_hour_ >= 0 && hour <= newest_hour_ - kHorizonHours) return;  // too old to matter
  Sum& s = buckets_[Key(item, hour)];
  s.weight += weight;
  s.count += count;
  if (hour > newest_hour_) newest_hour_ = hour;
  if (buckets_.size() >= sweep_at_) DropOld();
}

void ItemActivity::DropOld() {
  const int64_t oldest = newest_hour_ - kHorizonHours;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    if (static_cast<int64_t>(it->first & 0xFFFFFFFFu) <= oldest) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  sweep_at_ = std::max<size_t>(size_t{1} << 16, 2 * buckets_.size());
}

void ItemActivity::Merge(const ItemActivity& other) {
  for (const auto& [key, s] : other.buckets_) {
    AddBucket(static_cast<int32_t>(key >> 32), static_cast<int64_t>(key & 0xFFFFFFFFu), s.weight,
              s.count);
  }
}

void ItemActivity::Sums(int64_t from_hour, int64_t to_hour, int32_t items,
                        std::vector<double>* weight, std::vector<double>* count) const {
  weight->assign(static_cast<size_t>(std::max(items, 0)), 0.0);
  count->assign(weight->size(), 0.0);
  for (const auto& [key, s] : buckets_) {
    const auto item = static_cast<int32_t>(key >> 32);
    const auto hour = static_cast<int64_t>(key & 0xFFFFFFFFu);
    if (hour < from_hour || hour >= to_hour || item >= items) continue;
    (*weight)[static_cast<size_t>(item)] += s.weight;
    (*count)[static_cast<size_t>(item)] += s.count;
  }
}

std::vector<ItemActivity::Bucket> ItemActivity::Buckets() const {
  std::vector<Bucket> out;
  out.reserve(buckets_.size());
  for (const auto& [key, s] : buckets_) {
    const auto hour = static_cast<int64_t>(key & 0xFFFFFFFFu);
    if (hour <= newest_hour_ - kHorizonHours) continue;
    out.push_back({static_cast<int32_t>(key >> 32), hour, s.weight, s.count});
  }
  std::sort(out.begin(), out.end(), [](const Bucket& a, const Bucket& b) {
    return a.item != b.item ? a.item < b.item : a.hour < b.hour;
  });
  return out;
}

ItemActivity ItemActivity::Remapped(const std::vector<int32_t>& remap, int64_t after_hour) const {
  ItemActivity out;
  for (const Bucket& b : Buckets()) {
    const auto from = static_cast<size_t>(b.item);
    if (from >= remap.size() || remap[from] < 0 || b.hour <= after_hour) continue;
    out.AddBucket(remap[from], b.hour, b.weight, b.count);
  }
  out.newest_hour_ = newest_hour_;  // "now" does not move when items go
  return out;
}

}  // namespace vitrine
