// `vitrine serve --config` and `--print-config` (cli/serve_config.h), on the
// real binary: flags and a file give the same settings (a round trip through
// --print-config), the command line wins over the file, bad files are
// refused naming file:line:column, and a server started from a file serves
// with its settings.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/config_file.h"
#include "tests/serve_test_util.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
using testing::MakeTestBundle;
using testing::RunVitrine;
using testing::ServeProcess;
using testing::Slurp;

class ServeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("serve_config_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // stdout of `vitrine serve ARGS --print-config`; fails the test on a non-zero exit.
  std::string PrintConfig(const std::string& args) {
    const int rc = RunVitrine("serve " + args + " --print-config", dir_);
    EXPECT_EQ(rc, 0) << Slurp(dir_ / "cmd.err");
    return Slurp(dir_ / "cmd.out");
  }
  fs::path dir_;
};

TEST_F(ServeConfigTest, FlagsAndTheFileTheyPrintAreTheSameSettings) {
  const std::string flags =
      "--bundle '/srv/b u\"ndle' --host 0.0.0.0 --port 9000 --threads 3 --fsync interval:200ms "
      "--events view=1,cart=3 --session-users 77 --max-k 50 --max-body 4096 --verify "
      "--access-log '/var/log/a b.jsonl' --drain-seconds 2.5 --access-log-max-mb 9";
  const std::string printed = PrintConfig(flags);
  EXPECT_NE(printed.find("port = 9000"), std::string::npos) << printed;
  EXPECT_NE(printed.find("verify = true"), std::string::npos) << printed;
  EXPECT_NE(printed.find("drain-seconds = 2.5"), std::string::npos) << printed;
  std::ofstream(dir_ / "serve.toml") << printed;
  EXPECT_EQ(PrintConfig("--config '" + (dir_ / "serve.toml").string() + "'"), printed);
  // Defaults print too, so a file from defaults reproduces them.
  const std::string defaults = PrintConfig("--bundle b");
  EXPECT_NE(defaults.find("threads = 8"), std::string::npos) << defaults;
  EXPECT_NE(defaults.find("verify = false"), std::string::npos) << defaults;
}

TEST_F(ServeConfigTest, TheCommandLineWinsOverTheFile) {
  std::ofstream(dir_ / "serve.toml") << "bundle = \"b\"\nport = 9000\nverify = true\n";
  const std::string printed =
      PrintConfig("--config '" + (dir_ / "serve.toml").string() + "' --port 9100");
  EXPECT_NE(printed.find("port = 9100"), std::string::npos) << printed;
  EXPECT_NE(printed.find("verify = true"), std::string::npos) << printed;
}

TEST_F(ServeConfigTest, BadFilesAreRefusedNamingTheLine) {
  struct Case {
    std::string text, needle;
  };
  const std::vector<Case> cases = {
      {"bundle = \"b\"\nprot = 80\n", "serve.toml:2:8: unknown key 'prot'"},
      {"bundle = \"b\"\nport = \"80\"\n", "serve.toml:2:8: 'port' must be an integer"},
      {"bundle = \"b\"\nverify = 1\n", "'verify' must be true or false"},
      {"bundle = \"b\"\ndrain-seconds = nan\n", "'drain-seconds' must be a number"},
      {"bundle = \"b\"\n[server]\nport = 1\n", "unknown key 'server'"},
      {"config = \"other.toml\"\n", "unknown key 'config'"},
      {"bundle = \n", "serve.toml:1:"},
      {"bundle = \"" + std::string(100000, 'x') + "\"\n", "'bundle' is 100000 bytes long"},
      {"a" + [] { std::string k; for (int i = 0; i < 100000; ++i) k += ".a"; return k; }() +
           " = 1\n",
       "serve.toml:1: more than 1000 dots"},
  };
  for (const Case& c : cases) {
    std::ofstream(dir_ / "serve.toml", std::ios::trunc) << c.text;
    EXPECT_EQ(RunVitrine("serve --config '" + (dir_ / "serve.toml").string() + "'", dir_), 2)
        << c.text;
    const std::string err = Slurp(dir_ / "cmd.err");
    EXPECT_NE(err.find(c.needle), std::string::npos) << c.text << " -> " << err;
  }
  {
    std::ofstream big(dir_ / "serve.toml", std::ios::trunc);
    big << "# " << std::string(kMaxConfigBytes, 'x') << "\n";
  }
  EXPECT_EQ(RunVitrine("serve --config '" + (dir_ / "serve.toml").string() + "'", dir_), 2);
  EXPECT_NE(Slurp(dir_ / "cmd.err").find("a serve config holds at most 1048576"), std::string::npos)
      << Slurp(dir_ / "cmd.err");
  EXPECT_EQ(RunVitrine("serve --config '" + (dir_ / "missing.toml").string() + "'", dir_), 2);
  EXPECT_NE(Slurp(dir_ / "cmd.err").find("missing.toml"), std::string::npos);
}

TEST_F(ServeConfigTest, AServerStartedFromAFileUsesItsSettings) {
  const fs::path data = MakeTestBundle("serve_config_run");
  std::ofstream(dir_ / "serve.toml") << "bundle = \"" << (data / "bundle").string()
                                     << "\"\nport = 0\nevent-log = \"none\"\nmax-k = 7\n";
  ServeProcess server({"--config", (dir_ / "serve.toml").string(), "--drain-seconds", "0"});
  ASSERT_GT(server.port(), 0);
  httplib::Client c("127.0.0.1", server.port());
  const std::string item = Slurp(data / "bundle" / "item_ids.txt").substr(0, 7);
  auto ok = c.Get(("/similar/" + item + "?k=7").c_str());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto over = c.Get(("/similar/" + item + "?k=8").c_str());
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 400) << "max-k = 7 from the file: " << over->body;
  const int status = server.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  fs::remove_all(data);
}

}  // namespace
}  // namespace vitrine
