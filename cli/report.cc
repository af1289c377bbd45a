// vitrine report: what each A/B variant's answers led to (engine/ab_report.h),
// from the server's impression log and event log, as a table and an HTML
// page.
#include <cmath>
#include <filesystem>
#include <optional>

#include "cli/ab_report_html.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/query_common.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "core/value_parse.h"
#include "engine/ab_report.h"
#include "engine/engine.h"

namespace vitrine::cli {
namespace {

std::vector<std::string> EventNames(const cxxopts::ParseResult& r, const char* flag) {
  std::vector<std::string> out;
  for (const std::string& s : SplitList(r[flag].as<std::string>(), ',')) {
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

std::string Cell(double x) { return std::isfinite(x) ? FormatFloat(x, 6) : ""; }

int Run(int argc, char** argv) {
  constexpr char kName[] = "report";
  cxxopts::Options opts(
      "vitrine report",
      "What each A/B variant's answers led to: CTR, add-to-cart rate, conversion, revenue per "
      "impression, return rate and coverage per variant, each with a bootstrap interval over "
      "users, and the difference against the control. Events are attributed to the answer that "
      "showed their item through their request_id (serve --impression-log; docs/ab-testing.md).");
  opts.custom_help("--impressions F --events F [--bundle B] [--out report.html] [options]");
  // clang-format off
  opts.add_options()
      ("impressions", "Impression log of `vitrine serve --impression-log`", cxxopts::value<std::string>())
      ("events", "Event log (serve's events.csv, with request_id and position columns)",
       cxxopts::value<std::string>())
      ("bundle", "The served bundle: prices for revenue, the catalog size for coverage",
       cxxopts::value<std::string>())
      ("price-column", "Numeric catalog column of prices (with --bundle)",
       cxxopts::value<std::string>()->default_value("price"))
      ("out", "Write the report page here (.html)", cxxopts::value<std::string>())
      ("control", "The control variant (default: 'control' if there is one, else the first by name)",
       cxxopts::value<std::string>())
      ("window", "Attribute events at most this long after their impression",
       cxxopts::value<std::string>()->default_value("7d"))
      ("bootstrap", "Bootstrap replicates", cxxopts::value<int>()->default_value("1000"))
      ("confidence", "Level of every interval", cxxopts::value<double>()->default_value("0.95"))
      ("seed", "Seed of the bootstrap", cxxopts::value<uint64_t>()->default_value("42"))
      ("bucket", "Time step of the plots: hour, day or auto (a day, or an hour under 3 days)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("click-events", "Event names that count as a click",
       cxxopts::value<std::string>()->default_value("click,view"))
      ("cart-events", "Event names that count as add to cart",
       cxxopts::value<std::string>()->default_value("cart"))
      ("purchase-events", "Event names that count as a purchase",
       cxxopts::value<std::string>()->default_value("purchase,gift_purchase"))
      ("return-events", "Event names that count as a return",
       cxxopts::value<std::string>()->default_value("return"))
      ("format", "table, json or csv", cxxopts::value<std::string>()->default_value("table"));
  // clang-format on
  opts.set_width(100);
  auto p = ParseOrExit(opts, argc, argv, kName, {"impressions", "events"},
                       "  vitrine report --impressions impressions.csv --events events.csv\n"
                       "  vitrine report --impressions impressions.csv --events events.csv "
                       "--bundle demo/bundle --out report.html");
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  auto fmt = ParseFormat(r["format"].as<std::string>());
  if (!fmt.ok()) return UsageError(kName, fmt.status().message());
  AbReportOptions o;
  if (r.count("control")) o.control = r["control"].as<std::string>();
  o.bootstrap = r["bootstrap"].as<int>();
  o.confidence = r["confidence"].as<double>();
  o.seed = r["seed"].as<uint64_t>();
  // A duration (core/value_parse.h), or whole days: "7d".
  const std::string window_text = r["window"].as<std::string>();
  std::optional<double> window;
  if (window_text.ends_with("d")) {
    window = ParseNumber(std::string_view(window_text).substr(0, window_text.size() - 1));
    if (window) *window *= 86400;
  } else {
    window = ParseDuration(window_text);
  }
  if (!window || *window < 1 || *window > 366 * 86400.0) {
    return UsageError(kName, "--window: expected a duration from 1s to 366d, such as 7d or 12h");
  }
  o.attribution.window_seconds = static_cast<int64_t>(*window);
  const std::string bucket = r["bucket"].as<std::string>();
  if (bucket == "hour") {
    o.bucket_seconds = 3600;
  } else if (bucket == "day") {
    o.bucket_seconds = 86400;
  } else if (bucket != "auto") {
    return UsageError(kName, "--bucket must be hour, day or auto, got '" + bucket + "'");
  }
  o.click_events = EventNames(r, "click-events");
  o.cart_events = EventNames(r, "cart-events");
  o.purchase_events = EventNames(r, "purchase-events");
  o.return_events = EventNames(r, "return-events");
  if (o.bootstrap < 50 || o.bootstrap > 100000) {
    return UsageError(kName, "--bootstrap must be in [50, 100000]");
  }
  if (!(o.confidence >= 0.5 && o.confidence < 1)) {
    return UsageError(kName, "--confidence must be in [0.5, 1)");
  }
  if (r.count("out")) {
    const std::string out = r["out"].as<std::string>();
    if (!out.ends_with(".html") && !out.ends_with(".htm")) {
      return UsageError(kName, "--out '" + out + "': expected a file name ending in .html");
    }
  }

  if (r.count("bundle")) {
    auto engine = Engine::Open(r["bundle"].as<std::string>());
    if (!engine.ok()) return Fail(kName, engine.status());
    const Catalog& catalog = (*engine)->catalog();
    o.catalog_items = catalog.size();
    const std::string column = r["price-column"].as<std::string>();
    const Column* prices = catalog.column(column);
    if (prices == nullptr || prices->type != ColumnType::kNumeric) {
      LogInfo("the bundle's catalog has no numeric column '%s': no revenue per impression",
              column.c_str());
    } else {
      for (int32_t i = 0; i < catalog.size(); ++i) {
        const double price = prices->numbers[static_cast<size_t>(i)];
        if (std::isfinite(price)) o.prices[catalog.ids.id(i)] = price;
      }
    }
  }
  StageTimer t_read("reading the logs");
  auto impressions = ReadImpressions(r["impressions"].as<std::string>());
  if (!impressions.ok()) return Fail(kName, impressions.status());
  auto events = ReadEvents(r["events"].as<std::string>());
  if (!events.ok()) return Fail(kName, events.status());
  t_read.Done(std::to_string(impressions->size()) + " impressions, " +
              std::to_string(events->size()) + " events");
  StageTimer t_report("bootstrap");
  auto report = BuildAbReport(*impressions, *events, o);
  if (!report.ok()) return Fail(kName, report.status());
  t_report.Done(std::to_string(report->variants.size()) + " variants, " +
                std::to_string(o.bootstrap) + " replicates");
  LogInfo(
      "events: %lld attributed, %lld without a request id, %lld of unknown requests, %lld "
      "of items not shown, %lld of another user, %lld before their impression, %lld after "
      "the window",
      static_cast<long long>(report->outcome_counts[0]),
      static_cast<long long>(report->outcome_counts[1]),
      static_cast<long long>(report->outcome_counts[2]),
      static_cast<long long>(report->outcome_counts[3]),
      static_cast<long long>(report->outcome_counts[4]),
      static_cast<long long>(report->outcome_counts[5]),
      static_cast<long long>(report->outcome_counts[6]));

  Table t;
  t.header = {"variant", "metric",     "value",          "low",
              "high",    "vs_control", "vs_control_low", "vs_control_high"};
  for (const VariantSummary& v : report->variants) {
    for (const std::string& m : report->metric_names) {
      const Estimate& e = v.metrics.at(m);
      std::vector<std::string> row = {v.name.empty() ? "(none)" : v.name, m, Cell(e.value),
                                      Cell(e.low), Cell(e.high)};
      auto d = v.vs_control.find(m);
      if (d == v.vs_control.end()) {
        row.insert(row.end(), {"", "", ""});
      } else {
        row.insert(row.end(), {Cell(d->second.value), Cell(d->second.low), Cell(d->second.high)});
      }
      t.rows.push_back(std::move(row));
    }
  }
  if (r.count("out")) {
    const std::string out = r["out"].as<std::string>();
    Status st = WriteFileAtomic(out, RenderAbReport(*report, "vitrine A/B report"));
    if (!st.ok()) return Fail(kName, st);
    LogInfo("wrote %s", out.c_str());
  }
  t.Print(*fmt);
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("report", "A/B variants' CTR, conversion, revenue with intervals, from the logs",
                Run);

}  // namespace vitrine::cli
