// Fuzzes image decoding as the build reads an image column
// (embed/visual_encoder.h LoadImageFiles: libpng / libjpeg-turbo decode,
// embed/image_file.h, then resize to 28 x 28 RGB). The input is the image
// file's bytes, written to a temp file (the format is sniffed from the bytes,
// not the name). Oracle: a successful load is one 28 x 28 x 3 image.
//
// One input class is skipped before LoadImageFiles, by what the header
// declares: more than 1024 x 1024 pixels. Decoding and resampling cost grows
// with the pixels, not the file (a 100-byte file may declare 7000 x 7000),
// which would starve the fuzzer; the header checks themselves still run.
#include <cstddef>
#include <cstdint>
#include <string>

#include "embed/image_file.h"
#include "embed/visual_encoder.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto header = vitrine::ReadImageHeader(bytes, "input");
  if (header.ok() && static_cast<int64_t>(header->width) * header->height > 1024 * 1024) return 0;
  const auto path = vitrine::fuzz::ScratchDir("image") / "input.png";
  vitrine::fuzz::WriteFileOrDie(path, bytes);
  auto batch = vitrine::LoadImageFiles({path}, 28);
  if (batch.ok() && (batch->size() != 1 || batch->pixels.cols != 28 * 28 * 3 ||
                     batch->channels != 3 || batch->height != 28 || batch->width != 28)) {
    vitrine::fuzz::Fail("LoadImageFiles returned a batch of the wrong shape");
  }
  // A header that reads is no promise that the pixels decode, but pixels
  // decoded from a refused header would bypass the checks.
  if (!header.ok() && batch.ok()) {
    vitrine::fuzz::Fail("LoadImageFiles decoded a file whose header is refused");
  }
  return 0;
}
