// Readers and writers for the array formats vitrine exchanges with other
// tools. Every reader rejects truncated or malformed input with a message
// naming the file and what was expected; none trusts a header's sizes without
// checking them against the bytes present.
//
//  .npy   NumPy format v1.0-3.0, C order, dtype '<f4' (float32) or '<i8'
//         (int64), 1-D (read as n x 1) or 2-D. Anything else (Fortran order,
//         float64, big-endian, 3-D) is rejected: convert with numpy first.
//  .fvecs / .ivecs  (TEXMEX): per row an int32 dimension d then d float32 /
//         int32 values; every row must have the same d.
//  IDX    (MNIST): magic 0x00 0x00 0x08 <ndim>, big-endian uint32 sizes, then
//         ubyte data. Plain or gzip (detected by magic). Images n x h x w are
//         returned as n x (h*w) with the shape kept in `dims`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

Result<Matrix> ReadNpyF32(const std::filesystem::path& path);
Result<MatrixI64> ReadNpyI64(const std::filesystem::path& path);
Status WriteNpy(const std::filesystem::path& path, const Matrix& m);
Status WriteNpy(const std::filesystem::path& path, const MatrixI64& m);

Result<Matrix> ReadFvecs(const std::filesystem::path& path);
Result<DenseMatrix<int32_t>> ReadIvecs(const std::filesystem::path& path);
Status WriteFvecs(const std::filesystem::path& path, const Matrix& m);
Status WriteIvecs(const std::filesystem::path& path, const DenseMatrix<int32_t>& m);

struct IdxArray {
  std::vector<uint32_t> dims;  // e.g. {60000, 28, 28} or {60000} for labels
  MatrixU8 data;               // dims[0] x prod(dims[1:]) (x 1 for 1-D)
};
Result<IdxArray> ReadIdx(const std::filesystem::path& path);
// Writes ubyte IDX; gzip-compressed if `gzip`. `dims` must multiply out to
// data.rows * data.cols.
Status WriteIdx(const std::filesystem::path& path, const IdxArray& arr, bool gzip);

// Reads any float vector file by extension: .npy, .fvecs, or IDX
// (.idx, -ubyte, .gz) converted to float. A NaN or infinite value is
// InvalidArgument naming the file, row and column (from 0). Every vector file
// a user hands vitrine comes through here: `vitrine bench` base and query
// vectors, precomputed visual vectors.
Result<Matrix> ReadVectors(const std::filesystem::path& path);

// The shape of a 2-D (or 1-D, as n x 1) .npy file of float32 or int64, read
// from its header alone, with the data size checked against the file size:
// what a reader needs to validate a manifest without loading the array.
struct NpyShape {
  size_t rows = 0;
  size_t cols = 0;
};
Result<NpyShape> ReadNpyShape(const std::filesystem::path& path);

}  // namespace vitrine
