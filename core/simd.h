// Distance kernels over float vectors and 8-bit scalar-quantised codes,
// chosen once at run time from the CPU: AVX-512, else AVX2 + FMA, else plain
// loops. Shared by the HNSW walk (index/vector_index.cc) and MMR's
// similarities (rank/diversify.cc).
//
// Why our own: Debian's FAISS is built for baseline x86-64 (SSE) only. What
// these kernels gained for the HNSW walk is measured in docs/bench.md, and
// for MMR in docs/rules.md.
//
// Results differ from a double-precision sum by float rounding only; the
// kernels are deterministic for a given CPU level (the order of the adds
// depends on d only).
#pragma once

#include <cstddef>
#include <cstdint>

namespace vitrine::simd {

// Distance between two float vectors of d elements.
using FloatKernel = float (*)(const float* x, const float* y, size_t d);
// 8-bit codes: L2 is sum_i (qp_i - scale_i * c_i)^2 with qp = q - vmin -
// scale / 2; inner product is bias + sum_i qs_i * c_i with qs = q * scale.
using Sq8Kernel = float (*)(const float* qp, const float* scale, const uint8_t* c, size_t d);

enum class Level { kBaseline, kAvx2, kAvx512 };

struct Kernels {
  Level level = Level::kBaseline;
  FloatKernel l2 = nullptr;  // sum_i (x_i - y_i)^2
  FloatKernel ip = nullptr;  // sum_i x_i y_i
  Sq8Kernel sq8_l2 = nullptr;
  Sq8Kernel sq8_ip = nullptr;
};

// The best kernels this CPU runs (thread-safe; decided on the first call).
const Kernels& Best();
// The kernels of one level, or null when this CPU cannot run them (tests
// compare every level the machine has).
const Kernels* ForLevel(Level level);

inline float InnerProduct(const float* x, const float* y, size_t d) { return Best().ip(x, y, d); }

}  // namespace vitrine::simd
