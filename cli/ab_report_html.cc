// The A/B report page (cli/ab_report_html.h).
#include "cli/ab_report_html.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "cli/html.h"

namespace vitrine::cli {
namespace {

constexpr const char* kPalette[] = {"#57606a", "#0969da", "#bf3989", "#1a7f37",
                                    "#9a6700", "#8250df", "#cf222e", "#0a3069"};

std::string VariantLabel(const std::string& name) { return name.empty() ? "(none)" : name; }

std::string Pct(double x) { return std::isfinite(x) ? FormatNumber(100 * x, "%.2f") + "%" : "-"; }

// Rates as percentages; revenue per impression and coverage counts as numbers.
std::string Value(const std::string& metric, double x, int64_t catalog_items) {
  if (!std::isfinite(x)) return "-";
  if (metric == "revenue_per_impression") return FormatNumber(x, "%.4f");
  if (metric == "coverage" && catalog_items == 0) return FormatNumber(x, "%.0f");
  return Pct(x);
}

std::string UtcTime(int64_t t, bool with_hour) {
  const time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, with_hour ? "%Y-%m-%d %H:00" : "%Y-%m-%d", &tm);
  return buf;
}

// A difference against the control: a row per variant, a point and its
// interval on an axis that holds zero and every interval.
std::string DiffPlot(const AbReport& r, const std::string& metric) {
  double lo = 0, hi = 0;
  for (size_t v = 1; v < r.variants.size(); ++v) {
    auto it = r.variants[v].vs_control.find(metric);
    if (it == r.variants[v].vs_control.end()) continue;
    for (double x : {it->second.low, it->second.high, it->second.value}) {
      if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    }
  }
  if (hi - lo <= 0) hi = lo + 1e-9;
  const double pad = (hi - lo) * 0.08;
  lo -= pad, hi += pad;
  constexpr int kLeft = 150, kWidth = 420, kRow = 24;
  const int rows = static_cast<int>(r.variants.size()) - 1;
  const int height = 30 + kRow * rows;
  auto x = [&](double d) { return kLeft + (d - lo) / (hi - lo) * kWidth; };
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                  std::to_string(kLeft + kWidth + 20) + "\" height=\"" + std::to_string(height) +
                  "\" class=\"diff\" role=\"img\" aria-label=\"" + HtmlEscape(metric) +
                  " against the control\">\n";
  const std::string zero = FormatNumber(x(0), "%.1f");
  s += "<line x1=\"" + zero + "\" y1=\"4\" x2=\"" + zero + "\" y2=\"" +
       std::to_string(height - 18) + "\" stroke=\"#57606a\"/>\n";
  s += "<text x=\"" + zero + "\" y=\"" + std::to_string(height - 4) +
       "\" font-size=\"11\" text-anchor=\"middle\">0</text>\n";
  for (int i = 0; i < rows; ++i) {
    const VariantSummary& v = r.variants[static_cast<size_t>(i) + 1];
    auto it = v.vs_control.find(metric);
    if (it == v.vs_control.end() || !std::isfinite(it->second.low)) continue;
    const Estimate& e = it->second;
    const bool up = e.low > 0, down = e.high < 0;
    const char* colour = up ? "#1a7f37" : down ? "#cf222e" : "#6e7781";
    const std::string y = std::to_string(12 + kRow * i);
    s += "<text x=\"" + std::to_string(kLeft - 8) + "\" y=\"" + std::to_string(16 + kRow * i) +
         "\" font-size=\"12\" text-anchor=\"end\">" + HtmlEscape(VariantLabel(v.name)) +
         "</text>\n";
    s += "<line x1=\"" + FormatNumber(x(e.low), "%.1f") + "\" y1=\"" + y + "\" x2=\"" +
         FormatNumber(x(e.high), "%.1f") + "\" y2=\"" + y + "\" stroke=\"" + colour +
         "\" stroke-width=\"3\"/>\n";
    s += "<circle cx=\"" + FormatNumber(x(e.value), "%.1f") + "\" cy=\"" + y +
         "\" r=\"4\" fill=\"" + colour + "\"><title>" + HtmlEscape(VariantLabel(v.name)) + ": " +
         FormatNumber(e.value, "%.5f") + " [" + FormatNumber(e.low, "%.5f") + ", " +
         FormatNumber(e.high, "%.5f") + "]</title></circle>\n";
  }
  return s + "</svg>\n";
}

// A rate over time per variant: events of a kind / impressions per bucket.
std::string SeriesPlot(const AbReport& r, const char* what, bool clicks) {
  constexpr int kLeft = 60, kWidth = 640, kHeight = 200, kTop = 10;
  double top = 0;
  std::vector<std::vector<std::pair<double, double>>> lines(r.variants.size());
  const size_t n = r.series.size();
  for (size_t b = 0; b < n; ++b) {
    const SeriesPoint& p = r.series[b];
    for (size_t v = 0; v < r.variants.size(); ++v) {
      const std::string& name = r.variants[v].name;
      auto im = p.impressions.find(name);
      if (im == p.impressions.end() || im->second == 0) continue;
      const auto& num = clicks ? p.clicks : p.purchases;
      auto c = num.find(name);
      const double rate =
          (c == num.end() ? 0.0 : static_cast<double>(c->second)) / static_cast<double>(im->second);
      top = std::max(top, rate);
      lines[v].push_back({static_cast<double>(b), rate});
    }
  }
  if (top <= 0) top = 1e-9;
  top *= 1.1;
  auto x = [&](double b) {
    return kLeft + (n > 1 ? b / static_cast<double>(n - 1) : 0.5) * kWidth;
  };
  auto y = [&](double rate) { return kTop + kHeight - rate / top * kHeight; };
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                  std::to_string(kLeft + kWidth + 20) + "\" height=\"" +
                  std::to_string(kTop + kHeight + 40) +
                  "\" class=\"series\" role=\"img\" "
                  "aria-label=\"" +
                  std::string(what) + " over time\">\n";
  for (int t = 0; t <= 4; ++t) {
    const double rate = top * t / 4;
    const std::string ys = FormatNumber(y(rate), "%.1f");
    s += "<line x1=\"" + std::to_string(kLeft) + "\" y1=\"" + ys + "\" x2=\"" +
         std::to_string(kLeft + kWidth) + "\" y2=\"" + ys + "\" stroke=\"#d0d7de\"/>\n";
    s += "<text x=\"" + std::to_string(kLeft - 6) + "\" y=\"" + ys +
         "\" font-size=\"11\" text-anchor=\"end\">" + Pct(rate) + "</text>\n";
  }
  const bool hours = r.bucket_seconds < 86400;
  for (size_t b : {size_t{0}, n - 1}) {
    if (n == 0) break;
    s += "<text x=\"" + FormatNumber(x(static_cast<double>(b)), "%.1f") + "\" y=\"" +
         std::to_string(kTop + kHeight + 16) + "\" font-size=\"11\" text-anchor=\"middle\">" +
         UtcTime(r.series[b].bucket_start, hours) + "</text>\n";
  }
  for (size_t v = 0; v < lines.size(); ++v) {
    const char* colour = kPalette[v % std::size(kPalette)];
    std::string points, dots;
    for (const auto& [b, rate] : lines[v]) {
      const std::string xs = FormatNumber(x(b), "%.1f"), ys = FormatNumber(y(rate), "%.1f");
      points += xs + "," + ys + " ";
      // A point per bucket: a line needs two, and one bucket is a report too.
      dots += "<circle cx=\"" + xs + "\" cy=\"" + ys + "\" r=\"3\" fill=\"" + colour +
              "\"><title>" + HtmlEscape(VariantLabel(r.variants[v].name)) + " " +
              UtcTime(r.series[static_cast<size_t>(b)].bucket_start, hours) + ": " + Pct(rate) +
              "</title></circle>\n";
    }
    s += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(colour) +
         "\" points=\"" + points + "\"><title>" + HtmlEscape(VariantLabel(r.variants[v].name)) +
         "</title></polyline>\n" + dots;
    s += "<text x=\"" + std::to_string(kLeft + 10 + 120 * static_cast<int>(v)) + "\" y=\"" +
         std::to_string(kTop + kHeight + 34) + "\" font-size=\"12\" fill=\"" + colour + "\">" +
         HtmlEscape(VariantLabel(r.variants[v].name)) + "</text>\n";
  }
  return s + "</svg>\n";
}

}  // namespace

std::string RenderAbReport(const AbReport& r, const std::string& title) {
  const int64_t catalog = r.options.catalog_items;
  const std::string conf = FormatNumber(100 * r.options.confidence, "%.0f") + "%";
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
      HtmlEscape(title) +
      "</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:64em}table{border-"
      "collapse:collapse;margin:1em 0}td,th{padding:2px 10px;border-bottom:1px solid #ddd;"
      "text-align:right}td:first-child,th:first-child{text-align:left}.up{color:#1a7f37}"
      ".down{color:#cf222e}</style>\n</head><body>\n<h1>" +
      HtmlEscape(title) + "</h1>\n<p>Control: <b>" + HtmlEscape(VariantLabel(r.control)) +
      "</b>. Intervals are " + conf + " percentile intervals of a Poisson bootstrap over users (" +
      std::to_string(r.options.bootstrap) + " replicates, seed " + std::to_string(r.options.seed) +
      "); a difference is <span class=\"up\">up</span> or <span class=\"down\">down</span> "
      "when its whole interval is above or below zero.</p>\n";

  h += "<h2>Attribution</h2>\n<table><tr><th>events</th><th>count</th></tr>\n";
  h += "<tr><td>all</td><td>" + std::to_string(r.events) + "</td></tr>\n";
  for (int o = 0; o < kAttributionOutcomes; ++o) {
    h += "<tr><td>" + std::string(OutcomeName(static_cast<AttributionOutcome>(o))) + "</td><td>" +
         std::to_string(r.outcome_counts[o]) + "</td></tr>\n";
  }
  h += "</table>\n";

  h += "<h2>Variants</h2>\n<table><tr><th>variant</th><th>users</th><th>requests</th>"
       "<th>impressions</th><th>clicked</th><th>carted</th><th>purchased</th><th>returned</th>"
       "<th>revenue</th><th>items shown</th></tr>\n";
  for (const VariantSummary& v : r.variants) {
    h += "<tr><td>" + HtmlEscape(VariantLabel(v.name)) + "</td><td>" + std::to_string(v.units) +
         "</td><td>" + std::to_string(v.requests) + "</td><td>" + std::to_string(v.impressions) +
         "</td><td>" + std::to_string(v.clicks) + "</td><td>" + std::to_string(v.carts) +
         "</td><td>" + std::to_string(v.purchases) + "</td><td>" + std::to_string(v.returns) +
         "</td><td>" + FormatNumber(v.revenue) + "</td><td>" + std::to_string(v.distinct_items) +
         "</td></tr>\n";
  }
  h += "</table>\n";

  for (const std::string& m : r.metric_names) {
    h += "<h2>" + HtmlEscape(m) + "</h2>\n<table><tr><th>variant</th><th>value</th><th>" + conf +
         " interval</th><th>against control</th><th>" + conf + " interval</th></tr>\n";
    for (const VariantSummary& v : r.variants) {
      const Estimate& e = v.metrics.at(m);
      h += "<tr><td>" + HtmlEscape(VariantLabel(v.name)) + "</td><td>" +
           Value(m, e.value, catalog) + "</td><td>" + Value(m, e.low, catalog) + " to " +
           Value(m, e.high, catalog) + "</td>";
      auto d = v.vs_control.find(m);
      if (d == v.vs_control.end()) {
        h += "<td>control</td><td></td></tr>\n";
        continue;
      }
      const char* cls = d->second.low > 0    ? " class=\"up\""
                        : d->second.high < 0 ? " class=\"down\""
                                             : "";
      h += "<td" + std::string(cls) + ">" + (d->second.value >= 0 ? "+" : "") +
           Value(m, d->second.value, catalog) + "</td><td>" + Value(m, d->second.low, catalog) +
           " to " + Value(m, d->second.high, catalog) + "</td></tr>\n";
    }
    h += "</table>\n";
    if (r.variants.size() > 1) h += DiffPlot(r, m);
  }

  h += "<h2>Over time</h2>\n<p>Per " + std::string(r.bucket_seconds >= 86400 ? "day" : "hour") +
       " of the impressions (UTC), by variant.</p>\n<h3>CTR</h3>\n" + SeriesPlot(r, "CTR", true) +
       "<h3>Conversion</h3>\n" + SeriesPlot(r, "conversion", false);
  return h + "</body></html>\n";
}

}  // namespace vitrine::cli
