// Discretion (docs/privacy.md): which items are sensitive, when a request is
// on a shared screen, and the reasons that may name a person's own items.
//
// A bundle built with `--sensitive '<predicate>'` (a rules predicate,
// docs/rules.md: `category IN ("lingerie", "fragrance")`) records it in the
// manifest's "privacy" section; Engine::Open evaluates it over the catalog
// once. With the built-in policy on (the default; `--sensitive-policy off`
// switches it off):
//   - a request whose context says `shared` = true (`--context shared=true`,
//     HTTP "context": {"shared": true}) never returns a sensitive item;
//   - no audience is built for a sensitive item.
// Whatever the policy, a reason never names a person's item ("similar to
// I000012 you viewed") when that item or the recommended one is sensitive:
// the reason speaks of the category instead (DiscreetReason).
#pragma once

#include <string>
#include <string_view>

#include "core/catalog.h"
#include "core/status.h"
#include "index/attribute_index.h"
#include "rank/rules.h"

namespace vitrine {

// The items matching `predicate` (a rules predicate over catalog columns,
// without $params, context or CurrentItem). Errors name `source` and the
// position: "--sensitive:1:7: unknown column 'categry'".
Result<Bitmap> SensitiveItems(const Catalog& catalog, const AttributeIndex& attributes,
                              std::string_view predicate, const std::string& source);

// True when the request's context key `shared` (any case) is "true", "1",
// "yes" or "on" (any case, spaces around ignored): the screen is seen by
// others than the person.
bool IsSharedScreen(const RequestContext& ctx);

// The category-level reason of an item whose explanation may not name a
// person's item: "picked for your taste in <value>" with the item's value of
// the categorical column `category` when the catalog has one, else "picked
// for your taste".
std::string DiscreetReason(const Catalog& catalog, int32_t item);

}  // namespace vitrine
