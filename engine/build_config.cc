// The build configuration keys (build_config.h): a table of typed entries,
// each with a reader that checks type and range and a writer that prints a
// value reading back to the same one.
#include "engine/build_config.h"

#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <type_traits>
#include <utility>

#include "core/file_util.h"
#include "core/status.h"
#include "engine/bundle_schema.h"
#include "engine/config_file.h"
#include "engine/ranker_training.h"

namespace vitrine {
namespace {

// The shortest text that reads back to `v` (std::to_chars), always with a
// '.' or an exponent so that TOML parses it as a float.
template <typename T>
std::string RealText(T v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

// A TOML basic string.
std::string QuotedText(const std::string& v) {
  std::string s = "\"";
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      s += '\\';
      s += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      s += buf;
    } else {
      s += static_cast<char>(c);
    }
  }
  return s + "\"";
}

// A bound or a value for a message: 4096, 0.5, 1e+300.
std::string NumberText(double v) {
  char buf[32];
  if (std::isfinite(v) && std::floor(v) == v && std::fabs(v) < 1e16) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%g", v);
  }
  return buf;
}

struct Range {
  double lo, hi;
  bool lo_open = false;  // (lo, hi] instead of [lo, hi]
  bool Contains(long double v) const { return (lo_open ? v > lo : v >= lo) && v <= hi; }
  std::string Text() const {
    return std::string(lo_open ? "(" : "[") + NumberText(lo) + ", " + NumberText(hi) + "]";
  }
};

// One key. `read` returns an error message (without location) or "";
// `write` is empty for keys that are only read (schema, events).
struct ConfigKey {
  std::string section, name, type, help;
  std::function<std::string(const toml::node&, BuildOptions&)> read;
  std::function<std::string(const BuildOptions&)> write;
  std::string Path() const { return section + "." + name; }
};

std::string Shown(const toml::node& n) {
  std::ostringstream s;
  n.visit([&](const auto& x) {
    if constexpr (toml::is_table<decltype(x)>) {
      s << "a table";
    } else if constexpr (toml::is_array<decltype(x)>) {
      s << "an array";
    } else if constexpr (toml::is_floating_point<decltype(x)>) {
      s << NumberText(*x);
    } else {
      s << x;
    }
  });
  std::string t = s.str();
  return t.size() > 40 ? t.substr(0, 40) + "..." : t;
}

// `get` is a generic lambda returning a reference to the member, so that one
// accessor serves both the reader (non-const) and the writer (const).
template <typename Get>
ConfigKey Integer(std::string section, std::string name, Get get, Range r, std::string help) {
  using T = std::remove_reference_t<decltype(get(std::declval<BuildOptions&>()))>;
  std::string type = "integer in " + r.Text();
  return {section, name, type, std::move(help),
          [get, r, type](const toml::node& n, BuildOptions& o) -> std::string {
            // Integers compare exactly as long double (64-bit mantissa), so
            // a seed keeps every bit; an integral float is taken as well.
            if (auto i = n.value_exact<int64_t>()) {
              if (!r.Contains(static_cast<long double>(*i))) {
                return "expected an " + type + ", got " + Shown(n);
              }
              get(o) = static_cast<T>(*i);
              return "";
            }
            const auto d = n.value_exact<double>();
            // (|d| < 9e18 keeps the cast defined for every integer type used.)
            if (!d || !std::isfinite(*d) || std::floor(*d) != *d || std::fabs(*d) >= 9e18 ||
                !r.Contains(*d)) {
              return "expected an " + type + ", got " + Shown(n);
            }
            get(o) = static_cast<T>(*d);
            return "";
          },
          [get](const BuildOptions& o) { return std::to_string(get(o)); }};
}

template <typename Get>
ConfigKey Real(std::string section, std::string name, Get get, Range r, std::string help) {
  using T = std::remove_reference_t<decltype(get(std::declval<BuildOptions&>()))>;
  std::string type = "number in " + r.Text();
  return {section, name, type, std::move(help),
          [get, r, type](const toml::node& n, BuildOptions& o) -> std::string {
            const auto v = n.value<double>();
            if (!n.is_number() || !v || !std::isfinite(*v) || !r.Contains(*v)) {
              return "expected a " + type + ", got " + Shown(n);
            }
            get(o) = static_cast<T>(*v);
            return "";
          },
          [get](const BuildOptions& o) { return RealText(get(o)); }};
}

// A string; `check` may refuse it (returns a message) or transform it into
// the member (set).
template <typename Get>
ConfigKey Text(std::string section, std::string name, Get get, std::string help) {
  return {section, name, "string", std::move(help),
          [get](const toml::node& n, BuildOptions& o) -> std::string {
            const auto v = n.value_exact<std::string>();
            if (!v) return "expected a string, got " + Shown(n);
            get(o) = *v;
            return "";
          },
          [get](const BuildOptions& o) { return QuotedText(std::string(get(o))); }};
}

// A string read by `parse` (a static Parse returning Result<T>) into the
// member; its errors are the parser's own. Read-only: no writer.
template <typename Parse, typename Get>
ConfigKey Parsed(std::string section, std::string name, Parse parse, Get get, std::string help) {
  return {section, name, "string", std::move(help),
          [parse, get](const toml::node& n, BuildOptions& o) -> std::string {
            const auto v = n.value_exact<std::string>();
            if (!v) return "expected a string, got " + Shown(n);
            auto r = parse(*v);
            if (!r.ok()) return r.status().message();
            get(o) = *std::move(r);
            return "";
          },
          nullptr};
}

// One of `names` (a string), mapped to the member's value.
template <typename Get, typename T>
ConfigKey Choice(std::string section, std::string name, Get get,
                 std::vector<std::pair<std::string, T>> names, std::string help) {
  std::string type;
  for (const auto& [s, v] : names) type += (type.empty() ? "" : " | ") + QuotedText(s);
  return {section, name, type, std::move(help),
          [get, names, type](const toml::node& n, BuildOptions& o) -> std::string {
            const auto v = n.value_exact<std::string>();
            for (const auto& [s, x] : names) {
              if (v && *v == s) {
                get(o) = x;
                return "";
              }
            }
            return "expected one of " + type + ", got " + Shown(n);
          },
          [get, names](const BuildOptions& o) {
            for (const auto& [s, x] : names) {
              if (get(o) == x) return QuotedText(s);
            }
            return std::string("\"\"");
          }};
}

template <typename Get>
ConfigKey Flag(std::string section, std::string name, Get get, std::string help) {
  return {section, name, "true | false", std::move(help),
          [get](const toml::node& n, BuildOptions& o) -> std::string {
            const auto v = n.value_exact<bool>();
            if (!v) return "expected true or false, got " + Shown(n);
            get(o) = *v;
            return "";
          },
          [get](const BuildOptions& o) { return std::string(get(o) ? "true" : "false"); }};
}

constexpr double kMaxInt32 = std::numeric_limits<int32_t>::max();
constexpr double kMaxInt64 = 9223372036854775807.0;  // rounds to 2^63; integers compare exactly
constexpr double kMaxWeight = kMaxBlockWeight;  // the manifest's bound (engine/bundle_schema.h)

const std::vector<ConfigKey>& Keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> k;
    // [input]
    k.push_back(Text("input", "items", [](auto& o) -> auto& { return o.items; },
                     "items CSV (--items)"));
    k.push_back(Text("input", "interactions", [](auto& o) -> auto& { return o.interactions; },
                     "interactions CSV (--interactions)"));
    k.push_back(Text("input", "images", [](auto& o) -> auto& { return o.images; },
                     "IDX image file (--images)"));
    k.push_back(Text("input", "visual", [](auto& o) -> auto& { return o.visual; },
                     "precomputed visual vectors (--visual)"));
    k.push_back(Text("input", "image_column", [](auto& o) -> auto& { return o.image_column; },
                     "catalog column of image file paths (--image-column)"));
    k.push_back(Text("input", "opt_out", [](auto& o) -> auto& { return o.opt_out; },
                     "user ids never listed in an audience, one per line (--opt-out)"));
    k.push_back(Text("input", "forget_list", [](auto& o) -> auto& { return o.forget_list; },
                     "user ids whose interactions are left out, written by vitrine forget "
                     "(--forget-list)"));
    k.push_back(Parsed("input", "schema", &Schema::Parse,
                       [](auto& o) -> auto& { return o.catalog.schema; },
                       "column types, e.g. \"price:numeric,tags:list\" (--schema)"));
    k.push_back(Parsed("input", "events", &EventWeights::Parse,
                       [](auto& o) -> auto& { return o.interactions_read.events; },
                       "event weights, e.g. \"view=1,purchase=10\" (--events)"));
    k.push_back(Parsed("input", "channels", &EventWeights::ParseChannels,
                       [](auto& o) -> auto& { return o.interactions_read.channels; },
                       "channel multipliers of event weights, e.g. \"online=1,store=1.5\" "
                       "(--channels)"));
    k.push_back(Text("input", "id_column", [](auto& o) -> auto& { return o.catalog.id_column; },
                     "catalog id column"));
    k.push_back(Text("input", "user_column",
                     [](auto& o) -> auto& { return o.interactions_read.user_column; },
                     "interactions user column"));
    k.push_back(Text("input", "item_column",
                     [](auto& o) -> auto& { return o.interactions_read.item_column; },
                     "interactions item column"));
    // [als]
    k.push_back(Integer("als", "factors", [](auto& o) -> auto& { return o.als.factors; },
                        {1, 4096}, "latent factors (--factors)"));
    k.push_back(Real("als", "regularization",
                     [](auto& o) -> auto& { return o.als.regularization; }, {0, 1e6},
                     "L2 penalty (--regularization)"));
    k.push_back(Real("als", "alpha", [](auto& o) -> auto& { return o.als.alpha; }, {0, 1e6},
                     "confidence 1 + alpha * weight (--alpha)"));
    k.push_back(Integer("als", "iterations", [](auto& o) -> auto& { return o.als.iterations; },
                        {1, 1000}, "ALS sweeps (--iterations)"));
    k.push_back(Integer("als", "cg_steps", [](auto& o) -> auto& { return o.als.cg_steps; },
                        {1, 100}, "conjugate-gradient steps per row"));
    k.push_back(Integer("als", "seed", [](auto& o) -> auto& { return o.als.seed; },
                        {0, kMaxInt64}, "initial factors"));
    k.push_back(Choice("als", "solver", [](auto& o) -> auto& { return o.als.solver; },
                       std::vector<std::pair<std::string, AlsSolver>>{
                           {"cg", AlsSolver::kConjugateGradient}, {"cholesky", AlsSolver::kCholesky}},
                       "row solver"));
    // [content]
    k.push_back(Integer("content", "dim", [](auto& o) -> auto& { return o.content.dim; },
                        {1, 4096}, "content block dimension (--content-dim)"));
    k.push_back(Real("content", "min_count", [](auto& o) -> auto& { return o.content.min_count; },
                     {0, 1e9}, "items a categorical value needs to become a feature"));
    k.push_back(Integer("content", "numeric_buckets",
                        [](auto& o) -> auto& { return o.content.numeric_buckets; }, {1, 1000},
                        "quantile buckets per numeric column (1 = none)"));
    k.push_back(Integer("content", "text_min_df",
                        [](auto& o) -> auto& { return o.content.text_min_df; }, {1, kMaxInt32},
                        "items a text term needs"));
    k.push_back(Real("content", "text_weight",
                     [](auto& o) -> auto& { return o.content.text_weight; }, {0, kMaxWeight},
                     "default weight of text columns"));
    k.push_back(Integer("content", "seed", [](auto& o) -> auto& { return o.content.seed; },
                        {0, kMaxInt64}, "randomised SVD test matrix"));
    // [visual]
    k.push_back(Integer("visual", "dim", [](auto& o) -> auto& { return o.visual_encoder.dim; },
                        {1, 4096}, "visual block dimension (--visual-dim)"));
    k.push_back(Real("visual", "whiten_power",
                     [](auto& o) -> auto& { return o.visual_encoder.whiten_power; }, {0, 1},
                     "partial whitening: 0 none, 1 full"));
    // [cold_start]
    k.push_back(Integer("cold_start", "min_interactions",
                        [](auto& o) -> auto& { return o.cold_start.min_interactions; },
                        {0, kMaxInt64}, "items with fewer are cold (--cold-threshold)"));
    k.push_back(Real("cold_start", "lambda", [](auto& o) -> auto& { return o.cold_start.lambda; },
                     {0, 1e9}, "ridge penalty of the cold-start projection"));
    k.push_back(Real("cold_start", "norm_quantile",
                     [](auto& o) -> auto& { return o.cold_start.norm_quantile; }, {0, 1},
                     "quantile of the warm cf norms given to cold rows (0.5 = median)"));
    // [index]
    k.push_back(Text("index", "spec", [](auto& o) -> auto& { return o.index.spec; },
                     "FAISS index_factory string, or auto (the default; --index)"));
    k.push_back(Integer("index", "ef_construction",
                        [](auto& o) -> auto& { return o.index.hnsw_ef_construction; }, {1, 10000},
                        "HNSW build beam"));
    // [recency]
    k.push_back(Text("recency", "column", [](auto& o) -> auto& { return o.recency.column; },
                     "catalog arrival-date column (--arrival-column)"));
    k.push_back(Real("recency", "half_life_days",
                     [](auto& o) -> auto& { return o.recency.half_life_days; }, {0, 1e6, true},
                     "age at which newness is 0.5 (--new-half-life)"));
    // [trend]
    k.push_back(Integer("trend", "window_hours",
                        [](auto& o) -> auto& { return o.trend_window_hours; },
                        {1, kMaxTrendWindowHours}, "window of the trend block (--trend-window)"));
    // [item_neighbors]
    k.push_back(Choice("item_neighbors", "method",
                       [](auto& o) -> auto& { return o.item_neighbors.method; },
                       std::vector<std::pair<std::string, ItemNeighborsOptions::Method>>{
                           {"ease", ItemNeighborsOptions::Method::kEase},
                           {"cosine", ItemNeighborsOptions::Method::kCosine}},
                       "item-item source"));
    k.push_back(Real("item_neighbors", "ease_lambda",
                     [](auto& o) -> auto& { return o.item_neighbors.ease_lambda; },
                     {0, 1e9, true}, "EASE L2 penalty"));
    k.push_back(Real("item_neighbors", "shrink",
                     [](auto& o) -> auto& { return o.item_neighbors.shrink; }, {0, 1e9},
                     "cosine shrinkage"));
    k.push_back(Integer("item_neighbors", "neighbors",
                        [](auto& o) -> auto& { return o.item_neighbors.neighbors; }, {1, 10000},
                        "neighbours kept per item"));
    k.push_back(Integer("item_neighbors", "negative_neighbors",
                        [](auto& o) -> auto& { return o.item_neighbors.negative_neighbors; },
                        {0, 10000}, "most negative EASE weights kept per item"));
    // [taste_mixture]
    k.push_back(Integer("taste_mixture", "clusters",
                        [](auto& o) -> auto& { return o.taste_mixture.clusters; },
                        {0, TasteMixture::kMaxClusters}, "hidden tastes (0 = no taste mixture)"));
    k.push_back(Integer("taste_mixture", "iterations",
                        [](auto& o) -> auto& { return o.taste_mixture.iterations; }, {1, 1000},
                        "EM iterations"));
    k.push_back(Real("taste_mixture", "smoothing",
                     [](auto& o) -> auto& { return o.taste_mixture.smoothing; }, {0, 1e6, true},
                     "pseudo-count per item and taste"));
    // [ranker]
    k.push_back(Flag("ranker", "enabled", [](auto& o) -> auto& { return o.ranker.enabled; },
                     "train the learned ranker (--ranker on|off)"));
    k.push_back(Integer("ranker", "trees", [](auto& o) -> auto& { return o.ranker.rounds; },
                        {1, 10000}, "LambdaMART boosting rounds"));
    k.push_back(Integer("ranker", "max_depth",
                        [](auto& o) -> auto& { return o.ranker.max_depth; }, {1, 16},
                        "tree depth"));
    k.push_back(Integer("ranker", "users", [](auto& o) -> auto& { return o.ranker.max_users; },
                        {1, kMaxInt64}, "training users sampled (a fifth check the model)"));
    k.push_back(Integer("ranker", "pairs_per_sample",
                        [](auto& o) -> auto& { return o.ranker.pairs_per_sample; }, {1, 1000},
                        "LambdaMART pairs per relevant candidate"));
    k.push_back(Choice("ranker", "scorer", [](auto& o) -> auto& { return o.ranker.scorer; },
                       std::vector<std::pair<std::string, std::string>>{
                           {"auto", "auto"},
                           {kScorerRanker, kScorerRanker},
                           {kScorerItemItem, kScorerItemItem},
                           {kScorerHybrid, kScorerHybrid}},
                       "answer with the ranker, the item-item score, the hybrid score, or the "
                       "best on check users"));
    // [privacy]
    k.push_back(Text("privacy", "sensitive",
                     [](auto& o) -> auto& { return o.privacy.sensitive; },
                     "items treated with discretion, a rules predicate (--sensitive)"));
    k.push_back(Flag("privacy", "policy", [](auto& o) -> auto& { return o.privacy.policy; },
                     "sensitive items stay off shared screens and audiences "
                     "(--sensitive-policy on|off)"));
    k.push_back(Real(
        "privacy", "dp_epsilon", [](auto& o) -> auto& { return o.dp.epsilon; }, {0, 1000},
        "user-level differential privacy budget (--dp-epsilon; 0 = off)"));
    k.push_back(Real(
        "privacy", "dp_delta", [](auto& o) -> auto& { return o.dp.delta; }, {0, 0.1, true},
        "its delta (--dp-delta)"));
    k.push_back(Integer(
        "privacy", "dp_max_items", [](auto& o) -> auto& { return o.dp.max_items_per_user; },
        {1, 100000}, "items kept per user under --dp-epsilon (--dp-max-items)"));
    k.push_back(Flag(
        "privacy", "dp_user_rows", [](auto& o) -> auto& { return o.dp.user_rows; },
        "keep each user's own rows in a private bundle (--dp-user-rows on|off)"));
    k.push_back(Integer(
        "privacy", "dp_iterations", [](auto& o) -> auto& { return o.dp.iterations; }, {1, 100},
        "private ALS iterations (--dp-iterations)"));
    return k;
  }();
  return keys;
}

// Tables of name -> weight: [weights] (block weights) and
// [content.column_weights].
std::map<std::string, float>* WeightMap(const std::string& section, BuildOptions& o) {
  if (section == "weights") return &o.block_weights;
  if (section == "content.column_weights") return &o.content.column_weights;
  return nullptr;
}

std::string Where(const std::string& name, const toml::node& n) {
  return ConfigWhere(name, n.source());
}

}  // namespace

Status ApplyBuildConfigText(const std::string& text, const std::string& name, BuildOptions* out) {
  VITRINE_ASSIGN_OR_RETURN(toml::table t, ParseConfigToml(text, name));
  BuildOptions o = *out;
  auto weights = [&](const std::string& section, const toml::node& node) -> Status {
    const toml::table* tab = node.as_table();
    if (!tab) {
      return Status::InvalidArgument(Where(name, node) + ": '" + section +
                                     "': expected a table of name = weight");
    }
    for (auto&& [k, v] : *tab) {
      const auto w = v.value<double>();
      if (!v.is_number() || !w || !std::isfinite(*w) || *w < 0 || *w > kMaxWeight) {
        return Status::InvalidArgument(Where(name, v) + ": '" + section + "." + std::string(k.str()) +
                                       "': expected a number in [0, 1000], got " + Shown(v));
      }
      (*WeightMap(section, o))[std::string(k.str())] = static_cast<float>(*w);
    }
    return Status::OK();
  };
  for (auto&& [sk, snode] : t) {
    const std::string section(sk.str());
    if (section == "weights") {
      VITRINE_RETURN_IF_ERROR(weights(section, snode));
      continue;
    }
    const toml::table* tab = snode.as_table();
    bool known_section = false;
    for (const ConfigKey& key : Keys()) known_section |= key.section == section;
    if (!known_section) {
      return Status::InvalidArgument(Where(name, snode) + ": unknown section '" + section +
                                     "' (see vitrine build --config-keys)");
    }
    if (!tab) {
      return Status::InvalidArgument(Where(name, snode) + ": '" + section +
                                     "' must be a table ([" + section + "])");
    }
    for (auto&& [kk, node] : *tab) {
      const std::string key(kk.str());
      if (section == "content" && key == "column_weights") {
        VITRINE_RETURN_IF_ERROR(weights("content.column_weights", node));
        continue;
      }
      const ConfigKey* found = nullptr;
      for (const ConfigKey& c : Keys()) {
        if (c.section == section && c.name == key) found = &c;
      }
      if (!found) {
        return Status::InvalidArgument(Where(name, node) + ": unknown key '" + section + "." + key +
                                       "' (see vitrine build --config-keys)");
      }
      const std::string error = found->read(node, o);
      if (!error.empty()) {
        return Status::InvalidArgument(Where(name, node) + ": '" + found->Path() + "': " + error);
      }
    }
  }
  *out = std::move(o);
  return Status::OK();
}

Status ApplyBuildConfig(const std::string& path, BuildOptions* o) {
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path, "build config"));
  return ApplyBuildConfigText(text, path, o);
}

Result<std::string> WriteBuildConfig(const BuildOptions& o, const std::vector<std::string>& keys,
                                     const std::string& header_comment) {
  std::map<std::string, std::string> wanted_value;  // "section.key" -> text
  bool weights = false;
  for (const std::string& want : keys) {
    if (want == "weights") {
      weights = true;
      continue;
    }
    const ConfigKey* found = nullptr;
    for (const ConfigKey& c : Keys()) {
      if (c.Path() == want) found = &c;
    }
    if (!found || !found->write) {
      return Status::InvalidArgument("build config: cannot write key '" + want + "'");
    }
    wanted_value[want] = found->write(o);
  }
  std::ostringstream s;
  std::istringstream comment(header_comment);
  for (std::string line; std::getline(comment, line);) s << "# " << line << "\n";
  std::string section;
  for (const ConfigKey& c : Keys()) {
    auto it = wanted_value.find(c.Path());
    if (it == wanted_value.end()) continue;
    if (c.section != section) {
      s << (section.empty() ? "" : "\n") << "[" << c.section << "]\n";
      section = c.section;
    }
    s << c.name << " = " << it->second << "\n";
  }
  if (weights) {
    s << (section.empty() ? "" : "\n") << "[weights]\n";
    for (const auto& [k, v] : o.block_weights) s << QuotedText(k) << " = " << RealText(v) << "\n";
  }
  // What is written must read back: a value outside its key's range (a NaN
  // weight, say) is an error here, not in the next build.
  BuildOptions check;
  VITRINE_RETURN_IF_ERROR(
      ApplyBuildConfigText(s.str(), "the written build config", &check));
  return s.str();
}

std::vector<std::string> BuildConfigKeys() {
  std::vector<std::string> out;
  for (const ConfigKey& c : Keys()) out.push_back(c.Path());
  out.push_back("content.column_weights.NAME");
  out.push_back("weights.BLOCK");
  return out;
}

std::string BuildConfigReference() {
  std::ostringstream s;
  auto line = [&](const std::string& key, const std::string& type, const std::string& help) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "  %-28s %-26s %s\n", key.c_str(), type.c_str(), help.c_str());
    s << buf;
  };
  for (const ConfigKey& c : Keys()) line(c.Path(), c.type, c.help);
  line("content.column_weights.NAME", "number in [0, 1000]", "weight of one catalog column");
  line("weights.BLOCK", "number in [0, 1000]", "fused block weight: cf, content, visual, pop, new");
  return s.str();
}

}  // namespace vitrine
