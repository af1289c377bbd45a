#include "serve/experiment.h"

#include <cmath>
#include <cstdint>
#include <set>
#include <toml++/toml.h>

#include "core/pseudonym.h"
#include "engine/config_file.h"

namespace vitrine {
namespace {

bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

constexpr const char* kNameRule = "1-64 characters of A-Z a-z 0-9 . _ -";

// One [[variant]] table.
Result<Variant> ParseVariant(const toml::table& t, const std::string& file, size_t number) {
  Variant v;
  const std::string which = "variant " + std::to_string(number);
  auto bad = [&](const toml::node& n, const std::string& what) {
    return Status::InvalidArgument(ConfigWhere(file, n.source()) + ": " + which + ": " + what);
  };
  bool has_share = false;
  for (const auto& [k, node] : t) {
    const std::string key(k.str());
    if (key == "name") {
      auto s = node.value_exact<std::string>();
      if (!s || !IsName(*s)) return bad(node, "'name' must be " + std::string(kNameRule));
      v.name = *s;
    } else if (key == "share") {
      std::optional<double> d = node.value<double>();  // an integer 1 too
      if (!d || !(*d > 0 && *d <= 1)) return bad(node, "'share' must be a number in (0, 1]");
      v.share = *d;
      has_share = true;
    } else if (key == "ranker") {
      auto b = node.value_exact<bool>();
      if (!b) return bad(node, "'ranker' must be true or false");
      v.fields["ranker"] = *b;
    } else if (key == "diversity" || key == "rules") {
      auto s = node.value_exact<std::string>();
      if (!s) return bad(node, "'" + key + "' must be a string");
      v.fields[key] = *s;
    } else if (key == "weights") {
      const toml::table* w = node.as_table();
      if (w == nullptr) return bad(node, "'weights' must be a table of block = number");
      nlohmann::json weights = nlohmann::json::object();
      for (const auto& [block, value] : *w) {
        std::optional<double> d = value.value<double>();
        if (!d || !std::isfinite(*d)) {
          return bad(value, "weight '" + std::string(block.str()) + "' must be a number");
        }
        weights[std::string(block.str())] = *d;
      }
      v.fields["weights"] = std::move(weights);
    } else {
      return bad(node, "unknown key '" + key +
                           "' (a variant has name, share, ranker, diversity, weights, rules)");
    }
  }
  if (v.name.empty())
    return Status::InvalidArgument(ConfigWhere(file, t.source()) + ": " + which + ": no 'name'");
  if (!has_share) {
    return Status::InvalidArgument(ConfigWhere(file, t.source()) + ": " + which + " ('" + v.name +
                                   "'): no 'share'");
  }
  return v;
}

}  // namespace

Result<Experiment> Experiment::Load(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path.string(), "experiment file"));
  return Parse(text, path.string());
}

Result<Experiment> Experiment::Parse(const std::string& text, const std::string& file) {
  VITRINE_ASSIGN_OR_RETURN(toml::table table, ParseConfigToml(text, file));
  Experiment e;
  const toml::array* variants = nullptr;
  for (const auto& [k, node] : table) {
    const std::string key(k.str());
    if (key == "name") {
      auto s = node.value_exact<std::string>();
      if (!s || !IsName(*s)) {
        return Status::InvalidArgument(ConfigWhere(file, node.source()) + ": 'name' must be " +
                                       kNameRule);
      }
      e.name_ = *s;
    } else if (key == "variant" && node.is_array_of_tables()) {
      variants = node.as_array();
    } else {
      return Status::InvalidArgument(ConfigWhere(file, node.source()) + ": unknown key '" + key +
                                     "' (an experiment has name and [[variant]] tables)");
    }
  }
  if (e.name_.empty()) return Status::InvalidArgument(file + ": no 'name' (the experiment's)");
  if (variants == nullptr || variants->empty()) {
    return Status::InvalidArgument(file + ": no [[variant]] tables");
  }
  if (variants->size() > kMaxVariants) {
    return Status::InvalidArgument(file + ": " + std::to_string(variants->size()) +
                                   " variants; an experiment has at most " +
                                   std::to_string(kMaxVariants));
  }
  std::set<std::string> names;
  double total = 0;
  for (size_t i = 0; i < variants->size(); ++i) {
    VITRINE_ASSIGN_OR_RETURN(Variant v,
                             ParseVariant(*(*variants)[i].as_table(), file, i + 1));
    if (!names.insert(v.name).second) {
      return Status::InvalidArgument(ConfigWhere(file, (*variants)[i].source()) + ": variant " +
                                     std::to_string(i + 1) + ": the name '" + v.name +
                                     "' is taken by an earlier variant");
    }
    total += v.share;
    e.variants_.push_back(std::move(v));
  }
  if (std::abs(total - 1.0) > 1e-9) {
    return Status::InvalidArgument(file + ": the variants' shares add up to " +
                                   std::to_string(total) + ", expected 1");
  }
  return e;
}

double Experiment::UnitPoint(std::string_view experiment, std::string_view unit) {
  // The first 64 bits of the MAC, as a fraction of 2^64.
  const std::string hex = HmacSha256Hex(experiment, unit);
  const uint64_t bits = std::stoull(hex.substr(0, 16), nullptr, 16);
  return std::ldexp(static_cast<double>(bits >> 11), -53);
}

const Variant& Experiment::Assign(std::string_view unit) const {
  const double point = UnitPoint(name_, unit);
  double upper = 0;
  for (const Variant& v : variants_) {
    upper += v.share;
    if (point < upper) return v;
  }
  return variants_.back();  // shares summing to 1 - 1e-10
}

}  // namespace vitrine
