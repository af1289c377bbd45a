#include "core/csv.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_map>

#include "core/json_util.h"  // FindInvalidUtf8, Clip
#include "core/value_parse.h"

namespace vitrine {
namespace fs = std::filesystem;

// Where the bytes come from: zlib's gzFile reads plain files unchanged and
// inflates gzip ones, so one code path serves both.
struct CsvReader::Source {
  gzFile gz = nullptr;
  std::string mem;
  size_t mem_pos = 0;

  ~Source() {
    if (gz != nullptr) gzclose(gz);
  }

  // Bytes read (0 at end of file) or -1 with `error` set.
  int64_t Read(char* dst, size_t n, std::string* error) {
    if (gz == nullptr) {
      const size_t k = std::min(n, mem.size() - mem_pos);
      std::memcpy(dst, mem.data() + mem_pos, k);
      mem_pos += k;
      return static_cast<int64_t>(k);
    }
    const auto want = static_cast<unsigned>(std::min<size_t>(n, 1u << 30));
    const int got = gzread(gz, dst, want);
    int zerr = Z_OK;
    if (got == 0) gzerror(gz, &zerr);  // a truncated stream reads as a clean EOF
    if (got < 0 || zerr != Z_OK) {
      int errnum = 0;
      const char* msg = gzerror(gz, &errnum);
      *error = errnum == Z_ERRNO ? std::strerror(errno) : msg;
      return -1;
    }
    return got;
  }
};

CsvReader::CsvReader(std::string name, std::unique_ptr<Source> source, const CsvOptions& opts)
    : name_(std::move(name)), source_(std::move(source)), opts_(opts) {
  opts_.block_size = std::max<size_t>(opts_.block_size, 1);
  opts_.max_record_bytes = std::max(opts_.max_record_bytes, opts_.block_size);
  buf_.resize(opts_.block_size);
}

CsvReader::~CsvReader() = default;

int64_t CsvReader::bytes_consumed() const {
  if (source_->gz == nullptr) return static_cast<int64_t>(source_->mem_pos);
  return static_cast<int64_t>(gzoffset(source_->gz));
}

Result<std::unique_ptr<CsvReader>> CsvReader::Open(const fs::path& path, const CsvOptions& opts) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return Status::InvalidArgument(path.string() + ": is a directory, expected a CSV file");
  }
  auto source = std::make_unique<Source>();
  source->gz = gzopen(path.c_str(), "rb");
  if (source->gz == nullptr) {
    return Status::NotFound(path.string() + ": cannot open: " + std::strerror(errno));
  }
  gzbuffer(source->gz, 1 << 17);
  std::unique_ptr<CsvReader> r(new CsvReader(path.string(), std::move(source), opts));
  const auto size = fs::file_size(path, ec);
  r->file_bytes_ = ec ? 0 : static_cast<int64_t>(size);
  VITRINE_RETURN_IF_ERROR(r->ReadHeader());
  return r;
}

Result<std::unique_ptr<CsvReader>> CsvReader::FromString(std::string name, std::string data,
                                                         const CsvOptions& opts) {
  auto source = std::make_unique<Source>();
  source->mem = std::move(data);
  std::unique_ptr<CsvReader> r(new CsvReader(std::move(name), std::move(source), opts));
  VITRINE_RETURN_IF_ERROR(r->ReadHeader());
  return r;
}

bool CsvReader::Fail(Status s) {
  status_ = std::move(s);
  row_.clear();
  return false;
}

Status CsvReader::ReadHeader() {
  // The BOM check needs three bytes; tiny block sizes may deliver fewer.
  while (end_ < 3 && !eof_) VITRINE_RETURN_IF_ERROR(Refill() ? Status::OK() : status_);
  if (end_ >= 3 && std::memcmp(buf_.data(), "\xEF\xBB\xBF", 3) == 0) pos_ = 3;

  // The header may not be skipped, or the next line would become the header.
  const bool skip = opts_.skip_bad_lines;
  opts_.skip_bad_lines = false;
  header_.clear();
  const bool got = Next();
  opts_.skip_bad_lines = skip;
  if (!got) {
    if (!status_.ok()) return status_;
    return Status::InvalidArgument(name_ + ": empty file, expected a header row");
  }
  header_.assign(row_.begin(), row_.end());
  records_ = 0;
  // Hashed, not pairwise: a 100k-column header must not cost 5e9 compares.
  // Reports the first column that repeats an earlier name, and that name's
  // first column.
  std::unordered_map<std::string_view, size_t> first;
  first.reserve(header_.size());
  for (size_t i = 0; i < header_.size(); ++i) {
    const auto [it, fresh] = first.emplace(header_[i], i);
    if (!fresh) {
      return Status::InvalidArgument(Where() + ": duplicate column '" + Clip(header_[i]) +
                                     "' (columns " + std::to_string(it->second + 1) + " and " +
                                     std::to_string(i + 1) + ")");
    }
  }
  return Status::OK();
}

bool CsvReader::Refill() {
  if (pos_ == 0 && end_ == buf_.size()) {
    // One record fills the whole buffer: grow it, up to the limit.
    if (buf_.size() >= opts_.max_record_bytes) {
      return Fail(Status::InvalidArgument(name_ + ":" + std::to_string(next_line_) +
                                          ": record longer than " +
                                          std::to_string(opts_.max_record_bytes) +
                                          " bytes, expected a closing '\"' or end of line sooner"));
    }
    buf_.resize(std::min(buf_.size() * 2, opts_.max_record_bytes));
  } else if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  std::string error;
  // Read at most a block even into a grown buffer: memory stays bounded by
  // the longest record, and tiny blocks in tests exercise every cut point.
  const size_t room = std::min(buf_.size() - end_, opts_.block_size);
  const int64_t got = source_->Read(buf_.data() + end_, room, &error);
  if (got < 0) return Fail(Status::IOError(name_ + ": read failed: " + error));
  if (got == 0) eof_ = true;
  end_ += static_cast<size_t>(got);
  return true;
}

// Parses one record starting at buf_[pos_] without modifying the buffer, so
// that a record cut by the end of the buffer can be parsed again after a
// refill. On kRecord row_ holds the fields (quoted ones still escaped) and
// `escaped_` the fields that need '""' collapsed.
CsvReader::Parse CsvReader::ParseRecord(size_t* consumed, int64_t* newlines, std::string* error) {
  const char* const begin = buf_.data() + pos_;
  const char* const end = buf_.data() + end_;
  const char d = opts_.delimiter;
  row_.clear();
  escaped_.clear();
  int64_t nl = 0;
  const char* p = begin;
  auto done = [&](const char* next) {
    *consumed = static_cast<size_t>(next - begin);
    *newlines = nl;
    return Parse::kRecord;
  };
  auto found = [&](const char* q) {
    if (q == end) return std::string("end of file");
    if (*q == '\n' || *q == '\r') return std::string("end of line");
    std::string s = "'";  // appended, not concatenated: dodges a GCC 12 -Wrestrict false alarm
    s += *q;
    s += '\'';
    return s;
  };

  if (*p == '\n' || *p == '\r') {
    const bool crlf = *p == '\r';
    if (crlf && p + 1 == end && !eof_) return Parse::kNeedMore;
    if (!crlf || p + 1 == end || p[1] == '\n') {
      *consumed = crlf && p + 1 < end ? 2 : 1;
      *newlines = crlf && p + 1 == end ? 0 : 1;
      return Parse::kBlank;
    }
  }

  while (true) {
    const int field = static_cast<int>(row_.size()) + 1;
    if (p < end && *p == '"') {
      const char* start = ++p;
      bool esc = false;
      while (true) {
        const auto* q = static_cast<const char*>(std::memchr(p, '"', end - p));
        if (q == nullptr) {
          if (!eof_) return Parse::kNeedMore;
          *error = "unterminated quoted field " + std::to_string(field) +
                   ", expected a closing '\"', found end of file";
          return Parse::kBad;
        }
        if (q + 1 == end && !eof_) return Parse::kNeedMore;
        nl += std::count(p, q, '\n');
        if (q + 1 < end && q[1] == '"') {
          esc = true;
          p = q + 2;
          continue;
        }
        row_.emplace_back(start, static_cast<size_t>(q - start));
        if (esc) escaped_.push_back(field - 1);
        p = q + 1;
        break;
      }
      if (p == end) {
        if (!eof_) return Parse::kNeedMore;
        return done(p);
      }
      if (*p == d) {
        ++p;
        continue;
      }
      if (*p == '\n') return ++nl, done(p + 1);
      if (*p == '\r') {
        if (p + 1 == end) {
          if (!eof_) return Parse::kNeedMore;
          return done(p + 1);
        }
        if (p[1] == '\n') return ++nl, done(p + 2);
      }
      *error = std::string("expected '") + d +
               "' or end of line after the closing quote of field " + std::to_string(field) +
               ", found " + found(p);
      return Parse::kBad;
    }

    const char* start = p;
    while (p < end && *p != d && *p != '\n' && *p != '"') ++p;
    if (p == end) {
      if (!eof_) return Parse::kNeedMore;
      const char* fe = (p > start && p[-1] == '\r') ? p - 1 : p;
      row_.emplace_back(start, static_cast<size_t>(fe - start));
      return done(p);
    }
    if (*p == '"') {
      *error = "stray '\"' in unquoted field " + std::to_string(field) +
               ", expected quotes only around a whole field, found '" +
               std::string(start, std::min<size_t>(static_cast<size_t>(p - start) + 1, 40)) + "'";
      return Parse::kBad;
    }
    if (*p == '\n') {
      const char* fe = (p > start && p[-1] == '\r') ? p - 1 : p;
      row_.emplace_back(start, static_cast<size_t>(fe - start));
      return ++nl, done(p + 1);
    }
    row_.emplace_back(start, static_cast<size_t>(p - start));
    ++p;
  }
}

bool CsvReader::Next() {
  if (!status_.ok()) return false;
  const bool in_header = header_.empty();
  while (true) {
    if (pos_ == end_) {
      if (eof_) {
        row_.clear();
        return false;
      }
      if (!Refill()) return false;
      continue;
    }
    size_t consumed = 0;
    int64_t newlines = 0;
    std::string error;
    const Parse r = ParseRecord(&consumed, &newlines, &error);
    if (r == Parse::kNeedMore) {
      if (!Refill()) return false;
      continue;
    }
    if (r == Parse::kBlank) {
      pos_ += consumed;
      next_line_ += newlines;
      continue;
    }
    line_ = next_line_;
    if (r == Parse::kBad) {
      std::string msg = Where() + ": " + error;
      if (!opts_.skip_bad_lines) return Fail(Status::InvalidArgument(std::move(msg)));
      // Resume on the next physical line: after a quoting error the record's
      // true extent is unknowable, and one bad quote must not eat the file.
      const auto* nlp =
          static_cast<const char*>(std::memchr(buf_.data() + pos_, '\n', end_ - pos_));
      if (nlp == nullptr && !eof_) {
        if (!Refill()) return false;
        continue;
      }
      pos_ = nlp != nullptr ? static_cast<size_t>(nlp - buf_.data()) + 1 : end_;
      next_line_ += 1;
      SkipBadLine(std::move(msg));
      continue;
    }
    const std::string_view record(buf_.data() + pos_, consumed);
    pos_ += consumed;
    next_line_ += newlines;
    // Text is checked once, here, so every reader built on CsvReader rejects
    // bytes that would later break JSON output or the server.
    if (const size_t bad = FindInvalidUtf8(record); bad != std::string_view::npos) {
      std::string msg = Utf8Error(record, bad);
      if (!opts_.skip_bad_lines || in_header) return Fail(Status::InvalidArgument(std::move(msg)));
      SkipBadLine(std::move(msg));
      continue;
    }
    if (!in_header && row_.size() != header_.size()) {
      std::string msg = Where() + ": expected " + std::to_string(header_.size()) +
                        " fields, found " + std::to_string(row_.size());
      if (!opts_.skip_bad_lines) return Fail(Status::InvalidArgument(std::move(msg)));
      SkipBadLine(std::move(msg));
      continue;
    }
    // Collapse '""' in place: the record is consumed, so its bytes are ours.
    for (int i : escaped_) {
      std::string_view& f = row_[static_cast<size_t>(i)];
      char* out = const_cast<char*>(f.data());
      size_t w = 0;
      for (size_t k = 0; k < f.size(); ++k) {
        out[w++] = f[k];
        if (f[k] == '"') ++k;  // skip the second quote of the pair
      }
      f = std::string_view(f.data(), w);
    }
    ++records_;
    return true;
  }
}

int CsvReader::FindColumn(std::string_view name) const {
  for (size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

Result<int> CsvReader::ColumnIndex(std::string_view name) const {
  const int i = FindColumn(name);
  if (i >= 0) return i;
  std::string cols;
  for (const auto& h : header_) cols += (cols.empty() ? "" : ", ") + h;
  return Status::InvalidArgument(name_ + ": missing column '" + std::string(name) +
                                 "' (columns: " + cols + ")");
}

std::string CsvReader::Where() const { return name_ + ":" + std::to_string(line_); }

// "<file>:<line>:<field>: ..." for the byte at `bad` of the current record;
// the line counts the newlines of quoted fields before it.
std::string CsvReader::Utf8Error(std::string_view record, size_t bad) const {
  const char* p = record.data() + bad;
  // A bad byte is >= 0x80, never a delimiter, quote or newline, so some
  // field holds it; the fallback only guards against a parser change.
  size_t field = 0, offset = bad;
  for (size_t i = 0; i < row_.size(); ++i) {
    if (p >= row_[i].data() && p < row_[i].data() + row_[i].size()) {
      field = i;
      offset = static_cast<size_t>(p - row_[i].data());
      break;
    }
  }
  const int64_t line = line_ + std::count(record.data(), p, '\n');
  static const char* kHex = "0123456789abcdef";
  const auto byte = static_cast<unsigned char>(*p);
  return name_ + ":" + std::to_string(line) + ":" + std::to_string(field + 1) +
         ": invalid UTF-8 (byte 0x" + kHex[byte >> 4] + kHex[byte & 15] + " at offset " +
         std::to_string(offset) + " of field " + std::to_string(field + 1) +
         "), expected UTF-8 text; convert the file first, e.g. iconv -f latin1 -t utf-8";
}

void CsvReader::SkipBadLine(std::string message) {
  if (bad_lines_ == 0) first_bad_line_error_ = std::move(message);
  ++bad_lines_;
  if (static_cast<int>(bad_line_numbers_.size()) < opts_.max_reported_bad_lines) {
    bad_line_numbers_.push_back(line_);
  }
}

std::string CsvReader::BadLinesSummary() const {
  if (bad_lines_ == 0) return "";
  std::string s = name_ + ": skipped " + std::to_string(bad_lines_) + " bad line" +
                  (bad_lines_ == 1 ? "" : "s") + " (line" +
                  (bad_line_numbers_.size() == 1 ? " " : "s ");
  for (size_t i = 0; i < bad_line_numbers_.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(bad_line_numbers_[i]);
  }
  if (bad_lines_ > static_cast<int64_t>(bad_line_numbers_.size())) s += ", ...";
  return s + "; first: " + first_bad_line_error_ + ")";
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseFiniteDouble(std::string_view s, double* out) {
  const std::optional<double> v = ParseNumber(s);  // the spellings of core/value_parse.h
  if (!v) return false;
  *out = *v;
  return true;
}

namespace {
bool NeedsQuotes(std::string_view f) {
  return f.find_first_of(",\"\r\n") != std::string_view::npos;
}
void AppendEscaped(std::string& out, std::string_view f) {
  if (!NeedsQuotes(f)) {
    out.append(f);
    return;
  }
  out.push_back('"');
  for (char c : f) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}
}  // namespace

void AppendCsvRow(std::string& out, const std::vector<std::string_view>& fields) {
  if (fields.size() == 1 && fields[0].empty()) {
    out += "\"\"\n";
    return;
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendEscaped(out, fields[i]);
  }
  out.push_back('\n');
}

}  // namespace vitrine
