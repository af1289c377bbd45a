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

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e9) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

namespace {
// "950", "12.3k", "4.56M": a rate for progress lines.
std::string FormatRate(double per_second) {
  char buf[32];
  if (per_second >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", per_second / 1e6);
  } else if (per_second >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1fk", per_second / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", per_second);
  }
  return buf;
}
}  // namespace

void StageTimer::Update(int64_t done) {
  if (g_quiet || !tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double elapsed = Seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  if (total_ > 0) {
    const std::string eta =
        rate > 0 ? FormatDuration(static_cast<double>(total_ - done) / rate) : "?";
    std::fprintf(stderr, "\r\x1b[K[vitrine] %s: %lld / %lld (%.0f%%), %s/s, ETA %s",
                 name_.c_str(), static_cast<long long>(done), static_cast<long long>(total_),
                 100.0 * static_cast<double>(done) / static_cast<double>(total_),
                 FormatRate(rate).c_str(), eta.c_str());
  } else {
    std::fprintf(stderr, "\r\x1b[K[vitrine] %s: %lld, %s/s", name_.c_str(),
                 static_cast<long long>(done), FormatRate(rate).c_str());
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
