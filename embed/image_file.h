// DecodeImageFile: one product image file to 8-bit RGB pixels, checked before
// stb_image sees it.
//
// Debian's stb_image (2.27) decodes many formats and has known memory bugs on
// hostile files (a JPEG Huffman table with more than 256 codes writes past a
// 257-byte array; a 16-bit PNM is over-read; a PPM with an unparsable width
// decodes as 0 x h and the resizer then divides by zero). vitrine accepts
// what its docs promise, PNG and JPEG, sniffed from the bytes (not the name),
// and checks them first:
//   * the file is at most kMaxImageFileBytes;
//   * a JPEG's DHT segments declare at most 256 codes per table;
//   * the header's width and height are positive and their product is at
//     most kMaxImagePixels (decoding cost and memory grow with pixels, not
//     file size: a 100-byte file can declare 30000 x 30000).
// Every refusal is InvalidArgument naming the file and what was expected.
// Limits are listed in docs/reliability.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

inline constexpr size_t kMaxImageFileBytes = size_t{64} << 20;  // 64 MiB
inline constexpr int64_t kMaxImagePixels = 50'000'000;           // e.g. 8660 x 5773

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height x width x 3, row-major
};

// Why `bytes` (named `name` in errors) is not an image vitrine decodes, or OK.
Status CheckImageBytes(std::string_view bytes, const std::string& name);

// Reads, checks and decodes `path` to RGB.
Result<RgbImage> DecodeImageFile(const std::filesystem::path& path);

}  // namespace vitrine
