// A shopper's taste over the catalog's attributes, for the learned ranker:
// how much more often a history holds a candidate's value of each
// categorical or list column (brand, tier, category, genre, tag, ...) than
// the catalog's interactions as a whole do. Summed over columns it is a
// naive-Bayes log-likelihood ratio of the candidate under the history's
// attribute distribution, which generalises across items of the same kind
// where item-item co-occurrence is still sparse (docs/ranker.md, section 6).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/catalog.h"

namespace vitrine {

class AttributeProfile {
 public:
  AttributeProfile() = default;
  // Priors from the catalog's categorical and list columns, each value
  // weighted by the interactions of the items holding it (`popularity`,
  // one count per item; +1 each so untouched items count). Columns with
  // more than kMaxValues values, or nearly one value per item (ids, SKUs),
  // carry no taste and are skipped. The catalog must outlive the profile.
  static AttributeProfile Build(const Catalog& catalog, std::span<const float> popularity);

  static constexpr size_t kMaxValues = 1 << 16;
  // Pseudo-count of the catalog prior in a history's value shares: one or
  // two history items do not make a taste.
  static constexpr double kPriorWeight = 2.0;

  struct Lift {
    float sum;  // over columns; NaN when no column applies
    float min;  // the least liked column; NaN likewise
  };

  // A history's value counts, computed once per request and queried per
  // candidate.
  class Taste {
   public:
    Lift Of(int32_t item) const;

   private:
    friend class AttributeProfile;
    const AttributeProfile* profile_ = nullptr;
    double history_size_ = 0;
    std::vector<std::vector<int32_t>> counts_;  // per column, per value
  };
  Taste Of(std::span<const int32_t> history) const;

  size_t num_columns() const { return columns_.size(); }

 private:
  struct ColumnPrior {
    const Column* column;
    std::vector<float> share;  // per value: interaction-weighted share of items holding it
  };
  // log of the smoothed history share over the prior share.
  static float ValueLift(double count, double history_size, double prior);
  std::vector<ColumnPrior> columns_;
};

}  // namespace vitrine
