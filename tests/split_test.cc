#include "engine/split.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "tests/test_util.h"

namespace vitrine {
namespace {

Event Ev(std::string user, int64_t ts, std::string item = "i") {
  Event e;
  e.user = std::move(user);
  e.item = std::move(item);
  e.ts = ts;
  e.raw_line = e.user + "," + e.item + "," + std::to_string(ts);
  return e;
}

TEST(SplitTest, TestCountRule) {
  EXPECT_EQ(TestCountForUser(0, 0.2), 0);
  EXPECT_EQ(TestCountForUser(1, 0.2), 0);
  EXPECT_EQ(TestCountForUser(1, 0.9), 0);
  EXPECT_EQ(TestCountForUser(2, 0.2), 1);    // at least one
  EXPECT_EQ(TestCountForUser(5, 0.2), 1);    // ceil(1.0)
  EXPECT_EQ(TestCountForUser(6, 0.2), 2);    // ceil(1.2)
  EXPECT_EQ(TestCountForUser(10, 0.7), 7);   // 0.7 * 10 is 7.000000000000001 in double
  EXPECT_EQ(TestCountForUser(10, 0.99), 9);  // at least one train event
  EXPECT_EQ(TestCountForUser(3, 0.5), 2);
}

TEST(SplitTest, HandExampleWithTies) {
  const std::vector<Event> ev = {
      Ev("a", 5), Ev("a", 1), Ev("b", 9), Ev("a", 3), Ev("a", 3), Ev("c", 4), Ev("c", 4),
  };
  Result<SplitResult> r = TemporalSplit(ev, {.test_fraction = 0.5});
  ASSERT_TRUE(r.ok());
  // a: time order rows 1 (t1), 3 (t3), 4 (t3), 0 (t5): the last two are test.
  // b: one event, train. c: a tie, the later input row (6) is test.
  EXPECT_EQ(r->test, (std::vector<int64_t>{0, 4, 6}));
  EXPECT_EQ(r->train, (std::vector<int64_t>{1, 2, 3, 5}));
  EXPECT_EQ(r->users, 3);
  EXPECT_EQ(r->users_with_test, 2);
}

TEST(SplitTest, RejectsBadFraction) {
  const std::vector<Event> ev = {Ev("a", 1)};
  for (double f : {0.0, 1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    Result<SplitResult> r = TemporalSplit(ev, {.test_fraction = f});
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << f;
  }
}

TEST(SplitTest, RandomLogIsTemporalPerUserAndDeterministic) {
  std::mt19937_64 rng(3);
  std::vector<Event> ev;
  // Distinct timestamps so the split is a function of the set of rows.
  std::vector<int64_t> ts(3000);
  for (size_t i = 0; i < ts.size(); ++i) ts[i] = static_cast<int64_t>(i) * 7 + 1;
  std::shuffle(ts.begin(), ts.end(), rng);
  for (size_t i = 0; i < ts.size(); ++i) {
    // Skewed user sizes: many users with one or two events.
    const uint64_t u = (rng() % 1000) * (rng() % 1000) / 4000;
    // (Built with += : GCC 12 warns falsely on "literal" + std::string here.)
    std::string user = "u", item = "item";
    user += std::to_string(u);
    item += std::to_string(rng() % 50);
    ev.push_back(Ev(user, ts[i], item));
  }
  const double f = 0.25;
  Result<SplitResult> r = TemporalSplit(ev, {.test_fraction = f});
  ASSERT_TRUE(r.ok());

  // A partition of all rows, each side ascending.
  std::vector<int64_t> all = r->train;
  all.insert(all.end(), r->test.begin(), r->test.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), ev.size());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], static_cast<int64_t>(i));
  EXPECT_TRUE(std::is_sorted(r->train.begin(), r->train.end()));
  EXPECT_TRUE(std::is_sorted(r->test.begin(), r->test.end()));

  // Oracle per user: counts follow the rule, train strictly older than test.
  struct Acc {
    int64_t n = 0, n_test = 0, max_train = std::numeric_limits<int64_t>::min(),
            min_test = std::numeric_limits<int64_t>::max();
  };
  std::map<std::string, Acc> users;
  for (const Event& e : ev) ++users[e.user].n;
  for (int64_t i : r->train) {
    Acc& a = users[ev[i].user];
    a.max_train = std::max(a.max_train, ev[i].ts);
  }
  for (int64_t i : r->test) {
    Acc& a = users[ev[i].user];
    ++a.n_test;
    a.min_test = std::min(a.min_test, ev[i].ts);
  }
  int64_t with_test = 0;
  for (const auto& [u, a] : users) {
    EXPECT_EQ(a.n_test, TestCountForUser(a.n, f)) << u;
    if (a.n_test > 0) {
      EXPECT_LT(a.max_train, a.min_test) << u;
      ++with_test;
    }
  }
  EXPECT_EQ(r->users, static_cast<int64_t>(users.size()));
  EXPECT_EQ(r->users_with_test, with_test);
  EXPECT_GT(with_test, 10);
  EXPECT_LT(with_test, static_cast<int64_t>(users.size()));  // some single-event users

  // Same input, same split; shuffled input, same set of test rows.
  Result<SplitResult> again = TemporalSplit(ev, {.test_fraction = f});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->train, r->train);
  EXPECT_EQ(again->test, r->test);
  std::vector<Event> shuffled = ev;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  Result<SplitResult> s = TemporalSplit(shuffled, {.test_fraction = f});
  ASSERT_TRUE(s.ok());
  std::set<std::string> a, b;
  for (int64_t i : r->test) a.insert(ev[i].raw_line);
  for (int64_t i : s->test) b.insert(shuffled[i].raw_line);
  EXPECT_EQ(a, b);
}

// End to end through the binary: rows copied verbatim (quotes and all) under
// the header, and errors name file and line.
TEST(SplitCliTest, WritesTrainAndTestFiles) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("vitrine_split_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "in.csv");
    out << "user_id,item_id,timestamp\r\n"
           "a,i1,5\r\na,\"i,2\",1\r\nb,i3,9\r\na,i4,3\r\na,i5,3\r\nc,i1,4\r\nc,i2,4\r\n";
  }
  const std::string bin = VITRINE_BINARY;
  const std::string base = bin + " split --interactions " + (dir / "in.csv").string() +
                           " --train " + (dir / "train.csv").string() + " --test " +
                           (dir / "test.csv").string();
  ASSERT_EQ(std::system((base + " --test-fraction 0.5 2>/dev/null").c_str()), 0);
  EXPECT_EQ(Slurp(dir / "train.csv"),
            "user_id,item_id,timestamp\na,\"i,2\",1\nb,i3,9\na,i4,3\nc,i1,4\n");
  EXPECT_EQ(Slurp(dir / "test.csv"), "user_id,item_id,timestamp\na,i1,5\na,i5,3\nc,i2,4\n");

  {
    std::ofstream out(dir / "bad.csv");
    out << "user_id,item_id,timestamp\na,i1,5\na,i2,soon\n";
  }
  const std::string bad = bin + " split --interactions " + (dir / "bad.csv").string() +
                          " --train " + (dir / "t1.csv").string() + " --test " +
                          (dir / "t2.csv").string() + " 2>" + (dir / "err.txt").string();
  const int rc = std::system(bad.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << rc;
  EXPECT_NE(Slurp(dir / "err.txt").find("bad.csv:3: column 'timestamp'"), std::string::npos)
      << Slurp(dir / "err.txt");
  EXPECT_FALSE(std::filesystem::exists(dir / "t1.csv"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vitrine
