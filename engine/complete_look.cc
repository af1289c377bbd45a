// Engine::CompleteTheLook: one item from each complementary category, the
// categories learned from co-occurrence lift in the users' histories or given.
#include <algorithm>

#include "engine/engine.h"

namespace vitrine {

namespace {
constexpr int64_t kMinCategoryPairUsers = 5;

// Users per category pair: users[c * n + d] = users with items in both c and
// d (c != d), plus per-category user counts on the diagonal.
std::vector<int64_t> CategoryCooccurrence(const Column& col, const std::vector<int64_t>& indptr,
                                          const std::vector<int32_t>& indices) {
  const size_t n = col.dictionary.size();
  std::vector<int64_t> users(n * n, 0);
  std::vector<int32_t> cats;
  for (size_t u = 0; u + 1 < indptr.size(); ++u) {
    cats.clear();
    for (int64_t p = indptr[u]; p < indptr[u + 1]; ++p) {
      const int32_t c = col.codes[static_cast<size_t>(indices[static_cast<size_t>(p)])];
      if (c >= 0) cats.push_back(c);
    }
    std::sort(cats.begin(), cats.end());
    cats.erase(std::unique(cats.begin(), cats.end()), cats.end());
    for (int32_t a : cats) {
      for (int32_t b : cats) ++users[static_cast<size_t>(a) * n + static_cast<size_t>(b)];
    }
  }
  return users;
}
}  // namespace

Result<std::vector<LookSlot>> Engine::CompleteTheLook(const CompleteRequest& r) const {
  VITRINE_ASSIGN_OR_RETURN(int32_t item, FindItem(r.item));
  const Column* col = catalog_.column(r.category_column);
  if (col == nullptr || col->type != ColumnType::kCategorical) {
    return Status::InvalidArgument("no categorical column '" + r.category_column +
                                   "' in the catalog (--category-column)");
  }
  const int32_t cat = col->codes[static_cast<size_t>(item)];
  if (cat < 0) {
    return Status::InvalidArgument("item '" + r.item + "' has no " + r.category_column);
  }
  // Candidate categories with their lift, best first.
  std::vector<std::pair<double, int32_t>> ranked;
  const std::string& name = col->dictionary[static_cast<size_t>(cat)];
  if (!r.pairs.empty()) {
    auto it = r.pairs.find(name);
    if (it != r.pairs.end()) {
      for (const auto& d : it->second) {
        auto code = std::find(col->dictionary.begin(), col->dictionary.end(), d);
        if (code == col->dictionary.end()) {
          return Status::InvalidArgument("complement '" + d + "' of '" + name + "' is not a " +
                                         r.category_column + " of the catalog");
        }
        ranked.emplace_back(0.0, static_cast<int32_t>(code - col->dictionary.begin()));
      }
    }
  } else {
    VITRINE_RETURN_IF_ERROR(
        RefuseOnPrivateBundle("complete the look without --pairs (learned complements)"));
    if (hist_indptr_.size() < 2) {
      return Status::InvalidArgument(
          "the bundle has no interactions to learn complementary categories from; give pairs "
          "(--pairs)");
    }
    const auto users = CategoryCooccurrence(*col, hist_indptr_, hist_indices_);
    const size_t n = col->dictionary.size();
    const double total = static_cast<double>(hist_indptr_.size() - 1);
    const auto c = static_cast<size_t>(cat);
    for (size_t d = 0; d < n; ++d) {
      const int64_t both = users[c * n + d];
      if (d == c || both < kMinCategoryPairUsers) continue;
      const double lift = static_cast<double>(both) * total /
                          (static_cast<double>(users[c * n + c]) * users[d * n + d]);
      if (lift > 1.0) ranked.emplace_back(lift, static_cast<int32_t>(d));
    }
    std::sort(ranked.begin(), ranked.end(), std::greater<>());
  }

  const std::vector<float> query = ItemQuery(item);
  // Across categories, looks do not transfer (a shoe does not look like a
  // coat): shoppers, attributes (tier, price, brand) and popularity do.
  QueryParams q = r.query;
  q.k = 1;
  for (const auto& [block, w] : std::map<std::string, float>{
           {"cf", 1.0f}, {"content", 0.5f}, {"visual", 0.0f}, {"pop", 0.2f}}) {
    for (const auto& b : layout_) {
      if (b.name == block) q.weights.emplace(block, w);
    }
  }
  std::vector<LookSlot> slots;
  for (const auto& [lift, d] : ranked) {
    if (static_cast<int>(slots.size()) >= r.max_categories) break;
    VITRINE_ASSIGN_OR_RETURN(
        Bitmap in_cat,
        attributes_.Equals(r.category_column, col->dictionary[static_cast<size_t>(d)]));
    if (r.query.allowed != nullptr) in_cat &= *r.query.allowed;
    q.allowed = &in_cat;
    VITRINE_ASSIGN_OR_RETURN(std::vector<Hit> hits, Search(query, q, {item}, {}, item));
    if (hits.empty()) continue;  // nothing of that category passes the rules
    slots.push_back({col->dictionary[static_cast<size_t>(d)], lift, std::move(hits[0])});
    Hit& h = slots.back().hit;
    h.reason = (lift > 0 ? "often bought with " + name + " (lift " +
                               std::to_string(lift).substr(0, 4) + ")"
                         : "pairs with " + name) +
               (h.reason.empty() ? "" : "; " + h.reason);
  }
  return slots;
}

}  // namespace vitrine
