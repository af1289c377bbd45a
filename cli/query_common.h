// Shared by `similar` and `recommend`: common flags and result printing.
#pragma once

#include <cxxopts.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/output.h"
#include "core/status.h"
#include "engine/compiled_rules.h"
#include "engine/engine.h"

namespace vitrine::cli {

// "cf=0.6,content=0.3" -> map; errors name the bad part.
Result<std::map<std::string, float>> ParseWeightsFlag(const std::string& spec);

// Splits on `sep`, dropping empty parts and a trailing '\r' of each part
// (id lists on the command line and id files with CRLF endings).
std::vector<std::string> SplitList(const std::string& s, char sep);

// Rule flags: --rules, --rule, --param, --context (part of AddQueryFlags).
void AddRuleFlags(cxxopts::Options& opts);
// Flags shared by similar and recommend: the rule flags, weights, diversity,
// candidate restriction.
void AddQueryFlags(cxxopts::Options& opts);

// What those flags resolve to; owns the rules and bitmaps that `query`
// points to, so it must outlive every use of `query`.
struct QuerySetup {
  QueryParams query;
  std::unique_ptr<CompiledRules> rules;
  std::unique_ptr<Bitmap> only_items;
};
// The rule flags into setup->query (and setup->rules, which it points to).
Status ParseRuleFlags(const cxxopts::ParseResult& r, const Engine& engine, QuerySetup* setup,
                      bool* usage);
// Usage errors (bad syntax of a flag) come back as InvalidArgument with
// `usage` set; file and rule errors as other Statuses.
Result<std::unique_ptr<QuerySetup>> ParseQueryFlags(const cxxopts::ParseResult& r,
                                                    const Engine& engine, bool* usage);

// rank, item_id, score, a few catalog columns that exist (title, brand,
// category, price) and, with `explain`, per-block cosines and the reason.
// `query` (if not empty) becomes a leading query_id column.
void AppendHits(const Engine& engine, const std::vector<Hit>& hits, bool explain,
                const std::string& query, Table* table);
// Logs the list's intra-list diversity (mean pairwise 1 - cosine of the
// fused vectors) on stderr.
void LogDiversity(const Engine& engine, const std::vector<Hit>& hits);
Table HitsTable(const Engine& engine, bool explain, bool with_query);

}  // namespace vitrine::cli
