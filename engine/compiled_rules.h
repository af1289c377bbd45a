// Brand rules ready for queries against one bundle: parsed, bound to its
// catalog, and with their request-independent filters compiled once into a
// bitmap. The CLI, the HTTP server and the Python module all compile rules
// here, so a rule file means the same thing through each of them.
//
//   auto rules = CompileRules(engine, text, "rules.txt");
//   QueryParams q;
//   rules->ApplyTo(&q);  // q points into *rules: keep it alive
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "engine/engine.h"
#include "rank/rules.h"

namespace vitrine {

struct CompiledRules {
  RuleSet rules;
  Bitmap static_allowed;  // rules.StaticAllowedItems(): the filters that do not depend on the request

  // Points q's rules at this rule set (which must outlive q's use).
  void ApplyTo(QueryParams* q) const {
    q->rules = &rules;
    q->static_allowed = &static_allowed;
  }
};

// Parses `text` (errors are "source:line:col: ..."), binds it to the
// engine's catalog and compiles its static filters. Nothing is applied on
// error.
Result<CompiledRules> CompileRules(const Engine& engine, std::string_view text,
                                   std::string source);

}  // namespace vitrine
