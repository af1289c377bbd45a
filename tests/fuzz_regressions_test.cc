// Inputs that crashed a reader once (found by the fuzz/ harnesses or while
// writing them; docs/reliability.md), replayed in the normal test build so the
// crash stays fixed. Each test names the harness, the failure it caused and
// the fix. A DISABLED_ test is a reproducer of a crash not fixed yet, in code
// owned elsewhere; its comment says where.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stb/stb_image_write.h>  // the library is linked
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/array_io.h"
#include "embed/image_file.h"
#include "embed/visual_encoder.h"
#include "tests/scratch_dir.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

// A PNG chunk's CRC (of its type and data), big-endian as the format stores it.
std::string BigEndianCrc(std::string_view type_and_data) {
  const uLong c = crc32(0L, reinterpret_cast<const Bytef*>(type_and_data.data()),
                        static_cast<uInt>(type_and_data.size()));
  return {static_cast<char>(c >> 24), static_cast<char>(c >> 16), static_cast<char>(c >> 8),
          static_cast<char>(c)};
}

// A .npy v1.0 file whose header dictionary is `dict` (padded as numpy pads).
std::string Npy(const std::string& dict, const std::string& data) {
  std::string header = dict;
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  return out + header + data;
}

// Found by reading core/array_io.cc for the array_io_fuzzer seeds: the header
// was matched with std::regex, which recurses once per character, so a 50 KB
// 'descr' (or 'shape') value overflowed the stack (SIGSEGV in Release, at
// about 30 KB under ASan). A v1.0 header may hold 65535 bytes. Fixed by
// scanning the header by hand (ParseNpyHeader).
TEST(FuzzRegressions, NpyLongHeaderValuesAreRejectedWithoutStackOverflow) {
  const auto path = ScratchDir() / "long_descr.npy";
  WriteText(path, Npy("{'descr': '" + std::string(60000, 'f') +
                          "', 'fortran_order': False, 'shape': (1, 1), }",
                      std::string(4, '\0')));
  auto m = ReadNpyF32(path);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kUnsupported) << m.status().ToString();

  const auto shape_path = ScratchDir() / "long_shape.npy";
  WriteText(shape_path, Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                                std::string(60000, ' ') + "1, 1), }",
                            std::string(4, '\0')));
  auto s = ReadNpyF32(shape_path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->rows, 1u);
  EXPECT_EQ(s->cols, 1u);
}

// The hand-written scan keeps the regex's reading of odd but valid headers:
// blanks around ':', keys in any order, a key repeated (the first complete
// value wins), numpy's "L" suffix of Python 2 longs.
TEST(FuzzRegressions, NpyHeaderScanMatchesTheRegexItReplaced) {
  const auto path = ScratchDir() / "odd.npy";
  WriteText(path, Npy("{'shape'\t:\n(2L, 1L), 'fortran_order' :False, 'descr':  '<f4', "
                      "'descr': '<i8'}",
                      std::string(8, '\0')));
  auto m = ReadNpyF32(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows, 2u);
  EXPECT_EQ(m->cols, 1u);

  WriteText(path, Npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", ""));
  EXPECT_FALSE(ReadNpyF32(path).ok());
  WriteText(path, Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,, }", ""));
  EXPECT_FALSE(ReadNpyF32(path).ok());
  WriteText(path, Npy("{'descr' '<f4', 'fortran_order': False, 'shape': (1,), }", ""));
  EXPECT_FALSE(ReadNpyF32(path).ok());
}

// array_io_fuzzer, seed fuzz/corpus/array_io/f32_v2_empty.npy (what np.save
// writes for np.zeros((0, 5), np.float32)): ReadNpy copied the data with
// memcpy(out.data.data(), ..., 0), and an empty vector's data() is null:
// undefined behaviour (UBSan: "null pointer passed as argument 1"), caught
// only by the sanitizer build. Fixed by skipping the copy of 0 bytes.
TEST(FuzzRegressions, EmptyNpyArraysReadAsEmptyMatrices) {
  const auto path = ScratchDir() / "empty.npy";
  WriteText(path, Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", ""));
  auto m = ReadNpyF32(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows, 0u);
  EXPECT_EQ(m->cols, 5u);
  WriteText(path, Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }", ""));
  auto i = ReadNpyI64(path);
  ASSERT_TRUE(i.ok()) << i.status().ToString();
  EXPECT_EQ(i->rows, 0u);
}

// image_fuzzer, 18 bytes: a PPM whose width does not parse ("P6]\n2 2\n255"
// then 6 pixel bytes). stb_image 2.27 decoded it as a 0 x 2 image and the
// resizer divided by the zero width (Debian's libstb aborts on an assert).
// Fixed in embed/image_file.cc: only PNG and JPEG, sniffed from the bytes,
// with a positive size (and, since, decoded by libpng / libjpeg-turbo).
TEST(FuzzRegressions, ZeroWidthImageIsAnErrorNotAnAbort) {
  const auto path = ScratchDir() / "zero_width.png";
  WriteText(path, std::string("P6]\n2 2\n255P`p\x80\x90\xa0\xb0", 18));
  auto batch = LoadImageFiles({path}, 28);
  EXPECT_FALSE(batch.ok());
}

// image_fuzzer (CI, session 6): a PNG whose first IDAT chunk is empty made
// stb 2.27 call memcpy(NULL, p, 0) (UBSan: "null pointer passed as argument
// 1", stb_image.h:1663). Fixed by decoding with libpng, which reads empty
// IDAT chunks as the format allows. The crashing input is an error; a valid
// PNG with empty IDATs inserted decodes to the pixels of the original.
TEST(FuzzRegressions, EmptyIdatChunksDecode) {
  const std::string crash =
      std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x08\0\0\0\x08\x08\x02\0\0\0Km)\xdc", 33) +
      std::string("\0\0\0\0IDATx^\x01\xc8\x00\x37\xff\x00", 16) + std::string(200, '\x11') +
      std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12);
  const auto bad = ScratchDir() / "empty_idat_crash.png";
  WriteText(bad, crash);
  EXPECT_FALSE(LoadImageFiles({bad}, 28).ok());

  // A real 8 x 8 PNG, then the same with an empty IDAT before and after
  // every chunk after the header.
  const auto good = ScratchDir() / "good.png";
  std::vector<uint8_t> px(8 * 8 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  ASSERT_NE(stbi_write_png(good.c_str(), 8, 8, 3, px.data(), 8 * 3), 0);
  const std::string bytes = Slurp(good);
  const std::string empty_idat("\0\0\0\0IDAT\x35\xaf\x06\x1e", 12);
  std::string padded = bytes.substr(0, 33);  // signature + IHDR
  for (size_t p = 33; p + 12 <= bytes.size();) {
    const auto* b = reinterpret_cast<const uint8_t*>(bytes.data() + p);
    const size_t len = size_t{b[0]} << 24 | size_t{b[1]} << 16 | size_t{b[2]} << 8 | b[3];
    padded += empty_idat + bytes.substr(p, 12 + len);
    p += 12 + len;
  }
  ASSERT_GT(padded.size(), bytes.size());
  const auto with_empty = ScratchDir() / "with_empty_idat.png";
  WriteText(with_empty, padded);
  auto a = DecodeImageFile(good);
  auto b = DecodeImageFile(with_empty);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->pixels, px);
  EXPECT_EQ(b->pixels, a->pixels);
}

// image_fuzzer, minimised to 9 bytes: SOI, then a DHT segment whose first
// table declares 240 + 96 = 336 codes. stb_image 2.27 wrote 80 bytes past
// its `size[257]` array (UBSan, stb_image.h:1990). libjpeg-turbo refuses the
// table; the test pins an error and no crash.
TEST(FuzzRegressions, JpegWithTooManyHuffmanCodesIsRejected) {
  const auto path = ScratchDir() / "dht.jpg";
  WriteText(path, std::string("\xff\xd8\xff\xc4\x9e\x86\x00\xf0\x60", 9));
  auto batch = LoadImageFiles({path}, 28);
  EXPECT_FALSE(batch.ok());
}

// image_fuzzer, 44 bytes: a P6 header whose height is 31 digits (signed
// overflow in stb 2.27's PNM reader). PNM is not a product image format:
// refused by its first bytes.
TEST(FuzzRegressions, PnmWithAnOverflowingSizeIsAnError) {
  const auto path = ScratchDir() / "wide.ppm";
  WriteText(path, "P6\n2\f\f\f" + std::string(31, '8') + "\v255\v\x11");
  auto batch = LoadImageFiles({path}, 28);
  EXPECT_FALSE(batch.ok());
}

// image_fuzzer, 17 bytes: "P5\n2 2\n256" and 6 sample bytes, a 16-bit
// grayscale PGM. stb 2.27 converts 16-bit PNM samples with the 8-bit
// converter and then over-reads the heap by w * h * 3 bytes (a valid
// 2000 x 2000 file segfaulted a build). Fixed in embed/image_file.cc: a PNM is
// refused by its first bytes.
TEST(FuzzRegressions, SixteenBitPgmIsRefused) {
  const auto path = ScratchDir() / "gray16.pgm";
  WriteText(path, "P5\n64 64\n65535\n" + std::string(64 * 64 * 2, '\x80'));
  auto batch = LoadImageFiles({path}, 28);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.status().ToString().find("not a PNG or JPEG"), std::string::npos)
      << batch.status().ToString();
}

// A PNG header may declare any size; decoding cost follows the declared
// pixels, not the file. A 45-byte file of 12000 x 12000 is refused before
// any decoding, naming the limit.
TEST(FuzzRegressions, HugeDeclaredImageIsRefused) {
  const auto path = ScratchDir() / "huge.png";
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  png += std::string("\0\0\x2e\xe0\0\0\x2e\xe0\x08\x02\0\0\0", 13);  // 12000^2 RGB8
  png += BigEndianCrc(std::string_view(png).substr(12));              // of "IHDR" + data
  png += std::string("\0\0\0\0IDAT", 8) + BigEndianCrc("IDAT");  // the header ends here
  WriteText(path, png);
  auto batch = LoadImageFiles({path}, 28);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.status().ToString().find("12000 x 12000"), std::string::npos)
      << batch.status().ToString();
}

// image_fuzzer (CI, session 12): a 300-byte PNG whose chunk walk reaches a
// chunk declaring 1.6 GB made stb realloc its IDAT buffer to 2 GB before
// reading (an out-of-memory under the fuzzer's limit). libpng reads image
// data in bounded pieces and stops at the end of the file
// (tests/data/fuzz/png_chunk_past_the_end.png).
TEST(FuzzRegressions, PngChunkPastTheEndIsAnError) {
  const fs::path path =
      fs::path(VITRINE_SOURCE_DIR) / "tests/data/fuzz/png_chunk_past_the_end.png";
  auto batch = LoadImageFiles({path}, 28);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.status().ToString().find("png_chunk_past_the_end.png: cannot decode image: corrupt PNG"),
            std::string::npos)
      << batch.status().ToString();
}

// http_fuzzer, first seconds: GET /similar/NOPE?k<0xDF x 94>=0 was answered
// 500: the unknown query key went into the 400 message and json::dump threw
// on the non-UTF-8 bytes. Same for an item id in the path. Fixed in serve/
// (JSON dumped with error_handler_t::replace, a URL that is not UTF-8 is a 400).
TEST(FuzzRegressions, NonUtf8QueryIsA400) {
  const auto dir = testing::MakeTestBundle("fuzz_regressions");
  ServerOptions o;
  o.bundle = dir / "bundle";
  testing::TestServer server(o);
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", server.port());
  for (const char* target : {"/similar/NOPE?k\xdf\xdf=0", "/similar/\xdf\xdf?k=1"}) {
    auto res = client.Get(target);
    ASSERT_TRUE(res) << target;
    EXPECT_EQ(res->status, 400) << target << ": " << res->body;
  }
}

// image_fuzzer, 726 bytes (FUZZ_SECONDS=25 FUZZ_FRESH=1, issue 13's closing
// run): a JFIF file whose DHT segment declares 636 codes in one table, which
// stb 2.27's header parser wrote past an array for. The header reader
// (libjpeg-turbo) refuses it, naming the file.
TEST(FuzzRegressions, JpegHeaderWithAnOverfullHuffmanTableIsRefused) {
  std::string jpeg("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00", 20);
  jpeg += std::string(
      "\xff\xc0\x00\x11\x08\x00\x08\x00\x08\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 19);
  // DHT: length 418, table 0 with the counts the fuzzer found (sum 636).
  jpeg += std::string("\xff\xc4\x01\xa2\x00", 5);
  jpeg += std::string("\x00\x01\x05\x01\x01\x01\x01\x01\xc2\xc2\xc2\x01\x01\x00\x15\x15", 16);
  jpeg += std::string(400, '\x01');
  const Status st = ReadImageHeader(jpeg, "fuzz.jpg").status();
  EXPECT_EQ(st.ToString().rfind("Invalid argument: fuzz.jpg: cannot decode image: corrupt JPEG (", 0),
            0u)
      << st.ToString();
  const auto path = ScratchDir() / "overfull_dht.jpg";
  WriteText(path, jpeg);
  EXPECT_FALSE(LoadImageFiles({path}, 28).ok());
}

// image_fuzzer, an artifact of an earlier run (minimised to 461 bytes,
// tests/data/fuzz/jpeg_marker_inside_scan.jpg): a JPEG whose scan data meets
// a marker before its bits run out. stb 2.27 then shifted by 32 or more
// (UBSan, stb_image.h:2065). libjpeg-turbo pads the missing bits with zeros
// and warns, as the JPEG standard's decoders do: the test pins no crash, and
// a decoded image has the shape.
TEST(FuzzRegressions, JpegWithAMarkerInsideTheScanDoesNotCrash) {
  const fs::path path =
      fs::path(VITRINE_SOURCE_DIR) / "tests/data/fuzz/jpeg_marker_inside_scan.jpg";
  ASSERT_TRUE(fs::exists(path));
  auto batch = LoadImageFiles({path}, 28);
  if (batch.ok()) {
    EXPECT_EQ(batch->size(), 1u);
    EXPECT_EQ(batch->pixels.cols, 28u * 28u * 3u);
  }
}

// image_fuzzer (CI, session 14's stop): a 729-byte JFIF file whose
// Huffman-coded data does not match its tables stopped stb 2.27 on an assert
// in stbi__jpeg_huff_decode (stb_image.h:2115; Debian's libstb.so keeps its
// asserts). The fix is the decoder: libpng and libjpeg-turbo replace
// stb_image (embed/image_file.h). Pinned: no crash, and an image, if any, has
// the shape (tests/data/fuzz/jpeg_huffman_assert.jpg).
TEST(FuzzRegressions, JpegWithBadHuffmanDataDoesNotAbort) {
  const fs::path path = fs::path(VITRINE_SOURCE_DIR) / "tests/data/fuzz/jpeg_huffman_assert.jpg";
  ASSERT_TRUE(fs::exists(path));
  auto batch = LoadImageFiles({path}, 28);
  if (batch.ok()) {
    EXPECT_EQ(batch->size(), 1u);
    EXPECT_EQ(batch->pixels.cols, 28u * 28u * 3u);
  }
}

// http_fuzzer, sixth input of issue 13's closing run: its own seed
// fuzz/corpus/http/reload_missing.txt, POST /reload {"bundle":
// "/nonexistent/bundle"}. The server answered 403 (outside the bundle root,
// docs/security.md) and the harness, written before the bundle root, allowed
// only 500 for a failed reload. The harness now allows 403; this test pins
// the answer: 403, JSON, one message that does not say whether the path
// exists and does not echo it.
TEST(FuzzRegressions, ReloadOutsideTheBundleRootIsA403WithoutThePath) {
  const auto dir = testing::MakeTestBundle("fuzz_regressions_reload");
  ServerOptions o;
  o.bundle = dir / "bundle";
  testing::TestServer server(o);
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", server.port());
  std::string first_body;
  for (const char* body : {R"({"bundle": "/nonexistent/bundle"})", R"({"bundle": "/tmp"})"}) {
    auto res = client.Post("/reload", body, "application/json");
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, 403) << body << ": " << res->body;
    EXPECT_FALSE(nlohmann::json::parse(res->body, nullptr, false).is_discarded()) << res->body;
    EXPECT_EQ(res->body.find("nonexistent"), std::string::npos) << res->body;
    EXPECT_EQ(res->body.find("/tmp"), std::string::npos) << res->body;
    if (first_body.empty()) first_body = res->body;
    EXPECT_EQ(res->body, first_body) << "existing and missing paths must answer alike";
  }
}

}  // namespace
}  // namespace vitrine
