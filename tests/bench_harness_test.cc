// Tests for benchlib/: the recall/QPS Pareto frontier, seeded random
// filters, the hnswlib peer against exact ground truth, and `vitrine bench`.
#include "benchlib/bench_harness.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>
#include <string>

#include "benchlib/hnswlib_peer.h"
#include "core/array_io.h"
#include "core/file_util.h"
#include "index/measure.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {

TEST(Pareto, HandMadeTable) {
  auto row = [](const char* name, double recall, double qps) {
    BenchRow r;
    r.index = name;
    r.recall = recall;
    r.qps = qps;
    return r;
  };
  const std::vector<BenchRow> rows = {
      row("a", 0.90, 1000),  // 0: frontier
      row("b", 0.85, 900),   // 1: dominated by a
      row("c", 0.95, 800),   // 2: frontier
      row("d", 0.95, 700),   // 3: same recall, slower
      row("e", 0.99, 100),   // 4: frontier
      row("f", 0.80, 1200),  // 5: frontier (fastest)
      row("g", 0.90, 1000),  // 6: duplicate of a: only the first is kept
      row("h", 0.97, 800),   // 7: dominates c (higher recall, same qps)
  };
  EXPECT_EQ(ParetoFrontier(rows), (std::vector<size_t>{5, 0, 7, 4}));
  EXPECT_TRUE(ParetoFrontier({}).empty());
}

TEST(Sampling, FiltersAreSeeded) {
  const Bitmap f = RandomFilter(1000, 0.1, 4);
  EXPECT_EQ(f.cardinality(), 100u);
  EXPECT_TRUE(f == RandomFilter(1000, 0.1, 4));
  EXPECT_LT(f.maximum(), 1000u);
}

TEST(HnswlibPeer, FindsNeighbours) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "no AVX-512";
  const Matrix base = Gaussian(2000, 16, 11), queries = Gaussian(50, 16, 12);
  for (Metric metric : {Metric::kL2, Metric::kInnerProduct}) {
    auto peer = HnswlibPeer::Build(base, metric, 16, 100, 2);
    ASSERT_TRUE(peer.ok()) << peer.status().ToString();
    (*peer)->SetEf(200);
    std::vector<int64_t> labels(queries.rows * 10);
    ASSERT_TRUE((*peer)->Search(queries.data.data(), queries.rows, 10, labels.data()).ok());
    auto gt = ComputeGroundTruth(base, queries, 10, metric, nullptr);
    ASSERT_TRUE(gt.ok());
    EXPECT_GT(RecallAtK(labels, 10, *gt), 0.97);
    EXPECT_GT((*peer)->BytesPerVector(), 16 * 4);
  }
}

// --- The CLI -------------------------------------------------------------

// Runs vitrine; stderr goes to `err` if given. Returns the exit code.
int RunVitrine(const std::string& args, const std::string& err = "") {
  const std::string cmd = std::string(VITRINE_BINARY) + " " + args + " >/dev/null 2>" +
                          (err.empty() ? std::string("&1") : err);
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(BenchCli, WritesCsvWithTheDocumentedColumns) {
  const std::filesystem::path dir = ScratchDir() / "csv";
  ASSERT_TRUE(WriteNpy(dir / "base.npy", Gaussian(600, 8, 1)).ok());
  ASSERT_TRUE(WriteNpy(dir / "q.npy", Gaussian(30, 8, 2)).ok());
  const auto csv = dir / "out.csv";
  const std::string common = "--vectors " + (dir / "base.npy").string() + " --queries " +
                             (dir / "q.npy").string() + " --cache-dir " + (dir / "cache").string();
  ASSERT_EQ(RunVitrine("bench " + common +
                       " --metric l2 --specs 'Flat;HNSW8;IVF4,Flat' --ef 10,20 --repeats 1"
                       " --filter-selectivity 0.5 --output " +
                       csv.string()),
            0);
  auto text = ReadFile(csv);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->substr(0, text->find('\n')),
            "index,params,k,recall,qps,p50_us,p99_us,build_s,bytes_per_vector,threads");
  // Flat: 2 rows (plain, filtered); HNSW8: 2 x 2; IVF4: 3 nprobe x 2.
  EXPECT_EQ(std::count(text->begin(), text->end(), '\n'), 1 + 2 + 4 + 6);
  EXPECT_NE(text->find("Flat,-,10,1.0000"), std::string::npos);
  EXPECT_NE(text->find("ef=20 filter=0.500"), std::string::npos);
  // Autotune on sampled queries.
  EXPECT_EQ(RunVitrine("bench --vectors " + (dir / "base.npy").string() +
                       " --autotune --repeats 1 --queries-limit 20 --cache-dir ''"),
            0);
}

// Issue 13: NaN query vectors gave bench recall 1.0 (every distance NaN).
// Vector files with NaN or Inf are refused, naming the file and row.
TEST(BenchCli, NonFiniteVectorsAreRefusedNamingTheRow) {
  const std::filesystem::path dir = ScratchDir() / "nonfinite";
  ASSERT_TRUE(WriteNpy(dir / "base.npy", Gaussian(200, 8, 1)).ok());
  Matrix q = Gaussian(10, 8, 2);
  q.at(4, 1) = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE(WriteNpy(dir / "q_nan.npy", q).ok());
  q.at(4, 1) = 0;
  q.at(9, 7) = -std::numeric_limits<float>::infinity();
  ASSERT_TRUE(WriteFvecs(dir / "q_inf.fvecs", q).ok());
  const std::string base = "bench --specs Flat --repeats 1 --cache-dir '' --vectors " +
                           (dir / "base.npy").string() + " --queries ";
  const std::string err = (dir / "err.txt").string();
  ASSERT_EQ(RunVitrine(base + (dir / "q_nan.npy").string(), err), 1);
  EXPECT_NE(ReadFile(err)->find((dir / "q_nan.npy").string() + ": row 4 column 1 is NaN"),
            std::string::npos)
      << *ReadFile(err);
  ASSERT_EQ(RunVitrine(base + (dir / "q_inf.fvecs").string(), err), 1);
  EXPECT_NE(ReadFile(err)->find((dir / "q_inf.fvecs").string() + ": row 9 column 7 is Inf"),
            std::string::npos)
      << *ReadFile(err);
  // The same file as base vectors, and through the library call.
  ASSERT_EQ(RunVitrine("bench --specs Flat --vectors " + (dir / "q_inf.fvecs").string(), err), 1);
  EXPECT_EQ(ReadVectors(dir / "q_nan.npy").status().code(), Status::Code::kInvalidArgument);
}

TEST(BenchCli, BadFlagsExitTwo) {
  const std::filesystem::path dir = ScratchDir() / "flags";
  ASSERT_TRUE(WriteNpy(dir / "base.npy", Gaussian(50, 4, 1)).ok());
  const std::string v = " --vectors " + (dir / "base.npy").string();
  EXPECT_EQ(RunVitrine("bench"), 2);
  EXPECT_EQ(RunVitrine("bench --no-such-flag" + v), 2);
  EXPECT_EQ(RunVitrine("bench --metric cosine" + v), 2);
  EXPECT_EQ(RunVitrine("bench -k 0" + v), 2);
  EXPECT_EQ(RunVitrine("bench --ef 10,x" + v), 2);
  EXPECT_EQ(RunVitrine("bench --filter-selectivity 2" + v), 2);
  EXPECT_EQ(RunVitrine("bench --specs 'NoSuchIndex'" + v), 2);
  EXPECT_EQ(RunVitrine("bench --bundle /nonexistent" + v), 2);
  EXPECT_EQ(RunVitrine("bench --help"), 0);
  EXPECT_EQ(RunVitrine("bench --vectors /nonexistent.npy"), 1);
}

}  // namespace
}  // namespace vitrine
