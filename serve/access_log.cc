#include "serve/access_log.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "core/progress.h"

namespace vitrine {
namespace {

// "2026-12-06T14:31:07.412Z": UTC with milliseconds.
std::string NowIso() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms.count() % 1000));
  return buf;
}

}  // namespace

Result<std::unique_ptr<AccessLog>> AccessLog::Open(const std::filesystem::path& path,
                                                   uint64_t max_bytes) {
  if (max_bytes < 4096) {
    return Status::InvalidArgument("access log: the rotation size must be at least 4096 bytes");
  }
  std::unique_ptr<AccessLog> log(new AccessLog());
  log->path_ = path;
  log->max_bytes_ = max_bytes;
  if (path == "-") {
    log->file_ = stderr;
    log->is_stderr_ = true;
  } else {
    log->file_ = std::fopen(path.c_str(), "ae");
    if (log->file_ == nullptr) {
      return Status::IOError(path.string() + ": cannot open the access log for appending: " +
                             std::strerror(errno));
    }
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    log->bytes_ = ec ? 0 : size;
  }
  log->flusher_ = std::thread([l = log.get()] { l->FlushLoop(); });
  return log;
}

AccessLog::~AccessLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard<std::mutex> lock(mu_);
  FlushLocked();
  if (file_ != nullptr && !is_stderr_) std::fclose(file_);
}

void AccessLog::FlushLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, kFlushInterval, [this] { return stop_; })) FlushLocked();
}

void AccessLog::FlushLocked() {
  if (!dirty_ || file_ == nullptr) return;
  dirty_ = false;
  if (std::fflush(file_) != 0 && !reported_error_) {
    reported_error_ = true;
    LogInfo("access log %s: write failed: %s", path_.c_str(), std::strerror(errno));
  }
}

std::string AccessLog::Line(const AccessRecord& r) {
  nlohmann::json j;
  j["time"] = NowIso();
  j["request_id"] = r.request_id;
  j["method"] = r.method;
  j["endpoint"] = r.endpoint;
  j["status"] = r.status;
  if (r.latency_ms) j["latency_ms"] = std::round(*r.latency_ms * 1000) / 1000;
  if (r.k) j["k"] = *r.k;
  if (r.generation) j["generation"] = *r.generation;
  if (r.variant) j["variant"] = *r.variant;
  // Invalid UTF-8 (a method httplib accepted) is replaced, never thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void AccessLog::Rotate() {
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::path old = path_;
  old += ".1";
  std::filesystem::rename(path_, old, ec);
  file_ = std::fopen(path_.c_str(), "ae");
  bytes_ = 0;
  if ((ec || file_ == nullptr) && !reported_error_) {
    reported_error_ = true;
    LogInfo("access log %s: rotation failed (%s); access logging %s", path_.c_str(),
            ec ? ec.message().c_str() : std::strerror(errno),
            file_ == nullptr ? "stopped" : "continues in the same file");
  }
}

void AccessLog::Write(const AccessRecord& r) {
  const std::string line = Line(r);
  std::lock_guard<std::mutex> lock(mu_);
  if (!is_stderr_ && file_ != nullptr && bytes_ > 0 && bytes_ + line.size() > max_bytes_) Rotate();
  if (file_ == nullptr) return;
  dirty_ = true;
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) {
    if (!reported_error_) {
      reported_error_ = true;
      LogInfo("access log %s: write failed: %s", path_.c_str(), std::strerror(errno));
    }
    return;
  }
  bytes_ += line.size();
}

}  // namespace vitrine
