#include "index/attribute_index.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace vitrine {
namespace {

// A hand-built catalog (the CSV reader is tested elsewhere) with one column
// of each indexed type; values are random with a fixed seed so the oracle
// (a plain loop over rows) is independent of the index.
struct Fixture {
  Catalog catalog;
  int n = 5000;

  Fixture() {
    std::mt19937 rng(7);
    Column brand = MakeColumn("brand", ColumnType::kCategorical);
    brand.dictionary = {"acme", "globex", "initech", "umbrella"};
    Column price = MakeColumn("price", ColumnType::kNumeric);
    Column sale = MakeColumn("on_sale", ColumnType::kBool);
    Column tags = MakeColumn("tags", ColumnType::kList);
    tags.dictionary = {"red", "blue", "green"};
    tags.list_offsets.push_back(0);
    Column title = MakeColumn("title", ColumnType::kText);
    for (int i = 0; i < n; ++i) {
      brand.codes.push_back(static_cast<int32_t>(rng() % 5) - 1);  // -1 = missing
      price.numbers.push_back(rng() % 10 == 0 ? NAN : static_cast<double>(rng() % 1000) / 10);
      sale.bools.push_back(static_cast<int8_t>(rng() % 3) - 1);
      const int ntags = rng() % 4;
      for (int t = 0; t < ntags; ++t) tags.list_codes.push_back(rng() % 3);  // may repeat
      tags.list_offsets.push_back(static_cast<int64_t>(tags.list_codes.size()));
      title.texts.push_back("item " + std::to_string(i));
    }
    catalog.columns = {brand, price, sale, tags, title};
    for (int i = 0; i < n; ++i) catalog.ids.GetOrAdd("item" + std::to_string(i));
  }
  const Column& col(int c) const { return catalog.columns[c]; }
};

std::set<uint32_t> ToSet(const Bitmap& b) {
  std::set<uint32_t> s;
  for (uint32_t v : b) s.insert(v);
  return s;
}

TEST(AttributeIndexTest, EqualsInRangeMatchARowScan) {
  Fixture f;
  auto index = AttributeIndex::Build(f.catalog);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  ASSERT_EQ(index->size(), static_cast<uint32_t>(f.n));

  std::set<uint32_t> globex, brand_in, cheap, sale_true, tag_blue, price_missing;
  for (int i = 0; i < f.n; ++i) {
    const int32_t code = f.col(0).codes[i];
    if (code == 1) globex.insert(i);
    if (code == 0 || code == 3) brand_in.insert(i);
    const double p = f.col(1).numbers[i];
    if (!std::isnan(p) && p >= 10 && p <= 25.5) cheap.insert(i);
    if (std::isnan(p)) price_missing.insert(i);
    if (f.col(2).bools[i] == 1) sale_true.insert(i);
    for (int64_t j = f.col(3).list_offsets[i]; j < f.col(3).list_offsets[i + 1]; ++j) {
      if (f.col(3).list_codes[j] == 1) tag_blue.insert(i);
    }
  }
  EXPECT_EQ(ToSet(*index->Equals("brand", "globex")), globex);
  const std::vector<std::string> names = {"acme", "umbrella", "nosuchbrand"};
  EXPECT_EQ(ToSet(*index->In("brand", names)), brand_in);
  EXPECT_EQ(ToSet(*index->Range("price", 10, 25.5)), cheap);
  EXPECT_EQ(ToSet(*index->Missing("price")), price_missing);
  EXPECT_EQ(ToSet(*index->Equals("on_sale", "TRUE")), sale_true);
  EXPECT_EQ(ToSet(*index->Equals("on_sale", "yes")), sale_true);
  EXPECT_EQ(ToSet(*index->Equals("tags", "blue")), tag_blue);
  EXPECT_TRUE(index->Equals("brand", "nosuchbrand")->isEmpty());

  // Numeric equality is a degenerate range.
  const double some_price = f.col(1).numbers[3];
  if (!std::isnan(some_price)) {
    auto eq = index->Equals("price", std::to_string(some_price));
    ASSERT_TRUE(eq.ok());
    EXPECT_TRUE(eq->contains(3));
  }

  // Boolean algebra: AND / OR / NOT within [0, n).
  const Bitmap a = *index->Equals("brand", "globex");
  const Bitmap b = *index->Equals("on_sale", "true");
  std::set<uint32_t> and_set, not_set;
  for (uint32_t i : globex) {
    if (sale_true.count(i)) and_set.insert(i);
  }
  for (int i = 0; i < f.n; ++i) {
    if (!globex.count(i)) not_set.insert(i);
  }
  EXPECT_EQ(ToSet(a & b), and_set);
  EXPECT_EQ((a | b).cardinality(), globex.size() + sale_true.size() - and_set.size());
  EXPECT_EQ(ToSet(index->Not(a)), not_set);
  EXPECT_EQ(index->All().cardinality(), static_cast<uint64_t>(f.n));
  Bitmap outside;
  outside.add(f.n + 10);
  EXPECT_EQ(index->Not(outside).cardinality(), static_cast<uint64_t>(f.n));
  EXPECT_GT(index->MemoryBytes(), 0u);
}

TEST(AttributeIndexTest, ErrorsNameTheColumn) {
  Fixture f;
  auto index = AttributeIndex::Build(f.catalog);
  ASSERT_TRUE(index.ok());
  auto r = index->Equals("colour", "red");
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_NE(r.status().message().find("colour"), std::string::npos);
  EXPECT_EQ(index->Equals("title", "item 1").status().code(), Status::Code::kUnsupported);
  EXPECT_EQ(index->Equals("on_sale", "maybe").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(index->Equals("price", "cheap").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(index->Range("brand", 0, 1).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(index->Range("price", 5, 1).status().code(), Status::Code::kInvalidArgument);
}

TEST(AttributeIndexTest, RejectsInconsistentColumns) {
  Catalog c;
  c.ids.GetOrAdd("a");
  c.ids.GetOrAdd("b");
  Column brand = MakeColumn("brand", ColumnType::kCategorical);
  brand.dictionary = {"x"};
  brand.codes = {0, 5};  // 5 is outside the dictionary
  c.columns = {brand};
  auto r = AttributeIndex::Build(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("brand"), std::string::npos);
  c.columns[0].codes = {0};  // wrong length
  EXPECT_FALSE(AttributeIndex::Build(c).ok());
}

}  // namespace
}  // namespace vitrine
