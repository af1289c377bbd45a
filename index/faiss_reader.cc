#include "index/faiss_reader.h"

#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vitrine {
namespace {

// The largest 8-byte value FAISS writes as a plain header field (the index
// header's two `dummy` fields hold 1 << 20).
constexpr uint64_t kLargestHeaderConstant = uint64_t{1} << 20;

// An IOReader over a file or a byte range that knows how many bytes are
// left, and refuses counts that cannot be true (see the header).
class BoundedReader : public faiss::IOReader {
 public:
  // From memory (`file` null) or from `file`, `total` bytes long.
  BoundedReader(std::string label, std::string_view bytes, FILE* file, uint64_t total)
      : bytes_(bytes), file_(file), total_(total) {
    name = std::move(label);
  }

  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0 || nitems == 0) return 0;
    const uint64_t left = total_ - at_;
    if (nitems > left / size) {
      throw std::runtime_error("a read of " + std::to_string(nitems) + " x " +
                               std::to_string(size) + " bytes at offset " + std::to_string(at_) +
                               " runs past the end (" + std::to_string(left) + " bytes left)");
    }
    if (file_ == nullptr) {
      std::memcpy(ptr, bytes_.data() + at_, size * nitems);
    } else if (std::fread(ptr, size, nitems, file_) != nitems) {
      throw std::runtime_error(std::string("read error: ") + std::strerror(errno));
    }
    at_ += size * nitems;
    if (size == 8 && nitems == 1) {
      // Possibly a vector's element count, which FAISS allocates before
      // reading the elements: each element takes at least a byte.
      uint64_t count = 0;
      std::memcpy(&count, ptr, 8);
      if (count > total_ - at_ && count > kLargestHeaderConstant) {
        throw std::runtime_error("the count " + std::to_string(count) + " at offset " +
                                 std::to_string(at_ - 8) + " is larger than the " +
                                 std::to_string(total_ - at_) +
                                 " bytes that follow it (a damaged or forged file)");
      }
    }
    return nitems;
  }

 private:
  std::string_view bytes_;
  FILE* file_;
  uint64_t total_;
  uint64_t at_ = 0;
};

Result<std::unique_ptr<faiss::Index>> Read(BoundedReader* reader) {
  try {
    return std::unique_ptr<faiss::Index>(faiss::read_index(reader));
  } catch (const std::exception& e) {
    return Status::Corruption(reader->name + ": not a readable FAISS index: " + e.what());
  }
}

}  // namespace

Result<std::unique_ptr<faiss::Index>> ReadFaissBytes(std::string_view bytes,
                                                     const std::string& name) {
  BoundedReader reader(name, bytes, nullptr, bytes.size());
  return Read(&reader);
}

Result<std::unique_ptr<faiss::Index>> ReadFaissFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound(path.string() + ": no such index file");
  }
  // Straight from the file: no whole-file buffer beside the index being
  // read (a loaded bundle would cost its size twice over at peak).
  FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) {
    return Status::IOError(path.string() + ": cannot open: " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0) {
    const std::string why = std::strerror(errno);
    std::fclose(f);
    return Status::IOError(path.string() + ": " + why);
  }
  BoundedReader reader(path.string(), {}, f, static_cast<uint64_t>(st.st_size));
  auto index = Read(&reader);
  std::fclose(f);
  return index;
}

}  // namespace vitrine
