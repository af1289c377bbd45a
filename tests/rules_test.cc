// RuleSet: parser corpus (valid rules and invalid rules with exact
// line:column errors), Bind errors, filter/boost/pin/cap semantics on a small
// hand-written catalog whose expected answers are worked out by hand.
#include "rank/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace vitrine {
namespace {

// 10 items i0..i9.
//        brand  price  in_stock  tags         title
//   i0   a      10     1         red,blue     x
//   i1   b      20     1         blue         y
//   i2   c      30     0         -            x
//   i3   a      40     1         green        z
//   i4   b      50     -         red          -
//   i5   -      NaN    1         red,green    y
//   i6   a      70     0         -            x
//   i7   c      80     1         blue,green   z
//   i8   b      90     1         red          y
//   i9   a      100    1         blue         x
Catalog MakeCatalog() {
  Catalog c;
  for (const char* id : {"i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8", "i9"}) c.ids.Add(id);
  c.columns = {CategoricalColumn("brand", {"a", "b", "c"}, {0, 1, 2, 0, 1, -1, 0, 2, 1, 0}),
               NumericColumn("price", {10, 20, 30, 40, 50, NAN, 70, 80, 90, 100}),
               BoolColumn("in_stock", {1, 1, 0, 1, -1, 1, 0, 1, 1, 1}),
               ListColumn("tags", {"red", "blue", "green"},
                          {{0, 1}, {1}, {}, {2}, {0}, {0, 2}, {}, {1, 2}, {0}, {1}}),
               TextColumn("title", {"x", "y", "x", "z", "", "y", "x", "z", "y", "x"})};
  return c;
}

std::string ParseError(const std::string& text) {
  auto r = RuleSet::Parse(text, "rules.txt");
  return r.ok() ? "OK" : r.status().message();
}

std::string BindError(const std::string& text) {
  auto r = RuleSet::Parse(text, "rules.txt");
  if (!r.ok()) return "parse: " + r.status().message();
  Status s = r->Bind(MakeCatalog());
  return s.ok() ? "OK" : s.message();
}

TEST(RulesParse, ValidCorpus) {
  const char* valid[] = {
      "",
      "# only a comment\n\n   \n",
      "EXCLUDE WHERE in_stock = false",
      "exclude where in_stock = FALSE  # keywords are case-insensitive",
      "INCLUDE WHERE brand IN (\"a\", \"b\") AND price <= 50",
      "INCLUDE WHERE brand NOT IN (\"a\") OR NOT (price > 10 AND price < 20)",
      "INCLUDE WHERE price BETWEEN 10 AND 20.5",
      "INCLUDE WHERE price NOT BETWEEN -1.5e1 AND 1e3",
      "INCLUDE WHERE brand <> \"a\" AND brand != \"b\"",
      "EXCLUDE WHERE brand = CurrentItem.brand",
      "INCLUDE WHERE tags IN CurrentItem.tags",
      "INCLUDE WHERE price <= $MAX_PRICE AND brand IN ($BRANDS)",
      "INCLUDE WHERE brand = context.pref",
      "BOOST 1.5 WHERE tags = \"red\"",
      "BURY 2 WHERE in_stock = false",
      "PIN \"i3\" AT 1",
      "CAP 2 PER brand",
      "CAP 1 PER `tags`",
      "WHEN context.climate = \"warm\" BOOST 2 WHERE tags = \"red\"",
      "WHEN context.temp >= 25 AND NOT context.region IN (\"eu\", \"uk\") PIN \"i1\" AT 2",
      "WHEN context.temp BETWEEN $LO AND 30 CAP 1 PER brand",
      "INCLUDE WHERE title = \"say \\\"hi\\\"\"",
      "INCLUDE WHERE ((brand = \"a\"))",
  };
  for (const char* text : valid) {
    auto r = RuleSet::Parse(text, "rules.txt");
    EXPECT_TRUE(r.ok()) << text << "\n" << r.status().ToString();
  }
  auto r = RuleSet::Parse("# c\nEXCLUDE WHERE in_stock = false\n\nCAP 2 PER brand\n", "x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->num_rules(), 2);
}

TEST(RulesParse, InvalidCorpusExactPositions) {
  const std::pair<const char*, const char*> cases[] = {
      {"EXCLUDE WHERE brand IN", "rules.txt:1:23: expected a value after IN"},
      {"INCLUDE brand = \"a\"", "rules.txt:1:9: expected WHERE after INCLUDE"},
      {"BOOST WHERE brand = \"a\"", "rules.txt:1:7: expected a positive factor after BOOST"},
      {"BOOST -2 WHERE brand = \"a\"", "rules.txt:1:7: expected a positive factor after BOOST"},
      {"bury 0 WHERE brand = \"a\"", "rules.txt:1:6: expected a positive factor after BURY"},
      {"BOOST 2 brand = \"a\"", "rules.txt:1:9: expected WHERE after the factor"},
      {"EXCLUDE WHERE brand = ", "rules.txt:1:22: expected a value after ="},
      {"EXCLUDE WHERE brand IN (\"a\", )", "rules.txt:1:30: expected a value after ','"},
      {"EXCLUDE WHERE brand IN (\"a\" \"b\")",
       "rules.txt:1:29: expected ',' or ')' in the IN list"},
      {"EXCLUDE WHERE (brand = \"a\"", "rules.txt:1:27: expected ')'"},
      {"EXCLUDE WHERE brand ~ \"a\"", "rules.txt:1:21: unexpected character '~'"},
      {"EXCLUDE WHERE brand = \"abc", "rules.txt:1:23: unterminated string"},
      {"PIN sku AT 1", "rules.txt:1:5: expected a quoted item id after PIN"},
      {"PIN \"x\" 1", "rules.txt:1:9: expected AT after the item id"},
      {"PIN \"x\" AT 0", "rules.txt:1:12: expected a position (1, 2, ...) after AT"},
      {"CAP 2 brand", "rules.txt:1:7: expected PER after the count"},
      {"CAP 1.5 PER brand", "rules.txt:1:5: expected a count (1, 2, ...) after CAP"},
      {"CAP 1 PER", "rules.txt:1:10: expected a column after PER"},
      {"FILTER WHERE x = 1",
       "rules.txt:1:1: expected INCLUDE, EXCLUDE, BOOST, BURY, PIN, CAP or WHEN"},
      {"WHEN brand = \"a\" BOOST 2 WHERE x = 1",
       "rules.txt:1:6: expected context.<key> in a WHEN condition"},
      {"WHEN context.climate = \"warm\"",
       "rules.txt:1:30: expected INCLUDE, EXCLUDE, BOOST, BURY, PIN or CAP after the WHEN "
       "condition"},
      {"EXCLUDE WHERE price BETWEEN 1 5",
       "rules.txt:1:31: expected AND after the BETWEEN lower bound"},
      {"EXCLUDE WHERE brand = \"a\" extra",
       "rules.txt:1:27: unexpected 'extra' after the end of the rule"},
      {"EXCLUDE WHERE price > 1.2.3", "rules.txt:1:23: malformed number '1.2.3'"},
      {"EXCLUDE WHERE brand = $", "rules.txt:1:23: expected a parameter name after '$'"},
      {"WHEN context.t > \"hot\" BOOST 2 WHERE brand = \"a\"",
       "rules.txt:1:18: expected a number after >"},
      {"WHEN context.t = CurrentItem.brand BOOST 2 WHERE brand = \"a\"",
       "rules.txt:1:18: CurrentItem is not allowed in a WHEN condition"},
      {"EXCLUDE WHERE context.x = 1",
       "rules.txt:1:15: context.<key> can only be tested in a WHEN condition; expected a column "
       "name"},
      {"EXCLUDE WHERE brand = CurrentItem.",
       "rules.txt:1:35: expected a column after 'CurrentItem.'"},
      {"exclude where NOT", "rules.txt:1:18: expected a column name"},
      {"EXCLUDE WHERE brand",
       "rules.txt:1:20: expected an operator (=, !=, <, <=, >, >=, IN, NOT IN, BETWEEN) after "
       "'brand'"},
      {"EXCLUDE WHERE brand = \"a\" AND", "rules.txt:1:30: expected a column name"},
      {"EXCLUDE WHERE WHERE = 1", "rules.txt:1:15: expected a column name"},
      // The error is reported on its own line, after valid lines and comments.
      {"# comment\n\nEXCLUDE WHERE in_stock = false\nBOOST 2 WHERE tags IN ()",
       "rules.txt:4:24: expected a value after '('"},
      {"CAP 2 PER brand\r\nPIN \"a\" AT 1 2",
       "rules.txt:2:14: unexpected '2' after the end of the rule"},
  };
  for (const auto& [text, error] : cases) EXPECT_EQ(ParseError(text), error) << text;
}

TEST(RulesBind, Errors) {
  const std::string cols = " (columns: brand, price, in_stock, tags, title)";
  auto msg = [&](const char* head) { return std::string(head) + cols; };
  EXPECT_EQ(BindError("EXCLUDE WHERE colour = \"red\""),
            msg("rules.txt:1:15: unknown column 'colour'"));
  EXPECT_EQ(BindError("INCLUDE WHERE price = \"abc\""),
            "rules.txt:1:23: column 'price' is numeric, expected a number");
  EXPECT_EQ(BindError("INCLUDE WHERE price IN (1, \"abc\")"),
            "rules.txt:1:28: column 'price' is numeric, expected a number");
  EXPECT_EQ(BindError("INCLUDE WHERE in_stock = 1"),
            "rules.txt:1:26: column 'in_stock' is bool, expected true or false");
  EXPECT_EQ(BindError("INCLUDE WHERE brand < 5"),
            "rules.txt:1:21: '<' needs a numeric column; 'brand' is categorical");
  EXPECT_EQ(BindError("INCLUDE WHERE title BETWEEN 1 AND 2"),
            "rules.txt:1:21: 'BETWEEN' needs a numeric column; 'title' is text");
  EXPECT_EQ(BindError("INCLUDE WHERE brand = true"),
            "rules.txt:1:23: column 'brand' is categorical, expected a string");
  EXPECT_EQ(BindError("EXCLUDE WHERE price = CurrentItem.brand"),
            "rules.txt:1:23: column 'price' is numeric but CurrentItem.brand is categorical");
  EXPECT_EQ(BindError("EXCLUDE WHERE brand = CurrentItem.nope"),
            msg("rules.txt:1:23: unknown column 'nope' in CurrentItem.nope"));
  EXPECT_EQ(BindError("PIN \"zzz\" AT 1"), "rules.txt:1:5: unknown item id 'zzz'");
  EXPECT_EQ(BindError("CAP 2 PER colour"), msg("rules.txt:1:11: unknown column 'colour'"));
  EXPECT_EQ(BindError("EXCLUDE WHERE in_stock = false\n\nBOOST 2 WHERE `Brand` = \"a\""),
            msg("rules.txt:3:15: unknown column 'Brand'"));
  // Valid: a number compared with a categorical value uses its text.
  EXPECT_EQ(BindError("INCLUDE WHERE brand = 5 AND title IN (\"x\", 1)"), "OK");

  // A rule set whose Bind failed applies nothing: it stays unusable.
  auto r = RuleSet::Parse("EXCLUDE WHERE in_stock = false\nEXCLUDE WHERE colour = 1", "r");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->Bind(MakeCatalog()).ok());
  auto index = AttributeIndex::Build(MakeCatalog());
  ASSERT_TRUE(index.ok());
  EXPECT_FALSE(r->AllowedItems(*index, {}).ok());
}

TEST(RulesParse, ParseFileNamesThePath) {
  const auto path = std::filesystem::temp_directory_path() / "vitrine_rules_test_rules.txt";
  {
    std::ofstream f(path);
    f << "EXCLUDE WHERE in_stock = false\nCAP x PER brand\n";
  }
  auto r = RuleSet::ParseFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), path.string() + ":2:5: expected a count (1, 2, ...) after CAP");
  std::filesystem::remove(path);
}

struct Bound {
  Catalog catalog = MakeCatalog();
  AttributeIndex index;
  RuleSet rules;
};

std::unique_ptr<Bound> BindRules(const std::string& text) {
  auto b = std::make_unique<Bound>();
  auto idx = AttributeIndex::Build(b->catalog);
  EXPECT_TRUE(idx.ok());
  b->index = std::move(*idx);
  auto r = RuleSet::Parse(text, "rules.txt");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  b->rules = std::move(*r);
  Status s = b->rules.Bind(b->catalog);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return b;
}

// Allowed items three ways (one bitmap, static + dynamic bitmaps, per item);
// they must agree.
std::set<int> Allowed(const std::string& text, const RequestContext& ctx = {}) {
  auto b = BindRules(text);
  auto all = b->rules.AllowedItems(b->index, ctx);
  EXPECT_TRUE(all.ok()) << all.status().ToString();
  std::set<int> out;
  for (uint32_t i : *all) out.insert(static_cast<int>(i));
  auto st = b->rules.StaticAllowedItems(b->index);
  EXPECT_TRUE(st.ok());
  auto split = b->rules.AllowedItems(b->index, ctx, &*st);
  EXPECT_TRUE(split.ok());
  EXPECT_TRUE(*split == *all) << text;
  auto rr = b->rules.ForRequest(ctx);
  EXPECT_TRUE(rr.ok());
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(rr->Allowed(i), out.count(i) == 1) << text << " item " << i;
  return out;
}

using S = std::set<int>;

TEST(RulesFilter, Semantics) {
  const S all = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(Allowed(""), all);
  EXPECT_EQ(Allowed("EXCLUDE WHERE in_stock = false"), S({0, 1, 3, 4, 5, 7, 8, 9}));
  EXPECT_EQ(Allowed("INCLUDE WHERE brand IN (\"a\", \"c\")"), S({0, 2, 3, 6, 7, 9}));
  // != is the complement of =: it keeps the item whose brand is missing.
  EXPECT_EQ(Allowed("INCLUDE WHERE brand != \"a\""), S({1, 2, 4, 5, 7, 8}));
  EXPECT_EQ(Allowed("INCLUDE WHERE price BETWEEN 20 AND 50"), S({1, 2, 3, 4}));
  EXPECT_EQ(Allowed("INCLUDE WHERE price < 30 OR price > 80"), S({0, 1, 8, 9}));
  EXPECT_EQ(Allowed("INCLUDE WHERE price < 30.5 AND price >= 20"), S({1, 2}));
  EXPECT_EQ(Allowed("INCLUDE WHERE NOT price >= 30"), S({0, 1, 5}));
  EXPECT_EQ(Allowed("INCLUDE WHERE tags = \"red\""), S({0, 4, 5, 8}));
  EXPECT_EQ(Allowed("INCLUDE WHERE tags NOT IN (\"red\", \"blue\")"), S({2, 3, 6}));
  EXPECT_EQ(Allowed("INCLUDE WHERE title = \"x\""), S({0, 2, 6, 9}));
  EXPECT_EQ(Allowed("INCLUDE WHERE title != \"x\" AND price > 40"), S({4, 7, 8}));
  EXPECT_EQ(Allowed("INCLUDE WHERE brand = \"a\"\nEXCLUDE WHERE price > 60"), S({0, 3}));
  // EXCLUDE wins whatever the order.
  EXPECT_EQ(Allowed("EXCLUDE WHERE price > 60\nINCLUDE WHERE brand = \"a\""), S({0, 3}));
  // Several INCLUDEs intersect.
  EXPECT_EQ(Allowed("INCLUDE WHERE brand = \"a\"\nINCLUDE WHERE tags = \"blue\""), S({0, 9}));
  EXPECT_EQ(Allowed("INCLUDE WHERE (brand = \"a\" OR brand = \"b\") AND in_stock = true"),
            S({0, 1, 3, 8, 9}));
  // AND binds tighter than OR; NOT tighter than AND.
  EXPECT_EQ(Allowed("INCLUDE WHERE brand = \"c\" OR brand = \"b\" AND price > 60"), S({2, 7, 8}));
  EXPECT_EQ(Allowed("INCLUDE WHERE NOT brand = \"a\" AND NOT brand = \"b\""), S({2, 5, 7}));
  EXPECT_EQ(Allowed("EXCLUDE WHERE price NOT BETWEEN 20 AND 40"), S({1, 2, 3}));
  EXPECT_EQ(Allowed("INCLUDE WHERE price BETWEEN 50 AND 20"), S());
  EXPECT_EQ(Allowed("INCLUDE WHERE brand = 5"), S());
  EXPECT_EQ(Allowed("INCLUDE WHERE brand = \"zzz\""), S());
}

TEST(RulesFilter, CurrentItemParamsContext) {
  const S all = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  RequestContext ctx;
  const std::string same_brand = "EXCLUDE WHERE brand = CurrentItem.brand";
  EXPECT_EQ(Allowed(same_brand), all);  // no current item: rule skipped
  ctx.current_item = 0;
  EXPECT_EQ(Allowed(same_brand, ctx), S({1, 2, 4, 5, 7, 8}));
  ctx.current_item = 5;  // brand missing: excludes nothing
  EXPECT_EQ(Allowed(same_brand, ctx), all);
  ctx.current_item = 7;
  EXPECT_EQ(Allowed("INCLUDE WHERE tags IN CurrentItem.tags", ctx), S({0, 1, 3, 5, 7, 9}));
  ctx.current_item = 3;
  EXPECT_EQ(Allowed("INCLUDE WHERE price <= CurrentItem.price", ctx), S({0, 1, 2, 3}));

  RequestContext p;
  p.params = {{"MAX", "50"}, {"BRANDS", "a, b"}};
  EXPECT_EQ(Allowed("INCLUDE WHERE price <= $MAX AND brand IN ($BRANDS)", p), S({0, 1, 3, 4}));
  p.params = {{"ON", "yes"}};
  EXPECT_EQ(Allowed("INCLUDE WHERE in_stock = $ON AND price > 50", p), S({7, 8, 9}));

  const std::string warm = "WHEN context.climate = \"warm\" EXCLUDE WHERE tags = \"red\"";
  RequestContext c;
  EXPECT_EQ(Allowed(warm, c), all);
  c.context = {{"climate", "cold"}};
  EXPECT_EQ(Allowed(warm, c), all);
  c.context = {{"climate", "warm"}};
  EXPECT_EQ(Allowed(warm, c), S({1, 2, 3, 6, 7, 9}));

  const std::string cond =
      "WHEN context.temp > 25 AND NOT context.region IN (\"eu\") INCLUDE WHERE brand = \"b\"";
  c.context = {{"temp", "30"}, {"region", "us"}};
  EXPECT_EQ(Allowed(cond, c), S({1, 4, 8}));
  c.context = {{"temp", "30"}};  // region absent: NOT (absent IN ...) holds
  EXPECT_EQ(Allowed(cond, c), S({1, 4, 8}));
  c.context = {{"temp", "30"}, {"region", "eu"}};
  EXPECT_EQ(Allowed(cond, c), all);
  c.context = {{"temp", "20"}, {"region", "us"}};
  EXPECT_EQ(Allowed(cond, c), all);
  c.context = {{"temp", "warm"}};  // not a number: > is false
  EXPECT_EQ(Allowed(cond, c), all);

  c.context = {{"pref", "c"}};
  EXPECT_EQ(Allowed("INCLUDE WHERE brand = context.pref", c), S({2, 7}));
  c.context = {};
  EXPECT_EQ(Allowed("INCLUDE WHERE brand = context.pref", c), S());
}

TEST(RulesFilter, RequestErrorsAndStaticness) {
  auto b = BindRules("EXCLUDE WHERE in_stock = false\nINCLUDE WHERE price <= $MAX");
  EXPECT_TRUE(b->rules.FiltersDependOnRequest());
  auto missing = b->rules.AllowedItems(b->index, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "rules.txt:2:24: no value for parameter $MAX (pass --param MAX=...)");
  RequestContext bad;
  bad.params = {{"MAX", "abc"}};
  auto wrong = b->rules.AllowedItems(b->index, bad);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(),
            "rules.txt:2:24: $MAX: column 'price' is numeric, expected a number, got 'abc'");
  // The static part needs no parameters.
  auto st = b->rules.StaticAllowedItems(b->index);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->cardinality(), 8u);
  RequestContext out_of_range;
  out_of_range.current_item = 10;
  EXPECT_FALSE(b->rules.ForRequest(out_of_range).ok());

  auto s = BindRules("EXCLUDE WHERE in_stock = false\nBOOST 2 WHERE brand = CurrentItem.brand");
  EXPECT_FALSE(s->rules.FiltersDependOnRequest());  // the boost is not a filter
  auto c = BindRules("EXCLUDE WHERE brand = CurrentItem.brand");
  EXPECT_TRUE(c->rules.FiltersDependOnRequest());
}

TEST(RulesFilter, EmptyRuleSetNeedsNoBind) {
  RuleSet empty;
  auto index = AttributeIndex::Build(MakeCatalog());
  ASSERT_TRUE(index.ok());
  auto all = empty.AllowedItems(*index, {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->cardinality(), 10u);
  auto rr = empty.ForRequest({});
  ASSERT_TRUE(rr.ok());
  EXPECT_TRUE(rr->Allowed(3));
  EXPECT_EQ(rr->BoostFactor(3), 1.0);
  // A non-empty one must be bound.
  auto r = RuleSet::Parse("CAP 1 PER brand", "r");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ForRequest({}).status().code(), Status::Code::kInternal);
}

TEST(RulesBoost, FactorsAndAppliedRules) {
  auto b = BindRules(
      "BOOST 2 WHERE brand = \"a\"\nBURY 4 WHERE in_stock = false\n# x\nBOOST 3 WHERE tags = "
      "\"red\"\nWHEN context.sale = true BOOST 10 WHERE price < 15");
  auto rr = b->rules.ForRequest({});
  ASSERT_TRUE(rr.ok());
  std::vector<int> lines;
  EXPECT_DOUBLE_EQ(rr->BoostFactor(0, &lines), 6.0);
  EXPECT_EQ(lines, std::vector<int>({1, 4}));
  lines.clear();
  EXPECT_DOUBLE_EQ(rr->BoostFactor(2, &lines), 0.25);
  EXPECT_EQ(lines, std::vector<int>({2}));
  EXPECT_DOUBLE_EQ(rr->BoostFactor(6), 0.5);
  lines.clear();
  EXPECT_DOUBLE_EQ(rr->BoostFactor(1, &lines), 1.0);
  EXPECT_TRUE(lines.empty());
  RequestContext sale;
  sale.context = {{"sale", "yes"}};
  auto rs = b->rules.ForRequest(sale);
  ASSERT_TRUE(rs.ok());
  EXPECT_DOUBLE_EQ(rs->BoostFactor(0), 60.0);
  EXPECT_FLOAT_EQ(RequestRules::ApplyFactor(0.5f, 2.0), 1.0f);
  EXPECT_FLOAT_EQ(RequestRules::ApplyFactor(-0.5f, 2.0), -0.25f);
  EXPECT_FLOAT_EQ(RequestRules::ApplyFactor(-0.5f, 0.5), -1.0f);
}

// Rules that do not depend on the request are resolved once at Bind and the
// state is shared by every request; binding again must replace it (it points
// into the bound columns), and the current item is still range-checked.
TEST(RulesFilter, RequestIndependentRulesResolveOnceAndRebindCleanly) {
  auto b =
      BindRules("EXCLUDE WHERE in_stock = false\nBOOST 2 WHERE brand = \"a\"\nCAP 1 PER brand");
  auto check = [&](const Catalog& cat, const char* when) {
    const Column& brand = cat.columns[0];
    const Column& stock = cat.columns[2];
    for (int pass = 0; pass < 2; ++pass) {  // a second request sees the same answers
      auto rr = b->rules.ForRequest({});
      ASSERT_TRUE(rr.ok()) << when;
      std::vector<Candidate> pool;
      for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(rr->Allowed(i), stock.bools[i] != 0) << when << " item " << i;
        EXPECT_EQ(rr->BoostFactor(i), brand.codes[i] == 0 ? 2.0 : 1.0) << when << " item " << i;
        pool.push_back({i, 1.0f - 0.01f * static_cast<float>(i), nullptr});
      }
      RerankOptions ro;
      ro.k = 10;
      auto ranked = Rerank(pool, *rr, ro);
      ASSERT_TRUE(ranked.ok());
      std::set<int32_t> brands;
      for (const RankedItem& r : *ranked) {
        const int32_t code = brand.codes[r.item];
        if (code >= 0) {
          EXPECT_TRUE(brands.insert(code).second) << when << ": cap broken";
        }
      }
    }
  };
  check(b->catalog, "first bind");
  RequestContext ctx;
  ctx.current_item = 10;
  EXPECT_FALSE(b->rules.ForRequest(ctx).ok());
  ctx.current_item = 3;
  EXPECT_TRUE(b->rules.ForRequest(ctx).ok());
  // Rebind to a catalog whose brands and stock differ.
  Catalog other = MakeCatalog();
  other.columns[0].codes = {2, 2, 1, 1, 0, 0, -1, 0, 1, 2};
  other.columns[2].bools = {0, 1, 1, 1, 0, 1, 1, -1, 1, 0};
  ASSERT_TRUE(b->rules.Bind(other).ok());
  other.columns[0].dictionary.clear();  // the rules keep their own copy
  check(other, "second bind");
}

TEST(RulesRerank, PinsCapsFiltersBoosts) {
  auto b = BindRules("PIN \"i9\" AT 1\nCAP 1 PER brand\nEXCLUDE WHERE in_stock = false");
  auto rr = b->rules.ForRequest({});
  ASSERT_TRUE(rr.ok());
  ASSERT_EQ(rr->pins().size(), 1u);
  EXPECT_EQ(rr->pins()[0].item, 9);
  EXPECT_EQ(rr->pins()[0].position, 0);
  std::vector<Candidate> cands;
  for (int i = 0; i < 9; ++i) cands.push_back({i, 0.9f - 0.1f * i, nullptr});
  RerankOptions opt;
  opt.k = 4;
  auto out = Rerank(cands, *rr, opt);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // i9 pinned (brand a); a and b are then capped; i5 has no brand (never capped).
  std::vector<int32_t> items;
  for (const RankedItem& r : *out) items.push_back(r.item);
  EXPECT_EQ(items, std::vector<int32_t>({9, 1, 5, 7}));
  EXPECT_TRUE((*out)[0].pinned);
  EXPECT_EQ((*out)[0].rule_lines, std::vector<int>({1}));
  EXPECT_FALSE((*out)[1].pinned);

  // Boosts reorder; the applied rules are reported.
  auto bb = BindRules("BOOST 3 WHERE brand = \"c\"\nBURY 2 WHERE tags = \"red\"");
  auto r2 = bb->rules.ForRequest({});
  ASSERT_TRUE(r2.ok());
  opt.k = 3;
  auto out2 = Rerank(cands, *r2, opt);
  ASSERT_TRUE(out2.ok());
  // scores: i0 .9/2=.45, i1 .8, i2 .7*3=2.1, i7 .2*3=.6, i3 .6
  EXPECT_EQ((*out2)[0].item, 2);
  EXPECT_FLOAT_EQ((*out2)[0].score, 2.1f);
  EXPECT_EQ((*out2)[0].rule_lines, std::vector<int>({1}));
  EXPECT_EQ((*out2)[1].item, 1);
  EXPECT_EQ((*out2)[2].item, 3);

  // Excluded items are dropped even when pinned, and from an outside bitmap.
  auto bp = BindRules("PIN \"i2\" AT 1\nEXCLUDE WHERE in_stock = false");
  auto r3 = bp->rules.ForRequest({});
  ASSERT_TRUE(r3.ok());
  Bitmap allowed;
  allowed.addRange(0, 10);
  allowed.remove(1);
  auto out3 = Rerank(cands, *r3, opt, &allowed);
  ASSERT_TRUE(out3.ok());
  items.clear();
  for (const RankedItem& r : *out3) items.push_back(r.item);
  EXPECT_EQ(items, std::vector<int32_t>({0, 3, 4}));
}

// ------------------------------------------------------------ limits
// docs/rules.md "Limits": input beyond a limit is a clean error naming
// source:line:col; no input crashes the parser, the binder or the
// evaluators (5,000 parentheses, long NOT chains and a 30,000-term OR chain
// used to overflow the stack).

std::string Repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(RulesLimits, FiveThousandNestedParenthesesAreRefused) {
  const std::string text = "INCLUDE WHERE " + Repeat("(", 5000) + "price > 1" + Repeat(")", 5000);
  // The 65th '(' is at column 14 + 65.
  EXPECT_EQ(ParseError(text), "rules.txt:1:79: expression nests deeper than 64 levels");
}

TEST(RulesLimits, TenThousandNotsAreRefused) {
  const std::string text = "EXCLUDE WHERE " + Repeat("NOT ", 10000) + "price > 1";
  // The 65th NOT starts at column 15 + 64 * 4.
  EXPECT_EQ(ParseError(text), "rules.txt:1:271: expression nests deeper than 64 levels");
  EXPECT_EQ(ParseError("WHEN " + Repeat("NOT ", 10000) + "context.a = 1 CAP 1 PER brand"),
            "rules.txt:1:262: expression nests deeper than 64 levels");
}

TEST(RulesLimits, ThirtyThousandTermOrChainIsRefusedBySize) {
  std::string text = "INCLUDE WHERE price = 0";
  for (int k = 1; k < 30000; ++k) text += " OR price = " + std::to_string(k);
  ASSERT_GT(text.size(), RuleSet::kMaxTextBytes);
  EXPECT_EQ(ParseError(text), "rules.txt:1:65537: rule text is longer than 65536 bytes");
}

// Flat AND / OR chains do not nest: as long as the text fits, they parse,
// bind and evaluate (bitmap and per item, static and per request).
TEST(RulesLimits, LongFlatChainsWithinTheSizeLimitWork) {
  // price != k for k = 1..4000 except 20 and 40: prices 20, 40 and the
  // missing one (!= matches missing) remain. About 4,000 terms.
  std::string ands = "INCLUDE WHERE price != 1";
  for (int k = 2; k <= 4000; ++k) {
    if (k != 20 && k != 40) ands += " AND price!=" + std::to_string(k);
  }
  ASSERT_LE(ands.size(), RuleSet::kMaxTextBytes);
  EXPECT_EQ(Allowed(ands), S({1, 3, 5}));

  // price = k for odd k up to about 10,000 (no price is odd), and 40, and
  // $P: the parameter makes the rule depend on the request, so the
  // candidates are evaluated item by item rather than from precomputed bits.
  std::string ors = "INCLUDE WHERE price = $P OR price=40";
  for (int k = 1; ors.size() + 16 < RuleSet::kMaxTextBytes; k += 2) {
    ors += " OR price=" + std::to_string(k);
  }
  RequestContext ctx;
  ctx.params["P"] = "90";
  EXPECT_EQ(Allowed(ors, ctx), S({3, 8}));

  std::string when = "WHEN context.n = 0";
  for (int k = 1; when.size() + 50 < RuleSet::kMaxTextBytes; ++k) {
    when += " OR context.n = " + std::to_string(k);
  }
  when += " EXCLUDE WHERE brand = \"a\"";
  RequestContext c;
  c.context["n"] = "2000";
  EXPECT_EQ(Allowed(when, c), S({1, 2, 4, 5, 7, 8}));
  c.context["n"] = "-1";
  EXPECT_EQ(Allowed(when, c), S({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(RulesLimits, DepthLimitIsExact) {
  const int max = RuleSet::kMaxDepth;
  ASSERT_EQ(max, 64);
  auto parens = [](int n) {
    return "INCLUDE WHERE " + Repeat("(", n) + "brand = \"a\"" + Repeat(")", n);
  };
  EXPECT_EQ(Allowed(parens(max)), S({0, 3, 6, 9}));
  EXPECT_EQ(ParseError(parens(max + 1)), "rules.txt:1:79: expression nests deeper than 64 levels");

  auto nots = [](int n) { return "INCLUDE WHERE " + Repeat("NOT ", n) + "brand = \"a\""; };
  EXPECT_EQ(Allowed(nots(max)), S({0, 3, 6, 9}));  // an even number of NOTs
  EXPECT_EQ(Allowed(nots(max - 1)), S({1, 2, 4, 5, 7, 8}));
  EXPECT_EQ(ParseError(nots(max + 1)), "rules.txt:1:271: expression nests deeper than 64 levels");

  // NOT and parentheses count alike, and an operand chain inside each level
  // does not add to the depth.
  auto mixed = [](int n) {
    std::string s = "INCLUDE WHERE ";
    for (int i = 0; i < n / 2; ++i) s += "NOT (price > 1000 OR ";
    s += "brand = \"b\"";
    for (int i = 0; i < n / 2; ++i) s += ")";
    return s;
  };
  EXPECT_EQ(Allowed(mixed(max)), S({1, 4, 8}));
  EXPECT_EQ(ParseError(mixed(max + 2)), "rules.txt:1:" + std::to_string(15 + 32 * 21) +
                                            ": expression nests deeper than 64 levels");

  // WHEN conditions have the same limit, counted separately from the WHERE.
  const std::string deep_when = "WHEN " + Repeat("(", max) + "context.x = 1" + Repeat(")", max) +
                                " EXCLUDE WHERE " + Repeat("(", max) + "brand = \"a\"" +
                                Repeat(")", max);
  RequestContext c;
  c.context["x"] = "1";
  EXPECT_EQ(Allowed(deep_when, c), S({1, 2, 4, 5, 7, 8}));
  EXPECT_EQ(ParseError("WHEN " + Repeat("(", max + 1) + "context.x = 1" + Repeat(")", max + 1) +
                       " CAP 1 PER brand"),
            "rules.txt:1:70: expression nests deeper than 64 levels");
}

TEST(RulesLimits, TextSizeLimitIsExact) {
  const std::string first = "EXCLUDE WHERE price > 1\n";  // 24 bytes
  const std::string fits = first + "#" + std::string(RuleSet::kMaxTextBytes - 25, 'x');
  ASSERT_EQ(fits.size(), RuleSet::kMaxTextBytes);
  EXPECT_EQ(ParseError(fits), "OK");
  // One byte more: the error points at it, on line 2.
  EXPECT_EQ(ParseError(fits + "x"),
            "rules.txt:2:" + std::to_string(RuleSet::kMaxTextBytes - 24 + 1) +
                ": rule text is longer than 65536 bytes");
  EXPECT_EQ(ParseError(std::string(RuleSet::kMaxTextBytes - 1, '\n') + "\nx"),
            "rules.txt:65537:1: rule text is longer than 65536 bytes");
}

TEST(RulesLimits, RuleCountLimitIsExact) {
  ASSERT_EQ(RuleSet::kMaxRules, 1000);
  // Blank lines and comments are not rules.
  const std::string rules = Repeat("CAP 1 PER brand\n\n# c\n", RuleSet::kMaxRules);
  auto r = RuleSet::Parse(rules, "rules.txt");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->num_rules(), 1000);
  EXPECT_EQ(ParseError(rules + "  PIN \"i1\" AT 1"), "rules.txt:3001:3: more than 1000 rules");
}

// Random predicates nested around the depth limit, one deep path per rule:
// parsed iff no path nests deeper than 64, and then equal to a set oracle
// (bitmap and per item, via Allowed()).
class NestedPredicate {
 public:
  explicit NestedPredicate(uint32_t seed) : rng_(seed) {}

  // A predicate with one path about `target` levels deep; its items in *out.
  std::string Make(int target, S* out) {
    target_ = target;
    max_depth_ = 0;
    return Or(0, true, out);
  }
  int max_depth() const { return max_depth_; }

 private:
  std::string Or(int d, bool deep, S* out) {
    const int k = 1 + static_cast<int>(rng_() % 3);
    const int deep_at = static_cast<int>(rng_() % k);
    std::string s;
    out->clear();
    for (int i = 0; i < k; ++i) {
      S part;
      s += (i ? " OR " : "") + And(d, deep && i == deep_at, &part);
      out->insert(part.begin(), part.end());
    }
    return s;
  }
  std::string And(int d, bool deep, S* out) {
    const int k = 1 + static_cast<int>(rng_() % 3);
    const int deep_at = static_cast<int>(rng_() % k);
    std::string s;
    *out = kAll;
    for (int i = 0; i < k; ++i) {
      S part, both;
      s += (i ? " AND " : "") + Factor(d, deep && i == deep_at, &part);
      std::set_intersection(out->begin(), out->end(), part.begin(), part.end(),
                            std::inserter(both, both.begin()));
      *out = both;
    }
    return s;
  }
  std::string Factor(int d, bool deep, S* out) {
    max_depth_ = std::max(max_depth_, d);
    const bool nest = deep ? d < target_ : (d < target_ && rng_() % 8 == 0);
    if (!nest) {
      static const std::pair<const char*, S> kComparisons[] = {
          {"price > 45", {4, 6, 7, 8, 9}},
          {"brand = \"a\"", {0, 3, 6, 9}},
          {"in_stock = true", {0, 1, 3, 5, 7, 8, 9}},
          {"tags IN (\"red\")", {0, 4, 5, 8}},
          {"title != \"x\"", {1, 3, 4, 5, 7, 8}},
      };
      const auto& c = kComparisons[rng_() % 5];
      *out = c.second;
      return c.first;
    }
    if (rng_() % 2) {
      S inner;
      std::string s = "NOT " + Factor(d + 1, deep, &inner);
      out->clear();
      std::set_difference(kAll.begin(), kAll.end(), inner.begin(), inner.end(),
                          std::inserter(*out, out->begin()));
      return s;
    }
    return "(" + Or(d + 1, deep, out) + ")";
  }

  const S kAll = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::mt19937 rng_;
  int target_ = 0;
  int max_depth_ = 0;
};

TEST(RulesLimits, RandomNestedPredicatesMatchAnOracle) {
  NestedPredicate gen(12345);
  int accepted = 0, refused = 0;
  for (int round = 0; round < 150; ++round) {
    S want;
    const std::string text = "INCLUDE WHERE " + gen.Make(56 + round % 14, &want);
    if (gen.max_depth() <= RuleSet::kMaxDepth) {
      EXPECT_EQ(Allowed(text), want) << text;
      ++accepted;
    } else {
      EXPECT_NE(ParseError(text).find(": expression nests deeper than 64 levels"),
                std::string::npos)
          << text;
      ++refused;
    }
  }
  EXPECT_GT(accepted, 50);
  EXPECT_GT(refused, 20);
}

// After Bind, one RuleSet serves many threads: each thread's answers equal
// the single-threaded ones.
TEST(RulesThreads, ConcurrentRequestsAgree) {
  auto b = BindRules(
      "EXCLUDE WHERE in_stock = false\nINCLUDE WHERE price <= $MAX\nBOOST 3 WHERE tags = "
      "\"red\"\nCAP 1 PER brand\nWHEN context.pin = \"yes\" PIN \"i7\" AT 2");
  std::vector<Candidate> cands;
  for (int i = 0; i < 10; ++i) cands.push_back({i, 0.1f * static_cast<float>(i), nullptr});
  auto answer = [&](int t) {
    RequestContext ctx;
    ctx.params["MAX"] = std::to_string(40 + 10 * (t % 6));
    if (t % 2) ctx.context["pin"] = "yes";
    std::vector<int32_t> out;
    auto allowed = b->rules.AllowedItems(b->index, ctx);
    auto rr = b->rules.ForRequest(ctx);
    if (!allowed.ok() || !rr.ok()) return out;
    RerankOptions opt;
    opt.k = 4;
    auto ranked = Rerank(cands, *rr, opt, &*allowed);
    if (!ranked.ok()) return out;
    for (const RankedItem& r : *ranked) out.push_back(r.item);
    return out;
  };
  std::vector<std::vector<int32_t>> want(12), got(12);
  for (int t = 0; t < 12; ++t) want[t] = answer(t);
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 50; ++rep) got[t] = answer(t);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(got, want);
  EXPECT_FALSE(want[1].empty());
}

}  // namespace
}  // namespace vitrine
