// IdMap: external string ids <-> dense int32 indices [0, size).
// Indices are assigned in insertion order and never change, so catalog order
// is index order. Not thread-safe for writes; const lookups are.
//
// Memory: the ids themselves plus a 4-byte slot per id at load factor <= 1/2
// (open addressing over indices into the id list), about a third of what a
// std::unordered_map keeping a second copy of every id needs
// (docs/experiments.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vitrine {

class IdMap {
 public:
  // Returns the index of `id`, adding it if new.
  int32_t GetOrAdd(std::string_view id);
  // Adds `id`; returns false (and changes nothing) if it is already present.
  bool Add(std::string_view id);
  // Capacity for `n` ids without regrowing; ShrinkToFit returns the slack of
  // the id list (the table stays at load factor <= 1/2).
  void Reserve(size_t n);
  void ShrinkToFit() { ids_.shrink_to_fit(); }
  // Index of `id`, or nullopt if unknown.
  std::optional<int32_t> Find(std::string_view id) const;
  const std::string& id(int32_t index) const { return ids_[static_cast<size_t>(index)]; }
  const std::vector<std::string>& ids() const { return ids_; }
  int32_t size() const { return static_cast<int32_t>(ids_.size()); }

 private:
  // The slot holding `id`, or the empty slot where it would go.
  size_t Probe(std::string_view id) const;
  void Grow();

  std::vector<std::string> ids_;
  std::vector<int32_t> slots_;  // index into ids_, or -1; size is a power of two
};

}  // namespace vitrine
