// Experiment: named A/B variants of /recommend's defaults, read from a TOML
// file (`vitrine serve --experiment FILE`; docs/serving.md, "A/B variants").
//
//   name = "ranker-vs-hybrid"      # the experiment: part of every assignment
//   [[variant]]
//   name = "control"               # the first variant is the control
//   share = 0.5
//   [[variant]]
//   name = "hybrid"
//   share = 0.5
//   ranker = false                 # request fields this variant sets:
//   diversity = "mmr:0.3"          #   ranker, diversity, weights, rules
//   weights = { cf = 1.0, content = 0.5 }
//   rules = "exclude where stock = 0"
//
// A user is assigned by HMAC-SHA256(experiment name, user id) read as a
// number in [0, 1) against the variants' cumulative shares: the same user
// gets the same variant on every replica and after restarts, and renaming
// the experiment reshuffles everyone. A variant's fields are defaults: a
// request that sets a field itself keeps its own value.
//
// Limits: at most kMaxVariants variants; shares in (0, 1] adding up to 1
// (within 1e-9); names of 1-64 characters of [A-Za-z0-9._-].
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

inline constexpr size_t kMaxVariants = 16;

struct Variant {
  std::string name;
  double share = 0;
  nlohmann::json fields = nlohmann::json::object();  // /recommend body fields it sets
};

class Experiment {
 public:
  // Errors name the file, line and column of the offending key.
  static Result<Experiment> Load(const std::filesystem::path& path);
  static Result<Experiment> Parse(const std::string& text, const std::string& file_name);

  const std::string& name() const { return name_; }
  const std::vector<Variant>& variants() const { return variants_; }

  // The variant of the user `unit`.
  const Variant& Assign(std::string_view unit) const;
  // The user's point in [0, 1): HMAC-SHA256 keyed by the experiment name.
  static double UnitPoint(std::string_view experiment, std::string_view unit);

 private:
  std::string name_;
  std::vector<Variant> variants_;
};

}  // namespace vitrine
