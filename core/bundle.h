// Bundle: the versioned on-disk directory a build produces and every query
// command loads (docs/architecture.md; the format is in docs/bundle-format.md).
//
//   bundle/
//     manifest.json   format name + version, the size and xxh64 of every
//                     other file, and the sections the stages write
//     ...             the files the stages write
//
// This is the container. What a vitrine build puts in it (file names,
// manifest sections, their validation) is engine/bundle_schema.h.
//
// Writing: a BundleWriter fills a hidden staging directory beside the final
// one; Commit() checksums every file, writes manifest.json, fsyncs and renames
// the staging directory over the final one. Until then (and if the writer is
// destroyed without Commit, e.g. a failed build) the previous bundle is
// untouched and the staging directory is removed.
//
// Reading: Bundle::Open() checks the format name and version and verifies the
// size (and by default the checksum) of every listed file; any failure is a
// one-line Status naming the bad file, e.g.
//
//   demo/bundle/vectors.npy: checksum mismatch (expected 1f0e..., found
//   77a2...): the bundle is corrupt; rebuild it
//
// Thread safety: a Bundle is immutable after Open and its const methods may be
// called from several threads. A BundleWriter is used by one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/matrix.h"
#include "core/status.h"
#include "core/version.h"

namespace vitrine {

inline constexpr char kBundleFormatName[] = "vitrine-bundle";
// Bump when a reader of the previous version would misread a new bundle (see
// "Versioning" in docs/bundle-format.md). Readers refuse newer versions.
inline constexpr int kBundleFormatVersion = 1;
inline constexpr char kBundleManifestName[] = "manifest.json";
inline constexpr char kBundleCreatedBy[] = "vitrine " VITRINE_VERSION_STRING;

// How much of the bundle Open() checks.
enum class VerifyMode {
  kFull,       // sizes and xxh64 of every file (reads every byte once)
  kSizesOnly,  // presence and sizes only: fast loads of a trusted bundle
};

// A file listed in the manifest.
struct BundleFile {
  std::string name;  // relative, '/'-separated, e.g. "vectors.npy", "catalog/brand.txt"
  uint64_t size = 0;
  uint64_t xxh64 = 0;
};

class BundleWriter;

class Bundle {
 public:
  // Opens and verifies the bundle in `dir`. Errors (all naming the file):
  //   NotFound     manifest.json or a listed file is missing
  //   Corruption   manifest.json is not valid JSON (with the parse position) or
  //                lacks a required field; a file's size or checksum differs
  //   Unsupported  format_version is newer than kBundleFormatVersion
  // Files present but not listed are ignored and reported in warnings().
  static Result<Bundle> Open(const std::filesystem::path& dir, VerifyMode mode = VerifyMode::kFull);

  const std::filesystem::path& dir() const { return dir_; }
  const nlohmann::json& manifest() const { return manifest_; }
  int format_version() const { return manifest_.at("format_version").get<int>(); }

  // Listed files, sorted by name.
  const std::vector<BundleFile>& files() const { return files_; }
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  // dir()/name (whether or not the file is listed).
  std::filesystem::path path(std::string_view name) const;

  // Readers of listed files; NotFound if `name` is not in the manifest, and
  // Corruption if the size on disk no longer matches it. ReadBytes and
  // ReadIds also verify the checksum of the bytes they read (it costs little
  // once the bytes are in memory), so they are safe under kSizesOnly.
  Result<std::string> ReadBytes(std::string_view name) const;
  Result<Matrix> ReadMatrix(std::string_view name) const;        // .npy float32
  Result<MatrixI64> ReadMatrixI64(std::string_view name) const;  // .npy int64
  // One id per '\n'-terminated line (the format BundleWriter::WriteIds writes).
  Result<std::vector<std::string>> ReadIds(std::string_view name) const;

  // Re-checks one listed file's size and checksum (as Open with kFull does).
  Status VerifyFile(std::string_view name) const;

  // Sum of listed file sizes, and the same split by kind: the file extension
  // without the dot ("npy", "faiss", "txt", ...) or "other".
  uint64_t total_bytes() const;
  std::map<std::string, uint64_t> BytesByKind() const;

  // Notes that are not errors, e.g. "B/notes.txt: not listed in the manifest
  // (ignored)".
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  friend class BundleWriter;
  Bundle() = default;
  const BundleFile* Find(std::string_view name) const;
  Result<const BundleFile*> Lookup(std::string_view name) const;
  Status CheckSize(const BundleFile& f) const;

  std::filesystem::path dir_;
  nlohmann::json manifest_;
  std::vector<BundleFile> files_;
  std::vector<std::string> warnings_;
};

// Builds a bundle in a staging directory and publishes it atomically.
// Move-only. Destroying an uncommitted writer deletes its staging directory.
class BundleWriter {
 public:
  // Starts a new bundle that Commit() will place at `final_dir` (replacing
  // any existing directory there). The staging directory is a hidden sibling
  // (TempSiblingPath), so the final rename stays on one filesystem. Creates
  // the parent directory if needed.
  static Result<BundleWriter> Create(const std::filesystem::path& final_dir);

  // Starts a rewrite of the existing bundle at `existing`: opens it with
  // `verify` (so corruption is not carried forward), links (or, across
  // filesystems, copies) every listed file into the staging directory and
  // copies the manifest's sections. Commit()
  // replaces `existing`. Used by commands that modify a bundle in place.
  static Result<BundleWriter> Update(const std::filesystem::path& existing,
                                     VerifyMode verify = VerifyMode::kFull);

  BundleWriter(BundleWriter&& other) noexcept;
  BundleWriter& operator=(BundleWriter&& other) noexcept;
  BundleWriter(const BundleWriter&) = delete;
  BundleWriter& operator=(const BundleWriter&) = delete;
  ~BundleWriter();

  const std::filesystem::path& final_dir() const { return final_dir_; }
  const std::filesystem::path& staging_dir() const { return staging_; }

  // A path inside the staging directory for stages that write a file
  // themselves (e.g. faiss::write_index). Creates missing parent directories
  // and removes any file already at `name`: a file carried over by Update()
  // is a hard link into the live bundle, and writing through it in place
  // would change the live bundle. `name` must be a relative path without
  // "." or ".." components and not "manifest.json"; anything else is a
  // programmer error (throws std::invalid_argument).
  std::filesystem::path path(std::string_view name);

  // Write whole files into the staging directory (atomically, fsync'ed).
  // An invalid `name` (see path()) is InvalidArgument.
  Status WriteBytes(std::string_view name, std::string_view bytes);
  Status WriteMatrix(std::string_view name, const Matrix& m);     // .npy float32
  Status WriteMatrix(std::string_view name, const MatrixI64& m);  // .npy int64
  // One id per line, each terminated by '\n'. Ids that are empty or contain
  // '\n' or '\r' are rejected (InvalidArgument naming the index).
  Status WriteIds(std::string_view name, const std::vector<std::string>& ids);
  // Removes a file (e.g. one carried over by Update). OK if absent.
  Status Remove(std::string_view name);
  bool Has(std::string_view name) const;

  // The manifest under construction: empty (Update: the existing one's
  // sections). What a build puts there is engine/bundle_schema.h's job.
  // Commit() owns "format", "format_version", "created_by", "created_at",
  // "updated_at" and "files".
  nlohmann::json& manifest() { return manifest_; }
  // Checksums every file in the staging directory (recursively), writes
  // manifest.json, fsyncs files and directories and renames the staging
  // directory over final_dir(). After an error the writer is still
  // uncommitted (its destructor cleans up) and the previous bundle remains.
  // Calling Commit twice is a programmer error.
  Status Commit();

 private:
  BundleWriter() = default;
  Status CheckName(std::string_view name) const;
  void Cleanup();

  std::filesystem::path final_dir_;
  std::filesystem::path staging_;  // empty once committed or moved from
  nlohmann::json manifest_;
};

}  // namespace vitrine
