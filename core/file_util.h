// File I/O with the guarantees the brief asks for: reads name the file in
// every error, gzip is detected by magic bytes, and writes go to a temporary
// name in the same directory and are renamed into place, so a failed command
// never leaves a half-written file where a good one was. Every writer in
// vitrine goes through AtomicFile (or WriteFileAtomic) and FsyncPath here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>
#include <string_view>

#include "core/status.h"

namespace vitrine {

// The most bytes ReadFile inflates a gzip file to: 4 GiB, above the largest
// array or image file vitrine reads whole (CSV files are streamed by
// core/csv.h and have no total limit).
inline constexpr uint64_t kMaxInflatedBytes = uint64_t{4} << 30;
// Past kRatioFreeInflatedBytes of output, gzip data inflating more than
// kMaxInflationRatio times its compressed size is refused as a
// decompression bomb (2 MB inflating to 2 GiB stops near 200 MB). Real inputs
// are far below it: images and float arrays compress 2-10:1.
inline constexpr uint64_t kRatioFreeInflatedBytes = uint64_t{64} << 20;
inline constexpr uint64_t kMaxInflationRatio = 100;

// Reads a whole file. If it starts with the gzip magic (1f 8b) it is
// decompressed transparently, to at most `max_inflated_bytes`: a small .gz
// that inflates beyond it is refused (InvalidArgument) as soon as the limit
// is passed, holding no more than the limit in memory; so is one passing
// kMaxInflationRatio after kRatioFreeInflatedBytes. Errors name `path`.
Result<std::string> ReadFile(const std::filesystem::path& path,
                             uint64_t max_inflated_bytes = kMaxInflatedBytes);
// Reads a whole file byte for byte (no gzip detection): for checksumming the
// bytes that are on disk.
Result<std::string> ReadFileRaw(const std::filesystem::path& path);

// A list of ids, one per line (opt-out lists): a UTF-8 byte order mark,
// '\r' and surrounding spaces and tabs are dropped, blank lines and lines
// starting with '#' skipped, and repeated ids kept once, in file order.
Result<std::vector<std::string>> ReadIdList(const std::filesystem::path& path);
// The same, of text already in memory.
std::vector<std::string> ParseIdList(std::string_view text);

// A file written in pieces and published atomically: the bytes go to a fresh
// TempSiblingPath of `path`, Finish() flushes, fsyncs and closes it, and
// Commit() renames it over `path`. Until Commit a reader of `path` sees the
// old file (or none); after a crash at most the hidden temporary is left. The
// rename itself is durable only once the directory is synced (FsyncPath).
// Destroying a writer before Commit removes its temporary file.
//
//   AtomicFile f;
//   VITRINE_RETURN_IF_ERROR(f.Open(dir / "items.csv"));
//   VITRINE_RETURN_IF_ERROR(f.Append(header));  // ... as often as needed
//   VITRINE_RETURN_IF_ERROR(f.Commit());
//
// Finish() and Commit() are separate so that several files can all be
// written before any of them replaces its predecessor. Move-only; not
// thread-safe. Appends are buffered (1 MiB), so small pieces are cheap.
class AtomicFile {
 public:
  AtomicFile();
  ~AtomicFile();
  AtomicFile(AtomicFile&&) noexcept;
  AtomicFile& operator=(AtomicFile&&) noexcept;

  // Creates the temporary file (and missing parent directories of `path`).
  // gzip_level 0 stores the bytes as they are; 1..9 gzip-compresses them at
  // that zlib level. Errors: InvalidArgument for a bad level or a writer
  // already open, IOError naming the path.
  Status Open(const std::filesystem::path& path, int gzip_level = 0);
  // Errors: IOError naming the path; the writer is unusable afterwards.
  Status Append(std::string_view bytes);
  // Writes what is buffered (and the gzip trailer), fsyncs and closes the
  // temporary file. Idempotent.
  Status Finish();
  // Finish() if needed, then renames the temporary file over `path`.
  Status Commit();

  // The final path, as given to Open.
  const std::filesystem::path& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes `bytes` to `path` in one AtomicFile: a temporary sibling is written,
// fsync'ed and renamed over `path`. If `gzip` is true the bytes are
// gzip-compressed (level 6). Creates missing parent directories.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view bytes,
                       bool gzip = false);

// fsync(2) of a file or a directory (for a directory: its entries, so that a
// file created or renamed in it survives a crash). A filesystem that refuses
// to sync a directory (EINVAL) is not an error. Errors: IOError naming `path`.
Status FsyncPath(const std::filesystem::path& path);

// A fresh, unused sibling path for staging `path` (same directory, so a
// rename is atomic): "<dir>/.<name>.tmp.<pid>.<counter>".
std::filesystem::path TempSiblingPath(const std::filesystem::path& path);

// Replaces directory `final_dir` with the fully written directory `staged`
// (a sibling made by TempSiblingPath). A previous `final_dir` is swapped with
// `staged` in one renameat2(RENAME_EXCHANGE) and then removed, so a crash at
// any point leaves `final_dir` holding the old or the new directory, never
// neither. Where the filesystem cannot exchange (EINVAL: some network and
// FUSE filesystems), the old directory is moved aside first and removed
// after the rename, with a moment in between where `final_dir` is missing.
Status ReplaceDirectory(const std::filesystem::path& staged,
                        const std::filesystem::path& final_dir);

// xxh64 of a byte range (seed 0), and of a whole file streamed in blocks.
uint64_t Xxh64(std::string_view bytes);
Result<uint64_t> Xxh64File(const std::filesystem::path& path);

// 16 lowercase hex digits.
std::string Hex64(uint64_t v);

}  // namespace vitrine
