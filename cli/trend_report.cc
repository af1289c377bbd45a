// The trends report as HTML or SVG (cli/trend_report.h).
#include "cli/trend_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "cli/html.h"

namespace vitrine::cli {
namespace {

const char* Colour(const std::string& direction) {
  return direction == "rising" ? "#1a7f37" : direction == "falling" ? "#cf222e" : "#6e7781";
}

constexpr int kLabelWidth = 180, kPlotWidth = 420, kRowHeight = 22, kTop = 34, kWidth = 900;

// One forest plot: a log2 ratio axis from 1/range to range, centred on 1.
std::string ForestPlot(const TrendReport::ColumnTrends& col, int y0) {
  double extent = 2;  // at least 1/2x .. 2x
  for (const GroupTrend& g : col.groups) {
    extent = std::max({extent, g.ratio_high, 1 / std::max(g.ratio_low, 1e-9)});
  }
  extent = std::min(extent, 64.0);
  const double half = std::log2(extent);
  const auto x = [&](double ratio) {
    const double l = std::clamp(std::log2(std::max(ratio, 1e-9)), -half, half);
    return kLabelWidth + (l + half) / (2 * half) * kPlotWidth;
  };
  const int height = kTop + kRowHeight * static_cast<int>(col.groups.size()) + 24;
  std::string s = "<g transform=\"translate(0," + std::to_string(y0) + ")\">\n";
  s += "<text x=\"8\" y=\"18\" font-weight=\"bold\">" + HtmlEscape(col.column) +
       ": growth ratio, this window over the one before (95% interval)</text>\n";
  const int bottom = height - 20;
  // Axis ticks at powers of two.
  for (int e = -static_cast<int>(half); e <= static_cast<int>(half); ++e) {
    const double r = std::pow(2.0, e);
    const std::string xs = FormatNumber(x(r), "%.1f");
    s += "<line x1=\"" + xs + "\" y1=\"" + std::to_string(kTop - 6) + "\" x2=\"" + xs + "\" y2=\"" +
         std::to_string(bottom) + "\" stroke=\"" + (e == 0 ? "#57606a" : "#d0d7de") + "\"/>\n";
    s += "<text x=\"" + xs + "\" y=\"" + std::to_string(bottom + 14) +
         "\" font-size=\"11\" text-anchor=\"middle\">" +
         (e >= 0 ? FormatNumber(r, "%.0f") + "x" : "1/" + FormatNumber(1 / r, "%.0f") + "x") +
         "</text>\n";
  }
  for (size_t i = 0; i < col.groups.size(); ++i) {
    const GroupTrend& g = col.groups[i];
    const int y = kTop + kRowHeight * static_cast<int>(i) + kRowHeight / 2;
    const std::string ys = std::to_string(y), colour = Colour(g.direction);
    const std::string label = g.value.empty() ? "(none)" : g.value;
    s += "<text x=\"" + std::to_string(kLabelWidth - 8) + "\" y=\"" + std::to_string(y + 4) +
         "\" text-anchor=\"end\" font-size=\"12\">" + HtmlEscape(label.substr(0, 28)) + "</text>\n";
    s += "<line class=\"interval\" x1=\"" + FormatNumber(x(g.ratio_low), "%.1f") + "\" y1=\"" + ys +
         "\" x2=\"" + FormatNumber(x(g.ratio_high), "%.1f") + "\" y2=\"" + ys + "\" stroke=\"" +
         colour + "\" stroke-width=\"3\"/>\n";
    s += "<circle class=\"ratio\" cx=\"" + FormatNumber(x(g.ratio), "%.1f") + "\" cy=\"" + ys +
         "\" r=\"4\" fill=\"" + colour + "\"><title>" + HtmlEscape(label) + ": " +
         FormatNumber(g.ratio) + "x [" + FormatNumber(g.ratio_low) + ", " +
         FormatNumber(g.ratio_high) + "], " + g.direction + "</title></circle>\n";
    s += "<text x=\"" + std::to_string(kLabelWidth + kPlotWidth + 10) + "\" y=\"" +
         std::to_string(y + 4) + "\" font-size=\"11\">" + FormatNumber(g.ratio) + "x [" +
         FormatNumber(g.ratio_low) + ", " + FormatNumber(g.ratio_high) + "] " +
         FormatNumber(g.counts.current_events, "%.0f") + " vs " +
         FormatNumber(g.counts.previous_events, "%.0f") + "</text>\n";
  }
  s += "</g>\n";
  return s;
}

int PlotHeight(const TrendReport::ColumnTrends& col) {
  return kTop + kRowHeight * static_cast<int>(col.groups.size()) + 24;
}

std::string Svg(const std::vector<const TrendReport::ColumnTrends*>& cols) {
  int height = 8;
  for (const auto* c : cols) height += PlotHeight(*c) + 16;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) +
                  "\" height=\"" + std::to_string(height) + "\" font-family=\"sans-serif\">\n";
  int y = 8;
  for (const auto* c : cols) {
    s += ForestPlot(*c, y);
    y += PlotHeight(*c) + 16;
  }
  return s + "</svg>\n";
}

}  // namespace

std::string UtcHour(int64_t hour) {
  const auto t = static_cast<std::time_t>(hour * 3600);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:00Z", &tm);
  return buf;
}

Result<ReportKind> ReportKindOf(const std::string& path) {
  const auto ends = [&](const std::string& ext) {
    return path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (ends(".html") || ends(".htm")) return ReportKind::kHtml;
  if (ends(".svg")) return ReportKind::kSvg;
  return Status::InvalidArgument("'" + path.substr(0, 80) +
                                 "': expected a file name ending in .html or .svg");
}

std::string RenderTrendReport(const TrendReport& report, const Catalog& catalog, ReportKind kind) {
  std::vector<const TrendReport::ColumnTrends*> cols;
  for (const auto& c : report.columns) cols.push_back(&c);
  if (kind == ReportKind::kSvg) return Svg(cols);
  const std::string window = TrendWindowName(report.window_hours);
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<title>vitrine trends</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:"
      "60em}table{border-collapse:collapse;margin:1em 0}td,th{padding:2px 10px;border-bottom:"
      "1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}"
      ".rising{color:#1a7f37}.falling{color:#cf222e}.steady{color:#6e7781}</style>\n"
      "</head><body>\n<h1>Trends</h1>\n<p>Events in the " +
      window + " up to " + UtcHour(report.now_hour + 1) + " against the " + window +
      " before. Growth is the ratio of event counts (each +0.5); the 95% interval comes from "
      "the normal approximation of the log ratio of two Poisson counts. A value is "
      "<span class=\"rising\">rising</span> when its whole interval is above 1, "
      "<span class=\"falling\">falling</span> when below, else steady.</p>\n";
  for (const auto& c : report.columns) {
    h += "<h2>" + HtmlEscape(c.column) + "</h2>\n";
    if (c.groups.empty()) {
      h += "<p>No values.</p>\n";
      continue;
    }
    h += Svg({&c});
    h += "<table><tr><th>" + HtmlEscape(c.column) +
         "</th><th>growth</th><th>95% interval</th><th>direction</th><th>events</th>"
         "<th>before</th><th>weighted</th><th>before</th><th>items</th><th>top trending "
         "items</th></tr>\n";
    for (const GroupTrend& g : c.groups) {
      std::string top;
      for (int32_t i : g.top_items) top += (top.empty() ? "" : " ") + HtmlEscape(catalog.ids.id(i));
      h += "<tr class=\"" + g.direction + "\"><td>" +
           HtmlEscape(g.value.empty() ? "(none)" : g.value) + "</td><td>" + FormatNumber(g.ratio) +
           "x</td><td>" + FormatNumber(g.ratio_low) + " to " + FormatNumber(g.ratio_high) +
           "</td><td>" + g.direction + "</td><td>" + FormatNumber(g.counts.current_events, "%.0f") +
           "</td><td>" + FormatNumber(g.counts.previous_events, "%.0f") + "</td><td>" +
           FormatNumber(g.counts.current, "%.1f") + "</td><td>" +
           FormatNumber(g.counts.previous, "%.1f") + "</td><td>" + std::to_string(g.items) +
           "</td><td>" + top + "</td></tr>\n";
    }
    h += "</table>\n";
  }
  return h + "</body></html>\n";
}

}  // namespace vitrine::cli
