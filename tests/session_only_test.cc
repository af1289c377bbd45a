// Session-only serving (docs/privacy.md): HMAC-SHA256 against the RFC 4231
// test vectors, pseudonyms and their key rules, in-memory sessions that
// expire (on a test clock), and a server whose event log, session store and
// forget hold pseudonyms only.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/pseudonym.h"
#include "engine/engine.h"
#include "serve/session_store.h"
#include "tests/scratch_dir.h"
#include "tests/serve_test_util.h"

// After the engine headers (see forget_test.cc).
#include <httplib.h>

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

TEST(HmacSha256, MatchesRfc4231) {
  // Test cases 1, 2 and 6 of RFC 4231 (section 4).
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HmacSha256Hex(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Pseudonymizer, IsTheKeyedHashAndRefusesShortKeys) {
  const std::string key = "0123456789abcdefghijklmnopqrstuv";
  auto p = Pseudonymizer::FromKey(key);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Of("U0000012"), "p" + HmacSha256Hex(key, "U0000012").substr(0, 32));
  EXPECT_NE(p->Of("U0000012"), p->Of("U0000013"));
  auto other = Pseudonymizer::FromKey("vutsrqponmlkjihgfedcba9876543210");  // a rotated key
  EXPECT_NE(other->Of("U0000012"), p->Of("U0000012"));
  auto short_key = Pseudonymizer::FromKey(key.substr(0, 31));
  ASSERT_FALSE(short_key.ok());
  EXPECT_NE(short_key.status().message().find("at least 32"), std::string::npos);
  EXPECT_FALSE(Pseudonymizer::FromKey(std::string(40, ' ')).ok());  // one byte repeated
  const fs::path file = ScratchDir() / "pseudonym.key";
  WriteText(file, key + " \r\n\n");  // trailing white space is not part of the key
  auto from_file = Pseudonymizer::FromKeyFile(file);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(from_file->Of("x"), p->Of("x"));
}

TEST(SessionStore, ExpiresSessionsAfterTheirTimeToLive) {
  int64_t now = 1000;
  SessionStore s(10, 5, std::chrono::seconds(60), [&] { return now; });
  s.Add("a", {"I1", "view", 1, 1});
  now += 30;
  s.Add("b", {"I2", "view", 1, 2});
  now += 29;  // a is 59 s old
  EXPECT_EQ(s.Recent("a").size(), 1u);
  now += 1;  // 60 s: gone
  EXPECT_TRUE(s.Recent("a").empty());
  EXPECT_EQ(s.Recent("b").size(), 1u);
  EXPECT_EQ(s.num_users(), 2u);  // still in memory until the next Add
  s.Add("c", {"I3", "view", 1, 3});
  EXPECT_EQ(s.num_users(), 2u);      // a dropped
  now += 31;                         // b is 61 s old
  s.Add("a", {"I4", "view", 1, 4});  // a starts a new session
  EXPECT_EQ(s.num_users(), 2u);      // b dropped, a new
  ASSERT_EQ(s.Recent("a").size(), 1u);
  EXPECT_EQ(s.Recent("a")[0].item, "I4");
  SessionStore forever(10, 5);  // no ttl: the default store
  forever.Add("a", {"I1", "view", 1, 1});
  EXPECT_EQ(forever.Recent("a").size(), 1u);
}

TEST(SessionOnlyServer, StoresPseudonymsOnly) {
  const fs::path dir = testing::MakeTestBundle("session_only");
  const std::string key = "a session-only test key of forty bytes!!";
  WriteText(dir / "key", key);
  ServerOptions o;
  o.bundle = dir / "bundle";
  o.event_log = dir / "events.csv";
  o.session_only = true;
  o.pseudonym_key_file = dir / "key";
  o.session_ttl = std::chrono::seconds(1800);
  o.threads = 2;
  testing::TestServer server(o);
  ASSERT_TRUE(server.ok());
  const Engine& engine = *server->engine();
  const std::string user = "shopper-42";
  const std::string pseudonym = Pseudonymizer::FromKey(key)->Of(user);
  const std::string item = engine.catalog().ids.id(7);

  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(30, 0);
  auto ev = c.Post("/events", json{{"user", user}, {"item", item}, {"event", "purchase"}}.dump(),
                   "application/json");
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->status, 200) << ev->body;
  const std::string log = Slurp(o.event_log);
  EXPECT_EQ(log.find(user), std::string::npos) << log;
  EXPECT_NE(log.find(pseudonym + "," + item + ",purchase"), std::string::npos) << log;
  EXPECT_TRUE(server->sessions().Recent(user).empty());
  EXPECT_EQ(server->sessions().Recent(pseudonym).size(), 1u);

  // The session answers the shopper by the id they sent.
  auto rec = c.Post("/recommend", json{{"user", user}, {"k", 5}}.dump(), "application/json");
  ASSERT_TRUE(rec);
  ASSERT_EQ(rec->status, 200) << rec->body;
  const json body = json::parse(rec->body);
  EXPECT_EQ(body["user"], user);
  EXPECT_NE(body["source"].get<std::string>().find("events"), std::string::npos) << rec->body;

  // Forgetting by the id the shopper knows removes the pseudonym's lines.
  auto f = c.Post("/forget", json{{"user", user}}.dump(), "application/json");
  ASSERT_TRUE(f);
  ASSERT_EQ(f->status, 200) << f->body;
  EXPECT_EQ(json::parse(f->body)["event_log_lines_removed"], 1);
  EXPECT_EQ(Slurp(o.event_log).find(pseudonym), std::string::npos);
  EXPECT_TRUE(server->sessions().Recent(pseudonym).empty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
