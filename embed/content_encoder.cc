#include "embed/content_encoder.h"

#include <Eigen/QR>
#include <Eigen/SVD>
#include <Eigen/SparseCore>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "core/json_util.h"

namespace vitrine {

struct ContentEncoder::ColumnState {
  std::string name;
  ColumnType type = ColumnType::kCategorical;
  float weight = 1.0f;
  int64_t offset = 0;  // first feature of the column
  int64_t width = 0;   // number of features
  // categorical / list: kept values; the "other" feature follows them.
  std::vector<std::string> values;
  // numeric
  bool log = false;
  double mean = 0, stddev = 1;
  std::vector<double> cuts;  // ascending bucket boundaries; bucket = #cuts <= v
  bool buckets = false;      // whether bucket features exist
  // text
  std::vector<std::string> terms;
  std::vector<float> idf;
  // values or terms -> index; rebuilt, never serialised.
  std::unordered_map<std::string, int32_t> lookup;

  void BuildLookup() {
    lookup.clear();
    const auto& keys = type == ColumnType::kText ? terms : values;
    for (size_t i = 0; i < keys.size(); ++i) lookup.emplace(keys[i], static_cast<int32_t>(i));
  }
  int64_t ComputeWidth() const {
    switch (type) {
      case ColumnType::kCategorical:
      case ColumnType::kList:
        return static_cast<int64_t>(values.size()) + 1;
      case ColumnType::kNumeric:
        return 1 + (buckets ? static_cast<int64_t>(cuts.size()) + 1 : 0);
      case ColumnType::kBool:
        return 1;
      case ColumnType::kText:
        return static_cast<int64_t>(terms.size());
      case ColumnType::kSkip:
        return 0;
    }
    return 0;
  }
};

namespace {

using State = ContentEncoder::ColumnState;
using Triplet = Eigen::Triplet<float>;

bool TypeFromName(const std::string& s, ColumnType* t) {
  for (ColumnType c : {ColumnType::kCategorical, ColumnType::kNumeric, ColumnType::kBool,
                       ColumnType::kList, ColumnType::kText}) {
    if (s == ColumnTypeName(c)) {
      *t = c;
      return true;
    }
  }
  return false;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsLogColumn(const std::string& name, const ContentEncoderOptions& opts) {
  const std::string l = Lower(name);
  for (const char* key : {"price", "cost", "amount"}) {
    if (l.find(key) != std::string::npos) return true;
  }
  return std::find(opts.log_columns.begin(), opts.log_columns.end(), name) !=
         opts.log_columns.end();
}

// Signed log1p keeps order and tames heavy right tails (prices).
double NumericValue(double x, bool log) {
  return log ? std::copysign(std::log1p(std::fabs(x)), x) : x;
}

// Unigrams, then bigrams "a b" of adjacent tokens.
std::vector<std::string> Terms(std::string_view text, bool bigrams) {
  std::vector<std::string> tokens = Tokenize(text);
  std::vector<std::string> terms = tokens;
  if (bigrams) {
    for (size_t i = 0; i + 1 < tokens.size(); ++i) terms.push_back(tokens[i] + " " + tokens[i + 1]);
  }
  return terms;
}

int64_t MinCount(double min_count, int64_t n) {
  if (min_count >= 1) return static_cast<int64_t>(std::ceil(min_count));
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(min_count * n)));
}

Status CheckColumnSize(const Column& c, int64_t n) {
  size_t got = 0;
  switch (c.type) {
    case ColumnType::kCategorical:
      got = c.codes.size();
      break;
    case ColumnType::kNumeric:
      got = c.numbers.size();
      break;
    case ColumnType::kBool:
      got = c.bools.size();
      break;
    case ColumnType::kList:
      got = c.list_offsets.size() - (c.list_offsets.empty() ? 0 : 1);
      break;
    case ColumnType::kText:
      got = c.texts.size();
      break;
    case ColumnType::kSkip:
      return Status::OK();
  }
  if (static_cast<int64_t>(got) != n) {
    return Status::InvalidArgument("catalog column '" + c.name + "' has " + std::to_string(got) +
                                   " values for " + std::to_string(n) + " items");
  }
  return Status::OK();
}

// Learns one column's vocabulary or statistics from the training catalog.
State FitColumn(const Column& c, int64_t n, const ContentEncoderOptions& opts) {
  State s;
  s.name = c.name;
  s.type = c.type;
  auto w = opts.column_weights.find(c.name);
  s.weight = w != opts.column_weights.end() ? w->second
             : c.type == ColumnType::kText  ? opts.text_weight
                                            : 1.0f;
  const int64_t min_count = MinCount(opts.min_count, n);
  switch (c.type) {
    case ColumnType::kCategorical:
    case ColumnType::kList: {
      // Items holding each dictionary value (a list counts a value once).
      std::vector<int64_t> count(c.dictionary.size(), 0);
      for (int64_t i = 0; i < n; ++i) {
        if (c.type == ColumnType::kCategorical) {
          if (c.codes[i] >= 0) ++count[c.codes[i]];
          continue;
        }
        std::vector<int32_t> codes(c.list_codes.begin() + c.list_offsets[i],
                                   c.list_codes.begin() + c.list_offsets[i + 1]);
        std::sort(codes.begin(), codes.end());
        codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
        for (int32_t code : codes) {
          if (code >= 0) ++count[code];
        }
      }
      for (size_t v = 0; v < count.size(); ++v) {
        if (count[v] >= min_count) s.values.push_back(c.dictionary[v]);
      }
      break;
    }
    case ColumnType::kNumeric: {
      s.log = IsLogColumn(c.name, opts);
      std::vector<double> v;
      for (double x : c.numbers) {
        if (std::isfinite(x)) v.push_back(NumericValue(x, s.log));
      }
      if (!v.empty()) {
        s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
        double var = 0;
        for (double x : v) var += (x - s.mean) * (x - s.mean);
        s.stddev = std::sqrt(var / v.size());
      }
      if (!(s.stddev > 0)) s.stddev = 1;  // constant column: z = 0
      s.buckets = opts.numeric_buckets > 1;
      if (s.buckets && !v.empty()) {
        std::sort(v.begin(), v.end());
        const int b = opts.numeric_buckets;
        for (int j = 1; j < b; ++j) {
          const double cut = v[static_cast<size_t>(j) * v.size() / b];
          // A cut at the minimum would leave bucket 0 empty; ties collapse.
          if (cut > v.front() && (s.cuts.empty() || cut > s.cuts.back())) s.cuts.push_back(cut);
        }
      }
      break;
    }
    case ColumnType::kBool:
    case ColumnType::kSkip:
      break;
    case ColumnType::kText: {
      std::unordered_map<std::string, int64_t> df;
      for (int64_t i = 0; i < n; ++i) {
        std::vector<std::string> t = Terms(c.texts[i], opts.text_bigrams);
        std::sort(t.begin(), t.end());
        t.erase(std::unique(t.begin(), t.end()), t.end());
        for (std::string& term : t) ++df[std::move(term)];
      }
      std::vector<std::pair<int64_t, std::string>> kept;
      for (auto& [term, d] : df) {
        if (d >= opts.text_min_df) kept.emplace_back(d, term);
      }
      // Most frequent first, ties by term: deterministic whatever the hash order.
      std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      if (opts.max_text_terms > 0 && kept.size() > static_cast<size_t>(opts.max_text_terms)) {
        kept.resize(opts.max_text_terms);
      }
      for (auto& [d, term] : kept) {
        s.terms.push_back(term);
        s.idf.push_back(static_cast<float>(std::log((1.0 + n) / (1.0 + d)) + 1.0));
      }
      break;
    }
  }
  s.BuildLookup();
  s.width = s.ComputeWidth();
  return s;
}

// Appends column `c`'s features (state `s`) for all n items to `out`.
void EmitColumn(const State& s, const Column& c, int64_t n, bool bigrams,
                std::vector<Triplet>* out) {
  const float w = s.weight;
  const int32_t other = static_cast<int32_t>(s.values.size());
  // Catalog dictionary code -> feature index within the column.
  std::vector<int32_t> code_map;
  if (s.type == ColumnType::kCategorical || s.type == ColumnType::kList) {
    code_map.resize(c.dictionary.size(), other);
    for (size_t v = 0; v < c.dictionary.size(); ++v) {
      auto it = s.lookup.find(c.dictionary[v]);
      if (it != s.lookup.end()) code_map[v] = it->second;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const int r = static_cast<int>(i);
    switch (s.type) {
      case ColumnType::kCategorical:
        if (c.codes[i] >= 0) out->emplace_back(r, s.offset + code_map[c.codes[i]], w);
        break;
      case ColumnType::kList: {
        std::vector<int32_t> f;
        for (int64_t k = c.list_offsets[i]; k < c.list_offsets[i + 1]; ++k) {
          if (c.list_codes[k] >= 0) f.push_back(code_map[c.list_codes[k]]);
        }
        std::sort(f.begin(), f.end());
        f.erase(std::unique(f.begin(), f.end()), f.end());
        const float v = f.empty() ? 0.0f : w / std::sqrt(static_cast<float>(f.size()));
        for (int32_t j : f) out->emplace_back(r, s.offset + j, v);
        break;
      }
      case ColumnType::kNumeric: {
        const double x = c.numbers[i];
        if (!std::isfinite(x)) break;  // missing: z = 0, no bucket
        const double v = NumericValue(x, s.log);
        const double z = std::clamp((v - s.mean) / s.stddev, -5.0, 5.0);
        if (z != 0) out->emplace_back(r, s.offset, static_cast<float>(w * z));
        if (s.buckets) {
          const int64_t b = std::upper_bound(s.cuts.begin(), s.cuts.end(), v) - s.cuts.begin();
          out->emplace_back(r, s.offset + 1 + b, w);
        }
        break;
      }
      case ColumnType::kBool:
        if (c.bools[i] == 1) out->emplace_back(r, s.offset, w);
        break;
      case ColumnType::kText: {
        std::unordered_map<int32_t, int32_t> tf;
        for (const std::string& t : Terms(c.texts[i], bigrams)) {
          auto it = s.lookup.find(t);
          if (it != s.lookup.end()) ++tf[it->second];
        }
        std::vector<std::pair<int32_t, double>> f;
        double norm2 = 0;
        for (auto [j, count] : tf) {
          const double v = (1.0 + std::log(static_cast<double>(count))) * s.idf[j];
          f.emplace_back(j, v);
          norm2 += v * v;
        }
        std::sort(f.begin(), f.end());
        for (auto [j, v] : f) {
          out->emplace_back(r, s.offset + j, static_cast<float>(w * v / std::sqrt(norm2)));
        }
        break;
      }
      case ColumnType::kSkip:
        break;
    }
  }
}

// Thin Q of a tall matrix's QR: orthonormal columns spanning its range.
Eigen::MatrixXd Orthonormalize(const Eigen::MatrixXd& y) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(y);
  return qr.householderQ() * Eigen::MatrixXd::Identity(y.rows(), y.cols());
}

// Standard normal draws from a fixed engine via Box-Muller, so the test
// matrix is the same on every standard library (normal_distribution is not).
Eigen::MatrixXd GaussianMatrix(Eigen::Index rows, Eigen::Index cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  Eigen::MatrixXd m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j) {
    for (Eigen::Index i = 0; i < rows; ++i) {
      m(i, j) = std::sqrt(-2.0 * std::log(uniform())) * std::cos(2.0 * M_PI * uniform());
    }
  }
  return m;
}

}  // namespace

std::vector<std::string> Tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  std::string cur;
  for (char ch : text) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (std::isalnum(u)) {
      cur.push_back(static_cast<char>(std::tolower(u)));
    } else if (!cur.empty()) {
      tokens.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  return tokens;
}

TruncatedSvd RandomizedSvd(const Eigen::SparseMatrix<double, Eigen::RowMajor>& x,
                           const Eigen::VectorXd& mean, int k, const RandomizedSvdOptions& opts) {
  const Eigen::Index n = x.rows(), d = x.cols();
  const Eigen::Index l = std::min<Eigen::Index>(k + std::max(0, opts.oversampling), std::min(n, d));
  const bool centred = mean.size() == d;
  // A = X - 1 mean^T is never formed: X stays sparse.
  auto times_a = [&](const Eigen::MatrixXd& m) -> Eigen::MatrixXd {  // A M
    Eigen::MatrixXd r = x * m;
    if (centred) r.rowwise() -= mean.transpose() * m;
    if (opts.on_pass) opts.on_pass();
    return r;
  };
  auto times_at = [&](const Eigen::MatrixXd& m) -> Eigen::MatrixXd {  // A^T M
    Eigen::MatrixXd r = x.transpose() * m;
    if (centred) r -= mean * m.colwise().sum();
    if (opts.on_pass) opts.on_pass();
    return r;
  };

  Eigen::MatrixXd q = Orthonormalize(times_a(GaussianMatrix(d, l, opts.seed)));
  // Power iterations sharpen the spectrum; QR each half-step keeps the
  // small singular directions from drowning in round-off.
  for (int it = 0; it < opts.power_iterations; ++it) {
    q = Orthonormalize(times_a(Orthonormalize(times_at(q))));
  }
  // B^T = A^T Q = Q2 R; R = Ur S Vr^T  =>  A ~ Q B = (Q Vr) S (Q2 Ur)^T.
  const Eigen::MatrixXd bt = times_at(q);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(bt);
  const Eigen::MatrixXd q2 = qr.householderQ() * Eigen::MatrixXd::Identity(d, l);
  const Eigen::MatrixXd r = qr.matrixQR().topRows(l).triangularView<Eigen::Upper>();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(r, Eigen::ComputeFullU | Eigen::ComputeFullV);

  TruncatedSvd out;
  out.s = svd.singularValues().head(k);
  out.u = q * svd.matrixV().leftCols(k);
  out.v = q2 * svd.matrixU().leftCols(k);
  for (int j = 0; j < k; ++j) {
    Eigen::Index arg;
    out.v.col(j).cwiseAbs().maxCoeff(&arg);
    if (out.v(arg, j) < 0) {
      out.v.col(j) *= -1;
      out.u.col(j) *= -1;
    }
  }
  return out;
}

ContentEncoder::ContentEncoder(ContentEncoderOptions opts) : opts_(std::move(opts)) {}
ContentEncoder::~ContentEncoder() = default;
ContentEncoder::ContentEncoder(ContentEncoder&&) noexcept = default;
ContentEncoder& ContentEncoder::operator=(ContentEncoder&&) noexcept = default;

Result<Matrix> ContentEncoder::Fit(
    const Catalog& catalog, const std::function<void(int64_t done, int64_t total)>& on_progress) {
  const int64_t n = catalog.size();
  if (n == 0) return Status::InvalidArgument("content encoder: the catalog has no items");
  if (opts_.dim < 1) {
    return Status::InvalidArgument("content encoder: dim must be >= 1, got " +
                                   std::to_string(opts_.dim));
  }
  if (!(opts_.min_count > 0)) {
    return Status::InvalidArgument("content encoder: min_count must be > 0");
  }
  fitted_ = false;
  columns_.clear();
  num_features_ = 0;
  for (const Column& c : catalog.columns) {
    if (c.type == ColumnType::kSkip) continue;
    VITRINE_RETURN_IF_ERROR(CheckColumnSize(c, n));
    State s = FitColumn(c, n, opts_);
    s.offset = num_features_;
    num_features_ += s.width;
    columns_.push_back(std::move(s));
  }
  if (num_features_ == 0) {
    return Status::InvalidArgument(
        "content encoder: the catalog has no usable attribute columns (no features)");
  }
  // Passes over the features: building them, the SVD's products, and
  // building them again in Transform.
  const int64_t passes = 1 + (2 + 2 * std::max(0, opts_.power_iterations)) + 1;
  int64_t done = 0;
  auto pass = [&] {
    if (on_progress) on_progress(++done, passes);
  };
  const int k = static_cast<int>(std::min<int64_t>({opts_.dim, n, num_features_}));
  {
    // The feature matrix lives in this scope only: Transform below builds
    // it again, and at 2M items each copy is a gigabyte (docs/scale.md).
    VITRINE_ASSIGN_OR_RETURN(SparseFeatures x, Features(catalog));
    pass();
    const Eigen::SparseMatrix<double, Eigen::RowMajor> xd = x.cast<double>();
    x = SparseFeatures();  // the SVD reads the double copy only
    Eigen::VectorXd mean = Eigen::VectorXd::Zero(num_features_);
    for (int i = 0; i < xd.outerSize(); ++i) {
      for (Eigen::SparseMatrix<double, Eigen::RowMajor>::InnerIterator it(xd, i); it; ++it) {
        mean[it.col()] += it.value();
      }
    }
    mean /= static_cast<double>(n);
    const TruncatedSvd svd =
        RandomizedSvd(xd, mean, k, {opts_.oversampling, opts_.power_iterations, opts_.seed, pass});

    projection_ = Matrix(num_features_, k);
    for (int64_t f = 0; f < num_features_; ++f) {
      for (int j = 0; j < k; ++j) projection_.at(f, j) = static_cast<float>(svd.v(f, j));
    }
    const Eigen::VectorXd offset = svd.v.transpose() * mean;
    offset_.assign(offset.data(), offset.data() + k);
    singular_values_.assign(svd.s.data(), svd.s.data() + k);
  }
  fitted_ = true;
  VITRINE_ASSIGN_OR_RETURN(Matrix block, Transform(catalog));
  pass();
  return block;
}

Result<SparseFeatures> ContentEncoder::Features(const Catalog& catalog) const {
  const int64_t n = catalog.size();
  std::vector<Triplet> triplets;
  for (const State& s : columns_) {
    const Column* c = nullptr;
    for (const Column& cc : catalog.columns) {
      if (cc.name == s.name) c = &cc;
    }
    if (c == nullptr) {
      return Status::InvalidArgument("catalog has no column '" + s.name +
                                     "' (the content encoder was fitted with it)");
    }
    if (c->type != s.type) {
      return Status::InvalidArgument("catalog column '" + s.name + "' is " +
                                     ColumnTypeName(c->type) +
                                     ", the content encoder was fitted with " +
                                     ColumnTypeName(s.type) + " (pass the same --schema)");
    }
    VITRINE_RETURN_IF_ERROR(CheckColumnSize(*c, n));
    EmitColumn(s, *c, n, opts_.text_bigrams, &triplets);
  }
  SparseFeatures x(n, num_features_);
  x.setFromTriplets(triplets.begin(), triplets.end());
  return x;
}

Result<Matrix> ContentEncoder::Transform(const Catalog& catalog) const {
  if (!fitted_) return Status::InvalidArgument("content encoder: Transform before Fit");
  VITRINE_ASSIGN_OR_RETURN(SparseFeatures x, Features(catalog));
  const size_t k = projection_.cols;
  Matrix out(x.rows(), k);
  // One row at a time, accumulated in double: the same bits for an item
  // whether it is encoded in Fit or later on its own.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < x.rows(); ++i) {
    std::vector<double> acc(k);
    for (size_t j = 0; j < k; ++j) acc[j] = -static_cast<double>(offset_[j]);
    for (SparseFeatures::InnerIterator it(x, i); it; ++it) {
      const float* v = projection_.row(it.col());
      for (size_t j = 0; j < k; ++j) acc[j] += static_cast<double>(it.value()) * v[j];
    }
    for (size_t j = 0; j < k; ++j) out.at(i, j) = static_cast<float>(acc[j]);
  }
  return out;
}

nlohmann::json ContentEncoder::ToJson() const {
  using nlohmann::json;
  json cols = json::array();
  for (const State& s : columns_) {
    json c = {{"name", s.name},
              {"type", ColumnTypeName(s.type)},
              {"weight", s.weight},
              {"offset", s.offset},
              {"width", s.width}};
    switch (s.type) {
      case ColumnType::kCategorical:
      case ColumnType::kList:
        c["values"] = s.values;
        break;
      case ColumnType::kNumeric:
        c["log"] = s.log;
        c["mean"] = s.mean;
        c["std"] = s.stddev;
        c["buckets"] = s.buckets;
        c["cuts"] = s.cuts;
        break;
      case ColumnType::kText:
        c["terms"] = s.terms;
        c["idf"] = s.idf;
        break;
      default:
        break;
    }
    cols.push_back(std::move(c));
  }
  const ContentEncoderOptions& o = opts_;
  return {{"format", "vitrine.content_encoder"},
          {"version", 1},
          {"options",
           {{"dim", o.dim},
            {"min_count", o.min_count},
            {"numeric_buckets", o.numeric_buckets},
            {"log_columns", o.log_columns},
            {"text_min_df", o.text_min_df},
            {"max_text_terms", o.max_text_terms},
            {"text_bigrams", o.text_bigrams},
            {"column_weights", o.column_weights},
            {"text_weight", o.text_weight},
            {"oversampling", o.oversampling},
            {"power_iterations", o.power_iterations},
            {"seed", o.seed}}},
          {"num_features", num_features_},
          {"dim", projection_.cols},
          {"offset", offset_},
          {"singular_values", singular_values_},
          {"columns", std::move(cols)}};
}

Result<ContentEncoder> ContentEncoder::FromJson(const nlohmann::json& j, Matrix projection) {
  const std::string where = "content encoder state: ";
  // nlohmann reports missing keys and wrong types by exception; a bad file is
  // input, so turn them into a Status here.
  try {
    VITRINE_RETURN_IF_ERROR(CheckFormatAndVersion(j, "vitrine.content_encoder", 1, where));
    ContentEncoderOptions o;
    const nlohmann::json& jo = j.at("options");
    o.dim = JsonInteger<int>(jo.at("dim"), "dim");
    o.min_count = jo.at("min_count").get<double>();
    o.numeric_buckets = JsonInteger<int>(jo.at("numeric_buckets"), "numeric_buckets");
    o.log_columns = jo.at("log_columns").get<std::vector<std::string>>();
    o.text_min_df = JsonInteger<int>(jo.at("text_min_df"), "text_min_df");
    o.max_text_terms = JsonInteger<int>(jo.at("max_text_terms"), "max_text_terms");
    o.text_bigrams = jo.at("text_bigrams").get<bool>();
    o.column_weights = jo.at("column_weights").get<std::map<std::string, float>>();
    o.text_weight = jo.at("text_weight").get<float>();
    o.oversampling = JsonInteger<int>(jo.at("oversampling"), "oversampling");
    o.power_iterations = JsonInteger<int>(jo.at("power_iterations"), "power_iterations");
    o.seed = JsonInteger<uint64_t>(jo.at("seed"), "seed");

    ContentEncoder enc(o);
    enc.num_features_ = JsonInteger<int64_t>(j.at("num_features"), "num_features");
    const auto dim = JsonInteger<size_t>(j.at("dim"), "dim");
    enc.offset_ = j.at("offset").get<std::vector<float>>();
    enc.singular_values_ = j.at("singular_values").get<std::vector<float>>();
    int64_t offset = 0;
    for (const nlohmann::json& jc : j.at("columns")) {
      State s;
      s.name = jc.at("name").get<std::string>();
      if (!TypeFromName(jc.at("type").get<std::string>(), &s.type)) {
        return Status::Corruption(where + "column '" + s.name + "' has unknown type " +
                                  jc.at("type").dump());
      }
      s.weight = jc.at("weight").get<float>();
      s.offset = JsonInteger<int64_t>(jc.at("offset"), "offset");
      s.width = JsonInteger<int64_t>(jc.at("width"), "width");
      if (s.type == ColumnType::kCategorical || s.type == ColumnType::kList) {
        s.values = jc.at("values").get<std::vector<std::string>>();
      } else if (s.type == ColumnType::kNumeric) {
        s.log = jc.at("log").get<bool>();
        s.mean = jc.at("mean").get<double>();
        s.stddev = jc.at("std").get<double>();
        s.buckets = jc.at("buckets").get<bool>();
        s.cuts = jc.at("cuts").get<std::vector<double>>();
        if (!(s.stddev > 0) || !std::is_sorted(s.cuts.begin(), s.cuts.end())) {
          return Status::Corruption(where + "column '" + s.name + "': bad std or unsorted cuts");
        }
      } else if (s.type == ColumnType::kText) {
        s.terms = jc.at("terms").get<std::vector<std::string>>();
        s.idf = jc.at("idf").get<std::vector<float>>();
        if (s.idf.size() != s.terms.size()) {
          return Status::Corruption(where + "column '" + s.name +
                                    "': " + std::to_string(s.terms.size()) + " terms but " +
                                    std::to_string(s.idf.size()) + " idf values");
        }
      }
      if (s.offset != offset || s.width != s.ComputeWidth()) {
        return Status::Corruption(where + "column '" + s.name + "': offset/width " +
                                  std::to_string(s.offset) + "/" + std::to_string(s.width) +
                                  " do not match its contents (expected offset " +
                                  std::to_string(offset) + ")");
      }
      offset += s.width;
      s.BuildLookup();
      enc.columns_.push_back(std::move(s));
    }
    if (offset != enc.num_features_) {
      return Status::Corruption(where + "columns hold " + std::to_string(offset) +
                                " features, num_features says " +
                                std::to_string(enc.num_features_));
    }
    if (projection.rows != static_cast<size_t>(enc.num_features_) || projection.cols != dim ||
        projection.data.size() != projection.rows * projection.cols) {
      return Status::Corruption(where + "projection is " + std::to_string(projection.rows) + " x " +
                                std::to_string(projection.cols) + ", expected " +
                                std::to_string(enc.num_features_) + " x " + std::to_string(dim));
    }
    if (enc.offset_.size() != dim || enc.singular_values_.size() != dim) {
      return Status::Corruption(where + "offset/singular_values length differs from dim " +
                                std::to_string(dim));
    }
    for (float v : projection.data) {
      if (!std::isfinite(v)) return Status::Corruption(where + "projection has non-finite values");
    }
    enc.projection_ = std::move(projection);
    enc.fitted_ = true;
    return enc;
  } catch (const std::exception& e) {  // nlohmann's, or JsonInteger's out_of_range
    return Status::Corruption(where + e.what());
  }
}

}  // namespace vitrine
