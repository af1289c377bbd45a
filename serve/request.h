// Request and response translation for the HTTP server: JSON bodies and
// query strings into a QuerySpec, hits into JSON. Internal to serve/ (the
// server and its fuzz harness use it); it decides nothing about what to
// answer, which is the Engine's job.
#pragma once

#include <httplib.h>

#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "serve/server.h"

namespace vitrine::serve_internal {

using json = nlohmann::json;

inline constexpr size_t kMaxIdBytes = 256;
inline constexpr int kMaxPoolFactor = 10;  // pool <= kMaxPoolFactor * max_k

// What a request asks for, before it is resolved against a bundle.
struct QuerySpec {
  int k = 10;
  std::map<std::string, float> weights;
  std::string diversity = "none";
  std::string rules;  // rule text, one rule per line
  RequestContext ctx;
  bool explain = false;
  int pool = 0;
  std::vector<std::string> exclude;
};

// InvalidArgument (a client error, HTTP 400) with `msg`.
Status Bad(std::string msg);
// An id from a request: a non-empty string without control characters (it
// goes into a CSV line), of bounded length.
Status CheckIdText(std::string_view s, const std::string& field);
Status CheckId(const json& v, const std::string& field);
Status ParseInt(std::string_view field, std::string_view text, long lo, long hi, int* out);
Status ParseBool(std::string_view field, std::string_view s, bool* out);
Status CheckDiversity(std::string_view s);
// The fields shared by /similar and /recommend, from a JSON body or a query
// string.
Status SpecFromJson(const json& body, const ServerOptions& o, QuerySpec* s);
// `also` names a route's own parameters, left to the caller.
Status SpecFromQuery(const httplib::Request& req, const ServerOptions& o, QuerySpec* s,
                     std::initializer_list<std::string_view> also = {});
// Refuses a key of `body` not in `known`, listing the known ones.
Status CheckKeys(const json& body, std::initializer_list<std::string_view> known);
// body[key], when present, as at most `max` ids ("'key' must be an array of
// at most 1000 <what>"), appended to `out`.
Status StringArrayField(const json& body, std::string_view key, size_t max,
                        std::string_view what, std::vector<std::string>* out);
// body[key], when present, as a number in [lo, hi] into `out`.
Status NumberField(const json& body, std::string_view key, double lo, double hi, double* out);
// The body as JSON, within the server's depth and size limits.
Result<json> ParseBody(const httplib::Request& req, const ServerOptions& o);
// The body as a JSON object whose keys are all in `known` (ParseBody, then
// CheckKeys): the start of every POST handler that takes an object.
Result<json> ParseObjectBody(const httplib::Request& req, const ServerOptions& o,
                             std::initializer_list<std::string_view> known);
// Hits as the JSON results array; `explain` adds blocks, attributes and the
// ranker's features.
json HitsJson(const Engine& e, const std::vector<Hit>& hits, bool explain);

}  // namespace vitrine::serve_internal
