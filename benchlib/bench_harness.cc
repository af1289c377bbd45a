// CSV rows, the Pareto frontier and random filters for `vitrine bench`.
#include "benchlib/bench_harness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

namespace vitrine {
namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::vector<std::string> BenchCsvHeader() {
  return {"index",  "params", "k",       "recall",           "qps",
          "p50_us", "p99_us", "build_s", "bytes_per_vector", "threads"};
}

std::vector<std::string> BenchCsvCells(const BenchRow& r) {
  return {r.index,
          r.params,
          std::to_string(r.k),
          Fixed(r.recall, 4),
          Fixed(r.qps, 1),
          Fixed(r.p50_us, 1),
          Fixed(r.p99_us, 1),
          Fixed(r.build_s, 2),
          Fixed(r.bytes_per_vector, 1),
          std::to_string(r.threads)};
}

std::vector<size_t> ParetoFrontier(const std::vector<BenchRow>& rows) {
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) order[i] = i;
  // Best recall first (ties: best qps, then first row); keep a row when its
  // qps beats every row of higher (or equal) recall seen so far.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (rows[a].recall != rows[b].recall) return rows[a].recall > rows[b].recall;
    return rows[a].qps > rows[b].qps;
  });
  std::vector<size_t> out;
  double best_qps = -1;
  for (size_t i : order) {
    if (rows[i].qps > best_qps) {
      out.push_back(i);
      best_qps = rows[i].qps;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Bitmap RandomFilter(size_t n, double fraction, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const size_t want = std::min(n, static_cast<size_t>(std::llround(fraction * n)));
  // Floyd's sampling: `want` distinct ids without materialising 0..n-1.
  Bitmap b;
  for (size_t j = n - want; j < n; ++j) {
    std::uniform_int_distribution<size_t> pick(0, j);
    const uint32_t t = static_cast<uint32_t>(pick(rng));
    if (b.contains(t)) {
      b.add(static_cast<uint32_t>(j));
    } else {
      b.add(t);
    }
  }
  return b;
}

}  // namespace vitrine
