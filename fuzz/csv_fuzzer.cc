// Fuzzes the CSV layer: CsvReader (core/csv.h), Catalog::ReadCsv with schema
// inference (core/catalog.h) and Interactions::ReadCsv (core/interactions.h).
//
// The input is the CSV file itself. Per input:
//   1. CsvReader::FromString with the whole input in one block, then with a
//      tiny block (1 to 7 bytes, from the input size), which makes the
//      buffer grow and refill at every cut point; both must return the same
//      rows, lines, record count and status (the reader promises the block
//      size changes nothing but speed and memory). Strict, then with
//      skip_bad_lines.
//   2. Catalog::ReadCsv from a file, strict or with skip_bad_lines (one bit of
//      a hash of the input picks); if it reads, a schema naming every column
//      with the inferred type must read the same catalog (inference and an
//      explicit schema must agree), and a near-miss type warning must turn
//      into an error under CatalogReadOptions::strict.
//   3. Interactions::ReadCsv from the same file against that catalog's ids (or
//      the tiny catalog's), strict or skipping (another bit), with
//      rows_per_run 3 so that the run merge runs on every input.
// Why one mode per input for 2 and 3: every file reader allocates and zeroes
// a 1 MiB block, which under ASan is a fresh mmap and 256 page faults (about
// 10 ms on the 2-core machine); one mode each keeps the harness near 50
// inputs/s instead of 12. Both modes still run, on different inputs.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/catalog.h"
#include "core/csv.h"
#include "core/interactions.h"
#include "core/progress.h"
#include "fuzz/fuzz_util.h"

namespace {

using namespace vitrine;

struct Rows {
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> lines;
  std::string status;
  int64_t bad_lines = 0;
  std::vector<std::string> header;
};

Rows ReadAll(const std::string& data, CsvOptions opts) {
  Rows r;
  auto reader = CsvReader::FromString("fuzz.csv", data, opts);
  if (!reader.ok()) {
    r.status = reader.status().ToString();
    return r;
  }
  CsvReader& csv = **reader;
  r.header = csv.header();
  while (csv.Next()) {
    if (csv.row().size() != csv.header().size()) {
      vitrine::fuzz::Fail("a record has " + std::to_string(csv.row().size()) + " fields, header " +
                          std::to_string(csv.header().size()));
    }
    r.rows.emplace_back(csv.row().begin(), csv.row().end());
    r.lines.push_back(csv.line());
  }
  r.status = csv.status().ToString();
  r.bad_lines = csv.bad_lines();
  if (csv.records() != static_cast<int64_t>(r.rows.size())) {
    vitrine::fuzz::Fail("records() " + std::to_string(csv.records()) + " != rows returned " +
                        std::to_string(r.rows.size()));
  }
  return r;
}

void CompareReaders(const std::string& data, bool skip) {
  CsvOptions big;
  big.skip_bad_lines = skip;
  big.block_size = data.size() + 1;  // the whole input in one read, without a 1 MiB buffer
  CsvOptions tiny = big;
  tiny.block_size = 1 + data.size() % 7;
  // Large enough for every record the fuzzer makes (max_len is 4096).
  tiny.max_record_bytes = 1 << 16;
  const Rows a = ReadAll(data, big);
  const Rows b = ReadAll(data, tiny);
  if (a.rows != b.rows || a.lines != b.lines || a.header != b.header ||
      a.bad_lines != b.bad_lines) {
    vitrine::fuzz::Fail("block size " + std::to_string(tiny.block_size) + " changed the records (" +
                        std::to_string(a.rows.size()) + " vs " + std::to_string(b.rows.size()) +
                        " rows, bad lines " + std::to_string(a.bad_lines) + " vs " +
                        std::to_string(b.bad_lines) + ")");
  }
  // Messages may differ only in nothing: both name the same line and cause.
  if (a.status != b.status) {
    vitrine::fuzz::Fail("block size changed the status: '" + a.status + "' vs '" + b.status + "'");
  }
}

bool SameCatalog(const Catalog& a, const Catalog& b) {
  if (a.size() != b.size() || a.columns.size() != b.columns.size()) return false;
  for (size_t c = 0; c < a.columns.size(); ++c) {
    const Column& x = a.columns[c];
    const Column& y = b.columns[c];
    if (x.name != y.name || x.type != y.type || x.dictionary != y.dictionary ||
        x.codes != y.codes || x.bools != y.bools || x.list_offsets != y.list_offsets ||
        x.list_codes != y.list_codes || x.texts != y.texts ||
        x.numbers.size() != y.numbers.size()) {
      return false;
    }
    for (size_t i = 0; i < x.numbers.size(); ++i) {
      const bool nx = x.numbers[i] != x.numbers[i], ny = y.numbers[i] != y.numbers[i];
      if (nx != ny || (!nx && x.numbers[i] != y.numbers[i])) return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vitrine::SetQuiet(true);  // near-miss warnings would flood the log
  const std::string text(reinterpret_cast<const char*>(data), size);
  CompareReaders(text, /*skip=*/false);
  CompareReaders(text, /*skip=*/true);

  const auto path = vitrine::fuzz::ScratchDir("csv") / "input.csv";
  vitrine::fuzz::WriteFileOrDie(path, text);

  uint32_t hash = 2166136261u;  // FNV-1a picks the modes of the file readers
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;

  std::optional<Catalog> catalog;
  for (bool skip : {(hash & 1) != 0}) {
    CatalogReadOptions o;
    o.skip_bad_lines = skip;
    auto c = Catalog::ReadCsv(path, o);
    if (!c.ok()) continue;
    for (const Column& col : c->columns) {
      const size_t n = static_cast<size_t>(c->size());
      const bool sized = col.codes.size() == n || col.numbers.size() == n ||
                         col.bools.size() == n || col.texts.size() == n ||
                         col.list_offsets.size() == n + 1;
      if (!sized) vitrine::fuzz::Fail("column '" + col.name + "' does not have one value per item");
      for (int32_t i = 0; i < c->size(); ++i) (void)c->ValueString(col, i);
    }
    // A near-miss type is a warning, and the same file under `strict` an
    // error that names it (checked only then: a third read costs ~10 ms).
    if (!c->warnings.empty()) {
      CatalogReadOptions strict = o;
      strict.strict = true;
      auto refused = Catalog::ReadCsv(path, strict);
      if (refused.ok() || refused.status().message().find("would be") == std::string::npos) {
        vitrine::fuzz::Fail("a near-miss warning, but strict did not refuse it: " +
                            refused.status().ToString());
      }
    }
    // An explicit schema equal to the inferred types must read the same.
    CatalogReadOptions typed = o;
    for (const Column& col : c->columns) typed.schema.overrides.emplace_back(col.name, col.type);
    auto again = Catalog::ReadCsv(path, typed);
    if (!again.ok()) {
      vitrine::fuzz::Fail("the inferred schema does not read its own file: " +
                          again.status().ToString());
    }
    if (!SameCatalog(*c, *again)) vitrine::fuzz::Fail("the inferred schema reads differently");
    if (!catalog) catalog = std::move(*c);
  }

  const IdMap& items = catalog ? catalog->ids : vitrine::fuzz::TinyCatalog().ids;
  for (bool skip : {(hash & 2) != 0}) {
    InteractionsReadOptions o;
    o.skip_bad_lines = skip;
    o.rows_per_run = 3;
    auto inter = Interactions::ReadCsv(path, items, o);
    if (!inter.ok()) continue;
    const CsrMatrix& m = inter->matrix;
    if (m.rows != inter->users.size() || m.cols != items.size() ||
        m.indptr.size() != static_cast<size_t>(m.rows) + 1 ||
        inter->timestamps.size() != m.indices.size() || m.values.size() != m.indices.size()) {
      vitrine::fuzz::Fail("interactions: CSR shape does not match its ids");
    }
    for (int64_t r = 0; r < m.rows; ++r) {
      for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; ++k) {
        if (m.indices[k] < 0 || m.indices[k] >= m.cols || !(m.values[k] > 0) ||
            (k > m.indptr[r] && m.indices[k] <= m.indices[k - 1])) {
          vitrine::fuzz::Fail("interactions: row " + std::to_string(r) +
                              " is not sorted, unique, in range and positive");
        }
      }
    }
  }
  return 0;
}
