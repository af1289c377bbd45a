// Attribution (engine/attribution.h): events joined to the impression lines
// that showed their item, exactly, and every other event classed by why not;
// the readers name file:line on a bad value.
#include "engine/attribution.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "tests/scratch_dir.h"

namespace vitrine {
namespace {

using O = AttributionOutcome;

std::vector<ImpressionRecord> Shown() {
  // r1: U1 saw I1, I2, I3 at time 100; r2: U2 saw I2, I4 at 200; r3: an
  // answer to no user (similar) at 300; r4 twice (a client reusing its
  // X-Request-Id): U3 saw I5 at 400 and again at 1000.
  return {{"r1", "U1", "I1", 1, "control", "recommend", 100},
          {"r1", "U1", "I2", 2, "control", "recommend", 100},
          {"r1", "U1", "I3", 3, "control", "recommend", 100},
          {"r2", "U2", "I2", 1, "b", "recommend", 200},
          {"r2", "U2", "I4", 2, "b", "recommend", 200},
          {"r3", "", "I6", 1, "", "similar", 300},
          {"r4", "U3", "I5", 1, "b", "recommend", 400},
          {"r4", "U3", "I5", 1, "b", "recommend", 1000}};
}

TEST(Attribution, JoinsEventsToTheLineThatShowedTheirItemAndSaysWhyNotOtherwise) {
  const auto shown = Shown();
  const std::vector<EventRecord> events = {
      {"U1", "I2", "view", 150, "r1", 2},                  // 0: attributed to line 1
      {"U1", "I2", "purchase", 160, "r1", 0},              // 1: no position given: by item
      {"U1", "I3", "view", 150, "r1", 1},                  // 2: wrong position: by item, counted
      {"U1", "I9", "view", 150, "r1", 4},                  // 3: r1 did not show I9
      {"U1", "I1", "view", 150, "r404", 1},                // 4: unknown request
      {"U1", "I1", "view", 150, "", 0},                    // 5: no request id
      {"U2", "I2", "view", 199, "r2", 1},                  // 6: a second before its impression
      {"U2", "I2", "view", 200, "r2", 1},                  // 7: the same second: attributed
      {"U1", "I4", "view", 250, "r2", 2},                  // 8: U2's answer, U1's event
      {"U7", "I6", "view", 301, "r3", 1},                  // 9: an answer to no user: anyone's
      {"U2", "I4", "cart", 200 + 7 * 86400 + 1, "r2", 2},  // 10: after the window
      {"U2", "I4", "cart", 200 + 7 * 86400, "r2", 2},      // 11: at the window's end
      {"U3", "I5", "view", 900, "r4", 1},                  // 12: the first r4 (the second is later)
      {"U3", "I5", "view", 1001, "r4", 1},  // 13: the second r4, the latest before it
      {"U3", "I5", "view", 399, "r4", 1},   // 14: before both
  };
  const Attribution a = Attribute(shown, events);
  const std::vector<std::pair<O, int64_t>> expected = {
      {O::kAttributed, 1},        {O::kAttributed, 1},      {O::kAttributed, 2},
      {O::kItemNotShown, -1},     {O::kUnknownRequest, -1}, {O::kNoRequestId, -1},
      {O::kBeforeImpression, -1}, {O::kAttributed, 3},      {O::kOtherUser, -1},
      {O::kAttributed, 5},        {O::kAfterWindow, -1},    {O::kAttributed, 4},
      {O::kAttributed, 6},        {O::kAttributed, 7},      {O::kBeforeImpression, -1}};
  ASSERT_EQ(a.outcome.size(), expected.size());
  for (size_t e = 0; e < expected.size(); ++e) {
    EXPECT_EQ(a.outcome[e], expected[e].first)
        << "event " << e << ": " << OutcomeName(a.outcome[e]);
    EXPECT_EQ(a.impression[e], expected[e].second) << "event " << e;
  }
  EXPECT_EQ(a.count[static_cast<int>(O::kAttributed)], 8);
  EXPECT_EQ(a.count[static_cast<int>(O::kBeforeImpression)], 2);
  EXPECT_EQ(a.position_mismatches, 1);
  int64_t total = 0;
  for (int64_t c : a.count) total += c;
  EXPECT_EQ(total, static_cast<int64_t>(events.size()));
}

// Against a brute-force reference: random logs, every event checked by
// scanning every impression line with the rule written out plainly.
TEST(Attribution, AgreesWithABruteForceScanOnRandomLogs) {
  std::mt19937 rng(11);
  std::vector<ImpressionRecord> shown;
  for (int r = 0; r < 60; ++r) {
    const std::string user = "U" + std::to_string(rng() % 8);
    const int64_t t = 1000 + static_cast<int64_t>(rng() % 500);
    for (int p = 1; p <= 4; ++p) {
      shown.push_back({"r" + std::to_string(r % 50), r % 9 == 0 ? "" : user,
                       "I" + std::to_string(rng() % 12), p, "v", "recommend", t});
    }
  }
  std::vector<EventRecord> events;
  for (int e = 0; e < 2000; ++e) {
    events.push_back({"U" + std::to_string(rng() % 8), "I" + std::to_string(rng() % 12), "view",
                      900 + static_cast<int64_t>(rng() % 900),
                      rng() % 10 == 0 ? "" : "r" + std::to_string(rng() % 55), 0});
  }
  AttributionOptions o;
  o.window_seconds = 300;
  const Attribution a = Attribute(shown, events, o);
  for (size_t e = 0; e < events.size(); ++e) {
    const EventRecord& ev = events[e];
    int64_t best = -1;
    bool any_request = false;
    for (size_t i = 0; i < shown.size(); ++i) {
      const ImpressionRecord& im = shown[i];
      if (im.request_id != ev.request_id) continue;
      any_request = true;
      const bool ok = im.item == ev.item && (im.user.empty() || im.user == ev.user) &&
                      ev.timestamp >= im.timestamp && ev.timestamp - im.timestamp <= 300;
      if (ok && (best < 0 || im.timestamp > shown[static_cast<size_t>(best)].timestamp)) {
        best = static_cast<int64_t>(i);
      }
    }
    if (ev.request_id.empty()) {
      EXPECT_EQ(a.outcome[e], O::kNoRequestId);
    } else if (!any_request) {
      EXPECT_EQ(a.outcome[e], O::kUnknownRequest);
    } else if (best < 0) {
      EXPECT_NE(a.outcome[e], O::kAttributed) << "event " << e;
    } else {
      EXPECT_EQ(a.outcome[e], O::kAttributed) << "event " << e;
      // Same timestamp, same item: any of the tied lines is the same impression.
      ASSERT_GE(a.impression[e], 0);
      const ImpressionRecord& got = shown[static_cast<size_t>(a.impression[e])];
      EXPECT_EQ(got.timestamp, shown[static_cast<size_t>(best)].timestamp);
      EXPECT_EQ(got.item, ev.item);
      EXPECT_EQ(got.request_id, ev.request_id);
    }
  }
  EXPECT_GT(a.count[static_cast<int>(O::kAttributed)], 20);
}

TEST(Attribution, ReadersTakeTheServersLogsAndNameTheBadLine) {
  const auto dir = ScratchDir() / "readers";
  std::filesystem::create_directories(dir);
  WriteText(dir / "impressions.csv",
            "request_id,user_id,item_id,position,variant,endpoint,timestamp\n"
            "r1,\"U,1\",I1,1,control,recommend,100\nr1,\"U,1\",I2,2,control,recommend,100\n");
  auto shown = ReadImpressions(dir / "impressions.csv");
  ASSERT_TRUE(shown.ok()) << shown.status().ToString();
  ASSERT_EQ(shown->size(), 2u);
  EXPECT_EQ((*shown)[1].user, "U,1");
  EXPECT_EQ((*shown)[1].position, 2);
  EXPECT_EQ((*shown)[1].timestamp, 100);
  // An event log of this version, and one from before attribution.
  WriteText(dir / "events.csv",
            "user_id,item_id,event,timestamp,channel,request_id,position\n"
            "\"U,1\",I2,view,2024-05-01T10:00:00Z,,r1,2\nU2,I1,cart,150,store,,\n");
  auto events = ReadEvents(dir / "events.csv");
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].request_id, "r1");
  EXPECT_EQ((*events)[0].position, 2);
  EXPECT_EQ((*events)[0].timestamp, 1714557600);
  EXPECT_EQ((*events)[1].position, 0);
  WriteText(dir / "old.csv", "user_id,item_id,event,timestamp\nU1,I1,view,5\n");
  auto old = ReadEvents(dir / "old.csv");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ((*old)[0].request_id, "");

  // A torn last line (a crash mid-write, never acknowledged) is left out,
  // as the server's recovery would cut it, whatever is left of it.
  WriteText(dir / "torn.csv",
            "request_id,user_id,item_id,position,variant,endpoint,timestamp\n"
            "r1,U1,I1,1,c,recommend,100\nr1,U1,I2,2,c,recommend,17");
  auto torn = ReadImpressions(dir / "torn.csv");
  ASSERT_TRUE(torn.ok()) << torn.status().ToString();
  EXPECT_EQ(torn->size(), 1u);
  WriteText(dir / "torn_events.csv", "user_id,item_id,event,timestamp\nU1,I1,view,5\nU1,I1,vi");
  auto torn_events = ReadEvents(dir / "torn_events.csv");
  ASSERT_TRUE(torn_events.ok()) << torn_events.status().ToString();
  EXPECT_EQ(torn_events->size(), 1u);

  WriteText(dir / "bad_position.csv",
            "request_id,user_id,item_id,position,variant,endpoint,timestamp\n"
            "r1,U1,I1,1,c,recommend,100\nr1,U1,I2,0,c,recommend,100\n");
  auto bad = ReadImpressions(dir / "bad_position.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad_position.csv:3: column 'position' expects a whole "
                                        "number >= 1, found '0'"),
            std::string::npos)
      << bad.status().message();
  WriteText(dir / "bad_time.csv", "user_id,item_id,event,timestamp\nU1,I1,view,yesterday\n");
  auto bad_time = ReadEvents(dir / "bad_time.csv");
  ASSERT_FALSE(bad_time.ok());
  EXPECT_NE(bad_time.status().message().find("bad_time.csv:2: column 'timestamp'"),
            std::string::npos)
      << bad_time.status().message();
  WriteText(dir / "no_variant.csv", "request_id,user_id,item_id,position,endpoint,timestamp\n");
  auto missing = ReadImpressions(dir / "no_variant.csv");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing column 'variant'"), std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace vitrine
