#include "serve/event_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/file_util.h"
#include "core/progress.h"
#include "engine/forget.h"

namespace vitrine {
namespace fs = std::filesystem;

namespace {

Status Errno(const fs::path& path, const char* what) {
  return Status::IOError(path.string() + ": " + what + ": " + std::strerror(errno));
}

void AppendField(std::string_view f, std::string* out) {
  if (f.find_first_of(",\"") == std::string_view::npos) {
    out->append(f);
    return;
  }
  out->push_back('"');
  for (char c : f) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

// Writes all of `data`, retrying short writes and EINTR.
bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

Status ParseFsyncPolicy(std::string_view spec, FsyncPolicy* policy,
                        std::chrono::milliseconds* interval) {
  if (spec == "always") {
    *policy = FsyncPolicy::kAlways;
  } else if (spec == "never") {
    *policy = FsyncPolicy::kNever;
  } else if (spec == "interval" || spec.starts_with("interval:")) {
    *policy = FsyncPolicy::kInterval;
    if (spec.size() > 9) {
      std::string v(spec.substr(9));
      int scale = 1000;
      if (v.ends_with("ms")) {
        scale = 1, v.resize(v.size() - 2);
      } else if (v.ends_with("s")) {
        v.resize(v.size() - 1);
      }
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n <= 0) {
        return Status::InvalidArgument("fsync policy '" + std::string(spec) +
                                       "': expected interval:<N>ms or interval:<N>s with N > 0");
      }
      *interval = std::chrono::milliseconds(n * scale);
    }
  } else {
    return Status::InvalidArgument("fsync policy '" + std::string(spec) +
                                   "': expected always, interval[:<N>ms|s] or never");
  }
  return Status::OK();
}

std::string EventLog::FormatLine(const LoggedEvent& e, bool with_channel) {
  std::string line;
  AppendField(e.user, &line);
  line.push_back(',');
  AppendField(e.item, &line);
  line.push_back(',');
  AppendField(e.event, &line);
  line.push_back(',');
  line += std::to_string(e.timestamp);
  if (with_channel) {
    line.push_back(',');
    AppendField(e.channel, &line);
  }
  line.push_back('\n');
  return line;
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const fs::path& path, FsyncPolicy policy,
                                                 std::chrono::milliseconds interval) {
  std::unique_ptr<EventLog> log(new EventLog());
  log->path_ = path;
  log->policy_ = policy;
  log->interval_ = interval;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(path, "cannot open event log");
  log->fd_ = fd;  // closed by the destructor from here on
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno(path, "stat");
  int64_t size = st.st_size;

  if (size == 0) {
    const std::string header = std::string(kEventLogHeader) + "\n";
    if (!WriteAll(fd, header.data(), header.size()) || ::fdatasync(fd) != 0) {
      return Errno(path, "cannot write header");
    }
    // Make the new file's directory entry durable too.
    VITRINE_RETURN_IF_ERROR(FsyncPath(path.has_parent_path() ? path.parent_path() : fs::path(".")));
    size = static_cast<int64_t>(header.size());
  } else {
    // The first line, up to the longer header and its line end.
    std::string head(kEventLogHeader.size() + 2, '\0');
    const ssize_t n = ::pread(fd, head.data(), head.size(), 0);
    if (n < 0) return Errno(path, "read");
    head.resize(static_cast<size_t>(n));
    const size_t eol = head.find('\n');
    std::string first = head.substr(0, eol == std::string::npos ? head.size() : eol);
    if (!first.empty() && first.back() == '\r') first.pop_back();
    if (first != kEventLogHeader && first != kEventLogHeaderWithoutChannel) {
      return Status::Corruption(path.string() + ":1: expected the header '" +
                                std::string(kEventLogHeader) + "' (or, in a log from before "
                                "channels, '" + std::string(kEventLogHeaderWithoutChannel) +
                                "'); not a vitrine event log, refusing to append");
    }
    log->has_channel_ = first == kEventLogHeader;
    if (eol == std::string::npos) {
      // The whole file is the header without its line end (written by
      // hand, say): end the line, or the first event would join it.
      if (!WriteAll(fd, "\n", 1) || ::fdatasync(fd) != 0) {
        return Errno(path, "cannot end the header line");
      }
      ++size;
    }
    // Cut a torn tail: find the last '\n', reading backwards in blocks.
    int64_t end = size;
    char block[4096];
    bool found = false;
    while (end > 0 && !found) {
      const int64_t start = std::max<int64_t>(0, end - static_cast<int64_t>(sizeof block));
      const ssize_t r = ::pread(fd, block, static_cast<size_t>(end - start), start);
      if (r != end - start) return Errno(path, "read");
      for (int64_t i = end - start - 1; i >= 0; --i) {
        if (block[i] == '\n') {
          end = start + i + 1;
          found = true;
          break;
        }
      }
      if (!found) end = start;
    }
    if (end < size) {
      // The header line itself has a '\n' (checked above), so end > 0.
      if (::ftruncate(fd, end) != 0 || ::fdatasync(fd) != 0) {
        return Errno(path, "cannot cut the torn last line");
      }
      log->recovered_bytes_ = size - end;
      LogInfo("%s: cut a torn last line (%lld bytes, never acknowledged)", path.c_str(),
              static_cast<long long>(size - end));
      size = end;
    }
  }
  log->size_ = size;
  log->last_sync_ = std::chrono::steady_clock::now();
  return log;
}

EventLog::~EventLog() {
  if (fd_ >= 0) {
    ::fdatasync(fd_);
    ::close(fd_);
  }
}

Status EventLog::Append(std::span<const LoggedEvent> events) {
  std::string buf;
  for (const LoggedEvent& e : events) {
    if (!has_channel_ && !e.channel.empty()) {
      return Status::InvalidArgument(path_.string() +
                                     ": the log has no channel column (it was started before "
                                     "channels); an event with a channel cannot be logged");
    }
    buf += FormatLine(e, has_channel_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!WriteAll(fd_, buf.data(), buf.size())) {
    Status st = Errno(path_, "append failed");
    // Roll back a partial write so the next batch starts on a fresh line.
    if (::ftruncate(fd_, size_) != 0) {
      return st.WithContext("and the rollback failed too; the log's last line may be torn");
    }
    return st;
  }
  size_ += static_cast<int64_t>(buf.size());
  appended_ += static_cast<int64_t>(events.size());
  const auto now = std::chrono::steady_clock::now();
  const bool sync = policy_ == FsyncPolicy::kAlways ||
                    (policy_ == FsyncPolicy::kInterval && now - last_sync_ >= interval_);
  if (sync) {
    if (::fdatasync(fd_) != 0) return Errno(path_, "fdatasync");
    last_sync_ = now;
  }
  return Status::OK();
}

Result<int64_t> EventLog::RemoveUsers(const std::set<std::string>& users) {
  std::lock_guard<std::mutex> lock(mu_);
  if (::fdatasync(fd_) != 0) return Errno(path_, "fdatasync");
  VITRINE_ASSIGN_OR_RETURN(int64_t removed, ForgetInCsv(path_, users));
  if (removed == 0) return removed;
  // path_ names a new file now (an atomic rename): append to it. If it
  // cannot be opened, later appends fail (and say so) rather than go to the
  // unlinked old file.
  const int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  ::close(fd_);
  fd_ = fd;
  if (fd < 0) return Errno(path_, "cannot reopen the event log after forgetting");
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno(path_, "stat");
  size_ = st.st_size;
  return removed;
}

Status EventLog::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (::fdatasync(fd_) != 0) return Errno(path_, "fdatasync");
  last_sync_ = std::chrono::steady_clock::now();
  return Status::OK();
}

int64_t EventLog::appended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return appended_;
}

}  // namespace vitrine
