// A/B variants in the server (`serve --experiment`): a user's answer names
// the variant the hash gives them, and is the answer to the same request
// with the variant's fields written out; fields the request sets win; the
// access log carries the variant.
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "serve/experiment.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using testing::MakeTestBundle;
using testing::TestServer;
namespace fs = std::filesystem;

constexpr const char* kExperiment = R"(name = "diverse-hybrid"
[[variant]]
name = "control"
share = 0.5
[[variant]]
name = "diverse"
share = 0.5
ranker = false
diversity = "mmr:0.3"
weights = { cf = 1.0, content = 2.0 }
rules = "EXCLUDE WHERE in_stock = false"
)";

// The diverse variant's fields, as a request would write them.
json DiverseFields() {
  return {{"ranker", false},
          {"diversity", "mmr:0.3"},
          {"weights", {{"cf", 1.0}, {"content", 2.0}}},
          {"rules", "EXCLUDE WHERE in_stock = false"}};
}

std::vector<std::string> Items(const json& answer) {
  std::vector<std::string> ids;
  for (const json& h : answer["results"]) ids.push_back(h["item"].get<std::string>());
  return ids;
}

TEST(ServeExperiment, TheAnswerNamesTheVariantAndAppliesItsFields) {
  const fs::path dir = MakeTestBundle("serve_experiment");
  std::ofstream(dir / "experiment.toml") << kExperiment;
  auto experiment = Experiment::Load(dir / "experiment.toml");
  ASSERT_TRUE(experiment.ok()) << experiment.status().ToString();
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = "";
  o.threads = 2;
  o.access_log = dir / "access.log";
  o.experiment = dir / "experiment.toml";
  {
    TestServer server(o);
    ASSERT_TRUE(server.ok());
    const Engine& engine = *server->engine();
    httplib::Client c("127.0.0.1", server.port());
    auto post = [&](const json& body) {
      auto r = c.Post("/recommend", body.dump(), "application/json");
      EXPECT_TRUE(r);
      EXPECT_EQ(r->status, 200) << r->body;
      return json::parse(r->body);
    };
    // The first users of each variant, by the experiment's own hash.
    std::string control_user, diverse_user;
    for (int32_t u = 0; u < engine.users().size(); ++u) {
      const std::string id = engine.users().id(u);
      const std::string& v = experiment->Assign(id).name;
      if (v == "control" && control_user.empty()) control_user = id;
      if (v == "diverse" && diverse_user.empty()) diverse_user = id;
    }
    ASSERT_FALSE(control_user.empty());
    ASSERT_FALSE(diverse_user.empty());

    const json control = post({{"user", control_user}, {"k", 8}});
    EXPECT_EQ(control["variant"], "control");
    json plain = post({{"user", control_user}, {"k", 8}, {"ranker", true}});
    EXPECT_EQ(Items(control), Items(plain));

    // The diverse user's answer is the one to their request with the
    // variant's fields written out.
    const json diverse = post({{"user", diverse_user}, {"k", 8}});
    EXPECT_EQ(diverse["variant"], "diverse");
    json explicit_fields = DiverseFields();
    explicit_fields["user"] = diverse_user;
    explicit_fields["k"] = 8;
    EXPECT_EQ(Items(diverse), Items(post(explicit_fields)));
    // ... and the fields matter: without them the answer is another.
    EXPECT_NE(Items(diverse), Items(post({{"user", diverse_user},
                                          {"k", 8},
                                          {"ranker", true},
                                          {"diversity", "none"},
                                          {"weights", {{"cf", 1.0}, {"content", 1.0}}},
                                          {"rules", ""}})));
    // Its rule holds: no out-of-stock item.
    const Catalog& cat = engine.catalog();
    const Column* stock = cat.column("in_stock");
    ASSERT_NE(stock, nullptr);
    for (const std::string& id : Items(diverse)) {
      EXPECT_NE(cat.ValueString(*stock, *cat.ids.Find(id)), "false") << id;
    }
    // A field the request sets wins over the variant's.
    json overridden = DiverseFields();
    overridden["diversity"] = "none";
    overridden["user"] = diverse_user;
    overridden["k"] = 8;
    EXPECT_EQ(Items(post({{"user", diverse_user}, {"k", 8}, {"diversity", "none"}})),
              Items(post(overridden)));
    // Without a user there is no assignment.
    const json anonymous = post({{"history", json::array({engine.catalog().ids.id(1)})}});
    EXPECT_FALSE(anonymous.contains("variant"));
  }  // the server stops: the access log is flushed
  std::ifstream log(dir / "access.log");
  std::string line;
  int control_lines = 0, diverse_lines = 0, without = 0;
  while (std::getline(log, line)) {
    const json j = json::parse(line);
    if (j["endpoint"] != "recommend") continue;
    if (!j.contains("variant")) {
      ++without;
    } else {
      (j["variant"] == "control" ? control_lines : diverse_lines) += 1;
    }
  }
  EXPECT_EQ(control_lines, 2);
  EXPECT_EQ(diverse_lines, 5);
  EXPECT_EQ(without, 1);
  fs::remove_all(dir);
}

TEST(ServeExperiment, ABadVariantStopsTheServerAtStart) {
  const fs::path dir = MakeTestBundle("serve_experiment_bad");
  std::ofstream(dir / "experiment.toml")
      << "name = \"x\"\n[[variant]]\nname = \"a\"\nshare = 1\ndiversity = \"sideways\"\n";
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = "";
  o.experiment = dir / "experiment.toml";
  auto s = Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("variant 'a'"), std::string::npos) << s.status().ToString();
  o.experiment = dir / "missing.toml";
  s = Server::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("missing.toml"), std::string::npos) << s.status().ToString();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
