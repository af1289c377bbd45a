#include "core/pseudonym.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <utility>

#include "core/file_util.h"

namespace vitrine {

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

Result<Pseudonymizer> Pseudonymizer::FromKey(std::string key) {
  if (key.size() >= kMinKeyBytes && key.find_first_not_of(key[0]) == std::string::npos) {
    return Status::InvalidArgument(
        "the pseudonym key is one byte repeated: not a secret "
        "(e.g. head -c 32 /dev/urandom | base64 > key)");
  }
  if (key.size() < kMinKeyBytes) {
    return Status::InvalidArgument("the pseudonym key has " + std::to_string(key.size()) +
                                   " bytes, expected at least " + std::to_string(kMinKeyBytes) +
                                   " (e.g. head -c 32 /dev/urandom | base64 > key)");
  }
  return Pseudonymizer(std::move(key));
}

Result<Pseudonymizer> Pseudonymizer::FromKeyFile(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string key, ReadFileRaw(path));
  // Trailing white space is not part of the key: an editor adding or
  // removing a final newline must not change every pseudonym.
  while (!key.empty() &&
         (key.back() == '\n' || key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) {
    key.pop_back();
  }
  auto p = FromKey(std::move(key));
  if (!p.ok()) return p.status().WithContext(path.string());
  return p;
}

std::string Pseudonymizer::Of(std::string_view id) const {
  return "p" + HmacSha256Hex(key_, id).substr(0, 32);
}

}  // namespace vitrine
