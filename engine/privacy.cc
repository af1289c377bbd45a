#include "engine/privacy.h"

#include <algorithm>
#include <cctype>

#include "core/json_util.h"

namespace vitrine {

Result<Bitmap> SensitiveItems(const Catalog& catalog, const AttributeIndex& attributes,
                              std::string_view predicate, const std::string& source) {
  // One predicate, one rule: a line break would let the text add rules of
  // its own (a PIN, a second filter).
  if (FindInvalidUtf8(predicate) != std::string_view::npos) {
    return Status::InvalidArgument(source + ": the predicate is not valid UTF-8");
  }
  if (predicate.find_first_of("\r\n") != std::string_view::npos) {
    return Status::InvalidArgument(source + ": a sensitive predicate is one line");
  }
  // Read as the filter "INCLUDE WHERE <predicate>"; error positions count
  // from the start of that line, so the source says where the predicate
  // starts.
  const std::string prefix = "INCLUDE WHERE ";
  VITRINE_ASSIGN_OR_RETURN(
      RuleSet rules,
      RuleSet::Parse(prefix + std::string(predicate),
                     source + " (read as '" + prefix + "<predicate>', the predicate from column " +
                         std::to_string(prefix.size() + 1) + ")"));
  if (rules.num_rules() != 1) {
    return Status::InvalidArgument(source +
                                   ": expected a predicate, such as category IN "
                                   "(\"lingerie\", \"fragrance\")");
  }
  VITRINE_RETURN_IF_ERROR(rules.Bind(catalog));
  if (rules.FiltersDependOnRequest()) {
    return Status::InvalidArgument(source +
                                   ": a sensitive predicate may not use $params, context or "
                                   "CurrentItem: it is evaluated once per catalog");
  }
  return rules.StaticAllowedItems(attributes);
}

bool IsSharedScreen(const RequestContext& ctx) {
  // Lenient on purpose: a policy that protects people should not fail open
  // on "Shared" or " true".
  auto lower = [](std::string_view in) {
    const size_t b = in.find_first_not_of(" \t"), e = in.find_last_not_of(" \t");
    std::string v(b == std::string_view::npos ? std::string_view() : in.substr(b, e - b + 1));
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return v;
  };
  for (const auto& [key, value] : ctx.context) {
    if (lower(key) != "shared") continue;
    const std::string v = lower(value);
    if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  }
  return false;
}

std::string DiscreetReason(const Catalog& catalog, int32_t item) {
  const Column* c = catalog.column("category");
  if (c != nullptr && c->type == ColumnType::kCategorical) {
    const int32_t code = c->codes[static_cast<size_t>(item)];
    if (code >= 0) return "picked for your taste in " + c->dictionary[static_cast<size_t>(code)];
  }
  return "picked for your taste";
}

}  // namespace vitrine
