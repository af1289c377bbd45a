// Temporal per-user holdout: the train/test split behind `vitrine evaluate`.
//
// For every user, the user's events are ordered by timestamp (a stable sort:
// equal timestamps keep input order) and the latest ones are held out:
//
//   n = number of events of the user (rows, before any aggregation)
//   n_test = 0                                           if n == 1
//          = clamp(ceil(test_fraction * n - 1e-9), 1, n - 1)  if n >= 2
//
// So a user with one event stays entirely in train, every user with two or
// more events has at least one test and at least one train event, and the
// test events are never older than the user's train events. (The 1e-9 keeps
// 0.7 * 10 from rounding up to 8.) When several events share the timestamp at
// the boundary, the later ones in input order go to test.
//
// The split is a pure function of its input (no randomness, no threads), so
// the same file always splits the same way. It works on parsed rows; reading
// and writing CSV is the caller's job (cli/split.cc).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace vitrine {

// One interaction row. `raw_line` is carried for the caller (to write the row
// back unchanged); the split never reads it.
struct Event {
  std::string user;
  std::string item;
  int64_t ts = 0;
  std::string raw_line;
};

struct SplitOptions {
  double test_fraction = 0.2;  // in (0, 1)
};

struct SplitResult {
  // Indices into the input span, ascending (input order), disjoint, and
  // together covering every input row.
  std::vector<int64_t> train;
  std::vector<int64_t> test;
  int64_t users = 0;            // distinct users
  int64_t users_with_test = 0;  // users with >= 2 events
};

// Number of held-out events for a user with `n` events (the rule above).
int64_t TestCountForUser(int64_t n, double test_fraction);

// Splits `events`. InvalidArgument when test_fraction is not in (0, 1).
[[nodiscard]] Result<SplitResult> TemporalSplit(std::span<const Event> events,
                                                const SplitOptions& opts = {});

}  // namespace vitrine
