// The `vitrine report` document (engine/ab_report.h): one self-contained
// HTML page, no script and nothing fetched, with
//   - the attribution summary (events attributed, and why the others not);
//   - per variant its counts and every metric with its interval;
//   - per metric the difference of each variant against the control, as a
//     table and as a plot (a point and its interval around zero);
//   - CTR and conversion over time per variant, as line plots.
// Every variant name and id is escaped.
#pragma once

#include <string>

#include "engine/ab_report.h"

namespace vitrine::cli {

std::string RenderAbReport(const AbReport& report, const std::string& title);

}  // namespace vitrine::cli
