// vitrine split: temporal per-user holdout of an interactions CSV into a train
// and a test file (engine/split.h has the exact rule). Rows are copied
// verbatim, in input order, under the input's header line.
//
// The CSV handling here is deliberately minimal (one record per line, RFC 4180
// quotes within a line); a quoted field spanning lines is reported as an error.
#include "engine/split.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "core/file_util.h"

namespace vitrine::cli {
namespace {

// Splits one CSV line into unquoted fields. Returns false on an unterminated
// quote (a field that continues on the next line).
bool SplitCsvLine(std::string_view line, std::vector<std::string>* fields) {
  fields->clear();
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields->push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  fields->push_back(std::move(cur));
  return !quoted;
}

Result<std::vector<Event>> ReadEvents(const std::string& path, const std::string& user_col,
                                      const std::string& item_col, const std::string& ts_col,
                                      std::string* header) {
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<Event> events;
  std::vector<std::string> f;
  size_t pos = 0;
  int64_t line_no = 0;
  size_t ucol = 0, icol = 0, tcol = 0, need = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string where = path + ":" + std::to_string(line_no);
    if (line_no == 1) {
      *header = std::string(line);
      if (!SplitCsvLine(line, &f)) return Status::InvalidArgument(where + ": unterminated quote");
      auto find = [&](const std::string& name, size_t* col) -> Status {
        for (size_t c = 0; c < f.size(); ++c) {
          if (f[c] == name) {
            *col = c;
            return Status::OK();
          }
        }
        return Status::InvalidArgument(where + ": no column '" + name + "' in header '" + *header +
                                       "'");
      };
      VITRINE_RETURN_IF_ERROR(find(user_col, &ucol));
      VITRINE_RETURN_IF_ERROR(find(item_col, &icol));
      VITRINE_RETURN_IF_ERROR(find(ts_col, &tcol));
      need = std::max({ucol, icol, tcol}) + 1;
      continue;
    }
    if (line.empty()) continue;
    if (!SplitCsvLine(line, &f)) {
      return Status::InvalidArgument(
          where + ": unterminated quote (quoted fields spanning lines are not supported)");
    }
    if (f.size() < need) {
      return Status::InvalidArgument(where + ": expected at least " + std::to_string(need) +
                                     " fields, found " + std::to_string(f.size()));
    }
    Event e;
    const std::string& t = f[tcol];
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), e.ts);
    if (ec != std::errc() || ptr != t.data() + t.size() || t.empty()) {
      return Status::InvalidArgument(where + ": column '" + ts_col +
                                     "': expected an integer timestamp, found '" + t + "'");
    }
    e.user = std::move(f[ucol]);
    e.item = std::move(f[icol]);
    e.raw_line = std::string(line);
    events.push_back(std::move(e));
  }
  if (line_no == 0) return Status::InvalidArgument(path + ": empty file (expected a header)");
  return events;
}

Status WriteRows(const std::string& path, const std::string& header,
                 const std::vector<Event>& events, const std::vector<int64_t>& rows) {
  std::string out = header + "\n";
  for (int64_t i : rows) {
    out += events[static_cast<size_t>(i)].raw_line;
    out += '\n';
  }
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  return WriteFileAtomic(path, out, gz);
}

int RunSplit(int argc, char** argv) {
  const std::string cmd = "split";
  cxxopts::Options opts(
      "vitrine split",
      "Hold out each user's latest interactions as a test set (temporal per-user split).\n"
      "A user with n >= 2 events keeps ceil(f * n) (at least 1, at most n - 1) newest in\n"
      "test; a user with one event stays in train. Rows are copied verbatim; output files\n"
      "ending in .gz are gzip-compressed.\n\nExample:\n"
      "  vitrine split --interactions interactions.csv --train train.csv --test test.csv "
      "--test-fraction 0.2\n");
  opts.add_options()("interactions", "Input interactions CSV (gzip ok)",
                     cxxopts::value<std::string>())(
      "train", "Output train CSV", cxxopts::value<std::string>())("test", "Output test CSV",
                                                                  cxxopts::value<std::string>())(
      "test-fraction", "Fraction of each user's events held out, in (0, 1)",
      cxxopts::value<double>()->default_value("0.2"))(
      "user-column", "User id column", cxxopts::value<std::string>()->default_value("user_id"))(
      "item-column", "Item id column", cxxopts::value<std::string>()->default_value("item_id"))(
      "timestamp-column", "Integer timestamp column",
      cxxopts::value<std::string>()->default_value("timestamp"));
  Parsed p = ParseOrExit(opts, argc, argv, cmd, {"interactions", "train", "test"});
  if (p.exit_code >= 0) return p.exit_code;
  SplitOptions so;
  so.test_fraction = p.result["test-fraction"].as<double>();
  if (!(so.test_fraction > 0 && so.test_fraction < 1)) {
    return UsageError(cmd, "--test-fraction must be in (0, 1)");
  }
  std::string header;
  Result<std::vector<Event>> events = ReadEvents(
      p.result["interactions"].as<std::string>(), p.result["user-column"].as<std::string>(),
      p.result["item-column"].as<std::string>(), p.result["timestamp-column"].as<std::string>(),
      &header);
  if (!events.ok()) return Fail(cmd, events.status());
  Result<SplitResult> split = TemporalSplit(*events, so);
  if (!split.ok()) return Fail(cmd, split.status());
  Status st = WriteRows(p.result["train"].as<std::string>(), header, *events, split->train);
  if (st.ok()) st = WriteRows(p.result["test"].as<std::string>(), header, *events, split->test);
  if (!st.ok()) return Fail(cmd, st);
  std::fprintf(stderr,
               "vitrine split: %zu rows, %lld users (%lld with test rows) -> train %zu rows, "
               "test %zu rows\n",
               events->size(), static_cast<long long>(split->users),
               static_cast<long long>(split->users_with_test), split->train.size(),
               split->test.size());
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND("split", "Temporal per-user train/test split of an interactions CSV", RunSplit);

}  // namespace vitrine::cli
