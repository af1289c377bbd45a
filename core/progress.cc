#include "core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace vitrine {
namespace {
std::atomic<bool> g_quiet{false};
}

void SetQuiet(bool quiet) { g_quiet = quiet; }
bool Quiet() { return g_quiet; }

void LogInfo(const char* fmt, ...) {
  if (g_quiet) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "[vitrine] %s\n", buf);
}

StageTimer::StageTimer(std::string name, int64_t total)
    : name_(std::move(name)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_(start_),
      tty_(isatty(STDERR_FILENO) != 0) {}

StageTimer::~StageTimer() {
  if (!done_) Done();
}

double StageTimer::Seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void StageTimer::Update(int64_t done) {
  if (g_quiet || !tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  if (total_ > 0) {
    std::fprintf(stderr, "\r[vitrine] %s: %lld / %lld (%.0f%%)", name_.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_),
                 100.0 * static_cast<double>(done) / static_cast<double>(total_));
  } else {
    std::fprintf(stderr, "\r[vitrine] %s: %lld", name_.c_str(), static_cast<long long>(done));
  }
  std::fflush(stderr);
}

void StageTimer::Done(const std::string& detail) {
  if (done_) return;
  done_ = true;
  if (g_quiet) return;
  std::fprintf(stderr, "%s[vitrine] %s: done in %.2f s%s%s\n", tty_ ? "\r\x1b[K" : "",
               name_.c_str(), Seconds(), detail.empty() ? "" : ", ", detail.c_str());
}

}  // namespace vitrine
