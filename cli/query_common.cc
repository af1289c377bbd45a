#include "cli/query_common.h"

#include <cstdlib>

#include "core/file_util.h"
#include "core/progress.h"
#include "engine/evaluate.h"

namespace vitrine::cli {
namespace {
const char* kDisplayColumns[] = {"brand", "category", "price", "title"};
}

Result<std::map<std::string, float>> ParseWeightsFlag(const std::string& spec) {
  auto w = ParseBlockWeights(spec);
  if (!w.ok()) return Status::InvalidArgument("--" + w.status().message());
  return w;
}

std::vector<std::string> SplitList(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(sep, pos);
    if (end == std::string::npos) end = s.size();
    std::string part = s.substr(pos, end - pos);
    if (!part.empty() && part.back() == '\r') part.pop_back();
    if (!part.empty()) out.push_back(std::move(part));
    pos = end + 1;
  }
  return out;
}

void AddRuleFlags(cxxopts::Options& opts) {
  opts.add_options("Rules")("rules", "Brand-rules file (docs/rules.md)",
                            cxxopts::value<std::string>())(
      "rule", "One inline rule, e.g. 'EXCLUDE WHERE brand = \"Pulse\"' (repeatable)",
      cxxopts::value<std::vector<std::string>>())(
      "param", "Rule parameter NAME=VALUE for $NAME (repeatable)",
      cxxopts::value<std::vector<std::string>>())(
      "context", "Request context key=value for context.key (repeatable)",
      cxxopts::value<std::vector<std::string>>());
}

void AddQueryFlags(cxxopts::Options& opts) {
  AddRuleFlags(opts);
  opts.add_options("Ranking")("k", "Number of results", cxxopts::value<int>()->default_value("10"))(
      "weights", "Block weights, e.g. cf=0.6,content=0.3,visual=0.1",
      cxxopts::value<std::string>())(
      "diversity", "none, mmr[:lambda] (default 0.7) or dpp[:theta] (default 0.7)",
      cxxopts::value<std::string>()->default_value("none"))(
      "pool", "Candidates retrieved before reranking (0 = max(10 k, 100))",
      cxxopts::value<int>()->default_value("0"))(
      "only-items", "File of item ids (one per line): recommend only among these",
      cxxopts::value<std::string>())("exclude", "Item ids never to return, comma-separated",
                                     cxxopts::value<std::string>())(
      "ef", "HNSW search beam (0 = the bundle's operating point, else 128)",
      cxxopts::value<int>()->default_value("0"))("explain",
                                                 "Per-block cosines and a reason for every result");
}

namespace {
Status ParseKeyValues(const std::vector<std::string>& items, const char* flag,
                      std::map<std::string, std::string, std::less<>>* out) {
  for (const auto& kv : items) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(std::string(flag) + " '" + kv + "': expected KEY=VALUE");
    }
    (*out)[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return Status::OK();
}

}  // namespace

Status ParseRuleFlags(const cxxopts::ParseResult& r, const Engine& engine, QuerySetup* setup,
                      bool* usage) {
  QueryParams& q = setup->query;
  *usage = true;
  if (r.count("param")) {
    VITRINE_RETURN_IF_ERROR(
        ParseKeyValues(r["param"].as<std::vector<std::string>>(), "--param", &q.context.params));
  }
  if (r.count("context")) {
    VITRINE_RETURN_IF_ERROR(ParseKeyValues(r["context"].as<std::vector<std::string>>(), "--context",
                                           &q.context.context));
  }
  *usage = false;
  // Rules: a file and/or inline rules, parsed and bound as one rule set so
  // that an error anywhere applies nothing.
  std::string text, source;
  if (r.count("rules")) {
    source = r["rules"].as<std::string>();
    VITRINE_ASSIGN_OR_RETURN(text, ReadFile(source));
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  if (r.count("rule")) {
    for (const auto& rule : r["rule"].as<std::vector<std::string>>()) text += rule + "\n";
    if (source.empty()) source = "--rule";
  }
  if (!source.empty()) {
    VITRINE_ASSIGN_OR_RETURN(CompiledRules rules, CompileRules(engine, text, source));
    setup->rules = std::make_unique<CompiledRules>(std::move(rules));
    setup->rules->ApplyTo(&q);
  }
  return Status::OK();
}

Result<std::unique_ptr<QuerySetup>> ParseQueryFlags(const cxxopts::ParseResult& r,
                                                    const Engine& engine, bool* usage) {
  auto setup = std::make_unique<QuerySetup>();
  QueryParams& q = setup->query;
  *usage = true;
  q.k = r["k"].as<int>();
  q.ef_search = r["ef"].as<int>();
  q.pool = r["pool"].as<int>();
  if (q.k < 1) return Status::InvalidArgument("-k must be at least 1");
  if (q.ef_search < 0) return Status::InvalidArgument("--ef must be >= 0");
  if (q.pool < 0) return Status::InvalidArgument("--pool must be >= 0");
  if (r.count("weights")) {
    VITRINE_ASSIGN_OR_RETURN(q.weights, ParseWeightsFlag(r["weights"].as<std::string>()));
  }
  {
    Status st = ParseDiversity(r["diversity"].as<std::string>(), &q);
    if (!st.ok()) return Status::InvalidArgument("--" + st.message());
  }
  VITRINE_RETURN_IF_ERROR(ParseRuleFlags(r, engine, setup.get(), usage));

  if (r.count("only-items")) {
    const std::string path = r["only-items"].as<std::string>();
    VITRINE_ASSIGN_OR_RETURN(std::string ids, ReadFile(path));
    setup->only_items = std::make_unique<Bitmap>();
    int line = 0;
    for (const auto& id : SplitList(ids, '\n')) {
      ++line;
      auto i = engine.FindItem(id);
      if (!i.ok()) return i.status().WithContext(path + ":" + std::to_string(line));
      setup->only_items->add(static_cast<uint32_t>(*i));
    }
    q.allowed = setup->only_items.get();
  }
  if (r.count("exclude")) {
    for (const auto& id : SplitList(r["exclude"].as<std::string>(), ',')) {
      VITRINE_ASSIGN_OR_RETURN(int32_t i, engine.FindItem(id));
      q.exclude.push_back(i);
    }
  }
  return setup;
}

void LogDiversity(const Engine& engine, const std::vector<Hit>& hits) {
  std::vector<int32_t> items;
  for (const Hit& h : hits) items.push_back(h.item);
  if (items.size() >= 2) {
    LogInfo("intra-list diversity %.3f (mean pairwise 1 - cosine over %zu results)",
            IntraListDiversity(items, engine.vectors()), items.size());
  }
}

Table HitsTable(const Engine& engine, bool explain, bool with_query) {
  Table t;
  if (with_query) t.header.push_back("query_id");
  t.header.insert(t.header.end(), {"rank", "item_id", "score"});
  for (const char* c : kDisplayColumns) {
    if (engine.catalog().column(c) != nullptr) t.header.emplace_back(c);
  }
  if (explain) {
    for (const auto& b : engine.layout()) t.header.push_back(b.name);
    t.header.emplace_back("reason");
  }
  return t;
}

void AppendHits(const Engine& engine, const std::vector<Hit>& hits, bool explain,
                const std::string& query, Table* table) {
  const Catalog& cat = engine.catalog();
  int rank = 1;
  for (const Hit& h : hits) {
    std::vector<std::string> row;
    if (!query.empty()) row.push_back(query);
    row.push_back(std::to_string(rank++));
    row.push_back(cat.ids.id(h.item));
    row.push_back(FormatFloat(h.score));
    for (const char* c : kDisplayColumns) {
      if (const Column* col = cat.column(c)) row.push_back(cat.ValueString(*col, h.item));
    }
    if (explain) {
      for (float c : h.block_cos) row.push_back(FormatFloat(c, 3));
      row.push_back(h.reason);
    }
    table->rows.push_back(std::move(row));
  }
}

}  // namespace vitrine::cli
