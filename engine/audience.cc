// Engine::FindAudience: the users most likely to want an item (engine/audience.h).
#include <algorithm>
#include <atomic>

#include "core/progress.h"
#include "core/simd.h"
#include "engine/engine.h"

namespace vitrine {

namespace {

// ef_search of the user index: recall above 0.95 at k = 200 on the
// measurements in docs/retail.md; raised to k for larger audiences.
constexpr int kAudienceEfSearch = 256;

float Dot(const float* a, const float* b, size_t d) { return simd::InnerProduct(a, b, d); }

}  // namespace

Result<AudienceSearch> ParseAudienceSearch(std::string_view name) {
  if (name == "auto") return AudienceSearch::kAuto;
  if (name == "exact") return AudienceSearch::kExact;
  if (name == "hnsw") return AudienceSearch::kIndex;
  return Status::InvalidArgument("search '" + std::string(name) +
                                 "': expected auto, exact or hnsw");
}

Result<std::shared_ptr<const AudienceIndex>> Engine::AudienceUsers(bool with_index) const {
  VITRINE_RETURN_IF_ERROR(RefuseOnPrivateBundle("audience"));
  // One build at a time: concurrent first requests wait for it and share it.
  std::lock_guard<std::mutex> lock(audience_mu_);
  if (audience_ && (!with_index || audience_->index)) return audience_;
  auto a = std::make_shared<AudienceIndex>();
  const auto n = static_cast<int64_t>(users_.size());
  const size_t dim = vectors_->cols;
  if (audience_) {
    a->users = audience_->users;
    a->listable = audience_->listable;
    a->owners_indptr = audience_->owners_indptr;
    a->owners = audience_->owners;
  } else {
    auto m = std::make_shared<Matrix>(static_cast<size_t>(n), dim);
    std::vector<char> has(static_cast<size_t>(n), 0);
    StageTimer timer("audience: user vectors", n);
    std::atomic<int64_t> done{0};
    std::atomic<bool> failed{false};
    Status error;
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t u = 0; u < n; ++u) {
      if (failed.load(std::memory_order_relaxed)) continue;
      const auto row = static_cast<int32_t>(u);
      const std::vector<int32_t> items = UserHistory(row);
      if (!items.empty()) {
        auto q = HistoryVector(items, UserHistoryWeights(row));
        Status st = q.ok() ? ScaleQuery(layout_, {}, q->data()) : q.status();
        if (!st.ok()) {
#pragma omp critical
          {
            if (!failed.exchange(true)) error = st;
          }
          continue;
        }
        SetPriorSegment(&*q, 0.0f);  // the priors add the same to every user's score
        std::copy(q->begin(), q->end(), m->data.begin() + static_cast<std::ptrdiff_t>(u * dim));
        has[static_cast<size_t>(u)] = 1;
      }
      const int64_t d = done.fetch_add(1, std::memory_order_relaxed) + 1;
      if (d % 1024 == 0) {
#pragma omp critical
        timer.Update(d);
      }
    }
    if (failed) return error;
    timer.Done(std::to_string(n) + " users");
    for (int64_t u = 0; u < n; ++u) {
      if (has[static_cast<size_t>(u)] != 0) a->listable.add(static_cast<uint32_t>(u));
    }
    for (int32_t u : opted_out_) a->listable.remove(static_cast<uint32_t>(u));
    a->users = std::move(m);
    // The history transposed (item -> users), for "already has the item".
    const size_t items = static_cast<size_t>(catalog_.size());
    a->owners_indptr.assign(items + 1, 0);
    for (int32_t i : hist_indices_) ++a->owners_indptr[static_cast<size_t>(i) + 1];
    for (size_t i = 0; i < items; ++i) a->owners_indptr[i + 1] += a->owners_indptr[i];
    a->owners.resize(hist_indices_.size());
    std::vector<int64_t> next(a->owners_indptr.begin(), a->owners_indptr.end() - 1);
    for (int64_t u = 0; u < n; ++u) {
      for (int64_t p = hist_indptr_[u]; p < hist_indptr_[u + 1]; ++p) {
        a->owners[static_cast<size_t>(next[static_cast<size_t>(hist_indices_[p])]++)] =
            static_cast<int32_t>(u);
      }
    }
  }
  if (with_index) {
    StageTimer timer("audience: HNSW index over users", n);
    VectorIndexOptions opts;
    opts.spec = "HNSW32";
    opts.metric = Metric::kInnerProduct;
    opts.on_progress = [&timer](size_t added) { timer.Update(static_cast<int64_t>(added)); };
    VITRINE_ASSIGN_OR_RETURN(a->index, VectorIndex::Build(a->users, opts));
    timer.Done(std::to_string(n) + " users");
  }
  audience_ = a;
  return std::shared_ptr<const AudienceIndex>(a);
}

Result<Audience> Engine::FindAudience(const AudienceRequest& r) const {
  VITRINE_ASSIGN_OR_RETURN(int32_t item, FindItem(r.item));
  if (r.query.k < 1) {
    return Status::InvalidArgument("k must be at least 1, got " + std::to_string(r.query.k));
  }
  if (!has_cf_ || users_.size() == 0) {
    return Status::InvalidArgument(
        "the bundle was built without interactions: it knows no users to list");
  }
  if (index_->deleted().contains(static_cast<uint32_t>(item))) {
    return Status::InvalidArgument("item '" + r.item +
                                   "' was removed from the catalog: it has no audience");
  }
  if (discretion_policy() && is_sensitive(item)) {
    return Status::InvalidArgument(
        "item '" + r.item +
        "' is sensitive (the bundle's privacy.sensitive): no audience is built for it; a bundle "
        "built with --sensitive-policy off allows it (docs/privacy.md)");
  }
  if (r.query.rules != nullptr) {
    Bitmap allowed;
    RequestRules rules;
    VITRINE_RETURN_IF_ERROR(Allowed(r.query, std::nullopt, {}, &allowed, &rules));
    if (!allowed.contains(static_cast<uint32_t>(item))) {
      return Status::InvalidArgument("item '" + r.item +
                                     "' does not pass the rules: it would be recommended "
                                     "to no one, so it has no audience");
    }
  }
  const auto n = static_cast<int64_t>(users_.size());
  const bool exact = r.search == AudienceSearch::kExact ||
                     (r.search == AudienceSearch::kAuto && n <= kAudienceExactMaxUsers);
  VITRINE_ASSIGN_OR_RETURN(std::shared_ptr<const AudienceIndex> a, AudienceUsers(!exact));

  Bitmap eligible = a->listable;
  if (!r.include_owners) {
    for (int64_t p = a->owners_indptr[static_cast<size_t>(item)];
         p < a->owners_indptr[static_cast<size_t>(item) + 1]; ++p) {
      eligible.remove(static_cast<uint32_t>(a->owners[static_cast<size_t>(p)]));
    }
  }
  for (const std::string& id : r.opt_out) {
    if (auto u = users_.Find(id)) eligible.remove(static_cast<uint32_t>(*u));
  }
  Audience out;
  out.eligible = static_cast<int64_t>(eligible.cardinality());
  out.search = exact ? "exact" : "hnsw";
  const size_t dim = vectors_->cols;
  const float* target = vectors_->row(static_cast<size_t>(item));
  const Matrix& users = *a->users;
  const auto k = static_cast<size_t>(std::min<int64_t>(r.query.k, out.eligible));
  // Live events since the build (the server's session store): a user who
  // rejected the item or hid its brand is never listed, nor (unless
  // include_owners) one who has just bought or viewed it.
  const Column* brand = catalog_.column(r.brand_column);
  const bool by_brand = brand != nullptr && brand->type == ColumnType::kCategorical;
  auto left_out = [&](int32_t user) {
    if (!r.live_events) return false;
    float net = 0;
    bool touched = false;
    for (const RecentEvent& ev : r.live_events(users_.id(user))) {
      const auto i = catalog_.ids.Find(ev.item);
      if (!i) continue;
      if (ev.feedback == Feedback::kHideBrand && by_brand &&
          brand->codes[static_cast<size_t>(*i)] >= 0 &&
          brand->codes[static_cast<size_t>(*i)] == brand->codes[static_cast<size_t>(item)]) {
        return true;
      }
      if (*i != item || ev.feedback == Feedback::kGift) continue;
      if (ev.feedback != Feedback::kTaste) return true;
      net += ev.weight;
      touched = true;
    }
    return touched && net > 0 && !r.include_owners;
  };
  auto best_first = [](const AudienceMember& x, const AudienceMember& y) {
    return x.score != y.score ? x.score > y.score : x.user < y.user;
  };
  std::vector<AudienceMember> found;
  if (exact) {
    std::vector<AudienceMember> all;
    all.reserve(static_cast<size_t>(out.eligible));
    for (uint32_t u : eligible) {
      AudienceMember m;
      m.user = static_cast<int32_t>(u);
      m.score = Dot(users.row(u), target, dim);
      all.push_back(m);
    }
    // Best first; ties by the lower user row, so answers are stable. Sorted
    // in growing prefixes: live events may leave some of the best out.
    size_t sorted = 0;
    for (size_t next = 0; next < all.size() && found.size() < k; ++next) {
      if (next == sorted) {
        const size_t to = std::min(all.size(), std::max<size_t>(2 * sorted, k + 16));
        std::partial_sort(all.begin() + static_cast<std::ptrdiff_t>(sorted),
                          all.begin() + static_cast<std::ptrdiff_t>(to), all.end(), best_first);
        sorted = to;
      }
      if (!left_out(all[next].user)) found.push_back(all[next]);
    }
  } else {
    // The index's k grows until k users pass the live events (or all have
    // been seen); scores are exact, whatever the index.
    size_t fetch = r.live_events ? 2 * k + 16 : k;
    while (k > 0) {
      fetch = std::min<size_t>(fetch, static_cast<size_t>(out.eligible));
      SearchParams p;
      p.k = static_cast<int>(fetch);
      p.ef_search = std::max(kAudienceEfSearch, p.k);
      p.filter = &eligible;
      std::vector<int64_t> labels;
      std::vector<float> dist;
      VITRINE_RETURN_IF_ERROR(a->index->Search(target, 1, p, &labels, &dist));
      std::vector<AudienceMember> got;
      for (int64_t u : labels) {
        if (u < 0) continue;
        AudienceMember m;
        m.user = static_cast<int32_t>(u);
        m.score = Dot(users.row(static_cast<size_t>(u)), target, dim);
        got.push_back(m);
      }
      std::sort(got.begin(), got.end(), best_first);
      found.clear();
      for (const AudienceMember& m : got) {
        if (found.size() == k) break;
        if (!left_out(m.user)) found.push_back(m);
      }
      if (found.size() == k || fetch >= static_cast<size_t>(out.eligible)) break;
      fetch *= 4;
    }
  }
  // The reason: the user's history item closest to the target, unless that
  // item is sensitive (engine/privacy.h).
  for (AudienceMember& m : found) {
    m.because = ClosestHistoryItem(UserHistory(m.user), target);
    if (m.because >= 0 && !MayName(item, m.because)) {
      m.because = -1;
      m.reason = "close to their taste";
    } else if (m.because >= 0) {
      m.reason = m.because == item ? "already has it"
                                   : "interacted with " + catalog_.ids.id(m.because) + " (similar)";
    }
  }
  out.members = std::move(found);
  return out;
}

}  // namespace vitrine
