#include "core/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unordered_set>

namespace vitrine {
namespace fs = std::filesystem;

namespace {
std::string Errno() { return std::strerror(errno); }

// Inflates `in` (one or more gzip members) into at most `max_out` bytes,
// refusing more as it streams: memory is the output so far, never a
// doubling past the limit. The trailer's ISIZE (output size mod 2^32) sizes
// the first buffer of an honest single-member file exactly; a lying one is
// clipped to what deflate can produce from `in` (at most 1032:1) and to what
// the ratio rule allows, so neither a forged trailer nor an honest bomb can
// make it allocate the limit up front.
Result<std::string> Gunzip(const fs::path& path, std::string_view in, uint64_t max_out) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Status::Internal("zlib init failed");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};
  const size_t limit = static_cast<size_t>(std::min<uint64_t>(max_out, SIZE_MAX / 2));
  uint64_t hint = 1 << 16;
  if (in.size() >= 18) {
    const auto* t = reinterpret_cast<const unsigned char*>(in.data() + in.size() - 4);
    hint = std::max<uint64_t>(hint, t[0] | t[1] << 8 | t[2] << 16 | uint64_t{t[3]} << 24);
  }
  hint = std::min<uint64_t>(hint, uint64_t{in.size()} * 1032 + (1 << 16));
  // The ratio rule: past kRatioFreeInflatedBytes, no more than
  // kMaxInflationRatio times the input. The buffer never grows past the
  // larger of the two, whatever the trailer says; a full buffer probes one
  // byte more, like the limit, and refuses if there is one.
  const uint64_t ratio_bytes = uint64_t{in.size()} * kMaxInflationRatio;
  const size_t grow_limit = static_cast<size_t>(
      std::min<uint64_t>(limit, std::max(kRatioFreeInflatedBytes, ratio_bytes)));
  std::string out(static_cast<size_t>(std::min<uint64_t>(hint, grow_limit)), '\0');
  size_t used = 0, fed = 0;
  int rc = Z_OK;
  while (true) {
    if (zs.avail_in == 0 && fed < in.size()) {  // zlib counts in uInt: feed slices
      const size_t n = std::min<size_t>(in.size() - fed, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + fed));
      zs.avail_in = static_cast<uInt>(n);
      fed += n;
    }
    if (used == out.size() && out.size() < grow_limit) {
      out.resize(std::min(std::max<size_t>(out.size() * 2, 1 << 16), grow_limit));
    }
    // At the limit, a one-byte probe tells "ends exactly here" from "more".
    char probe;
    const bool full = used == out.size();
    zs.next_out = reinterpret_cast<Bytef*>(full ? &probe : out.data() + used);
    zs.avail_out = full ? 1 : static_cast<uInt>(std::min<size_t>(out.size() - used, 1u << 30));
    const uInt room = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (full && zs.avail_out < room && out.size() < limit) {
      return Status::InvalidArgument(
          path.string() + ": gzip data of " + std::to_string(in.size()) + " bytes inflates past " +
          std::to_string(used) + " bytes, more than " + std::to_string(kMaxInflationRatio) +
          " times its size (a decompression bomb? the limit is in docs/reliability.md); "
          "refused before decompressing the rest");
    }
    if (full && zs.avail_out < room) {
      return Status::InvalidArgument(path.string() + ": gzip data inflates to more than " +
                                     std::to_string(limit) +
                                     " bytes (the decompression limit, docs/reliability.md); "
                                     "refused before decompressing the rest");
    }
    used += room - zs.avail_out;
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are legal; continue if input remains.
      if (zs.avail_in == 0 && fed == in.size()) break;
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && fed == in.size()) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
  }
  if (rc != Z_STREAM_END) {
    return Status::Corruption(path.string() + ": truncated or corrupt gzip data");
  }
  out.resize(used);
  return out;
}

// write(2) of all of `data`, retrying short writes and EINTR.
Status WriteAll(int fd, const char* data, size_t n, const fs::path& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(path.string() + ": write failed: " + Errno());
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

// Every fsync(2) in vitrine goes through here (the event log syncs its
// appends with fdatasync on its own descriptor).
Status FsyncFd(int fd, const fs::path& path, bool directory) {
  if (::fsync(fd) == 0) return Status::OK();
  const int err = errno;
  // Some filesystems refuse fsync on directories; the files in them are
  // synced regardless, so that is not worth failing a write over.
  if (directory && err == EINVAL) return Status::OK();
  return Status::IOError(path.string() + ": fsync failed: " + std::strerror(err));
}
}  // namespace

Result<std::string> ReadFileRaw(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) {
    return Status::InvalidArgument(path.string() + ": is a directory, expected a file");
  }
  // Opening a FIFO blocks until a writer comes (forever, for a stray one),
  // and a device never ends (/dev/zero): only regular files are read.
  if (!ec && fs::exists(st) && !fs::is_regular_file(st)) {
    return Status::InvalidArgument(path.string() +
                                   ": not a regular file (a pipe, a device or a socket), "
                                   "expected a file");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound(path.string() + ": cannot open: " + Errno());
  std::string data;
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  if (size < 0) return Status::IOError(path.string() + ": cannot determine size");
  data.resize(static_cast<size_t>(size));
  f.seekg(0);
  if (!f.read(data.data(), size)) return Status::IOError(path.string() + ": read failed");
  return data;
}

Result<std::string> ReadFile(const fs::path& path, uint64_t max_inflated_bytes) {
  VITRINE_ASSIGN_OR_RETURN(std::string data, ReadFileRaw(path));
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
      static_cast<unsigned char>(data[1]) == 0x8b) {
    return Gunzip(path, data, max_inflated_bytes);
  }
  return data;
}

fs::path TempSiblingPath(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  std::string name = ".";
  name += path.filename().string();
  name += ".tmp.";
  name += std::to_string(getpid());
  name += '.';
  name += std::to_string(counter++);
  return path.parent_path() / name;
}

// ---------------------------------------------------------------------------
// AtomicFile

struct AtomicFile::Impl {
  static constexpr size_t kBufferBytes = 1 << 20;

  fs::path path, tmp;
  int fd = -1;
  bool gzip = false;
  z_stream zs{};
  std::unique_ptr<char[]> out;  // bytes (or gzip output) not yet written
  size_t used = 0;
  Status error;  // the first failure; later calls return it
  bool finished = false, committed = false;

  ~Impl() {
    if (fd >= 0) ::close(fd);
    if (gzip) deflateEnd(&zs);
    if (!committed && !tmp.empty()) ::unlink(tmp.c_str());
  }

  Status Fail(Status st) {
    if (error.ok()) error = std::move(st);
    return error;
  }

  Status FlushBuffer() {
    if (used == 0) return Status::OK();
    Status st = WriteAll(fd, out.get(), used, path);
    used = 0;
    return st.ok() ? st : Fail(std::move(st));
  }

  Status AppendPlain(std::string_view in) {
    while (!in.empty()) {
      if (used == kBufferBytes) VITRINE_RETURN_IF_ERROR(FlushBuffer());
      if (used == 0 && in.size() >= kBufferBytes) {  // large pieces skip the copy
        Status st = WriteAll(fd, in.data(), in.size(), path);
        return st.ok() ? st : Fail(std::move(st));
      }
      const size_t n = std::min(in.size(), kBufferBytes - used);
      std::memcpy(out.get() + used, in.data(), n);
      used += n;
      in.remove_prefix(n);
    }
    return Status::OK();
  }

  // Feeds `in` to zlib; with Z_FINISH also ends the stream.
  Status Deflate(std::string_view in, int mode) {
    while (true) {
      // zlib counts input in uInt: feed huge pieces in slices.
      const size_t slice = std::min<size_t>(in.size(), 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      zs.avail_in = static_cast<uInt>(slice);
      const int flush = slice == in.size() ? mode : Z_NO_FLUSH;
      while (true) {
        if (used == kBufferBytes) VITRINE_RETURN_IF_ERROR(FlushBuffer());
        zs.next_out = reinterpret_cast<Bytef*>(out.get() + used);
        zs.avail_out = static_cast<uInt>(kBufferBytes - used);
        const int rc = deflate(&zs, flush);
        used = kBufferBytes - zs.avail_out;
        if (rc == Z_STREAM_ERROR) return Fail(Status::Internal(path.string() + ": zlib failed"));
        if (flush == Z_FINISH) {
          if (rc == Z_STREAM_END) break;
        } else if (zs.avail_in == 0 && zs.avail_out != 0) {
          break;
        }
      }
      in.remove_prefix(slice);
      if (in.empty()) return Status::OK();
    }
  }
};

AtomicFile::AtomicFile() = default;
AtomicFile::~AtomicFile() = default;
AtomicFile::AtomicFile(AtomicFile&&) noexcept = default;
AtomicFile& AtomicFile::operator=(AtomicFile&&) noexcept = default;

const fs::path& AtomicFile::path() const {
  static const fs::path kNone;
  return impl_ ? impl_->path : kNone;
}

Status AtomicFile::Open(const fs::path& path, int gzip_level) {
  if (impl_) return Status::InvalidArgument(path.string() + ": AtomicFile opened twice");
  if (gzip_level < 0 || gzip_level > 9) {
    return Status::InvalidArgument(path.string() + ": gzip level " + std::to_string(gzip_level) +
                                   ", expected 0 (none) to 9");
  }
  std::error_code ec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status::IOError(path.parent_path().string() +
                             ": cannot create directory: " + ec.message());
    }
  }
  auto impl = std::make_unique<Impl>();
  // A symlink is followed: the file it names is replaced, and the link
  // stays (an event log kept behind a link must not be forked by a rewrite).
  impl->path = path;
  std::error_code link_ec;  // a path that does not exist yet is not a link
  if (fs::is_symlink(fs::symlink_status(path, link_ec))) {
    impl->path = fs::canonical(path, ec);
    if (ec) return Status::IOError(path.string() + ": cannot resolve the link: " + ec.message());
  }
  impl->out = std::make_unique<char[]>(Impl::kBufferBytes);
  if (gzip_level > 0) {
    // windowBits 15 + 16: a gzip wrapper, as gzip(1) and gzopen write.
    if (deflateInit2(&impl->zs, gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return Status::Internal(path.string() + ": zlib init failed");
    }
    impl->gzip = true;
  }
  const fs::path tmp = TempSiblingPath(impl->path);
  impl->fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (impl->fd < 0) {
    return Status::IOError(impl->path.string() + ": cannot create its temporary file " +
                           tmp.filename().string() + " in " + tmp.parent_path().string() + ": " +
                           Errno());
  }
  // A rewrite keeps the file's mode and owner: a 0600 file of personal data
  // must not come back world-readable. (The owner only when allowed.)
  struct stat existing;
  if (::stat(impl->path.c_str(), &existing) == 0) {
    (void)::fchmod(impl->fd, existing.st_mode & 07777);
    (void)::fchown(impl->fd, existing.st_uid, existing.st_gid);
  }
  impl->tmp = tmp;
  impl_ = std::move(impl);
  return Status::OK();
}

Status AtomicFile::Append(std::string_view bytes) {
  if (!impl_ || impl_->finished) return Status::Internal("AtomicFile::Append on a closed file");
  if (!impl_->error.ok()) return impl_->error;
  return impl_->gzip ? impl_->Deflate(bytes, Z_NO_FLUSH) : impl_->AppendPlain(bytes);
}

Status AtomicFile::Finish() {
  if (!impl_) return Status::Internal("AtomicFile::Finish before Open");
  Impl& f = *impl_;
  if (!f.error.ok()) return f.error;
  if (f.finished) return Status::OK();
  if (f.gzip) VITRINE_RETURN_IF_ERROR(f.Deflate({}, Z_FINISH));
  VITRINE_RETURN_IF_ERROR(f.FlushBuffer());
  if (Status st = FsyncFd(f.fd, f.path, /*directory=*/false); !st.ok()) return f.Fail(st);
  const int rc = ::close(f.fd);
  f.fd = -1;
  if (rc != 0) return f.Fail(Status::IOError(f.path.string() + ": close failed: " + Errno()));
  f.finished = true;
  return Status::OK();
}

Status AtomicFile::Commit() {
  VITRINE_RETURN_IF_ERROR(Finish());
  Impl& f = *impl_;
  if (f.committed) return Status::OK();
  if (std::rename(f.tmp.c_str(), f.path.c_str()) != 0) {
    return f.Fail(Status::IOError(f.path.string() + ": cannot rename into place: " + Errno()));
  }
  f.committed = true;
  return Status::OK();
}

Status WriteFileAtomic(const fs::path& path, std::string_view bytes, bool gzip) {
  AtomicFile f;
  VITRINE_RETURN_IF_ERROR(f.Open(path, gzip ? 6 : 0));
  VITRINE_RETURN_IF_ERROR(f.Append(bytes));
  return f.Commit();
}

Status FsyncPath(const fs::path& path) {
  std::error_code ec;
  const bool directory = fs::is_directory(path, ec);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return Status::IOError(path.string() + ": cannot open to sync: " + Errno());
  Status st = FsyncFd(fd, path, directory);
  ::close(fd);
  return st;
}

Status ReplaceDirectory(const fs::path& staged, const fs::path& final_dir) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_dir, ec)) {
    // One atomic swap: at every moment `final_dir` is the old directory or
    // the new one, so a process killed here leaves one of them in place. The
    // old one ends up at `staged` and is removed (or, after a kill, found as
    // stale staging by the next writer).
    if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
      fs::remove_all(staged, ec);
      return Status::OK();
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
      return Status::IOError(final_dir.string() + ": cannot swap in " + staged.string() + ": " +
                             Errno());
    }
    // A filesystem without RENAME_EXCHANGE: two renames, with a moment in
    // between where `final_dir` does not exist (docs/reliability.md).
    old = TempSiblingPath(final_dir);
    fs::rename(final_dir, old, ec);
    if (ec) return Status::IOError(final_dir.string() + ": cannot move aside: " + ec.message());
  }
  fs::rename(staged, final_dir, ec);
  if (ec) {
    const std::string err = ec.message();
    if (!old.empty()) fs::rename(old, final_dir, ec);  // put the old one back
    return Status::IOError(final_dir.string() + ": cannot rename into place: " + err);
  }
  if (!old.empty()) fs::remove_all(old, ec);
  return Status::OK();
}

uint64_t Xxh64(std::string_view bytes) { return XXH64(bytes.data(), bytes.size(), 0); }

Result<uint64_t> Xxh64File(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound(path.string() + ": cannot open: " + Errno());
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  std::string buf(1 << 20, '\0');
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = f.gcount();
    if (got > 0) XXH64_update(st, buf.data(), static_cast<size_t>(got));
  }
  const uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return h;
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

Result<std::vector<std::string>> ReadIdList(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseIdList(text);
}

std::vector<std::string> ParseIdList(std::string_view text) {
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);
  std::vector<std::string> ids;
  std::unordered_set<std::string_view> seen;
  while (!rest.empty()) {
    const size_t end = std::min(rest.find('\n'), rest.size());
    std::string_view id = rest.substr(0, end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
    while (!id.empty() && (id.back() == '\r' || id.back() == ' ' || id.back() == '\t'))
      id.remove_suffix(1);
    while (!id.empty() && (id.front() == ' ' || id.front() == '\t')) id.remove_prefix(1);
    if (id.empty() || id.front() == '#' || !seen.insert(id).second) continue;
    ids.emplace_back(id);
  }
  return ids;
}

}  // namespace vitrine
