// HnswlibPeer (benchlib/hnswlib_peer.h): hnswlib 0.6 compiled for
// AVX-512, as its reference numbers were measured with -march=native.
//
// Why a separate translation unit with a target pragma: CMake builds the
// project for the baseline x86-64 ISA, and hnswlib picks its SIMD distance
// kernels at compile time from __AVX512F__ / __AVX__. Every standard header
// hnswlib uses is included *before* the pragma, so the std templates it
// instantiates (shared with other translation units) stay baseline code;
// only hnswlib's own functions are AVX-512.
#include "benchlib/hnswlib_peer.h"

#include <assert.h>
#include <cpuid.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <deque>
#include <fstream>
#include <iostream>
#include <list>
#include <mutex>
#include <queue>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
// GCC's target pragma does not define __AVX__ / __AVX512F__, from which
// hnswlib.h derives these; define them as -march=native would.
#define USE_SSE
#define USE_AVX
#define USE_AVX512
#include <hnswlib/hnswlib.h>

namespace vitrine {

struct HnswlibPeer::Impl {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  size_t n = 0;
};

HnswlibPeer::HnswlibPeer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HnswlibPeer::~HnswlibPeer() = default;

Result<std::unique_ptr<HnswlibPeer>> HnswlibPeer::Build(const Matrix& vectors, Metric metric, int m,
                                                        int ef_construction, int build_threads) {
  if (!__builtin_cpu_supports("avx512f")) {
    return Status::Unsupported("hnswlib peer: this CPU has no AVX-512F");
  }
  if (vectors.rows == 0) return Status::InvalidArgument("hnswlib peer: no vectors");
  auto impl = std::make_unique<Impl>();
  impl->n = vectors.rows;
  if (metric == Metric::kL2) {
    impl->space = std::make_unique<hnswlib::L2Space>(vectors.cols);
  } else {
    impl->space = std::make_unique<hnswlib::InnerProductSpace>(vectors.cols);
  }
  impl->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      impl->space.get(), vectors.rows, static_cast<size_t>(m),
      static_cast<size_t>(ef_construction));
  // Point 0 first (it becomes the entry point), then the rest in parallel as
  // hnswlib's own Python bindings do.
  impl->graph->addPoint(vectors.row(0), 0);
  std::atomic<size_t> next{1};
  auto work = [&] {
    for (size_t i = next++; i < vectors.rows; i = next++) impl->graph->addPoint(vectors.row(i), i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < build_threads; ++t) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  return std::unique_ptr<HnswlibPeer>(new HnswlibPeer(std::move(impl)));
}

void HnswlibPeer::SetEf(int ef) { impl_->graph->setEf(static_cast<size_t>(ef)); }

Status HnswlibPeer::Search(const float* queries, size_t n, int k, int64_t* labels) const {
  const size_t d = *static_cast<size_t*>(impl_->space->get_dist_func_param());
  for (size_t q = 0; q < n; ++q) {
    auto heap = impl_->graph->searchKnn(queries + q * d, static_cast<size_t>(k));
    int64_t* out = labels + q * k;
    std::fill(out, out + k, -1);
    // The heap pops the farthest first.
    for (int j = static_cast<int>(heap.size()) - 1; j >= 0; --j) {
      out[j] = static_cast<int64_t>(heap.top().second);
      heap.pop();
    }
  }
  return Status::OK();
}

double HnswlibPeer::BytesPerVector() const {
  // Level 0 (vector, links, label) plus the upper-level link lists.
  const auto& g = *impl_->graph;
  double bytes = static_cast<double>(g.size_data_per_element_);
  bytes += static_cast<double>(g.size_links_per_element_) * g.mult_;
  return bytes;
}

}  // namespace vitrine

#pragma GCC pop_options
