// vitrine trending: the items (or a column's values) gaining demand fastest.
// vitrine trends: a report of rising and falling categories, brands, colours
// and materials for inventory planning (cli/trend_report.h).
#include <algorithm>
#include <filesystem>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/query_common.h"
#include "cli/trend_report.h"
#include "core/csv.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "core/value_parse.h"

namespace vitrine::cli {
namespace {

// The flags both commands share: window and time.
void AddTrendFlags(cxxopts::Options& opts) {
  // clang-format off
  opts.add_options()
      ("bundle", "Bundle directory", cxxopts::value<std::string>())
      ("window", "Trend window: growth over the last window against the one before (1h to 7d)",
       cxxopts::value<std::string>()->default_value("1d"))
      ("at", "End the windows at this time (unix seconds or ISO-8601); default: the newest event",
       cxxopts::value<std::string>());
  // clang-format on
}

// Fills r's window and time from the flags; false after printing a usage error.
bool ParseTrendFlags(const cxxopts::ParseResult& p, const char* name, TrendRequest* r, int* rc) {
  auto hours = ParseTrendWindow(p["window"].as<std::string>());
  if (!hours.ok()) {
    *rc = UsageError(name, "--window: " + hours.status().message());
    return false;
  }
  r->window_hours = *hours;
  if (p.count("at")) {
    const std::string at = p["at"].as<std::string>();
    if (!ParseTimestamp(at, &r->at) || r->at <= 0) {
      *rc = UsageError(name, "--at '" + at.substr(0, 40) +
                                 "': expected unix seconds or an ISO-8601 time after 1970, such "
                                 "as 2025-12-24T18:00:00Z");
      return false;
    }
  }
  return true;
}

void LogWindows(const TrendRequest& r, int64_t now_hour) {
  const std::string w = TrendWindowName(r.window_hours);
  LogInfo("windows: the %s up to %s against the %s before", w.c_str(),
          UtcHour(now_hour + 1).c_str(), w.c_str());
}

int RunTrending(int argc, char** argv) {
  constexpr char kName[] = "trending";
  cxxopts::Options opts("vitrine trending",
                        "The items whose weighted events grow fastest: events in the last "
                        "window minus events in the window before (the newest event ends the "
                        "last window). With --by, that column's values by growth ratio, with a "
                        "95% interval. Rules, caps and diversity apply as to recommendations.");
  opts.custom_help("--bundle B [--window 1d] [--by COLUMN] [-k 10] [options]");
  AddTrendFlags(opts);
  // clang-format off
  opts.add_options()
      ("by", "List this categorical column's values by growth instead of items",
       cxxopts::value<std::string>())
      ("k", "Items (or values) to list", cxxopts::value<int>()->default_value("10"))
      ("diversity", "none, mmr[:lambda] or dpp[:theta]",
       cxxopts::value<std::string>()->default_value("none"))
      ("format", "table, json or csv", cxxopts::value<std::string>()->default_value("table"));
  // clang-format on
  AddRuleFlags(opts);
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle"},
                       "  vitrine trending --bundle demo/bundle --window 7d -k 5\n"
                       "  vitrine trending --bundle demo/bundle --by category\n"
                       "  vitrine trending --bundle demo/bundle --rule 'CAP 2 PER brand'");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  auto fmt = ParseFormat(r["format"].as<std::string>());
  if (!fmt.ok()) return UsageError(kName, fmt.status().message());
  TrendRequest req;
  int rc = 0;
  if (!ParseTrendFlags(r, kName, &req, &rc)) return rc;
  if (r["k"].as<int>() < 1) return UsageError(kName, "-k must be at least 1");
  auto engine = Engine::Open(r["bundle"].as<std::string>());
  if (!engine.ok()) return Fail(kName, engine.status());
  const Engine& e = **engine;
  QuerySetup setup;
  bool usage = false;
  Status st = ParseRuleFlags(r, e, &setup, &usage);
  if (!st.ok()) return usage ? UsageError(kName, st.message()) : Fail(kName, st);
  req.query = setup.query;
  req.query.k = r["k"].as<int>();
  st = ParseDiversity(r["diversity"].as<std::string>(), &req.query);
  if (!st.ok()) return UsageError(kName, "--diversity: " + st.message());
  Table t;
  if (r.count("by")) {
    if (req.query.diversity != Diversity::kNone) {
      return UsageError(kName, "--diversity applies to items, not to --by values");
    }
    req.by = r["by"].as<std::string>();
    auto groups = e.GroupTrends(req);
    if (!groups.ok()) return Fail(kName, groups.status());
    LogWindows(req, *e.TrendHour(req));
    // The keys of GET /trending?by=, with the column's name for "value".
    t.header = {"rank",      req.by,   "growth",        "growth_low95", "growth_high95",
                "direction", "events", "events_before", "top_items"};
    for (const GroupTrend& g : *groups) {
      std::string top;
      for (int32_t i : g.top_items) top += (top.empty() ? "" : " ") + e.catalog().ids.id(i);
      t.rows.push_back({std::to_string(t.rows.size() + 1), g.value, FormatFloat(g.ratio, 3),
                        FormatFloat(g.ratio_low, 3), FormatFloat(g.ratio_high, 3), g.direction,
                        FormatFloat(g.counts.current_events, 0),
                        FormatFloat(g.counts.previous_events, 0), top});
    }
  } else {
    auto trending = e.Trend(req);
    if (!trending.ok()) return Fail(kName, trending.status());
    LogWindows(req, trending->now_hour);
    if (trending->hits.empty()) LogInfo("no item gained events in the last window");
    t.header = {"rank", "item_id", "growth", "current", "previous", "reason"};
    for (size_t j = 0; j < trending->hits.size(); ++j) {
      const Hit& h = trending->hits[j];
      const TrendCounts& c = trending->counts[j];
      t.rows.push_back({std::to_string(j + 1), e.catalog().ids.id(h.item),
                        FormatFloat(c.growth(), 2), FormatFloat(c.current, 2),
                        FormatFloat(c.previous, 2), h.reason});
    }
  }
  t.Print(*fmt);
  return kExitOk;
}

int RunTrends(int argc, char** argv) {
  constexpr char kName[] = "trends";
  cxxopts::Options opts("vitrine trends",
                        "A report for inventory planning: which values of the catalog's "
                        "category, brand, colour and material columns are rising or falling, "
                        "each with its growth ratio (events this window over the window "
                        "before), a 95% interval and a plot. Writes HTML (a page with tables "
                        "and plots) or SVG (the plots), by the file's extension.");
  opts.custom_help("--bundle B --report out.html|out.svg [--window 7d] [--columns a,b]");
  AddTrendFlags(opts);
  // clang-format off
  opts.add_options()
      ("report", "Output file, .html or .svg (written atomically)", cxxopts::value<std::string>())
      ("columns", "Categorical columns to report (default: those of category, brand, color, "
       "colour and material the catalog has)", cxxopts::value<std::string>())
      ("k", "Values per column, by growth (0 = all)", cxxopts::value<int>()->default_value("20"));
  // clang-format on
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"bundle", "report"},
                       "  vitrine trends --bundle demo/bundle --report trends.html\n"
                       "  vitrine trends --bundle demo/bundle --window 7d --columns brand "
                       "--report brands.svg");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  TrendRequest req;
  int rc = 0;
  if (!ParseTrendFlags(r, kName, &req, &rc)) return rc;
  if (r["k"].as<int>() < 0) return UsageError(kName, "-k must be 0 (all) or more");
  req.query.k = r["k"].as<int>();
  const std::string out = r["report"].as<std::string>();
  auto kind = ReportKindOf(out);
  if (!kind.ok()) return UsageError(kName, "--report: " + kind.status().message());
  // A typo in the path should not make a directory tree.
  const std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent)) {
    return UsageError(kName, "--report: directory '" + parent.string() + "' does not exist");
  }
  auto engine = Engine::Open(r["bundle"].as<std::string>());
  if (!engine.ok()) return Fail(kName, engine.status());
  const Engine& e = **engine;
  std::vector<std::string> columns;
  if (r.count("columns")) {
    for (std::string c : SplitList(r["columns"].as<std::string>(), ',')) {
      c = std::string(TrimBlanks(c));
      if (!c.empty() && std::find(columns.begin(), columns.end(), c) == columns.end()) {
        columns.push_back(c);
      }
    }
    if (columns.empty()) return UsageError(kName, "--columns names no column");
  } else {
    for (const char* c : {"category", "brand", "color", "colour", "material"}) {
      const Column* col = e.catalog().column(c);
      if (col != nullptr && col->type == ColumnType::kCategorical) columns.emplace_back(c);
    }
    if (columns.empty()) {
      return UsageError(kName,
                        "the catalog has none of category, brand, color, colour, material as a "
                        "categorical column: name the columns with --columns");
    }
  }
  TrendReport report;
  auto now = e.TrendHour(req);
  if (!now.ok()) return Fail(kName, now.status());
  report.now_hour = *now;
  report.window_hours = req.window_hours;
  for (const std::string& c : columns) {
    req.by = c;
    auto groups = e.GroupTrends(req);
    if (!groups.ok()) return Fail(kName, groups.status());
    report.columns.push_back({c, std::move(*groups)});
  }
  const std::string text = RenderTrendReport(report, e.catalog(), *kind);
  const Status st = WriteFileAtomic(out, text);
  if (!st.ok()) return Fail(kName, st);
  LogWindows(req, report.now_hour);
  int rising = 0, falling = 0;
  for (const auto& col : report.columns) {
    for (const GroupTrend& g : col.groups) {
      rising += g.direction == "rising";
      falling += g.direction == "falling";
    }
  }
  std::printf("wrote %s: %zu columns, %d values rising, %d falling (95%% intervals)\n", out.c_str(),
              report.columns.size(), rising, falling);
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("trending", "The items (or a column's values) gaining demand fastest", RunTrending);
VITRINE_COMMAND("trends", "Rising and falling categories, brands, colours: an HTML/SVG report",
                RunTrends);

}  // namespace vitrine::cli
