// Fuzzes image decoding as the build reads an image column
// (embed/visual_encoder.h LoadImageFiles: stb_image decode, then resize to
// 28 x 28 RGB). The input is the image file's bytes, written to a temp file
// (stb picks the decoder from the bytes, not the name). stb itself is
// compiled into this harness with ASan (stb_image_impl.cc, stb_resize_impl.cc).
// Oracle: a successful load is one 28 x 28 x 3 image.
//
// The checks that keep stb 2.27's known bugs away (a JPEG Huffman table of
// more than 256 codes, 16-bit and overflowing PNM headers, a zero width) are
// in embed/image_file.cc, which LoadImageFiles calls, so the harness tests
// them too. One input class is skipped before LoadImageFiles, by what
// stbi_info reports:
//   * more than 1024 x 1024 pixels: decoding and resampling cost grows with
//     the pixels, not the file (a 127-byte TGA declares 4100 x 4112 and takes
//     10 s), which would starve the fuzzer; stb's size checks up to its own
//     limits are still exercised by the header-only paths.
#include <stb_image.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "embed/image_file.h"
#include "embed/visual_encoder.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The size filter asks stb only about bytes vitrine's own checks pass:
  // stb's header parser is where its Huffman bug lives (stbi_info reads DHT
  // segments too), and LoadImageFiles never lets stb see such bytes.
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  int w = 0, h = 0, c = 0;
  if (vitrine::CheckImageBytes(bytes, "input").ok() &&
      stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &c) != 0) {
    if (static_cast<int64_t>(w) * h > 1024 * 1024) return 0;
  }
  const auto path = vitrine::fuzz::ScratchDir("image") / "input.png";
  vitrine::fuzz::WriteFileOrDie(path, bytes);
  auto batch = vitrine::LoadImageFiles({path}, 28);
  if (batch.ok() && (batch->size() != 1 || batch->pixels.cols != 28 * 28 * 3 ||
                     batch->channels != 3 || batch->height != 28 || batch->width != 28)) {
    vitrine::fuzz::Fail("LoadImageFiles returned a batch of the wrong shape");
  }
  return 0;
}
