// Block fusion (docs/architecture.md): the fused item vector is the
// concatenation of per-item blocks (cf, content, visual, and the one-column
// priors pop, new and trend), each stored at unit weight. Content and visual rows
// are L2-normalised; the cf rows keep ALS's norms (scaled by one constant) and
// the priors their value, as the caller asks per block (Block::normalize_rows).
// A query scales each of its block segments by the request's weight, so the
// inner product <query, item> is sum_b w_b <q_b, item_b>, and hybrid weights
// change per request without rebuilding the index.
//
// Thread safety: all functions are pure; concurrent calls on distinct outputs
// are safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

// One block of item vectors: row i belongs to catalog item i.
struct Block {
  std::string name;     // "cf", "content", "visual"; unique within a fusion
  Matrix vectors;       // n x dim
  float weight = 1.0f;  // default query-side weight, recorded in the layout
  // false: rows are kept as given (the caller guarantees norms <= 1). Used by
  // the cf block, whose ALS item norms carry popularity and confidence (the
  // inner product keeps ALS's own ranking; docs/architecture.md has the
  // measurement), and by the one-column priors.
  bool normalize_rows = true;
};

// Where a block lives inside a fused vector: the one block-layout type, read
// from and written to the bundle manifest by engine/bundle_schema.h.
struct BlockLayout {
  std::string name;
  size_t offset = 0;  // first column of the block in the fused vector
  size_t dim = 0;
  float weight = 1.0f;  // default query weight
};

struct FusedVectors {
  Matrix vectors;                   // n x sum(dim), blocks side by side
  std::vector<BlockLayout> layout;  // in input order, contiguous
  size_t dim() const { return vectors.cols; }
};

// L2-normalises every row of `m` in place; all-zero rows stay zero.
void NormalizeRows(Matrix* m);

// Normalises every block's rows and concatenates them. Fails (InvalidArgument)
// when there are no blocks, a name is empty or repeated, block row counts
// disagree ("block 'visual' has 90 rows, block 'cf' has 100"), a block has
// zero columns, or a block holds NaN/Inf ("block 'cf' row 17: non-finite
// value"). Blocks are moved from.
[[nodiscard]] Result<FusedVectors> Fuse(std::vector<Block> blocks);

// Multiplies each block segment of the query `vec` (layout total dim floats)
// in place by weights[block name], or by the layout's default weight for
// blocks not named. A name in `weights` that is not in the layout is an error
// (nothing is changed then). With unit-norm block segments in both the query
// and the item, <scaled query, item> = sum_b w_b cos_b.
[[nodiscard]] Status ScaleQuery(const std::vector<BlockLayout>& layout,
                                const std::map<std::string, float>& weights, float* vec);

// Per-block cosine of `a` and `b` (each layout total dim floats), in layout
// order; 0 for a block where either segment is zero. Used for explanations.
std::vector<float> BlockCosines(const std::vector<BlockLayout>& layout, const float* a,
                                const float* b);

}  // namespace vitrine
