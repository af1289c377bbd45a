// Impressions and attribution through the server: answers carry a request
// id, the impression log holds what each answer showed, events that name
// the request id and position are logged with them and joined back exactly;
// a simulated A/B run with a planted better variant is found by the report
// (engine/attribution.h, engine/ab_report.h, `vitrine report`).
#include <httplib.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "engine/ab_report.h"
#include "engine/attribution.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using testing::MakeTestBundle;
using testing::RunVitrine;
using testing::TestServer;
namespace fs = std::filesystem;

// The most common value of the catalog's category column.
std::string CommonCategory(const Engine& engine) {
  const Catalog& cat = engine.catalog();
  const Column* c = cat.column("category");
  std::map<std::string, int> counts;
  for (int32_t i = 0; i < cat.size(); ++i) ++counts[cat.ValueString(*c, i)];
  std::string best;
  for (const auto& [v, n] : counts) {
    if (best.empty() || n > counts[best]) best = v;
  }
  return best;
}

TEST(ServeImpressions, ASimulatedExperimentIsLoggedJoinedExactlyAndItsBetterVariantFound) {
  const fs::path dir = MakeTestBundle("serve_impressions");
  std::string category;
  {
    auto engine = Engine::Open(dir / "bundle");
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    category = CommonCategory(**engine);
  }
  // Planted: shoppers click the category's items 10 times as often, and the
  // "better" variant shows only those.
  std::ofstream(dir / "experiment.toml")
      << "name = \"planted\"\n[[variant]]\nname = \"control\"\nshare = 0.5\n"
         "[[variant]]\nname = \"better\"\nshare = 0.5\nrules = 'INCLUDE WHERE category = \""
      << category << "\"'\n";
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = dir / "events.csv";
  o.impression_log = dir / "impressions.csv";
  o.experiment = dir / "experiment.toml";
  o.fsync = FsyncPolicy::kNever;
  o.threads = 2;

  struct Shown {
    std::string request_id, user, variant;
    std::vector<std::string> items;
  };
  std::vector<Shown> answers;
  struct Posted {
    std::string request_id, item;
    int64_t position;
  };
  std::vector<Posted> clicks;  // in the order posted: the log's order
  std::string forgotten;
  {
    TestServer server(o);
    ASSERT_TRUE(server.ok());
    const Engine& engine = *server->engine();
    const Catalog& cat = engine.catalog();
    const Column* cats = cat.column("category");
    httplib::Client c("127.0.0.1", server.port());
    std::mt19937 rng(3);
    std::uniform_real_distribution<double> u(0, 1);
    std::set<std::string> request_ids;
    for (int32_t user = 0; user < 160; ++user) {
      const std::string id = engine.users().id(user);
      for (int rep = 0; rep < 2; ++rep) {
        auto r = c.Post("/recommend", json{{"user", id}, {"k", 8}}.dump(), "application/json");
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200) << r->body;
        const json answer = json::parse(r->body);
        Shown s{answer["request_id"], id, answer["variant"], {}};
        EXPECT_EQ(r->get_header_value("X-Request-Id"), s.request_id);
        EXPECT_TRUE(request_ids.insert(s.request_id).second) << "a request id came twice";
        for (const json& h : answer["results"]) s.items.push_back(h["item"]);
        json events = json::array();
        for (size_t p = 0; p < s.items.size(); ++p) {
          const bool liked = cat.ValueString(*cats, *cat.ids.Find(s.items[p])) == category;
          if (u(rng) >= (liked ? 0.5 : 0.05)) continue;
          const int64_t pos = static_cast<int64_t>(p) + 1;
          events.push_back({{"user", id},
                            {"item", s.items[p]},
                            {"event", "view"},
                            {"request_id", s.request_id},
                            {"position", pos}});
          clicks.push_back({s.request_id, s.items[p], pos});
          if (u(rng) < 0.3) {
            events.push_back({{"user", id},
                              {"item", s.items[p]},
                              {"event", "purchase"},
                              {"request_id", s.request_id},
                              {"position", pos}});
          }
        }
        if (!events.empty()) {
          auto e = c.Post("/events", events.dump(), "application/json");
          ASSERT_TRUE(e);
          ASSERT_EQ(e->status, 200) << e->body;
        }
        answers.push_back(std::move(s));
      }
    }
    // Two events the join must not attribute: an unknown request id, and
    // one dated a day before the answer it names.
    const Shown& first = answers.front();
    auto e = c.Post("/events",
                    json::array({{{"user", first.user},
                                  {"item", first.items[0]},
                                  {"request_id", "no-such-request"},
                                  {"position", 1}},
                                 {{"user", first.user},
                                  {"item", first.items[0]},
                                  {"request_id", first.request_id},
                                  {"position", 1},
                                  {"ts", std::time(nullptr) - 86400}}})
                        .dump(),
                    "application/json");
    ASSERT_TRUE(e);
    ASSERT_EQ(e->status, 200) << e->body;
    // A bad position and request id are refused, naming the field.
    for (const json& bad :
         {json{{"user", first.user}, {"item", first.items[0]}, {"position", 0}},
          json{{"user", first.user}, {"item", first.items[0]}, {"request_id", "a b"}}}) {
      auto r = c.Post("/events", bad.dump(), "application/json");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 400) << r->body;
      EXPECT_NE(r->body.find(bad.contains("position") ? "'position'" : "'request_id'"),
                std::string::npos)
          << r->body;
    }
    // /similar answers are logged too, with no user.
    auto sim = c.Get("/similar/" + first.items[0] + "?k=3");
    ASSERT_TRUE(sim);
    ASSERT_EQ(sim->status, 200);
    const json similar = json::parse(sim->body);
    answers.push_back({similar["request_id"], "", "", {}});
    for (const json& h : similar["results"]) answers.back().items.push_back(h["item"]);
    // Forgetting a user removes their impressions too.
    forgotten = answers[2].user;
    auto f = c.Post("/forget", json{{"user", forgotten}}.dump(), "application/json");
    ASSERT_TRUE(f);
    ASSERT_EQ(f->status, 200) << f->body;
    size_t lines = 0;
    for (const Shown& s : answers) lines += s.user == forgotten ? s.items.size() : 0;
    EXPECT_GT(lines, 0u);
    EXPECT_EQ(json::parse(f->body)["impression_log_lines_removed"], lines);
  }

  // The impression log holds every answer's items in order, the forgotten
  // user's excepted.
  auto impressions = ReadImpressions(dir / "impressions.csv");
  ASSERT_TRUE(impressions.ok()) << impressions.status().ToString();
  size_t line = 0;
  for (const Shown& s : answers) {
    if (s.user == forgotten) continue;
    for (size_t p = 0; p < s.items.size(); ++p, ++line) {
      ASSERT_LT(line, impressions->size());
      const ImpressionRecord& im = (*impressions)[line];
      EXPECT_EQ(im.request_id, s.request_id);
      EXPECT_EQ(im.user, s.user);
      EXPECT_EQ(im.item, s.items[p]);
      EXPECT_EQ(im.position, static_cast<int64_t>(p) + 1);
      EXPECT_EQ(im.variant, s.variant);
      EXPECT_EQ(im.endpoint, s.user.empty() ? "similar" : "recommend");
    }
  }
  EXPECT_EQ(line, impressions->size());

  // Every click joins back to the line that showed it.
  auto events = ReadEvents(dir / "events.csv");
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  const Attribution a = Attribute(*impressions, *events);
  size_t next_click = 0;
  for (size_t e = 0; e < events->size(); ++e) {
    const EventRecord& ev = (*events)[e];
    if (ev.request_id == "no-such-request") {
      EXPECT_EQ(a.outcome[e], AttributionOutcome::kUnknownRequest);
      continue;
    }
    if (ev.event != "view") continue;
    if (ev.timestamp < std::time(nullptr) - 3600) {
      EXPECT_EQ(a.outcome[e], AttributionOutcome::kBeforeImpression);
      continue;
    }
    while (next_click < clicks.size() && clicks[next_click].request_id != ev.request_id) {
      ++next_click;  // the forgotten user's clicks are gone from the log
    }
    ASSERT_LT(next_click, clicks.size());
    const Posted& posted = clicks[next_click++];
    ASSERT_EQ(a.outcome[e], AttributionOutcome::kAttributed) << ev.request_id;
    const ImpressionRecord& im = (*impressions)[static_cast<size_t>(a.impression[e])];
    EXPECT_EQ(im.request_id, posted.request_id);
    EXPECT_EQ(im.item, posted.item);
    EXPECT_EQ(im.position, posted.position);
  }
  EXPECT_EQ(a.position_mismatches, 0);

  // The report finds the planted better variant, by the CLI too.
  AbReportOptions ro;
  ro.bootstrap = 300;
  auto report = BuildAbReport(*impressions, *events, ro);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->variants.size(), 3u);  // control, (none) for /similar, better
  EXPECT_EQ(report->control, "control");
  const VariantSummary* better = nullptr;
  for (const auto& v : report->variants) {
    if (v.name == "better") better = &v;
  }
  ASSERT_NE(better, nullptr);
  EXPECT_GT(better->vs_control.at("ctr").low, 0);
  EXPECT_GT(better->vs_control.at("conversion").low, 0);
  ASSERT_EQ(RunVitrine("report --impressions '" + (dir / "impressions.csv").string() +
                           "' --events '" + (dir / "events.csv").string() + "' --bundle '" +
                           (dir / "bundle").string() + "' --bootstrap 200 --format csv --out '" +
                           (dir / "report.html").string() + "'",
                       dir),
            0)
      << Slurp(dir / "cmd.err");
  const std::string csv = Slurp(dir / "cmd.out");
  EXPECT_NE(csv.find("better,ctr,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("better,revenue_per_impression,"), std::string::npos) << csv;
  const std::string html = Slurp(dir / "report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("better"), std::string::npos);
  fs::remove_all(dir);
}

TEST(ServeImpressions, AnEventLogFromBeforeAttributionRefusesRequestIdsAndKeepsItsFormat) {
  const fs::path dir = MakeTestBundle("serve_impressions_old_log");
  std::ofstream(dir / "events.csv") << "user_id,item_id,event,timestamp,channel\n";
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = dir / "events.csv";
  o.fsync = FsyncPolicy::kNever;
  std::string item;
  {
    TestServer server(o);
    ASSERT_TRUE(server.ok());
    item = server->engine()->catalog().ids.id(0);
    httplib::Client c("127.0.0.1", server.port());
    auto r = c.Post("/events", json{{"user", "U1"}, {"item", item}, {"request_id", "r-1"}}.dump(),
                    "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 409) << r->body;
    EXPECT_NE(r->body.find("before attribution"), std::string::npos) << r->body;
    r = c.Post("/events", json{{"user", "U1"}, {"item", item}, {"ts", 100}}.dump(),
               "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
  EXPECT_EQ(Slurp(dir / "events.csv"),
            "user_id,item_id,event,timestamp,channel\nU1," + item + ",view,100,\n");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
