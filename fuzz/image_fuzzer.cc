// Fuzzes image decoding as the build reads an image column
// (embed/visual_encoder.h LoadImageFiles: stb_image decode, then resize to
// 28 x 28 RGB). The input is the image file's bytes, written to a temp file
// (stb picks the decoder from the bytes, not the name). stb itself is
// compiled into this harness with ASan (stb_image_impl.cc, stb_resize_impl.cc).
// Oracle: a successful load is one 28 x 28 x 3 image.
//
// Inputs skipped before LoadImageFiles, by what stbi_info reports:
//   * a zero width or height: LoadImageFiles passes it to the resizer, which
//     divides by it (UBSan) and, in Debian's libstb, fails an assert and
//     aborts the process. Reported; reproducer
//     DISABLED_ZeroWidthImageIsAnErrorNotAnAbort in
//     tests/fuzz_regressions_test.cc. Remove this skip once fixed.
//   * a JPEG whose DHT segment declares more than 256 codes in one table:
//     stb_image 2.27's stbi__build_huffman writes one size byte per code into
//     a 257-byte array, past its end (UBSan: "index 257 out of bounds for
//     type 'stbi_uc[257]'"; a 9-byte file does it). A bug in Debian's stb,
//     reached by every image vitrine decodes; reproducer
//     JpegWithTooManyHuffmanCodesIsRejected. Remove this skip once
//     stb (or the decoder vitrine uses) is fixed.
//   * a PNM (P5/P6) with a number of 10 or more digits in its header:
//     stbi__pnm_getinteger multiplies by 10 without an overflow check (UBSan:
//     signed integer overflow; the wrapped value is then rejected as "too
//     large"). A bug in Debian's stb; pinned by
//     PnmWithAnOverflowingSizeIsAnError. Remove this skip with the fix.
//   * a 16-bit PNM (maxval > 255) when 3 channels are requested, as
//     LoadImageFiles always does: stb 2.27 converts the 16-bit samples with
//     the 8-bit channel converter, then reads them as 16-bit: a heap
//     over-read of w * h * 3 bytes (ASan: heap-buffer-overflow in
//     stbi__convert_16_to_8). Plain Debian libstb.so segfaults on a valid
//     2000 x 2000 16-bit PGM. Reproducer
//     DISABLED_SixteenBitPgmReadsOnlyItsPixels. Remove this skip with the fix.
//   * more than 1024 x 1024 pixels: decoding and resampling cost grows with
//     the pixels, not the file (a 127-byte TGA declares 4100 x 4112 and takes
//     10 s), which would starve the fuzzer; stb's size checks up to its own
//     limits are still exercised by the header-only paths.
#include <stb_image.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "embed/visual_encoder.h"
#include "fuzz/fuzz_util.h"

namespace {

// True if the bytes hold a DHT segment (FF C4, anywhere: stb skips fill
// bytes before markers) with a table whose 16 code counts add up to more than
// 256, read as stb reads it: tables follow one another until the segment
// length, and bytes past the end read as 0. Non-JPEG inputs rarely match.
bool JpegDhtOverflows(const uint8_t* d, size_t n) {
  auto at = [&](size_t i) -> unsigned { return i < n ? d[i] : 0; };
  for (size_t i = 0; i + 1 < n; ++i) {
    if (d[i] != 0xFF || d[i + 1] != 0xC4) continue;
    const size_t end = i + 2 + (at(i + 2) << 8 | at(i + 3));
    for (size_t p = i + 4; p < end;) {
      unsigned codes = 0;
      for (size_t k = 0; k < 16; ++k) codes += at(p + 1 + k);
      if (codes > 256) return true;
      p += 17 + codes;
    }
  }
  return false;
}

// True for a P5/P6 file with 10 or more consecutive digits in its first
// 256 bytes (where stb reads the header numbers).
bool PnmNumberOverflows(const uint8_t* d, size_t n) {
  if (n < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6')) return false;
  int run = 0;
  for (size_t i = 2; i < n && i < 256; ++i) {
    run = d[i] >= '0' && d[i] <= '9' ? run + 1 : 0;
    if (run >= 10) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (JpegDhtOverflows(data, size) || PnmNumberOverflows(data, size)) return 0;
  if (size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6') &&
      stbi_is_16_bit_from_memory(data, static_cast<int>(size)) != 0) {
    return 0;
  }
  int w = 0, h = 0, c = 0;
  if (size > 0 && stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &c) != 0) {
    if (w <= 0 || h <= 0) return 0;
    if (static_cast<int64_t>(w) * h > 1024 * 1024) return 0;
  }
  const auto path = vitrine::fuzz::ScratchDir("image") / "input.png";
  vitrine::fuzz::WriteFileOrDie(path, std::string_view(reinterpret_cast<const char*>(data), size));
  auto batch = vitrine::LoadImageFiles({path}, 28);
  if (batch.ok() && (batch->size() != 1 || batch->pixels.cols != 28 * 28 * 3 ||
                     batch->channels != 3 || batch->height != 28 || batch->width != 28)) {
    vitrine::fuzz::Fail("LoadImageFiles returned a batch of the wrong shape");
  }
  return 0;
}
