// Reading FAISS index files that may be damaged or hostile.
//
// faiss::read_index trusts every count in the file: a vector's element
// count is read, the vector is resized to it, and only then are the
// elements read. One forged 8-byte count (below FAISS's own bound of 2^40)
// therefore makes it allocate and zero-fill gigabytes before the short read
// fails. These readers refuse a count that cannot fit in the bytes left:
// a single 8-byte item read whose value exceeds both the bytes remaining
// and 2^20 (the largest 8-byte header constant FAISS writes, its "dummy"
// fields), and any read of more bytes than remain. Legitimate files never
// trip either bound: every element a count announces is stored after it.
//
// The structure checks that follow a successful read (vector_index.cc)
// catch what is inconsistent but small.
#pragma once

#include <faiss/Index.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace vitrine {

// Corruption errors name `path` (or `name`) and what was wrong.
Result<std::unique_ptr<faiss::Index>> ReadFaissFile(const std::filesystem::path& path);
Result<std::unique_ptr<faiss::Index>> ReadFaissBytes(std::string_view bytes,
                                                     const std::string& name);

}  // namespace vitrine
