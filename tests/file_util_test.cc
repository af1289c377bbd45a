// Tests for core/file_util.h's writers: AtomicFile (pieces, gzip, what is
// visible before and after Commit, cleanup), WriteFileAtomic and FsyncPath.
#include "core/file_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tests/scratch_dir.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;

// Bytes that do not compress to nothing: seeded noise with some structure.
std::string Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 7 == 0 ? 'a' : rng() & 0xff);
  return s;
}

// Files in `dir` (names only), to see that no temporary is left behind.
std::vector<std::string> Entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(AtomicFile, PiecesOfEverySizeArriveInOrder) {
  const fs::path dir = ScratchDir() / "pieces";
  const std::string all = Noise(3 * (1 << 20) + 12345, 1);
  for (int level : {0, 1, 6}) {
    const fs::path path = dir / ("out" + std::to_string(level));
    AtomicFile f;
    ASSERT_TRUE(f.Open(path, level).ok());
    EXPECT_EQ(f.path(), path);
    // Small, buffer-sized and larger-than-buffer pieces, and an empty one.
    size_t at = 0;
    for (size_t n :
         {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 20, size_t{3} << 19, size_t{7}}) {
      ASSERT_TRUE(f.Append(std::string_view(all).substr(at, n)).ok());
      at += n;
    }
    ASSERT_TRUE(f.Append(std::string_view(all).substr(at)).ok());
    ASSERT_TRUE(f.Commit().ok());
    auto back = ReadFile(path);  // gunzips when the magic says so
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, all) << "gzip level " << level;
    auto raw = ReadFileRaw(path);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw->substr(0, 2) == "\x1f\x8b", level > 0);
  }
  EXPECT_EQ(Entries(dir), (std::vector<std::string>{"out0", "out1", "out6"}));
}

TEST(AtomicFile, OldFileStaysUntilCommit) {
  const fs::path dir = ScratchDir() / "commit";
  const fs::path path = dir / "data.csv";
  ASSERT_TRUE(WriteFileAtomic(path, "old\n").ok());
  {
    AtomicFile f;
    ASSERT_TRUE(f.Open(path).ok());
    ASSERT_TRUE(f.Append("new\n").ok());
    ASSERT_TRUE(f.Finish().ok());
    EXPECT_EQ(ReadFile(path).value(), "old\n");  // finished, not yet committed
    EXPECT_EQ(Entries(dir).size(), 2u);          // and the hidden temporary
    ASSERT_TRUE(f.Commit().ok());
    EXPECT_TRUE(f.Commit().ok());  // idempotent
    EXPECT_EQ(ReadFile(path).value(), "new\n");
  }
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"data.csv"});
}

TEST(AtomicFile, AbandonedWriterLeavesNothing) {
  const fs::path dir = ScratchDir() / "abandon";
  const fs::path path = dir / "data.csv";
  ASSERT_TRUE(WriteFileAtomic(path, "old\n").ok());
  {
    AtomicFile f;
    ASSERT_TRUE(f.Open(path, 1).ok());
    ASSERT_TRUE(f.Append(Noise(100000, 2)).ok());
    AtomicFile moved = std::move(f);  // ownership of the temporary moves too
  }
  EXPECT_EQ(ReadFile(path).value(), "old\n");
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"data.csv"});
}

TEST(AtomicFile, ErrorsNameThePath) {
  const fs::path dir = ScratchDir() / "errors";
  ASSERT_TRUE(WriteFileAtomic(dir / "plain", "x").ok());
  AtomicFile f;
  Status st = f.Open(dir / "plain" / "below", 0);  // parent is a file
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_NE(st.message().find((dir / "plain").string()), std::string::npos) << st.ToString();
  AtomicFile g;
  EXPECT_EQ(g.Open(dir / "x", 10).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(g.Append("x").code(), Status::Code::kInternal);  // never opened
  AtomicFile h;
  ASSERT_TRUE(h.Open(dir / "twice").ok());
  EXPECT_EQ(h.Open(dir / "twice").code(), Status::Code::kInvalidArgument);
}

TEST(WriteFileAtomic, CreatesParentsAndGzips) {
  const fs::path path = ScratchDir() / "a" / "b" / "c.txt.gz";
  ASSERT_TRUE(WriteFileAtomic(path, "hello\n", /*gzip=*/true).ok());
  EXPECT_EQ(ReadFile(path).value(), "hello\n");
  EXPECT_EQ(ReadFileRaw(path).value().substr(0, 2), "\x1f\x8b");
}

TEST(FsyncPath, FilesAndDirectories) {
  const fs::path dir = ScratchDir() / "sync";
  ASSERT_TRUE(WriteFileAtomic(dir / "f", "x").ok());
  EXPECT_TRUE(FsyncPath(dir / "f").ok());
  EXPECT_TRUE(FsyncPath(dir).ok());
  Status st = FsyncPath(dir / "missing");
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_NE(st.message().find((dir / "missing").string()), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace vitrine
