// Forgetting a customer (docs/privacy.md): their rows out of a bundle, their
// lines out of interaction and event-log CSV files, and their id on a forget
// list that the next build leaves out (`vitrine build --forget-list`).
//
//   std::set<std::string> users = {"U0000012"};
//   auto b = ForgetInBundle("shop/bundle", users);     // one atomic rewrite
//   auto n = ForgetInCsv("shop/events.csv", users);    // lines removed
//   AddToForgetList("shop/forgotten.txt", users);
//
// Every call is idempotent (a second call finds nothing and writes nothing)
// and atomic: a failure leaves the previous file or bundle as it was. The
// CLI (`vitrine forget`) and the server (`POST /forget`, which also drops
// the session stores' entries and rewrites its own event log under the
// log's lock) both go through here.
//
// What forgetting does not undo: aggregates over everyone that the user's
// events shaped (item factors, popularity, item-item neighbours, the taste
// mixture, trend and gift counts, the learned ranker) keep that influence
// until the next build without the user; StillInfluenced lists them for a
// bundle.
//
// Thread safety: no shared state; calls on the same file or bundle must not
// run concurrently (the server serialises its own).
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/bundle_schema.h"

namespace vitrine {

struct ForgetBundleSummary {
  int64_t users = 0;            // of the given users, how many the bundle held
  int64_t history_entries = 0;  // history entries removed with them
};

// Removes `users` from the bundle at `dir` in one atomic rewrite: their ids
// from user_ids.txt and opt_out.txt, their rows of cf/user_factors.npy and
// history/*.npy, and manifest counts.users / counts.interactions. Users the
// bundle does not hold are skipped; when it holds none nothing is written.
// Errors: a bundle that does not open, or I/O.
Result<ForgetBundleSummary> ForgetInBundle(const std::filesystem::path& dir,
                                           const std::set<std::string>& users);

// Rewrites the CSV at `path` (plain, not gzip) without the records whose
// `user_id` column is one of `users`; the header and every other record are
// kept byte for byte. Returns the records removed; with none the file is not
// touched. Errors: a missing user_id column or a malformed record (naming
// file and line), a gzip file, or I/O.
Result<int64_t> ForgetInCsv(const std::filesystem::path& path, const std::set<std::string>& users);

// OK for an id that can be forgotten and listed: 1 to 256 bytes of UTF-8,
// no control characters, no space or tab at either end (a list line is
// read trimmed), not starting with '#' (a list comment). InvalidArgument
// naming the id otherwise.
Status CheckForgettableId(std::string_view id);

// The first line of every forget list; AddToForgetList refuses to add to a
// file that does not start with it (a mistyped path must not damage a CSV).
inline constexpr char kForgetListHeader[] =
    "# users forgotten by vitrine forget: `vitrine build --forget-list` leaves them out";

// The forget list at `path`: one user id per line, '#' comments (the format
// of ReadIdList). NotFound naming the path when it does not exist.
Result<std::set<std::string>> ReadForgetList(const std::filesystem::path& path);
// Adds the ids not yet listed (atomically; creates the file with its
// header). Returns how many were added. Every id must pass
// CheckForgettableId.
Result<int64_t> AddToForgetList(const std::filesystem::path& path,
                                const std::set<std::string>& users);

// What in a bundle still carries a forgotten user's influence until the next
// build, one line each ("cf/item_factors.npy: item factors (ALS)").
std::vector<std::string> StillInfluenced(const BundleManifest& manifest);

}  // namespace vitrine
