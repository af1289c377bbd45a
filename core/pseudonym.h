// Pseudonymous user ids (docs/privacy.md, session-only serving): a keyed
// hash, HMAC-SHA256 under a secret key that lives outside every log.
//
//   auto p = Pseudonymizer::FromKeyFile("/etc/vitrine/pseudonym.key");
//   p->Of("U0000012")  // "p5f2a...": 'p' and 32 hex digits (128 bits)
//
// The same id and key always give the same pseudonym, so a log of
// pseudonyms still trains a model; without the key a pseudonym cannot be
// linked back to the id, even for ids that are easy to enumerate. Rotating
// the key (a new key file, then a restart) gives everyone new pseudonyms:
// history under the old key can no longer be tied to the new.
//
// Thread safety: const methods are safe from several threads.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace vitrine {

// HMAC-SHA256 of `data` under `key`, as 64 lowercase hex digits.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

class Pseudonymizer {
 public:
  static constexpr size_t kMinKeyBytes = 32;

  // The key is the file's bytes without trailing white space; at least
  // kMinKeyBytes of them, not all the same byte. Errors name the file.
  static Result<Pseudonymizer> FromKeyFile(const std::filesystem::path& path);
  static Result<Pseudonymizer> FromKey(std::string key);

  // 'p' and the first 32 hex digits of HmacSha256Hex(key, id).
  std::string Of(std::string_view id) const;

 private:
  explicit Pseudonymizer(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace vitrine
