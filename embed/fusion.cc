#include "embed/fusion.h"

#include <cmath>
#include <set>

namespace vitrine {

void NormalizeRows(Matrix* m) {
  for (size_t i = 0; i < m->rows; ++i) NormalizeInPlace(m->row(i), m->cols);
}

Result<FusedVectors> Fuse(std::vector<Block> blocks) {
  if (blocks.empty()) return Status::InvalidArgument("fuse: no blocks given");
  std::set<std::string> names;
  size_t total = 0;
  const size_t n = blocks[0].vectors.rows;
  for (const Block& b : blocks) {
    if (b.name.empty()) return Status::InvalidArgument("fuse: a block has an empty name");
    if (!names.insert(b.name).second) {
      return Status::InvalidArgument("fuse: block name '" + b.name + "' appears twice");
    }
    if (b.vectors.rows != n) {
      return Status::InvalidArgument("fuse: block '" + b.name + "' has " +
                                     std::to_string(b.vectors.rows) + " rows, block '" +
                                     blocks[0].name + "' has " + std::to_string(n));
    }
    if (b.vectors.cols == 0) {
      return Status::InvalidArgument("fuse: block '" + b.name + "' has zero columns");
    }
    if (b.vectors.data.size() != b.vectors.rows * b.vectors.cols) {
      return Status::Internal("fuse: block '" + b.name + "' buffer size does not match shape");
    }
    for (size_t i = 0; i < b.vectors.rows; ++i) {
      const float* r = b.vectors.row(i);
      for (size_t j = 0; j < b.vectors.cols; ++j) {
        if (!std::isfinite(r[j])) {
          return Status::InvalidArgument("fuse: block '" + b.name + "' row " + std::to_string(i) +
                                         " column " + std::to_string(j) + ": non-finite value");
        }
      }
    }
    total += b.vectors.cols;
  }

  FusedVectors out;
  out.vectors = Matrix(n, total);
  size_t offset = 0;
  for (Block& b : blocks) {
    if (b.normalize_rows) NormalizeRows(&b.vectors);
    const size_t d = b.vectors.cols;
    for (size_t i = 0; i < n; ++i) {
      std::copy(b.vectors.row(i), b.vectors.row(i) + d, out.vectors.row(i) + offset);
    }
    out.layout.push_back({b.name, offset, d, b.weight});
    offset += d;
    b.vectors = Matrix();  // release the block as soon as it is copied
  }
  return out;
}

Status ScaleQuery(const std::vector<BlockLayout>& layout,
                  const std::map<std::string, float>& weights, float* vec) {
  for (const auto& [name, w] : weights) {
    bool found = false;
    for (const BlockLayout& b : layout) found = found || b.name == name;
    if (!found) {
      std::string known;
      for (const BlockLayout& b : layout) known += (known.empty() ? "" : ", ") + b.name;
      return Status::InvalidArgument("unknown block '" + name + "' in weights (blocks: " + known +
                                     ")");
    }
    if (!std::isfinite(w)) {
      return Status::InvalidArgument("weight of block '" + name + "' is not finite");
    }
  }
  for (const BlockLayout& b : layout) {
    auto it = weights.find(b.name);
    const float w = it == weights.end() ? b.weight : it->second;
    for (size_t j = 0; j < b.dim; ++j) vec[b.offset + j] *= w;
  }
  return Status::OK();
}

std::vector<float> BlockCosines(const std::vector<BlockLayout>& layout, const float* a,
                                const float* b) {
  std::vector<float> out;
  out.reserve(layout.size());
  for (const BlockLayout& bl : layout) {
    const float* x = a + bl.offset;
    const float* y = b + bl.offset;
    const double nx = DotDouble(x, x, bl.dim), ny = DotDouble(y, y, bl.dim);
    out.push_back(nx == 0 || ny == 0
                      ? 0.0f
                      : static_cast<float>(DotDouble(x, y, bl.dim) / std::sqrt(nx * ny)));
  }
  return out;
}

}  // namespace vitrine
