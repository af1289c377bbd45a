// Helpers shared by the test programs (linked into every one as
// vitrine_test_util): whole-file reads, synthetic data and small builders.
// The scratch directory is in tests/scratch_dir.h, the served test bundle in
// tests/serve_test_util.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/catalog.h"
#include "core/matrix.h"

namespace vitrine {

// The bytes of `path`; "" when it cannot be read.
std::string Slurp(const std::filesystem::path& path);

// Writes `text` to `path` byte for byte (replacing it).
void WriteText(const std::filesystem::path& path, const std::string& text);

// `text` split at '\n' (no trailing empty line).
std::vector<std::string> Lines(const std::string& text);

// rows x cols of independent N(0, 1) floats drawn from std::mt19937(seed).
Matrix Gaussian(size_t rows, size_t cols, uint32_t seed);

// n unit rows of dimension d around `clusters` centres drawn N(0, 1) from
// std::mt19937(center_seed) (data and queries share them): centre + noise *
// N(0, 1), L2-normalised like fused vectors. Unlike uniform data, neighbours
// concentrate and IVF lists are uneven.
Matrix ClusteredRows(size_t n, size_t d, size_t clusters, uint32_t seed, float noise,
                     uint32_t center_seed);

// One row of a `vitrine generate` interactions.csv, its weight by the
// default event weights (view 1, cart 4, purchase 10, return -4,
// gift_purchase 10): the raw
// input that oracles recount.
struct GeneratedEvent {
  std::string user, item, event;
  int64_t time = 0;
  double weight = 0;
};
// Every row of `path` (header user_id,item_id,event,timestamp); empty when
// the file cannot be read or has another header.
std::vector<GeneratedEvent> ReadGeneratedEvents(const std::filesystem::path& path);

// The cosine of two equally long vectors, in double; 0 when either is zero.
double Cosine(std::span<const float> a, std::span<const float> b);

// A rows.size() x cols CSR matrix holding 1 at every listed column; each
// row's list is sorted and deduplicated first.
CsrMatrix CsrFromRows(std::vector<std::vector<int32_t>> rows, int64_t cols);

// A random users x items matrix: each pair present with probability
// `density`, weights uniform in [0.5, 3) (or all 1), fixed seed.
CsrMatrix RandomInteractions(int users, int items, double density, uint32_t seed, bool binary);

// Catalog columns built by hand (the CSV reader has its own tests): an empty
// one of `type`, or one of each type with its values.
Column MakeColumn(std::string name, ColumnType type);
Column CategoricalColumn(std::string name, std::vector<std::string> dictionary,
                         std::vector<int32_t> codes);  // code -1 = missing
Column ListColumn(std::string name, std::vector<std::string> dictionary,
                  const std::vector<std::vector<int32_t>>& rows);
Column NumericColumn(std::string name, std::vector<double> values);  // NaN = missing
Column BoolColumn(std::string name, std::vector<int8_t> values);     // -1 = missing
Column TextColumn(std::string name, std::vector<std::string> values);

}  // namespace vitrine
