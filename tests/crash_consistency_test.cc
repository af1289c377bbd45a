// Crash consistency (issue 13, docs/reliability.md): the real `vitrine`
// binary runs `build`, `items add` and `compact` on a small bundle and is
// killed with SIGKILL at random points (fixed seed, delays drawn across the
// command's measured runtime). After every kill the bundle directory must be
// exactly the old bundle (same manifest, every checksum good) or a complete
// new one, and pass `vitrine inspect --load`. Never torn, never missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/array_io.h"
#include "core/file_util.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

namespace vitrine {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// Kills per command. Fewer under sanitizers, whose binary is several times
// slower (the delays scale with it; only the run count is cut).
#if defined(__SANITIZE_ADDRESS__)
constexpr int kKillsPerCommand = 8;
#else
constexpr int kKillsPerCommand = 20;
#endif

// Runs vitrine with `args` (output to `log`). With kill_after_s >= 0 it is
// sent SIGKILL after that many seconds unless it ended first. Returns the
// exit code, or -SIGKILL when it was killed.
int RunVitrine(const std::vector<std::string>& args, const fs::path& log,
               double kill_after_s = -1) {
  std::vector<std::string> argv_s{VITRINE_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  int st = 0;
  if (kill_after_s >= 0) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(kill_after_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    kill(pid, SIGKILL);
  }
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string Slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Replaces directory `to` with a copy of `from`. Its siblings stay: the
// temporaries of killed runs must be cleaned up by the next run.
void Restore(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::create_directories(to.parent_path());
  fs::copy(from, to, fs::copy_options::recursive);
}

// Names in `dir`.
std::vector<std::string> Entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// One command under test: how to run it on `bundle` and how to recognise
// the bundle it writes.
struct Command {
  std::string name;
  std::function<std::vector<std::string>(const fs::path& bundle)> args;
  std::function<bool(const json& manifest)> is_new;
};

class CrashConsistency : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = ScratchDir() / "crash";
    fs::create_directories(root_);
    const fs::path data = root_ / "data";
    const fs::path log = root_ / "setup.log";
    // Enough users (100) for the build to train its ranker, which writes a
    // validation bundle of its own beside the output.
    ASSERT_EQ(RunVitrine({"generate", "-q", "--items", "300", "--users", "100", "--seed", "9",
                          "--out", data.string()},
                         log),
              0)
        << Slurp(log);
    // Precomputed visual vectors keep each run short (images would spend
    // most of it in the visual encoder), and five new items for `items add`:
    // catalog rows under new ids, and their vectors.
    ASSERT_TRUE(WriteNpy(root_ / "visual.npy", Gaussian(300, 16, 1)).ok());
    ASSERT_TRUE(WriteNpy(root_ / "new_visual.npy", Gaussian(5, 16, 2)).ok());
    std::ifstream in(data / "items.csv");
    std::string header, line;
    std::getline(in, header);
    std::ofstream out(root_ / "new.csv");
    out << header << "\n";
    for (int i = 0; i < 5 && std::getline(in, line); ++i) {
      out << "NEW" << i << line.substr(line.find(',')) << "\n";
    }
    out.close();

    // The old bundles: one as built, one with 20 items removed for compact.
    ASSERT_EQ(RunVitrine(BuildArgs(root_ / "built", "8"), log), 0) << Slurp(log);
    Restore(root_ / "built", root_ / "removed_tmp" / "b");
    std::string ids;
    for (int i = 10; i < 30; ++i)
      ids += (ids.empty() ? "I" : ",I") + std::string(6 - std::to_string(i).size(), '0') +
             std::to_string(i);
    ASSERT_EQ(RunVitrine({"items", "remove", "-q", "--bundle",
                          (root_ / "removed_tmp" / "b").string(), "--ids", ids},
                         log),
              0)
        << Slurp(log);
    fs::rename(root_ / "removed_tmp" / "b", root_ / "removed");
  }

  static std::vector<std::string> BuildArgs(const fs::path& out, const std::string& factors) {
    const fs::path data = root_ / "data";
    return {"build",          "-q",
            "--items",        (data / "items.csv").string(),
            "--interactions", (data / "interactions.csv").string(),
            "--visual",       (root_ / "visual.npy").string(),
            "--factors",      factors,
            "--iterations",   "4",
            "--index",        "HNSW16",
            "--out",          out.string()};
  }

  static json Manifest(const fs::path& bundle) {
    return json::parse(Slurp(bundle / "manifest.json"), nullptr, false);
  }

  // Kills `cmd` on copies of `old` and checks every outcome.
  void KillRepeatedly(const Command& cmd, const fs::path& old, uint32_t seed) {
    const fs::path work = root_ / ("work_" + std::to_string(seed));
    const fs::path bundle = work / "bundle";
    const fs::path log = root_ / ("run_" + std::to_string(seed) + ".log");
    const std::string old_manifest = Slurp(old / "manifest.json");

    // A full run: the command works here, writes what is_new recognises,
    // and how long it takes bounds the kill delays.
    Restore(old, bundle);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(RunVitrine(cmd.args(bundle), log), 0) << cmd.name << ": " << Slurp(log);
    const double runtime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(cmd.is_new(Manifest(bundle))) << cmd.name << ": the full run's bundle";

    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> delay(0.0, runtime);
    int olds = 0, news = 0;
    for (int k = 0; k < kKillsPerCommand; ++k) {
      Restore(old, bundle);
      const double d = delay(rng);
      const int rc = RunVitrine(cmd.args(bundle), log, d);
      SCOPED_TRACE(cmd.name + ": kill " + std::to_string(k) + " after " + std::to_string(d) +
                   " s (exit " + std::to_string(rc) + ")");
      ASSERT_TRUE(rc == 0 || rc == -SIGKILL) << Slurp(log);
      ASSERT_TRUE(fs::is_directory(bundle)) << "the bundle directory is gone";
      const fs::path inspect_log = root_ / "inspect.log";
      ASSERT_EQ(RunVitrine({"inspect", "-q", "--load", "--bundle", bundle.string()}, inspect_log),
                0)
          << Slurp(inspect_log);
      if (Slurp(bundle / "manifest.json") == old_manifest) {
        ++olds;
      } else {
        ASSERT_TRUE(cmd.is_new(Manifest(bundle))) << "neither the old bundle nor the new one";
        ++news;
      }
    }
    std::printf("%s: %d kills over %.2f s runs: %d left the old bundle, %d the new one\n",
                cmd.name.c_str(), kKillsPerCommand, runtime, olds, news);

    // The killed runs' temporaries (staging directories, a swapped-out old
    // bundle, the ranker's validation bundle) are gone after the next run.
    Restore(old, bundle);
    ASSERT_EQ(RunVitrine(cmd.args(bundle), log), 0) << cmd.name << ": " << Slurp(log);
    EXPECT_EQ(Entries(work), std::vector<std::string>{"bundle"});
  }

  static fs::path root_;
};
fs::path CrashConsistency::root_;

TEST_F(CrashConsistency, Build) {
  Command c{"build", [](const fs::path& b) { return BuildArgs(b, "12"); },
            [](const json& m) { return m["params"]["factors"] == 12; }};
  KillRepeatedly(c, root_ / "built", 101);
}

TEST_F(CrashConsistency, ItemsAdd) {
  const int64_t before = Manifest(root_ / "built")["counts"]["items"].get<int64_t>();
  Command c{"items add",
            [](const fs::path& b) {
              return std::vector<std::string>{"items",
                                              "add",
                                              "-q",
                                              "--bundle",
                                              b.string(),
                                              "--items",
                                              (root_ / "new.csv").string(),
                                              "--visual",
                                              (root_ / "new_visual.npy").string()};
            },
            [before](const json& m) { return m["counts"]["items"] == before + 5; }};
  KillRepeatedly(c, root_ / "built", 202);
}

TEST_F(CrashConsistency, Compact) {
  const int64_t before = Manifest(root_ / "removed")["counts"]["items"].get<int64_t>();
  Command c{"compact",
            [](const fs::path& b) {
              return std::vector<std::string>{"compact", "-q", "--force", "--bundle", b.string()};
            },
            [before](const json& m) { return m["counts"]["items"] == before - 20; }};
  KillRepeatedly(c, root_ / "removed", 303);
}

}  // namespace
}  // namespace vitrine
