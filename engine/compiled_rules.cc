#include "engine/compiled_rules.h"

namespace vitrine {

Result<CompiledRules> CompileRules(const Engine& engine, std::string_view text,
                                   std::string source) {
  CompiledRules c;
  VITRINE_ASSIGN_OR_RETURN(c.rules, RuleSet::Parse(text, std::move(source)));
  VITRINE_RETURN_IF_ERROR(c.rules.Bind(engine.catalog()));
  VITRINE_ASSIGN_OR_RETURN(c.static_allowed, c.rules.StaticAllowedItems(engine.attributes()));
  return c;
}

}  // namespace vitrine
