// Dense and sparse containers shared by every stage.
//
// Buffer convention (stated once, as in FAISS): a set of n vectors of
// dimension d is one contiguous row-major n x d float buffer; row i starts at
// data[i * d]. Never vector<vector<float>>.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vitrine {

// Row-major dense matrix of T. Cheap to move; copying copies the buffer.
template <typename T>
struct DenseMatrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<T> data;  // rows * cols, row-major

  DenseMatrix() = default;
  DenseMatrix(size_t r, size_t c, T fill = T()) : rows(r), cols(c), data(r * c, fill) {}

  T* row(size_t i) { return data.data() + i * cols; }
  const T* row(size_t i) const { return data.data() + i * cols; }
  std::span<T> row_span(size_t i) { return {row(i), cols}; }
  std::span<const T> row_span(size_t i) const { return {row(i), cols}; }
  T& at(size_t i, size_t j) { return data[i * cols + j]; }
  const T& at(size_t i, size_t j) const { return data[i * cols + j]; }
  bool empty() const { return rows == 0; }
};

using Matrix = DenseMatrix<float>;
using MatrixI64 = DenseMatrix<int64_t>;
using MatrixU8 = DenseMatrix<uint8_t>;

// Rows `keep` of `m`, in that order (each index in [0, m.rows)).
template <typename T>
DenseMatrix<T> SelectRows(const DenseMatrix<T>& m, const std::vector<int32_t>& keep) {
  DenseMatrix<T> out(keep.size(), m.cols);
  for (size_t i = 0; i < keep.size(); ++i) {
    std::copy_n(m.row(static_cast<size_t>(keep[i])), m.cols, out.row(i));
  }
  return out;
}

// Compressed sparse rows: row r's entries are indices/values in
// [indptr[r], indptr[r+1]). Column indices within a row are sorted and unique.
struct CsrMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int64_t> indptr;  // rows + 1
  std::vector<int32_t> indices;
  std::vector<float> values;

  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
  int64_t row_size(int64_t r) const { return indptr[r + 1] - indptr[r]; }

  // The transpose (CSC of this matrix viewed as CSR), sorted, O(nnz).
  CsrMatrix Transposed() const;
};

// <a, b> over n floats, summed in double: for norms and cosines, where a
// float sum of many products loses the last digits. The hot loops use the
// float kernels of core/simd.h instead.
double DotDouble(const float* a, const float* b, size_t n);

// Scales v (n floats) to unit L2 norm, its norm summed in double; a zero
// vector stays zero.
void NormalizeInPlace(float* v, size_t n);

}  // namespace vitrine
