// Item thumbnails for GET /items/{id}/image: one row of the bundle's
// thumbnails.idx (engine/bundle_schema.h; the images the build's visual
// encoder saw, IDX ubyte n x h x w, or n x h x w x 3 for colour) read with
// one pread and encoded as PNG (stb_image_write). Nothing is held in memory
// between requests, so a 1M-item bundle's 784 MB of images cost nothing
// until asked for.
//
//   auto png = ThumbnailPng(bundle_dir / "thumbnails.idx", row);
//
// Errors: NotFound for a bundle without thumbnails or a row past the file's
// last (an item added after the build: `vitrine items add` keeps no
// image); Corruption for a header that does not match the file's size.
// Thread-safe: every call opens its own descriptor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/status.h"

namespace vitrine {

Result<std::string> ThumbnailPng(const std::filesystem::path& path, int64_t row);

}  // namespace vitrine
