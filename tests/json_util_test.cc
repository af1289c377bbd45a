// ParseJson's limits, FindInvalidUtf8 against an independent decoder, and
// the bounded renderings used in error messages.
#include "core/json_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bundle.h"

namespace vitrine {
namespace {

using json = nlohmann::json;

std::string Nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(ParseJson, AcceptsOrdinaryJsonUpToTheDepthLimit) {
  auto j = ParseJson(R"({"k": [1, 2.5, "x", true, null, {"a": {}}]})", "body");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["k"][1], 2.5);
  ASSERT_TRUE(ParseJson(Nested(64), "body").ok());
  ASSERT_TRUE(ParseJson(R"({"a": {"b": {}}})", "body", {.max_depth = 3}).ok());
  // Brackets inside strings do not count, escaped quotes do not end them.
  ASSERT_TRUE(ParseJson("[\"" + std::string(1000, '[') + "\\\"[[[\"]", "body").ok());
}

TEST(ParseJson, RejectsDeepNestingBeforeParsing) {
  // 100k deep: nlohmann would parse it, and its dump() would overflow the stack.
  for (const auto& text : {Nested(100000), Nested(100000, '{', '}'), "{\"k\": " + Nested(65) + "}",
                           std::string(100000, '[')}) {
    auto j = ParseJson(text, "body");
    ASSERT_FALSE(j.ok());
    EXPECT_EQ(j.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(j.status().message().find("body: nested deeper than 64 levels at byte "),
              std::string::npos)
        << j.status().message();
  }
  auto j = ParseJson(Nested(65), "body");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message(), "body: nested deeper than 64 levels at byte 64");
  EXPECT_TRUE(ParseJson(Nested(10), "body", {.max_depth = 10}).ok());
  EXPECT_FALSE(ParseJson(Nested(11), "body", {.max_depth = 10}).ok());
}

TEST(ParseJson, RejectsTooLongText) {
  auto j = ParseJson("[" + std::string(100, ' ') + "]", "body", {.max_bytes = 50});
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message(), "body is longer than 50 bytes");
}

TEST(ParseJson, RejectsInvalidUtf8WithItsOffset) {
  auto j = ParseJson("{\"k\": \"ab\xff\"}", "body");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message(), "body is not valid UTF-8 at byte 9");
  // Valid multi-byte text is fine.
  j = ParseJson("{\"k\": \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", "body");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["k"], "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(ParseJson, NumberOverflowIsAnInputError) {
  for (const char* text : {"{\"k\": 1e400}", "[-1e400]", "1e99999"}) {
    auto j = ParseJson(text, "body");
    ASSERT_FALSE(j.ok()) << text;
    EXPECT_EQ(j.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(j.status().message().find("body: number out of range"), std::string::npos)
        << j.status().message();
  }
}

TEST(ParseJson, MalformedJsonNamesThePlaceAndQuotesLittle) {
  auto j = ParseJson("{\"user\": ", "body");
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find("body: malformed JSON: parse error at line 1, column 10"),
            std::string::npos)
      << j.status().message();
  // An unterminated 100 KB string: the message quotes at most 40 bytes of it.
  j = ParseJson("[\"" + std::string(100000, 'x'), "body");
  ASSERT_FALSE(j.ok());
  EXPECT_LT(j.status().message().size(), 300u) << j.status().message();
  EXPECT_NE(j.status().message().find("xxx..."), std::string::npos) << j.status().message();
  // A long invalid literal likewise.
  j = ParseJson("[tru" + std::string(100000, 'e') + "]", "body");
  ASSERT_FALSE(j.ok());
  EXPECT_LT(j.status().message().size(), 300u) << j.status().message();
  EXPECT_FALSE(ParseJson("", "body").ok());
  EXPECT_FALSE(ParseJson("[1] [2]", "body").ok());
}

// Bundle::Open parses its manifest the same way: a 100k-deep "format" used
// to overflow the stack when the error message dumped it.
TEST(ParseJson, ADeepBundleManifestIsCorruptionNotACrash) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("vitrine_json_util_" + std::to_string(::getpid())) / "bundle";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "manifest.json") << "{\"format\": " << Nested(100000) << "}";
  auto b = Bundle::Open(dir);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Status::Code::kCorruption);
  EXPECT_NE(b.status().message().find("manifest.json: nested deeper than 64 levels at byte 74: "
                                      "the bundle is corrupt; rebuild it"),
            std::string::npos)
      << b.status().message();
  std::filesystem::remove_all(dir.parent_path());
}

// Independent oracle: decode code points by the textbook rules, then
// re-encode and compare (an overlong or surrogate does not round-trip).
bool OracleValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1f) : n == 3 ? (b & 0x0f) : (b & 0x07);
    for (int k = 1; k < n; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    const int want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (want != n || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return false;
    i += n;
  }
  return true;
}

TEST(FindInvalidUtf8, AgreesWithADecoderOnRandomBytes) {
  std::mt19937 rng(7);
  // Bytes biased toward the interesting lead and continuation ranges.
  const unsigned char kBytes[] = {'a',  0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
                                  0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  int valid = 0;
  for (int t = 0; t < 200000; ++t) {
    std::string s(1 + rng() % 5, ' ');
    for (auto& c : s) c = static_cast<char>(kBytes[rng() % sizeof kBytes]);
    const size_t bad = FindInvalidUtf8(s);
    ASSERT_EQ(bad == std::string::npos, OracleValidUtf8(s)) << t;
    if (bad == std::string::npos) {
      ++valid;
    } else {
      // The prefix before the offset is valid.
      ASSERT_TRUE(OracleValidUtf8(s.substr(0, bad))) << t;
    }
  }
  EXPECT_GT(valid, 1000);  // the generator reaches both outcomes
}

TEST(Clip, BoundsLengthOnCharacterBoundariesAndEscapesControls) {
  EXPECT_EQ(Clip("short"), "short");
  EXPECT_EQ(Clip(std::string(100, 'a')), std::string(40, 'a') + "...");
  EXPECT_EQ(Clip("a\nb"), "a\\x0ab");
  // 39 ASCII bytes then a 2-byte character: it would end at byte 41, so it goes.
  EXPECT_EQ(Clip(std::string(39, 'a') + "\xc3\xa9" + "zz"), std::string(39, 'a') + "...");
  EXPECT_EQ(Clip(std::string(38, 'a') + "\xc3\xa9" + "zz"), std::string(38, 'a') + "\xc3\xa9...");
  for (size_t n = 0; n < 60; ++n) {
    const std::string out = Clip(std::string(n, 'b') + std::string(20, '\x01') + "\xe2\x82\xac");
    EXPECT_LE(out.size(), 43u);
    EXPECT_EQ(FindInvalidUtf8(out), std::string::npos) << out;
  }
}

TEST(Describe, IsBoundedAndFlat) {
  EXPECT_EQ(Describe(json("abc")), "\"abc\"");
  EXPECT_EQ(Describe(json(std::string(1000, 'x'))), "\"" + std::string(40, 'x') + "...\"");
  EXPECT_EQ(Describe(json(12)), "12");
  EXPECT_EQ(Describe(json(nullptr)), "null");
  EXPECT_EQ(Describe(json::array({1, 2, 3})), "an array of 3 values");
  EXPECT_EQ(Describe(json{{"a", 1}}), "an object of 1 field");
}

// Found by hostile testing of POST /forget: {"user": "A", "user": "B"}
// acted on B alone (nlohmann keeps the last).
TEST(ParseJson, RefusesAKeyGivenTwiceInOneObject) {
  auto dup = ParseJson(R"({"user": "A", "user": "B"})", "body");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "body: the key \"user\" appears twice in one object");
  EXPECT_FALSE(ParseJson(R"([{"a": 1}, {"b": {"c": 1, "c": 2}}])", "body").ok());
  // The same key in different objects, or nested, is fine.
  auto ok = ParseJson(R"({"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]})", "body");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["b"][1]["a"], 3);
}

// Found by manifest_fuzzer: nlohmann's get<int>() casts a float such as
// 1e300 to an integer, which is undefined behaviour (UBSan stops there).
TEST(JsonInteger, ReadsIntegersThatFitAndRefusesEverythingElse) {
  EXPECT_EQ(JsonInteger<int>(json(7)), 7);
  EXPECT_EQ(JsonInteger<int>(json(-7)), -7);
  EXPECT_EQ(JsonInteger<int64_t>(json(int64_t{1} << 40)), int64_t{1} << 40);
  EXPECT_EQ(JsonInteger<uint64_t>(json(~uint64_t{0})), ~uint64_t{0});
  EXPECT_EQ(JsonInteger<int>(json(2147483647)), 2147483647);
  EXPECT_EQ(JsonInteger<int>(json(-2147483648LL)), -2147483647 - 1);
  for (const json& bad : {json(1e300), json(2.5), json(1.0), json(int64_t{1} << 40), json("7"),
                          json(nullptr), json(true), json::array({1})}) {
    EXPECT_THROW(JsonInteger<int>(bad), std::out_of_range) << bad.dump();
  }
  EXPECT_THROW(JsonInteger<size_t>(json(-1)), std::out_of_range);
  EXPECT_THROW(JsonInteger<int64_t>(json(~uint64_t{0})), std::out_of_range);
  try {
    JsonInteger<int>(json(1e300), "dim");
    FAIL() << "no exception";
  } catch (const std::out_of_range& e) {
    EXPECT_EQ(std::string(e.what()),
              "'dim': expected an integer in [-2147483648, 2147483647], got 1e+300");
  }
}

TEST(JsonInteger, OptionalKeysAndArrays) {
  const json j = {{"a", 3}, {"f", 0.5}, {"v", {1, 2, 3}}, {"w", {1, 2.5}}};
  EXPECT_EQ(JsonIntegerOr(j, "a", 9), 3);
  EXPECT_EQ(JsonIntegerOr(j, "missing", 9), 9);
  EXPECT_THROW(JsonIntegerOr(j, "f", 9), std::out_of_range);
  EXPECT_EQ(JsonIntegers<int>(j["v"]), (std::vector<int>{1, 2, 3}));
  EXPECT_THROW(JsonIntegers<int>(j["w"]), std::out_of_range);
  EXPECT_THROW(JsonIntegers<int>(j["a"]), json::type_error);
}

}  // namespace
}  // namespace vitrine
