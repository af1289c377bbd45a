// VisualEncoder: the visual block of an item vector (docs/architecture.md, embed/).
//
// Two kinds of input:
//  * precomputed vectors (.npy float32 [n,d] or .fvecs, e.g. from a CNN or
//    CLIP model) in catalog order: LoadPrecomputedVectors() checks the row
//    count and rejects NaN/Inf naming the row; they may be used as they are or
//    passed through Fit/Transform like descriptors.
//  * images: IDX ubyte (n x h x w grayscale, as MNIST) or PNG/JPEG files
//    (decoded with stb_image, resized to a square canonical size). Describe()
//    turns each image into a handcrafted descriptor:
//      - HOG-style gradient-orientation histograms per cell at one or more cell
//        grids, soft-binned in orientation and in space, power-normalised
//        (sqrt: Hellinger) and L2-normalised per 2x2 block of cells;
//      - optionally a downsampled-pixel block and a coarse intensity
//        histogram (off by default: docs/experiments.md);
//      - for colour images, hue x saturation and value histograms.
//    Each group is L2-normalised and scaled by its weight, so no group
//    dominates by its dimension.
//  Fit() learns PCA on the catalog's descriptors; Transform() centres,
//  projects to `dim` components and scales component i by
//  (eigenvalue_i + eps)^-whiten_power (0.5 = full whitening, 0 = plain PCA),
//  then optionally L2-normalises rows (fusion L2-normalises anyway).
//
// The defaults (HOG only, 9x9 cells, 12 signed bins, PCA-128, whiten power
// 0.2) were chosen from variants measured with `vitrine visual-eval`
// (same-class precision@10 on Fashion-MNIST); the numbers are in
// docs/experiments.md.
//
// Determinism: every step is deterministic for a given input and options
// (no random projections); results match across thread counts up to float
// summation order in BLAS.
//
// Thread safety: a VisualEncoder is immutable after Fit()/FromParameters();
// Describe() and Transform() are const and safe to call concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

// n images of the same size, interleaved channels (1 = gray, 3 = RGB), one
// image per row of `pixels` (height * width * channels bytes).
struct ImageBatch {
  size_t height = 0;
  size_t width = 0;
  size_t channels = 1;
  MatrixU8 pixels;
  size_t size() const { return pixels.rows; }
};

// Reads IDX ubyte(.gz) images (n x h x w). If expected_count > 0, a different
// image count is an error naming both counts.
Result<ImageBatch> LoadIdxImages(const std::filesystem::path& path, size_t expected_count = 0);

// Decodes PNG/JPEG (anything stb_image reads) and resizes each image to
// size x size RGB (aspect ratio is not kept); pass the encoder's
// canonical_size to avoid a second resampling in Describe(). A file that cannot be decoded
// is an error naming the file and stb's reason.
Result<ImageBatch> LoadImageFiles(const std::vector<std::filesystem::path>& paths, int size = 28);

// Reads .npy/.fvecs vectors (core/array_io.h ReadVectors). Rejects a row
// holding NaN or Inf ("vectors.npy: row 17 column 3 is NaN") and, if
// expected_count > 0, a row count different from it.
Result<Matrix> LoadPrecomputedVectors(const std::filesystem::path& path, size_t expected_count = 0);

struct VisualEncoderOptions {
  // --- descriptor (Describe) ---
  // Images are resampled to canonical_size x canonical_size first when their
  // size differs (IDX Fashion-MNIST: 28, used as is).
  int canonical_size = 28;
  // HOG cell grids: one histogram set per entry, each an n x n grid of cells.
  std::vector<int> hog_grids = {9};
  int orientation_bins = 12;       // gradient orientation bins per cell
  bool signed_orientation = true;  // 0..2pi (dark-on-light matters) vs 0..pi
  float hog_power = 0.5f;          // histogram^power before normalisation
  // Local contrast normalisation of the (powered) histograms: kBlock = L2 over
  // each 2x2 block of cells (overlapping, (g-1)^2 blocks, as Dalal-Triggs),
  // kCell = L2 per cell, kNone = only the group's global L2. Local norms use
  // sqrt(sum^2 + 0.01) so flat background is not blown up.
  enum class HogNorm { kNone, kCell, kBlock };
  HogNorm hog_norm = HogNorm::kBlock;
  float hog_weight = 1.0f;                                 // scale of the HOG group
  int pixel_grid = 0;                                      // downsampled pixel block side; 0 = none
  float pixel_weight = 0.5f;                               // scale of the pixel group
  int intensity_bins = 0;                                  // intensity histogram bins; 0 = none
  float intensity_weight = 0.25f;                          // scale of the intensity group
  int hue_bins = 12, saturation_bins = 4, value_bins = 8;  // colour only
  float colour_weight = 0.5f;                              // scale of the colour group

  // --- projection (Fit / Transform) ---
  int dim = 128;                 // output dimension (clamped to the descriptor dimension)
  float whiten_power = 0.2f;     // partial whitening (docs/experiments.md)
  float whiten_epsilon = 1e-4f;  // relative to the largest eigenvalue
  bool l2_normalize = true;      // unit output rows
  // Descriptors up to this dimension get an exact dense eigensolver; above
  // it (when dim < d/2) the top components come from subspace iteration.
  int exact_eigen_max_dim = 1024;

  // The bounds Validate enforces: options come from a manifest on disk too,
  // and a canonical size of 2^30 would ask for exabytes.
  static constexpr int kMaxCanonicalSize = 1024;
  static constexpr size_t kMaxHogGrids = 8;
  static constexpr int kMaxBins = 360;  // orientation and colour bins
  static constexpr int kMaxDim = 65536;

  // InvalidArgument naming the first option out of its range: canonical_size
  // in [2, kMaxCanonicalSize]; at most kMaxHogGrids HOG grids, each in [1,
  // canonical_size]; orientation_bins in [1, kMaxBins]; pixel_grid in [0,
  // canonical_size]; the other bins in [0, kMaxBins]; weights, powers and
  // epsilon finite and >= 0; dim in [1, kMaxDim]; exact_eigen_max_dim >= 0.
  Status Validate() const;
};

class VisualEncoder {
 public:
  explicit VisualEncoder(VisualEncoderOptions options = {});

  // Restores a fitted encoder from stored parameters (see mean() etc.).
  static Result<VisualEncoder> FromParameters(VisualEncoderOptions options, Matrix mean,
                                              Matrix components, Matrix eigenvalues);

  const VisualEncoderOptions& options() const { return options_; }

  // Descriptor dimension for images with `channels` channels.
  size_t DescriptorDim(size_t channels) const;

  // One descriptor row per image. Pure function of the options.
  Result<Matrix> Describe(const ImageBatch& images) const;

  // Learns mean, principal components and eigenvalues from the catalog's
  // descriptors (n x d, n >= 2). Deterministic. Replaces earlier parameters.
  Status Fit(const Matrix& descriptors);

  // n x dim projections; the column count must match the fitted mean.
  Result<Matrix> Transform(const Matrix& descriptors) const;

  // Describe + Fit + Transform on the catalog images, in bounded memory:
  // Fit sees the descriptors of at most kFitSample images (all of them for
  // smaller catalogs; else an evenly spaced sample), and the catalog is
  // described and projected kEncodeChunk images at a time, so the full
  // n x descriptor-dim matrix never exists (1M 28x28 images: about 4 GB of
  // descriptors). `on_progress(done)` is called after each chunk.
  static constexpr size_t kFitSample = 100000;
  static constexpr size_t kEncodeChunk = 16384;
  Result<Matrix> FitTransform(const ImageBatch& images,
                              const std::function<void(size_t done)>& on_progress = {});

  bool fitted() const { return !mean_.empty(); }
  // Parameters, serialisable as .npy: mean 1 x d, components dim x d
  // (orthonormal rows, by decreasing eigenvalue), eigenvalues 1 x dim.
  const Matrix& mean() const { return mean_; }
  const Matrix& components() const { return components_; }
  const Matrix& eigenvalues() const { return eigenvalues_; }

 private:
  VisualEncoderOptions options_;
  Matrix mean_, components_, eigenvalues_;
};

// Rows scaled to unit L2 norm (zero rows stay zero).
void L2NormalizeRows(Matrix* m);

// Evaluation helper (CLI visual-eval, tests): mean over queries of the
// fraction of the k exact nearest catalog rows whose label equals the query's
// label. `cosine` ranks by inner product of L2-normalised copies; otherwise by
// squared L2 distance. Blocked BLAS sgemm; O(nq * nc * d).
Result<double> SameLabelPrecisionAtK(const Matrix& catalog, const std::vector<int>& catalog_labels,
                                     const Matrix& queries, const std::vector<int>& query_labels,
                                     int k, bool cosine);

}  // namespace vitrine
