// Next-item hit rate on a temporal split: does `recommend --intent
// next-step` name the item a customer went on to next, more often than
// "similar to the last item" and than the most popular items?
//
// For each test user the bundle knows, the target is the first new item of
// their held-out events: the test item with the earliest timestamp among
// those not in their train history (ties by item row). Users without a
// timed test item are skipped. Each model gets the user's train history and
// answers k items, never one the user already has:
//   next-step        Recommend with Intent::kNextStep (engine/next_step.h)
//   similar-to-last  Similar to the newest train item, history excluded
//   toppop           Engine::Popular, history excluded
//   for-you          the bundle's default recommendation, for reference
// A hit is the target among the k. The hit rate carries a 95% Wilson
// interval: the models answer the same users, so intervals that do not
// overlap are a difference, and overlapping ones may still be one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/interactions.h"
#include "core/status.h"
#include "engine/engine.h"

namespace vitrine {

struct NextStepEvalOptions {
  int k = 10;
  std::string column = "category";  // the next-step model's column
  int64_t max_users = 0;            // a seeded sample of this many users; <= 0 = all
  uint64_t seed = 42;
};

struct NextStepHitRate {
  std::string model;
  int64_t hits = 0;
  double hit_rate = 0;
  double low = 0, high = 0;  // 95% Wilson interval
};

struct NextStepEvaluation {
  std::string column;
  int k = 0;
  int64_t users = 0;                    // users evaluated (with a target)
  std::vector<NextStepHitRate> models;  // next-step, similar-to-last, toppop, for-you
  double seconds = 0;
};

// `test` is the held-out interactions read against the bundle's catalog.
// Errors: the next-step model's (no such column, no timestamps), and any
// request's.
Result<NextStepEvaluation> EvaluateNextStep(const Engine& engine, const Interactions& test,
                                            const NextStepEvalOptions& options);

}  // namespace vitrine
