// ContentEncoder: catalog attributes -> a dense content block (n x dim).
//
// Fit learns, per attribute column of a Catalog:
//   categorical  one-hot over values seen at least `min_count` times; rarer
//                values (and, at transform time, unseen ones) share one
//                "other" feature per column. Missing -> no feature.
//   numeric      one standardised value z = (v - mean) / std, clamped to
//                [-5, 5], with v = sign(x) log1p(|x|) for log columns (names
//                containing "price", "cost" or "amount", or listed in
//                `log_columns`); plus a one-hot over `numeric_buckets`
//                quantile buckets of v, so non-linear bands (price tiers) are
//                captured. Missing -> z = 0 and no bucket.
//   bool         one 0/1 feature (missing -> 0).
//   list         multi-hot over frequent values plus "other", the row
//                L2-normalised within the column.
//   text         TF-IDF over ASCII-lowercased word unigrams and bigrams
//                (tokens split on non-alphanumeric bytes); terms in at least
//                `text_min_df` items, at most `max_text_terms` (most frequent
//                first); tf = 1 + ln(count); idf = ln((1 + n) / (1 + df)) + 1;
//                row L2-normalised within the column.
// Every feature of a column is multiplied by the column's weight
// (`column_weights[name]`, else `text_weight` for text, else 1).
//
// The sparse n x d feature matrix is then reduced to `dim` columns by a
// seeded randomised truncated SVD (Halko, Martinsson, Tropp 2011) of the
// mean-centred features: the block is (x - mean) * V, V the d x k matrix of
// top right singular vectors (k = min(dim, n, d)). Transform applies the same
// vocabularies, statistics and V to any catalog with the same columns, so a
// new (cold-start) item gets a vector consistent with the fitted ones, and
// transforming the training catalog reproduces Fit's output exactly. Rows are
// not normalised here; fusion does that.
//
// Everything is deterministic for a given seed. A fitted encoder is immutable
// and its const methods are thread-safe.
#pragma once

#include <Eigen/Dense>
#include <Eigen/SparseCore>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/catalog.h"
#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

using SparseFeatures = Eigen::SparseMatrix<float, Eigen::RowMajor>;

struct ContentEncoderOptions {
  int dim = 32;  // output dimension (fewer if the catalog has fewer items or features)
  // Categorical/list values seen fewer times go to "other". >= 1: a count;
  // in (0, 1): a fraction of the catalog's items (rounded up).
  double min_count = 2;
  int numeric_buckets = 8;                      // quantile buckets per numeric column (1 = none)
  std::vector<std::string> log_columns;         // extra log1p columns
  int text_min_df = 2;                          // min items containing a term
  int max_text_terms = 20000;                   // per text column; 0 = no cap
  bool text_bigrams = true;                     // add adjacent word pairs
  std::map<std::string, float> column_weights;  // column name -> weight
  float text_weight = 1.0f;                     // default weight of text columns
  // Randomised SVD: Gaussian test matrix of k + oversampling columns and
  // power iterations with QR re-orthonormalisation (RandomizedSvdOptions).
  int oversampling = 10;     // extra test columns
  int power_iterations = 3;  // passes of A A^T
  uint64_t seed = 42;        // draws the test matrix
};

class ContentEncoder {
 public:
  explicit ContentEncoder(ContentEncoderOptions opts = {});
  ~ContentEncoder();
  ContentEncoder(ContentEncoder&&) noexcept;
  ContentEncoder& operator=(ContentEncoder&&) noexcept;
  ContentEncoder(const ContentEncoder&) = delete;
  ContentEncoder& operator=(const ContentEncoder&) = delete;

  // Learns vocabularies, statistics and the projection from `catalog` and
  // returns its n x dim() block. Fails if the catalog is empty or yields no
  // features (no usable attribute columns).
  // `on_progress(done, total)` counts passes over the feature matrix.
  [[nodiscard]] Result<Matrix> Fit(
      const Catalog& catalog,
      const std::function<void(int64_t done, int64_t total)>& on_progress = {});

  // The n x dim() block of `catalog`, whose columns must include every fitted
  // column with the same type (matched by name; extra columns are ignored).
  [[nodiscard]] Result<Matrix> Transform(const Catalog& catalog) const;

  // The weighted sparse features (before centring and projection).
  [[nodiscard]] Result<SparseFeatures> Features(const Catalog& catalog) const;

  bool fitted() const { return fitted_; }
  int dim() const { return static_cast<int>(projection_.cols); }
  int64_t feature_count() const { return static_cast<int64_t>(projection_.rows); }
  // Singular values of the centred feature matrix, largest first (dim()).
  const std::vector<float>& singular_values() const { return singular_values_; }

  // d x dim projection V; with the offset mean * V, block = features * V - offset.
  const Matrix& projection() const { return projection_; }

  // Vocabularies, statistics, options and the offset; the projection is kept
  // apart (store it as .npy). FromJson validates both and rebuilds lookups.
  nlohmann::json ToJson() const;
  [[nodiscard]] static Result<ContentEncoder> FromJson(const nlohmann::json& j, Matrix projection);

  struct ColumnState;  // internal

 private:
  ContentEncoderOptions opts_;
  std::vector<ColumnState> columns_;
  int64_t num_features_ = 0;
  Matrix projection_;                   // num_features_ x k
  std::vector<float> offset_;           // k: mean features * projection
  std::vector<float> singular_values_;  // k
  bool fitted_ = false;
};

// Randomised truncated SVD of A = X - 1 * mean^T (mean empty: A = X),
// returning the top k triplets, singular values descending, each right
// singular vector's largest-magnitude entry positive (a deterministic sign).
struct TruncatedSvd {
  Eigen::VectorXd s;  // k
  Eigen::MatrixXd u;  // rows(X) x k
  Eigen::MatrixXd v;  // cols(X) x k
};
struct RandomizedSvdOptions {
  int oversampling = 10;     // test columns beyond k
  int power_iterations = 3;  // passes of A A^T, each re-orthonormalised
  uint64_t seed = 42;        // draws the Gaussian test matrix
  // Called after each product with X or X^T (2 + 2 power_iterations of them).
  std::function<void()> on_pass;
};
// Requires 1 <= k <= min(rows, cols); k + oversampling is capped there too.
TruncatedSvd RandomizedSvd(const Eigen::SparseMatrix<double, Eigen::RowMajor>& x,
                           const Eigen::VectorXd& mean, int k,
                           const RandomizedSvdOptions& opts = {});

// The tokenizer used for text columns: ASCII-lowercased maximal runs of
// alphanumeric bytes ("Red-Dress 2x" -> "red", "dress", "2x").
std::vector<std::string> Tokenize(std::string_view text);

}  // namespace vitrine
