#include "embed/ease.h"

#include <cmath>
#include <string>
#include <vector>

// LAPACK from OpenBLAS. The trailing size_t is gfortran's hidden length of the
// character argument.
extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t uplo_len);
void spotri_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t uplo_len);
}

namespace vitrine {

Result<Matrix> FitEase(const CsrMatrix& train, double lambda, int64_t max_items) {
  if (!(lambda > 0) || !std::isfinite(lambda)) {
    return Status::InvalidArgument("ease: lambda must be finite and > 0, got " +
                                   std::to_string(lambda));
  }
  const int64_t n = train.cols;
  if (n > max_items) {
    const double gib = static_cast<double>(n) * static_cast<double>(n) * 4.0 / (1 << 30);
    return Status::Unsupported("ease: " + std::to_string(n) + " items is more than max_items=" +
                               std::to_string(max_items) + " (the dense model would need " +
                               std::to_string(static_cast<int64_t>(std::ceil(gib))) + " GiB)");
  }
  if (n == 0) return Matrix();
  const CsrMatrix by_item = train.Transposed();

  // Everything happens in one n x n buffer, the model's own: G, then its
  // Cholesky factor, then P = G^-1 (lower triangle), then B.
  Matrix m(static_cast<size_t>(n), static_cast<size_t>(n));
  float* d = m.data.data();
  // G = X^T X + lambda I. G is symmetric, so row i = column i; each thread
  // writes only the rows of its items.
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < n; ++i) {
    float* row = d + i * n;
    for (int64_t p = by_item.indptr[i]; p < by_item.indptr[i + 1]; ++p) {
      const int32_t u = by_item.indices[p];
      for (int64_t q = train.indptr[u]; q < train.indptr[u + 1]; ++q) row[train.indices[q]] += 1;
    }
    row[i] += static_cast<float>(lambda);
  }

  // LAPACK potrf + potri: about 5x faster than Eigen's LLT plus a solve
  // against the identity, and in place. Column-major lower triangle =
  // row-major upper triangle: afterwards d[r * n + c] = P(r, c) for c >= r.
  const int ni = static_cast<int>(n);
  int info = 0;
  const char uplo = 'L';
  spotrf_(&uplo, &ni, d, &ni, &info, 1);
  if (info == 0) spotri_(&uplo, &ni, d, &ni, &info, 1);
  if (info != 0) {
    return Status::Internal("ease: X^T X + lambda I is not positive definite (lambda=" +
                            std::to_string(lambda) + ", LAPACK info " + std::to_string(info) +
                            ")");
  }

  // B[r][c] = -P[r][c] / P[c][c], B[c][c] = 0, row-major. Entries (r,c) and
  // (c,r) are rewritten together from P(r, c) by the thread owning row r.
  std::vector<float> diag(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) diag[j] = d[j * n + j];
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < n; ++r) {
    d[r * n + r] = 0.0f;
    for (int64_t c = r + 1; c < n; ++c) {
      const float prc = d[r * n + c];
      d[r * n + c] = -prc / diag[c];
      d[c * n + r] = -prc / diag[r];
    }
  }
  return m;
}

}  // namespace vitrine
