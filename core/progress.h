// Progress and timing lines on stderr for long work. Quiet when stderr is not
// a terminal unless forced, so logs stay readable: every stage still prints
// one "done" line with its wall time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vitrine {

// Set once at start-up by the CLI (--quiet).
void SetQuiet(bool quiet);
bool Quiet();

// printf-style line to stderr, prefixed "[vitrine] ", unless quiet.
void LogInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// "0:42", "12:05", "3:02:11": a duration for progress lines.
std::string FormatDuration(double seconds);

// Seconds of wall time since `t0`.
inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Times a stage: prints "[vitrine] <name>: done in 1.23 s" when Done() is
// called (or on destruction). Update() shows, at most 5 times a second and
// only on a terminal, "n / total (p%), rate/s, ETA m:ss" (the rate and ETA
// from the average so far), or "n, rate/s" without a total.
class StageTimer {
 public:
  explicit StageTimer(std::string name, int64_t total = 0);
  ~StageTimer();
  void Update(int64_t done);
  // For work whose size is known only once it has started.
  void SetTotal(int64_t total) { total_ = total; }
  double Seconds() const;
  void Done(const std::string& detail = "");

 private:
  std::string name_;
  int64_t total_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  bool done_ = false;
  bool tty_;
};

}  // namespace vitrine
