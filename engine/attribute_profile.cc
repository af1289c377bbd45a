// AttributeProfile: catalog priors per attribute value and a history's
// naive-Bayes lift per candidate.
#include "engine/attribute_profile.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vitrine {
namespace {

constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
// A value never seen in the catalog's interactions still gets a small prior
// so its lift stays finite.
constexpr double kMinShare = 1e-6;

bool TasteColumn(const Column& c, int64_t items) {
  const size_t values = c.dictionary.size();
  if (values < 2 || values > AttributeProfile::kMaxValues) return false;
  // Nearly one value per item (an id, a SKU code): no two items share a
  // taste through it.
  if (items >= 20 && static_cast<double>(values) > 0.5 * static_cast<double>(items)) return false;
  return c.type == ColumnType::kCategorical || c.type == ColumnType::kList;
}

}  // namespace

AttributeProfile AttributeProfile::Build(const Catalog& catalog,
                                         std::span<const float> popularity) {
  AttributeProfile p;
  const int64_t n = catalog.size();
  auto weight = [&](int64_t i) {
    const double pop = static_cast<size_t>(i) < popularity.size()
                           ? static_cast<double>(popularity[static_cast<size_t>(i)])
                           : 0.0;
    return 1.0 + (std::isfinite(pop) && pop > 0 ? pop : 0.0);
  };
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += weight(i);
  if (total <= 0) return p;
  for (const Column& c : catalog.columns) {
    if (!TasteColumn(c, n)) continue;
    std::vector<double> mass(c.dictionary.size(), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      const double w = weight(i);
      if (c.type == ColumnType::kCategorical) {
        const int32_t code = c.codes[static_cast<size_t>(i)];
        if (code >= 0) mass[static_cast<size_t>(code)] += w;
      } else {
        for (int64_t k = c.list_offsets[static_cast<size_t>(i)];
             k < c.list_offsets[static_cast<size_t>(i) + 1]; ++k) {
          mass[static_cast<size_t>(c.list_codes[static_cast<size_t>(k)])] += w;
        }
      }
    }
    ColumnPrior prior{&c, std::vector<float>(mass.size())};
    for (size_t v = 0; v < mass.size(); ++v) {
      prior.share[v] = static_cast<float>(std::max(mass[v] / total, kMinShare));
    }
    p.columns_.push_back(std::move(prior));
  }
  return p;
}

float AttributeProfile::ValueLift(double count, double history_size, double prior) {
  const double smoothed = (count + kPriorWeight * prior) / (history_size + kPriorWeight);
  return static_cast<float>(std::log(smoothed / prior));
}

AttributeProfile::Taste AttributeProfile::Of(std::span<const int32_t> history) const {
  Taste t;
  t.profile_ = this;
  t.history_size_ = static_cast<double>(history.size());
  t.counts_.resize(columns_.size());
  for (size_t k = 0; k < columns_.size(); ++k) {
    const Column& c = *columns_[k].column;
    std::vector<int32_t>& counts = t.counts_[k];
    counts.assign(columns_[k].share.size(), 0);
    for (int32_t h : history) {
      const size_t i = static_cast<size_t>(h);
      if (c.type == ColumnType::kCategorical) {
        if (i >= c.codes.size()) continue;
        const int32_t code = c.codes[i];
        if (code >= 0 && static_cast<size_t>(code) < counts.size()) ++counts[static_cast<size_t>(code)];
      } else {
        if (i + 1 >= c.list_offsets.size()) continue;
        for (int64_t j = c.list_offsets[i]; j < c.list_offsets[i + 1]; ++j) {
          const size_t code = static_cast<size_t>(c.list_codes[static_cast<size_t>(j)]);
          if (code < counts.size()) ++counts[code];
        }
      }
    }
  }
  return t;
}

AttributeProfile::Lift AttributeProfile::Taste::Of(int32_t item) const {
  Lift out{kMissing, kMissing};
  if (profile_ == nullptr || item < 0) return out;
  const size_t i = static_cast<size_t>(item);
  double sum = 0, least = std::numeric_limits<double>::infinity();
  bool any = false;
  for (size_t k = 0; k < counts_.size(); ++k) {
    const ColumnPrior& prior = profile_->columns_[k];
    const Column& c = *prior.column;
    const std::vector<int32_t>& counts = counts_[k];
    double lift = 0;
    if (c.type == ColumnType::kCategorical) {
      // Items added after the bundle was built may hold values the priors
      // never saw: they carry no evidence either way.
      if (i >= c.codes.size()) continue;
      const int32_t code = c.codes[i];
      if (code < 0 || static_cast<size_t>(code) >= counts.size()) continue;
      lift = ValueLift(counts[static_cast<size_t>(code)], history_size_,
                       prior.share[static_cast<size_t>(code)]);
    } else {
      // A list (genres, tags): the mean over the item's values, so items
      // with many tags are not favoured for having them.
      if (i + 1 >= c.list_offsets.size()) continue;
      const int64_t b = c.list_offsets[i], e = c.list_offsets[i + 1];
      int values = 0;
      for (int64_t j = b; j < e; ++j) {
        const size_t code = static_cast<size_t>(c.list_codes[static_cast<size_t>(j)]);
        if (code >= counts.size()) continue;
        lift += ValueLift(counts[code], history_size_, prior.share[code]);
        ++values;
      }
      if (values == 0) continue;
      lift /= values;
    }
    sum += lift;
    least = std::min(least, lift);
    any = true;
  }
  if (any) out = {static_cast<float>(sum), static_cast<float>(least)};
  return out;
}

}  // namespace vitrine
