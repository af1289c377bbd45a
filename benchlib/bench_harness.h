// The benchmark side of index measurement, for `vitrine bench`, bench/ and
// tests only (library vitrine_benchlib; the server never links it): the CSV
// row of a measured point, the recall/QPS Pareto frontier and random filters
// of a given selectivity. Measuring itself (ground truth, recall, timed
// search) is index/measure.h, which autotune shares.
//
//   std::vector<BenchRow> rows = ...;  // MeasureSearch per operating point
//   for (size_t i : ParetoFrontier(rows)) table.AddRow(BenchCsvCells(rows[i]));
//
// Thread safety: every function is reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/attribute_index.h"  // Bitmap
#include "index/measure.h"          // BenchRow

namespace vitrine {

// "index,params,k,recall,qps,p50_us,p99_us,build_s,bytes_per_vector,threads"
std::vector<std::string> BenchCsvHeader();
std::vector<std::string> BenchCsvCells(const BenchRow& row);

// Indices of the rows on the recall/QPS Pareto frontier (no other row has
// both recall >= and qps >= with one of them strictly greater), sorted by
// recall ascending. Rows with equal recall and qps keep only the first.
std::vector<size_t> ParetoFrontier(const std::vector<BenchRow>& rows);

// A random bitmap allowing round(fraction * n) of ids 0..n-1 (seeded).
Bitmap RandomFilter(size_t n, double fraction, uint64_t seed);

}  // namespace vitrine
