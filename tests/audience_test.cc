// Audiences (engine/audience.h): the exact search is brute-force scoring
// over all users, the HNSW search recalls it, the score is the item's hybrid
// score in the user's own recommendation, and opted-out users, owners and
// items the rules exclude are handled as documented.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "engine/engine.h"
#include "embed/fusion.h"
#include "serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using vitrine::testing::MakeTestBundle;
using vitrine::testing::RunVitrine;
using vitrine::testing::Slurp;

class AudienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTestBundle("audience");
    auto e = Engine::Open(dir_ / "bundle");
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The oracle: every user's query scored against the item, written out
  // from the public pieces (fold-in, default weights), sorted best first.
  std::vector<std::pair<float, int32_t>> BruteForce(int32_t item, bool include_owners) const {
    const auto& layout = engine_->layout();
    const float* v = engine_->vectors().row(static_cast<size_t>(item));
    std::vector<std::pair<float, int32_t>> all;
    for (int32_t u = 0; u < static_cast<int32_t>(engine_->users().size()); ++u) {
      const std::vector<int32_t> h = engine_->UserHistory(u);
      if (h.empty()) continue;
      if (!include_owners && std::find(h.begin(), h.end(), item) != h.end()) continue;
      auto q = engine_->HistoryVector(h, engine_->UserHistoryWeights(u));
      EXPECT_TRUE(q.ok());
      EXPECT_TRUE(ScaleQuery(layout, {}, q->data()).ok());
      double s = 0;
      for (const auto& b : layout) {
        if (IsPriorBlock(b.name)) continue;
        for (size_t j = b.offset; j < b.offset + b.dim; ++j) s += double((*q)[j]) * v[j];
      }
      all.emplace_back(static_cast<float>(s), u);
    }
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first
                                                                          : a.second < b.second; });
    return all;
  }

  fs::path dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(AudienceTest, ExactSearchIsBruteForceOverAllUsers) {
  for (int32_t item : {0, 17, 123, 299}) {
    AudienceRequest r;
    r.item = engine_->catalog().ids.id(item);
    r.query.k = 25;
    r.search = AudienceSearch::kExact;
    auto a = engine_->FindAudience(r);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    const auto oracle = BruteForce(item, false);
    EXPECT_EQ(a->eligible, static_cast<int64_t>(oracle.size()));
    ASSERT_EQ(a->members.size(), std::min<size_t>(25, oracle.size()));
    for (size_t i = 0; i < a->members.size(); ++i) {
      EXPECT_NEAR(a->members[i].score, oracle[i].first, 1e-4) << "item " << item << " rank " << i;
      // Equal scores may swap users; a different score may not.
      if (i + 1 < oracle.size() && oracle[i].first - oracle[i + 1].first > 1e-4f &&
          (i == 0 || oracle[i - 1].first - oracle[i].first > 1e-4f)) {
        EXPECT_EQ(a->members[i].user, oracle[i].second) << "item " << item << " rank " << i;
      }
      EXPECT_FALSE(a->members[i].reason.empty());
    }
    EXPECT_EQ(a->search, "exact");
  }
}

TEST_F(AudienceTest, TheScoreIsTheItemsHybridScoreInTheUsersOwnRecommendation) {
  const int32_t item = 42;
  AudienceRequest r;
  r.item = engine_->catalog().ids.id(item);
  r.query.k = 3;
  auto a = engine_->FindAudience(r);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_FALSE(a->members.empty());
  for (const AudienceMember& m : a->members) {
    RecommendRequest rr;
    rr.user = engine_->users().id(m.user);
    rr.query.k = engine_->catalog().size();
    rr.query.use_ranker = false;  // the hybrid score
    auto rec = engine_->Recommend(rr);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    auto hit = std::find_if(rec->hits.begin(), rec->hits.end(),
                            [&](const Hit& h) { return h.item == item; });
    ASSERT_NE(hit, rec->hits.end()) << "the item is not in the user's recommendation";
    // The recommendation adds the priors (pop, new) at their default weights.
    double prior = 0;
    const float* v = engine_->vectors().row(static_cast<size_t>(item));
    for (const auto& b : engine_->layout()) {
      if (IsPriorBlock(b.name)) prior += double(b.weight) * v[b.offset];
    }
    EXPECT_NEAR(hit->score - prior, m.score, 1e-4) << "user " << m.user;
  }
}

TEST_F(AudienceTest, HnswSearchRecallsTheExactAudience) {
  double recalled = 0, total = 0;
  for (int32_t item = 0; item < 300; item += 30) {
    AudienceRequest r;
    r.item = engine_->catalog().ids.id(item);
    r.query.k = 20;
    r.search = AudienceSearch::kExact;
    auto exact = engine_->FindAudience(r);
    r.search = AudienceSearch::kIndex;
    auto ann = engine_->FindAudience(r);
    ASSERT_TRUE(exact.ok() && ann.ok());
    EXPECT_EQ(ann->search, "hnsw");
    std::set<int32_t> truth;
    for (const auto& m : exact->members) truth.insert(m.user);
    for (const auto& m : ann->members) recalled += truth.count(m.user);
    total += static_cast<double>(truth.size());
  }
  EXPECT_GE(recalled / total, 0.95);
}

TEST_F(AudienceTest, OwnersAndOptedOutUsersAreNeverListed) {
  int32_t item = 0;  // the most popular item: it has owners
  for (int32_t i = 0; i < engine_->catalog().size(); ++i) {
    if (engine_->popularity(i) > engine_->popularity(item)) item = i;
  }
  AudienceRequest r;
  r.item = engine_->catalog().ids.id(item);
  r.query.k = 200;
  auto all = engine_->FindAudience(r);
  ASSERT_TRUE(all.ok());
  for (const auto& m : all->members) {
    const auto h = engine_->UserHistory(m.user);
    EXPECT_EQ(std::count(h.begin(), h.end(), item), 0) << "user " << m.user << " owns the item";
  }
  r.include_owners = true;
  auto with_owners = engine_->FindAudience(r);
  ASSERT_TRUE(with_owners.ok());
  EXPECT_EQ(with_owners->eligible, static_cast<int64_t>(BruteForce(item, true).size()));
  EXPECT_GT(with_owners->eligible, all->eligible);

  r.include_owners = false;
  std::set<int32_t> banned;
  for (size_t i = 0; i < 3; ++i) {
    banned.insert(all->members[i].user);
    r.opt_out.push_back(engine_->users().id(all->members[i].user));
  }
  r.opt_out.push_back("no-such-user");  // ignored, not an error
  auto opted = engine_->FindAudience(r);
  ASSERT_TRUE(opted.ok()) << opted.status().ToString();
  EXPECT_EQ(opted->eligible, all->eligible - 3);
  for (const auto& m : opted->members) EXPECT_EQ(banned.count(m.user), 0u);
  EXPECT_EQ(opted->members.front().user, all->members[3].user);
}

// Live events (the server's session store) leave out users who rejected
// the item, hid its brand or just bought it, and the next users move up.
TEST_F(AudienceTest, LiveEventsLeaveOutRejectersAndNewOwners) {
  const Catalog& cat = engine_->catalog();
  const int32_t item = 17;
  int32_t same_brand = -1;  // another item of the item's brand
  for (int32_t i = 0; i < cat.size() && same_brand < 0; ++i) {
    if (i != item && cat.ValueString(*cat.column("brand"), i) ==
                         cat.ValueString(*cat.column("brand"), item)) {
      same_brand = i;
    }
  }
  ASSERT_GE(same_brand, 0);
  for (AudienceSearch search : {AudienceSearch::kExact, AudienceSearch::kIndex}) {
    AudienceRequest r;
    r.item = cat.ids.id(item);
    r.query.k = 6;
    r.search = search;
    auto before = engine_->FindAudience(r);
    ASSERT_TRUE(before.ok());
    ASSERT_EQ(before->members.size(), 6u);
    const std::string u0 = engine_->users().id(before->members[0].user);
    const std::string u1 = engine_->users().id(before->members[1].user);
    const std::string u2 = engine_->users().id(before->members[2].user);
    r.live_events = [&](const std::string& user) -> std::vector<RecentEvent> {
      if (user == u0) return {{cat.ids.id(item), -1, Feedback::kNotInterested}};
      if (user == u1) return {{cat.ids.id(same_brand), -1, Feedback::kHideBrand}};
      if (user == u2) return {{cat.ids.id(item), 10, Feedback::kTaste}};
      return {};
    };
    auto after = engine_->FindAudience(r);
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(after->members.size(), 6u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(after->members[i].user, before->members[i + 3].user) << "rank " << i;
    }
    r.include_owners = true;  // the new owner comes back, the rejecters do not
    auto owners = engine_->FindAudience(r);
    ASSERT_TRUE(owners.ok());
    std::set<std::string> listed;
    for (const auto& m : owners->members) listed.insert(engine_->users().id(m.user));
    EXPECT_TRUE(listed.count(u2));
    EXPECT_FALSE(listed.count(u0) || listed.count(u1));
  }
}

TEST_F(AudienceTest, BadRequestsAreRefusedWithAReason) {
  AudienceRequest r;
  r.item = "no-such-item";
  auto a = engine_->FindAudience(r);
  EXPECT_EQ(a.status().code(), Status::Code::kNotFound);
  r.item = engine_->catalog().ids.id(3);
  r.query.k = 0;
  EXPECT_EQ(engine_->FindAudience(r).status().code(), Status::Code::kInvalidArgument);
  // An item the brand's rules exclude has no audience.
  const Catalog& cat = engine_->catalog();
  auto rules = RuleSet::Parse(
      "EXCLUDE WHERE brand = \"" + cat.ValueString(*cat.column("brand"), 3) + "\"\n", "rules");
  ASSERT_TRUE(rules.ok());
  ASSERT_TRUE(rules->Bind(cat).ok());
  r.query.k = 10;
  r.query.rules = &*rules;
  a = engine_->FindAudience(r);
  EXPECT_EQ(a.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(a.status().message().find("does not pass the rules"), std::string::npos);
}

TEST_F(AudienceTest, BuildOptOutFileKeepsThoseUsersOutOfEveryAudience) {
  const fs::path data = fs::path(VITRINE_BINARY).parent_path() / "serve_test_bundle" / "data";
  const std::string u1 = engine_->users().id(0), u2 = engine_->users().id(5);
  // A byte order mark, CRLF, blanks, a comment, an unknown id and a repeat.
  std::ofstream(dir_ / "opt_out.txt") << "\xEF\xBB\xBF" << u1 << "\r\n# at the boutique\n\n  "
                                      << u2 << "\t\nnot-a-user\n"
                                      << u1 << "\n";
  ASSERT_EQ(RunVitrine("build --items '" + (data / "items.csv").string() + "' --interactions '" +
                           (data / "interactions.csv").string() +
                           "' --factors 8 --iterations 2 --ranker off --seed 7 --threads 1 "
                           "--opt-out '" + (dir_ / "opt_out.txt").string() + "' --out '" +
                           (dir_ / "opted").string() + "'",
                       dir_),
            0)
      << Slurp(dir_ / "cmd.err");
  EXPECT_NE(Slurp(dir_ / "cmd.err").find("2 users opted out"), std::string::npos)
      << Slurp(dir_ / "cmd.err");
  EXPECT_EQ(Slurp(dir_ / "opted" / "opt_out.txt"), u1 + "\n" + u2 + "\n");
  auto e = Engine::Open(dir_ / "opted");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_EQ((*e)->opted_out().size(), 2u);
  for (int32_t item = 0; item < 300; item += 13) {
    AudienceRequest r;
    r.item = (*e)->catalog().ids.id(item);
    r.query.k = 1000;
    r.include_owners = true;
    auto a = (*e)->FindAudience(r);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    for (const auto& m : a->members) {
      EXPECT_NE((*e)->users().id(m.user), u1);
      EXPECT_NE((*e)->users().id(m.user), u2);
    }
  }
  // The CLI lists the same audience.
  const std::string item = (*e)->catalog().ids.id(11);
  ASSERT_EQ(RunVitrine("audience --bundle '" + (dir_ / "opted").string() + "' --item " + item +
                           " -k 5 --format csv",
                       dir_),
            0)
      << Slurp(dir_ / "cmd.err");
  AudienceRequest r;
  r.item = item;
  r.query.k = 5;
  auto a = (*e)->FindAudience(r);
  ASSERT_TRUE(a.ok());
  std::string expected = "rank,user_id,score,reason\n";
  for (size_t i = 0; i < a->members.size(); ++i) {
    expected += std::to_string(i + 1) + "," + (*e)->users().id(a->members[i].user) + ",";
    char score[32];
    std::snprintf(score, sizeof score, "%.4f", a->members[i].score);
    expected += std::string(score) + "," + a->members[i].reason + "\n";
  }
  EXPECT_EQ(Slurp(dir_ / "cmd.out"), expected);
  EXPECT_EQ(RunVitrine("audience --bundle '" + (dir_ / "opted").string() + "' --item " + item +
                           " --search fast",
                       dir_),
            2);
  EXPECT_NE(Slurp(dir_ / "cmd.err").find("expected auto, exact or hnsw"), std::string::npos);
}

}  // namespace
}  // namespace vitrine
