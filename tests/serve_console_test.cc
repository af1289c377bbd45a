// The console's server side (docs/console.md): curation kept durably and
// applied to the client's answers (rejected and never items gone, pins
// held, approvals folded in as evidence), revocable, replayed on restart,
// forgotten with the client; decisions and client views need the admin
// token; thumbnails decode to the build's images exactly; complete the look
// over HTTP equals the engine's answer.
#include <httplib.h>
#include <stb_image.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/array_io.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

using json = nlohmann::json;
using testing::MakeTestBundle;
using testing::TestServer;
namespace fs = std::filesystem;

constexpr char kToken[] = "console-test-token-0123456789";
const httplib::Headers kAdmin = {{"Authorization", std::string("Bearer ") + kToken}};

std::vector<std::string> Items(const json& answer) {
  std::vector<std::string> ids;
  for (const json& h : answer["results"]) ids.push_back(h["item"].get<std::string>());
  return ids;
}

TEST(CurationStore, ReplaysItsLogAndTheLastDecisionOnAnItemHolds) {
  const fs::path dir = fs::temp_directory_path() / ("vitrine_curation_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    auto s = CurationStore::Open(dir / "curation.csv");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Record({{1, "U1", "I1", "approve"},
                              {2, "U1", "I2", "reject"},
                              {3, "U1", "I3", "pin", 2, "anna", "for the gala, \"black tie\""},
                              {4, "U1", "I2", "pin", 1},  // a pin replaces the rejection
                              {5, "U1", "I1", "revoke"},
                              {6, "U2", "I4", "never"},
                              {7, "U1", "I3", "shortlist", 1, "anna", "note"}})
                    .ok());
    // A record the log could not replay is refused, and nothing is written.
    EXPECT_EQ((*s)->Record({{8, "U1", "I5", "approve"}, {8, "U1", "I5", "pin", 0}}).code(),
              Status::Code::kInvalidArgument);
  }
  auto s = CurationStore::Open(dir / "curation.csv");  // replayed
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const ClientCuration u1 = (*s)->Of("U1");
  EXPECT_TRUE(u1.approved.empty());
  EXPECT_TRUE(u1.rejected.empty());
  EXPECT_EQ(u1.pins, (std::map<std::string, int64_t>{{"I2", 1}, {"I3", 2}}));
  EXPECT_EQ((*s)->Of("U2").never, std::set<std::string>{"I4"});
  EXPECT_EQ((*s)->History("U1").size(), 6u);
  EXPECT_EQ((*s)->History("U1")[2].note, "for the gala, \"black tie\"");
  auto removed = (*s)->RemoveUsers({"U1"});
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 6);
  EXPECT_TRUE((*s)->Of("U1").empty());
  EXPECT_EQ(Slurp(dir / "curation.csv"), std::string(kCurationLogHeader) + "\n6,U2,I4,never,,,\n");
  // The checks the server makes before logging.
  EXPECT_FALSE(CheckCurationRecord({1, "U", "I", "like"}, 100).ok());
  EXPECT_FALSE(CheckCurationRecord({1, "U", "I", "pin", 0}, 100).ok());
  EXPECT_FALSE(CheckCurationRecord({1, "U", "I", "pin", 101}, 100).ok());
  EXPECT_FALSE(CheckCurationRecord({1, "U", "I", "reject", 3}, 100).ok());
  EXPECT_TRUE(CheckCurationRecord({1, "U", "I", "pin", 100}, 100).ok());
  // A bad line is an error naming it.
  std::ofstream(dir / "bad.csv") << kCurationLogHeader << "\n1,U,I,like,,,\n";
  auto bad = CurationStore::Open(dir / "bad.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.csv:2:"), std::string::npos) << bad.status().message();
  fs::remove_all(dir);
}

TEST(ServeConsole, DecisionsShapeTheClientsAnswersAndNeedTheToken) {
  const fs::path dir = MakeTestBundle("serve_console");
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = "";
  o.curation_log = dir / "curation.csv";
  o.admin_token = kToken;
  o.threads = 2;
  std::string user;
  std::vector<std::string> before;
  std::string rejected, never, pinned, approved;
  {
    TestServer server(o);
    ASSERT_TRUE(server.ok());
    const Engine& engine = *server->engine();
    user = engine.users().id(3);
    httplib::Client c("127.0.0.1", server.port());
    auto recommend = [&](int k) {
      auto r = c.Post("/recommend", json{{"user", user}, {"k", k}, {"explain", true}}.dump(),
                      "application/json");
      EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
      return json::parse(r->body);
    };
    auto decide = [&](const json& body, const httplib::Headers& h) {
      auto r = c.Post("/curation", h, body.dump(), "application/json");
      EXPECT_TRUE(r);
      return r ? r->status : 0;
    };
    before = Items(recommend(10));
    ASSERT_EQ(before.size(), 10u);
    rejected = before[0];
    never = before[1];
    pinned = before[7];
    // An item far down the list (not in the top 10) to approve.
    const std::vector<std::string> longer = Items(recommend(40));
    approved = longer.back();

    // Without the token: refused, and nothing changes.
    EXPECT_EQ(decide({{"user", user}, {"item", rejected}, {"action", "reject"}}, {}), 401);
    EXPECT_EQ(c.Get("/clients/" + user)->status, 401);
    EXPECT_EQ(Items(recommend(10)), before);
    // Bad decisions are refused naming the field.
    EXPECT_EQ(decide({{"user", user}, {"item", rejected}, {"action", "like"}}, kAdmin), 400);
    EXPECT_EQ(decide({{"user", user}, {"item", pinned}, {"action", "pin"}}, kAdmin), 400);
    EXPECT_EQ(decide({{"user", user}, {"item", "no-such-item"}, {"action", "reject"}}, kAdmin),
              404);

    ASSERT_EQ(decide({{"user", user}, {"item", rejected}, {"action", "reject"}}, kAdmin), 200);
    ASSERT_EQ(decide({{"user", user}, {"item", never}, {"action", "never"}}, kAdmin), 200);
    ASSERT_EQ(
        decide({{"user", user}, {"item", pinned}, {"action", "pin"}, {"position", 1}}, kAdmin),
        200);
    ASSERT_EQ(decide({{"user", user}, {"item", approved}, {"action", "approve"}}, kAdmin), 200);
    for (int k : {1, 5, 10, 30}) {
      const json answer = recommend(k);
      const auto items = Items(answer);
      ASSERT_FALSE(items.empty());
      EXPECT_EQ(items[0], pinned) << "k=" << k;
      EXPECT_TRUE(answer["results"][0]["pinned"].get<bool>());
      for (const std::string& gone : {rejected, never}) {
        EXPECT_EQ(std::count(items.begin(), items.end(), gone), 0) << gone << " k=" << k;
      }
      EXPECT_EQ(std::count(items.begin(), items.end(), pinned), 1);
    }
    // The approval is evidence: folded in as history, so the answer moves
    // (and the approved item, now seen, is not recommended back).
    EXPECT_EQ(std::count(before.begin(), before.end(), approved), 0);
    const auto after = Items(recommend(10));
    EXPECT_EQ(std::count(after.begin(), after.end(), approved), 0);
    // Another client is untouched.
    const std::string other = engine.users().id(4);
    auto r = c.Post("/recommend", json{{"user", other}, {"k", 10}}.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200);

    // The console's view of the client lists every decision.
    auto view = c.Get("/clients/" + user, kAdmin);
    ASSERT_TRUE(view && view->status == 200) << (view ? view->body : "");
    const json v = json::parse(view->body);
    EXPECT_EQ(v["curation"]["rejected"], json::array({rejected}));
    EXPECT_EQ(v["curation"]["never"], json::array({never}));
    EXPECT_EQ(v["curation"]["pins"][pinned], 1);
    EXPECT_EQ(v["curation"]["approved"], json::array({approved}));
    EXPECT_EQ(v["records"].size(), 4u);  // (before the pins below)
    EXPECT_FALSE(v["history"].empty());
    EXPECT_TRUE(v["history"][0].contains("title"));

    // A second pin at a taken position takes it; the first is unpinned.
    const std::string second = longer[20];
    ASSERT_EQ(
        decide({{"user", user}, {"item", second}, {"action", "pin"}, {"position", 1}}, kAdmin),
        200);
    EXPECT_EQ(Items(recommend(10))[0], second);
    ASSERT_EQ(
        decide({{"user", user}, {"item", pinned}, {"action", "pin"}, {"position", 1}}, kAdmin),
        200);
    EXPECT_EQ(Items(recommend(10))[0], pinned);
    // A user id that /forget could not erase is never stored.
    for (const char* bad : {"#U1", " U1", "U1 "}) {
      EXPECT_EQ(decide({{"user", bad}, {"item", rejected}, {"action", "reject"}}, kAdmin), 400)
          << bad;
      auto e = c.Post("/events", kAdmin, json{{"user", bad}, {"item", rejected}}.dump(),
                      "application/json");
      ASSERT_TRUE(e);
      EXPECT_EQ(e->status, 400) << bad << " " << e->body;
    }

    // Revoking gives the items back.
    ASSERT_EQ(decide({{"user", user}, {"item", rejected}, {"action", "revoke"}}, kAdmin), 200);
    ASSERT_EQ(decide({{"user", user}, {"item", pinned}, {"action", "revoke"}}, kAdmin), 200);
    const auto revoked = Items(recommend(10));
    EXPECT_NE(revoked[0], pinned);
    // A shortlist is a record, not a decision.
    ASSERT_EQ(decide({{"user", user},
                      {"action", "shortlist"},
                      {"items", {approved, pinned}},
                      {"note", "for Saturday"}},
                     kAdmin),
              200);
  }
  // A restart replays the log: the never item stays gone.
  {
    TestServer server(o);
    ASSERT_TRUE(server.ok());
    httplib::Client c("127.0.0.1", server.port());
    auto r = c.Post("/recommend", json{{"user", user}, {"k", 10}}.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 200);
    const auto items = Items(json::parse(r->body));
    EXPECT_EQ(std::count(items.begin(), items.end(), never), 0);
    // forget takes the client's decisions with it.
    auto f = c.Post("/forget", kAdmin, json{{"user", user}}.dump(), "application/json");
    ASSERT_TRUE(f && f->status == 200) << (f ? f->body : "");
    // 4 decisions, 2 more pins, 2 revocations, a shortlist of 2.
    EXPECT_EQ(json::parse(f->body)["curation_log_lines_removed"], 10);
  }
  EXPECT_EQ(Slurp(dir / "curation.csv"), std::string(kCurationLogHeader) + "\n");
  fs::remove_all(dir);
}

TEST(ServeConsole, ThumbnailsAreTheBuildsImagesAndTheConsoleIsServed) {
  const fs::path dir = MakeTestBundle("serve_console_images");
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = "";
  TestServer server(o);
  ASSERT_TRUE(server.ok());
  const Engine& engine = *server->engine();
  auto images = ReadIdx(dir / "data/images.idx.gz");
  ASSERT_TRUE(images.ok()) << images.status().ToString();
  httplib::Client c("127.0.0.1", server.port());
  for (int32_t row : {0, 17, engine.catalog().size() - 1}) {
    const std::string id = engine.catalog().ids.id(row);
    auto r = c.Get("/items/" + id + "/image");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
    int w = 0, h = 0, n = 0;
    unsigned char* px =
        stbi_load_from_memory(reinterpret_cast<const unsigned char*>(r->body.data()),
                              static_cast<int>(r->body.size()), &w, &h, &n, 1);
    ASSERT_NE(px, nullptr);
    ASSERT_EQ(static_cast<size_t>(w * h), images->data.cols);
    EXPECT_EQ(std::vector<unsigned char>(px, px + w * h),
              std::vector<unsigned char>(images->data.row(static_cast<size_t>(row)),
                                         images->data.row(static_cast<size_t>(row)) + w * h))
        << id;
    stbi_image_free(px);
  }
  EXPECT_EQ(c.Get("/items/no-such-item/image")->status, 404);
  // The page, its script and its style sheet, compiled in.
  auto page = c.Get("/console");
  ASSERT_TRUE(page && page->status == 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("<script src=\"/console/console.js\">"), std::string::npos);
  EXPECT_EQ(c.Get("/console/console.js")->status, 200);
  EXPECT_EQ(c.Get("/console/console.css")->status, 200);
  EXPECT_EQ(c.Get("/console/other.js")->status, 404);
  // Without a curation log, a decision is a clear 409.
  auto r = c.Post("/curation", json{{"user", "U1"}, {"item", "x"}, {"action", "approve"}}.dump(),
                  "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);
  // Complete the look over HTTP is the engine's answer.
  const std::string item = engine.catalog().ids.id(5);
  auto look = c.Get("/complete/" + item + "?k=3");
  ASSERT_TRUE(look && look->status == 200) << (look ? look->body : "");
  CompleteRequest req;
  req.item = item;
  req.max_categories = 3;
  auto slots = engine.CompleteTheLook(req);
  ASSERT_TRUE(slots.ok());
  const json answer = json::parse(look->body);
  ASSERT_EQ(answer["results"].size(), slots->size());
  for (size_t i = 0; i < slots->size(); ++i) {
    EXPECT_EQ(answer["results"][i]["item"], engine.catalog().ids.id((*slots)[i].hit.item));
    EXPECT_EQ(answer["results"][i]["category"], (*slots)[i].category);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
