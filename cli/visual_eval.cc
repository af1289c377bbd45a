// vitrine visual-eval: reproduces the VisualEncoder quality figure
// (engine/visual_eval.h); this file parses flags and prints the table.
#include "engine/visual_eval.h"

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"

namespace vitrine::cli {
namespace {

constexpr char kCmd[] = "visual-eval";

// "7,4" -> {7, 4}; false on anything that is not a comma-separated list of
// positive integers.
bool ParseInts(const std::string& s, std::vector<int>* out) {
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(tok, &used);
    } catch (const std::exception&) {
      return false;
    }
    if (used != tok.size() || v < 1) return false;
    out->push_back(v);
  }
  return true;
}

int Run(int argc, char** argv) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  cxxopts::Options opts(std::string("vitrine ") + kCmd,
                        "Same-class precision@k of exact nearest neighbours: raw pixels, "
                        "PCA-whitened pixels and the vitrine visual descriptor.\n\nExample:\n"
                        "  vitrine visual-eval --dim 128 -k 10\n"
                        "  vitrine visual-eval --limit 10000   (10k catalog, 10k queries)\n");
  VisualEncoderOptions def;
  auto join = [](const std::vector<int>& v) {
    std::string s;
    for (int x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
    return s;
  };
  // clang-format off
  opts.add_options()
      ("train", "catalog images (IDX)", cxxopts::value<std::string>()->default_value(dir + "train-images-idx3-ubyte.gz"))
      ("train-labels", "catalog labels (IDX)", cxxopts::value<std::string>()->default_value(dir + "train-labels-idx1-ubyte.gz"))
      ("test", "query images (IDX)", cxxopts::value<std::string>()->default_value(dir + "t10k-images-idx3-ubyte.gz"))
      ("test-labels", "query labels (IDX)", cxxopts::value<std::string>()->default_value(dir + "t10k-labels-idx1-ubyte.gz"))
      ("dim", "output dimension", cxxopts::value<int>()->default_value(std::to_string(def.dim)))
      ("k", "neighbours per query", cxxopts::value<int>()->default_value("10"))
      ("limit", "use at most N catalog and N query images (0 = all)", cxxopts::value<size_t>()->default_value("0"));
  opts.add_options("Descriptor variants")
      ("grids", "HOG cell grids", cxxopts::value<std::string>()->default_value(join(def.hog_grids)))
      ("bins", "orientation bins", cxxopts::value<int>()->default_value(std::to_string(def.orientation_bins)))
      ("unsigned", "unsigned orientations (0..pi)")
      ("hog-power", "histogram power", cxxopts::value<float>()->default_value(std::to_string(def.hog_power)))
      ("hog-norm", "local HOG normalisation: block, cell or none", cxxopts::value<std::string>()->default_value("block"))
      ("pixel-grid", "downsampled pixel block side (0 = none)", cxxopts::value<int>()->default_value(std::to_string(def.pixel_grid)))
      ("pixel-weight", "pixel block weight", cxxopts::value<float>()->default_value(std::to_string(def.pixel_weight)))
      ("intensity-bins", "intensity histogram bins (0 = none)", cxxopts::value<int>()->default_value(std::to_string(def.intensity_bins)))
      ("intensity-weight", "intensity histogram weight", cxxopts::value<float>()->default_value(std::to_string(def.intensity_weight)))
      ("whiten", "whitening power (0.5 full, 0 none)", cxxopts::value<float>()->default_value(std::to_string(def.whiten_power)))
      ("descriptor-only", "skip the pixel baselines");
  // clang-format on
  Parsed p = ParseOrExit(opts, argc, argv, kCmd);
  if (p.exit_code >= 0) return p.exit_code;
  const auto& r = p.result;
  const int k = r["k"].as<int>();
  const int dim = r["dim"].as<int>();
  if (k < 1) return UsageError(kCmd, "-k must be >= 1");
  if (dim < 1) return UsageError(kCmd, "--dim must be >= 1");

  VisualEncoderOptions vo;
  vo.dim = dim;
  vo.hog_grids.clear();
  if (!ParseInts(r["grids"].as<std::string>(), &vo.hog_grids)) {
    return UsageError(kCmd, "--grids expects positive integers such as 7,4");
  }
  vo.orientation_bins = r["bins"].as<int>();
  vo.signed_orientation = !r.count("unsigned");
  vo.hog_power = r["hog-power"].as<float>();
  const std::string norm = r["hog-norm"].as<std::string>();
  if (norm == "block") {
    vo.hog_norm = VisualEncoderOptions::HogNorm::kBlock;
  } else if (norm == "cell") {
    vo.hog_norm = VisualEncoderOptions::HogNorm::kCell;
  } else if (norm == "none") {
    vo.hog_norm = VisualEncoderOptions::HogNorm::kNone;
  } else {
    return UsageError(kCmd, "--hog-norm must be block, cell or none, not '" + norm + "'");
  }
  vo.pixel_grid = r["pixel-grid"].as<int>();
  vo.pixel_weight = r["pixel-weight"].as<float>();
  vo.intensity_bins = r["intensity-bins"].as<int>();
  vo.intensity_weight = r["intensity-weight"].as<float>();
  vo.whiten_power = r["whiten"].as<float>();
  VisualEvalOptions eo;
  eo.train = r["train"].as<std::string>();
  eo.train_labels = r["train-labels"].as<std::string>();
  eo.test = r["test"].as<std::string>();
  eo.test_labels = r["test-labels"].as<std::string>();
  eo.k = k;
  eo.limit = r["limit"].as<size_t>();
  eo.descriptor_only = r.count("descriptor-only") > 0;
  eo.encoder = vo;
  auto report = EvaluateVisualEncoder(eo);
  if (!report.ok()) return Fail(kCmd, report.status());
  std::printf("catalog %zu, queries %zu, k = %d, same-class precision@%d (exact k-NN)\n",
              report->catalog, report->queries, k, k);
  std::printf("%-22s %6s %10s %10s %10s\n", "representation", "dim", "cosine", "L2", "encode_s");
  for (const VisualEvalRow& row : report->rows) {
    std::printf("%-22s %6zu %10.4f %10.4f %10.2f\n", row.name.c_str(), row.dim, row.cosine, row.l2,
                row.seconds);
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND(kCmd, "same-class precision@k of visual vectors (Fashion-MNIST by default)", Run);

}  // namespace vitrine::cli
