// Discretion through the front ends: a bundle built by the `vitrine` binary
// with --sensitive, then `inspect`, `recommend --context shared=true`,
// `audience`, and the HTTP server's /recommend and /audience, each against
// the engine's own answer (engine/privacy.h has the rules).
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "engine/engine.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::RunVitrine;
using testing::TestServer;

class DiscretionE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(testing::CachedTestBundle(
        "privacy_e2e", "privacy_test_bundle", "",
        "--ranker off --sensitive 'category IN (\"dress\", \"bag\")'", ""));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    auto e = Engine::Open(*dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
    ASSERT_GT(engine_->sensitive_items().cardinality(), 10u);
  }
  std::string Bundle() const { return " --bundle '" + (*dir_ / "bundle").string() + "'"; }
  // The user whose private for-you list holds the most sensitive items.
  std::string UserWhoSeesSensitiveItems() const {
    std::string best;
    size_t most = 0;
    for (int32_t u = 0; u < engine_->users().size(); ++u) {
      RecommendRequest r;
      r.user = engine_->users().id(u);
      r.query.k = 10;
      auto got = engine_->Recommend(r);
      if (!got.ok()) {
        ADD_FAILURE() << got.status().ToString();
        return "";
      }
      size_t n = 0;
      for (const Hit& h : got->hits) n += engine_->is_sensitive(h.item);
      if (n > most) most = n, best = *r.user;
    }
    return best;
  }

  static fs::path* dir_;
  std::unique_ptr<Engine> engine_;
};
fs::path* DiscretionE2E::dir_ = nullptr;

TEST_F(DiscretionE2E, CliInspectRecommendAndAudience) {
  ASSERT_EQ(RunVitrine("inspect" + Bundle(), *dir_), 0) << Slurp(*dir_ / "cmd.err");
  EXPECT_NE(
      Slurp(*dir_ / "cmd.out").find("sensitive = \"category IN (\\\"dress\\\", \\\"bag\\\")\""),
      std::string::npos)
      << Slurp(*dir_ / "cmd.out");

  const std::string user = UserWhoSeesSensitiveItems();
  ASSERT_FALSE(user.empty()) << "no user is recommended a sensitive item";
  for (const bool shared : {false, true}) {
    ASSERT_EQ(RunVitrine("recommend" + Bundle() + " --user " + user + " -k 10 --format json" +
                             (shared ? " --context shared=true" : ""),
                         *dir_),
              0)
        << Slurp(*dir_ / "cmd.err");
    const json out = json::parse(Slurp(*dir_ / "cmd.out"));
    RecommendRequest r;
    r.user = user;
    r.query.k = 10;
    if (shared) r.query.context.context["shared"] = "true";
    auto want = engine_->Recommend(r);
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(out.size(), want->hits.size()) << out.dump();
    size_t sensitive = 0;
    for (size_t i = 0; i < want->hits.size(); ++i) {
      EXPECT_EQ(out[i]["item_id"], engine_->catalog().ids.id(want->hits[i].item));
      sensitive += engine_->is_sensitive(want->hits[i].item);
    }
    if (shared) {
      EXPECT_EQ(sensitive, 0u);
    } else {
      EXPECT_GT(sensitive, 0u);
    }
  }

  const std::string dress =
      engine_->catalog().ids.id(static_cast<int32_t>(engine_->sensitive_items().minimum()));
  EXPECT_EQ(RunVitrine("audience" + Bundle() + " --item " + dress + " -k 5", *dir_), 1);
  EXPECT_NE(Slurp(*dir_ / "cmd.err").find("is sensitive"), std::string::npos)
      << Slurp(*dir_ / "cmd.err");
}

TEST_F(DiscretionE2E, HttpAnswersAreTheEngines) {
  ServerOptions o;
  o.bundle = *dir_ / "bundle";
  o.threads = 2;
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(30, 0);
  const std::string user = UserWhoSeesSensitiveItems();
  for (const json& context : {json::object(), json{{"shared", true}}}) {
    auto res = c.Post("/recommend", json{{"user", user}, {"k", 10}, {"context", context}}.dump(),
                      "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json body = json::parse(res->body);
    RecommendRequest r;
    r.user = user;
    r.query.k = 10;
    if (!context.empty()) r.query.context.context["shared"] = "true";
    auto want = engine_->Recommend(r);
    ASSERT_TRUE(want.ok());
    ASSERT_EQ(body["results"].size(), want->hits.size());
    for (size_t i = 0; i < want->hits.size(); ++i) {
      EXPECT_EQ(body["results"][i]["item"], engine_->catalog().ids.id(want->hits[i].item));
      EXPECT_EQ(body["results"][i]["reason"], want->hits[i].reason);
    }
  }
  const std::string dress =
      engine_->catalog().ids.id(static_cast<int32_t>(engine_->sensitive_items().minimum()));
  auto res = c.Post("/audience", json{{"item", dress}, {"k", 5}}.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_NE(res->body.find("is sensitive"), std::string::npos) << res->body;
}

// A bundle trained with differential privacy, over HTTP: a refusal (an
// answer learned from other customers' raw histories) is 422, the request
// being valid and this bundle unable to answer it; ordinary answers are 200.
TEST(PrivateBundleE2E, RefusalIsA422) {
  const fs::path dir = testing::CachedTestBundle("private_e2e", "private_test_bundle", "",
                                                 "--dp-epsilon 2 --dp-seed 3", "");
  auto e = Engine::Open(dir / "bundle");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_TRUE((*e)->manifest().private_training());
  ServerOptions o;
  o.bundle = dir / "bundle";
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", server.port());
  const std::string user = (*e)->users().id(0);
  auto refused =
      client.Post("/recommend", json{{"user", user}, {"k", 3}, {"intent", "next-step"}}.dump(),
                  "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 422) << refused->body;
  EXPECT_NE(refused->body.find("differential privacy"), std::string::npos) << refused->body;
  auto answered =
      client.Post("/recommend", json{{"user", user}, {"k", 3}}.dump(), "application/json");
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->status, 200) << answered->body;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
