#include "core/id_map.h"

namespace vitrine {

int32_t IdMap::GetOrAdd(std::string_view id) {
  auto it = index_.find(id);
  if (it != index_.end()) return it->second;
  const auto idx = static_cast<int32_t>(ids_.size());
  ids_.emplace_back(id);
  index_.emplace(ids_.back(), idx);
  return idx;
}

bool IdMap::Add(std::string_view id) {
  if (index_.find(id) != index_.end()) return false;
  GetOrAdd(id);
  return true;
}

std::optional<int32_t> IdMap::Find(std::string_view id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

}  // namespace vitrine
