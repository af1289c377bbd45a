#include "engine/split.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_map>

namespace vitrine {

int64_t TestCountForUser(int64_t n, double test_fraction) {
  if (n < 2) return 0;
  const auto want = static_cast<int64_t>(std::ceil(test_fraction * static_cast<double>(n) - 1e-9));
  return std::clamp<int64_t>(want, 1, n - 1);
}

Result<SplitResult> TemporalSplit(std::span<const Event> events, const SplitOptions& opts) {
  // Written as !(a && b) so NaN is rejected too.
  if (!(opts.test_fraction > 0.0 && opts.test_fraction < 1.0)) {
    return Status::InvalidArgument("test fraction must be in (0, 1), got " +
                                   std::to_string(opts.test_fraction));
  }
  // Group row indices by user, in first-appearance order; within a group the
  // indices are ascending, which is what makes the stable sort break ties by
  // input order.
  std::unordered_map<std::string_view, int64_t> group_of;
  std::vector<std::vector<int64_t>> groups;
  for (size_t i = 0; i < events.size(); ++i) {
    auto [it, added] = group_of.try_emplace(events[i].user, static_cast<int64_t>(groups.size()));
    if (added) groups.emplace_back();
    groups[static_cast<size_t>(it->second)].push_back(static_cast<int64_t>(i));
  }

  std::vector<uint8_t> is_test(events.size(), 0);
  SplitResult out;
  out.users = static_cast<int64_t>(groups.size());
  for (auto& rows : groups) {
    std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) {
      return events[static_cast<size_t>(a)].ts < events[static_cast<size_t>(b)].ts;
    });
    const int64_t n = static_cast<int64_t>(rows.size());
    const int64_t n_test = TestCountForUser(n, opts.test_fraction);
    if (n_test > 0) ++out.users_with_test;
    for (int64_t j = n - n_test; j < n; ++j) is_test[static_cast<size_t>(rows[j])] = 1;
  }
  for (size_t i = 0; i < events.size(); ++i) {
    (is_test[i] ? out.test : out.train).push_back(static_cast<int64_t>(i));
  }
  return out;
}

}  // namespace vitrine
