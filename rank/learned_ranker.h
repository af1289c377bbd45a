// LearnedRanker: a LambdaMART model (gradient-boosted trees trained with
// XGBoost's `rank:ndcg` objective) that scores (user, candidate) feature rows,
// so the engine can order one pool of candidates merged from several sources
// (docs/ranker.md has the design, the feature list and the training split).
//
// Buffer convention: a batch of n rows of f features is one contiguous
// row-major n x f float buffer; row i starts at features[i * f]. NaN means
// "missing" (XGBoost sends it down each split's learned default branch).
// A query group is a run of consecutive rows (one request's candidates);
// group sizes sum to n.
//
// Scores are margins (raw sums of leaf values plus the base score): only
// their order within a group means anything.
//
// Scoring path: XGBoost's own predictor walks each tree for one row at a
// time (docs/ranker.md, "Scoring: a flat forest", has the timings). Predict
// therefore scores with a flat copy of the forest made
// when the model is trained or loaded: every tree padded to the forest's
// depth as a complete binary tree in one contiguous array, walked without
// branches for 8 rows at once. It reproduces XGBoost's rule exactly (left iff
// value < threshold; NaN takes the node's default branch; the score is the
// base score plus the leaves summed in tree order, in float) and is checked
// against PredictWithXgboost in the tests. Forests deeper than
// kMaxFlatDepth, with categorical splits, or whose model document the copy
// does not understand or disagrees with XGBoost on two check rows (all
// zeros, all missing) use XGBoost's predictor (see uses_flat_forest()).
//
// Thread safety: Train and Load return a ready model; afterwards every const
// method (Predict, PredictWithXgboost, Explain, Serialize, Save) may run
// concurrently from any number of threads. The flat forest is immutable.
// XGBoost documents its prediction as thread-safe for tree boosters since
// 1.4 (prediction buffers are thread-local per booster); the model is
// configured (the first, lazy prediction is made) before Train or Load
// returns, and nothing changes a booster's parameters afterwards.
// tests/learned_ranker_test.cc checks concurrent Predict against serial
// results. XGBoost's calls use `predict_threads` OpenMP threads (default 1:
// a request is small and the server already runs requests in parallel); the
// flat path always runs on the calling thread.
//
// Determinism: with the same data, options and nthread = 1, Train produces
// byte-identical models (the `hist` tree method; `seed` drives XGBoost's
// sampling). Multi-threaded `hist` training is also deterministic in XGBoost,
// but only nthread = 1 is tested here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace vitrine {

// Training settings (XGBoost's parameters of the same names) and the
// threads a trained model scores with; Train checks the ranges.
struct RankerOptions {
  int rounds = 200;               // boosting rounds = trees (> 0)
  int max_depth = 6;              // per tree, 1..16
  double eta = 0.1;               // learning rate, (0, 1]
  double min_child_weight = 1.0;  // minimum hessian sum in a leaf, >= 0
  double subsample = 1.0;         // row sampling per tree, (0, 1]
  double colsample_bytree = 1.0;  // feature sampling per tree, (0, 1]
  uint64_t seed = 0;              // XGBoost's sampling seed
  // LambdaMART pairs drawn per relevant row and round (XGBoost 1.7's
  // num_pairsample, >= 1). With one or two relevant candidates in a pool of
  // hundreds, 1 pair per round leaves most negatives unseen.
  int pairs_per_sample = 1;
  int nthread = 1;                // training threads (> 0)
  int predict_threads = 1;        // threads of each Predict call (> 0)
  // Called after each boosting round with the rounds done; may be empty.
  std::function<void(int)> on_round = nullptr;
};

// One training set: n rows of f features, a relevance label per row (higher
// is better: 0 = not interacted, 1 = viewed, 2 = bought, ...), and the sizes
// of the query groups in row order.
struct RankingData {
  std::span<const float> features;        // n x f, row-major
  std::span<const float> labels;          // n
  std::span<const uint32_t> group_sizes;  // sum = n, each > 0
};

// A feature's share of one score (XGBoost's TreeSHAP contributions): the
// contributions of a row plus its bias add up to its score.
struct FeatureContribution {
  int feature = -1;  // index into feature_names()
  std::string name;
  float value = 0;  // signed
};

struct Explanation {
  float score = 0;                                 // = bias + sum of contributions
  float bias = 0;                                  // the expected score over the training data
  std::vector<FeatureContribution> contributions;  // every feature, by |value| descending
};

class LearnedRanker {
 public:
  LearnedRanker();  // empty: Predict fails until trained or loaded
  ~LearnedRanker();
  LearnedRanker(LearnedRanker&&) noexcept;
  LearnedRanker& operator=(LearnedRanker&&) noexcept;
  LearnedRanker(const LearnedRanker&) = delete;
  LearnedRanker& operator=(const LearnedRanker&) = delete;

  // Trains a LambdaMART model. `feature_names` gives f (their count) and is
  // stored with the model; names must be unique, non-empty and printable.
  // InvalidArgument names the inconsistent size, the bad option or the
  // bad label / group; Internal carries XGBoost's own message.
  static Result<LearnedRanker> Train(const RankingData& data,
                                     std::vector<std::string> feature_names,
                                     const RankerOptions& options = {});

  // Scores n rows: scores[i] for row i of `features` (n x num_features()).
  // `scores` must hold n floats. InvalidArgument on a size mismatch.
  [[nodiscard]] Status Predict(std::span<const float> features, size_t n,
                               std::span<float> scores) const;
  Result<std::vector<float>> Predict(std::span<const float> features, size_t n) const;

  // The same scores from XGBoost's own predictor (XGBoosterPredictFromDense):
  // the reference for the flat path, and its baseline in bench/ranker_bench.
  [[nodiscard]] Status PredictWithXgboost(std::span<const float> features, size_t n,
                                          std::span<float> scores) const;

  // Deepest forest the flat scorer takes (a depth-8 tree pads to 511 nodes).
  static constexpr int kMaxFlatDepth = 8;
  // True when Predict uses the flat forest (false: XGBoost's predictor).
  bool uses_flat_forest() const { return flat_ != nullptr; }

  // Which features made one row's score (slower than Predict: for
  // explanations, not for ranking).
  Result<Explanation> Explain(std::span<const float> row) const;

  int num_features() const { return static_cast<int>(feature_names_.size()); }
  const std::vector<std::string>& feature_names() const { return feature_names_; }
  int num_trees() const { return num_trees_; }
  bool empty() const { return booster_ == nullptr; }

  // The file format (all integers little-endian):
  //
  //   offset  size   field
  //   0       8      magic "VTRLTR\r\n" (the CR LF catches text-mode mangling)
  //   8       4      uint32 format version (1)
  //   12      4      uint32 feature count f (1..4096)
  //   16      4      uint32 trees
  //   20      4      uint32 reserved (0)
  //   24      ...    f x (uint32 byte length 1..256, UTF-8 name)
  //   ...     8      uint64 model byte length m
  //   ...     m      the XGBoost model, Universal Binary JSON
  //                  (XGBoosterSaveModelToBuffer, format "ubj")
  //   end-8   8      uint64 xxh64 (seed 0) of every byte before it
  //
  // Deserialize refuses, with Status::Corruption naming `name` and the fault:
  // a wrong magic, a truncated file (names the field that is cut off, or the
  // model length promised and the bytes present), trailing bytes, a checksum
  // mismatch, a model XGBoost cannot parse, and a model whose feature count
  // or tree count disagrees with the header. An
  // unknown version is Status::Unsupported. If `expected_features` is not
  // empty, a model trained on other features (count, or the first differing
  // name and its position) is refused with Status::Corruption too: the
  // engine passes the features it computes, so a stale model never scores
  // shuffled columns.
  Result<std::string> Serialize() const;
  static Result<LearnedRanker> Deserialize(std::string_view bytes, std::string_view name,
                                           std::span<const std::string> expected_features = {},
                                           int predict_threads = 1);
  [[nodiscard]] Status Save(const std::filesystem::path& path) const;  // atomic write
  static Result<LearnedRanker> Load(const std::filesystem::path& path,
                                    std::span<const std::string> expected_features = {},
                                    int predict_threads = 1);

 private:
  struct BoosterDeleter {
    void operator()(void* handle) const;
  };
  using Booster = std::unique_ptr<void, BoosterDeleter>;

  // Sets serving parameters and makes the first (configuring) prediction.
  static Status Finish(LearnedRanker* r, int predict_threads);

  struct FlatForest;
  struct FlatForestDeleter {
    void operator()(FlatForest* f) const;
  };

  Booster booster_;
  std::unique_ptr<FlatForest, FlatForestDeleter> flat_;  // null: XGBoost scores
  std::vector<std::string> feature_names_;
  int num_trees_ = 0;
  std::string model_ubj_;  // the booster saved as UBJSON, for Serialize
};

}  // namespace vitrine
