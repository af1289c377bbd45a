// Inputs that crashed a reader once (found by the fuzz/ harnesses or while
// writing them; docs/reliability.md), replayed in the normal test build so the
// crash stays fixed. Each test names the harness, the failure it caused and
// the fix. A DISABLED_ test is a reproducer of a crash not fixed yet, in code
// owned elsewhere; its comment says where.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/array_io.h"
#include "tests/scratch_dir.h"

namespace vitrine {
namespace {

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

}  // namespace
}  // namespace vitrine
