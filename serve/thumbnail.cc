#include "serve/thumbnail.h"

#include <fcntl.h>
#include <stb_image_write.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace vitrine {
namespace {

// Closes the descriptor on every way out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool ReadAt(int fd, void* buf, size_t n, off_t at) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r, n -= static_cast<size_t>(r), at += r;
  }
  return true;
}

}  // namespace

Result<std::string> ThumbnailPng(const std::filesystem::path& path, int64_t row) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    if (errno == ENOENT) return Status::NotFound("this bundle keeps no thumbnails");
    return Status::IOError(path.string() + ": " + std::strerror(errno));
  }
  unsigned char magic[4];
  if (!ReadAt(f.fd, magic, 4, 0) || magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 ||
      (magic[3] != 3 && magic[3] != 4)) {
    return Status::Corruption(path.string() + ": expected an IDX ubyte header of 3 or 4 dims");
  }
  const int ndims = magic[3];
  unsigned char raw[16];
  if (!ReadAt(f.fd, raw, static_cast<size_t>(4 * ndims), 4)) {
    return Status::Corruption(path.string() + ": the IDX header is cut short");
  }
  uint64_t dims[4] = {0, 0, 0, 1};
  for (int d = 0; d < ndims; ++d) {
    dims[d] = (uint64_t{raw[4 * d]} << 24) | (uint64_t{raw[4 * d + 1]} << 16) |
              (uint64_t{raw[4 * d + 2]} << 8) | raw[4 * d + 3];
  }
  const uint64_t h = dims[1], w = dims[2], c = dims[3];
  struct stat st;
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(ndims);
  if (h == 0 || w == 0 || h > 4096 || w > 4096 || (c != 1 && c != 3) || ::fstat(f.fd, &st) != 0 ||
      static_cast<uint64_t>(st.st_size) != header + dims[0] * h * w * c) {
    return Status::Corruption(path.string() + ": the IDX dims do not match the file's size");
  }
  if (row < 0 || static_cast<uint64_t>(row) >= dims[0]) {
    return Status::NotFound("no thumbnail for this item (added after the build)");
  }
  std::vector<unsigned char> pixels(h * w * c);
  if (!ReadAt(f.fd, pixels.data(), pixels.size(),
              static_cast<off_t>(header + static_cast<uint64_t>(row) * pixels.size()))) {
    return Status::IOError(path.string() + ": read failed");
  }
  std::string png;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                           static_cast<size_t>(size));
  };
  if (stbi_write_png_to_func(append, &png, static_cast<int>(w), static_cast<int>(h),
                             static_cast<int>(c), pixels.data(), static_cast<int>(w * c)) == 0) {
    return Status::Internal("PNG encoding failed");
  }
  return png;
}

}  // namespace vitrine
