// DecodeImageFile: one product image file (PNG or JPEG) to 8-bit RGB pixels.
//
// Product images come from merchants and feeds, so they are untrusted input.
// They are decoded by the libraries browsers and image servers rely on, both
// fuzzed continuously upstream: libpng (its simplified read API) and
// libjpeg-turbo (the TurboJPEG API, with its limit on progressive scans).
// vitrine used stb_image before; its 2.27 in Debian asserts and over-reads on
// hostile JPEG and PNG files (docs/reliability.md lists what fuzzing found).
//
// The format is sniffed from the bytes, not the name. Before any pixel is
// decoded:
//   * the file is at most kMaxImageFileBytes;
//   * the header's width and height are positive and their product is at
//     most kMaxImagePixels (decoding cost and memory grow with pixels, not
//     file size: a 100-byte file can declare 30000 x 30000).
// Every refusal is InvalidArgument naming the file and what was expected.
// A JPEG the decoder can finish with only a warning (a truncated scan, say)
// is decoded, as browsers show it. Limits are listed in docs/reliability.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

inline constexpr size_t kMaxImageFileBytes = size_t{64} << 20;  // 64 MiB
inline constexpr int64_t kMaxImagePixels = 50'000'000;           // e.g. 8660 x 5773

enum class ImageFormat { kPng, kJpeg };

// What an image file's header declares, once the checks above passed.
struct ImageHeader {
  ImageFormat format = ImageFormat::kPng;
  int width = 0, height = 0;
};

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height x width x 3, row-major
};

// The header of `bytes` (named `name` in errors), checked as above.
Result<ImageHeader> ReadImageHeader(std::string_view bytes, const std::string& name);

// Checks and decodes `bytes` to RGB (a PNG's alpha is composited on black,
// a grey image is repeated over the three channels).
Result<RgbImage> DecodeImage(std::string_view bytes, const std::string& name);

// Reads, checks and decodes `path` to RGB.
Result<RgbImage> DecodeImageFile(const std::filesystem::path& path);

}  // namespace vitrine
