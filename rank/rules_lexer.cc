// The rules lexer: one line of text -> tokens (see rules_lexer.h).
#include "rank/rules_lexer.h"

#include <cctype>
#include <optional>

#include "core/value_parse.h"

namespace vitrine::rules_internal {
namespace {

const char* const kKeywords[] = {"WHEN", "INCLUDE", "EXCLUDE", "WHERE", "BOOST", "BURY",
                                 "PIN",  "AT",      "CAP",     "PER",   "AND",   "OR",
                                 "NOT",  "IN",      "BETWEEN", "TRUE",  "FALSE"};

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }
bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool IsKeyword(const Token& t) {
  if (t.kind != Token::Kind::kIdent) return false;
  for (const char* k : kKeywords) {
    if (IEquals(t.text, k)) return true;
  }
  return false;
}

Result<std::vector<Token>> Lex(std::string_view s, const std::string& prefix) {
  auto error = [&](int col, const std::string& msg) {
    return Status::InvalidArgument(prefix + std::to_string(col) + ": " + msg);
  };
  std::vector<Token> out;
  size_t i = 0, last_end = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '#') break;
    Token t;
    t.col = static_cast<int>(i) + 1;
    if (c == '"' || c == '`') {
      t.kind = c == '"' ? Token::Kind::kString : Token::Kind::kQuotedIdent;
      size_t j = i + 1;
      bool closed = false;
      while (j < s.size()) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          t.text += s[j + 1];
          j += 2;
        } else if (s[j] == c) {
          closed = true;
          ++j;
          break;
        } else {
          t.text += s[j++];
        }
      }
      if (!closed) return error(t.col, c == '"' ? "unterminated string" : "unterminated `name`");
      i = j;
    } else if (c == '$') {
      size_t j = i + 1;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      if (j == i + 1) return error(t.col, "expected a parameter name after '$'");
      t.kind = Token::Kind::kParam;
      t.text = std::string(s.substr(i + 1, j - i - 1));
      i = j;
    } else if (IsDigit(c) || ((c == '-' || c == '+' || c == '.') && i + 1 < s.size() &&
                              (IsDigit(s[i + 1]) || (s[i + 1] == '.' && c != '.')))) {
      // The longest run that could belong to a number; ParseNumber decides.
      size_t j = i + 1;
      while (j < s.size() &&
             (IsDigit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
              ((s[j] == '-' || s[j] == '+') && (s[j - 1] == 'e' || s[j - 1] == 'E')))) {
        ++j;
      }
      t.kind = Token::Kind::kNumber;
      t.text = std::string(s.substr(i, j - i));
      const std::optional<double> v = ParseNumber(t.text);
      if (!v || (j < s.size() && IsIdentChar(s[j]))) {
        return error(t.col, "malformed number '" + t.text + "'");
      }
      t.number = *v;
      i = j;
    } else if (IsIdentStart(c)) {
      size_t j = i + 1;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      t.kind = Token::Kind::kIdent;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else {
      static constexpr std::string_view kPuncts[] = {"!=", "<>", "<=", ">=", "(", ")",
                                                     ",",  ".",  "=",  "<",  ">"};
      t.kind = Token::Kind::kPunct;
      for (const std::string_view p : kPuncts) {
        if (s.substr(i).starts_with(p)) {
          t.text = std::string(p);  // (not `= p`: GCC 12 warns -Wrestrict on that, wrongly)
          break;
        }
      }
      if (t.text.empty()) return error(t.col, std::string("unexpected character '") + c + "'");
      i += t.text.size();
    }
    last_end = i;
    out.push_back(std::move(t));
  }
  Token end;
  end.col = static_cast<int>(last_end) + 1;  // just after the last token
  out.push_back(end);
  return out;
}

}  // namespace vitrine::rules_internal
