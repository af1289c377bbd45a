#include "core/array_io.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

#include "core/file_util.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;
};

// The header's dictionary is scanned by hand: std::regex matches
// recursively, a stack frame per character, and a .npy whose 'descr' held
// 50 KB overflowed the stack (tests/fuzz_regressions_test.cc).
//
// Where the value of the key starting at `at` begins: after the key, blanks,
// ':' and blanks. npos if no ':' follows.
size_t ValueStart(std::string_view header, size_t at, std::string_view key) {
  auto blank = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  };
  size_t p = at + key.size();
  while (p < header.size() && blank(header[p])) ++p;
  if (p == header.size() || header[p] != ':') return std::string_view::npos;
  ++p;
  while (p < header.size() && blank(header[p])) ++p;
  return p;
}

// The text between `open` and the next `close` in the value of the first
// occurrence of `key` whose value has them (as the regex
// key\s*:\s*<open>([^<close>]*)<close> found it). Linear in the header.
bool DelimitedValue(std::string_view header, std::string_view key, char open, char close,
                    std::string* out) {
  for (size_t at = header.find(key); at != std::string_view::npos; at = header.find(key, at + 1)) {
    const size_t p = ValueStart(header, at, key);
    if (p == std::string_view::npos || p == header.size() || header[p] != open) continue;
    const size_t end = header.find(close, p + 1);
    if (end == std::string_view::npos) return false;  // no later occurrence can close either
    *out = std::string(header.substr(p + 1, end - p - 1));
    return true;
  }
  return false;
}

Result<NpyHeader> ParseNpyHeader(const fs::path& path, const std::string& bytes) {
  const std::string name = path.string();
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) {
    return Status::Corruption(name + ": not a .npy file (bad magic, expected \\x93NUMPY)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t pos = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    pos = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Status::Corruption(name + ": truncated .npy header");
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    }
    pos = 12;
  } else {
    return Status::Unsupported(name + ": .npy format version " + std::to_string(major) +
                               " (expected 1, 2 or 3)");
  }
  if (pos + header_len > bytes.size()) {
    return Status::Corruption(name + ": truncated .npy header (expected " +
                              std::to_string(header_len) + " header bytes)");
  }
  const std::string header = bytes.substr(pos, header_len);
  NpyHeader h;
  h.data_offset = pos + header_len;
  if (!DelimitedValue(header, "'descr'", '\'', '\'', &h.descr)) {
    return Status::Corruption(name + ": .npy header has no 'descr'");
  }
  bool have_order = false;
  const std::string_view order_key = "'fortran_order'";
  for (size_t at = header.find(order_key); at != std::string::npos && !have_order;
       at = header.find(order_key, at + 1)) {
    const size_t p = ValueStart(header, at, order_key);
    if (p == std::string::npos) continue;
    const std::string_view v = std::string_view(header).substr(p);
    if (v.starts_with("True") || v.starts_with("False")) {
      h.fortran = v.starts_with("True");
      have_order = true;
    }
  }
  if (!have_order) return Status::Corruption(name + ": .npy header has no 'fortran_order'");
  std::string dims;
  if (!DelimitedValue(header, "'shape'", '(', ')', &dims)) {
    return Status::Corruption(name + ": .npy header has no 'shape'");
  }
  // Only non-negative integers separated by commas: "-1" or a 30-digit number
  // must be rejected here, not misread or thrown from std::stoll.
  if (dims.find_first_not_of("0123456789, L") != std::string::npos) {
    return Status::Corruption(name + ": .npy header has a malformed 'shape' (" + dims + ")");
  }
  for (size_t p = dims.find_first_of("0123456789"); p != std::string::npos;
       p = dims.find_first_of("0123456789", p)) {
    const size_t q = std::min(dims.find_first_not_of("0123456789", p), dims.size());
    const std::string digits = dims.substr(p, q - p);
    p = q;
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc()) {
      return Status::Corruption(name + ": .npy header has an out-of-range dimension " + digits);
    }
    h.shape.push_back(v);
  }
  return h;
}

template <typename T>
Result<DenseMatrix<T>> ReadNpy(const fs::path& path, const char* want_descr,
                               const char* want_name) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  VITRINE_ASSIGN_OR_RETURN(NpyHeader h, ParseNpyHeader(path, bytes));
  const std::string name = path.string();
  std::string descr = h.descr;
  if (descr == std::string("|") + (want_descr + 1) && sizeof(T) == 1) descr = want_descr;
  if (descr != want_descr) {
    return Status::Unsupported(name + ": dtype '" + h.descr + "', expected '" + want_descr + "' (" +
                               want_name + "); convert with numpy .astype()");
  }
  if (h.fortran) {
    return Status::Unsupported(name +
                               ": Fortran-order array, expected C order (np.ascontiguousarray)");
  }
  if (h.shape.size() != 1 && h.shape.size() != 2) {
    return Status::Unsupported(name + ": " + std::to_string(h.shape.size()) +
                               "-D array, expected 1-D or 2-D");
  }
  DenseMatrix<T> out;
  out.rows = static_cast<size_t>(h.shape[0]);
  out.cols = h.shape.size() == 2 ? static_cast<size_t>(h.shape[1]) : 1;
  // A corrupt shape can multiply past 2^64 and wrap to a small size that
  // would then "match" the data; check the product first.
  size_t elems = 0, need = 0;
  if (__builtin_mul_overflow(out.rows, out.cols, &elems) ||
      __builtin_mul_overflow(elems, sizeof(T), &need)) {
    return Status::Corruption(name + ": shape (" + std::to_string(out.rows) + ", " +
                              std::to_string(out.cols) + ") is too large (corrupt header?)");
  }
  const size_t have = bytes.size() - h.data_offset;
  if (have < need) {
    return Status::Corruption(name + ": truncated: expected " + std::to_string(need) +
                              " data bytes for shape (" + std::to_string(out.rows) + ", " +
                              std::to_string(out.cols) + "), found " + std::to_string(have));
  }
  if (have > need) {
    return Status::Corruption(name + ": " + std::to_string(have - need) +
                              " trailing bytes after the array data");
  }
  out.data.resize(out.rows * out.cols);
  // An empty array's data() may be null, and memcpy from/to null is UB even
  // for 0 bytes (UBSan, array_io_fuzzer).
  if (need > 0) std::memcpy(out.data.data(), bytes.data() + h.data_offset, need);
  return out;
}

Status WriteNpyRaw(const fs::path& path, const char* descr, const std::string& shape,
                   const void* data, size_t nbytes) {
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces so that magic(6)+ver(2)+len(2)+header+'\n' is a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  out += header;
  out.append(static_cast<const char*>(data), nbytes);
  return WriteFileAtomic(path, out);
}

std::string Shape2(size_t r, size_t c) {
  std::string s = "(";
  s += std::to_string(r);
  s += ", ";
  s += std::to_string(c);
  return s + ")";
}

template <typename T>
Result<DenseMatrix<T>> ReadVecs(const fs::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  const std::string name = path.string();
  DenseMatrix<T> out;
  if (bytes.empty()) return out;
  if (bytes.size() < 4) return Status::Corruption(name + ": truncated: no dimension header");
  int32_t d = 0;
  std::memcpy(&d, bytes.data(), 4);
  if (d <= 0 || d > (1 << 24)) {
    return Status::Corruption(name + ": row 0: dimension " + std::to_string(d) +
                              " out of range (expected 1..16777216)");
  }
  const size_t row_bytes = 4 + static_cast<size_t>(d) * 4;
  if (bytes.size() % row_bytes != 0) {
    return Status::Corruption(name + ": truncated: size " + std::to_string(bytes.size()) +
                              " is not a multiple of the row size " + std::to_string(row_bytes) +
                              " (d=" + std::to_string(d) + ")");
  }
  out.rows = bytes.size() / row_bytes;
  out.cols = static_cast<size_t>(d);
  out.data.resize(out.rows * out.cols);
  for (size_t i = 0; i < out.rows; ++i) {
    int32_t di = 0;
    std::memcpy(&di, bytes.data() + i * row_bytes, 4);
    if (di != d) {
      return Status::Corruption(name + ": row " + std::to_string(i) + ": dimension " +
                                std::to_string(di) + ", expected " + std::to_string(d));
    }
    std::memcpy(out.row(i), bytes.data() + i * row_bytes + 4, static_cast<size_t>(d) * 4);
  }
  return out;
}

template <typename T>
Status WriteVecs(const fs::path& path, const DenseMatrix<T>& m) {
  std::string out;
  out.reserve(m.rows * (4 + m.cols * 4));
  const int32_t d = static_cast<int32_t>(m.cols);
  for (size_t i = 0; i < m.rows; ++i) {
    out.append(reinterpret_cast<const char*>(&d), 4);
    out.append(reinterpret_cast<const char*>(m.row(i)), m.cols * 4);
  }
  return WriteFileAtomic(path, out);
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

Result<Matrix> ReadNpyF32(const fs::path& path) { return ReadNpy<float>(path, "<f4", "float32"); }
Result<MatrixI64> ReadNpyI64(const fs::path& path) {
  return ReadNpy<int64_t>(path, "<i8", "int64");
}
Status WriteNpy(const fs::path& path, const Matrix& m) {
  return WriteNpyRaw(path, "<f4", Shape2(m.rows, m.cols), m.data.data(), m.data.size() * 4);
}
Status WriteNpy(const fs::path& path, const MatrixI64& m) {
  return WriteNpyRaw(path, "<i8", Shape2(m.rows, m.cols), m.data.data(), m.data.size() * 8);
}

Result<Matrix> ReadFvecs(const fs::path& path) { return ReadVecs<float>(path); }
Result<DenseMatrix<int32_t>> ReadIvecs(const fs::path& path) { return ReadVecs<int32_t>(path); }
Status WriteFvecs(const fs::path& path, const Matrix& m) { return WriteVecs(path, m); }
Status WriteIvecs(const fs::path& path, const DenseMatrix<int32_t>& m) {
  return WriteVecs(path, m);
}

Result<IdxArray> ReadIdx(const fs::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  const std::string name = path.string();
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 4 || p[0] != 0 || p[1] != 0) {
    return Status::Corruption(name + ": not an IDX file (bad magic, expected 00 00 08 <ndim>)");
  }
  if (p[2] != 0x08) {
    return Status::Unsupported(name + ": IDX element type 0x" + Hex64(p[2]).substr(14) +
                               ", only unsigned byte (0x08) is supported");
  }
  const int ndim = p[3];
  if (ndim < 1 || ndim > 4) {
    return Status::Corruption(name + ": IDX with " + std::to_string(ndim) +
                              " dimensions (expected 1..4)");
  }
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (bytes.size() < header) return Status::Corruption(name + ": truncated IDX header");
  IdxArray arr;
  size_t total = 1;
  for (int i = 0; i < ndim; ++i) {
    arr.dims.push_back(BigEndian32(p + 4 + 4 * i));
    // Four 32-bit sizes can wrap 2^64 and fake a match with the data size.
    if (__builtin_mul_overflow(total, size_t{arr.dims.back()}, &total)) {
      return Status::Corruption(name + ": IDX sizes multiply past 2^64 (corrupt header)");
    }
  }
  if (bytes.size() - header != total) {
    return Status::Corruption(name + ": " +
                              (bytes.size() - header < total ? "truncated" : "trailing bytes") +
                              ": expected " + std::to_string(total) + " data bytes, found " +
                              std::to_string(bytes.size() - header));
  }
  arr.data.rows = arr.dims[0];
  arr.data.cols = arr.dims[0] == 0 ? 0 : total / arr.dims[0];
  if (ndim == 1) arr.data.cols = 1;
  arr.data.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return arr;
}

Status WriteIdx(const fs::path& path, const IdxArray& arr, bool gzip) {
  size_t total = 1;
  for (uint32_t d : arr.dims) total *= d;
  if (arr.dims.empty() || total != arr.data.data.size()) {
    return Status::InvalidArgument(path.string() + ": IDX dims do not match the data size");
  }
  std::string out;
  out.reserve(4 + 4 * arr.dims.size() + total);
  out.push_back(0);
  out.push_back(0);
  out.push_back(0x08);
  out.push_back(static_cast<char>(arr.dims.size()));
  for (uint32_t d : arr.dims) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((d >> s) & 0xff));
  }
  out.append(reinterpret_cast<const char*>(arr.data.data.data()), total);
  return WriteFileAtomic(path, out, gzip);
}

namespace {
// Vectors are compared by distance; one NaN makes every distance to it NaN
// and a search "finds" garbage (bench reported recall 1.0 for NaN queries).
Result<Matrix> Finite(const fs::path& path, Result<Matrix> read) {
  if (!read.ok()) return read;
  const Matrix& m = *read;
  for (size_t k = 0; k < m.data.size(); ++k) {
    const float v = m.data[k];
    if (!std::isfinite(v)) {
      return Status::InvalidArgument(path.string() + ": row " + std::to_string(k / m.cols) +
                                     " column " + std::to_string(k % m.cols) + " is " +
                                     (std::isnan(v) ? "NaN" : "Inf") +
                                     "; expected finite values (rows and columns from 0)");
    }
  }
  return read;
}
}  // namespace

Result<Matrix> ReadVectors(const fs::path& path) {
  const std::string name = path.filename().string();
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with(".npy")) return Finite(path, ReadNpyF32(path));
  if (ends_with(".fvecs")) return Finite(path, ReadFvecs(path));
  if (ends_with(".idx") || ends_with(".gz") || name.find("-ubyte") != std::string::npos) {
    VITRINE_ASSIGN_OR_RETURN(IdxArray arr, ReadIdx(path));
    Matrix m(arr.data.rows, arr.data.cols);
    for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = arr.data.data[i];
    return m;
  }
  return Status::InvalidArgument(path.string() +
                                 ": unknown vector file type (expected .npy, .fvecs, or IDX "
                                 "ubyte such as train-images-idx3-ubyte[.gz])");
}

Result<NpyShape> ReadNpyShape(const fs::path& path) {
  // The header ends within its first 64 KiB (v1: 2-byte length; a v2/v3
  // header that long is not one vitrine wrote or reads).
  constexpr size_t kPrefix = 65536 + 12;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path.string() + ": cannot open");
  std::string bytes(kPrefix, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(kPrefix));
  bytes.resize(static_cast<size_t>(in.gcount()));
  VITRINE_ASSIGN_OR_RETURN(NpyHeader h, ParseNpyHeader(path, bytes));
  const std::string name = path.string();
  size_t item = 0;
  if (h.descr == "<f4") {
    item = 4;
  } else if (h.descr == "<i8") {
    item = 8;
  } else {
    return Status::Unsupported(name + ": dtype '" + h.descr + "', expected '<f4' or '<i8'");
  }
  if (h.fortran || (h.shape.size() != 1 && h.shape.size() != 2)) {
    return Status::Unsupported(name + ": expected a C-order 1-D or 2-D array");
  }
  NpyShape s;
  s.rows = static_cast<size_t>(h.shape[0]);
  s.cols = h.shape.size() == 2 ? static_cast<size_t>(h.shape[1]) : 1;
  size_t elems = 0, need = 0;
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return Status::IOError(name + ": cannot stat: " + ec.message());
  if (__builtin_mul_overflow(s.rows, s.cols, &elems) ||
      __builtin_mul_overflow(elems, item, &need) || h.data_offset + need != size) {
    return Status::Corruption(name + ": shape (" + std::to_string(s.rows) + ", " +
                              std::to_string(s.cols) + ") does not match the file size " +
                              std::to_string(size));
  }
  return s;
}

}  // namespace vitrine
