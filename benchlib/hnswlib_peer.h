// HnswlibPeer: hnswlib as a peer index that `vitrine bench` compares against
// (library vitrine_benchlib; the server never links it).
//
//   auto peer = HnswlibPeer::Build(vectors, Metric::kL2, 16, 100, threads);
//   (*peer)->SetEf(64);
//   (*peer)->Search(queries, n, k, labels);  // n * k labels, -1 padded
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/matrix.h"
#include "core/status.h"
#include "index/vector_index.h"  // Metric

namespace vitrine {

// hnswlib (header-only, 0.6.x) as a peer. Its translation unit is compiled
// for AVX-512 (as hnswlib's reference numbers were, with -march=native), so
// Build fails with Unsupported on CPUs without AVX-512F.
// Search is safe to call concurrently; SetEf is not.
class HnswlibPeer {
 public:
  ~HnswlibPeer();
  // Builds an M / ef_construction graph over `vectors` (copied) with
  // `build_threads` threads. L2 or inner product (hnswlib's 1 - ip).
  static Result<std::unique_ptr<HnswlibPeer>> Build(const Matrix& vectors, Metric metric, int m,
                                                    int ef_construction, int build_threads);
  void SetEf(int ef);
  Status Search(const float* queries, size_t n, int k, int64_t* labels) const;
  double BytesPerVector() const;

 private:
  struct Impl;
  explicit HnswlibPeer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vitrine
