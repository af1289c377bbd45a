// AccessLog: one JSON line per answered request, to a file or stderr, for
// log shippers. A file is rotated by size: past `max_bytes` it is renamed
// to "<file>.1" (replacing the previous one) and a new file is started, so
// the log never takes more than about twice `max_bytes`.
//
//   {"time":"2026-12-06T14:31:07.412Z","request_id":"5f2a9c1e-000017",
//    "method":"GET","endpoint":"similar","status":200,"latency_ms":0.84,
//    "k":10,"generation":1,"variant":"control"}
//
// No user ids are written: request bodies are not logged, and a path holds
// at most an item id. `k` and `generation` are present when the request got
// that far, `variant` when an experiment assigned the user one.
//
// Lines are buffered and flushed by a background thread every
// `kFlushInterval` (and on rotation and close), not one write(2) per request
// under the lock: a line reaches the file within that interval. A crash of
// the process can lose that last interval's lines; the event log, not this
// one, is the durable record.
//
// Thread safety: Write may be called from any thread; lines never interleave.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/status.h"

namespace vitrine {

struct AccessRecord {
  std::string request_id;
  std::string method;
  std::string endpoint;  // the route's name, or "other"
  int status = 0;
  std::optional<double> latency_ms;  // empty when refused before routing
  std::optional<int64_t> k;
  std::optional<int64_t> generation;
  std::optional<std::string> variant;  // the A/B variant that answered (serve/experiment.h)
};

class AccessLog {
 public:
  // "-" = stderr (never rotated); otherwise a file opened for appending.
  // max_bytes >= 4096.
  static Result<std::unique_ptr<AccessLog>> Open(const std::filesystem::path& path,
                                                 uint64_t max_bytes);
  ~AccessLog();

  // Appends one line. A failed write or rotation is reported once on the
  // server's stderr and never fails the request.
  void Write(const AccessRecord& r);

  static std::string Line(const AccessRecord& r);  // the JSON line, with its '\n'

  static constexpr std::chrono::milliseconds kFlushInterval{100};

 private:
  AccessLog() = default;
  void Rotate();
  void FlushLoop();
  void FlushLocked();  // with mu_ held

  std::mutex mu_;
  std::filesystem::path path_;
  FILE* file_ = nullptr;
  bool is_stderr_ = false;
  uint64_t max_bytes_ = 0;
  uint64_t bytes_ = 0;
  bool reported_error_ = false;
  bool dirty_ = false;  // lines written since the last flush
  bool stop_ = false;
  std::condition_variable stop_cv_;
  std::thread flusher_;
};

}  // namespace vitrine
