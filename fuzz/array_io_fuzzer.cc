// Fuzzes the array readers of core/array_io.h on files: .npy (float32 and
// int64, and the header-only ReadNpyShape), .fvecs / .ivecs and IDX (plain or
// gzip), plus ReadVectors' dispatch by extension.
//
// The input is the file's bytes; it is written once under each extension.
// Oracles: a reader that succeeds returns rows * cols values; ReadNpyShape
// agrees with a successful full read; an IDX's dims multiply out to its data.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/array_io.h"
#include "fuzz/fuzz_util.h"

namespace {

using namespace vitrine;

template <typename M>
void CheckShape(const Result<M>& m, const char* what) {
  if (m.ok() && m->data.size() != m->rows * m->cols) {
    vitrine::fuzz::Fail(std::string(what) + ": rows * cols != values");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto& dir = vitrine::fuzz::ScratchDir("array_io");

  const auto npy = dir / "input.npy";
  vitrine::fuzz::WriteFileOrDie(npy, bytes);
  auto shape = ReadNpyShape(npy);
  auto f32 = ReadNpyF32(npy);
  auto i64 = ReadNpyI64(npy);
  CheckShape(f32, "ReadNpyF32");
  CheckShape(i64, "ReadNpyI64");
  if (f32.ok() && (!shape.ok() || shape->rows != f32->rows || shape->cols != f32->cols)) {
    vitrine::fuzz::Fail("ReadNpyShape disagrees with ReadNpyF32");
  }
  if (i64.ok() && (!shape.ok() || shape->rows != i64->rows || shape->cols != i64->cols)) {
    vitrine::fuzz::Fail("ReadNpyShape disagrees with ReadNpyI64");
  }
  CheckShape(ReadVectors(npy), "ReadVectors(.npy)");

  const auto fvecs = dir / "input.fvecs";
  vitrine::fuzz::WriteFileOrDie(fvecs, bytes);
  CheckShape(ReadFvecs(fvecs), "ReadFvecs");
  CheckShape(ReadIvecs(fvecs), "ReadIvecs");
  CheckShape(ReadVectors(fvecs), "ReadVectors(.fvecs)");

  const auto idx = dir / "input-ubyte";
  vitrine::fuzz::WriteFileOrDie(idx, bytes);
  auto arr = ReadIdx(idx);
  if (arr.ok()) {
    size_t n = 1;
    for (uint32_t d : arr->dims) n *= d;
    if (arr->dims.empty() || n != arr->data.data.size() ||
        arr->data.data.size() != arr->data.rows * arr->data.cols) {
      vitrine::fuzz::Fail("ReadIdx: dims do not multiply out to the data");
    }
  }
  CheckShape(ReadVectors(idx), "ReadVectors(IDX)");
  return 0;
}
