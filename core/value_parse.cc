#include "core/value_parse.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <system_error>

namespace vitrine {
namespace {

static_assert(std::chrono::sys_days(std::chrono::year{1900} / 1 / 1).time_since_epoch().count() *
                  int64_t{86400} ==
              kMinTimestamp);
static_assert(std::chrono::sys_days(std::chrono::year{2201} / 1 / 1).time_since_epoch().count() *
                      int64_t{86400} -
                  1 ==
              kMaxTimestamp);

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Case-insensitive equality with a lower-case ASCII word.
bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != lower[i]) return false;
  }
  return true;
}

// Reads exactly `n` digits of `s` at `pos` into *v.
bool Digits(std::string_view s, size_t pos, size_t n, int* v) {
  if (pos + n > s.size()) return false;
  int x = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    x = x * 10 + (s[i] - '0');
  }
  *v = x;
  return true;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The ISO-8601 forms of ParseTimestamp; `s` is trimmed and starts "dddd-dd-".
bool ParseIso(std::string_view s, int64_t* seconds) {
  int y, mo, d;
  if (!Digits(s, 0, 4, &y) || !Digits(s, 5, 2, &mo) || !Digits(s, 8, 2, &d)) return false;
  const std::chrono::year_month_day ymd{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return false;
  int64_t t = std::chrono::sys_days(ymd).time_since_epoch().count() * int64_t{86400};
  size_t p = 10;
  if (p < s.size()) {
    if (s[p] != 'T' && s[p] != ' ') return false;
    int h, mi, sec = 0;
    if (!Digits(s, p + 1, 2, &h) || p + 3 >= s.size() || s[p + 3] != ':' ||
        !Digits(s, p + 4, 2, &mi) || h > 23 || mi > 59) {
      return false;
    }
    p += 6;
    if (p < s.size() && s[p] == ':') {
      if (!Digits(s, p + 1, 2, &sec) || sec > 60) return false;  // 60: leap second
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        const size_t q = ++p;
        while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
        if (p == q) return false;
      }
    }
    t += h * 3600 + mi * 60 + sec;
    if (p < s.size()) {
      if (s[p] == 'Z' && p + 1 == s.size()) {
        p = s.size();
      } else if (s[p] == '+' || s[p] == '-') {
        const int sign = s[p] == '+' ? 1 : -1;
        int zh, zm = 0;
        if (!Digits(s, p + 1, 2, &zh) || zh > 23) return false;
        p += 3;
        if (p < s.size()) {  // minutes: "+02:30" or "+0230"
          if (s[p] == ':') ++p;
          if (!Digits(s, p, 2, &zm) || zm > 59) return false;
          p += 2;
        }
        t -= sign * (zh * 3600 + zm * 60);  // local = UTC + offset
      }
    }
  }
  if (p != s.size()) return false;
  *seconds = t;
  return true;
}

}  // namespace

std::optional<bool> ParseBool(std::string_view s) {
  s = Trim(s);
  if (EqualsLower(s, "true") || EqualsLower(s, "yes") || s == "1") return true;
  if (EqualsLower(s, "false") || EqualsLower(s, "no") || s == "0") return false;
  return std::nullopt;
}

std::optional<double> ParseNumber(std::string_view s) {
  s = Trim(s);
  // from_chars takes no '+'; accept one, but not a second sign after it.
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) return std::nullopt;
  }
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  // from_chars also reads "inf", "nan" and "infinity": isfinite refuses them.
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<double> ParseDuration(std::string_view s) {
  double unit = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 's': unit = 1; s.remove_suffix(1); break;
      case 'm': unit = 60; s.remove_suffix(1); break;
      case 'h': unit = 3600; s.remove_suffix(1); break;
      default: break;
    }
  }
  const auto x = ParseNumber(s);
  if (!x || !(*x > 0) || (!s.empty() && (s[0] == '+' || s[0] == '-'))) return std::nullopt;
  return *x * unit;
}

bool ParseTimestamp(std::string_view s, int64_t* seconds) {
  s = Trim(s);
  int64_t t = 0;
  if (s.size() >= 10 && s[4] == '-' && s[7] == '-') {
    if (!ParseIso(s, &t)) return false;
  } else {
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), t);
    if (ec != std::errc() || ptr == s.data()) return false;
    const std::string_view rest(ptr, static_cast<size_t>(s.data() + s.size() - ptr));
    if (!rest.empty() && !(rest[0] == '.' && AllDigits(rest.substr(1)))) return false;
  }
  if (t < kMinTimestamp || t > kMaxTimestamp) return false;
  *seconds = t;
  return true;
}

}  // namespace vitrine
