// core/value_parse: tables of accepted and refused spellings for ParseBool,
// ParseNumber and ParseTimestamp (the contract docs/values.md states), and
// the readers that use them agreeing with them (catalog, attribute index,
// rules parameters).
#include "core/value_parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/catalog.h"
#include "core/csv.h"
#include "index/attribute_index.h"
#include "rank/rules.h"
#include "tests/scratch_dir.h"

namespace vitrine {
namespace {

TEST(ParseBool, AcceptedSpellings) {
  const std::vector<std::pair<std::string, bool>> good = {
      {"true", true},   {"TRUE", true},   {"True", true},  {"yes", true},    {"YES", true},
      {"Yes", true},    {"1", true},      {" true", true}, {"yes\t", true},  {"false", false},
      {"FALSE", false}, {"False", false}, {"no", false},   {"NO", false},    {"No", false},
      {"0", false},     {" 0 ", false},   {"\tno", false}, {"fAlSe", false},
  };
  for (const auto& [s, want] : good) {
    const std::optional<bool> b = ParseBool(s);
    ASSERT_TRUE(b.has_value()) << "'" << s << "'";
    EXPECT_EQ(*b, want) << "'" << s << "'";
  }
}

TEST(ParseBool, RefusedSpellings) {
  for (const char* s :
       {"",    " ",  "t",     "f",      "y",  "n",    "on",   "off",      "2",     "-1", "01",
        "1.0", "00", "truex", "yes no", "ja", "null", "none", "\"true\"", "tru e", "+1"}) {
    EXPECT_FALSE(ParseBool(s).has_value()) << "'" << s << "'";
  }
}

TEST(ParseNumber, AcceptedSpellings) {
  const std::vector<std::pair<std::string, double>> good = {
      {"0", 0},
      {"42", 42},
      {"-1.5", -1.5},
      {"+2", 2},
      {"+0.5", 0.5},
      {".5", 0.5},
      {"-.5", -0.5},
      {"5.", 5},
      {"1e3", 1000},
      {"1E3", 1000},
      {"-1.5e1", -15},
      {"2.5e-3", 0.0025},
      {"1e+2", 100},
      {"007", 7},
      {" 3.25 ", 3.25},
      {"\t-4\t", -4},
      {"1e308", 1e308},
      {"-0", 0},
      {"123456789012", 123456789012.0},
  };
  for (const auto& [s, want] : good) {
    const std::optional<double> x = ParseNumber(s);
    ASSERT_TRUE(x.has_value()) << "'" << s << "'";
    EXPECT_EQ(*x, want) << "'" << s << "'";
  }
  // Subnormals are numbers too.
  ASSERT_TRUE(ParseNumber("1e-310").has_value());
  EXPECT_GT(*ParseNumber("1e-310"), 0);
}

TEST(ParseNumber, RefusedSpellings) {
  for (const char* s :
       {"",      " ",     "+",     "-",     ".",      "+-1",      "-+1", "++1",  "--1",   "+ 1",
        "- 1",   "inf",   "-inf",  "+inf",  "INF",    "Infinity", "nan", "NaN",  "-nan",  "0x10",
        "0x1p3", "1,000", "1_000", "1.5x",  "12 kg",  "1 2",      "1e",  "e5",   "1e5.5", "1..2",
        "1.2.3", "$5",    "5%",    "1e400", "-1e400", "1e-400",   "abc", "true", "\"1\"", "١٢"}) {
    EXPECT_FALSE(ParseNumber(s).has_value()) << "'" << s << "'";
  }
}

TEST(ParseTimestamp, RangeIsBounded) {
  int64_t t = 0;
  EXPECT_TRUE(ParseTimestamp("1900-01-01", &t));
  EXPECT_EQ(t, kMinTimestamp);
  EXPECT_TRUE(ParseTimestamp("2200-12-31T23:59:59Z", &t));
  EXPECT_EQ(t, kMaxTimestamp);
  EXPECT_TRUE(ParseTimestamp(std::to_string(kMinTimestamp), &t));
  EXPECT_EQ(t, kMinTimestamp);
  EXPECT_TRUE(ParseTimestamp(std::to_string(kMaxTimestamp), &t));
  EXPECT_EQ(t, kMaxTimestamp);
  t = 17;
  for (const std::string& s :
       {std::string("9223372036854775807"), std::string("-9223372036854775808"),
        std::string("99999999999999999999"), std::to_string(kMaxTimestamp + 1),
        std::to_string(kMinTimestamp - 1), std::string("1899-12-31T23:59:59Z"),
        std::string("2201-01-01"), std::string("2200-12-31T23:59:59-00:01"),
        std::string("1900-01-01T00:30:00+01:00"), std::string("9999-12-31"),
        std::string("0000-01-01")}) {
    EXPECT_FALSE(ParseTimestamp(s, &t)) << s;
    EXPECT_EQ(t, 17) << "refused input changed the output: " << s;
  }
}

TEST(ParseTimestamp, Spellings) {
  const std::vector<std::pair<std::string, int64_t>> good = {
      {"0", 0},
      {" 1714557600 ", 1714557600},
      {"1714557600.999", 1714557600},
      {"-86400", -86400},
      {"2024-05-01", 1714521600},
      {"2024-05-01T10:00:00Z", 1714557600},
      {"2024-05-01 10:00", 1714557600},
      {"2024-05-01T10:00:00,5Z", 1714557600},
      {"2024-05-01T12:00:00+02:00", 1714557600},
      {"2024-05-01T05:30:00-0430", 1714557600},
  };
  for (const auto& [s, want] : good) {
    int64_t t = -1;
    EXPECT_TRUE(ParseTimestamp(s, &t)) << s;
    EXPECT_EQ(t, want) << s;
  }
  for (const char* s : {"", "+1714557600", "1.7e9", "0x10", "1714557600s", "2024-05-01T",
                        "2024-05-01T10:00:00+24:00", "2024/05/01", "yesterday"}) {
    int64_t t = 0;
    EXPECT_FALSE(ParseTimestamp(s, &t)) << s;
  }
}

// The CSV helper kept for readers built on CsvReader says the same.
TEST(ParseNumber, CsvParseFiniteDoubleAgrees) {
  for (const char* s : {"1", "+2", "-3.5", " 4 ", "+-1", "inf", "nan", "", "1x", "1e400"}) {
    double d = 0;
    const std::optional<double> x = ParseNumber(s);
    EXPECT_EQ(ParseFiniteDouble(s, &d), x.has_value()) << s;
    if (x) {
      EXPECT_EQ(d, *x) << s;
    }
  }
}

Catalog OneColumnCatalog(ColumnType type) {
  Catalog c;
  for (const char* id : {"a", "b", "c"}) c.ids.Add(id);
  Column col;
  col.name = "v";
  col.type = type;
  if (type == ColumnType::kNumeric) col.numbers = {1, -1, 2.5};
  if (type == ColumnType::kBool) col.bools = {1, 0, -1};
  c.columns = {col};
  return c;
}

// The attribute index takes exactly the ParseNumber / ParseBool spellings.
TEST(ValueParseUsers, AttributeIndexEquals) {
  auto num = AttributeIndex::Build(OneColumnCatalog(ColumnType::kNumeric));
  ASSERT_TRUE(num.ok());
  for (const char* s : {"-1", "+2.5", "1e0", "inf", "-inf", "nan", "+-1", "1x", ""}) {
    auto r = num->Equals("v", s);
    EXPECT_EQ(r.ok(), ParseNumber(s).has_value()) << s;
  }
  EXPECT_EQ(num->Equals("v", "+-1").status().message(), "column 'v': expected a number, got '+-1'");
  auto flag = AttributeIndex::Build(OneColumnCatalog(ColumnType::kBool));
  ASSERT_TRUE(flag.ok());
  for (const char* s : {"yes", "No", "TRUE", "0", "1", "on", "", "2"}) {
    auto r = flag->Equals("v", s);
    EXPECT_EQ(r.ok(), ParseBool(s).has_value()) << s;
    if (r.ok()) {
      EXPECT_EQ(r->contains(0), *ParseBool(s)) << s;
    }
  }
}

// The catalog reads cells with the same spellings: a column of yes/no words
// infers bool, one of 1/0 numeric; "+5" is a number and "inf" is not.
TEST(ValueParseUsers, CatalogCells) {
  const auto path = ScratchDir() / "values.csv";
  WriteText(path,
            "item_id,flag,count,price,odd\n"
            "a,YES,1,+5,inf\n"
            "b, no ,0,-1.5e1,1\n"
            "c,,1,,2\n");
  auto cat = Catalog::ReadCsv(path);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  EXPECT_EQ(cat->column("flag")->type, ColumnType::kBool);
  EXPECT_EQ(cat->column("flag")->bools, (std::vector<int8_t>{1, 0, -1}));
  EXPECT_EQ(cat->column("count")->type, ColumnType::kNumeric);
  EXPECT_EQ(cat->column("price")->type, ColumnType::kNumeric);
  EXPECT_EQ(cat->column("price")->numbers[0], 5);
  EXPECT_EQ(cat->column("price")->numbers[1], -15);
  EXPECT_EQ(cat->column("odd")->type, ColumnType::kCategorical);  // "inf" is not a number

  CatalogReadOptions typed;
  typed.schema = *Schema::Parse("count:bool,odd:numeric");
  auto bad = Catalog::ReadCsv(path, typed);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            path.string() + ":2:5: column 'odd' expects a number, found 'inf'");
  // An explicit bool column takes every ParseBool spelling.
  WriteText(path, "item_id,count\na,1\nb,0\nc,Yes\n");
  CatalogReadOptions bools;
  bools.schema = *Schema::Parse("count:bool");
  auto flags = Catalog::ReadCsv(path, bools);
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_EQ(flags->column("count")->bools, (std::vector<int8_t>{1, 0, 1}));
}

// A rule's $param takes exactly the ParseNumber / ParseBool spellings.
TEST(ValueParseUsers, RuleParameters) {
  Catalog catalog = OneColumnCatalog(ColumnType::kNumeric);
  auto index = AttributeIndex::Build(catalog);
  ASSERT_TRUE(index.ok());
  auto rules = RuleSet::Parse("INCLUDE WHERE v <= $MAX", "rules.txt");
  ASSERT_TRUE(rules.ok());
  ASSERT_TRUE(rules->Bind(catalog).ok());
  for (const char* s : {"2", "+2", " 2 ", "-1e0", "+-1", "inf", "nan", "1x", ""}) {
    RequestContext ctx;
    ctx.params["MAX"] = s;
    auto allowed = rules->AllowedItems(*index, ctx);
    EXPECT_EQ(allowed.ok(), ParseNumber(s).has_value()) << s;
  }
  RequestContext bad;
  bad.params["MAX"] = "+-1";
  EXPECT_EQ(rules->AllowedItems(*index, bad).status().message(),
            "rules.txt:1:20: $MAX: column 'v' is numeric, expected a number, got '+-1'");
}

}  // namespace
}  // namespace vitrine
