// The typed bundle schema (engine/bundle_schema.h): every manifest value a
// reader relies on is checked for type and range, and against the arrays it
// describes, so a hand-edited manifest is refused with the key named by every
// command that opens a bundle, never read past an array.
#include "engine/bundle_schema.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "engine/item_encoder.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using vitrine::testing::MakeTestBundle;
using vitrine::testing::RunVitrine;

// A minimal valid manifest (types and ranges only; no files).
json MinimalManifest() {
  return json{
      {"catalog", {{"id_column", "item_id"}, {"schema", "brand:categorical"}}},
      {"blocks",
       {{{"name", "cf"}, {"offset", 0}, {"dim", 4}, {"weight", 1.0}},
        {{"name", "content"}, {"offset", 4}, {"dim", 3}, {"weight", 0.2}},
        {{"name", "pop"}, {"offset", 7}, {"dim", 1}, {"weight", 0.4}}}},
      {"counts",
       {{"items", 10}, {"users", 5}, {"interactions", 20}, {"cold_items", 2}, {"dim", 8}}},
      {"index", {{"spec", "Flat"}, {"metric", "inner_product"}}},
      {"als",
       {{"factors", 4},
        {"regularization", 0.1},
        {"alpha", 10},
        {"iterations", 5},
        {"cg_steps", 3},
        {"seed", 42}}},
      {"cold_start", {{"cf_row_norm", 0.5}}},
      {"content_encoder", json::object()},
      {"similar_weights", {{"cf", 1.0}, {"content", 0.5}}},
  };
}

std::string Error(const json& m) {
  auto r = BundleManifest::FromJson(m, "B/manifest.json");
  EXPECT_FALSE(r.ok()) << m.dump();
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  return r.status().message();
}

TEST(BundleSchemaTest, ReadsAValidManifest) {
  auto m = BundleManifest::FromJson(MinimalManifest(), "B/manifest.json");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->blocks.size(), 3u);
  EXPECT_EQ(m->blocks[1].name, "content");
  EXPECT_EQ(m->blocks[1].offset, 4u);
  EXPECT_EQ(m->total_dim(), 8);
  EXPECT_FLOAT_EQ(m->blocks[2].weight, 0.4f);
  ASSERT_TRUE(m->als.has_value());
  EXPECT_EQ(m->als->factors, 4);
  EXPECT_EQ(m->als->seed, 42u);
  EXPECT_FLOAT_EQ(m->cold_cf_row_norm, 0.5f);
  EXPECT_FLOAT_EQ(m->similar_weights.at("content"), 0.5f);
  EXPECT_EQ(m->index.ef_search, 128);  // no "search" section: the default operating point
}

// Each mutation of a valid manifest and the words its error must contain.
struct Case {
  const char* what;
  std::function<void(json&)> mutate;
  const char* needle;
};

TEST(BundleSchemaTest, RefusesEachBadValueNamingTheKey) {
  const std::vector<Case> cases = {
      {"blocks not an array", [](json& m) { m["blocks"] = 5; }, "'blocks': expected a non-empty"},
      {"no blocks", [](json& m) { m["blocks"] = json::array(); }, "'blocks': expected a non-empty"},
      {"missing blocks", [](json& m) { m.erase("blocks"); }, "missing key 'blocks'"},
      {"missing als", [](json& m) { m.erase("als"); }, "missing key 'als'"},
      {"negative dim", [](json& m) { m["blocks"][1]["dim"] = -3; }, "'blocks[1].dim'"},
      {"huge dim", [](json& m) { m["blocks"][1]["dim"] = 1000000000; }, "'blocks[1].dim'"},
      {"prior of dim 11", [](json& m) { m["blocks"][2]["dim"] = 11; }, "'blocks[2].dim'"},
      {"gap", [](json& m) { m["blocks"][1]["offset"] = 5; }, "'blocks[1].offset'"},
      {"huge weight", [](json& m) { m["blocks"][0]["weight"] = 1e300; }, "'blocks[0].weight'"},
      {"negative weight", [](json& m) { m["blocks"][0]["weight"] = -1; }, "'blocks[0].weight'"},
      {"weight as text", [](json& m) { m["blocks"][0]["weight"] = "1"; }, "'blocks[0].weight'"},
      {"unknown block", [](json& m) { m["blocks"][1]["name"] = "colour"; }, "'blocks[1].name'"},
      {"repeated block", [](json& m) { m["blocks"][1]["name"] = "cf"; }, "appears twice"},
      {"dim disagrees", [](json& m) { m["counts"]["dim"] = 9; }, "'counts.dim'"},
      {"no items", [](json& m) { m["counts"]["items"] = 0; }, "'counts.items'"},
      {"items as float", [](json& m) { m["counts"]["items"] = 10.5; }, "'counts.items'"},
      {"cold > items", [](json& m) { m["counts"]["cold_items"] = 11; }, "'counts.cold_items'"},
      {"factors != cf dim", [](json& m) { m["als"]["factors"] = 5; }, "'als.factors'"},
      {"negative alpha", [](json& m) { m["als"]["alpha"] = -1; }, "'als.alpha'"},
      {"missing catalog", [](json& m) { m.erase("catalog"); }, "missing key 'catalog'"},
      {"catalog not object", [](json& m) { m["catalog"] = "x"; }, "'catalog': expected an object"},
      {"ef_search text",
       [](json& m) {
         m["index"]["search"] = {{"ef_search", "x"}, {"nprobe", 1}};
       },
       "'search.ef_search'"},
      {"metric", [](json& m) { m["index"]["metric"] = "l2"; }, "'index.metric'"},
      {"cold norm", [](json& m) { m["cold_start"]["cf_row_norm"] = 2; },
       "'cold_start.cf_row_norm'"},
      {"similar weight block", [](json& m) { m["similar_weights"]["visual"] = 1; },
       "'similar_weights.visual'"},
      {"not an object", [](json& m) { m = json::array(); }, "expected a JSON object"},
  };
  for (const Case& c : cases) {
    json m = MinimalManifest();
    c.mutate(m);
    const std::string msg = Error(m);
    EXPECT_NE(msg.find("B/manifest.json"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.needle), std::string::npos) << c.what << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.what;
  }
}

TEST(BundleSchemaTest, ErrorsNeverEchoALongValue) {
  json m = MinimalManifest();
  m["blocks"][0]["weight"] = std::string(10000, 'x');
  EXPECT_LT(Error(m).size(), 300u);
}

// ---- Against a real bundle, through every command that opens one. ----

namespace fs = std::filesystem;

class TamperedBundle : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("schema");
    bundle_ = dir_ / "copy";
    fs::copy(dir_ / "bundle", bundle_, fs::copy_options::recursive);
    manifest_ = json::parse(Slurp(bundle_ / "manifest.json"));
    const std::string ids = Slurp(bundle_ / "item_ids.txt");
    item_ = ids.substr(0, ids.find('\n'));
    const std::string users = Slurp(bundle_ / "user_ids.txt");
    user_ = users.substr(0, users.find('\n'));
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const json& m) { std::ofstream(bundle_ / "manifest.json") << m.dump(2); }

  // Runs `args` and expects exit 1 with `needle` in its one-line error.
  void ExpectRefused(const std::string& args, const std::string& needle) {
    const int rc = RunVitrine(args, dir_);
    const std::string err = Slurp(dir_ / "cmd.err");
    EXPECT_EQ(rc, 1) << args << "\n" << err;
    EXPECT_NE(err.find(needle), std::string::npos) << args << "\n" << err;
  }
  void ExpectEveryCommandRefuses(const std::string& needle) {
    const std::string b = " --bundle '" + bundle_.string() + "'";
    ExpectRefused("inspect" + b, needle);
    ExpectRefused("inspect --load" + b, needle);
    ExpectRefused("similar --item " + item_ + b, needle);
    ExpectRefused("recommend --user " + user_ + b, needle);
    // A server that loaded the bundle would serve until `timeout` ends it (124).
    const std::string cmd = "timeout 60 '" + std::string(VITRINE_BINARY) + "' serve --port 0" + b +
                            " >/dev/null 2>'" + (dir_ / "serve.err").string() + "'";
    const int st = std::system(cmd.c_str());
    EXPECT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 1) << Slurp(dir_ / "serve.err");
    EXPECT_NE(Slurp(dir_ / "serve.err").find(needle), std::string::npos)
        << Slurp(dir_ / "serve.err");
  }

  fs::path dir_, bundle_;
  json manifest_;
  std::string item_, user_;
};

TEST_F(TamperedBundle, TheUntouchedCopyOpens) {
  const std::string b = " --bundle '" + bundle_.string() + "'";
  EXPECT_EQ(RunVitrine("inspect" + b, dir_), 0) << Slurp(dir_ / "cmd.err");
  EXPECT_EQ(RunVitrine("similar --item " + item_ + b, dir_), 0) << Slurp(dir_ / "cmd.err");
}

TEST_F(TamperedBundle, InspectPrintsAndVerifies) {
  const std::string b = " --bundle '" + bundle_.string() + "'";
  ASSERT_EQ(RunVitrine("inspect" + b, dir_), 0) << Slurp(dir_ / "cmd.err");
  const std::string out = Slurp(dir_ / "cmd.out");
  EXPECT_NE(out.find("vectors.npy"), std::string::npos) << out;
  EXPECT_NE(out.find("content"), std::string::npos);
  EXPECT_NE(out.find("OK"), std::string::npos);
  ASSERT_EQ(RunVitrine("inspect --format json" + b, dir_), 0) << Slurp(dir_ / "cmd.err");
  const json j = json::parse(Slurp(dir_ / "cmd.out"));
  EXPECT_EQ(j["counts"]["items"], 300);
  EXPECT_EQ(j["files"].size(), manifest_["files"].size());
  EXPECT_EQ(RunVitrine("inspect --format xml" + b, dir_), 2);
  EXPECT_EQ(RunVitrine("inspect", dir_), 2);
  EXPECT_EQ(RunVitrine("inspect --help", dir_), 0);
  EXPECT_NE(Slurp(dir_ / "cmd.out").find("Example"), std::string::npos);

  // Flipped bits in an array: the checksum names the file, on one line.
  fs::remove(bundle_ / "vectors.npy");  // a copy, not a link into the cached bundle
  fs::copy_file(dir_ / "bundle" / "vectors.npy", bundle_ / "vectors.npy");
  std::string bytes = Slurp(bundle_ / "vectors.npy");
  bytes[bytes.size() / 2] ^= 0x40;
  std::ofstream(bundle_ / "vectors.npy", std::ios::binary) << bytes;
  ExpectRefused("inspect" + b, (bundle_ / "vectors.npy").string() + ": checksum mismatch");
  const std::string err = Slurp(dir_ / "cmd.err");
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST_F(TamperedBundle, BlocksNotAnArray) {
  manifest_["blocks"] = 5;
  Write(manifest_);
  ExpectEveryCommandRefuses("'blocks'");
}

TEST_F(TamperedBundle, MissingAlsSection) {
  manifest_.erase("als");
  Write(manifest_);
  ExpectEveryCommandRefuses("missing key 'als'");
}

TEST_F(TamperedBundle, NegativeDimension) {
  manifest_["blocks"][1]["dim"] = -1;
  Write(manifest_);
  ExpectEveryCommandRefuses("'blocks[1].dim'");
}

TEST_F(TamperedBundle, LastBlockWiderThanTheVectors) {
  // Consistent within the manifest (offsets, counts.dim), wrong against
  // vectors.npy: caught by the cross-check, not the types.
  json& blocks = manifest_["blocks"];
  const size_t content = 1;
  ASSERT_EQ(blocks[content]["name"], "content");
  blocks[content]["dim"] = blocks[content]["dim"].get<int>() + 10;
  for (size_t i = content + 1; i < blocks.size(); ++i) {
    blocks[i]["offset"] = blocks[i]["offset"].get<int>() + 10;
  }
  manifest_["counts"]["dim"] = manifest_["counts"]["dim"].get<int>() + 10;
  Write(manifest_);
  ExpectEveryCommandRefuses("vectors.npy: shape");
}

TEST_F(TamperedBundle, UnknownRankerScorer) {
  ASSERT_TRUE(manifest_.contains("ranker")) << "the test bundle should have a ranker";
  manifest_["ranker"]["scorer"] = 5;
  Write(manifest_);
  ExpectEveryCommandRefuses("'ranker.scorer'");
}

// Found by manifest_fuzzer: values read past the schema once threw from
// nlohmann::json and aborted the process.
TEST_F(TamperedBundle, RecencyHalfLifeAsText) {
  manifest_["recency"] = {{"half_life_days", "x"}};
  Write(manifest_);
  ExpectEveryCommandRefuses("'recency.half_life_days'");
}

TEST_F(TamperedBundle, VisualSourceAsNumber) {
  if (!manifest_.contains("visual_encoder")) GTEST_SKIP() << "the test bundle has no visual block";
  manifest_["visual_encoder"]["source"] = 5;
  Write(manifest_);
  auto bundle = Bundle::Open(bundle_, VerifyMode::kSizesOnly);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  auto manifest = BundleManifest::Read(*bundle);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  auto encoder = ItemEncoder::Load(*bundle, *manifest);  // what `items add` loads
  ASSERT_FALSE(encoder.ok());
  EXPECT_NE(encoder.status().message().find("'visual_encoder.source'"), std::string::npos)
      << encoder.status().ToString();
}

// Found by manifest_fuzzer: a float where the visual options hold an integer
// reached nlohmann's get<int>() (undefined behaviour); a huge canonical size
// would ask for exabytes when an image is added.
TEST_F(TamperedBundle, VisualOptionsOutOfRange) {
  // The test bundle is built from images (serve_test_util.h): it has one.
  ASSERT_TRUE(manifest_.contains("visual_encoder") &&
              manifest_["visual_encoder"].contains("options"))
      << "the test bundle has no fitted visual encoder";
  const json good = manifest_["visual_encoder"]["options"];
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"canonical_size", 1e300}}, "'canonical_size': expected an integer"},
      {{{"canonical_size", 1 << 30}}, "canonical_size 1073741824 is outside [2, 1024]"},
      {{{"hog_grids", {3, 2.5}}}, "'hog_grids': expected an integer"},
      {{{"hog_grids", json::array({1, 2, 3, 4, 5, 6, 7, 8, 9})}}, "9 HOG grids"},
      {{{"hue_bins", -1}}, "hue_bins -1 is outside [0, 360]"},
      {{{"colour_weight", -1.0}}, "colour_weight -1 is outside"},
  };
  for (const auto& [patch, message] : cases) {
    manifest_["visual_encoder"]["options"] = good;
    manifest_["visual_encoder"]["options"].update(patch);
    Write(manifest_);
    auto bundle = Bundle::Open(bundle_, VerifyMode::kSizesOnly);
    ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
    auto manifest = BundleManifest::Read(*bundle);
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    auto encoder = ItemEncoder::Load(*bundle, *manifest);  // what `items add` loads
    ASSERT_FALSE(encoder.ok()) << patch.dump();
    EXPECT_NE(encoder.status().message().find(message), std::string::npos)
        << encoder.status().ToString();
  }
}

TEST_F(TamperedBundle, InspectShowsAnyCreatedAtValue) {
  manifest_["created_at"] = 5;
  manifest_["updated_at"] = json::array({1});
  Write(manifest_);
  const std::string b = " --bundle '" + bundle_.string() + "'";
  ASSERT_EQ(RunVitrine("inspect" + b, dir_), 0) << Slurp(dir_ / "cmd.err");
  EXPECT_NE(Slurp(dir_ / "cmd.out").find("updated    [1]"), std::string::npos)
      << Slurp(dir_ / "cmd.out");
}

TEST_F(TamperedBundle, HugeWeightAndWrongItemCount) {
  manifest_["blocks"][0]["weight"] = 1e300;
  Write(manifest_);
  ExpectRefused("inspect --bundle '" + bundle_.string() + "'", "'blocks[0].weight'");
  manifest_["blocks"][0]["weight"] = 1;
  manifest_["counts"]["items"] = manifest_["counts"]["items"].get<int>() + 1;
  Write(manifest_);
  ExpectRefused("inspect --bundle '" + bundle_.string() + "'", "counts.items");
}

}  // namespace
}  // namespace vitrine
