// The next-step model (engine/next_step.h) and the answer to
// `recommend --intent next-step` (Engine::NextStep).
#include "engine/next_step.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/engine.h"

namespace vitrine {

double NextStepModel::Probability(int64_t x, int64_t y) const {
  const double m = marginal[static_cast<size_t>(y)];
  if (x < 0 || x >= values) return m;
  const double c = counts[static_cast<size_t>(x * values + y)];
  return (c + kNextStepPrior * m) / (from[static_cast<size_t>(x)] + kNextStepPrior);
}

std::vector<std::pair<int32_t, double>> NextStepModel::Next(int64_t x) const {
  std::vector<std::pair<int32_t, double>> out;
  out.reserve(static_cast<size_t>(values));
  for (int64_t y = 0; y < values; ++y) out.emplace_back(static_cast<int32_t>(y), Probability(x, y));
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

Result<NextStepModel> FitNextStep(std::span<const int64_t> indptr, std::span<const int32_t> indices,
                                  std::span<const int64_t> times, const Column& column) {
  if (column.type != ColumnType::kCategorical) {
    return Status::InvalidArgument("next-step by '" + column.name +
                                   "': expected a categorical column (category, tier...)");
  }
  const auto v = static_cast<int64_t>(column.dictionary.size());
  if (v > kMaxNextStepValues) {
    return Status::InvalidArgument("next-step by '" + column.name + "': the column has " +
                                   std::to_string(v) + " values, at most " +
                                   std::to_string(kMaxNextStepValues) + " are supported");
  }
  NextStepModel m;
  m.column = column.name;
  m.values = v;
  m.counts.assign(static_cast<size_t>(v * v), 0.0f);
  m.from.assign(static_cast<size_t>(v), 0.0);
  bool any_time = false;
  std::vector<std::pair<int64_t, int32_t>> row;  // (time, value), one user's timed entries
  for (size_t u = 0; u + 1 < indptr.size(); ++u) {
    row.clear();
    for (int64_t k = indptr[u]; k < indptr[u + 1]; ++k) {
      const auto kk = static_cast<size_t>(k);
      if (kk >= times.size() || times[kk] <= 0) continue;
      any_time = true;
      const auto item = static_cast<size_t>(indices[kk]);
      const int32_t code = item < column.codes.size() ? column.codes[item] : -1;
      if (code >= 0) row.emplace_back(times[kk], code);
    }
    std::sort(row.begin(), row.end());
    // Walk the distinct times; each step from one time's entries [a, b) to
    // the next time's [b, c) weighs 1, shared evenly by their pairs.
    size_t a = 0, b = 0;
    while (b < row.size()) {
      size_t c = b;
      while (c < row.size() && row[c].first == row[b].first) ++c;
      if (a < b) {
        const float share = 1.0f / static_cast<float>((b - a) * (c - b));
        for (size_t i = a; i < b; ++i) {
          for (size_t j = b; j < c; ++j) {
            m.counts[static_cast<size_t>(row[i].second * v + row[j].second)] += share;
          }
          m.from[static_cast<size_t>(row[i].second)] += share * static_cast<float>(c - b);
        }
        m.transitions += 1;
      }
      a = b, b = c;
    }
  }
  if (!any_time) {
    return Status::InvalidArgument(
        "next-step needs the order of each customer's events: the bundle's interactions had "
        "no timestamps");
  }
  m.marginal.assign(static_cast<size_t>(v), 0.0);
  for (int64_t x = 0; x < v; ++x) {
    for (int64_t y = 0; y < v; ++y) {
      m.marginal[static_cast<size_t>(y)] += m.counts[static_cast<size_t>(x * v + y)];
    }
  }
  for (double& c : m.marginal) c = (c + 1.0) / (m.transitions + static_cast<double>(v));
  return m;
}

Result<std::shared_ptr<const NextStepModel>> Engine::NextStepModelOf(
    const std::string& column) const {
  VITRINE_RETURN_IF_ERROR(RefuseOnPrivateBundle("next-step"));
  std::lock_guard<std::mutex> lock(next_step_mu_);
  auto it = next_step_.find(column);
  if (it != next_step_.end()) return it->second;
  const Column* col = catalog_.column(column);
  if (col == nullptr) {
    std::string names;
    for (const auto& c : catalog_.columns) names += (names.empty() ? "" : ", ") + c.name;
    return Status::InvalidArgument("next-step by '" + column +
                                   "': no such catalog column (columns: " + names + ")");
  }
  VITRINE_ASSIGN_OR_RETURN(NextStepModel m,
                           FitNextStep(hist_indptr_, hist_indices_, hist_times_, *col));
  auto shared = std::make_shared<const NextStepModel>(std::move(m));
  next_step_.emplace(column, shared);
  return shared;
}

namespace {

// "12%" and "1.4x" for reasons.
std::string Percent(double p) { return std::to_string(std::lround(100.0 * p)) + "%"; }
std::string Ratio(double r) {
  const long tenths = std::lround(10.0 * r);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "x";
}

}  // namespace

Result<std::vector<Hit>> Engine::NextStep(const RecommendRequest& r, const QueryParams& q,
                                          std::span<const int32_t> items,
                                          std::span<const float> weights,
                                          std::span<const int64_t> times,
                                          const std::vector<int32_t>& drop) const {
  VITRINE_ASSIGN_OR_RETURN(std::shared_ptr<const NextStepModel> model,
                           NextStepModelOf(r.category_column));
  const Column& col = *catalog_.column(r.category_column);
  // The value the next step follows: the newest item's that has one (ties
  // in time to the later position: the newer live input).
  std::vector<size_t> newest_first(items.size());
  std::iota(newest_first.begin(), newest_first.end(), size_t{0});
  std::stable_sort(newest_first.begin(), newest_first.end(), [&](size_t a, size_t b) {
    return times[a] != times[b] ? times[a] > times[b] : a > b;
  });
  int32_t from_item = -1, from_value = -1;
  for (size_t p : newest_first) {
    const int32_t code = col.codes[static_cast<size_t>(items[p])];
    if (code >= 0 && code < model->values) {
      from_item = items[p], from_value = code;
      break;
    }
  }

  Bitmap allowed;
  RequestRules rules;
  VITRINE_RETURN_IF_ERROR(Allowed(q, std::nullopt, drop, &allowed, &rules));
  // The person's for-you list, longer and without the rules' reranking
  // (their filters hold through `allowed`): the learned ranker's order
  // where the bundle answers with it, else the hybrid score's.
  QueryParams base = q;
  base.k = std::max(CandidatePoolSize(q), kNextStepPool);
  base.pool = 0;
  base.rules = nullptr;
  base.static_allowed = nullptr;
  base.allowed = &allowed;
  base.diversity = Diversity::kNone;
  base.exploration = 0;
  base.explain = false;
  base.stats = nullptr;
  VITRINE_ASSIGN_OR_RETURN(const std::vector<float> taste, HistoryVector(items, weights));
  const size_t dim = vectors_->cols;
  const bool diversify = q.diversity != Diversity::kNone;
  const auto n_allowed = static_cast<int64_t>(allowed.cardinality());
  std::vector<Hit> hits;
  // Caps can leave the answer short of k although more allowed items lie
  // further down the for-you list: widen it (x4) until k results, or until
  // the list holds every item it can, as Search does.
  while (true) {
    std::vector<Hit> for_you;
    if (ranker_ && q.use_ranker && !answer_with_hybrid_) {
      VITRINE_ASSIGN_OR_RETURN(for_you, RankedSearch(items, weights, base, drop));
    } else {
      std::vector<float> query = taste;
      PushAway(q, &query);
      VITRINE_ASSIGN_OR_RETURN(for_you, Search(std::move(query), base, drop, items, std::nullopt));
    }
    // Reweighted by the transition: the item at rank r (0-based) of the
    // for-you list is the person's pick with chance about 1 / (r + 1);
    // knowing their newest item has value x multiplies that by the lift
    // P(y | x) / m(y) of the item's value y (Bayes, the two taken as
    // independent evidence). Items without a value keep lift 1.
    UnitVectors unit(diversify ? for_you.size() : 0, dim);
    std::vector<Candidate> cands;
    cands.reserve(for_you.size());
    for (size_t rank = 0; rank < for_you.size(); ++rank) {
      const int32_t item = for_you[rank].item;
      const int32_t y = col.codes[static_cast<size_t>(item)];
      const double lift = y >= 0 && y < model->values ? model->Probability(from_value, y) /
                                                            model->marginal[static_cast<size_t>(y)]
                                                      : 1.0;
      cands.push_back({item, static_cast<float>(lift / static_cast<double>(rank + 1)),
                       diversify ? unit.Add(vectors_->row(static_cast<size_t>(item))) : nullptr});
    }
    std::stable_sort(cands.begin(), cands.end(),
                     [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    if (diversify && !cands.empty()) {
      // MMR and DPP weigh relevance against similarity on [0, 1].
      const float top = cands.front().score;
      for (Candidate& c : cands) c.score /= top;
    }
    if (q.stats != nullptr) q.stats->pool = static_cast<int64_t>(cands.size());
    VITRINE_ASSIGN_OR_RETURN(std::vector<RankedItem> ranked,
                             Rerank(cands, rules, RerankOptionsOf(q, dim), &allowed));
    hits = ToHits(std::move(ranked), rules);
    if (static_cast<int>(hits.size()) >= q.k || static_cast<int64_t>(base.k) >= n_allowed ||
        static_cast<int>(for_you.size()) < base.k) {
      break;
    }
    base.k = static_cast<int>(std::min<int64_t>(int64_t{base.k} * 4, n_allowed));
  }
  const std::string from_text =
      from_value >= 0 ? col.dictionary[static_cast<size_t>(from_value)] + " -> " : "";
  for (Hit& h : hits) {
    h.block_cos = HitBlocks(taste, h.item);
    if (h.pinned) {
      h.reason = "pinned";
    } else {
      const int32_t y = col.codes[static_cast<size_t>(h.item)];
      h.reason = "next step";
      if (from_item >= 0 && MayName(h.item, from_item)) {
        h.reason += " after " + catalog_.ids.id(from_item);
      }
      if (from_value < 0) {
        // Nothing to follow: the answer is the for-you order.
        h.reason += " (no " + col.name + " among your items to follow: your usual picks)";
      } else if (y >= 0 && y < model->values) {
        const double p = model->Probability(from_value, y);
        h.reason += " (" + from_text + col.dictionary[static_cast<size_t>(y)] + ": " + Percent(p) +
                    " of next picks, " + Ratio(p / model->marginal[static_cast<size_t>(y)]) +
                    " the usual)";
      }
    }
    AppendRuleReasons(&h);
    if (is_cold(h.item)) h.reason += " (cold-start item)";
  }
  return hits;
}

}  // namespace vitrine
