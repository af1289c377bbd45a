#include "rank/learned_ranker.h"

#include <xgboost/c_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "core/file_util.h"
#include "core/json_util.h"

namespace vitrine {
namespace {

// A model trained by another vitrine version (the engine's features changed).
constexpr const char* kStaleModelHint =
    " (a bundle built by another vitrine version: rebuild it with vitrine build)";

constexpr char kMagic[8] = {'V', 'T', 'R', 'L', 'T', 'R', '\r', '\n'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxFeatures = 4096;
constexpr uint32_t kMaxNameBytes = 256;

Status XgbError(const char* what) {
  return Status::Internal(std::string("xgboost: ") + what + ": " + XGBGetLastError());
}

#define VITRINE_XGB(call, what)             \
  do {                                      \
    if ((call) != 0) return XgbError(what); \
  } while (0)

struct DMatrixFree {
  void operator()(void* h) const {
    if (h != nullptr) XGDMatrixFree(h);
  }
};
using DMatrix = std::unique_ptr<void, DMatrixFree>;

// Feeds one dense row-major float matrix to XGBoost's iterator interface,
// in a single batch.
struct DenseBatch {
  const float* data;
  size_t rows, cols;
  DMatrixHandle proxy;
  bool given = false;
};

void ResetDenseBatch(DataIterHandle handle) { static_cast<DenseBatch*>(handle)->given = false; }

int NextDenseBatch(DataIterHandle handle) {
  auto* batch = static_cast<DenseBatch*>(handle);
  if (batch->given) return 0;
  // The array interface protocol (NumPy's __array_interface__, version 3).
  char interface[256];
  std::snprintf(interface, sizeof(interface),
                "{\"data\": [%zu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
                "\"version\": 3}",
                reinterpret_cast<size_t>(batch->data), batch->rows, batch->cols);
  if (XGProxyDMatrixSetDataDense(batch->proxy, interface) != 0) return -1;
  batch->given = true;
  return 1;
}

// The training matrix, quantised as the "hist" tree method uses it
// (XGBoost's QuantileDMatrix). A plain DMatrix first copies the rows into
// CSR, 8 bytes per value; quantised, a value takes one byte. At 4.2M rows of
// 25 features that is 0.44 GB instead of 1.3 GB on top of the caller's rows
// (docs/scale.md).
Result<DMatrix> QuantizedMatrix(const float* rows, size_t n, size_t f, int nthread) {
  DMatrixHandle raw_proxy = nullptr;
  VITRINE_XGB(XGProxyDMatrixCreate(&raw_proxy), "creating the training matrix");
  DMatrix proxy(raw_proxy);
  DenseBatch batch{rows, n, f, raw_proxy};
  const std::string config =
      "{\"missing\": NaN, \"nthread\": " + std::to_string(nthread) + ", \"max_bin\": 256}";
  DMatrixHandle raw_dm = nullptr;
  VITRINE_XGB(XGQuantileDMatrixCreateFromCallback(&batch, raw_proxy, nullptr, ResetDenseBatch,
                                                  NextDenseBatch, config.c_str(), &raw_dm),
              "creating the training matrix");
  return DMatrix(raw_dm);
}

std::string FormatDouble(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

Status CheckFeatureNames(const std::vector<std::string>& names) {
  if (names.empty() || names.size() > kMaxFeatures) {
    return Status::InvalidArgument("ranker: " + std::to_string(names.size()) +
                                   " feature names (expected 1.." + std::to_string(kMaxFeatures) +
                                   ")");
  }
  std::set<std::string_view> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& s = names[i];
    const bool printable = std::all_of(s.begin(), s.end(), [](char c) {
      return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
    });
    if (s.empty() || s.size() > kMaxNameBytes || !printable) {
      return Status::InvalidArgument("ranker: feature " + std::to_string(i) + " name '" + s +
                                     "' (expected 1.." + std::to_string(kMaxNameBytes) +
                                     " bytes without spaces or control characters)");
    }
    if (!seen.insert(s).second) {
      return Status::InvalidArgument("ranker: feature name '" + s + "' appears twice");
    }
  }
  return Status::OK();
}

Status CheckOptions(const RankerOptions& p) {
  auto bad = [](const std::string& what) { return Status::InvalidArgument("ranker: " + what); };
  if (p.rounds <= 0) return bad("rounds must be > 0, got " + std::to_string(p.rounds));
  if (p.max_depth < 1 || p.max_depth > 16) {
    return bad("max_depth must be in 1..16, got " + std::to_string(p.max_depth));
  }
  if (!(p.eta > 0 && p.eta <= 1)) return bad("eta must be in (0, 1], got " + FormatDouble(p.eta));
  if (!(p.min_child_weight >= 0) || !std::isfinite(p.min_child_weight)) {
    return bad("min_child_weight must be finite and >= 0, got " + FormatDouble(p.min_child_weight));
  }
  if (!(p.subsample > 0 && p.subsample <= 1)) {
    return bad("subsample must be in (0, 1], got " + FormatDouble(p.subsample));
  }
  if (!(p.colsample_bytree > 0 && p.colsample_bytree <= 1)) {
    return bad("colsample_bytree must be in (0, 1], got " + FormatDouble(p.colsample_bytree));
  }
  if (p.pairs_per_sample < 1 || p.pairs_per_sample > 1000) {
    return bad("pairs_per_sample must be in 1..1000, got " + std::to_string(p.pairs_per_sample));
  }
  if (p.nthread <= 0) return bad("nthread must be > 0, got " + std::to_string(p.nthread));
  if (p.predict_threads <= 0) {
    return bad("predict_threads must be > 0, got " + std::to_string(p.predict_threads));
  }
  return Status::OK();
}

// Reads the fixed-size fields of the file, naming the field that is cut off.
class Reader {
 public:
  Reader(std::string_view bytes, std::string name) : b_(bytes), name_(std::move(name)) {}

  template <typename T>
  Status Read(T* out, const char* field) {
    if (b_.size() - pos_ < sizeof(T)) return Truncated(field, sizeof(T));
    std::memcpy(out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::OK();
  }
  Status Take(size_t n, std::string_view* out, const char* field) {
    if (b_.size() - pos_ < n) return Truncated(field, n);
    *out = b_.substr(pos_, n);
    pos_ += n;
    return Status::OK();
  }
  size_t pos() const { return pos_; }

 private:
  Status Truncated(const char* field, size_t need) const {
    return Status::Corruption(name_ + ": truncated at byte " + std::to_string(pos_) + ": " + field +
                              " needs " + std::to_string(need) + " bytes, " +
                              std::to_string(b_.size() - pos_) + " left");
  }
  std::string_view b_;
  std::string name_;
  size_t pos_ = 0;
};

template <typename T>
void Append(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

// ---------------------------------------------------------------- FlatForest

// Every tree as a complete binary tree of depth `depth`: internal node k has
// children 2k+1 and 2k+2; a leaf of the original tree above the last level
// is copied to every padded leaf below it, so the padded splits never change
// the result.
struct LearnedRanker::FlatForest {
  // Rows are walked in blocks of kBlock: each level's step is independent
  // across the rows of a block, so their memory loads overlap instead of
  // waiting on each other as one row's walk must.
  static constexpr size_t kBlock = 16;
  static_assert(kMaxFeatures * kBlock <= 65536, "Node::column is 16 bits");

  struct Node {
    float threshold = 0;
    uint16_t column = 0;  // feature * kBlock: the feature's row in a block's transposed copy
    uint8_t default_left = 0;
  };
  int depth = 0;
  uint32_t internal = 0;  // 2^depth - 1 nodes per tree
  int trees = 0;
  float base = 0;
  std::vector<Node> nodes;    // trees x internal
  std::vector<float> leaves;  // trees x 2^depth

  // Each block is first copied feature-major (block[feature * kBlock + r]),
  // so a step reads its value at a constant offset from one base pointer and
  // the walk indices stay in registers. A block without missing values (the
  // engine's features never are) takes a kernel without the NaN test, over
  // all 16 rows at once; with the test, two halves of 8 rows keep it out of
  // spills. Medians of BM_RankerScore200, docs/ranker.md.
  void Score(const float* x, size_t n, size_t f, float* out) const {
    std::vector<float> block(f * kBlock);
    for (size_t r0 = 0; r0 < n; r0 += kBlock) {
      bool missing = false;
      for (size_t r = 0; r < kBlock; ++r) {
        // A short last block repeats its last row; only real rows are written.
        const float* row = x + std::min(r0 + r, n - 1) * f;
        for (size_t j = 0; j < f; ++j) {
          block[j * kBlock + r] = row[j];
          missing |= std::isnan(row[j]);
        }
      }
      float sum[kBlock];
      if (missing) {
        ScoreRows<true, kBlock / 2>(block.data(), sum);
        ScoreRows<true, kBlock / 2>(block.data() + kBlock / 2, sum + kBlock / 2);
      } else {
        ScoreRows<false, kBlock>(block.data(), sum);
      }
      for (size_t r = 0; r < kBlock && r0 + r < n; ++r) out[r0 + r] = sum[r];
    }
  }

  // Scores kRows consecutive rows of a transposed block; `block` points at
  // the first of them.
  template <bool kMissing, size_t kRows>
  void ScoreRows(const float* block, float* sum) const {
    for (size_t r = 0; r < kRows; ++r) sum[r] = base;
    for (int t = 0; t < trees; ++t) {
      const Node* nd = nodes.data() + static_cast<size_t>(t) * internal;
      const float* lv = leaves.data() + (static_cast<size_t>(t) << depth);
      uint32_t idx[kRows] = {};
      for (int level = 0; level < depth; ++level) {
        for (size_t r = 0; r < kRows; ++r) {
          const Node& q = nd[idx[r]];
          const float v = block[q.column + r];
          // XGBoost: left iff v < threshold; a missing (NaN) value takes the
          // default branch.
          uint32_t left = static_cast<uint32_t>(v < q.threshold);
          if constexpr (kMissing) left |= static_cast<uint32_t>(v != v) & q.default_left;
          idx[r] = 2 * idx[r] + 2 - left;
        }
      }
      for (size_t r = 0; r < kRows; ++r) sum[r] += lv[idx[r] - internal];
    }
  }
};

void LearnedRanker::FlatForestDeleter::operator()(FlatForest* f) const { delete f; }

namespace {

using Json = nlohmann::json;

// The flat copy of an XGBoost UBJSON model, or null when the model is not a
// plain numeric gbtree forest no deeper than `max_depth` (the caller then
// scores with XGBoost). Throws nlohmann::json exceptions on a malformed
// document; the caller turns them into a Status.
template <typename Flat>
std::unique_ptr<Flat> BuildFlat(std::string_view ubj, size_t num_features, int max_depth) {
  const Json doc = Json::from_ubjson(ubj);
  const Json& learner = doc.at("learner");
  const Json& booster = learner.at("gradient_booster");
  if (booster.at("name").get<std::string>() != "gbtree") return nullptr;
  const Json& param = learner.at("learner_model_param");
  if (param.contains("num_target") && param.at("num_target").get<std::string>() != "1") {
    return nullptr;
  }
  const Json& trees = booster.at("model").at("trees");
  auto flat = std::make_unique<Flat>();
  flat->base = std::stof(param.at("base_score").get<std::string>());
  flat->trees = static_cast<int>(trees.size());

  // Pass 1: the forest's depth (longest root-to-leaf path), and checks.
  std::vector<std::vector<int>> left(trees.size()), right(trees.size());
  for (size_t t = 0; t < trees.size(); ++t) {
    const Json& tree = trees[t];
    if (!tree.at("categories_nodes").empty()) return nullptr;
    left[t] = JsonIntegers<int>(tree.at("left_children"), "left_children");
    right[t] = JsonIntegers<int>(tree.at("right_children"), "right_children");
    const size_t nn = left[t].size();
    if (nn == 0 || right[t].size() != nn) return nullptr;
    std::vector<std::pair<int, int>> stack = {{0, 0}};
    size_t visited = 0;
    while (!stack.empty()) {
      const auto [k, d] = stack.back();
      stack.pop_back();
      if (k < 0 || static_cast<size_t>(k) >= nn || ++visited > nn || d > max_depth) return nullptr;
      if (left[t][k] == -1) {
        flat->depth = std::max(flat->depth, d);
      } else {
        stack.emplace_back(left[t][k], d + 1);
        stack.emplace_back(right[t][k], d + 1);
      }
    }
  }
  const int depth = flat->depth;
  flat->internal = (1u << depth) - 1;
  flat->nodes.assign(static_cast<size_t>(flat->trees) * flat->internal, {});
  flat->leaves.assign(static_cast<size_t>(flat->trees) << depth, 0.0f);

  // Pass 2: copy the splits and leaves into place.
  for (size_t t = 0; t < trees.size(); ++t) {
    const Json& tree = trees[t];
    const auto cond = tree.at("split_conditions").get<std::vector<float>>();
    const auto feat = JsonIntegers<int64_t>(tree.at("split_indices"), "split_indices");
    const auto dl = JsonIntegers<int>(tree.at("default_left"), "default_left");
    const size_t nn = left[t].size();
    if (cond.size() != nn || feat.size() != nn || dl.size() != nn) return nullptr;
    auto* nodes = flat->nodes.data() + t * flat->internal;
    float* leaves = flat->leaves.data() + (t << depth);
    // (original node, flat index, level)
    std::vector<std::tuple<int, uint32_t, int>> stack = {{0, 0u, 0}};
    while (!stack.empty()) {
      const auto [k, pos, level] = stack.back();
      stack.pop_back();
      if (left[t][k] == -1) {
        // The leaves of the complete subtree under flat index `pos`.
        const uint32_t first = (pos - ((1u << level) - 1)) << (depth - level);
        std::fill(leaves + first, leaves + first + (1u << (depth - level)), cond[k]);
        continue;
      }
      if (feat[k] < 0 || static_cast<size_t>(feat[k]) >= num_features) return nullptr;
      nodes[pos] = {cond[k], static_cast<uint16_t>(feat[k] * Flat::kBlock),
                    static_cast<uint8_t>(dl[k] != 0)};
      stack.emplace_back(left[t][k], 2 * pos + 1, level + 1);
      stack.emplace_back(right[t][k], 2 * pos + 2, level + 1);
    }
  }
  return flat;
}

}  // namespace

void LearnedRanker::BoosterDeleter::operator()(void* handle) const {
  if (handle != nullptr) XGBoosterFree(handle);
}

LearnedRanker::LearnedRanker() = default;
LearnedRanker::~LearnedRanker() = default;
LearnedRanker::LearnedRanker(LearnedRanker&&) noexcept = default;
LearnedRanker& LearnedRanker::operator=(LearnedRanker&&) noexcept = default;

Result<LearnedRanker> LearnedRanker::Train(const RankingData& data,
                                           std::vector<std::string> feature_names,
                                           const RankerOptions& options) {
  VITRINE_RETURN_IF_ERROR(CheckFeatureNames(feature_names));
  VITRINE_RETURN_IF_ERROR(CheckOptions(options));
  const size_t f = feature_names.size();
  const size_t n = data.labels.size();
  if (n == 0) return Status::InvalidArgument("ranker: no training rows");
  if (data.features.size() != n * f) {
    return Status::InvalidArgument("ranker: " + std::to_string(data.features.size()) +
                                   " feature values for " + std::to_string(n) + " labels and " +
                                   std::to_string(f) + " features (expected " +
                                   std::to_string(n * f) + ")");
  }
  uint64_t total = 0;
  for (size_t g = 0; g < data.group_sizes.size(); ++g) {
    if (data.group_sizes[g] == 0) {
      return Status::InvalidArgument("ranker: group " + std::to_string(g) + " is empty");
    }
    total += data.group_sizes[g];
  }
  if (total != n) {
    return Status::InvalidArgument("ranker: group sizes sum to " + std::to_string(total) +
                                   ", expected the " + std::to_string(n) + " rows");
  }
  for (size_t i = 0; i < n; ++i) {
    if (!(data.labels[i] >= 0) || !std::isfinite(data.labels[i])) {
      return Status::InvalidArgument("ranker: row " + std::to_string(i) + ": label " +
                                     FormatDouble(data.labels[i]) + " (expected finite and >= 0)");
    }
  }

  VITRINE_ASSIGN_OR_RETURN(DMatrix dm,
                           QuantizedMatrix(data.features.data(), n, f, options.nthread));
  DMatrixHandle raw_dm = dm.get();
  VITRINE_XGB(XGDMatrixSetFloatInfo(raw_dm, "label", data.labels.data(), n), "setting labels");
  VITRINE_XGB(
      XGDMatrixSetUIntInfo(raw_dm, "group", data.group_sizes.data(), data.group_sizes.size()),
      "setting groups");
  std::vector<const char*> names;
  for (const auto& s : feature_names) names.push_back(s.c_str());
  VITRINE_XGB(XGDMatrixSetStrFeatureInfo(raw_dm, "feature_name", names.data(), names.size()),
              "setting feature names");

  BoosterHandle raw_b = nullptr;
  VITRINE_XGB(XGBoosterCreate(&raw_dm, 1, &raw_b), "creating the booster");
  LearnedRanker r;
  r.booster_.reset(raw_b);
  const std::pair<const char*, std::string> settings[] = {
      {"verbosity", "0"},
      {"objective", "rank:ndcg"},
      {"eval_metric", "ndcg@10"},
      {"tree_method", "hist"},
      {"max_depth", std::to_string(options.max_depth)},
      {"eta", FormatDouble(options.eta)},
      {"min_child_weight", FormatDouble(options.min_child_weight)},
      {"subsample", FormatDouble(options.subsample)},
      {"colsample_bytree", FormatDouble(options.colsample_bytree)},
      {"seed", std::to_string(options.seed)},
      {"nthread", std::to_string(options.nthread)},
      {"num_pairsample", std::to_string(options.pairs_per_sample)},
  };
  for (const auto& [key, value] : settings) {
    VITRINE_XGB(XGBoosterSetParam(raw_b, key, value.c_str()), key);
  }
  for (int it = 0; it < options.rounds; ++it) {
    VITRINE_XGB(XGBoosterUpdateOneIter(raw_b, it, raw_dm), "boosting");
    if (options.on_round) options.on_round(it + 1);
  }
  r.feature_names_ = std::move(feature_names);
  r.num_trees_ = options.rounds;
  VITRINE_RETURN_IF_ERROR(Finish(&r, options.predict_threads));
  return r;
}

Status LearnedRanker::Finish(LearnedRanker* r, int predict_threads) {
  if (predict_threads <= 0) {
    return Status::InvalidArgument("ranker: predict_threads must be > 0, got " +
                                   std::to_string(predict_threads));
  }
  VITRINE_XGB(
      XGBoosterSetParam(r->booster_.get(), "nthread", std::to_string(predict_threads).c_str()),
      "nthread");
  // The model bytes are taken once, here, so Serialize never calls into the
  // booster while other threads predict.
  bst_ulong len = 0;
  const char* model = nullptr;
  VITRINE_XGB(XGBoosterSaveModelToBuffer(r->booster_.get(), "{\"format\": \"ubj\"}", &len, &model),
              "saving the model");
  r->model_ubj_.assign(model, len);
  // The model is configured lazily by its first prediction; make it here, on
  // one thread, before the ranker is shared. Rows: all zeros, all missing.
  const size_t f = r->feature_names_.size();
  std::vector<float> rows(2 * f, 0.0f);
  std::fill(rows.begin() + static_cast<std::ptrdiff_t>(f), rows.end(), std::nanf(""));
  float want[2] = {0, 0};
  VITRINE_RETURN_IF_ERROR(r->PredictWithXgboost(rows, 2, want));
  // The flat copy reads XGBoost's model document; a document it does not
  // understand (another XGBoost version's schema) or a copy that disagrees
  // with XGBoost on the check rows leaves scoring to XGBoost.
  try {
    r->flat_.reset(BuildFlat<FlatForest>(r->model_ubj_, f, kMaxFlatDepth).release());
  } catch (const std::exception&) {
    r->flat_.reset();
  }
  if (r->flat_) {
    float got[2] = {0, 0};
    r->flat_->Score(rows.data(), 2, f, got);
    if (std::memcmp(got, want, sizeof(got)) != 0) r->flat_.reset();
  }
  return Status::OK();
}

namespace {

Status CheckBatch(bool loaded, size_t f, std::span<const float> features, size_t n,
                  std::span<float> scores) {
  if (!loaded) return Status::InvalidArgument("ranker: no model (train or load one first)");
  if (features.size() != n * f || scores.size() < n) {
    return Status::InvalidArgument("ranker: " + std::to_string(features.size()) +
                                   " feature values and room for " + std::to_string(scores.size()) +
                                   " scores for " + std::to_string(n) + " rows of " +
                                   std::to_string(f) + " features");
  }
  return Status::OK();
}

}  // namespace

Status LearnedRanker::Predict(std::span<const float> features, size_t n,
                              std::span<float> scores) const {
  if (!flat_) return PredictWithXgboost(features, n, scores);
  const size_t f = feature_names_.size();
  VITRINE_RETURN_IF_ERROR(CheckBatch(booster_ != nullptr, f, features, n, scores));
  if (n > 0) flat_->Score(features.data(), n, f, scores.data());
  return Status::OK();
}

Status LearnedRanker::PredictWithXgboost(std::span<const float> features, size_t n,
                                         std::span<float> scores) const {
  const size_t f = feature_names_.size();
  VITRINE_RETURN_IF_ERROR(CheckBatch(booster_ != nullptr, f, features, n, scores));
  if (n == 0) return Status::OK();
  // __array_interface__ of the caller's buffer; read in place, not copied.
  char array[192];
  std::snprintf(array, sizeof(array),
                "{\"data\": [%llu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
                "\"version\": 3}",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(features.data())), n,
                f);
  static constexpr const char* kConfig =
      "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
      "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  VITRINE_XGB(
      XGBoosterPredictFromDense(booster_.get(), array, kConfig, nullptr, &shape, &dim, &out),
      "predicting");
  // `out` is XGBoost's per-thread buffer for this booster: copy it now.
  std::copy(out, out + n, scores.begin());
  return Status::OK();
}

Result<std::vector<float>> LearnedRanker::Predict(std::span<const float> features, size_t n) const {
  std::vector<float> scores(n);
  VITRINE_RETURN_IF_ERROR(Predict(features, n, scores));
  return scores;
}

Result<Explanation> LearnedRanker::Explain(std::span<const float> row) const {
  if (!booster_) return Status::InvalidArgument("ranker: no model (train or load one first)");
  const size_t f = feature_names_.size();
  if (row.size() != f) {
    return Status::InvalidArgument("ranker: explain: " + std::to_string(row.size()) +
                                   " values, expected " + std::to_string(f) + " features");
  }
  DMatrixHandle raw_dm = nullptr;
  VITRINE_XGB(XGDMatrixCreateFromMat(row.data(), 1, f, std::nanf(""), &raw_dm),
              "creating the explain matrix");
  DMatrix dm(raw_dm);
  static constexpr const char* kConfig =
      "{\"type\": 2, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
      "\"strict_shape\": false}";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  VITRINE_XGB(XGBoosterPredictFromDMatrix(booster_.get(), raw_dm, kConfig, &shape, &dim, &out),
              "predicting contributions");
  bst_ulong size = 1;
  for (bst_ulong d = 0; d < dim; ++d) size *= shape[d];
  if (size != f + 1) {
    return Status::Internal("ranker: explain: xgboost returned " + std::to_string(size) +
                            " contributions, expected " + std::to_string(f + 1));
  }
  Explanation e;
  e.bias = out[f];
  e.score = e.bias;
  for (size_t j = 0; j < f; ++j) {
    e.contributions.push_back({static_cast<int>(j), feature_names_[j], out[j]});
    e.score += out[j];
  }
  std::stable_sort(
      e.contributions.begin(), e.contributions.end(),
      [](const auto& a, const auto& b) { return std::fabs(a.value) > std::fabs(b.value); });
  return e;
}

Result<std::string> LearnedRanker::Serialize() const {
  if (!booster_) return Status::InvalidArgument("ranker: no model to serialize");
  std::string out(kMagic, sizeof(kMagic));
  Append(&out, kVersion);
  Append(&out, static_cast<uint32_t>(feature_names_.size()));
  Append(&out, static_cast<uint32_t>(num_trees_));
  Append(&out, uint32_t{0});
  for (const auto& s : feature_names_) {
    Append(&out, static_cast<uint32_t>(s.size()));
    out += s;
  }
  Append(&out, static_cast<uint64_t>(model_ubj_.size()));
  out += model_ubj_;
  Append(&out, Xxh64(out));
  return out;
}

Result<LearnedRanker> LearnedRanker::Deserialize(std::string_view bytes, std::string_view name,
                                                 std::span<const std::string> expected_features,
                                                 int predict_threads) {
  const std::string where(name);
  auto corrupt = [&](const std::string& what) { return Status::Corruption(where + ": " + what); };
  if (bytes.size() < sizeof(kMagic) || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("not a vitrine ranker model (bad magic, expected \"VTRLTR\\r\\n\")");
  }
  Reader in(bytes, where);
  std::string_view skip;
  VITRINE_RETURN_IF_ERROR(in.Take(sizeof(kMagic), &skip, "magic"));
  uint32_t version = 0, features = 0, trees = 0, reserved = 0;
  VITRINE_RETURN_IF_ERROR(in.Read(&version, "version"));
  if (version != kVersion) {
    return Status::Unsupported(where + ": ranker format version " + std::to_string(version) +
                               " (this build reads version " + std::to_string(kVersion) + ")");
  }
  VITRINE_RETURN_IF_ERROR(in.Read(&features, "feature count"));
  VITRINE_RETURN_IF_ERROR(in.Read(&trees, "tree count"));
  VITRINE_RETURN_IF_ERROR(in.Read(&reserved, "reserved"));
  if (features == 0 || features > kMaxFeatures) {
    return corrupt("feature count " + std::to_string(features) + " out of range (1.." +
                   std::to_string(kMaxFeatures) + ")");
  }
  std::vector<std::string> names;
  for (uint32_t i = 0; i < features; ++i) {
    uint32_t len = 0;
    VITRINE_RETURN_IF_ERROR(in.Read(&len, "feature name length"));
    if (len == 0 || len > kMaxNameBytes) {
      return corrupt("feature " + std::to_string(i) + ": name length " + std::to_string(len) +
                     " out of range (1.." + std::to_string(kMaxNameBytes) + ")");
    }
    std::string_view s;
    VITRINE_RETURN_IF_ERROR(in.Take(len, &s, "feature name"));
    names.emplace_back(s);
  }
  uint64_t model_len = 0;
  VITRINE_RETURN_IF_ERROR(in.Read(&model_len, "model length"));
  const size_t left = bytes.size() - in.pos();
  if (model_len > left || left - model_len < 8) {
    return corrupt("truncated: the header promises a " + std::to_string(model_len) +
                   "-byte model and an 8-byte checksum after byte " + std::to_string(in.pos()) +
                   ", but only " + std::to_string(left) + " bytes follow");
  }
  if (left - model_len > 8) {
    return corrupt(std::to_string(left - model_len - 8) + " trailing bytes after the checksum");
  }
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  const uint64_t actual = Xxh64(bytes.substr(0, bytes.size() - 8));
  if (stored != actual) {
    return corrupt("checksum mismatch (stored xxh64 " + Hex64(stored) + ", computed " +
                   Hex64(actual) + ")");
  }
  const std::string_view model = bytes.substr(in.pos(), model_len);
  if (!expected_features.empty()) {
    if (expected_features.size() != names.size()) {
      return corrupt("model has " + std::to_string(names.size()) +
                     " features, the engine computes " + std::to_string(expected_features.size()) +
                     kStaleModelHint);
    }
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] != expected_features[i]) {
        return corrupt("feature " + std::to_string(i) + " is '" + names[i] +
                       "' in the model, expected '" + expected_features[i] + "'" + kStaleModelHint);
      }
    }
  }

  // Only UBJSON (an object: '{') goes to XGBoost; anything else would take
  // its deprecated binary reader.
  if (model.empty() || model[0] != '{') {
    return corrupt("the model is not XGBoost UBJSON (expected '{' at byte " +
                   std::to_string(in.pos()) + ")");
  }
  BoosterHandle raw_b = nullptr;
  VITRINE_XGB(XGBoosterCreate(nullptr, 0, &raw_b), "creating the booster");
  LearnedRanker out;
  out.booster_.reset(raw_b);
  VITRINE_XGB(XGBoosterSetParam(raw_b, "verbosity", "0"), "verbosity");
  if (XGBoosterLoadModelFromBuffer(raw_b, model.data(), model.size()) != 0) {
    return corrupt(std::string("the XGBoost model does not parse: ") + XGBGetLastError());
  }
  bst_ulong model_features = 0;
  int rounds = 0;
  VITRINE_XGB(XGBoosterGetNumFeature(raw_b, &model_features), "reading the feature count");
  VITRINE_XGB(XGBoosterBoostedRounds(raw_b, &rounds), "reading the tree count");
  if (model_features != features) {
    return corrupt("the XGBoost model has " + std::to_string(model_features) +
                   " features, the header says " + std::to_string(features));
  }
  if (rounds < 0 || static_cast<uint32_t>(rounds) != trees) {
    return corrupt("the XGBoost model has " + std::to_string(rounds) + " trees, the header says " +
                   std::to_string(trees));
  }
  out.feature_names_ = std::move(names);
  out.num_trees_ = rounds;
  VITRINE_RETURN_IF_ERROR(Finish(&out, predict_threads));
  return out;
}

Status LearnedRanker::Save(const std::filesystem::path& path) const {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, Serialize());
  return WriteFileAtomic(path, bytes);
}

Result<LearnedRanker> LearnedRanker::Load(const std::filesystem::path& path,
                                          std::span<const std::string> expected_features,
                                          int predict_threads) {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFileRaw(path));
  return Deserialize(bytes, path.string(), expected_features, predict_threads);
}

}  // namespace vitrine
