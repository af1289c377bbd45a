#include "core/id_map.h"

#include <functional>

namespace vitrine {

size_t IdMap::Probe(std::string_view id) const {
  const size_t mask = slots_.size() - 1;
  // Linear probing; the table is never more than half full, so this ends.
  for (size_t s = std::hash<std::string_view>{}(id)&mask;; s = (s + 1) & mask) {
    const int32_t i = slots_[s];
    if (i < 0 || ids_[static_cast<size_t>(i)] == id) return s;
  }
}

void IdMap::Grow() {
  std::vector<int32_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 16 : old.size() * 2, -1);
  for (int32_t i : old) {
    if (i >= 0) slots_[Probe(ids_[static_cast<size_t>(i)])] = i;
  }
}

void IdMap::Reserve(size_t n) {
  ids_.reserve(n);
  while (2 * n > slots_.size()) Grow();
}

int32_t IdMap::GetOrAdd(std::string_view id) {
  if (2 * (ids_.size() + 1) > slots_.size()) Grow();
  const size_t s = Probe(id);
  if (slots_[s] >= 0) return slots_[s];
  const auto idx = static_cast<int32_t>(ids_.size());
  ids_.emplace_back(id);
  slots_[s] = idx;
  return idx;
}

bool IdMap::Add(std::string_view id) {
  const int32_t before = size();
  return GetOrAdd(id) == before;
}

std::optional<int32_t> IdMap::Find(std::string_view id) const {
  if (slots_.empty()) return std::nullopt;
  const int32_t i = slots_[Probe(id)];
  if (i < 0) return std::nullopt;
  return i;
}

}  // namespace vitrine
