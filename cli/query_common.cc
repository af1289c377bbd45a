#include "cli/query_common.h"

#include <cstdlib>

namespace vitrine::cli {
namespace {
const char* kDisplayColumns[] = {"brand", "category", "price", "title"};
}

Result<std::map<std::string, float>> ParseWeightsFlag(const std::string& spec) {
  std::map<std::string, float> w;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    const std::string part = spec.substr(pos, end - pos);
    const size_t eq = part.find('=');
    char* stop = nullptr;
    const float v = eq == std::string::npos ? 0 : std::strtof(part.c_str() + eq + 1, &stop);
    if (eq == std::string::npos || eq == 0 || stop == part.c_str() + eq + 1 || *stop != '\0') {
      return Status::InvalidArgument("--weights: '" + part + "': expected block=number");
    }
    w[part.substr(0, eq)] = v;
    pos = end + 1;
  }
  return w;
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
