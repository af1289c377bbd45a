#include "serve/curation.h"

#include "core/csv.h"
#include "core/value_parse.h"

namespace vitrine {
namespace {

// Positions a log may hold; the server allows at most its max_k.
constexpr int64_t kMaxReplayPosition = 1000000;

constexpr std::string_view kActions[] = {"approve", "reject", "never",
                                         "pin",     "revoke", "shortlist"};

bool KnownAction(std::string_view a) {
  for (const auto k : kActions) {
    if (a == k) return true;
  }
  return false;
}

}  // namespace

Status CheckCurationRecord(const CurationRecord& r, int64_t max_position) {
  if (!KnownAction(r.action)) {
    return Status::InvalidArgument(
        "'action' must be approve, reject, never, pin, revoke or "
        "shortlist, got '" +
        r.action.substr(0, 40) + "'");
  }
  if (r.action == "pin" && (r.position < 1 || r.position > max_position)) {
    return Status::InvalidArgument("'position' of a pin must be a whole number from 1 to " +
                                   std::to_string(max_position));
  }
  if (r.action != "pin" && r.action != "shortlist" && r.position != 0) {
    return Status::InvalidArgument("'position' is for pin and shortlist only");
  }
  return Status::OK();
}

std::string CurationStore::FormatLine(const CurationRecord& r) {
  std::string line = std::to_string(r.timestamp);
  for (const std::string* f : {&r.user, &r.item, &r.action}) {
    line.push_back(',');
    AppendCsvField(*f, &line);
  }
  line.push_back(',');
  if (r.position > 0) line += std::to_string(r.position);
  line.push_back(',');
  AppendCsvField(r.advisor, &line);
  line.push_back(',');
  AppendCsvField(r.note, &line);
  line.push_back('\n');
  return line;
}

Result<std::unique_ptr<CurationStore>> CurationStore::Open(const std::filesystem::path& path) {
  std::unique_ptr<CurationStore> store(new CurationStore());
  VITRINE_ASSIGN_OR_RETURN(store->log_, AppendLog::Open(path, {kCurationLogHeader}, "curation log",
                                                        FsyncPolicy::kAlways));
  VITRINE_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> csv, CsvReader::Open(path));
  int col[7];
  const char* names[7] = {"timestamp", "user_id", "item_id", "action",
                          "position",  "advisor", "note"};
  for (int i = 0; i < 7; ++i) {
    VITRINE_ASSIGN_OR_RETURN(col[i], csv->ColumnIndex(names[i]));
  }
  while (csv->Next()) {
    CurationRecord r;
    if (!ParseTimestamp(csv->field(col[0]), &r.timestamp)) {
      return Status::Corruption(csv->Where() +
                                ": column 'timestamp' expects seconds since the "
                                "epoch, found '" +
                                std::string(csv->field(col[0])) + "'");
    }
    r.user = csv->field(col[1]);
    r.item = csv->field(col[2]);
    r.action = csv->field(col[3]);
    if (r.user.empty() || r.item.empty()) {
      return Status::Corruption(csv->Where() +
                                ": columns 'user_id' and 'item_id' expect ids, "
                                "found an empty one");
    }
    if (!csv->field(col[4]).empty()) {
      const auto p = ParseNumber(csv->field(col[4]));
      if (!p || *p < 1 || *p > static_cast<double>(kMaxReplayPosition) ||
          *p != static_cast<double>(static_cast<int64_t>(*p))) {
        return Status::Corruption(csv->Where() +
                                  ": column 'position' expects a whole number from 1 to " +
                                  std::to_string(kMaxReplayPosition) + ", found '" +
                                  std::string(csv->field(col[4])) + "'");
      }
      r.position = static_cast<int64_t>(*p);
    }
    r.advisor = csv->field(col[5]);
    r.note = csv->field(col[6]);
    Status st = CheckCurationRecord(r, kMaxReplayPosition);
    if (!st.ok()) return Status::Corruption(csv->Where() + ": " + st.message());
    store->ApplyLocked(r);
  }
  VITRINE_RETURN_IF_ERROR(csv->status());
  return store;
}

void CurationStore::ApplyLocked(const CurationRecord& r) {
  history_[r.user].push_back(r);
  if (r.action == "shortlist") return;
  ClientCuration& c = state_[r.user];
  c.approved.erase(r.item);
  c.rejected.erase(r.item);
  c.never.erase(r.item);
  c.pins.erase(r.item);
  if (r.action == "approve") c.approved.insert(r.item);
  if (r.action == "reject") c.rejected.insert(r.item);
  if (r.action == "never") c.never.insert(r.item);
  if (r.action == "pin") {
    // One item per position: the newer pin takes it, the older is unpinned.
    std::erase_if(c.pins, [&](const auto& pin) { return pin.second == r.position; });
    c.pins[r.item] = r.position;
  }
}

Status CurationStore::Record(const std::vector<CurationRecord>& records) {
  std::string lines;
  for (const CurationRecord& r : records) {
    // What Open would refuse to replay is never written.
    VITRINE_RETURN_IF_ERROR(CheckCurationRecord(r, kMaxReplayPosition));
    lines += FormatLine(r);
  }
  std::lock_guard<std::mutex> lock(mu_);
  VITRINE_RETURN_IF_ERROR(log_->Append(lines));
  for (const CurationRecord& r : records) ApplyLocked(r);
  return Status::OK();
}

ClientCuration CurationStore::Of(const std::string& user) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = state_.find(user);
  return it == state_.end() ? ClientCuration{} : it->second;
}

std::vector<CurationRecord> CurationStore::History(const std::string& user) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = history_.find(user);
  return it == history_.end() ? std::vector<CurationRecord>{} : it->second;
}

Result<int64_t> CurationStore::RemoveUsers(const std::set<std::string>& users) {
  std::lock_guard<std::mutex> lock(mu_);
  VITRINE_ASSIGN_OR_RETURN(int64_t removed, log_->RemoveUsers(users));
  for (const std::string& u : users) {
    state_.erase(u);
    history_.erase(u);
  }
  return removed;
}

}  // namespace vitrine
