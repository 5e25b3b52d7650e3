#include "token.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

namespace cyclecast::http {
namespace {

constexpr std::size_t kMaxTokenFileBytes = 4096;

TokenDigest digest_of(std::string_view text) {
  TokenDigest digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(text.data()),
                     text.size());
  return digest;
}

std::string_view trimmed(std::string_view text) {
  const char* space = " \t\r\n";
  const std::size_t first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  const std::size_t last = text.find_last_not_of(space);
  return text.substr(first, last - first + 1);
}

}  // namespace

Result<TokenDigest> read_token_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  struct stat info {};
  if (::stat(name.c_str(), &info) != 0) {
    const int error = errno;
    const ErrorCode code = error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
    return make_error(code, "cannot read the API token file " + name + ": " + std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the API token file " + name + " is not a regular file");
  }
  if ((info.st_mode & (S_IROTH | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return make_error(ErrorCode::kInvalidArgument, "the API token file " + name +
                                                       " is accessible by other users (mode " +
                                                       mode + "); run: chmod o-rwx " + name);
  }
  if (static_cast<std::size_t>(info.st_size) > kMaxTokenFileBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the API token file " + name + " is larger than 4 KiB");
  }
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return make_error(ErrorCode::kIo, "cannot read the API token file " + name);
  }
  const std::string_view token = trimmed(text);
  if (token.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "the API token file " + name + " is empty");
  }
  return digest_of(token);
}

bool token_matches(const TokenDigest& token, std::string_view presented) {
  const TokenDigest digest = digest_of(presented);
  return sodium_memcmp(digest.data(), token.data(), digest.size()) == 0;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return {};
  }
  return authorization.substr(kScheme.size());
}

}  // namespace cyclecast::http
