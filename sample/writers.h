// Output files of the sample generator (internal to sample/): items.csv,
// images.idx.gz and truth.json (formats in sample/generator.h), and the text
// helpers the interaction log shares. Each writer appends to an AtomicFile
// that the caller opened and later commits.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "core/file_util.h"
#include "core/progress.h"
#include "core/status.h"
#include "sample/fashion_mnist.h"
#include "sample/generator.h"
#include "sample/interactions.h"
#include "sample/world.h"

namespace vitrine::sample {

inline void AppendInt(std::string& s, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  s.append(buf, r.ptr);
}

// "I000123": zero-padded to `width` digits (more digits if needed).
inline void AppendId(std::string& s, char prefix, int64_t v, int width) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  const int digits = static_cast<int>(r.ptr - buf);
  s.push_back(prefix);
  if (digits < width) s.append(static_cast<size_t>(width - digits), '0');
  s.append(buf, r.ptr);
}

// Text is formatted into a local buffer and handed to the file in 1 MiB
// pieces: appends `buf` to `f` and clears it once it is that large.
inline Status FlushIfLarge(std::string& buf, AtomicFile& f) {
  if (buf.size() < (size_t{1} << 20)) return Status::OK();
  Status st = f.Append(buf);
  buf.clear();
  return st;
}

// items.csv: the header and one row per item.
Status WriteItemsCsv(const Items& it, AtomicFile& f);

// images.idx.gz content: the IDX header (n x 28 x 28 ubyte) and every item's
// image (its source image, flipped or shifted for reused ones). `f` is
// opened with gzip. Reports progress on `timer`.
Status WriteImages(const Items& it, const FashionMnist& ds, AtomicFile& f, StageTimer& timer);

// truth.json: the hidden model, parameters and per-item / per-user arrays.
Status WriteTruth(const GeneratorOptions& o, const Items& it, const std::vector<Cluster>& clusters,
                  const Users& users, AtomicFile& f);

}  // namespace vitrine::sample
