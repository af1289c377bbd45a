#include "engine/forget.h"

#include <algorithm>

#include "core/bundle.h"
#include "core/csv.h"
#include "core/file_util.h"
#include "core/json_util.h"
#include "core/matrix.h"

namespace vitrine {

namespace fs = std::filesystem;
namespace f = bundle_file;

Result<ForgetBundleSummary> ForgetInBundle(const fs::path& dir,
                                           const std::set<std::string>& users) {
  ForgetBundleSummary out;
  VITRINE_ASSIGN_OR_RETURN(Bundle b, Bundle::Open(dir, VerifyMode::kSizesOnly));
  if (!b.Has(f::kUserIds)) return out;  // a bundle without interactions knows no one
  VITRINE_ASSIGN_OR_RETURN(BundleManifest manifest, BundleManifest::Read(b));
  VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> ids, b.ReadIds(f::kUserIds));
  std::vector<int32_t> keep;
  for (size_t u = 0; u < ids.size(); ++u) {
    if (users.count(ids[u])) {
      ++out.users;
    } else {
      keep.push_back(static_cast<int32_t>(u));
    }
  }
  std::vector<std::string> opted_out;
  bool opt_out_changed = false;
  if (b.Has(f::kOptOut)) {
    VITRINE_ASSIGN_OR_RETURN(opted_out, b.ReadIds(f::kOptOut));
    opt_out_changed =
        std::erase_if(opted_out, [&](const std::string& id) { return users.count(id) > 0; }) > 0;
  }
  if (out.users == 0 && !opt_out_changed) return out;

  VITRINE_ASSIGN_OR_RETURN(BundleWriter w, BundleWriter::Update(dir));
  std::vector<std::string> kept_ids;
  kept_ids.reserve(keep.size());
  for (int32_t u : keep) kept_ids.push_back(ids[static_cast<size_t>(u)]);
  VITRINE_RETURN_IF_ERROR(w.WriteIds(f::kUserIds, kept_ids));
  if (b.Has(f::kOptOut)) {
    if (opted_out.empty()) {
      VITRINE_RETURN_IF_ERROR(w.Remove(f::kOptOut));
    } else {
      VITRINE_RETURN_IF_ERROR(w.WriteIds(f::kOptOut, opted_out));
    }
  }
  if (b.Has(f::kUserFactors)) {
    VITRINE_ASSIGN_OR_RETURN(Matrix factors, b.ReadMatrix(f::kUserFactors));
    if (factors.rows != ids.size()) {
      return Status::Corruption(b.path(f::kUserFactors).string() + ": " +
                                std::to_string(factors.rows) + " rows, user_ids.txt has " +
                                std::to_string(ids.size()));
    }
    VITRINE_RETURN_IF_ERROR(w.WriteMatrix(f::kUserFactors, SelectRows(factors, keep)));
  }
  if (b.Has(f::kHistoryIndptr)) {
    VITRINE_ASSIGN_OR_RETURN(StoredHistory history, ReadStoredHistory(b, manifest.counts.items));
    if (history.users() != static_cast<int64_t>(ids.size())) {
      return Status::Corruption(b.path(f::kHistoryIndptr).string() + ": " +
                                std::to_string(history.users()) + " users, user_ids.txt has " +
                                std::to_string(ids.size()));
    }
    const StoredHistory kept = history.SelectUsers(keep);
    out.history_entries =
        static_cast<int64_t>(history.indices.size()) - static_cast<int64_t>(kept.indices.size());
    VITRINE_RETURN_IF_ERROR(WriteStoredHistory(&w, kept));
    manifest.counts.interactions -= out.history_entries;
  }
  manifest.counts.users = static_cast<int64_t>(keep.size());
  manifest.Write(&w);
  VITRINE_RETURN_IF_ERROR(w.Commit());
  return out;
}

Result<int64_t> ForgetInCsv(const fs::path& path, const std::set<std::string>& users) {
  VITRINE_ASSIGN_OR_RETURN(std::string data, ReadFileRaw(path));
  if (data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
      static_cast<unsigned char>(data[1]) == 0x8b) {
    return Status::InvalidArgument(path.string() +
                                   ": a gzip file; forget rewrites plain CSV (gunzip it first)");
  }
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> r,
                           CsvReader::FromString(path.string(), data));
  VITRINE_ASSIGN_OR_RETURN(int user_col, r->ColumnIndex("user_id"));
  // Records as (first physical line, dropped); lines are kept or dropped
  // whole, from a record's first line to the next record's.
  std::vector<std::pair<int64_t, bool>> records;
  int64_t dropped = 0;
  while (r->Next()) {
    const bool drop = users.count(std::string(r->field(user_col))) > 0;
    dropped += drop;
    records.emplace_back(r->line(), drop);
  }
  VITRINE_RETURN_IF_ERROR(r->status());
  if (dropped == 0) return int64_t{0};
  std::vector<size_t> line_start = {0};  // byte offset of each physical line (1-based index - 1)
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\n') line_start.push_back(i + 1);
  }
  auto offset = [&](int64_t line) {
    return std::min(line_start[static_cast<size_t>(line - 1)], data.size());
  };
  std::string kept(data, 0, offset(records.front().first));
  for (size_t i = 0; i < records.size(); ++i) {
    const size_t begin = offset(records[i].first);
    const size_t end = i + 1 < records.size() ? offset(records[i + 1].first) : data.size();
    if (!records[i].second) kept.append(data, begin, end - begin);
  }
  VITRINE_RETURN_IF_ERROR(WriteFileAtomic(path, kept));
  return dropped;
}

Status CheckForgettableId(std::string_view id) {
  const bool bad =
      id.empty() || id.size() > 256 || id.front() == '#' || id.front() == ' ' ||
      id.front() == '\t' || id.back() == ' ' || id.back() == '\t' ||
      std::any_of(id.begin(), id.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }) ||
      FindInvalidUtf8(id) != std::string_view::npos;
  if (!bad) return Status::OK();
  return Status::InvalidArgument("user id \"" + Clip(id) +
                                 "\": expected 1 to 256 bytes of UTF-8 without control "
                                 "characters, without a space or tab at either end and not "
                                 "starting with '#'");
}

Result<std::set<std::string>> ReadForgetList(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return Status::NotFound(path.string() +
                            ": no such forget list (vitrine forget "
                            "--forget-list creates it)");
  }
  VITRINE_ASSIGN_OR_RETURN(std::vector<std::string> ids, ReadIdList(path));
  return std::set<std::string>(ids.begin(), ids.end());
}

Result<int64_t> AddToForgetList(const fs::path& path, const std::set<std::string>& users) {
  for (const std::string& id : users) VITRINE_RETURN_IF_ERROR(CheckForgettableId(id));
  std::string text;
  std::set<std::string> listed;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    VITRINE_ASSIGN_OR_RETURN(text, ReadFileRaw(path));
    if (!text.empty() && text.rfind(kForgetListHeader, 0) != 0) {
      return Status::InvalidArgument(
          path.string() + ": not a forget list (its first line is not \"" + kForgetListHeader +
          "\"); give a new file or one written by vitrine forget");
    }
    for (std::string& id : ParseIdList(text)) listed.insert(std::move(id));
    if (!text.empty() && text.back() != '\n') text.push_back('\n');
  }
  if (text.empty()) text = std::string(kForgetListHeader) + "\n";
  int64_t added = 0;
  for (const std::string& id : users) {
    if (listed.count(id)) continue;
    text += id + "\n";
    ++added;
  }
  if (added > 0) VITRINE_RETURN_IF_ERROR(WriteFileAtomic(path, text));
  return added;
}

std::vector<std::string> StillInfluenced(const BundleManifest& m) {
  std::vector<std::string> out;
  if (m.has_block("cf")) {
    out.push_back("cf/item_factors.npy and the cf block of vectors.npy: item factors (ALS)");
  }
  out.push_back("popularity.npy and the pop block: interaction counts");
  if (!m.item_neighbors.is_null()) out.push_back("item_neighbors.bin: item-item co-occurrence");
  if (!m.taste_mixture.is_null()) out.push_back("taste_mixture/: the taste mixture");
  if (m.has_block("trend")) out.push_back("trend/: hourly event counts");
  if (!m.ranker.is_null()) out.push_back("ranker.bin: the learned ranker");
  return out;
}

}  // namespace vitrine
