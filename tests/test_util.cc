#include "tests/test_util.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

namespace vitrine {

std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

Matrix Gaussian(size_t rows, size_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  Matrix m(rows, cols);
  for (float& v : m.data) v = g(rng);
  return m;
}

Matrix ClusteredRows(size_t n, size_t d, size_t clusters, uint32_t seed, float noise,
                     uint32_t center_seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  Matrix centers(clusters, d);
  std::mt19937 crng(center_seed);
  for (float& v : centers.data) v = g(crng);
  Matrix m(n, d);
  for (size_t i = 0; i < n; ++i) {
    const float* c = centers.row(rng() % clusters);
    float norm = 0;
    for (size_t j = 0; j < d; ++j) {
      m.at(i, j) = c[j] + noise * g(rng);
      norm += m.at(i, j) * m.at(i, j);
    }
    for (size_t j = 0; j < d; ++j) m.at(i, j) /= std::sqrt(norm);
  }
  return m;
}

double Cosine(std::span<const float> a, std::span<const float> b) {
  const double ab = DotDouble(a.data(), b.data(), a.size());
  const double aa = DotDouble(a.data(), a.data(), a.size());
  const double bb = DotDouble(b.data(), b.data(), b.size());
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

CsrMatrix RandomInteractions(int users, int items, double density, uint32_t seed, bool binary) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution on(density);
  std::uniform_real_distribution<float> weight(0.5f, 3.0f);
  CsrMatrix m;
  m.rows = users;
  m.cols = items;
  m.indptr.push_back(0);
  for (int u = 0; u < users; ++u) {
    for (int j = 0; j < items; ++j) {
      if (!on(rng)) continue;
      m.indices.push_back(j);
      m.values.push_back(binary ? 1.0f : weight(rng));
    }
    m.indptr.push_back(m.nnz());
  }
  return m;
}

CsrMatrix CsrFromRows(std::vector<std::vector<int32_t>> rows, int64_t cols) {
  CsrMatrix m;
  m.rows = static_cast<int64_t>(rows.size());
  m.cols = cols;
  m.indptr.push_back(0);
  for (std::vector<int32_t>& r : rows) {
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
    m.indices.insert(m.indices.end(), r.begin(), r.end());
    m.values.insert(m.values.end(), r.size(), 1.0f);
    m.indptr.push_back(m.nnz());
  }
  return m;
}

Column MakeColumn(std::string name, ColumnType type) {
  Column c;
  c.name = std::move(name);
  c.type = type;
  return c;
}

Column CategoricalColumn(std::string name, std::vector<std::string> dictionary,
                         std::vector<int32_t> codes) {
  Column c = MakeColumn(std::move(name), ColumnType::kCategorical);
  c.dictionary = std::move(dictionary);
  c.codes = std::move(codes);
  return c;
}

Column ListColumn(std::string name, std::vector<std::string> dictionary,
                  const std::vector<std::vector<int32_t>>& rows) {
  Column c = MakeColumn(std::move(name), ColumnType::kList);
  c.dictionary = std::move(dictionary);
  c.list_offsets.push_back(0);
  for (const std::vector<int32_t>& r : rows) {
    c.list_codes.insert(c.list_codes.end(), r.begin(), r.end());
    c.list_offsets.push_back(static_cast<int64_t>(c.list_codes.size()));
  }
  return c;
}

Column NumericColumn(std::string name, std::vector<double> values) {
  Column c = MakeColumn(std::move(name), ColumnType::kNumeric);
  c.numbers = std::move(values);
  return c;
}

Column BoolColumn(std::string name, std::vector<int8_t> values) {
  Column c = MakeColumn(std::move(name), ColumnType::kBool);
  c.bools = std::move(values);
  return c;
}

Column TextColumn(std::string name, std::vector<std::string> values) {
  Column c = MakeColumn(std::move(name), ColumnType::kText);
  c.texts = std::move(values);
  return c;
}

std::vector<GeneratedEvent> ReadGeneratedEvents(const std::filesystem::path& path) {
  std::vector<GeneratedEvent> out;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line) || line != "user_id,item_id,event,timestamp") return out;
  const std::map<std::string, double> weights = {
      {"view", 1}, {"cart", 4}, {"purchase", 10}, {"return", -4}, {"gift_purchase", 10}};
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    GeneratedEvent e;
    std::string ts;
    std::getline(ss, e.user, ',');
    std::getline(ss, e.item, ',');
    std::getline(ss, e.event, ',');
    std::getline(ss, ts, ',');
    e.time = std::stoll(ts);
    e.weight = weights.at(e.event);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace vitrine
