#include "embed/image_file.h"

#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>
#include <string>
#include <system_error>

#include "core/file_util.h"

namespace vitrine {
namespace {

bool IsPng(std::string_view b) { return b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8); }
bool IsJpeg(std::string_view b) { return b.substr(0, 3) == std::string_view("\xff\xd8\xff", 3); }

Status CannotDecode(const std::string& name, const std::string& format, const char* why) {
  return Status::InvalidArgument(name + ": cannot decode image: corrupt " + format + " (" +
                                 (why != nullptr && *why != '\0' ? why : "unknown error") + ")");
}

Status CheckSize(const std::string& name, int64_t w, int64_t h) {
  if (w <= 0 || h <= 0 || w * h > kMaxImagePixels) {
    return Status::InvalidArgument(name + ": image is " + std::to_string(w) + " x " +
                                   std::to_string(h) + "; expected a positive size of at most " +
                                   std::to_string(kMaxImagePixels) + " pixels");
  }
  return Status::OK();
}

// libpng's simplified API keeps its state in a png_image; png_image_free
// releases it on every path (it is a no-op once finish_read has run).
struct PngImage {
  png_image image;
  PngImage() {
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
  }
  ~PngImage() { png_image_free(&image); }
  PngImage(const PngImage&) = delete;
  PngImage& operator=(const PngImage&) = delete;
};

Status BeginPng(std::string_view bytes, const std::string& name, PngImage* png) {
  if (png_image_begin_read_from_memory(&png->image, bytes.data(), bytes.size()) == 0) {
    return CannotDecode(name, "PNG", png->image.message);
  }
  return CheckSize(name, png->image.width, png->image.height);
}

using TjHandle = std::unique_ptr<void, int (*)(tjhandle)>;

Result<TjHandle> NewJpegDecoder(const std::string& name) {
  TjHandle tj(tjInitDecompress(), tjDestroy);
  if (tj == nullptr) {
    return Status::Internal(name + ": cannot start the JPEG decoder: " +
                            tjGetErrorStr2(nullptr));
  }
  return tj;
}

Status JpegHeader(tjhandle tj, std::string_view bytes, const std::string& name, int* w, int* h) {
  int subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<unsigned long>(bytes.size()), w, h, &subsampling,
                          &colorspace) != 0) {
    return CannotDecode(name, "JPEG", tjGetErrorStr2(tj));
  }
  // libjpeg-turbo reads a header that ends before the frame (SOF) segment
  // as a success with no size.
  if (*w == 0 && *h == 0) return CannotDecode(name, "JPEG", "no frame header: truncated?");
  return CheckSize(name, *w, *h);
}

Status CheckFileSize(const std::string& name, size_t size) {
  if (size > kMaxImageFileBytes) {
    return Status::InvalidArgument(name + ": image file is " + std::to_string(size) +
                                   " bytes; the limit is " + std::to_string(kMaxImageFileBytes));
  }
  return Status::OK();
}

Status NotPngOrJpeg(const std::string& name) {
  return Status::InvalidArgument(name +
                                 ": cannot decode image: not a PNG or JPEG file (by its first bytes)");
}

}  // namespace

Result<ImageHeader> ReadImageHeader(std::string_view bytes, const std::string& name) {
  VITRINE_RETURN_IF_ERROR(CheckFileSize(name, bytes.size()));
  ImageHeader header;
  if (IsPng(bytes)) {
    PngImage png;
    VITRINE_RETURN_IF_ERROR(BeginPng(bytes, name, &png));
    header.format = ImageFormat::kPng;
    header.width = static_cast<int>(png.image.width);
    header.height = static_cast<int>(png.image.height);
    return header;
  }
  if (IsJpeg(bytes)) {
    VITRINE_ASSIGN_OR_RETURN(TjHandle tj, NewJpegDecoder(name));
    header.format = ImageFormat::kJpeg;
    VITRINE_RETURN_IF_ERROR(JpegHeader(tj.get(), bytes, name, &header.width, &header.height));
    return header;
  }
  return NotPngOrJpeg(name);
}

Result<RgbImage> DecodeImage(std::string_view bytes, const std::string& name) {
  VITRINE_RETURN_IF_ERROR(CheckFileSize(name, bytes.size()));
  RgbImage im;
  if (IsPng(bytes)) {
    PngImage png;
    VITRINE_RETURN_IF_ERROR(BeginPng(bytes, name, &png));
    png.image.format = PNG_FORMAT_RGB;
    im.width = static_cast<int>(png.image.width);
    im.height = static_cast<int>(png.image.height);
    im.pixels.resize(PNG_IMAGE_SIZE(png.image));
    // A null background composites alpha on black; row stride 0 = packed.
    if (png_image_finish_read(&png.image, nullptr, im.pixels.data(), 0, nullptr) == 0) {
      return CannotDecode(name, "PNG", png.image.message);
    }
    return im;
  }
  if (IsJpeg(bytes)) {
    VITRINE_ASSIGN_OR_RETURN(TjHandle tj, NewJpegDecoder(name));
    VITRINE_RETURN_IF_ERROR(JpegHeader(tj.get(), bytes, name, &im.width, &im.height));
    im.pixels.resize(static_cast<size_t>(im.width) * im.height * 3);
    // TJFLAG_LIMITSCANS: a progressive JPEG of thousands of tiny scans costs
    // minutes to decode; libjpeg-turbo refuses more than 500.
    if (tjDecompress2(tj.get(), reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<unsigned long>(bytes.size()), im.pixels.data(), im.width, 0,
                      im.height, TJPF_RGB, TJFLAG_LIMITSCANS) != 0 &&
        tjGetErrorCode(tj.get()) != TJERR_WARNING) {
      return CannotDecode(name, "JPEG", tjGetErrorStr2(tj.get()));
    }
    return im;
  }
  return NotPngOrJpeg(name);
}

Result<RgbImage> DecodeImageFile(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec) VITRINE_RETURN_IF_ERROR(CheckFileSize(name, size));
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFileRaw(path));
  return DecodeImage(bytes, name);
}

}  // namespace vitrine
