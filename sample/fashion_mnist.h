// Fashion-MNIST for the sample generator (internal to sample/): loading the
// 70,000 product images and the per-image features the invented world is
// built on (a visual style and a brightness tercile), and the small image
// transforms that let a catalog larger than the dataset reuse images.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine::sample {

constexpr int kCategories = 10;  // Fashion-MNIST classes = retail categories
constexpr int kStyles = 4;       // visual styles per category
constexpr int kImagePixels = 28 * 28;

struct FashionMnist {
  MatrixU8 images;              // 70000 x 784: train then t10k
  std::vector<uint8_t> labels;  // class 0..9
};

// The four files of the dataset, each read as "<dir>/<name>.gz" or "<dir>/<name>".
inline constexpr const char* kDatasetFiles[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte"};

// "<dir>/<base>.gz", else "<dir>/<base>", else NotFound saying how to get
// the dataset.
Result<std::filesystem::path> FindDatasetFile(const std::filesystem::path& dir,
                                              const std::string& base);

// Train then t10k images and labels from `dir`. Corruption (naming the file)
// for images that are not n x 28 x 28, a label count that differs, or a label
// outside 0..9.
Result<FashionMnist> LoadFashionMnist(const std::filesystem::path& dir);

// Visual style 0..kStyles-1 of every image: k-means per category over 7x7
// block means with a constant seed, so styles depend only on the image.
// Styles are numbered by centroid brightness for a stable meaning.
std::vector<uint8_t> ComputeVisualStyles(const FashionMnist& ds);

// Brightness tercile (0 light garment .. 2 dark garment) of every image, from
// the mean grey level of its non-background pixels.
std::vector<uint8_t> ComputeShadeTerciles(const FashionMnist& ds);

// Writes the 28 x 28 image `src` to `dst` mirrored (flip), or else shifted by
// (dx, dy) with background (0) filling the uncovered border.
void TransformImage(const uint8_t* src, bool flip, int dx, int dy, uint8_t* dst);

}  // namespace vitrine::sample
