#include "core/matrix.h"

#include <cmath>

namespace vitrine {

double DotDouble(const float* a, const float* b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

void NormalizeInPlace(float* v, size_t n) {
  const double norm = std::sqrt(DotDouble(v, v, n));
  if (norm == 0) return;
  const float inv = static_cast<float>(1.0 / norm);
  for (size_t i = 0; i < n; ++i) v[i] *= inv;
}

CsrMatrix CsrMatrix::Transposed() const {
  CsrMatrix t;
  t.rows = cols;
  t.cols = rows;
  t.indptr.assign(static_cast<size_t>(cols) + 1, 0);
  for (int32_t c : indices) ++t.indptr[static_cast<size_t>(c) + 1];
  for (int64_t c = 0; c < cols; ++c) t.indptr[c + 1] += t.indptr[c];
  t.indices.resize(indices.size());
  t.values.resize(values.size());
  std::vector<int64_t> next(t.indptr.begin(), t.indptr.end() - 1);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t p = indptr[r]; p < indptr[r + 1]; ++p) {
      const int64_t q = next[indices[p]]++;
      t.indices[q] = static_cast<int32_t>(r);
      t.values[q] = values[p];
    }
  }
  return t;  // rows visited in order, so each column list is sorted
}

}  // namespace vitrine
