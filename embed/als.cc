#include "embed/als.h"

#include <cblas.h>
#include <omp.h>
#include <sys/mman.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>

#include "core/cluster.h"
#include "core/progress.h"

namespace vitrine {
namespace {

using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecF = Eigen::VectorXf;

// Initial factor scale, as implicit: uniform [0, 0.01).
constexpr float kInitScale = 0.01f;
// CG stops early once |r|^2 drops below this (implicit's threshold).
constexpr float kCgEpsilon = 1e-20f;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Factor rows are gathered at random (one per nonzero), so with 4 KiB pages
// nearly every gather also misses the TLB. Ask for transparent huge pages
// before the buffer is first touched (THP is often "madvise" only).
void AllocateFactors(size_t rows, size_t d, Matrix* out) {
  *out = Matrix();
  const size_t n = rows * d;
  out->data.reserve(n);
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(out->data.data());
  const uintptr_t lo = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (begin + n * sizeof(float)) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);  // a hint only
  out->data.resize(n);
  out->rows = rows;
  out->cols = d;
}

// Each row draws from its own stream keyed by (seed, salt, row), so the
// initial factors do not depend on how rows are split between threads.
void InitFactors(size_t rows, int d, uint64_t seed, uint64_t salt, int threads, Matrix* out) {
  AllocateFactors(rows, static_cast<size_t>(d), out);
  uint64_t key_state = seed ^ (salt * 0xD1B54A32D192ED03ull);
  const uint64_t key = SplitMix64(key_state);
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t r = 0; r < static_cast<int64_t>(rows); ++r) {
    uint64_t state = key ^ (static_cast<uint64_t>(r) * 0x9E3779B97F4A7C15ull);
    float* x = out->row(static_cast<size_t>(r));
    for (int k = 0; k < d; ++k) {
      x[k] = static_cast<float>(SplitMix64(state) >> 40) * (kInitScale / 16777216.0f);
    }
  }
}

// Y^T Y is summed in blocks of this many rows, block boundaries at fixed
// row numbers: each block by float syrk, the blocks added in double. Under
// MPI the ranks' rows start on block boundaries (kGramBlockRows is the
// split's alignment), so a rank's partial sum is a sum of whole blocks and
// the allreduce changes only double roundings; the factors then match one
// process's to float precision. (A single float syrk over all rows, summed
// differently by each split, made 3 ranks differ from 1 by 1% of the factor
// scale after 6 iterations: ALS amplifies last-bit changes of the Gramian.)
constexpr int64_t kGramBlockRows = 256;

// Y^T Y over rows [first, last) of Y into `sum` (d x d doubles, upper
// triangle), `first` a multiple of kGramBlockRows. OpenBLAS syrk per block:
// the one dense O(rows d^2) step per half-iteration.
void AddGram(const Matrix& y, size_t first, size_t last, std::vector<double>* sum) {
  const int d = static_cast<int>(y.cols);
  sum->assign(y.cols * y.cols, 0.0);
  std::vector<float> block(y.cols * y.cols);
  for (size_t begin = first; begin < last; begin += kGramBlockRows) {
    const int n = static_cast<int>(std::min<size_t>(kGramBlockRows, last - begin));
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0f, y.row(begin), d, 0.0f,
                block.data(), d);
    for (int i = 0; i < d; ++i) {
      for (int j = i; j < d; ++j) (*sum)[size_t(i) * d + j] += block[size_t(i) * d + j];
    }
  }
}

// The float Gramian (both triangles) from AddGram's sums.
void GramFromSums(const std::vector<double>& sum, size_t d, Matrix* g) {
  *g = Matrix(d, d, 0.0f);
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = i; j < d; ++j) g->at(i, j) = g->at(j, i) = static_cast<float>(sum[i * d + j]);
  }
}

// G = Y^T Y over every row of Y, in one process.
void Gram(const Matrix& y, Matrix* g) {
  std::vector<double> sum;
  AddGram(y, 0, y.rows, &sum);
  GramFromSums(sum, y.cols, g);
}

// unobserved_weight * G + ridge I. Scaling by 1 is exact, so the defaults
// give today's Gramian bit for bit.
Matrix ScaleAndRidge(Matrix g, float scale, float ridge) {
  for (float& v : g.data) v *= scale;
  for (size_t i = 0; i < g.rows; ++i) g.at(i, i) += ridge;
  return g;
}

// ---- Conjugate-gradient kernel -------------------------------------------
//
// The hot loop. Written as plain loops over a compile-time dimension (when
// it is a common one) so the compiler unrolls and vectorises them; the
// caller is compiled for several ISAs (target_clones) because the default
// build targets baseline x86-64. `omp simd reduction` lets the dot products
// vectorise without -ffast-math.

#define VITRINE_INLINE inline __attribute__((always_inline))

template <int kD>
struct Kernel {
  int d;
  VITRINE_INLINE int dim() const { return kD ? kD : d; }

  VITRINE_INLINE float Dot(const float* __restrict a, const float* __restrict b) const {
    const int n = dim();
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < n; ++k) s += a[k] * b[k];
    return s;
  }
  VITRINE_INLINE void Axpy(float t, const float* __restrict a, float* __restrict out) const {
    const int n = dim();
#pragma omp simd
    for (int k = 0; k < n; ++k) out[k] += t * a[k];
  }
  // out = G v for symmetric G: a sum of G's rows keeps the loop a row axpy.
  VITRINE_INLINE void Symv(const float* __restrict g, const float* __restrict v,
                           float* __restrict out) const {
    const int n = dim();
    for (int k = 0; k < n; ++k) out[k] = 0.0f;
    for (int j = 0; j < n; ++j) Axpy(v[j], g + static_cast<size_t>(j) * n, out);
  }
  VITRINE_INLINE void Prefetch(const float* row) const {
    const int n = dim();
    for (int k = 0; k < n; k += 16) __builtin_prefetch(row + k);
  }

  // Takacs et al. 2011: `steps` CG iterations on
  //   (G + ridge I + sum (c1 + shift) y y^T) x = sum (1 + c1) y,
  // c1 = alpha * w, shift = 1 - unobserved_weight, starting from the
  // current x. G is unobserved_weight * Y^T Y plus the ridge when it is the
  // same for every row (ridge = 0 then: the extra Axpy is skipped, which
  // keeps nu = 0 bit-identical to the old kernel). The first pass
  // prefetches kAhead entries ahead, past the row's end into the next rows'
  // items (idx[0, prefetch_end) is valid), so short rows start warm.
  VITRINE_INLINE void SolveRow(const float* __restrict g, const float* __restrict y,
                               const int32_t* __restrict idx, const float* __restrict w,
                               int64_t nnz, int64_t prefetch_end, float alpha, float shift,
                               float ridge, int steps, float* __restrict x,
                               float* __restrict scratch, int64_t) const {
    float* __restrict r = scratch;  // scratch holds 3 d-vectors
    float* __restrict p = scratch + dim();
    float* __restrict ap = scratch + 2 * dim();
    const int n = dim();
    constexpr int64_t kAhead = 4;  // rows prefetched ahead: hides the random gather
    auto yrow = [&](int64_t k) { return y + static_cast<size_t>(idx[k]) * n; };
    if (nnz == 0) {
      for (int k = 0; k < n; ++k) x[k] = 0.0f;
      return;
    }
    // r = b - A x
    Symv(g, x, r);
    if (ridge != 0.0f) Axpy(ridge, x, r);
    for (int k = 0; k < n; ++k) r[k] = -r[k];
    for (int64_t e = 0; e < nnz; ++e) {
      if (e + kAhead < prefetch_end) Prefetch(yrow(e + kAhead));
      const float* yi = yrow(e);
      const float c1 = alpha * w[e];
      Axpy((1.0f + c1) - (c1 + shift) * Dot(yi, x), yi, r);
    }
    for (int k = 0; k < n; ++k) p[k] = r[k];
    float rsold = Dot(r, r);
    if (rsold < kCgEpsilon) return;
    for (int it = 0; it < steps; ++it) {
      // ap = A p without forming A.
      Symv(g, p, ap);
      if (ridge != 0.0f) Axpy(ridge, p, ap);
      for (int64_t e = 0; e < nnz; ++e) {
        if (e + kAhead < nnz) Prefetch(yrow(e + kAhead));
        const float* yi = yrow(e);
        Axpy((alpha * w[e] + shift) * Dot(yi, p), yi, ap);
      }
      const float step = rsold / Dot(p, ap);
      Axpy(step, p, x);
      Axpy(-step, ap, r);
      const float rsnew = Dot(r, r);
      if (rsnew < kCgEpsilon) break;
      const float beta = rsnew / rsold;
      for (int k = 0; k < n; ++k) p[k] = r[k] + beta * p[k];
      rsold = rsnew;
    }
  }
};

// The same CG for d = 16 * kNV, with each d-vector held in kNV registers of
// 16 floats (GCC vector extensions; the default clone splits them into SSE
// pieces). Keeping x, r, p and A p in registers removes the store-to-load
// chains of the generic loops, and the dot products reduce as a tree.
typedef float V16 __attribute__((vector_size(64)));
typedef float V16u __attribute__((vector_size(64), aligned(4), may_alias));

template <int kNV>
struct VecKernel {
  static constexpr int kD = 16 * kNV;
  int d;  // == kD; kept so both kernels build the same way
  struct Vec {
    V16 v[kNV];
  };

  VITRINE_INLINE int dim() const { return kD; }
  static VITRINE_INLINE Vec Load(const float* p) {
    Vec r;
#pragma GCC unroll 8
    for (int i = 0; i < kNV; ++i) r.v[i] = *reinterpret_cast<const V16u*>(p + 16 * i);
    return r;
  }
  static VITRINE_INLINE void Store(const Vec& a, float* p) {
#pragma GCC unroll 8
    for (int i = 0; i < kNV; ++i) *reinterpret_cast<V16u*>(p + 16 * i) = a.v[i];
  }
  static VITRINE_INLINE float HSum(const V16& s) {
    const V16 a =
        s + __builtin_shufflevector(s, s, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    const V16 b = a + __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
    const V16 c = b + __builtin_shufflevector(b, b, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
    return c[0] + c[1];
  }
  static VITRINE_INLINE float Dot(const Vec& a, const Vec& b) {
    V16 s = a.v[0] * b.v[0];
#pragma GCC unroll 8
    for (int i = 1; i < kNV; ++i) s += a.v[i] * b.v[i];
    return HSum(s);
  }
  // out += t * a
  static VITRINE_INLINE void Axpy(float t, const Vec& a, Vec& out) {
#pragma GCC unroll 8
    for (int i = 0; i < kNV; ++i) out.v[i] += t * a.v[i];
  }
  // G v for symmetric G (row-major d x d): a sum of G's rows.
  static VITRINE_INLINE Vec Symv(const float* __restrict g, const Vec& v) {
    alignas(64) float s[kD];
    Store(v, s);
    Vec out{};
    for (int j = 0; j < kD; ++j) Axpy(s[j], Load(g + j * kD), out);
    return out;
  }
  static VITRINE_INLINE void Prefetch(const float* row) {
#pragma GCC unroll 8
    for (int k = 0; k < kD; k += 16) __builtin_prefetch(row + k);
  }

  // As Kernel::SolveRow; `buf` holds up to buf_rows gathered rows.
  VITRINE_INLINE void SolveRow(const float* __restrict g, const float* __restrict y,
                               const int32_t* __restrict idx, const float* __restrict w,
                               int64_t nnz, int64_t prefetch_end, float alpha, float shift,
                               float ridge, int steps, float* __restrict xp, float* __restrict buf,
                               int64_t buf_rows) const {
    constexpr int64_t kAhead = 16;
    auto yrow = [&](int64_t k) { return y + static_cast<size_t>(idx[k]) * kD; };
    if (nnz == 0) {
      Store(Vec{}, xp);
      return;
    }
    Vec x = Load(xp);
    Vec r = Symv(g, x);
    if (ridge != 0.0f) Axpy(ridge, x, r);
#pragma GCC unroll 8
    for (int i = 0; i < kNV; ++i) r.v[i] = -r.v[i];
    // Rows that fit the buffer are copied there on the first pass, so the
    // CG passes stream contiguous memory instead of gathering again.
    const bool gathered = nnz <= buf_rows;
    for (int64_t e = 0; e < nnz; ++e) {
      if (e + kAhead < prefetch_end) Prefetch(yrow(e + kAhead));
      const Vec yi = Load(yrow(e));
      if (gathered) Store(yi, buf + e * kD);
      const float c1 = alpha * w[e];
      Axpy((1.0f + c1) - (c1 + shift) * Dot(yi, x), yi, r);
    }
    Vec p = r;
    float rsold = Dot(r, r);
    if (rsold < kCgEpsilon) return;
    for (int it = 0; it < steps; ++it) {
      Vec ap = Symv(g, p);
      if (ridge != 0.0f) Axpy(ridge, p, ap);
      if (gathered) {
        for (int64_t e = 0; e < nnz; ++e) {
          const Vec yi = Load(buf + e * kD);
          Axpy((alpha * w[e] + shift) * Dot(yi, p), yi, ap);
        }
      } else {
        for (int64_t e = 0; e < nnz; ++e) {
          if (e + kAhead < nnz) Prefetch(yrow(e + kAhead));
          const Vec yi = Load(yrow(e));
          Axpy((alpha * w[e] + shift) * Dot(yi, p), yi, ap);
        }
      }
      const float step = rsold / Dot(p, ap);
      Axpy(step, p, x);
      Axpy(-step, ap, r);
      const float rsnew = Dot(r, r);
      if (rsnew < kCgEpsilon) break;
      const float beta = rsnew / rsold;
#pragma GCC unroll 8
      for (int i = 0; i < kNV; ++i) p.v[i] = r.v[i] + beta * p.v[i];
      rsold = rsnew;
    }
    Store(x, xp);
  }
};

// Building with -DVITRINE_ALS_BASELINE_ONLY compiles only the baseline
// kernels (used to test the code path of CPUs without AVX2).
#ifdef VITRINE_ALS_BASELINE_ONLY
#define VITRINE_CLONES
#else
#define VITRINE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

struct CgArgs {
  const CsrMatrix* rows;
  const float* gram;  // d x d: unobserved_weight Y^T Y, plus the ridge if constant
  const float* fixed;
  float alpha;
  float shift;         // 1 - unobserved_weight
  const float* ridge;  // per-row ridge (frequency-scaled), or null: in `gram`
  int steps;
  int d;
  int64_t buf_rows;  // rows of d floats in each thread's scratch (>= 3)
};

// Solves rows [begin, end) of `solved`; returns the first non-finite row or -1.
template <typename Kern>
VITRINE_INLINE int64_t CgRange(const CgArgs& a, int64_t begin, int64_t end, float* solved,
                               float* scratch) {
  const Kern kern{a.d};
  const int n = kern.dim();
  const CsrMatrix& m = *a.rows;
  for (int64_t u = begin; u < end; ++u) {
    const int64_t lo = m.indptr[u];
    float* x = solved + static_cast<size_t>(u) * n;
    const float ridge = a.ridge != nullptr ? a.ridge[u] : 0.0f;
    kern.SolveRow(a.gram, a.fixed, m.indices.data() + lo, m.values.data() + lo,
                  m.indptr[u + 1] - lo, m.nnz() - lo, a.alpha, a.shift, ridge, a.steps, x, scratch,
                  a.buf_rows);
    for (int k = 0; k < n; ++k) {
      if (!std::isfinite(x[k])) return u;
    }
  }
  return -1;
}

VITRINE_CLONES int64_t CgRange32(const CgArgs& a, int64_t b, int64_t e, float* s, float* t) {
  return CgRange<VecKernel<2>>(a, b, e, s, t);
}
VITRINE_CLONES int64_t CgRange64(const CgArgs& a, int64_t b, int64_t e, float* s, float* t) {
  return CgRange<VecKernel<4>>(a, b, e, s, t);
}
VITRINE_CLONES int64_t CgRange128(const CgArgs& a, int64_t b, int64_t e, float* s, float* t) {
  return CgRange<VecKernel<8>>(a, b, e, s, t);
}
VITRINE_CLONES int64_t CgRangeAny(const CgArgs& a, int64_t b, int64_t e, float* s, float* t) {
  return CgRange<Kernel<0>>(a, b, e, s, t);
}

void AtomicMin(std::atomic<int64_t>& target, int64_t v) {
  int64_t cur = target.load();
  while (v < cur && !target.compare_exchange_weak(cur, v)) {
  }
}

// One half-step with CG. Returns the first row whose solution is not finite,
// or -1.
// Solves rows [first, last) of `rows` only (a rank's block under MPI).
int64_t SolveCG(const CsrMatrix& rows, int64_t first, int64_t last, const Matrix& fixed,
                const Matrix& gram, float alpha, float shift, const float* ridge, int steps,
                int threads, Matrix* solved) {
  // Per-thread gather buffer: the longest row, capped so a popular item
  // with a million users does not need a copy of the user matrix per thread.
  constexpr int64_t kGatherFloats = int64_t{2} << 20;
  const int d = static_cast<int>(fixed.cols);
  int64_t longest = 0;
  for (int64_t u = first; u < last; ++u) longest = std::max(longest, rows.row_size(u));
  const int64_t buf_rows = std::max<int64_t>(3, std::min(longest, kGatherFloats / d));
  const CgArgs args{&rows, gram.data.data(), fixed.data.data(), alpha, shift, ridge, steps,
                    d,     buf_rows};
  auto* range = &CgRangeAny;
  if (args.d == 32) range = &CgRange32;
  if (args.d == 64) range = &CgRange64;
  if (args.d == 128) range = &CgRange128;
  std::atomic<int64_t> bad{INT64_MAX};
  // Small dynamic chunks: row lengths are heavy-tailed (popular items).
  constexpr int64_t kChunk = 64;
  const int64_t n = last;
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> scratch(static_cast<size_t>(buf_rows * d));
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = first; b < n; b += kChunk) {
      const int64_t r =
          range(args, b, std::min(n, b + kChunk), solved->data.data(), scratch.data());
      if (r >= 0) AtomicMin(bad, r);
    }
  }
  return bad == INT64_MAX ? -1 : bad.load();
}

// Exact solve for one row: A = G + ridge I + sum (c1 + shift) y y^T (as a
// rank-n update of the gathered rows sqrt(c1 + shift) y, which Eigen blocks
// like a GEMM), b = sum (1 + c1) y. G is as in CgArgs. A coefficient
// c1 + shift < 0 (unobserved_weight > 1 + alpha w) goes into a second,
// subtracted update; A stays positive definite, as it is the Gramian of the
// full weighted problem. Returns false if A is not positive definite.
struct ExactWorkspace {
  RowMatF ys, yneg, a;
  VecF b;
  Eigen::LLT<RowMatF, Eigen::Lower> llt;
};

bool SolveRowExact(const Eigen::Map<const RowMatF>& g, const Matrix& fixed, const int32_t* idx,
                   const float* w, int64_t n, float alpha, float shift, float ridge,
                   ExactWorkspace* ws, float* out) {
  const Eigen::Index d = g.rows();
  ws->ys.resize(n, d);
  ws->b.setZero(d);
  int64_t pos = 0, neg = 0;
  for (int64_t k = 0; k < n; ++k) {
    const Eigen::Map<const VecF> y(fixed.row(static_cast<size_t>(idx[k])), d);
    const float c1 = alpha * w[k];
    const float coef = c1 + shift;
    if (coef >= 0.0f) {
      ws->ys.row(pos++) = std::sqrt(coef) * y.transpose();
    } else {
      if (neg == 0) ws->yneg.resize(n, d);
      ws->yneg.row(neg++) = std::sqrt(-coef) * y.transpose();
    }
    ws->b += (1.0f + c1) * y;
  }
  ws->a = g;
  if (ridge != 0.0f) ws->a.diagonal().array() += ridge;
  // (Eigen's GEMM blocking divides by n: skip empty updates.)
  auto a = ws->a.selfadjointView<Eigen::Lower>();
  if (neg == 0) {
    if (n > 0) a.rankUpdate(ws->ys.transpose());
  } else {
    if (pos > 0) a.rankUpdate(ws->ys.topRows(pos).transpose());
    a.rankUpdate(ws->yneg.topRows(neg).transpose(), -1.0f);
  }
  ws->llt.compute(ws->a);
  if (ws->llt.info() != Eigen::Success) return false;
  Eigen::Map<VecF>(out, d) = ws->llt.solve(ws->b);
  return true;
}

// One half-step with an exact Cholesky solve per row; arguments as SolveCG.
int64_t SolveCholesky(const CsrMatrix& rows, int64_t first, int64_t last, const Matrix& fixed,
                      const Matrix& gram, float alpha, float shift, const float* ridge,
                      int threads, Matrix* solved) {
  const int d = static_cast<int>(fixed.cols);
  const Eigen::Map<const RowMatF> g(gram.data.data(), d, d);
  std::atomic<int64_t> bad{INT64_MAX};
#pragma omp parallel num_threads(threads)
  {
    ExactWorkspace ws;
#pragma omp for schedule(dynamic, 16)
    for (int64_t u = first; u < last; ++u) {
      const int64_t lo = rows.indptr[u];
      float* x = solved->row(static_cast<size_t>(u));
      if (!SolveRowExact(g, fixed, rows.indices.data() + lo, rows.values.data() + lo,
                         rows.indptr[u + 1] - lo, alpha, shift, ridge ? ridge[u] : 0.0f, &ws, x) ||
          !Eigen::Map<VecF>(x, d).allFinite()) {
        AtomicMin(bad, u);
      }
    }
  }
  return bad == INT64_MAX ? -1 : bad.load();
}

// implicit's `calculate_loss`, generalised: the objective divided by the
// total weight (sum over nonzeros of c plus unobserved_weight per unobserved
// pair). `gram` is unobserved_weight * Y^T Y without the ridge; `user_reg`
// and `item_reg` are the per-row ridges, or null for a constant `reg`.
// Per-row terms are summed in row order (deterministic).
//
// Under MPI each rank sums its own users and items (`users`, `items`: the
// row ranges) and the two sums are added across ranks; LossParts holds
// them, and Normalised() divides once they are complete.
struct LossParts {
  double loss = 0;  // the objective's terms over the rows summed
  double conf = 0;  // the observed confidences over the users summed
  double Normalised(const CsrMatrix& ui, float unobserved_weight) const {
    const double total_conf =
        conf + static_cast<double>(unobserved_weight) *
                   (static_cast<double>(ui.rows) * static_cast<double>(ui.cols) -
                    static_cast<double>(ui.nnz()));
    return total_conf > 0 ? loss / total_conf : 0.0;
  }
};

LossParts Loss(const CsrMatrix& ui, std::pair<int64_t, int64_t> users,
               std::pair<int64_t, int64_t> items, const Matrix& x, const Matrix& y,
               const Matrix& gram, float alpha, float unobserved_weight, float reg,
               const float* user_reg, const float* item_reg, int threads) {
  const int d = static_cast<int>(x.cols);
  const float shift = 1.0f - unobserved_weight;
  const Eigen::Map<const RowMatF> g(gram.data.data(), d, d);
  std::vector<double> row_loss(static_cast<size_t>(ui.rows));
  std::vector<double> row_conf(static_cast<size_t>(ui.rows));
#pragma omp parallel num_threads(threads)
  {
    VecF r(d);
#pragma omp for schedule(dynamic, 256)
    for (int64_t u = users.first; u < users.second; ++u) {
      const Eigen::Map<const VecF> xu(x.row(static_cast<size_t>(u)), d);
      // (A x - 2 b) . x + sum c, without forming A.
      r.noalias() = g * xu;
      double conf = 0;
      for (int64_t e = ui.indptr[u]; e < ui.indptr[u + 1]; ++e) {
        const Eigen::Map<const VecF> yi(y.row(static_cast<size_t>(ui.indices[e])), d);
        const float c1 = alpha * ui.values[e];
        r += (-2.0f * (1.0f + c1) + (c1 + shift) * yi.dot(xu)) * yi;
        conf += 1.0 + c1;
      }
      const float reg_u = user_reg != nullptr ? user_reg[u] : reg;
      row_loss[u] = conf + r.dot(xu) + reg_u * xu.squaredNorm();
      row_conf[u] = conf;
    }
  }
  LossParts parts;
  for (int64_t u = users.first; u < users.second; ++u) {
    parts.loss += row_loss[u];
    parts.conf += row_conf[u];
  }
  if (item_reg == nullptr) {
    double item_norm = 0;
    for (int64_t i = items.first; i < items.second; ++i) {
      for (float v : y.row_span(static_cast<size_t>(i))) item_norm += static_cast<double>(v) * v;
    }
    parts.loss += reg * item_norm;
  } else {
    for (int64_t i = items.first; i < items.second; ++i) {
      double norm = 0;
      for (float v : y.row_span(static_cast<size_t>(i))) norm += static_cast<double>(v) * v;
      parts.loss += item_reg[i] * norm;
    }
  }
  return parts;
}

// The same bounds as build.toml's [als] keys (engine/build_config.cc), so
// that a direct caller (the Python ImplicitALS) cannot ask for a run without
// end or a thread team the system cannot create.
constexpr int kMaxFactors = 4096;
constexpr int kMaxIterations = 1000;
constexpr int kMaxCgSteps = kMaxFactors;  // CG is exact after d steps; more change nothing
constexpr int kMaxThreads = 1024;

Status ValidateOptions(const AlsOptions& c) {
  if (c.factors < 1 || c.factors > kMaxFactors) {
    return Status::InvalidArgument("als: factors must be in [1, " + std::to_string(kMaxFactors) +
                                   "], got " + std::to_string(c.factors));
  }
  if (c.num_threads < 0 || c.num_threads > kMaxThreads) {
    return Status::InvalidArgument("als: num_threads must be in [0, " +
                                   std::to_string(kMaxThreads) + "] (0 = OpenMP's default), got " +
                                   std::to_string(c.num_threads));
  }
  if (!std::isfinite(c.regularization) || c.regularization < 0) {
    return Status::InvalidArgument("als: regularization must be finite and >= 0, got " +
                                   std::to_string(c.regularization));
  }
  if (!std::isfinite(c.alpha) || c.alpha < 0) {
    return Status::InvalidArgument("als: alpha must be finite and >= 0, got " +
                                   std::to_string(c.alpha));
  }
  if (c.iterations < 0 || c.iterations > kMaxIterations) {
    return Status::InvalidArgument("als: iterations must be in [0, " +
                                   std::to_string(kMaxIterations) + "], got " +
                                   std::to_string(c.iterations));
  }
  if (c.cg_steps < 1 || c.cg_steps > kMaxCgSteps) {
    return Status::InvalidArgument("als: cg_steps must be in [1, " + std::to_string(kMaxCgSteps) +
                                   "], got " + std::to_string(c.cg_steps));
  }
  if (!std::isfinite(c.unobserved_weight) || c.unobserved_weight < 0) {
    return Status::InvalidArgument("als: unobserved_weight must be finite and >= 0, got " +
                                   std::to_string(c.unobserved_weight));
  }
  if (!std::isfinite(c.reg_exponent) || c.reg_exponent < 0 || c.reg_exponent > 1) {
    return Status::InvalidArgument("als: reg_exponent must be in [0, 1], got " +
                                   std::to_string(c.reg_exponent));
  }
  return Status::OK();
}

// Rendle et al. 2022's frequency-scaled ridge for a row with `count`
// nonzeros out of `other` columns: regularization * (count +
// unobserved_weight * other)^reg_exponent. Computed in double; the caller
// checks that the float result is finite.
float ScaledRidge(const AlsOptions& c, int64_t count, int64_t other) {
  const double base = static_cast<double>(count) +
                      static_cast<double>(c.unobserved_weight) * static_cast<double>(other);
  return static_cast<float>(c.regularization * std::pow(base, static_cast<double>(c.reg_exponent)));
}

// ScaledRidge for every row of `m` (whose columns are the `other` side).
// Error if a ridge overflows float, naming the row.
Status RowRidges(const AlsOptions& c, const CsrMatrix& m, const char* what,
                 std::vector<float>* out) {
  out->resize(static_cast<size_t>(m.rows));
  for (int64_t r = 0; r < m.rows; ++r) {
    const float ridge = ScaledRidge(c, m.row_size(r), m.cols);
    if (!std::isfinite(ridge)) {
      return Status::InvalidArgument(
          std::string("als: ") + what + " row " + std::to_string(r) +
          ": regularization * (nonzeros + unobserved_weight * " + std::to_string(m.cols) +
          ")^reg_exponent overflows float; lower regularization or reg_exponent");
    }
    (*out)[static_cast<size_t>(r)] = ridge;
  }
  return Status::OK();
}

bool WeightOk(float w, float alpha) {
  return std::isfinite(w) && w >= 0 && std::isfinite(alpha * w);
}

Status BadWeight(const std::string& where, float w) {
  return Status::InvalidArgument("als: " + where + ": weight " + std::to_string(w) +
                                 " is not a finite value >= 0 (or alpha * weight overflows)");
}

Status ValidateCsr(const CsrMatrix& m, float alpha) {
  if (m.rows < 0 || m.cols < 0 || m.cols > INT32_MAX) {
    return Status::InvalidArgument("als: bad matrix shape " + std::to_string(m.rows) + " x " +
                                   std::to_string(m.cols));
  }
  if (m.indptr.size() != static_cast<size_t>(m.rows) + 1 || m.indptr[0] != 0 ||
      m.indptr.back() != m.nnz() || m.values.size() != m.indices.size()) {
    return Status::InvalidArgument(
        "als: malformed CSR (indptr must have rows+1 entries from 0 to nnz, values one per "
        "index)");
  }
  for (int64_t u = 0; u < m.rows; ++u) {
    if (m.indptr[u + 1] < m.indptr[u]) {
      return Status::InvalidArgument("als: malformed CSR: indptr decreases at user row " +
                                     std::to_string(u));
    }
    for (int64_t e = m.indptr[u]; e < m.indptr[u + 1]; ++e) {
      if (m.indices[e] < 0 || m.indices[e] >= m.cols) {
        return Status::InvalidArgument("als: user row " + std::to_string(u) + ": item column " +
                                       std::to_string(m.indices[e]) + " out of range [0, " +
                                       std::to_string(m.cols) + ")");
      }
      if (!WeightOk(m.values[e], alpha)) {
        return BadWeight(
            "user row " + std::to_string(u) + ", item column " + std::to_string(m.indices[e]),
            m.values[e]);
      }
    }
  }
  return Status::OK();
}

// The rows of one side (users or items) this process solves. Without a
// cluster it is every row; under MPI, rank r solves block r of a split
// balanced by nonzeros, and the solved blocks and the Gramian's partial
// sums travel by collectives, so every rank holds all factors after each
// half-step (as Spark MLlib's blocked ALS, with every factor block sent to
// every rank).
struct RowPartition {
  Cluster* cluster = nullptr;
  std::vector<int64_t> offsets;  // cluster size + 1 row offsets

  RowPartition(Cluster* c, const CsrMatrix& m) : cluster(c) {
    offsets = c != nullptr ? BalancedRowBlocks(m.indptr, c->size(), kGramBlockRows)
                           : std::vector<int64_t>{0, m.rows};
  }
  int64_t first() const { return offsets[cluster != nullptr ? cluster->rank() : 0]; }
  int64_t last() const { return offsets[cluster != nullptr ? cluster->rank() + 1 : 1]; }

  // Y^T Y over every rank's rows: each rank's partial sum (whole blocks,
  // in double), added by an allreduce.
  Status GlobalGram(const Matrix& y, Matrix* g) const {
    std::vector<double> sum;
    AddGram(y, static_cast<size_t>(first()), static_cast<size_t>(last()), &sum);
    if (cluster != nullptr) VITRINE_RETURN_IF_ERROR(cluster->AllreduceSum(sum));
    GramFromSums(sum, y.cols, g);
    return Status::OK();
  }

  // Sends this rank's solved rows to all ranks. `bad` is this rank's first
  // non-finite row or -1; returns the first over all ranks, so that every
  // rank stops together.
  Result<int64_t> Share(int64_t bad, Matrix* solved) const {
    if (cluster == nullptr) return bad;
    VITRINE_ASSIGN_OR_RETURN(int64_t first_bad, cluster->AllreduceMin(bad < 0 ? INT64_MAX : bad));
    if (first_bad != INT64_MAX) return first_bad;
    VITRINE_RETURN_IF_ERROR(
        cluster->AllgatherRows(solved->data, static_cast<int>(solved->cols), offsets));
    return int64_t{-1};
  }
};

Status NonFinite(const char* what, int64_t row, int iteration) {
  return Status::InvalidArgument(std::string("als: ") + what + " row " + std::to_string(row) +
                                 " has a non-finite factor (NaN/Inf) after iteration " +
                                 std::to_string(iteration) +
                                 "; lower alpha or the weights, or raise regularization");
}

}  // namespace

Status ImplicitALS::Fit(const CsrMatrix& user_items) {
  const AlsOptions& cfg = options_;
  VITRINE_RETURN_IF_ERROR(ValidateOptions(cfg));
  VITRINE_RETURN_IF_ERROR(ValidateCsr(user_items, cfg.alpha));
  const int d = cfg.factors;
  const int threads = cfg.num_threads > 0 ? cfg.num_threads : omp_get_max_threads();
  const size_t users = static_cast<size_t>(user_items.rows);
  const size_t items = static_cast<size_t>(user_items.cols);

  const bool warm = cfg.warm_start && user_factors_.rows == users && item_factors_.rows == items &&
                    user_factors_.cols == size_t(d) && item_factors_.cols == size_t(d);
  if (!warm) {
    InitFactors(users, d, cfg.seed, 1, threads, &user_factors_);
    InitFactors(items, d, cfg.seed, 2, threads, &item_factors_);
  }
  const CsrMatrix item_users = user_items.Transposed();

  // With reg_exponent = 0 the ridge is the same for every row and lives in
  // the Gramian, exactly as before these options existed; otherwise each row
  // carries its own.
  const bool per_row_ridge = cfg.reg_exponent != 0.0f;
  std::vector<float> user_reg, item_reg;
  if (per_row_ridge) {
    VITRINE_RETURN_IF_ERROR(RowRidges(cfg, user_items, "user", &user_reg));
    VITRINE_RETURN_IF_ERROR(RowRidges(cfg, item_users, "item", &item_reg));
  }
  const float shift = 1.0f - cfg.unobserved_weight;
  const RowPartition user_rows(cfg.cluster, user_items), item_rows(cfg.cluster, item_users);
  auto solve = [&](const CsrMatrix& rows, const RowPartition& part, const Matrix& fixed,
                   const Matrix& gram_no_ridge, const std::vector<float>& row_reg,
                   Matrix* solved) {
    const Matrix g = ScaleAndRidge(gram_no_ridge, cfg.unobserved_weight,
                                   per_row_ridge ? 0.0f : cfg.regularization);
    const float* ridge = per_row_ridge ? row_reg.data() : nullptr;
    const int64_t bad =
        cfg.solver == AlsSolver::kCholesky
            ? SolveCholesky(rows, part.first(), part.last(), fixed, g, cfg.alpha, shift, ridge,
                            threads, solved)
            : SolveCG(rows, part.first(), part.last(), fixed, g, cfg.alpha, shift, ridge,
                      cfg.cg_steps, threads, solved);
    return part.Share(bad, solved);
  };

  Matrix item_gram, user_gram;
  const auto fit_start = std::chrono::steady_clock::now();
  VITRINE_RETURN_IF_ERROR(item_rows.GlobalGram(item_factors_, &item_gram));
  for (int it = 1; it <= cfg.iterations; ++it) {
    const auto start = std::chrono::steady_clock::now();
    VITRINE_ASSIGN_OR_RETURN(
        int64_t bad, solve(user_items, user_rows, item_factors_, item_gram, user_reg,
                           &user_factors_));
    if (bad >= 0) return NonFinite("user", bad, it);
    VITRINE_RETURN_IF_ERROR(user_rows.GlobalGram(user_factors_, &user_gram));
    const auto users_done = std::chrono::steady_clock::now();
    VITRINE_ASSIGN_OR_RETURN(
        bad, solve(item_users, item_rows, user_factors_, user_gram, item_reg, &item_factors_));
    if (bad >= 0) return NonFinite("item", bad, it);
    VITRINE_RETURN_IF_ERROR(item_rows.GlobalGram(item_factors_, &item_gram));
    const auto end = std::chrono::steady_clock::now();
    AlsIterationInfo info;
    info.iteration = it;
    info.seconds = std::chrono::duration<double>(end - start).count();
    const double user_s = std::chrono::duration<double>(users_done - start).count();
    char loss[64] = "";
    if (cfg.compute_loss) {
      LossParts parts =
          Loss(user_items, {user_rows.first(), user_rows.last()},
               {item_rows.first(), item_rows.last()}, user_factors_, item_factors_,
               ScaleAndRidge(item_gram, cfg.unobserved_weight, 0.0f), cfg.alpha,
               cfg.unobserved_weight, cfg.regularization, per_row_ridge ? user_reg.data() : nullptr,
               per_row_ridge ? item_reg.data() : nullptr, threads);
      if (cfg.cluster != nullptr) {
        double sums[2] = {parts.loss, parts.conf};
        VITRINE_RETURN_IF_ERROR(cfg.cluster->AllreduceSum(sums));
        parts = {sums[0], sums[1]};
      }
      info.loss = parts.Normalised(user_items, cfg.unobserved_weight);
      std::snprintf(loss, sizeof(loss), ", loss %.6g", info.loss);
    }
    const double so_far = std::chrono::duration<double>(end - fit_start).count();
    LogInfo("als: iteration %d/%d: %.3f s (users %.3f s, items %.3f s)%s, ETA %s", it,
            cfg.iterations, info.seconds, user_s, info.seconds - user_s, loss,
            FormatDuration(so_far / it * (cfg.iterations - it)).c_str());
    if (cfg.on_iteration) cfg.on_iteration(*this, info);
  }
  item_gram_ = ScaleAndRidge(std::move(item_gram), cfg.unobserved_weight, 0.0f);
  return Status::OK();
}

Status ImplicitALS::SetFactors(Matrix user_factors, Matrix item_factors) {
  VITRINE_RETURN_IF_ERROR(ValidateOptions(options_));
  const size_t d = static_cast<size_t>(options_.factors);
  if (user_factors.cols != d || item_factors.cols != d) {
    return Status::InvalidArgument("als: factors have " + std::to_string(user_factors.cols) +
                                   " (users) and " + std::to_string(item_factors.cols) +
                                   " (items) columns, expected " + std::to_string(d));
  }
  for (const auto* m : {&user_factors, &item_factors}) {
    for (size_t r = 0; r < m->rows; ++r) {
      for (size_t k = 0; k < d; ++k) {
        if (!std::isfinite(m->at(r, k))) {
          return NonFinite(m == &user_factors ? "user" : "item", static_cast<int64_t>(r), 0);
        }
      }
    }
  }
  user_factors_ = std::move(user_factors);
  item_factors_ = std::move(item_factors);
  Matrix g;
  Gram(item_factors_, &g);
  item_gram_ = ScaleAndRidge(std::move(g), options_.unobserved_weight, 0.0f);
  return Status::OK();
}

Result<std::vector<float>> ImplicitALS::FoldIn(std::span<const int32_t> items,
                                                std::span<const float> weights) const {
  const int d = options_.factors;
  if (item_gram_.rows != static_cast<size_t>(d)) {
    return Status::InvalidArgument("als: FoldIn needs a fitted model (call Fit or SetFactors)");
  }
  if (items.size() != weights.size()) {
    return Status::InvalidArgument("als: FoldIn got " + std::to_string(items.size()) +
                                   " items but " + std::to_string(weights.size()) + " weights");
  }
  // Merge repeated items (sum of weights), as aggregation does for training.
  std::vector<std::pair<int32_t, float>> hist(items.size());
  for (size_t k = 0; k < items.size(); ++k) {
    if (items[k] < 0 || static_cast<size_t>(items[k]) >= item_factors_.rows) {
      return Status::InvalidArgument("als: FoldIn history entry " + std::to_string(k) +
                                     ": item row " + std::to_string(items[k]) +
                                     " out of range [0, " + std::to_string(item_factors_.rows) +
                                     ")");
    }
    hist[k] = {items[k], weights[k]};
  }
  std::sort(hist.begin(), hist.end());
  size_t n = 0;
  for (size_t k = 0; k < hist.size(); ++k) {
    if (n > 0 && hist[n - 1].first == hist[k].first) {
      hist[n - 1].second += hist[k].second;
    } else {
      hist[n++] = hist[k];
    }
  }
  hist.resize(n);

  // A = G + Ys^T Ys where row k of Ys is sqrt(c1_k) y_k; b = sum c_k y_k.
  std::vector<int32_t> idx(n);
  std::vector<float> w(n);
  for (size_t k = 0; k < n; ++k) {
    std::tie(idx[k], w[k]) = hist[k];
    if (!WeightOk(w[k], options_.alpha)) {
      return BadWeight("FoldIn: item row " + std::to_string(idx[k]), w[k]);
    }
  }
  // The ridge Fit() gave a user with this history (n distinct items).
  const float ridge = options_.reg_exponent == 0.0f
                          ? options_.regularization
                          : ScaledRidge(options_, static_cast<int64_t>(n),
                                        static_cast<int64_t>(item_factors_.rows));
  if (!std::isfinite(ridge)) {
    return Status::InvalidArgument("als: FoldIn: the frequency-scaled ridge overflows float");
  }
  ExactWorkspace ws;
  std::vector<float> x(static_cast<size_t>(d));
  if (!SolveRowExact(Eigen::Map<const RowMatF>(item_gram_.data.data(), d, d), item_factors_,
                     idx.data(), w.data(), static_cast<int64_t>(n), options_.alpha,
                     1.0f - options_.unobserved_weight, ridge, &ws, x.data())) {
    return Status::InvalidArgument(
        "als: FoldIn: normal equations are not positive definite (regularization 0?)");
  }
  for (float v : x) {
    if (!std::isfinite(v)) return Status::InvalidArgument("als: FoldIn: non-finite result");
  }
  return x;
}

}  // namespace vitrine
