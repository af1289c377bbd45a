#include "core/json_util.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

namespace vitrine {
namespace {

using json = nlohmann::json;

// Length of the UTF-8 sequence at text[i] if it is well formed, else 0.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, C0/C1 (overlong) or F5..FF
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// The offset at which brackets outside strings first nest deeper than
// `max_depth`, or npos. Unbalanced or otherwise malformed text is left to
// the parser: this pass only has to bound the depth of what it accepts.
size_t FindTooDeep(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped byte cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

// nlohmann's what() without the "[json.exception.parse_error.101] " tag, and
// with the input it quotes ("last read: '<token>'") clipped.
std::string NlohmannMessage(const json::exception& e) {
  std::string msg = e.what();
  if (const size_t p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
  const std::string kLastRead = "last read: '";
  const size_t from = msg.find(kLastRead);
  if (from != std::string::npos) {
    const size_t start = from + kLastRead.size();
    size_t end = msg.rfind("'; expected ");
    if (end == std::string::npos || end < start) end = msg.size() - 1;  // the closing quote
    if (end >= start) {
      msg = msg.substr(0, start) + Clip(std::string_view(msg).substr(start, end - start)) +
            msg.substr(end);
    }
  }
  return Clip(msg, 240);
}

}  // namespace

size_t FindInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    // Fast paths over ASCII: eight bytes at a time (every CSV record passes
    // through here), then one.
    if (i + 8 <= text.size()) {
      uint64_t word;
      std::memcpy(&word, text.data() + i, 8);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

Result<json> ParseJson(std::string_view text, const std::string& where, ParseJsonOptions limits) {
  if (text.size() > limits.max_bytes) {
    return Status::InvalidArgument(where + " is longer than " + std::to_string(limits.max_bytes) +
                                   " bytes");
  }
  if (const size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
    return Status::InvalidArgument(where + " is not valid UTF-8 at byte " + std::to_string(bad));
  }
  if (const size_t deep = FindTooDeep(text, limits.max_depth); deep != std::string_view::npos) {
    return Status::InvalidArgument(where + ": nested deeper than " +
                                   std::to_string(limits.max_depth) + " levels at byte " +
                                   std::to_string(deep));
  }
  try {
    // A key given twice in one object is refused: nlohmann keeps the last,
    // so {"user": "A", "user": "B"} would act on B while a reader of the
    // text (a log, a proxy's filter) sees A.
    std::vector<std::set<std::string>> keys;  // one set per open object
    std::string duplicate;
    json::parser_callback_t check = [&](int, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::object_start) {
        keys.emplace_back();
      } else if (event == json::parse_event_t::object_end) {
        if (!keys.empty()) keys.pop_back();
      } else if (event == json::parse_event_t::key && !keys.empty() && duplicate.empty()) {
        if (!keys.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
        }
      }
      return true;
    };
    json out = json::parse(text.begin(), text.end(), check);
    if (!duplicate.empty()) {
      return Status::InvalidArgument(where + ": the key \"" + Clip(duplicate) +
                                     "\" appears twice in one object");
    }
    return out;
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument(where + ": malformed JSON: " + NlohmannMessage(e));
  } catch (const json::out_of_range& e) {
    // 1e400: a valid JSON number that no double holds.
    return Status::InvalidArgument(where + ": number out of range: " + NlohmannMessage(e));
  } catch (const json::exception& e) {
    return Status::InvalidArgument(where + ": malformed JSON: " + NlohmannMessage(e));
  }
}

std::string Clip(std::string_view s, size_t max_bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t add = (c < 0x20 || c == 0x7f) ? 4 : 1;
    if (out.size() + add > max_bytes) break;
    if (add == 4) {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (i == s.size()) return out;
  // Do not end inside a multi-byte character: find where the last one
  // starts and drop it if it is incomplete.
  size_t lead = out.size();
  while (lead > 0 && (static_cast<unsigned char>(out[lead - 1]) & 0xC0) == 0x80) --lead;
  size_t cut = out.size();
  if (lead > 0 && static_cast<unsigned char>(out[lead - 1]) >= 0xC0) {
    if (Utf8SequenceLength(out, lead - 1) != out.size() - (lead - 1)) cut = lead - 1;
  } else {
    cut = lead;  // stray continuation bytes (the input was not UTF-8)
  }
  out.resize(cut);
  return out + "...";
}

std::string Describe(const json& v, size_t max_bytes) {
  switch (v.type()) {
    case json::value_t::string:
      return "\"" + Clip(v.get_ref<const std::string&>(), max_bytes) + "\"";
    case json::value_t::array:
      return "an array of " + std::to_string(v.size()) + (v.size() == 1 ? " value" : " values");
    case json::value_t::object:
      return "an object of " + std::to_string(v.size()) + (v.size() == 1 ? " field" : " fields");
    case json::value_t::discarded:
      return "nothing";
    default:  // numbers, booleans, null: short and flat
      return Clip(v.dump(), max_bytes);
  }
}

Status CheckFormatAndVersion(const json& j, std::string_view format, int version,
                             const std::string& where) {
  if (j.at("format").get<std::string>() != format) {
    return Status::Corruption(where + "format is not " + std::string(format));
  }
  if (JsonInteger<int64_t>(j.at("version"), "version") != version) {
    return Status::Unsupported(where + "version " + j.at("version").dump() +
                               ", this build reads version " + std::to_string(version));
  }
  return Status::OK();
}

namespace json_util_internal {

void ThrowNotAnInteger(const json& v, std::string_view name, const std::string& lo,
                       const std::string& hi) {
  const std::string prefix = name.empty() ? "" : "'" + std::string(name) + "': ";
  throw std::out_of_range(prefix + "expected an integer in [" + lo + ", " + hi + "], got " +
                          Describe(v));
}

}  // namespace json_util_internal

}  // namespace vitrine
