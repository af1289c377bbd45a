#include "engine/visual_eval.h"

#include "core/array_io.h"
#include "core/progress.h"

namespace vitrine {
namespace {

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

}  // namespace

Result<VisualEvalReport> EvaluateVisualEncoder(const VisualEvalOptions& o) {
  if (o.k < 1) return Status::InvalidArgument("k must be >= 1, got " + std::to_string(o.k));
  StageTimer load("load images");
  VITRINE_ASSIGN_OR_RETURN(ImageBatch train, LoadIdxImages(o.train));
  VITRINE_ASSIGN_OR_RETURN(ImageBatch test, LoadIdxImages(o.test));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int> train_labels,
                           LoadLabels(o.train_labels.string(), train.size()));
  VITRINE_ASSIGN_OR_RETURN(std::vector<int> test_labels,
                           LoadLabels(o.test_labels.string(), test.size()));
  Truncate(&train, &train_labels, o.limit);
  Truncate(&test, &test_labels, o.limit);
  load.Done(std::to_string(train.size()) + " catalog, " + std::to_string(test.size()) + " queries");

  VisualEvalReport report;
  report.catalog = train.size();
  report.queries = test.size();
  report.k = o.k;
  auto eval = [&](const std::string& name, const Matrix& cat, const Matrix& qry,
                  double seconds) -> Status {
    StageTimer t("exact " + std::to_string(o.k) + "-NN, " + name);
    VITRINE_ASSIGN_OR_RETURN(double pc,
                             SameLabelPrecisionAtK(cat, train_labels, qry, test_labels, o.k, true));
    VITRINE_ASSIGN_OR_RETURN(
        double pl, SameLabelPrecisionAtK(cat, train_labels, qry, test_labels, o.k, false));
    t.Done();
    report.rows.push_back({name, cat.cols, pc, pl, seconds});
    return Status::OK();
  };

  // Fits `enc`'s projection on the catalog rows and scores both projected
  // sets; the time reported runs from `t`'s start.
  auto fit_and_eval = [&](const std::string& name, VisualEncoder& enc, const Matrix& cat,
                          const Matrix& qry, StageTimer& t) -> Status {
    VITRINE_RETURN_IF_ERROR(enc.Fit(cat));
    VITRINE_ASSIGN_OR_RETURN(Matrix a, enc.Transform(cat));
    VITRINE_ASSIGN_OR_RETURN(Matrix b, enc.Transform(qry));
    const double secs = t.Seconds();
    t.Done();
    return eval(name, a, b, secs);
  };

  if (!o.descriptor_only) {
    const Matrix tr = ToFloat(train), te = ToFloat(test);
    VITRINE_RETURN_IF_ERROR(eval("raw pixels", tr, te, 0.0));
    StageTimer t("PCA-whitened pixels");
    VisualEncoderOptions po;
    po.dim = o.encoder.dim;
    po.whiten_power = 0.5f;
    po.l2_normalize = false;
    VisualEncoder pe(po);
    VITRINE_RETURN_IF_ERROR(fit_and_eval("PCA-whitened pixels", pe, tr, te, t));
  }
  StageTimer t("vitrine descriptor");
  VisualEncoderOptions vo = o.encoder;
  vo.l2_normalize = false;  // evaluated both ways (cosine and L2)
  VisualEncoder enc(vo);
  VITRINE_ASSIGN_OR_RETURN(Matrix dtr, enc.Describe(train));
  VITRINE_ASSIGN_OR_RETURN(Matrix dte, enc.Describe(test));
  LogInfo("descriptor dimension %zu", dtr.cols);
  VITRINE_RETURN_IF_ERROR(fit_and_eval("vitrine descriptor", enc, dtr, dte, t));
  return report;
}

}  // namespace vitrine
