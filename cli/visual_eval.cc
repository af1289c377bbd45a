// vitrine visual-eval: reproduces the VisualEncoder quality figure.
//
// Catalog = train images, queries = test images; for each query the k exact
// nearest catalog images (cosine, and L2) are checked for the query's class.
// Prints raw pixels, PCA-whitened pixels and the vitrine descriptor side by
// side with timings.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/array_io.h"
#include "core/progress.h"
#include "embed/visual_encoder.h"

namespace vitrine::cli {
namespace {

constexpr char kCmd[] = "visual-eval";

Result<std::vector<int>> LoadLabels(const std::string& path, size_t expected) {
  VITRINE_ASSIGN_OR_RETURN(IdxArray arr, ReadIdx(path));
  if (arr.dims.size() != 1) {
    return Status::InvalidArgument(path + ": expected a 1-D IDX label file");
  }
  if (arr.dims[0] != expected) {
    return Status::InvalidArgument(path + ": has " + std::to_string(arr.dims[0]) +
                                   " labels but the image file has " + std::to_string(expected) +
                                   " images");
  }
  return std::vector<int>(arr.data.data.begin(), arr.data.data.end());
}

void Truncate(ImageBatch* b, std::vector<int>* labels, size_t n) {
  if (n == 0 || n >= b->size()) return;
  b->pixels.rows = n;
  b->pixels.data.resize(n * b->pixels.cols);
  labels->resize(n);
}

Matrix ToFloat(const ImageBatch& b) {
  Matrix m(b.size(), b.pixels.cols);
  for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = b.pixels.data[i] / 255.0f;
  return m;
}

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

struct Row {
  std::string name;
  size_t dim;
  double cos, l2, seconds;
};

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
  vo.l2_normalize = false;  // evaluated both ways below

  StageTimer load("load images");
  auto train = LoadIdxImages(r["train"].as<std::string>());
  if (!train.ok()) return Fail(kCmd, train.status());
  auto test = LoadIdxImages(r["test"].as<std::string>());
  if (!test.ok()) return Fail(kCmd, test.status());
  auto train_labels = LoadLabels(r["train-labels"].as<std::string>(), train->size());
  if (!train_labels.ok()) return Fail(kCmd, train_labels.status());
  auto test_labels = LoadLabels(r["test-labels"].as<std::string>(), test->size());
  if (!test_labels.ok()) return Fail(kCmd, test_labels.status());
  const size_t limit = r["limit"].as<size_t>();
  Truncate(&*train, &*train_labels, limit);
  Truncate(&*test, &*test_labels, limit);
  load.Done(std::to_string(train->size()) + " catalog, " + std::to_string(test->size()) +
            " queries");

  std::vector<Row> rows;
  auto eval = [&](const std::string& name, const Matrix& cat, const Matrix& qry,
                  double seconds) -> Status {
    StageTimer t("exact " + std::to_string(k) + "-NN, " + name);
    VITRINE_ASSIGN_OR_RETURN(double pc,
                             SameLabelPrecisionAtK(cat, *train_labels, qry, *test_labels, k, true));
    VITRINE_ASSIGN_OR_RETURN(
        double pl, SameLabelPrecisionAtK(cat, *train_labels, qry, *test_labels, k, false));
    t.Done();
    rows.push_back({name, cat.cols, pc, pl, seconds});
    return Status::OK();
  };

  if (!r.count("descriptor-only")) {
    const Matrix tr = ToFloat(*train), te = ToFloat(*test);
    if (Status st = eval("raw pixels", tr, te, 0.0); !st.ok()) return Fail(kCmd, st);
    StageTimer t("PCA-whitened pixels");
    VisualEncoderOptions po;
    po.dim = dim;
    po.whiten_power = 0.5f;
    po.l2_normalize = false;
    VisualEncoder pe(po);
    if (Status st = pe.Fit(tr); !st.ok()) return Fail(kCmd, st);
    auto a = pe.Transform(tr);
    auto b = pe.Transform(te);
    if (!a.ok() || !b.ok()) return Fail(kCmd, a.ok() ? b.status() : a.status());
    const double secs = t.Seconds();
    t.Done();
    if (Status st = eval("PCA-whitened pixels", *a, *b, secs); !st.ok()) return Fail(kCmd, st);
  }
  {
    StageTimer t("vitrine descriptor");
    VisualEncoder enc(vo);
    auto dtr = enc.Describe(*train);
    if (!dtr.ok()) return Fail(kCmd, dtr.status());
    auto dte = enc.Describe(*test);
    if (!dte.ok()) return Fail(kCmd, dte.status());
    LogInfo("descriptor dimension %zu", dtr->cols);
    if (Status st = enc.Fit(*dtr); !st.ok()) return Fail(kCmd, st);
    auto a = enc.Transform(*dtr);
    auto b = enc.Transform(*dte);
    if (!a.ok() || !b.ok()) return Fail(kCmd, a.ok() ? b.status() : a.status());
    const double secs = t.Seconds();
    t.Done();
    if (Status st = eval("vitrine descriptor", *a, *b, secs); !st.ok()) return Fail(kCmd, st);
  }

  std::printf("catalog %zu, queries %zu, k = %d, same-class precision@%d (exact k-NN)\n",
              train->size(), test->size(), k, k);
  std::printf("%-22s %6s %10s %10s %10s\n", "representation", "dim", "cosine", "L2", "encode_s");
  for (const Row& row : rows) {
    std::printf("%-22s %6zu %10.4f %10.4f %10.2f\n", row.name.c_str(), row.dim, row.cos, row.l2,
                row.seconds);
  }
  return kExitOk;
}

}  // namespace

VITRINE_COMMAND(kCmd, "same-class precision@k of visual vectors (Fashion-MNIST by default)", Run);

}  // namespace vitrine::cli
