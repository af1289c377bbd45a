// JSON from text that may be hostile (an HTTP body, a manifest on disk), and
// bounded renderings of such values for error messages.
//
// Why a wrapper: nlohmann/json parses any nesting depth (its parser is
// iterative), but dump(), operator== and friends recurse, so a value nested
// 100k deep parses fine and then overflows the stack the first time it is
// printed. ParseJson rejects such text before nlohmann sees it, the way
// protobuf's parser stops at depth 100, so every value it returns can be
// dumped, compared and destroyed safely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/status.h"

namespace vitrine {

// The bounds ParseJson enforces before nlohmann runs.
struct ParseJsonOptions {
  int max_depth = 64;                   // nested arrays and objects; 1 = "[]" or "{}"
  size_t max_bytes = size_t{64} << 20;  // length of the text
};

// The byte offset (0-based) of the first byte that does not belong to a
// well-formed UTF-8 sequence (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF, no truncated sequence), or std::string_view::npos
// if `text` is valid UTF-8.
size_t FindInvalidUtf8(std::string_view text);

// Parses `text` as exactly one JSON value (surrounding whitespace allowed).
// Before nlohmann runs, one O(n) pass checks the length, UTF-8 validity and
// the bracket depth outside strings, so a too deep or too long text costs
// no allocation. Every failure is InvalidArgument; `where` names the input
// ("body", "B/manifest.json") and messages quote at most 40 bytes of it:
//
//   body is longer than 1048576 bytes
//   body is not valid UTF-8 at byte 17             (0-based offset)
//   body: nested deeper than 64 levels at byte 64
//   body: malformed JSON: parse error at line 1, column 9: syntax error ...
//   body: number out of range: number overflow parsing '1e400'
//
// Thread-safe (no shared state).
Result<nlohmann::json> ParseJson(std::string_view text, const std::string& where,
                                 ParseJsonOptions limits = {});

// `s` cut to at most `max_bytes` bytes (on a UTF-8 character boundary) plus
// "..." when it was longer; control characters become \xNN. For putting a
// client's string into an error message or a log line.
std::string Clip(std::string_view s, size_t max_bytes = 40);

// A short, bounded description of `v` for an error message, without
// recursion: a string as "\"<Clip(s)>\"", a number, boolean or null as its
// JSON text, an array as "an array of 3 values", an object as "an object of
// 2 fields".
std::string Describe(const nlohmann::json& v, size_t max_bytes = 40);

// Checks the "format" and "version" keys of a saved state document (an
// encoder's manifest section): Corruption "<where>format is not <format>",
// Unsupported "<where>version <v>, this build reads version <version>". A
// missing key or a wrong type throws nlohmann's exception, as the reader's
// other at() calls do; a version that is not an integer, std::out_of_range.
Status CheckFormatAndVersion(const nlohmann::json& j, std::string_view format, int version,
                             const std::string& where);

// The integer `v` holds, as T. Throws std::out_of_range ("'dim': expected
// an integer in [-2147483648, 2147483647], got 1e+300", the name part only
// when `name` is given) when `v` is not an integer or T cannot hold it.
// Readers of saved state use this instead of nlohmann's get<int>(), which
// converts a float such as 1e300 with a plain cast (undefined behaviour) and
// cuts 2^40 down to an int without a word.
template <typename T>
T JsonInteger(const nlohmann::json& v, std::string_view name = {});

// JsonInteger of `j[key]`, or `fallback` when `j` has no such key.
template <typename T>
T JsonIntegerOr(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  return it == j.end() ? fallback : JsonInteger<T>(*it, key);
}

// JsonInteger of every element of the array `v` (nlohmann's type_error
// when `v` is not an array).
template <typename T>
std::vector<T> JsonIntegers(const nlohmann::json& v, std::string_view name = {}) {
  if (!v.is_array()) return v.get<std::vector<T>>();  // throws type_error, with its message
  std::vector<T> out;
  out.reserve(v.size());
  for (const nlohmann::json& x : v) out.push_back(JsonInteger<T>(x, name));
  return out;
}

namespace json_util_internal {
[[noreturn]] void ThrowNotAnInteger(const nlohmann::json& v, std::string_view name,
                                    const std::string& lo, const std::string& hi);
}  // namespace json_util_internal

template <typename T>
T JsonInteger(const nlohmann::json& v, std::string_view name) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  if (v.is_number_unsigned()) {
    const auto x = v.get<uint64_t>();
    if (std::in_range<T>(x)) return static_cast<T>(x);
  } else if (v.is_number_integer()) {
    const auto x = v.get<int64_t>();
    if (std::in_range<T>(x)) return static_cast<T>(x);
  }
  json_util_internal::ThrowNotAnInteger(v, name, std::to_string(std::numeric_limits<T>::min()),
                                        std::to_string(std::numeric_limits<T>::max()));
}

}  // namespace vitrine
