#include "embed/image_file.h"

#include <stb_image.h>

#include <algorithm>
#include <string>
#include <system_error>

#include "core/file_util.h"

namespace vitrine {
namespace {

bool IsPng(std::string_view b) { return b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8); }
bool IsJpeg(std::string_view b) { return b.substr(0, 3) == std::string_view("\xff\xd8\xff", 3); }

// The largest per-table code count in any DHT segment (FF C4), read the way
// stb reads it: tables follow one another up to the segment length, and bytes
// past the end of the file read as 0. The marker is searched anywhere because
// stb skips fill bytes before markers, so a stricter segment walk would miss
// what stb would still decode.
unsigned MaxDhtCodes(std::string_view b) {
  auto at = [&](size_t i) -> unsigned { return i < b.size() ? static_cast<uint8_t>(b[i]) : 0; };
  unsigned worst = 0;
  for (size_t i = 0; i + 1 < b.size(); ++i) {
    if (at(i) != 0xFF || at(i + 1) != 0xC4) continue;
    const size_t end = i + 2 + (at(i + 2) << 8 | at(i + 3));
    for (size_t p = i + 4; p < end;) {
      unsigned codes = 0;
      for (size_t k = 0; k < 16; ++k) codes += at(p + 1 + k);
      worst = std::max(worst, codes);
      p += 17 + codes;
    }
  }
  return worst;
}

// The PNG without its empty IDAT chunks (legal, and meaningless: the image
// data is the concatenation of the IDAT contents). stb 2.27 copies a first
// empty IDAT with memcpy(NULL, p, 0), undefined behaviour that UBSan stops
// on (found by fuzz/image_fuzzer). Chunks are copied as they are; a chunk
// running past the end stops the walk and the rest is kept for stb to refuse.
std::string WithoutEmptyIdat(std::string_view png) {
  constexpr size_t kSignature = 8, kChunkOverhead = 12;  // length, type, CRC
  std::string out(png.substr(0, kSignature));
  size_t p = kSignature;
  while (p + kChunkOverhead <= png.size()) {
    const auto* b = reinterpret_cast<const uint8_t*>(png.data() + p);
    const uint32_t length = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
    if (length > png.size() - p - kChunkOverhead) break;
    const size_t whole = kChunkOverhead + length;
    if (!(length == 0 && png.substr(p + 4, 4) == "IDAT")) out.append(png.substr(p, whole));
    p += whole;
  }
  out.append(png.substr(p));
  return out;
}

// The first PNG chunk before IEND whose declared length runs past the end
// of the file, as "chunk 'IDAT' at byte 124 declares 1619582543 bytes, 114
// remain"; "" when every chunk fits. stb grows its IDAT buffer to a chunk's
// declared length before reading it, so one such length in a 250-byte file
// asks for gigabytes (found by fuzz/image_fuzzer).
std::string PngChunkPastTheEnd(std::string_view png) {
  constexpr size_t kSignature = 8, kChunkOverhead = 12;  // length, type, CRC
  size_t p = kSignature;
  while (p + kChunkOverhead <= png.size()) {
    const auto* b = reinterpret_cast<const uint8_t*>(png.data() + p);
    const uint32_t length = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
    const std::string_view type = png.substr(p + 4, 4);
    const size_t left = png.size() - p - kChunkOverhead;
    if (length > left) {
      std::string printable;
      for (char c : type) printable += (c >= 0x20 && c < 0x7f) ? c : '?';
      return "chunk '" + printable + "' at byte " + std::to_string(p) + " declares " +
             std::to_string(length) + " bytes, " + std::to_string(left) + " remain";
    }
    if (type == "IEND") break;
    p += kChunkOverhead + length;
  }
  return "";
}

}  // namespace

Status CheckImageBytes(std::string_view bytes, const std::string& name) {
  if (bytes.size() > kMaxImageFileBytes) {
    return Status::InvalidArgument(name + ": image file is " + std::to_string(bytes.size()) +
                                   " bytes; the limit is " + std::to_string(kMaxImageFileBytes));
  }
  const bool png = IsPng(bytes), jpeg = IsJpeg(bytes);
  if (!png && !jpeg) {
    return Status::InvalidArgument(name + ": cannot decode image: not a PNG or JPEG file (by its first bytes)");
  }
  if (png) {
    const std::string past = PngChunkPastTheEnd(bytes);
    if (!past.empty()) {
      return Status::InvalidArgument(name + ": cannot decode image: corrupt PNG, " + past);
    }
  }
  if (jpeg && MaxDhtCodes(bytes) > 256) {
    return Status::InvalidArgument(name +
                                   ": cannot decode image: corrupt JPEG, a Huffman table declares more than 256 codes");
  }
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                             static_cast<int>(bytes.size()), &w, &h, &c)) {
    return Status::InvalidArgument(name + ": cannot decode image: bad header (" +
                                   stbi_failure_reason() + "); expected PNG or JPEG");
  }
  if (w <= 0 || h <= 0 || static_cast<int64_t>(w) * h > kMaxImagePixels) {
    return Status::InvalidArgument(name + ": image is " + std::to_string(w) + " x " +
                                   std::to_string(h) + "; expected a positive size of at most " +
                                   std::to_string(kMaxImagePixels) + " pixels");
  }
  return Status::OK();
}

Result<RgbImage> DecodeImageFile(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxImageFileBytes) {
    return Status::InvalidArgument(name + ": image file is " + std::to_string(size) +
                                   " bytes; the limit is " + std::to_string(kMaxImageFileBytes));
  }
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFileRaw(path));
  VITRINE_RETURN_IF_ERROR(CheckImageBytes(bytes, name));
  if (IsPng(bytes)) bytes = WithoutEmptyIdat(bytes);
  int w = 0, h = 0, c = 0;
  stbi_uc* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                      static_cast<int>(bytes.size()), &w, &h, &c, 3);
  if (px == nullptr) {
    return Status::InvalidArgument(name + ": cannot decode image (" + stbi_failure_reason() +
                                   "); expected PNG or JPEG");
  }
  RgbImage im;
  im.width = w;
  im.height = h;
  im.pixels.assign(px, px + static_cast<size_t>(w) * h * 3);
  stbi_image_free(px);
  return im;
}

}  // namespace vitrine
