// Training and batch scoring across MPI ranks (core/cluster.h, docs/scale.md):
// `mpirun --oversubscribe -np 3 vitrine build` against the same build in one
// process (the oracle), and `mpirun ... recommend --all-users` against one
// process's output on the same bundle. Real mpirun, real processes on
// localhost; skipped, saying why, only where mpirun or the MPI plugin is
// missing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/array_io.h"
#include "core/cluster.h"
#include "engine/bundle_schema.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;

// Runs a shell command with stdout and stderr into `log`; its exit code.
int RunLogged(const std::string& command, const fs::path& log) {
  const int st = std::system((command + " >" + log.string() + " 2>&1").c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Why MPI cannot run here, or "" when it can.
std::string MpiUnavailable() {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    return "mpirun not found: install openmpi-bin (scripts/install-deps.sh)";
  }
  if (!fs::exists(fs::path(VITRINE_BINARY).parent_path() / "libvitrine_mpi.so")) {
    return "vitrine was built without libopenmpi-dev, so there is no MPI plugin";
  }
  return "";
}

// mpirun on localhost with `ranks` processes of one OpenMP thread each.
// OpenMPI refuses root unless told; tests run as root in containers.
std::string Mpirun(int ranks) {
  return std::string("mpirun --oversubscribe -np ") + std::to_string(ranks) +
         (geteuid() == 0 ? " --allow-run-as-root" : "") + " -x OMP_NUM_THREADS=1 ";
}

double MaxAbsDiff(const Matrix& a, const Matrix& b) {
  double worst = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a.data[i]) - b.data[i]));
  }
  return worst;
}

double MaxAbs(const Matrix& a) {
  double worst = 0;
  for (float v : a.data) worst = std::max(worst, static_cast<double>(std::abs(v)));
  return worst;
}

class MpiTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    why_not_ = MpiUnavailable();
    if (!why_not_.empty()) return;
    const std::string d = ScratchDir().string();
    const std::string bin = VITRINE_BINARY;
    ASSERT_EQ(RunLogged(bin + " generate -q --items 800 --users 1000 --seed 11 --out " + d + "/data",
                  ScratchDir() / "gen.log"),
              0);
    build_flags_ = " build -q --ranker off --index Flat --iterations 6 --items " + d +
                   "/data/items.csv --interactions " + d + "/data/interactions.csv --out ";
    ASSERT_EQ(RunLogged("OMP_NUM_THREADS=1 " + bin + build_flags_ + d + "/single",
                  ScratchDir() / "single.log"),
              0)
        << Slurp(ScratchDir() / "single.log");
  }
  void SetUp() override {
    if (!why_not_.empty()) GTEST_SKIP() << why_not_;
  }

  static inline std::string why_not_;
  static inline std::string build_flags_;
};

// Blocked ALS on three ranks gives the single-process factors: each rank
// solves its block with the same solver, and the Gramian's partial sums are
// whole blocks added in double, so only a double rounding can differ (the
// factors were bit-identical when this was written).
TEST_F(MpiTest, BuildOnThreeRanksMatchesOneProcess) {
  const fs::path d = ScratchDir();
  const int rc = RunLogged(Mpirun(3) + VITRINE_BINARY + build_flags_ + (d / "mpi").string(),
                     d / "mpi.log");
  ASSERT_EQ(rc, 0) << Slurp(d / "mpi.log");
  for (const char* file : {bundle_file::kItemFactors, bundle_file::kUserFactors}) {
    auto single = ReadNpyF32(d / "single" / file);
    auto mpi = ReadNpyF32(d / "mpi" / file);
    ASSERT_TRUE(single.ok() && mpi.ok()) << file;
    ASSERT_EQ(single->rows, mpi->rows) << file;
    ASSERT_EQ(single->cols, mpi->cols) << file;
    const double scale = MaxAbs(*single);
    ASSERT_GT(scale, 0) << file;
    // docs/scale.md states this tolerance and the difference measured.
    EXPECT_LE(MaxAbsDiff(*single, *mpi), 1e-6 * scale) << file;
  }
}

// The all-users scoring split across three ranks writes what one process
// writes, byte for byte, in user order.
TEST_F(MpiTest, RecommendAllUsersOnThreeRanksMatchesOneProcess) {
  const fs::path d = ScratchDir();
  const std::string bundle = (d / "single").string();
  ASSERT_EQ(RunLogged(std::string(VITRINE_BINARY) + " recommend -q --bundle " + bundle +
                    " --all-users --output " + (d / "one.csv").string(),
                d / "one.log"),
            0)
      << Slurp(d / "one.log");
  ASSERT_EQ(RunLogged(Mpirun(3) + VITRINE_BINARY + " recommend -q --bundle " + bundle +
                    " --all-users --output " + (d / "three.csv").string(),
                d / "three.log"),
            0)
      << Slurp(d / "three.log");
  const std::string one = Slurp(d / "one.csv");
  EXPECT_GT(Lines(one).size(), 1000u);
  EXPECT_EQ(one, Slurp(d / "three.csv"));
}

// A rank that fails stops the whole job (no rank is left waiting in a
// collective), and nothing is written.
TEST_F(MpiTest, AFailingBuildStopsEveryRankAndWritesNothing) {
  const fs::path d = ScratchDir();
  const int rc = RunLogged(Mpirun(3) + VITRINE_BINARY + " build -q --items " +
                               (d / "missing.csv").string() + " --out " + (d / "never").string(),
                           d / "fail.log");
  EXPECT_NE(rc, 0);
  EXPECT_NE(Slurp(d / "fail.log").find("missing.csv"), std::string::npos) << Slurp(d / "fail.log");
  EXPECT_FALSE(fs::exists(d / "never"));
}

// Commands that do not split their work refuse to run on several ranks
// instead of running N copies.
TEST_F(MpiTest, OtherCommandsRefuseSeveralRanks) {
  const fs::path d = ScratchDir();
  const int rc = RunLogged(Mpirun(2) + VITRINE_BINARY + " inspect --bundle " + (d / "single").string(),
                     d / "inspect.log");
  EXPECT_NE(rc, 0);
  EXPECT_NE(Slurp(d / "inspect.log").find("does not run across MPI ranks"), std::string::npos);
}

// The row split balances rows plus nonzeros: a planted heavy row gets a
// block of its own, and the offsets cover every row once.
TEST(BalancedRowBlocks, SplitsByRowsPlusNonzeros) {
  // 10 rows: row 0 holds 90 nonzeros, the others 1 each (cost 91 + 9 * 2).
  std::vector<int64_t> indptr{0, 90};
  for (int r = 1; r < 10; ++r) indptr.push_back(indptr.back() + 1);
  const auto blocks = BalancedRowBlocks(indptr, 2);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0], 0);
  EXPECT_EQ(blocks[1], 1);  // the heavy row alone
  EXPECT_EQ(blocks[2], 10);
  const auto equal = BalancedRowBlocks(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}, 3);
  EXPECT_EQ(equal, (std::vector<int64_t>{0, 2, 4, 6}));
  const auto more_parts = BalancedRowBlocks(std::vector<int64_t>{0, 1}, 4);
  EXPECT_EQ(more_parts.front(), 0);
  EXPECT_EQ(more_parts.back(), 1);
  EXPECT_TRUE(std::is_sorted(more_parts.begin(), more_parts.end()));
  // Aligned cuts (ALS aligns them to its Gramian blocks): multiples of 4.
  std::vector<int64_t> ten(11);
  for (int r = 0; r <= 10; ++r) ten[r] = 3 * r;
  const auto aligned = BalancedRowBlocks(ten, 3, 4);
  ASSERT_EQ(aligned.size(), 4u);
  EXPECT_EQ(aligned[0], 0);
  EXPECT_EQ(aligned[3], 10);
  for (size_t k = 1; k < 3; ++k) EXPECT_EQ(aligned[k] % 4, 0) << k;
  EXPECT_TRUE(std::is_sorted(aligned.begin(), aligned.end()));
}

}  // namespace
}  // namespace vitrine
