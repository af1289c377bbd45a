// Style progression, "the next step": which value of a catalog column
// (category by default) customers move to after an item with a given value,
// learned from the time order of their histories. `recommend --intent
// next-step` answers with the logical next piece for the person's newest
// item, ranked within each likely next value by the person's taste
// (Engine::NextStep, docs/retail.md "Next step").
//
// The model is a first-order Markov chain over the column's values. Each
// user's stored history (one entry per item, at its latest event time;
// entries without a time or without a value left out) is put in time order.
// Every step from one time to the next counts one transition C[x][y] += 1
// from the earlier entry's value x to the later one's y. Entries sharing a
// time have no order among them (data with daily timestamps has many), so a
// step between two times with several entries is shared evenly by all
// their pairs. Estimates are smoothed towards the
// overall share of each value as a next step, with kNextStepPrior
// pseudo-transitions:
//
//   P(y | x) = (C[x][y] + kNextStepPrior * m(y)) / (C[x] + kNextStepPrior)
//   m(y)     = (sum_x C[x][y] + 1) / (transitions + V)
//
// so a value never seen as a source predicts the marginal, and every
// probability is positive. kNextStepPrior = 10 is a reasoned default (ten
// transitions' worth of evidence before a value's own row dominates), not a
// tuned one.
//
// Fitting is one pass over the history, O(nnz log(row length)); the Engine
// fits on the first next-step request per column and keeps the model.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/catalog.h"
#include "core/status.h"

namespace vitrine {

// The column may hold at most this many values: the model is a dense
// V x V table (2048^2 floats = 16 MB).
inline constexpr int64_t kMaxNextStepValues = 2048;
inline constexpr double kNextStepPrior = 10.0;
// The for-you list a next-step answer reorders is at least this long.
inline constexpr int kNextStepPool = 100;

struct NextStepModel {
  std::string column;
  int64_t values = 0;            // V: the column's dictionary size when fitted
  std::vector<float> counts;     // V x V, row-major: counts[x * V + y] = C[x][y]
  std::vector<double> from;      // C[x] = sum_y C[x][y]
  std::vector<double> marginal;  // m(y)
  double transitions = 0;        // steps counted (the sum of C)

  // P(y | x) as above; x outside [0, V) (a missing value, or one added to
  // the catalog after the fit) gives m(y). y must be in [0, V).
  double Probability(int64_t x, int64_t y) const;
  // (y, P(y | x)) for every y, most likely first (ties by value code).
  std::vector<std::pair<int32_t, double>> Next(int64_t x) const;
};

// Fits the model of categorical column `column` from per-user histories in
// CSR form: item rows `indices[indptr[u]..indptr[u+1])` and their latest event
// times (unix seconds, 0 = unknown). InvalidArgument when the column is not
// categorical or has more than kMaxNextStepValues values, or when no pair
// is timed ("the bundle's interactions had no timestamps").
Result<NextStepModel> FitNextStep(std::span<const int64_t> indptr, std::span<const int32_t> indices,
                                  std::span<const int64_t> times, const Column& column);

}  // namespace vitrine
