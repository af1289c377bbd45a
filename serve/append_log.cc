#include "serve/append_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

std::string HeaderList(const std::vector<std::string_view>& headers) {
  std::string out;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i > 0) out += i + 1 == headers.size() ? " or " : ", ";
    out += "'" + std::string(headers[i]) + "'";
  }
  return out;
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

void AppendCsvField(std::string_view f, std::string* out) {
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

Result<std::unique_ptr<AppendLog>> AppendLog::Open(const fs::path& path,
                                                   std::vector<std::string_view> headers,
                                                   std::string_view what, FsyncPolicy policy,
                                                   std::chrono::milliseconds interval) {
  if (headers.empty()) return Status::InvalidArgument("AppendLog::Open: no header");
  std::unique_ptr<AppendLog> log(new AppendLog());
  log->path_ = path;
  log->policy_ = policy;
  log->interval_ = interval;
  const std::string cannot_open = "cannot open " + std::string(what);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(path, cannot_open.c_str());
  log->fd_ = fd;  // closed by the destructor from here on
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno(path, "stat");
  int64_t size = st.st_size;

  if (size == 0) {
    const std::string header = std::string(headers[0]) + "\n";
    if (!WriteAll(fd, header.data(), header.size()) || ::fdatasync(fd) != 0) {
      return Errno(path, "cannot write header");
    }
    // Make the new file's directory entry durable too.
    VITRINE_RETURN_IF_ERROR(FsyncPath(path.has_parent_path() ? path.parent_path() : fs::path(".")));
    size = static_cast<int64_t>(header.size());
  } else {
    // The first line, up to the longest header and its line end.
    size_t longest = 0;
    for (const auto h : headers) longest = std::max(longest, h.size());
    std::string head(longest + 2, '\0');
    const ssize_t n = ::pread(fd, head.data(), head.size(), 0);
    if (n < 0) return Errno(path, "read");
    head.resize(static_cast<size_t>(n));
    const size_t eol = head.find('\n');
    std::string first = head.substr(0, eol == std::string::npos ? head.size() : eol);
    if (!first.empty() && first.back() == '\r') first.pop_back();
    const auto found = std::find(headers.begin(), headers.end(), first);
    if (found == headers.end()) {
      return Status::Corruption(path.string() + ":1: expected the header " + HeaderList(headers) +
                                "; not a vitrine " + std::string(what) + ", refusing to append");
    }
    log->header_index_ = static_cast<size_t>(found - headers.begin());
    if (eol == std::string::npos) {
      // The whole file is the header without its line end (written by
      // hand, say): end the line, or the first record would join it.
      if (!WriteAll(fd, "\n", 1) || ::fdatasync(fd) != 0) {
        return Errno(path, "cannot end the header line");
      }
      ++size;
    }
    // Cut a torn tail: find the last '\n', reading backwards in blocks.
    int64_t end = size;
    char block[4096];
    bool found_eol = false;
    while (end > 0 && !found_eol) {
      const int64_t start = std::max<int64_t>(0, end - static_cast<int64_t>(sizeof block));
      const ssize_t r = ::pread(fd, block, static_cast<size_t>(end - start), start);
      if (r != end - start) return Errno(path, "read");
      for (int64_t i = end - start - 1; i >= 0; --i) {
        if (block[i] == '\n') {
          end = start + i + 1;
          found_eol = true;
          break;
        }
      }
      if (!found_eol) end = start;
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

AppendLog::~AppendLog() {
  if (fd_ >= 0) {
    ::fdatasync(fd_);
    ::close(fd_);
  }
}

Status AppendLog::Append(std::string_view lines) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return Status::IOError(path_.string() + ": the log is not open");
  if (!WriteAll(fd_, lines.data(), lines.size())) {
    Status st = Errno(path_, "append failed");
    // Roll back a partial write so the next append starts on a fresh line.
    if (::ftruncate(fd_, size_) != 0) {
      return st.WithContext("and the rollback failed too; the log's last line may be torn");
    }
    return st;
  }
  size_ += static_cast<int64_t>(lines.size());
  const auto now = std::chrono::steady_clock::now();
  const bool sync = policy_ == FsyncPolicy::kAlways ||
                    (policy_ == FsyncPolicy::kInterval && now - last_sync_ >= interval_);
  if (sync) {
    if (::fdatasync(fd_) != 0) return Errno(path_, "fdatasync");
    last_sync_ = now;
  }
  return Status::OK();
}

Result<int64_t> AppendLog::RemoveUsers(const std::set<std::string>& users) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) return Errno(path_, "fdatasync");
  VITRINE_ASSIGN_OR_RETURN(int64_t removed, ForgetInCsv(path_, users));
  if (removed == 0) return removed;
  // path_ names a new file now (an atomic rename): append to it. If it
  // cannot be opened, later appends fail (and say so) rather than go to the
  // unlinked old file.
  const int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  if (fd < 0) return Errno(path_, "cannot reopen the log after forgetting");
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno(path_, "stat");
  size_ = st.st_size;
  return removed;
}

Status AppendLog::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return Status::IOError(path_.string() + ": the log is not open");
  if (::fdatasync(fd_) != 0) return Errno(path_, "fdatasync");
  last_sync_ = std::chrono::steady_clock::now();
  return Status::OK();
}

}  // namespace vitrine
