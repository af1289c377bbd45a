// VisualEncoder throughput: descriptors per second for 28x28 gray images and
// projection (PCA whitening) per second. Quality is measured by
// `vitrine visual-eval`, not here.
#include <benchmark/benchmark.h>

#include <random>

#include "embed/visual_encoder.h"

namespace vitrine {
namespace {

ImageBatch RandomImages(size_t n, size_t side) {
  std::mt19937 rng(1);
  ImageBatch b;
  b.height = b.width = side;
  b.pixels = MatrixU8(n, side * side);
  for (auto& v : b.pixels.data) v = static_cast<uint8_t>(rng() % 256);
  return b;
}

void BM_Describe(benchmark::State& state) {
  const ImageBatch im = RandomImages(1024, 28);
  VisualEncoder enc;
  for (auto _ : state) {
    auto d = enc.Describe(im);
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations() * im.size());
}
BENCHMARK(BM_Describe)->Unit(benchmark::kMillisecond);

void BM_Transform(benchmark::State& state) {
  const ImageBatch im = RandomImages(4096, 28);
  VisualEncoder enc;
  auto d = enc.Describe(im);
  if (!d.ok() || !enc.Fit(*d).ok()) {
    state.SkipWithError("fit failed");
    return;
  }
  for (auto _ : state) {
    auto y = enc.Transform(*d);
    benchmark::DoNotOptimize(y);
  }
  state.SetItemsProcessed(state.iterations() * d->rows);
}
BENCHMARK(BM_Transform)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vitrine
