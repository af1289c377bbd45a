// GenerateSampleData: validates the options, then runs the stages in order
// (dataset, world and catalog, images, interactions, truth) and commits the
// output files. The stages live in world.cc, fashion_mnist.cc,
// interactions.cc and writers.cc.
#include "sample/generator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "core/progress.h"
#include "sample/fashion_mnist.h"
#include "sample/interactions.h"
#include "sample/random.h"
#include "sample/world.h"
#include "sample/writers.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace sample {
namespace {

Status ValidateOptions(const GeneratorOptions& o) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (o.num_items < 1 || o.num_items > std::numeric_limits<int32_t>::max()) {
    return bad("items must be in 1..2147483647, got " + std::to_string(o.num_items));
  }
  if (o.num_users < 1 || o.num_users > std::numeric_limits<int32_t>::max()) {
    return bad("users must be in 1..2147483647, got " + std::to_string(o.num_users));
  }
  if (!(o.events_per_user_median > 0) || !std::isfinite(o.events_per_user_median)) {
    return bad("events-per-user median must be a positive number");
  }
  if (!(o.events_per_user_sigma >= 0) || o.events_per_user_sigma > 5) {
    return bad("events-per-user sigma must be in [0, 5]");
  }
  if (o.max_events_per_user < 1) return bad("max events per user must be >= 1");
  if (o.num_clusters < 1 || o.num_clusters > 64) {
    return bad("clusters must be in 1..64, got " + std::to_string(o.num_clusters));
  }
  if (!(o.zipf_exponent >= 0) || o.zipf_exponent > 5) return bad("zipf exponent must be in [0, 5]");
  if (o.days < 1) return bad("days must be >= 1");
  if (o.unique_images < 1) return bad("unique images must be >= 1");
  if (o.trend_items < 0 || o.trend_items > o.num_items) {
    return bad("trend items must be in 0..items, got " + std::to_string(o.trend_items));
  }
  if (!(o.gift_share >= 0 && o.gift_share <= 1)) return bad("gift share must be in [0, 1]");
  if (!(o.omnichannel >= 0 && o.omnichannel <= 1)) return bad("omnichannel share must be in [0, 1]");
  if (!(o.next_step_share >= 0 && o.next_step_share <= 1)) {
    return bad("next-step share must be in [0, 1]");
  }
  return Status::OK();
}

Result<GeneratorReport> Generate(const GeneratorOptions& o, const fs::path& out_dir) {
  VITRINE_RETURN_IF_ERROR(ValidateOptions(o));
  const fs::path dataset_dir =
      o.fashion_mnist_dir.empty() ? DefaultFashionMnistDir() : o.fashion_mnist_dir;
  // Fail fast (before any progress output) when the dataset is missing.
  for (const char* base : kDatasetFiles) {
    VITRINE_RETURN_IF_ERROR(FindDatasetFile(dataset_dir, base).status());
  }
  StageTimer load_timer("load fashion-mnist");
  VITRINE_ASSIGN_OR_RETURN(FashionMnist ds, LoadFashionMnist(dataset_dir));
  load_timer.Done(std::to_string(ds.images.rows) + " images from " + dataset_dir.string());

  StageTimer style_timer("visual styles");
  const std::vector<uint8_t> styles = ComputeVisualStyles(ds);
  const std::vector<uint8_t> shades = ComputeShadeTerciles(ds);
  style_timer.Done();

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return Status::IOError(out_dir.string() + ": cannot create directory: " + ec.message());
  GeneratorReport report;
  report.items_csv = out_dir / "items.csv";
  report.interactions_csv = out_dir / "interactions.csv";
  report.images = out_dir / "images.idx.gz";
  report.truth = out_dir / "truth.json";

  StageTimer items_timer("items");
  Items it = MakeItems(o, ds, styles, shades);
  Rng cluster_rng = Rng::ForStage(o.seed, 4);
  const std::vector<Cluster> clusters = MakeClusters(o.num_clusters, cluster_rng);
  AssignTasteClusters(clusters, &it);
  AtomicFile items_file;
  VITRINE_RETURN_IF_ERROR(items_file.Open(report.items_csv));
  VITRINE_RETURN_IF_ERROR(WriteItemsCsv(it, items_file));
  VITRINE_RETURN_IF_ERROR(items_file.Finish());
  items_timer.Done(std::to_string(it.n) + " items");

  {
    StageTimer timer("images", it.n);
    // Level 1: on these mostly-black images it is ~2x faster than level 6
    // for ~3% more bytes.
    AtomicFile images_file;
    VITRINE_RETURN_IF_ERROR(images_file.Open(report.images, /*gzip_level=*/1));
    VITRINE_RETURN_IF_ERROR(WriteImages(it, ds, images_file, timer));
    // Images are the slowest file: commit it here, the rest follow below.
    VITRINE_RETURN_IF_ERROR(images_file.Commit());
  }
  ds = FashionMnist();  // 55 MB no longer needed

  const ItemSampler sampler(it, clusters);
  Users users;
  AtomicFile inter_file;
  VITRINE_RETURN_IF_ERROR(inter_file.Open(report.interactions_csv));
  VITRINE_RETURN_IF_ERROR(WriteInteractions(o, it, clusters, sampler, inter_file, &users));
  VITRINE_RETURN_IF_ERROR(inter_file.Finish());
  report.events = users.total_events;

  AtomicFile truth_file;
  VITRINE_RETURN_IF_ERROR(truth_file.Open(report.truth));
  VITRINE_RETURN_IF_ERROR(WriteTruth(o, it, clusters, users, truth_file));
  VITRINE_RETURN_IF_ERROR(truth_file.Finish());

  VITRINE_RETURN_IF_ERROR(items_file.Commit());
  VITRINE_RETURN_IF_ERROR(inter_file.Commit());
  VITRINE_RETURN_IF_ERROR(truth_file.Commit());
  VITRINE_RETURN_IF_ERROR(FsyncPath(out_dir));  // make the renames durable

  report.items = it.n;
  report.users = o.num_users;
  std::vector<int32_t> counts = users.events;
  const size_t mid = counts.size() / 2;
  std::nth_element(counts.begin(), counts.begin() + mid, counts.end());
  double median = counts[mid];
  if (counts.size() % 2 == 0) {
    const int32_t lower = *std::max_element(counts.begin(), counts.begin() + mid);
    median = 0.5 * (median + lower);
  }
  report.median_events_per_user = median;
  return report;
}

}  // namespace
}  // namespace sample

fs::path DefaultFashionMnistDir() {
  const char* env = std::getenv("VITRINE_FASHION_MNIST");
  if (env != nullptr && *env != '\0') return env;
  return "/usr/share/datasets/fashion-mnist";
}

Result<GeneratorReport> GenerateSampleData(const GeneratorOptions& options,
                                           const fs::path& out_dir) {
  return sample::Generate(options, out_dir);
}

}  // namespace vitrine
