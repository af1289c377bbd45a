// Whole-file I/O with the guarantees the brief asks for: reads name the file
// in every error, gzip is detected by magic bytes, and writes go to a
// temporary name in the same directory and are renamed into place, so a
// failed command never leaves a half-written file where a good one was.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace vitrine {

// Reads a whole file. If it starts with the gzip magic (1f 8b) it is
// decompressed transparently. Errors name `path`.
Result<std::string> ReadFile(const std::filesystem::path& path);
// Reads a whole file byte for byte (no gzip detection): for checksumming the
// bytes that are on disk.
Result<std::string> ReadFileRaw(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically: <path>.tmp.<pid> is written, flushed,
// fsync'ed and renamed over `path`. If `gzip` is true the bytes are
// gzip-compressed (level 6). Creates missing parent directories.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view bytes,
                       bool gzip = false);

// A fresh, unused sibling path for staging `path` (same directory, so a
// rename is atomic): "<dir>/.<name>.tmp.<pid>.<counter>".
std::filesystem::path TempSiblingPath(const std::filesystem::path& path);

// Replaces directory `final_dir` with the fully written directory `staged`
// (a sibling made by TempSiblingPath). Any previous `final_dir` is moved
// aside first and removed only after the rename succeeded.
Status ReplaceDirectory(const std::filesystem::path& staged,
                        const std::filesystem::path& final_dir);

// xxh64 of a byte range (seed 0), and of a whole file streamed in blocks.
uint64_t Xxh64(std::string_view bytes);
Result<uint64_t> Xxh64File(const std::filesystem::path& path);

// 16 lowercase hex digits.
std::string Hex64(uint64_t v);

}  // namespace vitrine
