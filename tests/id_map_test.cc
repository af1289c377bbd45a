// IdMap against std::unordered_map as the oracle: random ids with repeats,
// lookups of present and absent ids, through many table growths.
#include "core/id_map.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace vitrine {
namespace {

TEST(IdMapTest, MatchesUnorderedMapThroughGrowth) {
  std::mt19937 rng(42);
  // Short (SSO) and long ids, many repeats, an empty id.
  auto random_id = [&] {
    std::uniform_int_distribution<int> len(0, 40), ch('a', 'e');
    std::string s(static_cast<size_t>(len(rng)) % 3 == 0 ? 20 + len(rng) : len(rng) % 4, 'x');
    for (char& c : s) c = static_cast<char>(ch(rng));
    return s;
  };
  IdMap m;
  std::unordered_map<std::string, int32_t> oracle;
  std::vector<std::string> order;
  for (int i = 0; i < 20000; ++i) {
    const std::string id = random_id();
    auto [it, inserted] = oracle.emplace(id, static_cast<int32_t>(order.size()));
    if (inserted) order.push_back(id);
    if (i % 2 == 0) {
      EXPECT_EQ(m.GetOrAdd(id), it->second) << id;
    } else {
      EXPECT_EQ(m.Add(id), inserted) << id;
    }
  }
  ASSERT_EQ(m.size(), static_cast<int32_t>(order.size()));
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(m.id(static_cast<int32_t>(i)), order[i]);
    EXPECT_EQ(m.Find(order[i]), static_cast<int32_t>(i));
  }
  EXPECT_EQ(m.ids(), order);
  for (const char* absent :
       {"zzz", "f", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    EXPECT_FALSE(m.Find(absent).has_value()) << absent;
  }
  const IdMap copy = m;  // copies stay consistent
  EXPECT_EQ(copy.Find(order.back()), m.size() - 1);
}

TEST(IdMapTest, ReserveAndShrinkKeepLookups) {
  IdMap m;
  m.Reserve(1000);
  for (int i = 0; i < 1500; ++i) EXPECT_EQ(m.GetOrAdd("id" + std::to_string(i)), i);
  m.ShrinkToFit();
  m.Reserve(10);  // smaller than the size: no effect
  for (int i = 0; i < 1500; ++i) EXPECT_EQ(m.Find("id" + std::to_string(i)), i);
  EXPECT_FALSE(m.Find("id1500").has_value());
}

TEST(IdMapTest, EmptyMapFindsNothing) {
  IdMap m;
  EXPECT_FALSE(m.Find("").has_value());
  EXPECT_FALSE(m.Find("a").has_value());
  EXPECT_EQ(m.size(), 0);
  EXPECT_TRUE(m.Add(""));
  EXPECT_EQ(m.Find(""), 0);
  EXPECT_FALSE(m.Add(""));
}

}  // namespace
}  // namespace vitrine
