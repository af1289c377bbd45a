// The interaction log: users, sessions and the event funnel, streamed to
// interactions.csv.
#include "sample/interactions.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/progress.h"
#include "sample/writers.h"

namespace vitrine::sample {
namespace {

struct Event {
  int64_t time;  // seconds after the session start, then absolute
  int32_t item;
  int32_t session;
  int32_t seq;  // generation order, breaks timestamp ties
  uint8_t type;
  uint8_t channel = 0;  // kChannelNames: online, store, wishlist
};

constexpr const char* kChannelNames[3] = {"online", "store", "wishlist"};

}  // namespace

Status WriteInteractions(const GeneratorOptions& o, const Items& it,
                         const std::vector<Cluster>& clusters, const ItemSampler& sampler,
                         AtomicFile& f, Users* users) {
  Rng rng = Rng::ForStage(o.seed, 5);
  const int k = static_cast<int>(clusters.size());
  std::vector<double> share(k);
  for (int c = 0; c < k; ++c) share[c] = clusters[c].user_share;
  const int64_t window = o.days * 86400;
  const int64_t end_time = o.start_timestamp + window;
  Users& us = *users;
  us.cluster.resize(o.num_users);
  us.secondary.resize(o.num_users);
  us.events.resize(o.num_users);
  us.total_events = 0;

  // The planted trend: its own random stream, so that every other event is
  // the same with or without it.
  Rng burst_rng = Rng::ForStage(o.seed, 9);
  us.trend_items.clear();
  while (static_cast<int64_t>(us.trend_items.size()) < std::min(o.trend_items, it.n)) {
    const auto item = static_cast<int32_t>(burst_rng.Below(static_cast<uint64_t>(it.n)));
    if (std::find(us.trend_items.begin(), us.trend_items.end(), item) == us.trend_items.end()) {
      us.trend_items.push_back(item);
    }
  }
  // Planted gifts, from their own stream too.
  Rng gift_rng = Rng::ForStage(o.seed, 10);
  us.gift_items.clear();
  if (o.gift_share > 0) {
    const int64_t gifts = std::min<int64_t>(it.n, std::max<int64_t>(5, it.n / 100));
    while (static_cast<int64_t>(us.gift_items.size()) < gifts) {
      const auto item = static_cast<int32_t>(gift_rng.Below(static_cast<uint64_t>(it.n)));
      if (std::find(us.gift_items.begin(), us.gift_items.end(), item) == us.gift_items.end()) {
        us.gift_items.push_back(item);
      }
    }
  }
  // Planted style progression: a cycle over the categories (no category
  // follows itself), from its own stream as well.
  Rng step_rng = Rng::ForStage(o.seed, 11);
  us.next_category.clear();
  if (o.next_step_share > 0) {
    std::vector<int> cycle(kCategories);
    for (int c = 0; c < kCategories; ++c) cycle[c] = c;
    for (int i = kCategories - 1; i > 0; --i) {
      std::swap(cycle[i], cycle[step_rng.Below(static_cast<uint64_t>(i) + 1)]);
    }
    us.next_category.assign(kCategories, 0);
    for (int i = 0; i < kCategories; ++i) us.next_category[cycle[i]] = cycle[(i + 1) % kCategories];
  }
  const double burst_views = std::max(20.0, static_cast<double>(o.num_users) / 25.0);
  const double burst_p = std::min(1.0, burst_views / static_cast<double>(o.num_users));

  // Omnichannel: in-store purchases and wishlist adds, from their own
  // stream; the column is written only when asked for.
  Rng channel_rng = Rng::ForStage(o.seed, 12);
  const bool channels = o.omnichannel > 0;
  std::string s = channels ? "user_id,item_id,event,timestamp,channel\n"
                           : "user_id,item_id,event,timestamp\n";
  std::vector<Event> ev;
  std::vector<int64_t> session_start;
  StageTimer timer("interactions", o.num_users);
  for (int64_t u = 0; u < o.num_users; ++u) {
    const int primary = rng.Pick(share.data(), k);
    int secondary = -1;
    if (k > 1 && rng.Bernoulli(kSecondaryClusterUsers)) {
      secondary = static_cast<int>(rng.Below(k - 1));
      if (secondary >= primary) ++secondary;
    }
    const double draw = o.events_per_user_median * std::exp(o.events_per_user_sigma * rng.Normal());
    // Clamp as a double first: llround of a huge draw would overflow.
    const double capped = std::min(draw, static_cast<double>(o.max_events_per_user));
    const int64_t target = std::max<int64_t>(1, std::llround(capped));

    // Item interactions in sessions, with times relative to the session.
    ev.clear();
    int32_t sessions = 0, seq = 0;
    int32_t previous = -1;  // the user's previous item, across sessions
    while (static_cast<int64_t>(ev.size()) < target) {
      const int32_t session = sessions++;
      const int length = 1 + static_cast<int>(rng.Below(5));
      int64_t t = 0;
      int group = -1;
      for (int step = 0; step < length && static_cast<int64_t>(ev.size()) < target; ++step) {
        if (group < 0 || !rng.Bernoulli(kStayInGroup)) {
          const int c =
              secondary >= 0 && rng.Bernoulli(kSecondaryClusterEvents) ? secondary : primary;
          group = sampler.SampleGroup(c, rng);
          if (previous >= 0 && !us.next_category.empty() &&
              step_rng.Bernoulli(o.next_step_share)) {
            const int next = us.next_category[it.category[previous]];
            const int g = sampler.SampleGroupInCategory(c, next, step_rng);
            if (g >= 0) group = g;
          }
        }
        const int32_t item = sampler.SampleInGroup(group, rng);
        previous = item;
        t += 20 + static_cast<int64_t>(rng.Below(280));
        ev.push_back({t, item, session, seq++, 0});
        if (!it.in_stock[item] || !rng.Bernoulli(kCartGivenView)) continue;
        t += 10 + static_cast<int64_t>(rng.Below(110));
        ev.push_back({t, item, session, seq++, 1});
        if (channels && channel_rng.Bernoulli(o.omnichannel)) ev.back().channel = 2;
        if (!rng.Bernoulli(kPurchaseGivenCart)) continue;
        t += 60 + static_cast<int64_t>(rng.Below(840));
        if (!us.gift_items.empty() && gift_rng.Bernoulli(o.gift_share)) {
          // Bought as a gift: a gift item, for someone else; never returned.
          const int32_t gift = us.gift_items[gift_rng.Below(us.gift_items.size())];
          ev.push_back({t, gift, session, seq++, 4});
          continue;
        }
        ev.push_back({t, item, session, seq++, 2});
        const uint8_t where = channels && channel_rng.Bernoulli(o.omnichannel) ? 1 : 0;
        ev.back().channel = where;
        if (!rng.Bernoulli(kReturnGivenPurchase)) continue;
        // Returns arrive 2-20 days later (where the item was bought);
        // relative to the session like the rest.
        ev.push_back({t + 86400 * (2 + static_cast<int64_t>(rng.Below(19))) +
                          static_cast<int64_t>(rng.Below(86400)),
                      item, session, seq++, 3, where});
      }
    }
    // Session starts: sorted uniform times in the window (leaving an hour
    // for the session itself).
    session_start.resize(sessions);
    for (auto& st : session_start) {
      st = o.start_timestamp + static_cast<int64_t>(rng.Below(window - 3600));
    }
    std::sort(session_start.begin(), session_start.end());
    size_t kept = 0;
    for (const Event& e : ev) {
      Event a = e;
      a.time += session_start[e.session];
      if (a.time >= end_time) continue;  // a return after the window closed
      ev[kept++] = a;
    }
    ev.resize(kept);
    std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) {
      return a.time != b.time ? a.time < b.time : a.seq < b.seq;
    });
    if (static_cast<int64_t>(ev.size()) > target) ev.resize(target);
    if (!us.trend_items.empty()) {
      for (const int32_t item : us.trend_items) {
        if (!burst_rng.Bernoulli(burst_p)) continue;
        const int64_t t = end_time - 120 - static_cast<int64_t>(burst_rng.Below(86400 - 600));
        ev.push_back({t, item, -1, seq++, 0});
        if (burst_rng.Bernoulli(0.3)) ev.push_back({t + 60, item, -1, seq++, 1});
      }
      std::sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) {
        return a.time != b.time ? a.time < b.time : a.seq < b.seq;
      });
    }

    for (const Event& e : ev) {
      AppendId(s, 'U', u, 7);
      s += ',';
      AppendId(s, 'I', e.item, 6);
      s += ',';
      s += kEventNames[e.type];
      s += ',';
      AppendInt(s, e.time);
      if (channels) {
        s += ',';
        s += kChannelNames[e.channel];
      }
      s += '\n';
    }
    VITRINE_RETURN_IF_ERROR(FlushIfLarge(s, f));
    us.cluster[u] = static_cast<int8_t>(primary);
    us.secondary[u] = static_cast<int8_t>(secondary);
    us.events[u] = static_cast<int32_t>(ev.size());
    us.total_events += static_cast<int64_t>(ev.size());
    if ((u & 1023) == 0) timer.Update(u);
  }
  timer.Done(std::to_string(us.total_events) + " events");
  return f.Append(s);
}

}  // namespace vitrine::sample
