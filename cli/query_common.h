// Shared by `similar` and `recommend`: common flags and result printing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cli/output.h"
#include "core/status.h"
#include "engine/engine.h"

namespace vitrine::cli {

// "cf=0.6,content=0.3" -> map; errors name the bad part.
Result<std::map<std::string, float>> ParseWeightsFlag(const std::string& spec);

// rank, item_id, score, a few catalog columns that exist (title, brand,
// category, price) and, with `explain`, per-block cosines and the reason.
// `query` (if not empty) becomes a leading query_id column.
void AppendHits(const Engine& engine, const std::vector<Hit>& hits, bool explain,
                const std::string& query, Table* table);
Table HitsTable(const Engine& engine, bool explain, bool with_query);

}  // namespace vitrine::cli
