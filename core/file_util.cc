#include "core/file_util.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace vitrine {
namespace fs = std::filesystem;

namespace {
std::string Errno() { return std::strerror(errno); }

Result<std::string> Gunzip(const fs::path& path, std::string_view in) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Status::Internal("zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  out.resize(in.size() * 4 + 1024);
  int rc = Z_OK;
  while (true) {
    if (zs.total_out >= out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      // Concatenated gzip members are legal; continue if input remains.
      if (zs.avail_in == 0) break;
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
  }
  const auto total = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    return Status::Corruption(path.string() + ": truncated or corrupt gzip data");
  }
  out.resize(total);
  return out;
}

Result<std::string> Gzip(std::string_view in) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("zlib init failed");
  }
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("gzip compression failed");
  return out;
}
}  // namespace

Result<std::string> ReadFileRaw(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return Status::InvalidArgument(path.string() + ": is a directory, expected a file");
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

Result<std::string> ReadFile(const fs::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string data, ReadFileRaw(path));
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
      static_cast<unsigned char>(data[1]) == 0x8b) {
    return Gunzip(path, data);
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

Status WriteFileAtomic(const fs::path& path, std::string_view bytes, bool gzip) {
  std::string compressed;
  if (gzip) {
    VITRINE_ASSIGN_OR_RETURN(compressed, Gzip(bytes));
    bytes = compressed;
  }
  std::error_code ec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status::IOError(path.parent_path().string() +
                             ": cannot create directory: " + ec.message());
    }
  }
  const fs::path tmp = TempSiblingPath(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::IOError(tmp.string() + ": cannot create: " + Errno());
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string err = Errno();
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IOError(path.string() + ": write failed: " + err);
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string err = Errno();
    ::unlink(tmp.c_str());
    return Status::IOError(path.string() + ": flush failed: " + err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = Errno();
    ::unlink(tmp.c_str());
    return Status::IOError(path.string() + ": rename failed: " + err);
  }
  return Status::OK();
}

Status ReplaceDirectory(const fs::path& staged, const fs::path& final_dir) {
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_dir, ec)) {
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

}  // namespace vitrine
