// Shared by the serve_*_test.cc files: a tiny bundle built with the real
// `vitrine` binary, an in-process Server on an ephemeral loopback port, a
// child `vitrine serve` process, and a child `redis-server` on loopback.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "serve/server.h"
#include "tests/test_util.h"

namespace vitrine::testing {

namespace fs = std::filesystem;

using ::vitrine::Slurp;

inline int RunVitrine(const std::string& args, const fs::path& dir) {
  const std::string cmd = std::string("'") + VITRINE_BINARY + "' " + args + " >'" +
                          (dir / "cmd.out").string() + "' 2>'" + (dir / "cmd.err").string() + "'";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A fresh temp dir whose `bundle` links to a bundle built once per `vitrine`
// binary into the build tree as `cache_name` (under a file lock, for ctest
// -j: ctest runs every test case in its own process): `vitrine generate
// --items 300 --users 200 --seed 7 <generate_flags>`, then `vitrine build`
// with fixed seeds, `config` as build.toml and `build_flags`. The
// generator's files are in `<cache>/data` (symlinked as `data`).
inline fs::path CachedTestBundle(const std::string& name, const std::string& cache_name,
                                 const std::string& generate_flags,
                                 const std::string& build_flags, const std::string& config) {
  const fs::path dir =
      fs::temp_directory_path() / ("vitrine_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path cache = fs::path(VITRINE_BINARY).parent_path() / cache_name;
  const fs::path stamp = cache / "built_by_binary_mtime";
  // The stamp holds what the bundle depends on besides the fixed flags:
  // the binary's mtime, the flags and the build config.
  const std::string binary_time =
      std::to_string(fs::last_write_time(VITRINE_BINARY).time_since_epoch().count()) + "\n" +
      generate_flags + "\n" + build_flags + "\n" + config;
  const int lock = ::open((cache.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  if (!fs::exists(stamp) || Slurp(stamp) != binary_time) {
    fs::remove_all(cache);
    fs::create_directories(cache);
    if (RunVitrine("generate --items 300 --users 200 --seed 7 " + generate_flags + " --out '" +
                       (cache / "data").string() + "'",
                   dir) != 0) {
      ADD_FAILURE() << "vitrine generate failed: " << Slurp(dir / "cmd.err");
    } else if (!(std::ofstream(cache / "build.toml") << config)) {
      ADD_FAILURE() << "cannot write " << (cache / "build.toml");
    } else if (RunVitrine("build --config '" + (cache / "build.toml").string() + "' --items '" +
                              (cache / "data/items.csv").string() + "' --interactions '" +
                              (cache / "data/interactions.csv").string() + "' --images '" +
                              (cache / "data/images.idx.gz").string() +
                              "' --factors 16 --iterations 4 --seed 7 --threads 1 " +
                              build_flags + " --out '" + (cache / "bundle").string() + "'",
                          dir) != 0) {
      ADD_FAILURE() << "vitrine build failed: " << Slurp(dir / "cmd.err");
    } else {
      std::ofstream(stamp) << binary_time;
    }
  }
  if (lock >= 0) ::close(lock);  // releases the flock
  fs::create_directory_symlink(cache / "bundle", dir / "bundle");
  fs::create_directory_symlink(cache / "data", dir / "data");
  return dir;
}

// The tiny bundle most tests share (300 items, 200 users, fixed seeds, the
// learned ranker forced as the scorer so that every build flavour,
// sanitized or not, answers the same way).
inline fs::path MakeTestBundle(const std::string& name) {
  return CachedTestBundle(name, "serve_test_bundle", "", "", "[ranker]\nscorer = \"ranker\"\n");
}

// A Server running on its own thread on 127.0.0.1:<ephemeral>.
class TestServer {
 public:
  explicit TestServer(ServerOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    auto s = Server::Create(std::move(o));
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      return;
    }
    server_ = std::move(*s);
    auto port = server_->Bind();
    if (!port.ok()) {
      ADD_FAILURE() << port.status().ToString();
      server_.reset();
      return;
    }
    thread_ = std::thread([this] { EXPECT_TRUE(server_->Run().ok()); });
    EXPECT_TRUE(server_->WaitUntilRunning(std::chrono::seconds(10)));
  }
  ~TestServer() {
    if (!server_) return;
    server_->Stop();
    thread_.join();
  }
  Server* operator->() { return server_.get(); }
  Server& get() { return *server_; }
  bool ok() const { return server_ != nullptr; }
  int port() const { return server_->port(); }

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

// A child `vitrine serve ... --port 0` process; its port is read from the
// "listening on http://127.0.0.1:PORT" line it prints.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(VITRINE_BINARY));
      argv.push_back(const_cast<char*>("serve"));
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(VITRINE_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    // Read until the port line, for at most 30 s.
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const std::string marker = "listening on http://127.0.0.1:";
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[512];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;  // the child exited
      text.append(buf, static_cast<size_t>(n));
      const size_t at = text.find(marker);
      if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
        port_ = std::atoi(text.c_str() + at + marker.size());
        break;
      }
    }
    ::close(out[0]);  // the server's later stdout writes would get EPIPE; it writes none
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) Kill(SIGKILL);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends `sig` and waits (at most 20 s) for the exit; returns the raw wait status.
  int Kill(int sig) {
    ::kill(pid_, sig);
    int status = -1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  bool reaped_ = false;
};

// A loopback TCP port nothing listens on right now (the kernel's choice for
// port 0; another process could take it before it is used, which the
// callers' start-up checks would report).
inline int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// A real `redis-server` (Debian redis-server, installed by
// scripts/install-deps.sh) on 127.0.0.1:`port`, without persistence, in
// the foreground as this process's child. Start() waits until it accepts
// connections.
class RedisProcess {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";
  explicit RedisProcess(int port) : port_(port) {}
  ~RedisProcess() { Kill(SIGKILL); }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

  // True once the server answers on its port (at most 20 s).
  bool Start() {
    if (::access(kBinary, X_OK) != 0) {
      ADD_FAILURE() << kBinary << " not found: run scripts/install-deps.sh (Debian redis-server)";
      return false;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDOUT_FILENO);
      const std::string port = std::to_string(port_);
      ::execl(kBinary, kBinary, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(port_));
      const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (up) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "redis-server exited at start on port " << port_;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "redis-server did not listen on port " << port_ << " within 20 s";
    return false;
  }
  // Stops it with `sig` and reaps it.
  void Kill(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

}  // namespace vitrine::testing
