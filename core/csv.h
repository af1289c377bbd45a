// CsvReader: a streaming RFC 4180 reader with line-accurate errors, and a
// small writer helper.
//
// Accepted input:
//   - a header row (the first non-blank record) naming the columns;
//   - fields separated by `delimiter`; a field may be quoted with '"', in
//     which case it may contain the delimiter, newlines and '""' (one quote);
//   - LF or CRLF line ends (a bare CR is data); a UTF-8 BOM at the start is
//     dropped; blank lines (anywhere, including a trailing one) are ignored;
//   - gzip-compressed files, detected by their magic bytes;
//   - UTF-8 text only (RFC 3629, FindInvalidUtf8 of core/json_util.h): every
//     record, the header included, is checked as it is read, so no reader
//     built on CsvReader lets bytes through that JSON output would reject.
// Memory is bounded: the file is read in blocks of `block_size` bytes and a
// single record may grow the buffer up to `max_record_bytes`.
//
// Errors read "<file>:<line>: <what was expected>, found <what>", where <line>
// is the 1-based physical line on which the record starts (newlines inside
// quoted fields advance the count):
//   items.csv:17: expected 3 fields, found 2
//   items.csv:9: unterminated quoted field 2, expected a closing '"', found end of file
//   items.csv:4:2: invalid UTF-8 (byte 0xe9 at offset 3 of field 2), expected
//     UTF-8 text; convert the file first, e.g. iconv -f latin1 -t utf-8
// (an encoding error names the physical line and the 1-based field).
// Under `skip_bad_lines` such a record is counted and skipped instead: a
// record with the wrong number of fields is skipped whole; after a quoting
// error reading resumes on the physical line after the one the record
// started on.
//
// Usage:
//   VITRINE_ASSIGN_OR_RETURN(auto csv, CsvReader::Open(path));
//   VITRINE_ASSIGN_OR_RETURN(int price, csv->ColumnIndex("price"));
//   while (csv->Next()) Use(csv->field(price));
//   VITRINE_RETURN_IF_ERROR(csv->status());
//
// A CsvReader is not thread-safe; distinct readers are independent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

struct CsvOptions {
  char delimiter = ',';
  // Count and skip malformed records instead of failing on the first one.
  bool skip_bad_lines = false;
  // Bytes requested from the file per read.
  size_t block_size = 1 << 20;
  // Largest record accepted; a longer one is an error (usually a quote that
  // is never closed).
  size_t max_record_bytes = 64 << 20;
  // How many bad line numbers bad_line_numbers() keeps.
  int max_reported_bad_lines = 5;
};

class CsvReader {
 public:
  // Opens `path` (plain or gzip) and reads its header. Errors name the file:
  // missing file, empty file, a malformed header, a duplicate column name
  // (found by hashing: a 100k-column header costs milliseconds).
  static Result<std::unique_ptr<CsvReader>> Open(const std::filesystem::path& path,
                                                 const CsvOptions& opts = {});
  // Reads CSV held in memory; `name` stands for the file name in messages.
  static Result<std::unique_ptr<CsvReader>> FromString(std::string name, std::string data,
                                                       const CsvOptions& opts = {});
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // File name as given, for messages.
  const std::string& name() const { return name_; }
  const std::vector<std::string>& header() const { return header_; }
  int num_columns() const { return static_cast<int>(header_.size()); }

  // Index of the column called `name`, or -1.
  int FindColumn(std::string_view name) const;
  // Index of the column called `name`, or InvalidArgument:
  //   "items.csv: missing column 'price' (columns: item_id, title, year)"
  Result<int> ColumnIndex(std::string_view name) const;

  // Advances to the next record. Returns false at the end of the file or on
  // an error; status() tells which. Views returned by field()/row() stay
  // valid until the next call to Next().
  bool Next();
  // OK unless Next() stopped on an error (a bad record or an I/O failure).
  const Status& status() const { return status_; }

  // The current record: exactly num_columns() fields, quotes removed.
  const std::vector<std::string_view>& row() const { return row_; }
  std::string_view field(int i) const { return row_[static_cast<size_t>(i)]; }
  // 1-based physical line on which the current record starts.
  int64_t line() const { return line_; }
  // "<file>:<line>" of the current record, the prefix for value errors.
  std::string Where() const;
  // Records returned by Next() so far (header and skipped lines excluded).
  int64_t records() const { return records_; }
  // How far through the file the reader is, for progress lines: the bytes
  // of the file consumed so far (compressed bytes for gzip, read ahead by
  // up to a buffer) and the file's size (0 for a reader over memory).
  int64_t bytes_consumed() const;
  int64_t file_bytes() const { return file_bytes_; }

  // Bad records skipped under skip_bad_lines, the first few line numbers and
  // the first message. Callers that reject a record for their own reasons
  // (an unparseable value) call SkipBadLine(message) to count it alike.
  int64_t bad_lines() const { return bad_lines_; }
  const std::vector<int64_t>& bad_line_numbers() const { return bad_line_numbers_; }
  const std::string& first_bad_line_error() const { return first_bad_line_error_; }
  void SkipBadLine(std::string message);
  // "items.csv: skipped 3 bad lines (lines 4, 9, 12; first: items.csv:4:
  // expected 3 fields, found 2)", or "" when none were skipped.
  std::string BadLinesSummary() const;

 private:
  struct Source;
  CsvReader(std::string name, std::unique_ptr<Source> source, const CsvOptions& opts);
  enum class Parse { kRecord, kNeedMore, kBlank, kBad };
  Status ReadHeader();
  Parse ParseRecord(size_t* consumed, int64_t* newlines, std::string* error);
  bool Refill();  // false on EOF or error (status_ set)
  bool Fail(Status s);
  std::string Utf8Error(std::string_view record, size_t bad) const;

  std::string name_;
  std::unique_ptr<Source> source_;
  CsvOptions opts_;
  std::vector<std::string> header_;
  std::vector<std::string_view> row_;
  std::vector<int> escaped_;  // fields of the record being parsed holding '""'
  std::string buf_;
  size_t pos_ = 0;  // next unparsed byte in buf_
  size_t end_ = 0;  // bytes of buf_ that hold data
  bool eof_ = false;
  int64_t line_ = 0;       // start line of the current record
  int64_t next_line_ = 1;  // line at buf_[pos_]
  int64_t records_ = 0;
  int64_t file_bytes_ = 0;
  int64_t bad_lines_ = 0;
  std::vector<int64_t> bad_line_numbers_;
  std::string first_bad_line_error_;
  Status status_;
};

// Value helpers shared by the readers built on CsvReader.
// `s` without leading and trailing spaces and tabs.
std::string_view TrimBlanks(std::string_view s);
// Parses all of TrimBlanks(s) as a finite double (decimal or exponent form,
// optional leading '+' or '-'); false for "", "abc", "1.5x", "nan", "inf".
bool ParseFiniteDouble(std::string_view s, double* out);

// Appends `fields`, comma-separated, and a '\n' to `out`. A field is quoted
// only if it contains ',', '"', CR or LF (inner quotes doubled). A row made of
// one empty field is written as "" so that it does not read back as a blank
// (ignored) line.
void AppendCsvRow(std::string& out, const std::vector<std::string_view>& fields);

}  // namespace vitrine
