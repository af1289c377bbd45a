// EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
// WWW 2019): the item-item weight matrix of a linear autoencoder with a zero
// diagonal, in closed form:
//
//   G = X^T X + lambda I,  P = G^-1,  B[i][j] = -P[i][j] / P[j][j],  B[j][j] = 0
//
// X is the users x items interaction matrix read as 0/1 (the stored weights
// are ignored, as in the paper). A history's score for item j is the sum over
// its items h of B[h][j].
//
// One place for the solve: engine/baselines.h's Ease baseline keeps B dense;
// embed/item_neighbors.h keeps each row's top entries as the bundle's
// item-item candidate source.
//
// Cost: memory items^2 * 4 bytes (900 MB at 15,000 items; the solve is in
// place in float), time O(items^3) through LAPACK potrf/potri (OpenBLAS,
// multi-threaded; about 4 s for 5,000 items on 2 cores).
#pragma once

#include <cstdint>

#include "core/matrix.h"
#include "core/status.h"

namespace vitrine {

// B for `user_items` (rows = users, cols = items). InvalidArgument for
// lambda <= 0 or not finite; Unsupported when there are more than max_items
// columns (the message gives the memory the model would need); Internal if
// the Gram matrix is not positive definite (only for a tiny lambda).
Result<Matrix> FitEase(const CsrMatrix& user_items, double lambda, int64_t max_items);

}  // namespace vitrine
