// The interaction log of the sample generator (internal to sample/): every
// user's events drawn from the hidden taste model and streamed to
// interactions.csv, user by user, so memory stays O(items + users).
#pragma once

#include <cstdint>
#include <vector>

#include "core/file_util.h"
#include "core/status.h"
#include "sample/generator.h"
#include "sample/world.h"

namespace vitrine::sample {

// What the generator drew per user (user index order), for truth.json.
struct Users {
  std::vector<int8_t> cluster;    // primary taste cluster
  std::vector<int8_t> secondary;  // secondary cluster, -1 = none
  std::vector<int32_t> events;    // events written for the user
  std::vector<int32_t> trend_items;  // the planted burst's items (GeneratorOptions::trend_items)
  std::vector<int32_t> gift_items;   // the planted gifts (GeneratorOptions::gift_share)
  // The category that follows each category (GeneratorOptions::next_step_share);
  // empty without.
  std::vector<int32_t> next_category;
  int64_t total_events = 0;
};

// Draws o.num_users users: a primary (and with probability
// kSecondaryClusterUsers a secondary) cluster, a log-normal event count, and
// sessions of items from `sampler`, each running the view -> cart ->
// purchase -> return funnel; returns after the interaction window are
// dropped. Appends "user_id,item_id,event,timestamp[,channel]" rows (grouped by user,
// time-ordered within a user) to `f` and fills `users`.
Status WriteInteractions(const GeneratorOptions& o, const Items& it,
                         const std::vector<Cluster>& clusters, const ItemSampler& sampler,
                         AtomicFile& f, Users* users);

}  // namespace vitrine::sample
