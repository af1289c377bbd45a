#include "core/bundle.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <fstream>
#include <set>
#include <stdexcept>

#include "core/array_io.h"
#include "core/file_util.h"
#include "core/json_util.h"

namespace vitrine {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// "demo/bundle/" and "demo/bundle" must name the same bundle, and the staging
// directory must be a sibling, so drop trailing separators; "." and ".." have
// no usable name to build a sibling from, so they become absolute.
fs::path NormalizeDir(const fs::path& dir) {
  fs::path p = dir.lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  const std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") {
    p = fs::absolute(p).lexically_normal();
    if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  }
  return p;
}

// A name inside a bundle: relative, '/'-separated, no "." / ".." / hidden
// components (hidden names are reserved for staging temporaries).
bool IsPlainName(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  if (name.find('\\') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view part = name.substr(start, end - start);
    if (part.empty() || part.front() == '.') return false;
    start = end + 1;
  }
  return true;
}

std::string SizeHint(uint64_t found, uint64_t expected) {
  return found < expected ? " (truncated?)" : " (overwritten or appended to?)";
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool ParseHex64(const std::string& s, uint64_t* out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

// Parses and validates manifest["files"]; `where` is
// "B/manifest.json" for messages.
Status ParseFiles(const json& m, const std::string& where, std::vector<BundleFile>* files) {
  auto it = m.find("files");
  if (it == m.end() || !it->is_object()) {
    return Status::Corruption(where +
                              ": missing \"files\" object: the bundle is corrupt; rebuild it");
  }
  for (const auto& [name, entry] : it->items()) {
    const std::string at = where + ": files[\"" + name + "\"]";
    if (!IsPlainName(name) || name == kBundleManifestName) {
      return Status::Corruption(at + ": not a plain relative file name");
    }
    BundleFile f;
    f.name = name;
    if (!entry.is_object() || !entry.contains("size") || !entry["size"].is_number_unsigned()) {
      return Status::Corruption(at + ": expected {\"size\": <bytes>, \"xxh64\": \"<16 hex>\"}");
    }
    f.size = entry["size"].get<uint64_t>();
    if (!entry.contains("xxh64") || !entry["xxh64"].is_string() ||
        !ParseHex64(entry["xxh64"].get<std::string>(), &f.xxh64)) {
      return Status::Corruption(at + ": \"xxh64\" must be 16 lowercase hex digits");
    }
    files->push_back(std::move(f));
  }
  return Status::OK();  // json objects iterate in key order, so files are sorted
}

// The pid in a temporary name that ends ".tmp.<pid>.<n>" (TempSiblingPath),
// or -1.
pid_t TempNamePid(const std::string& name) {
  const size_t last_dot = name.rfind('.');
  if (last_dot == std::string::npos || last_dot == 0) return -1;
  const size_t pid_dot = name.rfind('.', last_dot - 1);
  if (pid_dot == std::string::npos || pid_dot < 4 || name.compare(pid_dot - 4, 4, ".tmp") != 0) {
    return -1;
  }
  const std::string pid = name.substr(pid_dot + 1, last_dot - pid_dot - 1);
  const std::string n = name.substr(last_dot + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  return digits(pid) && digits(n) ? static_cast<pid_t>(std::stol(pid)) : -1;
}

// Removes the temporary directories a killed process left beside
// `final_dir`, whose pid no longer runs: its own staging
// (".<name>.tmp.<pid>.<n>"), an old bundle swapped out there, and the
// temporaries of work named after it, such as the ranker's validation
// bundle (".<name>.ranker.tmp.<pid>.<n>" and that one's staging
// "..<name>.ranker.tmp.<pid>.<n>.tmp.<pid>.<m>"). Best effort.
void RemoveStaleStaging(const fs::path& final_dir) {
  const std::string base = final_dir.filename().string() + ".";
  const fs::path parent = final_dir.has_parent_path() ? final_dir.parent_path() : fs::path(".");
  std::error_code ec;
  for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t start = name.find_first_not_of('.');
    if (start == 0 || start == std::string::npos || name.compare(start, base.size(), base) != 0 ||
        !it->is_directory(ec)) {
      continue;
    }
    const pid_t pid = TempNamePid(name);
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
}

}  // namespace

// ---------------------------------------------------------------- Bundle

Result<Bundle> Bundle::Open(const fs::path& dir_in, VerifyMode mode) {
  Bundle b;
  b.dir_ = NormalizeDir(dir_in);
  const fs::path manifest_path = b.dir_ / kBundleManifestName;
  const std::string where = manifest_path.string();
  std::error_code ec;
  if (!fs::is_directory(b.dir_, ec)) {
    if (fs::exists(b.dir_, ec)) {
      return Status::InvalidArgument(b.dir_.string() + ": not a directory, expected a bundle");
    }
    return Status::NotFound(b.dir_.string() + ": no such bundle directory");
  }
  if (!fs::exists(manifest_path, ec)) {
    return Status::NotFound(where + ": not found: not a vitrine bundle (or an incomplete one)");
  }
  // ParseJson's size limit, checked before reading: a huge manifest (a
  // sparse file of gigabytes) is refused without reading it.
  const size_t max_bytes = ParseJsonOptions{}.max_bytes;
  if (const auto size = fs::file_size(manifest_path, ec); !ec && size > max_bytes) {
    return Status::Corruption(where + ": " + std::to_string(size) + " bytes, over the " +
                              std::to_string(max_bytes >> 20) +
                              " MiB limit of a JSON text: the bundle is corrupt; rebuild it");
  }
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadFileRaw(manifest_path));
  // Depth- and UTF-8-checked: a manifest is data from disk, and a deep one
  // would overflow the stack in the first dump().
  auto parsed = ParseJson(text, where);
  if (!parsed.ok()) {
    return Status::Corruption(parsed.status().message() + ": the bundle is corrupt; rebuild it");
  }
  b.manifest_ = std::move(*parsed);
  const json& m = b.manifest_;
  if (!m.is_object()) return Status::Corruption(where + ": expected a JSON object");
  if (!m.contains("format") || m["format"] != kBundleFormatName) {
    return Status::Corruption(where + ": \"format\" is " +
                              (m.contains("format") ? m["format"].dump() : std::string("missing")) +
                              ", expected \"" + kBundleFormatName + "\"");
  }
  if (!m.contains("format_version") || !m["format_version"].is_number_integer()) {
    return Status::Corruption(where + ": missing integer \"format_version\"");
  }
  const int64_t version = m["format_version"].get<int64_t>();
  if (version > kBundleFormatVersion) {
    return Status::Unsupported(where + ": format_version " + std::to_string(version) +
                               ", this vitrine reads " + std::to_string(kBundleFormatVersion) +
                               " (upgrade vitrine or rebuild the bundle)");
  }
  if (version < 1) {
    return Status::Corruption(where + ": format_version " + std::to_string(version) +
                              ", expected 1.." + std::to_string(kBundleFormatVersion));
  }
  VITRINE_RETURN_IF_ERROR(ParseFiles(m, where, &b.files_));

  for (const BundleFile& f : b.files_) {
    if (mode == VerifyMode::kFull) {
      VITRINE_RETURN_IF_ERROR(b.VerifyFile(f.name));
    } else {
      VITRINE_RETURN_IF_ERROR(b.CheckSize(f));
    }
  }

  // Unlisted files are harmless (someone's notes, a stray copy) but worth a
  // note: they are neither verified nor read.
  for (auto it = fs::recursive_directory_iterator(b.dir_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    const std::string rel = it->path().lexically_relative(b.dir_).generic_string();
    if (rel != kBundleManifestName && !b.Has(rel)) {
      b.warnings_.push_back(it->path().string() + ": not listed in the manifest (ignored)");
    }
  }
  return b;
}

fs::path Bundle::path(std::string_view name) const { return dir_ / fs::path(std::string(name)); }

const BundleFile* Bundle::Find(std::string_view name) const {
  for (const BundleFile& f : files_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Result<const BundleFile*> Bundle::Lookup(std::string_view name) const {
  const BundleFile* f = Find(name);
  if (f == nullptr) {
    return Status::NotFound(path(name).string() + ": not listed in " +
                            (dir_ / kBundleManifestName).string() +
                            " (built by an older or different command?)");
  }
  return f;
}

Status Bundle::CheckSize(const BundleFile& f) const {
  const fs::path p = path(f.name);
  std::error_code ec;
  const auto st = fs::symlink_status(p, ec);
  if (ec || !fs::exists(st)) {
    return Status::NotFound(p.string() + ": missing (listed in " + kBundleManifestName +
                            "): the bundle is incomplete; rebuild it");
  }
  if (!fs::is_regular_file(st)) {
    return Status::Corruption(p.string() +
                              ": not a regular file: the bundle is corrupt; rebuild it");
  }
  const uint64_t size = fs::file_size(p, ec);
  if (ec) return Status::IOError(p.string() + ": cannot stat: " + ec.message());
  if (size != f.size) {
    return Status::Corruption(p.string() + ": size " + std::to_string(size) + ", manifest says " +
                              std::to_string(f.size) + SizeHint(size, f.size));
  }
  return Status::OK();
}

Status Bundle::VerifyFile(std::string_view name) const {
  VITRINE_ASSIGN_OR_RETURN(const BundleFile* f, Lookup(name));
  VITRINE_RETURN_IF_ERROR(CheckSize(*f));
  VITRINE_ASSIGN_OR_RETURN(uint64_t h, Xxh64File(path(name)));
  if (h != f->xxh64) {
    return Status::Corruption(path(name).string() + ": checksum mismatch (expected " +
                              Hex64(f->xxh64) + ", found " + Hex64(h) +
                              "): the bundle is corrupt; rebuild it");
  }
  return Status::OK();
}

Result<std::string> Bundle::ReadBytes(std::string_view name) const {
  VITRINE_ASSIGN_OR_RETURN(const BundleFile* f, Lookup(name));
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadFileRaw(path(name)));
  const std::string p = path(name).string();
  if (bytes.size() != f->size) {
    return Status::Corruption(p + ": size " + std::to_string(bytes.size()) + ", manifest says " +
                              std::to_string(f->size) + SizeHint(bytes.size(), f->size));
  }
  const uint64_t h = Xxh64(bytes);
  if (h != f->xxh64) {
    return Status::Corruption(p + ": checksum mismatch (expected " + Hex64(f->xxh64) + ", found " +
                              Hex64(h) + "): the bundle is corrupt; rebuild it");
  }
  return bytes;
}

Result<Matrix> Bundle::ReadMatrix(std::string_view name) const {
  VITRINE_ASSIGN_OR_RETURN(const BundleFile* f, Lookup(name));
  VITRINE_RETURN_IF_ERROR(CheckSize(*f));
  return ReadNpyF32(path(name));
}

Result<MatrixI64> Bundle::ReadMatrixI64(std::string_view name) const {
  VITRINE_ASSIGN_OR_RETURN(const BundleFile* f, Lookup(name));
  VITRINE_RETURN_IF_ERROR(CheckSize(*f));
  return ReadNpyI64(path(name));
}

Result<std::vector<std::string>> Bundle::ReadIds(std::string_view name) const {
  VITRINE_ASSIGN_OR_RETURN(std::string bytes, ReadBytes(name));
  const std::string p = path(name).string();
  std::vector<std::string> ids;
  if (!bytes.empty() && bytes.back() != '\n') {
    return Status::Corruption(p + ": last line has no newline (truncated?)");
  }
  size_t start = 0;
  while (start < bytes.size()) {
    const size_t end = bytes.find('\n', start);
    const std::string_view id(bytes.data() + start, end - start);
    const std::string line = p + ":" + std::to_string(ids.size() + 1);
    if (id.empty()) return Status::Corruption(line + ": empty id");
    if (id.find('\r') != std::string_view::npos) {
      return Status::Corruption(line + ": id contains '\\r' (CRLF line endings?)");
    }
    ids.emplace_back(id);
    start = end + 1;
  }
  return ids;
}

uint64_t Bundle::total_bytes() const {
  uint64_t total = 0;
  for (const BundleFile& f : files_) total += f.size;
  return total;
}

std::map<std::string, uint64_t> Bundle::BytesByKind() const {
  std::map<std::string, uint64_t> out;
  for (const BundleFile& f : files_) {
    const std::string ext = fs::path(f.name).extension().string();
    out[ext.size() > 1 ? ext.substr(1) : "other"] += f.size;
  }
  return out;
}

// ---------------------------------------------------------------- BundleWriter

Result<BundleWriter> BundleWriter::Create(const fs::path& final_dir) {
  BundleWriter w;
  w.final_dir_ = NormalizeDir(final_dir);
  std::error_code ec;
  if (w.final_dir_.has_parent_path()) {
    fs::create_directories(w.final_dir_.parent_path(), ec);
    if (ec) {
      return Status::IOError(w.final_dir_.parent_path().string() +
                             ": cannot create directory: " + ec.message());
    }
  }
  if (fs::exists(w.final_dir_, ec)) {
    if (!fs::is_directory(w.final_dir_, ec)) {
      return Status::InvalidArgument(w.final_dir_.string() +
                                     ": exists and is not a directory; refusing to replace it");
    }
    // Commit replaces the whole directory: never do that to a directory that
    // is not a bundle (a mistyped --out $HOME would be wiped).
    if (!fs::is_empty(w.final_dir_, ec) && !fs::exists(w.final_dir_ / kBundleManifestName, ec)) {
      return Status::InvalidArgument(w.final_dir_.string() +
                                     ": exists, is not empty and is not a vitrine bundle (no " +
                                     kBundleManifestName + "); refusing to replace it");
    }
  }
  RemoveStaleStaging(w.final_dir_);
  const fs::path staging = TempSiblingPath(w.final_dir_);
  if (!fs::create_directory(staging, ec) || ec) {
    return Status::IOError(staging.string() + ": cannot create staging directory: " +
                           (ec ? ec.message() : std::string("already exists")));
  }
  w.staging_ = staging;
  w.manifest_ = json::object();
  return w;
}

Result<BundleWriter> BundleWriter::Update(const fs::path& existing, VerifyMode verify) {
  VITRINE_ASSIGN_OR_RETURN(Bundle old, Bundle::Open(existing, verify));
  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, Create(old.dir()));
  for (const BundleFile& f : old.files()) {
    const fs::path src = old.path(f.name);
    const fs::path dst = w.staging_ / fs::path(f.name);
    std::error_code ec;
    fs::create_directories(dst.parent_path(), ec);
    // A hard link costs nothing and the file is never written in place (see
    // path()); fall back to a copy across filesystems or where links fail.
    fs::create_hard_link(src, dst, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(src, dst, ec);
      if (ec) return Status::IOError(src.string() + ": cannot copy to staging: " + ec.message());
    }
  }
  w.manifest_ = old.manifest();
  w.manifest_.erase("files");  // recomputed by Commit
  return w;
}

BundleWriter::BundleWriter(BundleWriter&& other) noexcept
    : final_dir_(std::move(other.final_dir_)),
      staging_(std::move(other.staging_)),
      manifest_(std::move(other.manifest_)) {
  other.staging_.clear();
}

BundleWriter& BundleWriter::operator=(BundleWriter&& other) noexcept {
  if (this != &other) {
    Cleanup();
    final_dir_ = std::move(other.final_dir_);
    staging_ = std::move(other.staging_);
    manifest_ = std::move(other.manifest_);
    other.staging_.clear();
  }
  return *this;
}

BundleWriter::~BundleWriter() { Cleanup(); }

void BundleWriter::Cleanup() {
  if (staging_.empty()) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);  // best effort: nothing useful to do on failure
  staging_.clear();
}

Status BundleWriter::CheckName(std::string_view name) const {
  if (staging_.empty()) return Status::Internal("BundleWriter used after Commit or move");
  if (!IsPlainName(name) || name == kBundleManifestName) {
    return Status::InvalidArgument("bundle file name '" + std::string(name) +
                                   "': expected a relative path without '.', '..' or hidden "
                                   "components, other than manifest.json");
  }
  return Status::OK();
}

fs::path BundleWriter::path(std::string_view name) {
  const Status st = CheckName(name);
  if (!st.ok()) throw std::invalid_argument(st.message());
  fs::path p = staging_ / fs::path(std::string(name));
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  fs::remove(p, ec);  // break a hard link to the live bundle (see header)
  return p;
}

Status BundleWriter::WriteBytes(std::string_view name, std::string_view bytes) {
  VITRINE_RETURN_IF_ERROR(CheckName(name));
  // WriteFileAtomic renames a fresh file into place, which also replaces (never
  // writes through) a hard link carried over by Update.
  return WriteFileAtomic(staging_ / fs::path(std::string(name)), bytes);
}

Status BundleWriter::WriteMatrix(std::string_view name, const Matrix& m) {
  VITRINE_RETURN_IF_ERROR(CheckName(name));
  return WriteNpy(staging_ / fs::path(std::string(name)), m);
}

Status BundleWriter::WriteMatrix(std::string_view name, const MatrixI64& m) {
  VITRINE_RETURN_IF_ERROR(CheckName(name));
  return WriteNpy(staging_ / fs::path(std::string(name)), m);
}

Status BundleWriter::WriteIds(std::string_view name, const std::vector<std::string>& ids) {
  VITRINE_RETURN_IF_ERROR(CheckName(name));
  std::string out;
  size_t total = 0;
  for (const auto& id : ids) total += id.size() + 1;
  out.reserve(total);
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    if (id.empty() || id.find_first_of("\r\n") != std::string::npos) {
      return Status::InvalidArgument(std::string(name) + ": id " + std::to_string(i) + " (\"" +
                                     id.substr(0, 40) + "\") is empty or contains a line break");
    }
    out += id;
    out += '\n';
  }
  return WriteFileAtomic(staging_ / fs::path(std::string(name)), out);
}

Status BundleWriter::Remove(std::string_view name) {
  VITRINE_RETURN_IF_ERROR(CheckName(name));
  std::error_code ec;
  fs::remove(staging_ / fs::path(std::string(name)), ec);
  if (ec) return Status::IOError(std::string(name) + ": cannot remove: " + ec.message());
  return Status::OK();
}

bool BundleWriter::Has(std::string_view name) const {
  if (!CheckName(name).ok()) return false;
  std::error_code ec;
  return fs::is_regular_file(staging_ / fs::path(std::string(name)), ec);
}

Status BundleWriter::Commit() {
  if (staging_.empty()) throw std::logic_error("BundleWriter::Commit called twice or after move");
  json files = json::object();
  std::vector<fs::path> dirs{staging_};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(staging_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string rel = p.lexically_relative(staging_).generic_string();
    const auto st = it->symlink_status(ec);
    if (fs::is_directory(st)) {
      dirs.push_back(p);
      continue;
    }
    if (rel == kBundleManifestName) continue;  // a stale one from Update's source; rewritten
    if (!fs::is_regular_file(st)) {
      return Status::InvalidArgument(p.string() + ": not a regular file; bundles hold only files");
    }
    if (!IsPlainName(rel)) {
      return Status::InvalidArgument(p.string() + ": hidden or unusual name in a bundle");
    }
    VITRINE_ASSIGN_OR_RETURN(uint64_t h, Xxh64File(p));
    const uint64_t size = fs::file_size(p, ec);
    if (ec) return Status::IOError(p.string() + ": cannot stat: " + ec.message());
    // Files written through path() were not synced by their writer.
    VITRINE_RETURN_IF_ERROR(FsyncPath(p));
    files[rel] = {{"size", size}, {"xxh64", Hex64(h)}};
  }
  if (ec) return Status::IOError(staging_.string() + ": cannot list: " + ec.message());

  manifest_["format"] = kBundleFormatName;
  manifest_["format_version"] = kBundleFormatVersion;
  if (manifest_.contains("created_at")) {
    manifest_["updated_at"] = UtcNow();
  } else {
    manifest_["created_at"] = UtcNow();
  }
  manifest_["created_by"] = kBundleCreatedBy;
  manifest_["files"] = std::move(files);
  VITRINE_RETURN_IF_ERROR(
      WriteFileAtomic(staging_ / kBundleManifestName, manifest_.dump(2) + "\n"));
  for (const fs::path& d : dirs) VITRINE_RETURN_IF_ERROR(FsyncPath(d));

  VITRINE_RETURN_IF_ERROR(ReplaceDirectory(staging_, final_dir_));
  staging_.clear();
  // Make the rename itself durable.
  const fs::path parent = final_dir_.has_parent_path() ? final_dir_.parent_path() : fs::path(".");
  return FsyncPath(parent);
}

}  // namespace vitrine
