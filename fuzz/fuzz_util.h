// Helpers shared by the libFuzzer harnesses in fuzz/ (docs/reliability.md).
//
// Harnesses run one input at a time in one process; these helpers keep the
// files an input is written to in a per-process scratch directory (on /dev/shm
// when it exists, so writing an input costs no disk I/O), and build the tiny
// bundle the manifest and HTTP harnesses load.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/catalog.h"

namespace vitrine::fuzz {

// A fresh directory for this process ("vitrine-fuzz-<name>-<pid>"), created
// on first use and removed at exit. Aborts if it cannot be created.
const std::filesystem::path& ScratchDir(std::string_view name);

// Writes `bytes` to `path` (truncating); aborts on an I/O error, which is the
// harness's fault, not the input's.
void WriteFileOrDie(const std::filesystem::path& path, std::string_view bytes);
std::string ReadFileOrDie(const std::filesystem::path& path);

// A harness-detected bug (an oracle disagreed): prints `what` and aborts, so
// libFuzzer saves the input as a crash.
[[noreturn]] void Fail(const std::string& what);

// The items.csv of the tiny catalog: 60 items with categorical (brand,
// category, season), numeric (price, rating), bool (in_stock), list (tags)
// and text (title) columns, some values missing.
std::string TinyItemsCsv();
// Its interactions.csv: 40 users, view/cart/purchase/return events with
// ISO-8601 and unix timestamps.
std::string TinyInteractionsCsv();
// The tiny catalog, read with Catalog::ReadCsv (aborts on failure).
const Catalog& TinyCatalog();

// Builds the tiny bundle (cf, content, visual, pop and new blocks; a Flat
// index, single-threaded so the bytes do not depend on scheduling) under
// ScratchDir(name)/bundle once per process and returns its path. Takes about
// a second under ASan.
const std::filesystem::path& TinyBundle(std::string_view name);

}  // namespace vitrine::fuzz
