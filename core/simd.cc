#include "core/simd.h"

#include <immintrin.h>

namespace vitrine::simd {
namespace {

float L2Scalar(const float* x, const float* y, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += (x[i] - y[i]) * (x[i] - y[i]);
  return s;
}

float IpScalar(const float* x, const float* y, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += x[i] * y[i];
  return s;
}

float Sq8L2Scalar(const float* qp, const float* scale, const uint8_t* c, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) {
    const float t = qp[i] - scale[i] * c[i];
    s += t * t;
  }
  return s;
}

float Sq8IpScalar(const float* qs, const float*, const uint8_t* c, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += qs[i] * c[i];
  return s;
}

// Halves, then quarters, ... (not _mm512_reduce_add_ps: GCC 12 warns about
// its undefined upper lanes; a store and 16 scalar adds in a chain made 200
// similarities of 193 floats 8-16% slower in a microbenchmark).
__attribute__((target("avx512f"))) float HorizontalSum512(__m512 v) {
  // 128-bit lanes: (0+2, 1+3, ..), then (0+2)+(1+3) in lane 0.
  const __m512 h = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xEE));
  const __m512 q = _mm512_add_ps(h, _mm512_maskz_shuffle_f32x4(0xFFFF, h, h, 0x55));
  const __m128 s = _mm512_maskz_extractf32x4_ps(0xF, q, 0);
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

__attribute__((target("avx512f"))) float L2Avx512(const float* x, const float* y, size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16));
    a0 = _mm512_fmadd_ps(d0, d0, a0);
    a1 = _mm512_fmadd_ps(d1, d1, a1);
  }
  for (; i < d; i += 16) {
    const __mmask16 m = d - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (d - i)) - 1);
    const __m512 t =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
    a0 = _mm512_fmadd_ps(t, t, a0);
  }
  return HorizontalSum512(_mm512_add_ps(a0, a1));
}

__attribute__((target("avx512f"))) float IpAvx512(const float* x, const float* y, size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
  }
  for (; i < d; i += 16) {
    const __mmask16 m = d - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (d - i)) - 1);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a0);
  }
  return HorizontalSum512(_mm512_add_ps(a0, a1));
}

__attribute__((target("avx2,fma"))) float HorizontalSum256(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

__attribute__((target("avx2,fma"))) float L2Avx2(const float* x, const float* y, size_t d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
    a0 = _mm256_fmadd_ps(d0, d0, a0);
    a1 = _mm256_fmadd_ps(d1, d1, a1);
  }
  return HorizontalSum256(_mm256_add_ps(a0, a1)) + L2Scalar(x + i, y + i, d - i);
}

__attribute__((target("avx2,fma"))) float IpAvx2(const float* x, const float* y, size_t d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
  }
  return HorizontalSum256(_mm256_add_ps(a0, a1)) + IpScalar(x + i, y + i, d - i);
}

__attribute__((target("avx512f"))) __m512 Load16Codes(const uint8_t* c) {
  // The maskz forms: the plain ones trip GCC 12's -Wmaybe-uninitialized.
  const __m512i w =
      _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
  return _mm512_maskz_cvtepi32_ps(0xFFFF, w);
}

__attribute__((target("avx512f"))) float Sq8L2Avx512(const float* qp, const float* scale,
                                                     const uint8_t* c, size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 t0 =
        _mm512_fnmadd_ps(_mm512_loadu_ps(scale + i), Load16Codes(c + i), _mm512_loadu_ps(qp + i));
    const __m512 t1 = _mm512_fnmadd_ps(_mm512_loadu_ps(scale + i + 16), Load16Codes(c + i + 16),
                                       _mm512_loadu_ps(qp + i + 16));
    a0 = _mm512_fmadd_ps(t0, t0, a0);
    a1 = _mm512_fmadd_ps(t1, t1, a1);
  }
  for (; i + 16 <= d; i += 16) {
    const __m512 t =
        _mm512_fnmadd_ps(_mm512_loadu_ps(scale + i), Load16Codes(c + i), _mm512_loadu_ps(qp + i));
    a0 = _mm512_fmadd_ps(t, t, a0);
  }
  return HorizontalSum512(_mm512_add_ps(a0, a1)) + Sq8L2Scalar(qp + i, scale + i, c + i, d - i);
}

__attribute__((target("avx512f"))) float Sq8IpAvx512(const float* qs, const float* scale,
                                                     const uint8_t* c, size_t d) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i), Load16Codes(c + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i + 16), Load16Codes(c + i + 16), a1);
  }
  for (; i + 16 <= d; i += 16)
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qs + i), Load16Codes(c + i), a0);
  return HorizontalSum512(_mm512_add_ps(a0, a1)) + Sq8IpScalar(qs + i, scale + i, c + i, d - i);
}

__attribute__((target("avx2,fma"))) __m256 Load8Codes(const uint8_t* c) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}

__attribute__((target("avx2,fma"))) float Sq8L2Avx2(const float* qp, const float* scale,
                                                    const uint8_t* c, size_t d) {
  __m256 a0 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 t =
        _mm256_fnmadd_ps(_mm256_loadu_ps(scale + i), Load8Codes(c + i), _mm256_loadu_ps(qp + i));
    a0 = _mm256_fmadd_ps(t, t, a0);
  }
  return HorizontalSum256(a0) + Sq8L2Scalar(qp + i, scale + i, c + i, d - i);
}

__attribute__((target("avx2,fma"))) float Sq8IpAvx2(const float* qs, const float* scale,
                                                    const uint8_t* c, size_t d) {
  __m256 a0 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= d; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qs + i), Load8Codes(c + i), a0);
  return HorizontalSum256(a0) + Sq8IpScalar(qs + i, scale + i, c + i, d - i);
}

}  // namespace

const Kernels* ForLevel(Level level) {
  static const Kernels kBaseline{Level::kBaseline, L2Scalar, IpScalar, Sq8L2Scalar, Sq8IpScalar};
  static const Kernels kAvx2{Level::kAvx2, L2Avx2, IpAvx2, Sq8L2Avx2, Sq8IpAvx2};
  static const Kernels kAvx512{Level::kAvx512, L2Avx512, IpAvx512, Sq8L2Avx512, Sq8IpAvx512};
  switch (level) {
    case Level::kBaseline:
      return &kBaseline;
    case Level::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &kAvx2 : nullptr;
    case Level::kAvx512:
      return __builtin_cpu_supports("avx512f") ? &kAvx512 : nullptr;
  }
  return nullptr;
}

const Kernels& Best() {
  static const Kernels& k = ForLevel(Level::kAvx512) ? *ForLevel(Level::kAvx512)
                            : ForLevel(Level::kAvx2) ? *ForLevel(Level::kAvx2)
                                                     : *ForLevel(Level::kBaseline);
  return k;
}

}  // namespace vitrine::simd
