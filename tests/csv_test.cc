#include "core/csv.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/file_util.h"

namespace vitrine {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// The file's bytes as stored (ReadFile would inflate gzip).
std::string ReadFileRaw(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct Parsed {
  std::vector<std::string> header;
  Rows rows;
  std::vector<int64_t> lines;  // start line of each row
  Status status;
  int64_t bad_lines = 0;
  std::vector<int64_t> bad_line_numbers;
  std::string summary;
};

Parsed ParseString(const std::string& data, CsvOptions opts = {}) {
  Parsed p;
  auto r = CsvReader::FromString("t.csv", data, opts);
  if (!r.ok()) {
    p.status = r.status();
    return p;
  }
  CsvReader& csv = **r;
  p.header = csv.header();
  while (csv.Next()) {
    p.rows.emplace_back(csv.row().begin(), csv.row().end());
    p.lines.push_back(csv.line());
  }
  p.status = csv.status();
  p.bad_lines = csv.bad_lines();
  p.bad_line_numbers = csv.bad_line_numbers();
  p.summary = csv.BadLinesSummary();
  return p;
}

// Parses `data` with many block sizes (every record cut at every offset for
// the small ones) and checks they all agree before returning one result.
Parsed ParseAllBlockSizes(const std::string& data, CsvOptions opts = {}) {
  opts.block_size = 1 << 20;
  Parsed ref = ParseString(data, opts);
  for (size_t bs : {1, 2, 3, 5, 7, 16, 61}) {
    opts.block_size = bs;
    Parsed p = ParseString(data, opts);
    EXPECT_EQ(p.header, ref.header) << "block size " << bs;
    EXPECT_EQ(p.rows, ref.rows) << "block size " << bs;
    EXPECT_EQ(p.lines, ref.lines) << "block size " << bs;
    EXPECT_EQ(p.status.ToString(), ref.status.ToString()) << "block size " << bs;
    EXPECT_EQ(p.bad_line_numbers, ref.bad_line_numbers) << "block size " << bs;
  }
  return ref;
}

TEST(CsvReader, PlainRowsAndLineNumbers) {
  Parsed p = ParseAllBlockSizes("id,name,price\n1,shoe,9.5\n2,hat,3\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.header, (std::vector<std::string>{"id", "name", "price"}));
  EXPECT_EQ(p.rows, (Rows{{"1", "shoe", "9.5"}, {"2", "hat", "3"}}));
  EXPECT_EQ(p.lines, (std::vector<int64_t>{2, 3}));
}

TEST(CsvReader, QuotedFieldsWithCommasQuotesAndNewlines) {
  Parsed p = ParseAllBlockSizes(
      "a,b,c\n"
      "\"x,y\",\"he said \"\"hi\"\"\",\"\"\n"
      "\"multi\nline\",\"\"\"\",plain\n"
      ",,\n");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.rows,
            (Rows{{"x,y", "he said \"hi\"", ""}, {"multi\nline", "\"", "plain"}, {"", "", ""}}));
  EXPECT_EQ(p.lines, (std::vector<int64_t>{2, 3, 5}));
}

TEST(CsvReader, ErrorLineCountsEmbeddedNewlines) {
  // Record on line 2 spans lines 2-3, the one on line 4 spans 4-6 (a CRLF
  // inside quotes counts once); the bad record starts on physical line 7.
  const std::string data =
      "id,text,n\n"
      "1,\"multi\nline\",5\n"
      "2,\"x\r\ny\nz\",6\n"
      "3,bad\n"
      "4,ok,7\n";
  Parsed p = ParseAllBlockSizes(data);
  EXPECT_EQ(p.status.ToString(), "Invalid argument: t.csv:7: expected 3 fields, found 2");
  EXPECT_EQ(p.rows, (Rows{{"1", "multi\nline", "5"}, {"2", "x\r\ny\nz", "6"}}));
  EXPECT_EQ(p.lines, (std::vector<int64_t>{2, 4}));

  CsvOptions skip;
  skip.skip_bad_lines = true;
  Parsed s = ParseAllBlockSizes(data, skip);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_EQ(s.rows.size(), 3u);
  EXPECT_EQ(s.lines, (std::vector<int64_t>{2, 4, 8}));
  EXPECT_EQ(s.bad_lines, 1);
  EXPECT_EQ(s.bad_line_numbers, (std::vector<int64_t>{7}));
  EXPECT_EQ(s.summary,
            "t.csv: skipped 1 bad line (line 7; first: t.csv:7: expected 3 fields, found 2)");
}

TEST(CsvReader, CrlfBomBlankAndTrailingLines) {
  Parsed p = ParseAllBlockSizes("\xEF\xBB\xBFid,v\r\n1,a\r\n\r\n2,\"b\"\r\n\n\n3,c\r");
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.header, (std::vector<std::string>{"id", "v"}));
  EXPECT_EQ(p.rows, (Rows{{"1", "a"}, {"2", "b"}, {"3", "c"}}));
  EXPECT_EQ(p.lines, (std::vector<int64_t>{2, 4, 7}));

  Parsed q = ParseAllBlockSizes("id,v\r\n1,a\r\n2\r\n");
  EXPECT_EQ(q.status.ToString(), "Invalid argument: t.csv:3: expected 2 fields, found 1");

  Parsed nofinal = ParseAllBlockSizes("id,v\n1,a");
  EXPECT_EQ(nofinal.rows, (Rows{{"1", "a"}}));
  Parsed trailing_empty = ParseAllBlockSizes("id,v\n1,");
  EXPECT_EQ(trailing_empty.rows, (Rows{{"1", ""}}));
  Parsed bare_cr = ParseAllBlockSizes("id,v\n1,a\rb\n");
  EXPECT_EQ(bare_cr.rows, (Rows{{"1", "a\rb"}}));
}

TEST(CsvReader, UnterminatedQuoteAtEof) {
  const std::string data = "a,b\n1,2\n3,\"oops\n4,5\n";
  Parsed p = ParseAllBlockSizes(data);
  EXPECT_EQ(p.status.ToString(),
            "Invalid argument: t.csv:3: unterminated quoted field 2, expected a closing '\"', "
            "found end of file");
  EXPECT_EQ(p.rows, (Rows{{"1", "2"}}));

  // Skipping resumes on the physical line after the bad record's first line.
  CsvOptions skip;
  skip.skip_bad_lines = true;
  Parsed s = ParseAllBlockSizes(data, skip);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_EQ(s.rows, (Rows{{"1", "2"}, {"4", "5"}}));
  EXPECT_EQ(s.lines, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(s.bad_line_numbers, (std::vector<int64_t>{3}));
}

TEST(CsvReader, StrayAndMisplacedQuotes) {
  Parsed stray = ParseAllBlockSizes("a,b\n1,2\n3,ab\"c\n");
  EXPECT_EQ(stray.status.ToString(),
            "Invalid argument: t.csv:3: stray '\"' in unquoted field 2, expected quotes only "
            "around a whole field, found 'ab\"'");
  Parsed after = ParseAllBlockSizes("a,b\n\"x\"y,2\n");
  EXPECT_EQ(after.status.ToString(),
            "Invalid argument: t.csv:2: expected ',' or end of line after the closing quote of "
            "field 1, found 'y'");
}

TEST(CsvReader, SkipBadLinesCountsAndReportsFirstFew) {
  std::string data = "a,b\n";
  std::vector<int64_t> bad;
  Rows good;
  for (int i = 0; i < 20; ++i) {
    const int line = i + 2;
    if (i % 3 == 0) {
      data += i % 2 ? "x\n" : "1,\"bad\"x\n";
      bad.push_back(line);
    } else {
      data += std::to_string(i) + ",v\n";
      good.push_back({std::to_string(i), "v"});
    }
  }
  CsvOptions skip;
  skip.skip_bad_lines = true;
  skip.max_reported_bad_lines = 3;
  Parsed s = ParseAllBlockSizes(data, skip);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_EQ(s.rows, good);
  EXPECT_EQ(s.bad_lines, static_cast<int64_t>(bad.size()));
  EXPECT_EQ(s.bad_line_numbers, (std::vector<int64_t>{bad[0], bad[1], bad[2]}));
  EXPECT_EQ(s.summary.rfind("t.csv: skipped 7 bad lines (lines 2, 5, 8, ...; first: t.csv:2: ", 0),
            0u)
      << s.summary;
}

TEST(CsvReader, HeaderErrors) {
  EXPECT_EQ(ParseString("").status.ToString(),
            "Invalid argument: t.csv: empty file, expected a header row");
  EXPECT_EQ(ParseString("\n\r\n").status.ToString(),
            "Invalid argument: t.csv: empty file, expected a header row");
  EXPECT_EQ(ParseString("a,b,a\n").status.ToString(),
            "Invalid argument: t.csv:1: duplicate column 'a' (columns 1 and 3)");
  CsvOptions skip;
  skip.skip_bad_lines = true;  // never skips the header
  EXPECT_FALSE(ParseString("a,\"b\n", skip).status.ok());

  Parsed only = ParseString("a,b\n");
  EXPECT_TRUE(only.status.ok());
  EXPECT_TRUE(only.rows.empty());

  auto r = CsvReader::FromString("items.csv", "item_id,title,year\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->FindColumn("year"), 2);
  EXPECT_EQ((*r)->FindColumn("price"), -1);
  auto col = (*r)->ColumnIndex("price");
  EXPECT_EQ(col.status().ToString(),
            "Invalid argument: items.csv: missing column 'price' (columns: item_id, title, year)");
}

// Issue 13: the duplicate-column check was pairwise (53 s for a 100k-column
// header). Whatever its cost, it must find the first repeated name and the
// column that name first appeared in, also at the far end of a wide header.
TEST(CsvReader, DuplicateColumnsInAWideHeader) {
  constexpr int kColumns = 100000;
  std::string header;
  for (int i = 0; i < kColumns; ++i) header += (i ? ",c" : "c") + std::to_string(i);
  Parsed wide = ParseString(header + "\n");
  EXPECT_TRUE(wide.status.ok()) << wide.status.ToString();
  EXPECT_EQ(wide.header.size(), static_cast<size_t>(kColumns));

  Parsed last = ParseString(header + ",c5\n");
  EXPECT_EQ(last.status.ToString(),
            "Invalid argument: t.csv:1: duplicate column 'c5' (columns 6 and 100001)");
  // Several repeats: the first repeating column is reported, with the first
  // column of its name.
  EXPECT_EQ(ParseString("x,y,x,y,x\n").status.ToString(),
            "Invalid argument: t.csv:1: duplicate column 'x' (columns 1 and 3)");
  EXPECT_EQ(ParseString("x,y,z,y,x\n").status.ToString(),
            "Invalid argument: t.csv:1: duplicate column 'y' (columns 2 and 4)");
  // Names differ only in case or spaces: not duplicates.
  EXPECT_TRUE(ParseString("a,A,a \n").status.ok());
}

// Issue 13: invalid UTF-8 was accepted at build and failed later in
// --format json. Now every record is checked as it is read, and the error
// names the physical line and the field.
TEST(CsvReader, InvalidUtf8IsAnErrorNamingLineAndField) {
  const std::string tail =
      "), expected UTF-8 text; convert the file first, e.g. iconv -f latin1 -t utf-8";
  EXPECT_EQ(ParseAllBlockSizes("a,b\n1,ok\n2,caf\xe9\n").status.ToString(),
            "Invalid argument: t.csv:3:2: invalid UTF-8 (byte 0xe9 at offset 3 of field 2" + tail);
  // Inside a quoted field that spans lines: the line of the bad byte.
  EXPECT_EQ(ParseAllBlockSizes("a,b\n1,\"x\ny\xff\"\n").status.ToString(),
            "Invalid argument: t.csv:3:2: invalid UTF-8 (byte 0xff at offset 3 of field 2" + tail);
  // The header too, and under skip_bad_lines as well (it is never skipped).
  CsvOptions skip;
  skip.skip_bad_lines = true;
  EXPECT_EQ(ParseString("a,\xc3\n", skip).status.ToString(),
            "Invalid argument: t.csv:1:2: invalid UTF-8 (byte 0xc3 at offset 0 of field 2" + tail);
  // Overlong forms, surrogates, truncated sequences, beyond U+10FFFF.
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80"}) {
    EXPECT_FALSE(ParseString(std::string("a\n") + bad + "\n").status.ok()) << bad;
  }
  // Under skip_bad_lines a bad record is counted and skipped like others.
  Parsed s = ParseAllBlockSizes("a,b\n1,x\n2,\x80\n3,y\n", skip);
  EXPECT_TRUE(s.status.ok());
  EXPECT_EQ(s.rows, (Rows{{"1", "x"}, {"3", "y"}}));
  EXPECT_EQ(s.bad_line_numbers, (std::vector<int64_t>{3}));
  // Well-formed multi-byte text of every length passes through unchanged.
  Parsed ok = ParseAllBlockSizes("name\ncaf\xc3\xa9\n\xe6\x97\xa5\xe6\x9c\xac\n\xf0\x9f\x98\x80\n");
  EXPECT_TRUE(ok.status.ok()) << ok.status.ToString();
  EXPECT_EQ(ok.rows, (Rows{{"caf\xc3\xa9"}, {"\xe6\x97\xa5\xe6\x9c\xac"}, {"\xf0\x9f\x98\x80"}}));
}

TEST(CsvReader, RecordLongerThanLimit) {
  CsvOptions opts;
  opts.block_size = 8;
  opts.max_record_bytes = 64;
  Parsed p = ParseString("a,b\n1,\"" + std::string(200, 'x') + "\n", opts);
  EXPECT_EQ(p.status.ToString(),
            "Invalid argument: t.csv:2: record longer than 64 bytes, expected a closing '\"' or "
            "end of line sooner");
}

TEST(CsvReader, OtherDelimiter) {
  CsvOptions opts;
  opts.delimiter = ';';
  Parsed p = ParseAllBlockSizes("a;b\n\"x;y\";2\n", opts);
  EXPECT_EQ(p.rows, (Rows{{"x;y", "2"}}));
}

TEST(CsvReader, FilesPlainAndGzip) {
  const std::filesystem::path dir = testing::TempDir();
  const std::string data = "id,v\n1,\"a\nb\"\n2,c\n";
  for (bool gz : {false, true}) {
    const auto path = dir / (gz ? "csv_test.csv.gz" : "csv_test.csv");
    ASSERT_TRUE(WriteFileAtomic(path, data, gz).ok());
    auto r = CsvReader::Open(path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    CsvReader& csv = **r;
    Rows rows;
    while (csv.Next()) rows.emplace_back(csv.row().begin(), csv.row().end());
    EXPECT_TRUE(csv.status().ok());
    EXPECT_EQ(rows, (Rows{{"1", "a\nb"}, {"2", "c"}}));
    EXPECT_EQ(csv.records(), 2);
    EXPECT_EQ(csv.name(), path.string());
    // Progress: at the end the whole file (compressed bytes for gzip) is consumed.
    EXPECT_EQ(csv.file_bytes(), static_cast<int64_t>(std::filesystem::file_size(path)));
    EXPECT_EQ(csv.bytes_consumed(), csv.file_bytes()) << (gz ? "gzip" : "plain");
  }
  auto missing = CsvReader::Open(dir / "no_such_file.csv");
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("no_such_file.csv"), std::string::npos);
}

TEST(CsvReader, TruncatedGzipIsAnError) {
  std::string data = "id,v\n";
  for (int i = 0; i < 20000; ++i) data += std::to_string(i) + ",value" + std::to_string(i) + "\n";
  const auto full = std::filesystem::path(testing::TempDir()) / "csv_test_full.csv.gz";
  ASSERT_TRUE(WriteFileAtomic(full, data, /*gzip=*/true).ok());
  auto bytes = ReadFileRaw(full);
  const auto cut = std::filesystem::path(testing::TempDir()) / "csv_test_cut.csv.gz";
  ASSERT_TRUE(WriteFileAtomic(cut, bytes.substr(0, bytes.size() / 2)).ok());
  auto r = CsvReader::Open(cut);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int64_t n = 0;
  while ((*r)->Next()) ++n;
  EXPECT_LT(n, 20000);
  EXPECT_EQ((*r)->status().code(), Status::Code::kIOError) << (*r)->status().ToString();
  EXPECT_NE((*r)->status().message().find(cut.string() + ": read failed: "), std::string::npos)
      << (*r)->status().ToString();
}

TEST(CsvWriter, QuotesOnlyWhenNeeded) {
  std::string out;
  AppendCsvRow(out, {"plain text", "a,b", "say \"hi\"", "two\nlines", "cr\r"});
  EXPECT_EQ(out, "plain text,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\r\"\n");
  out.clear();
  AppendCsvRow(out, {"a", "b,c", ""});
  AppendCsvRow(out, {""});
  EXPECT_EQ(out, "a,\"b,c\",\n\"\"\n");
}

// Random fields full of delimiters, quotes and line breaks survive a
// write/read round trip, and each record's reported start line matches the
// line counted in the written text.
TEST(CsvWriter, RandomRoundTrip) {
  std::mt19937 rng(42);
  const std::string alphabet = "ab ,\"\n\r;x";
  const int cols = 4;
  Rows rows;
  std::string text;
  std::vector<std::string_view> views;
  AppendCsvRow(text, {"c0", "c1", "c2", "c3"});
  std::vector<int64_t> lines;
  for (int i = 0; i < 300; ++i) {
    lines.push_back(1 + std::count(text.begin(), text.end(), '\n'));
    std::vector<std::string> row;
    for (int c = 0; c < cols; ++c) {
      std::string f;
      const int len = static_cast<int>(rng() % 6);
      for (int k = 0; k < len; ++k) f += alphabet[rng() % alphabet.size()];
      row.push_back(f);
    }
    views.assign(row.begin(), row.end());
    AppendCsvRow(text, views);
    rows.push_back(row);
  }
  Parsed p = ParseAllBlockSizes(text);
  ASSERT_TRUE(p.status.ok()) << p.status.ToString();
  EXPECT_EQ(p.rows, rows);
  EXPECT_EQ(p.lines, lines);

  // A bad record appended after all of them is reported on its own line.
  const int64_t bad_line = 1 + std::count(text.begin(), text.end(), '\n');
  Parsed bad = ParseAllBlockSizes(text + "only,three,fields\n");
  EXPECT_EQ(bad.status.ToString(),
            "Invalid argument: t.csv:" + std::to_string(bad_line) + ": expected 4 fields, found 3");
}

}  // namespace
}  // namespace vitrine
