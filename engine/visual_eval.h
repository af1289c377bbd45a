// Offline quality of the visual encoder: same-class precision@k of exact
// nearest neighbours on a labelled image set (Fashion-MNIST by default),
// for raw pixels, PCA-whitened pixels and the vitrine descriptor side by
// side. `vitrine visual-eval` prints the report.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "embed/visual_encoder.h"

namespace vitrine {

struct VisualEvalOptions {
  // IDX files: catalog images and labels, query images and labels.
  std::filesystem::path train, train_labels, test, test_labels;
  int k = 10;                    // neighbours scored per query (precision@k)
  size_t limit = 0;              // at most this many catalog and query images (0 = all)
  bool descriptor_only = false;  // skip the pixel baselines
  VisualEncoderOptions encoder;  // the descriptor evaluated (l2_normalize is ignored)
};

struct VisualEvalRow {
  std::string name;  // "raw pixels", "PCA-whitened pixels", "vitrine descriptor"
  size_t dim = 0;
  double cosine = 0;   // same-class precision@k, cosine neighbours
  double l2 = 0;       // same-class precision@k, L2 neighbours
  double seconds = 0;  // fit + encode time
};

struct VisualEvalReport {
  size_t catalog = 0, queries = 0;
  int k = 0;
  std::vector<VisualEvalRow> rows;
};

// Errors: unreadable or mismatched image / label files, k < 1.
Result<VisualEvalReport> EvaluateVisualEncoder(const VisualEvalOptions& options);

}  // namespace vitrine
