// The `vitrine trends --report` document: per catalog column, its values'
// growth ratios with 95% intervals (engine/trend.h) as a table and a forest
// plot (a point per value on a log axis, its interval as a bar, rising green,
// falling red, steady grey). HTML holds both; SVG the plots alone. Every
// catalog value is escaped, so any catalog renders a valid document.
#pragma once

#include <string>
#include <vector>

#include "core/catalog.h"
#include "core/status.h"
#include "engine/trend.h"

namespace vitrine::cli {

enum class ReportKind { kHtml, kSvg };
// By the file's extension (.html, .htm or .svg); InvalidArgument otherwise.
Result<ReportKind> ReportKindOf(const std::string& path);

struct TrendReport {
  int64_t now_hour = 0;  // the windows end with this hour
  int64_t window_hours = 24;
  struct ColumnTrends {
    std::string column;
    std::vector<GroupTrend> groups;  // by growth ratio, largest first
  };
  std::vector<ColumnTrends> columns;
};

// The start of a unix hour as ISO-8601, "2025-12-27T23:00Z".
std::string UtcHour(int64_t hour);

std::string RenderTrendReport(const TrendReport& report, const Catalog& catalog, ReportKind kind);

}  // namespace vitrine::cli
