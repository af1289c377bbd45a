// Internal to rank/ (not part of the public API; include rank/rules.h): the
// lexer of the rules language. It splits one line of rule text into tokens:
// identifiers and keywords, `quoted identifiers`, "strings" (a backslash
// escapes the next character), numbers (core/value_parse.h ParseNumber
// spellings), $PARAMS and punctuation; `#` starts a comment. It is a loop
// over the line's bytes: no recursion, time and memory linear in the line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine::rules_internal {

struct Token {
  enum class Kind { kIdent, kQuotedIdent, kString, kNumber, kParam, kPunct, kEnd };
  Kind kind = Kind::kEnd;
  std::string text;  // identifier, string contents, number as written, param name, punctuation
  double number = 0;
  int col = 0;  // 1-based byte column
};

// The tokens of `line`, ending with one kEnd token placed just after the last
// token (so a line with only blanks or a comment gives just kEnd). Errors
// read "<prefix><col>: <what>", so `prefix` is "source:line:"; e.g.
// "rules.txt:3:23: unterminated string".
Result<std::vector<Token>> Lex(std::string_view line, const std::string& prefix);

// ASCII case-insensitive equality (keywords are case-insensitive).
bool IEquals(std::string_view a, std::string_view b);

// True for an identifier that is a keyword of the language (WHEN, INCLUDE,
// AND, TRUE, ...), in any case.
bool IsKeyword(const Token& t);

}  // namespace vitrine::rules_internal
