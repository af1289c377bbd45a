// IdMap: external string ids <-> dense int32 indices [0, size).
// Indices are assigned in insertion order and never change, so catalog order
// is index order. Not thread-safe for writes; const lookups are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vitrine {

class IdMap {
 public:
  // Returns the index of `id`, adding it if new.
  int32_t GetOrAdd(std::string_view id);
  // Adds `id`; returns false (and changes nothing) if it is already present.
  bool Add(std::string_view id);
  // Index of `id`, or nullopt if unknown.
  std::optional<int32_t> Find(std::string_view id) const;
  const std::string& id(int32_t index) const { return ids_[static_cast<size_t>(index)]; }
  const std::vector<std::string>& ids() const { return ids_; }
  int32_t size() const { return static_cast<int32_t>(ids_.size()); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> index_;
  std::vector<std::string> ids_;
};

}  // namespace vitrine
