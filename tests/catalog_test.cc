#include "core/catalog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/file_util.h"

namespace vitrine {
namespace {

std::filesystem::path WriteTemp(const std::string& name, const std::string& data) {
  const auto path = std::filesystem::path(testing::TempDir()) / ("catalog_test_" + name);
  EXPECT_TRUE(WriteFileAtomic(path, data).ok());
  return path;
}

// Runs ReadCsv and returns the error message ("" on success).
std::string ReadError(const std::string& name, const std::string& data,
                      const CatalogReadOptions& opts = {}) {
  auto r = Catalog::ReadCsv(WriteTemp(name, data), opts);
  return r.ok() ? "" : r.status().message();
}

std::vector<std::string> Values(const Catalog& cat, const char* column) {
  const Column* c = cat.column(column);
  EXPECT_NE(c, nullptr) << column;
  std::vector<std::string> v;
  if (c == nullptr) return v;
  for (int32_t i = 0; i < cat.size(); ++i) v.push_back(cat.ValueString(*c, i));
  return v;
}

const char kSample[] =
    "item_id,title,brand,price,in_stock,tags,description,color,count,empty\n"
    "i1,Red Running Shoe,Acme,9.99,true,sport;outdoor,"
    "\"A light shoe for long runs, with a breathable mesh upper\",red,0,\n"
    "i2,Blue Denim Jacket,Zeta,  12 ,No,\" casual ; denim;casual\","
    "\"Classic denim jacket\nwith two pockets and brass buttons\",blue,1,\n"
    "i3,Green Wool Hat,Acme,,YES,,\"Warm hat knitted from merino wool, one size\",green,1,\n"
    "i4,Black Leather Belt,Acme,1e1,,winter,\"A belt; full grain leather, made to "
    "last\",black,0,\n";

TEST(Catalog, InfersTypesAndValues) {
  auto r = Catalog::ReadCsv(WriteTemp("sample.csv", kSample));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Catalog& cat = *r;
  ASSERT_EQ(cat.size(), 4);
  EXPECT_EQ(cat.ids.id(2), "i3");
  EXPECT_EQ(cat.column("item_id"), nullptr);  // the id is not an attribute column

  std::vector<std::pair<std::string, ColumnType>> types;
  for (const Column& c : cat.columns) types.emplace_back(c.name, c.type);
  EXPECT_EQ(types,
            (std::vector<std::pair<std::string, ColumnType>>{{"title", ColumnType::kText},
                                                             {"brand", ColumnType::kCategorical},
                                                             {"price", ColumnType::kNumeric},
                                                             {"in_stock", ColumnType::kBool},
                                                             {"tags", ColumnType::kList},
                                                             {"description", ColumnType::kText},
                                                             {"color", ColumnType::kCategorical},
                                                             {"count", ColumnType::kNumeric},
                                                             {"empty", ColumnType::kCategorical}}));

  const Column& brand = *cat.column("brand");
  EXPECT_EQ(brand.dictionary, (std::vector<std::string>{"Acme", "Zeta"}));
  EXPECT_EQ(brand.codes, (std::vector<int32_t>{0, 1, 0, 0}));

  const Column& price = *cat.column("price");
  EXPECT_DOUBLE_EQ(price.numbers[0], 9.99);
  EXPECT_DOUBLE_EQ(price.numbers[1], 12);
  EXPECT_TRUE(std::isnan(price.numbers[2]));
  EXPECT_DOUBLE_EQ(price.numbers[3], 10);
  EXPECT_EQ(Values(cat, "price"), (std::vector<std::string>{"9.99", "12", "", "10"}));

  EXPECT_EQ(cat.column("in_stock")->bools, (std::vector<int8_t>{1, 0, 1, -1}));
  EXPECT_EQ(Values(cat, "in_stock"), (std::vector<std::string>{"true", "false", "true", ""}));

  const Column& tags = *cat.column("tags");
  EXPECT_EQ(tags.dictionary,
            (std::vector<std::string>{"sport", "outdoor", "casual", "denim", "winter"}));
  EXPECT_EQ(tags.list_offsets, (std::vector<int64_t>{0, 2, 4, 4, 5}));
  EXPECT_EQ(tags.list_codes, (std::vector<int32_t>{0, 1, 2, 3, 4}));  // repeat dropped
  EXPECT_EQ(Values(cat, "tags"),
            (std::vector<std::string>{"sport;outdoor", "casual;denim", "", "winter"}));

  EXPECT_EQ(cat.column("description")->texts[1],
            "Classic denim jacket\nwith two pockets and brass buttons");
  EXPECT_EQ(Values(cat, "title")[0], "Red Running Shoe");
  EXPECT_EQ(cat.column("empty")->codes, (std::vector<int32_t>{-1, -1, -1, -1}));
  EXPECT_EQ(Values(cat, "empty"), (std::vector<std::string>{"", "", "", ""}));
}

TEST(Catalog, SchemaOverridesInference) {
  CatalogReadOptions opts;
  auto schema =
      Schema::Parse("color:text, price:categorical,description:skip,count:bool,tags:categorical");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  opts.schema = *schema;
  auto r = Catalog::ReadCsv(WriteTemp("sample2.csv", kSample), opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Catalog& cat = *r;
  EXPECT_EQ(cat.column("description"), nullptr);
  EXPECT_EQ(cat.columns.size(), 8u);
  EXPECT_EQ(cat.column("color")->type, ColumnType::kText);
  EXPECT_EQ(cat.column("price")->type, ColumnType::kCategorical);
  EXPECT_EQ(cat.column("price")->dictionary, (std::vector<std::string>{"9.99", "12", "1e1"}));
  EXPECT_EQ(cat.column("count")->bools, (std::vector<int8_t>{0, 1, 1, 0}));  // 1/0 when asked
  EXPECT_EQ(cat.column("tags")->type, ColumnType::kCategorical);
  EXPECT_EQ(cat.column("brand")->type, ColumnType::kCategorical);  // still inferred
}

TEST(Catalog, SchemaParse) {
  auto s = Schema::Parse("price:numeric,tags:list,notes:skip");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->overrides.size(), 3u);
  ASSERT_NE(s->Find("tags"), nullptr);
  EXPECT_EQ(*s->Find("tags"), ColumnType::kList);
  EXPECT_EQ(s->Find("title"), nullptr);
  EXPECT_TRUE(Schema::Parse("").ok());
  auto colon = Schema::Parse("a:b:text");  // the last ':' splits
  ASSERT_TRUE(colon.ok());
  EXPECT_EQ(colon->overrides[0].first, "a:b");

  EXPECT_EQ(Schema::Parse("price:numeric,tags").status().message(),
            "schema entry 2 'tags': expected column:type, e.g. price:numeric");
  EXPECT_EQ(Schema::Parse("price:nums").status().message(),
            "schema entry 1 'price:nums': unknown column type 'nums' (expected categorical, "
            "numeric, bool, list, text or skip)");
  EXPECT_EQ(Schema::Parse(":text").status().message(),
            "schema entry 1 ':text': expected a column name before ':'");
  EXPECT_EQ(Schema::Parse("a:text,a:list").status().message(),
            "schema entry 2 'a:list': column 'a' is named twice");
  EXPECT_EQ(Schema::Parse("a:text,,b:list").status().message(),
            "schema entry 2 '': expected column:type, e.g. price:numeric");
  for (ColumnType t : {ColumnType::kCategorical, ColumnType::kNumeric, ColumnType::kBool,
                       ColumnType::kList, ColumnType::kText, ColumnType::kSkip}) {
    EXPECT_EQ(*ParseColumnType(ColumnTypeName(t)), t);
  }
}

TEST(Catalog, ErrorsNameFileLineAndColumn) {
  const std::string dir = testing::TempDir();
  // The record on line 2 spans two lines, so 'b' is on line 4 and the
  // duplicate on line 5.
  EXPECT_EQ(ReadError("dup.csv", "item_id,title\na,\"x\ny\"\nb,z\na,w\n"),
            dir + "catalog_test_dup.csv:5: duplicate item_id 'a' (first seen on line 2)");
  EXPECT_EQ(ReadError("dup2.csv", "item_id,title\na,\"x\ny\"\na,w\n"),
            dir + "catalog_test_dup2.csv:4: duplicate item_id 'a' (first seen on line 2)");

  CatalogReadOptions typed;
  typed.schema = *Schema::Parse("price:numeric,ok:bool");
  EXPECT_EQ(ReadError("num.csv", "item_id,ok,price\na,1,3\nb,no,abc\n", typed),
            dir + "catalog_test_num.csv:3:3: column 'price' expects a number, found 'abc'");
  EXPECT_EQ(ReadError("bool.csv", "item_id,ok,price\na,maybe,3\n", typed),
            dir +
                "catalog_test_bool.csv:2:2: column 'ok' expects true/false, yes/no or 1/0, "
                "found 'maybe'");
  EXPECT_EQ(ReadError("nan.csv", "item_id,ok,price\na,1,nan\n", typed),
            dir + "catalog_test_nan.csv:2:3: column 'price' expects a number, found 'nan'");
  EXPECT_EQ(ReadError("emptyid.csv", "title,item_id\nx,\n"),
            dir + "catalog_test_emptyid.csv:2:2: empty item_id, expected an id");
  EXPECT_EQ(ReadError("noid.csv", "id,title\n1,x\n"),
            dir + "catalog_test_noid.csv: missing column 'item_id' (columns: id, title)");

  CatalogReadOptions ghost;
  ghost.schema = *Schema::Parse("weight:numeric");
  EXPECT_EQ(ReadError("ghost.csv", "item_id,title\n1,x\n", ghost),
            dir +
                "catalog_test_ghost.csv: the schema names column 'weight', which is not in "
                "the header (columns: item_id, title)");
  CatalogReadOptions idtyped;
  idtyped.schema = *Schema::Parse("item_id:numeric");
  EXPECT_EQ(ReadError("idtyped.csv", "item_id,title\n1,x\n", idtyped),
            dir +
                "catalog_test_idtyped.csv: the schema names the id column 'item_id'; ids are "
                "not typed");
  EXPECT_EQ(ReadError("fields.csv", "item_id,title\n1,x\n2\n"),
            dir + "catalog_test_fields.csv:3: expected 2 fields, found 1");
  CatalogReadOptions other_id;
  other_id.id_column = "sku";
  EXPECT_EQ(ReadError("sku.csv", "sku,t\n1,x\n1,y\n", other_id),
            dir + "catalog_test_sku.csv:3: duplicate sku '1' (first seen on line 2)");
}

// Issue 13: invalid UTF-8 in the catalog was accepted at build and failed
// later in --format json; now it fails at read time, naming file, line and
// column.
TEST(Catalog, InvalidUtf8IsAnErrorAtReadTime) {
  const std::string path = WriteTemp("utf8.csv", "").string();
  EXPECT_EQ(ReadError("utf8.csv", "item_id,title\ni1,Shoe\ni2,Cr\xe8me\n"),
            path +
                ":3:2: invalid UTF-8 (byte 0xe8 at offset 2 of field 2), expected UTF-8 text; "
                "convert the file first, e.g. iconv -f latin1 -t utf-8");
}

TEST(Catalog, SkipBadLinesCountsAndKeepsTheRest) {
  CatalogReadOptions opts;
  opts.skip_bad_lines = true;
  opts.schema = *Schema::Parse("price:numeric");
  const std::string data =
      "item_id,price,brand\n"
      "a,1,x\n"
      "b,oops,y\n"  // bad number: skipped whole
      "a,2,z\n"     // duplicate: skipped, first kept
      "c,3\n"       // field count
      ",4,w\n"      // empty id
      "d,5,\"v\"\n";
  auto r = Catalog::ReadCsv(WriteTemp("skip.csv", data), opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ids.ids(), (std::vector<std::string>{"a", "d"}));
  EXPECT_EQ(r->column("price")->numbers, (std::vector<double>{1, 5}));
  EXPECT_EQ(r->column("brand")->dictionary, (std::vector<std::string>{"x", "v"}));
  EXPECT_EQ(r->skipped_lines, 4);
  EXPECT_EQ(r->skipped_line_numbers, (std::vector<int64_t>{3, 4, 5, 6}));
  EXPECT_NE(r->skipped_summary.find("skipped 4 bad lines (lines 3, 4, 5, 6; first: "),
            std::string::npos)
      << r->skipped_summary;
}

// `n` rows "i<k>,<price>,<flag>" where the rows in `bad_price` / `bad_flag`
// hold a value of the wrong kind.
std::string NearMissCatalog(int n, const std::vector<int>& bad_price,
                            const std::vector<int>& bad_flag = {}) {
  std::string data = "item_id,price,flag\n";
  for (int k = 0; k < n; ++k) {
    const bool bp = std::find(bad_price.begin(), bad_price.end(), k) != bad_price.end();
    const bool bf = std::find(bad_flag.begin(), bad_flag.end(), k) != bad_flag.end();
    data += "i" + std::to_string(k) + "," + (bp ? "n/a" + std::to_string(k) : std::to_string(k)) +
            "," + (bf ? "maybe" : (k % 2 ? "yes" : "no")) + "\n";
  }
  return data;
}

// Issue 13: two unparsable prices out of 600 turned `price` categorical with
// no word, and `price > 100` failed only at query time. The type is still
// what the rules say, but the build warns with the count and examples, and
// under --strict it is an error naming file, line and column.
TEST(Catalog, NearMissTypesWarnWithCountAndExamples) {
  const auto path = WriteTemp("near.csv", NearMissCatalog(600, {13, 300}));
  auto r = Catalog::ReadCsv(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->column("price")->type, ColumnType::kCategorical);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0],
            path.string() +
                ": column 'price' (column 2) inferred categorical because 2 of 600 values are "
                "not a number (line 15 'n/a13', line 302 'n/a300'); fix those cells, or name the "
                "type with --schema price:numeric (rows it cannot read become errors) or "
                "price:categorical (keeps it as it is); --strict makes this an error");

  CatalogReadOptions strict;
  strict.strict = true;
  auto s = Catalog::ReadCsv(path, strict);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().rfind(
                path.string() +
                    ":15:2: column 'price' would be numeric but 2 of 600 values are not a number "
                    "(line 15 'n/a13', line 302 'n/a300'); fix those cells",
                0),
            0u)
      << s.status().message();

  // The schema names the column: no inference, no warning, strict or not.
  strict.schema = Schema::Parse("price:categorical").value();
  auto named = Catalog::ReadCsv(path, strict);
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_TRUE(named->warnings.empty());

  // A bool column with one stray value; at most three examples are quoted.
  auto flags = Catalog::ReadCsv(WriteTemp("flags.csv", NearMissCatalog(100, {}, {1, 2, 3, 4})));
  ASSERT_TRUE(flags.ok());
  ASSERT_EQ(flags->warnings.size(), 1u);
  EXPECT_NE(flags->warnings[0].find("column 'flag' (column 3) inferred categorical because 4 of "
                                    "100 values are not true/false or yes/no (line 3 'maybe', "
                                    "line 4 'maybe', line 5 'maybe');"),
            std::string::npos)
      << flags->warnings[0];
}

// "A few" is at most kFewCellsMax cells and at most kFewCellsFraction of the
// non-empty cells; a column mixed beyond that is simply categorical.
TEST(Catalog, NearMissBoundaries) {
  auto bad = [](int count, int every) {
    std::vector<int> rows;
    for (int k = 0; k < count; ++k) rows.push_back(k * every);
    return rows;
  };
  auto warnings = [&](int n, const std::vector<int>& bad_rows) {
    auto r = Catalog::ReadCsv(WriteTemp("bound.csv", NearMissCatalog(n, bad_rows)));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->warnings.size() : 99u;
  };
  EXPECT_EQ(warnings(1200, bad(kFewCellsMax, 20)), 1u);      // 50 cells, 4.2%
  EXPECT_EQ(warnings(1200, bad(kFewCellsMax + 1, 20)), 0u);  // 51 cells
  EXPECT_EQ(warnings(200, bad(10, 20)), 1u);                 // 5%
  EXPECT_EQ(warnings(200, bad(11, 18)), 0u);                 // 5.5%
  EXPECT_EQ(warnings(200, {}), 0u);                          // numeric, nothing to say
}

TEST(Catalog, InferenceRuleBoundaries) {
  const std::string data =
      "item_id,flags01,yesno,sentence,size,code\n"
      "1,0,yes,\"Short intro; then a rather long explanation of the whole thing, in "
      "detail\",S,A-1\n"
      "2,1,no,\"Another sentence; followed by a long clause that goes on and on for a "
      "while\",M,A-2\n"
      "3,1,No,,S,A-3\n"
      "4,0,,,XL,A-4\n";
  auto r = Catalog::ReadCsv(WriteTemp("rules.csv", data));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->column("flags01")->type, ColumnType::kNumeric);  // 0/1: counts, not flags
  EXPECT_EQ(r->column("yesno")->type, ColumnType::kBool);
  EXPECT_EQ(r->column("sentence")->type, ColumnType::kText);  // ';' but long elements
  EXPECT_EQ(r->column("size")->type, ColumnType::kCategorical);
  EXPECT_EQ(r->column("code")->type, ColumnType::kCategorical);  // distinct, but no spaces
}

// The movie-style catalog from the brief: year numeric, genres and tags
// lists, title text.
TEST(Catalog, MovieStyleCatalog) {
  const std::string data =
      "item_id,title,year,genres,tags\n"
      "1,Toy Story (1995),1995,Adventure;Animation;Children;Comedy;Fantasy,pixar;fun\n"
      "2,Jumanji (1995),1995,Adventure;Children;Fantasy,\n"
      "3,Grumpier Old Men (1995),1995,Comedy;Romance,moldy;old\n"
      "4,Heat (1995),1995,Action;Crime;Thriller,\n"
      "5,\"American President, The (1995)\",1995,Comedy;Drama;Romance,politics\n"
      "6,Sabrina (1995),1995,Comedy;Romance,remake\n";
  auto r = Catalog::ReadCsv(WriteTemp("movies.csv", data));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Catalog& cat = *r;
  EXPECT_EQ(cat.size(), 6);
  EXPECT_EQ(cat.column("title")->type, ColumnType::kText);
  EXPECT_EQ(cat.column("year")->type, ColumnType::kNumeric);
  EXPECT_EQ(cat.column("genres")->type, ColumnType::kList);
  EXPECT_EQ(cat.column("tags")->type, ColumnType::kList);
  EXPECT_EQ(cat.ValueString(*cat.column("title"), 4), "American President, The (1995)");
  EXPECT_EQ(cat.ValueString(*cat.column("year"), 0), "1995");
  EXPECT_EQ(cat.ValueString(*cat.column("genres"), 3), "Action;Crime;Thriller");
  EXPECT_EQ(cat.column("genres")->dictionary.size(), 10u);
  EXPECT_EQ(cat.ValueString(*cat.column("tags"), 1), "");
}

// MovieLens writes genres as "Adventure|Animation": '|' separates list
// elements too when the elements repeat (a vocabulary), but a title with
// one '|' stays text and codes with one '|' stay categorical.
TEST(Catalog, PipeSeparatedGenresAreAList) {
  const std::string data =
      "item_id,title,genres,code\n"
      "1,Toy Story (1995),Adventure|Animation|Children,A1\n"
      "2,Heat | Director's Cut (1995),Action|Crime|Thriller,A2\n"
      "3,Sabrina (1995),Comedy|Romance,A|B\n"
      "4,Jumanji (1995),Adventure|Children,A3\n"
      "5,Balto (1995),(no genres listed),A4\n"
      "6,Nixon (1995),Drama,A5\n"
      "7,Casino (1995),Crime|Drama,A6\n"
      "8,Ace Ventura (1995),Comedy,A7\n"
      "9,Babe (1995),Children|Drama,A8\n"
      "10,Clueless (1995),Comedy|Romance,A9\n"
      "11,Othello (1995),Drama,A10\n"
      "12,Now and Then (1995),Children|Drama,A11\n";
  auto r = Catalog::ReadCsv(WriteTemp("movies_pipes.csv", data));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Catalog& cat = *r;
  EXPECT_EQ(cat.column("title")->type, ColumnType::kText);
  EXPECT_EQ(cat.ValueString(*cat.column("title"), 1), "Heat | Director's Cut (1995)");
  ASSERT_EQ(cat.column("genres")->type, ColumnType::kList);
  EXPECT_EQ(cat.ValueString(*cat.column("genres"), 1), "Action;Crime;Thriller");
  EXPECT_EQ(cat.ValueString(*cat.column("genres"), 4), "(no genres listed)");
  EXPECT_EQ(cat.column("genres")->dictionary.size(), 10u);
  EXPECT_EQ(cat.column("code")->type, ColumnType::kCategorical);
  EXPECT_EQ(cat.ValueString(*cat.column("code"), 2), "A|B");
}

TEST(Catalog, ARarePipeInCategoricalValuesKeepsTheColumnCategorical) {
  std::string data = "item_id,colour\n";
  for (int i = 0; i < 30; ++i) data += std::to_string(i) + (i == 7 ? ",red|blue\n" : ",red\n");
  auto r = Catalog::ReadCsv(WriteTemp("rare_pipe.csv", data));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->column("colour")->type, ColumnType::kCategorical);
  EXPECT_EQ(r->ValueString(*r->column("colour"), 7), "red|blue");
}

}  // namespace
}  // namespace vitrine
