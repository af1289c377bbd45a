// Internal to rank/ (not part of the public API; include rank/rules.h): the
// parser of the rules language. It turns rule text into a ParsedRules syntax
// tree (rules_ast.h), one rule per non-blank line, and checks syntax only
// (columns and types are the binder's job). The grammar is in docs/rules.md.
//
// Limits (RuleSet::kMaxTextBytes, kMaxRules, kMaxDepth; docs/rules.md
// "Limits") are checked here, so that no input can exhaust the stack or grow
// the syntax tree without bound in this or any later stage:
//   * the text is at most kMaxTextBytes bytes;
//   * at most kMaxRules rules;
//   * a WHEN or WHERE condition nests at most kMaxDepth parentheses and NOTs
//     (the parser's own recursion follows that nesting, and so do the
//     evaluators'); flat AND / OR chains are n-ary nodes built in a loop, as
//     long as the text allows.
// Errors name "source:line:col" and what was expected.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "rank/rules_ast.h"

namespace vitrine::rules_internal {

Result<ParsedRules> ParseRuleText(std::string_view text, std::string source);

}  // namespace vitrine::rules_internal
