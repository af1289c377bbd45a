#include "serve/request.h"

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdlib>

#include "core/json_util.h"
#include "core/value_parse.h"

namespace vitrine::serve_internal {

Status Bad(std::string msg) { return Status::InvalidArgument(std::move(msg)); }

// An id from a request: a non-empty string without control characters (it
// goes into a CSV line), of bounded length.
Status CheckIdText(std::string_view s, const std::string& field) {
  if (s.empty() || s.size() > kMaxIdBytes) {
    return Bad("'" + field + "' must have 1 to " + std::to_string(kMaxIdBytes) + " bytes");
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return Bad("'" + field + "' contains a control character");
  }
  return Status::OK();
}

Status CheckId(const json& v, const std::string& field) {
  if (!v.is_string()) return Bad("'" + field + "' must be a string");
  return CheckIdText(v.get_ref<const std::string&>(), field);
}

Status ParseInt(std::string_view field, std::string_view text, long lo, long hi, int* out) {
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) {
    return Bad(std::string(field) + " '" + Clip(s) + "': expected an integer in [" +
               std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  *out = static_cast<int>(v);
  return Status::OK();
}

Status ParseBool(std::string_view field, std::string_view s, bool* out) {
  // A bare flag (?explain) is true; otherwise the spellings of
  // core/value_parse.h (docs/values.md), as everywhere else.
  const std::optional<bool> v = s.empty() ? std::optional<bool>(true) : vitrine::ParseBool(s);
  if (!v) {
    return Bad(std::string(field) + " '" + Clip(s) + "': expected true/false, yes/no or 1/0");
  }
  *out = *v;
  return Status::OK();
}

// "none", "mmr:0.6", "dpp:0.5": short; the engine quotes it in its errors.
Status CheckDiversity(std::string_view s) {
  if (s.size() > 32) return Bad("diversity '" + Clip(s) + "': expected none, mmr[:L] or dpp[:T]");
  return Status::OK();
}

// Reads the fields shared by /similar and /recommend from a JSON body;
// `used` collects the keys consumed, so the caller can reject unknown ones.
Status SpecFromJson(const json& body, const ServerOptions& o, QuerySpec* s) {
  if (body.contains("k")) {
    const json& k = body["k"];
    if (!k.is_number_integer() || k.get<int64_t>() < 1 || k.get<int64_t>() > o.max_k) {
      return Bad("'k' must be an integer in [1, " + std::to_string(o.max_k) + "], got " +
                 Describe(k));
    }
    s->k = k.get<int>();
  }
  if (body.contains("pool")) {
    const json& v = body["pool"];
    const int64_t max_pool = static_cast<int64_t>(kMaxPoolFactor) * o.max_k;
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > max_pool) {
      return Bad("'pool' must be an integer in [0, " + std::to_string(max_pool) + "]");
    }
    s->pool = v.get<int>();
  }
  if (body.contains("weights")) {
    const json& w = body["weights"];
    if (!w.is_object()) return Bad("'weights' must be an object {block: number}");
    for (const auto& [name, v] : w.items()) {
      if (!v.is_number() || !(std::fabs(v.get<double>()) <= FLT_MAX)) {
        return Bad("weights." + Clip(name) + " must be a number (a float)");
      }
      s->weights[name] = v.get<float>();
    }
  }
  if (body.contains("diversity")) {
    if (!body["diversity"].is_string()) return Bad("'diversity' must be a string");
    s->diversity = body["diversity"].get<std::string>();
    VITRINE_RETURN_IF_ERROR(CheckDiversity(s->diversity));
  }
  if (body.contains("explain")) {
    if (!body["explain"].is_boolean()) return Bad("'explain' must be true or false");
    s->explain = body["explain"].get<bool>();
  }
  if (body.contains("rules")) {
    const json& r = body["rules"];
    if (r.is_string()) {
      s->rules = r.get<std::string>();
    } else if (r.is_array()) {
      for (const json& line : r) {
        if (!line.is_string()) return Bad("'rules' must be a string or an array of strings");
        s->rules += line.get<std::string>() + "\n";
      }
    } else {
      return Bad("'rules' must be a string or an array of strings");
    }
    if (s->rules.size() > o.max_rules_bytes) {
      return Bad("'rules' is longer than " + std::to_string(o.max_rules_bytes) + " bytes");
    }
  }
  for (const char* field : {"params", "context"}) {
    if (!body.contains(field)) continue;
    const json& m = body[field];
    if (!m.is_object()) return Bad(std::string("'") + field + "' must be an object");
    auto& out = std::string_view(field) == "params" ? s->ctx.params : s->ctx.context;
    for (const auto& [key, v] : m.items()) {
      if (v.is_string()) {
        out[key] = v.get<std::string>();
      } else if (v.is_number() || v.is_boolean()) {
        out[key] = v.dump();
      } else {
        return Bad(std::string(field) + "." + Clip(key) + " must be a string, number or boolean");
      }
    }
  }
  if (body.contains("exclude")) {
    const json& e = body["exclude"];
    if (!e.is_array() || e.size() > o.max_history) {
      return Bad("'exclude' must be an array of at most " + std::to_string(o.max_history) +
                 " item ids");
    }
    for (const json& id : e) {
      VITRINE_RETURN_IF_ERROR(CheckId(id, "exclude[]"));
      s->exclude.push_back(id.get<std::string>());
    }
  }
  return Status::OK();
}

// The same fields from a query string (GET /similar).
Status SpecFromQuery(const httplib::Request& req, const ServerOptions& o, QuerySpec* s,
                     std::initializer_list<std::string_view> also) {
  // A repeated parameter is refused rather than one of its values picked
  // silently; rule and exclude add up, so they may repeat.
  for (auto it = req.params.begin(); it != req.params.end();
       it = req.params.upper_bound(it->first)) {
    const size_t n = req.params.count(it->first);
    if (n > 1 && it->first != "rule" && it->first != "exclude") {
      return Bad("query parameter '" + Clip(it->first) + "' is given " + std::to_string(n) +
                 " times (only rule and exclude may repeat)");
    }
  }
  for (const auto& [key, value] : req.params) {
    if (std::find(also.begin(), also.end(), key) != also.end()) continue;
    if (key == "k") {
      VITRINE_RETURN_IF_ERROR(ParseInt("k", value, 1, o.max_k, &s->k));
    } else if (key == "pool") {
      VITRINE_RETURN_IF_ERROR(ParseInt("pool", value, 0, kMaxPoolFactor * o.max_k, &s->pool));
    } else if (key == "diversity") {
      VITRINE_RETURN_IF_ERROR(CheckDiversity(value));
      s->diversity = value;
    } else if (key == "explain") {
      VITRINE_RETURN_IF_ERROR(ParseBool("explain", value, &s->explain));
    } else if (key == "weights") {
      VITRINE_ASSIGN_OR_RETURN(s->weights, ParseBlockWeights(value));
    } else if (key == "rule") {
      s->rules += value + "\n";  // repeatable, one rule each
    } else if (key == "exclude") {
      size_t pos = 0;
      while (pos < value.size()) {
        size_t end = value.find(',', pos);
        if (end == std::string::npos) end = value.size();
        if (end > pos) {
          s->exclude.push_back(value.substr(pos, end - pos));
          VITRINE_RETURN_IF_ERROR(CheckIdText(s->exclude.back(), "exclude"));
        }
        pos = end + 1;
      }
    } else if (key.starts_with("param.") && key.size() > 6) {
      s->ctx.params[key.substr(6)] = value;
    } else if (key.starts_with("context.") && key.size() > 8) {
      s->ctx.context[key.substr(8)] = value;
    } else {
      std::string own;
      for (std::string_view a : also) own += std::string(a) + ", ";
      return Bad("unknown query parameter '" + Clip(key) + "' (expected " + own +
                 "k, diversity, explain, weights, pool, rule, exclude, param.NAME, "
                 "context.KEY)");
    }
  }
  if (s->rules.size() > o.max_rules_bytes) {
    return Bad("rules are longer than " + std::to_string(o.max_rules_bytes) + " bytes");
  }
  return Status::OK();
}

Status CheckKeys(const json& body, std::initializer_list<std::string_view> known) {
  for (const auto& [key, v] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Bad("unknown field '" + Clip(key) + "' (expected " + list + ")");
    }
  }
  return Status::OK();
}

Status StringArrayField(const json& body, std::string_view key, size_t max,
                        std::string_view what, std::vector<std::string>* out) {
  const auto it = body.find(key);
  if (it == body.end()) return Status::OK();
  if (!it->is_array() || it->size() > max) {
    return Bad("'" + std::string(key) + "' must be an array of at most " + std::to_string(max) +
               " " + std::string(what));
  }
  for (const json& v : *it) {
    VITRINE_RETURN_IF_ERROR(CheckId(v, std::string(key) + "[]"));
    out->push_back(v.get<std::string>());
  }
  return Status::OK();
}

Status NumberField(const json& body, std::string_view key, double lo, double hi, double* out) {
  const auto it = body.find(key);
  if (it == body.end()) return Status::OK();
  if (!it->is_number() || !(it->get<double>() >= lo && it->get<double>() <= hi)) {
    char range[96];
    std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
    return Bad("'" + std::string(key) + "' must be a number in " + range);
  }
  *out = it->get<double>();
  return Status::OK();
}

// Parses a request body that must be JSON: depth-, size- and UTF-8-checked
// (core/json_util.h); the error says where it broke.
Result<json> ParseBody(const httplib::Request& req, const ServerOptions& o) {
  return ParseJson(req.body, "body",
                   {.max_depth = o.max_json_depth, .max_bytes = o.max_body_bytes});
}

Result<json> ParseObjectBody(const httplib::Request& req, const ServerOptions& o,
                             std::initializer_list<std::string_view> known) {
  VITRINE_ASSIGN_OR_RETURN(json body, ParseBody(req, o));
  if (!body.is_object()) return Bad("the body must be a JSON object");
  VITRINE_RETURN_IF_ERROR(CheckKeys(body, known));
  return body;
}

// ---- access control ----

json HitsJson(const Engine& e, const std::vector<Hit>& hits, bool explain) {
  static const char* kColumns[] = {"brand", "category", "price", "title"};
  json out = json::array();
  int rank = 1;
  for (const Hit& h : hits) {
    json j{{"rank", rank++},
           {"item", e.catalog().ids.id(h.item)},
           {"score", h.score},
           {"reason", h.reason}};
    if (h.pinned) j["pinned"] = true;
    if (!h.rule_lines.empty()) j["rules"] = h.rule_lines;
    if (explain) {
      if (!h.block_cos.empty()) {
        json blocks = json::object();
        for (size_t b = 0; b < e.layout().size() && b < h.block_cos.size(); ++b) {
          blocks[e.layout()[b].name] = h.block_cos[b];
        }
        j["blocks"] = blocks;
      }
      j["popularity"] = e.popularity(h.item);
      if (!h.ranker_features.empty()) {
        json rf = json::object();
        for (const FeatureContribution& c : h.ranker_features) rf[c.name] = c.value;
        j["ranker_features"] = std::move(rf);
      }
      if (e.is_cold(h.item)) j["cold"] = true;
      json attrs = json::object();
      for (const char* c : kColumns) {
        if (const Column* col = e.catalog().column(c)) {
          attrs[c] = e.catalog().ValueString(*col, h.item);
        }
      }
      j["attributes"] = attrs;
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace vitrine::serve_internal
