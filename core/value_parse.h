// Value parsing: the one place that decides which spellings of a boolean, a
// number and a timestamp vitrine accepts, wherever the value comes from (a
// catalog or events CSV cell, a rule's $param or context value, an attribute
// filter, an HTTP request). docs/values.md is the user-facing table; the
// short version:
//
//   ParseBool       true/false, yes/no, 1/0 (letters in any case)
//   ParseNumber     finite decimal numbers: "42", "-1.5", "+2", ".5", "1e3";
//                   not "", "+-1", "inf", "nan", "0x10", "1.5x", "1,000"
//   ParseDuration   a positive number with a unit: "90s", "10m", "1.5h"
//                   (a bare number is seconds); not "10 m", "-1m", "0s"
//   ParseTimestamp  integer seconds since the epoch or ISO-8601, between
//                   1900-01-01T00:00:00Z and 2200-12-31T23:59:59Z
//
// Every function ignores spaces and tabs around the value (as CSV cells are
// trimmed) and nothing else: a value with anything more is refused whole.
// They are pure functions of their argument: thread-safe, no allocation, no
// locale.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vitrine {

// "true", "yes", "1" -> true; "false", "no", "0" -> false; letters in any
// case ("TRUE", "Yes"). Anything else, including "", "t", "on", "2" and
// " 1 1": nullopt. (Catalog type inference is stricter on top of this: a
// column of 1/0 infers numeric, see core/catalog.h.)
std::optional<bool> ParseBool(std::string_view s);

// A finite decimal number: an optional sign ('-', or '+', which is accepted
// and ignored), digits with at most one '.', at least one digit, then an
// optional exponent ("e-3", "E+5"). Refused: "", a sign alone or doubled
// ("+-1", "--1"), "inf", "infinity", "nan" (any case), hexadecimal ("0x10"),
// digit separators ("1,000", "1_000"), trailing text ("1.5x", "12 kg"), and
// numbers a double cannot hold ("1e400" overflows, "1e-400" underflows;
// subnormals such as "1e-310" are accepted).
std::optional<double> ParseNumber(std::string_view s);

// Seconds of a duration as above (--budget 10m), or nullopt.
std::optional<double> ParseDuration(std::string_view s);

// Earliest and latest instant ParseTimestamp accepts, in seconds since
// 1970-01-01T00:00:00Z: 1900-01-01T00:00:00Z and 2200-12-31T23:59:59Z.
// Older data exists (so not 1970), later times are typos or sentinels such
// as INT64_MAX; either way far outside them a value is a bug, and refusing it
// keeps time arithmetic (ages, decays) far from overflow.
inline constexpr int64_t kMinTimestamp = -2208988800;  // 1900-01-01T00:00:00Z
inline constexpr int64_t kMaxTimestamp = 7289654399;   // 2200-12-31T23:59:59Z

// Parses a timestamp into seconds since 1970-01-01T00:00:00Z:
//   integer seconds     "1714557600", "-86400" (a fractional part ".5" is
//                       truncated toward zero; no '+' sign, no exponent)
//   ISO-8601 date       "2024-05-01" (midnight UTC)
//   ISO-8601 date-time  "2024-05-01T10:00:00Z", "2024-05-01 10:00",
//                       "2024-05-01T10:00:00.250+02:00" (fraction truncated;
//                       no zone means UTC; zone "+hh", "+hhmm" or "+hh:mm")
// Returns false, leaving *seconds unchanged, for anything else: other forms,
// out-of-range fields ("2024-02-30", "25:00"), and instants outside
// [kMinTimestamp, kMaxTimestamp] (so "9223372036854775807" is refused).
bool ParseTimestamp(std::string_view s, int64_t* seconds);

}  // namespace vitrine
