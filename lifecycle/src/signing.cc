#include "cyclecast/lifecycle/signing.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "cyclecast/pipeline/export.h"  // sha256_hex

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxKeyFileBytes = 256;

static_assert(crypto_sign_PUBLICKEYBYTES == kPublicKeyBytes);
static_assert(crypto_sign_BYTES == kSignatureBytes);
static_assert(crypto_sign_SEEDBYTES == sizeof(SigningKey::seed));

// sodium_init is idempotent and thread-safe; it only fails when the system has no entropy source.
bool sodium_ready() {
  return sodium_init() >= 0;
}

std::string_view trimmed(std::string_view text) {
  const auto space = [](char ch) { return std::isspace(static_cast<unsigned char>(ch)) != 0; };
  while (!text.empty() && space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && space(text.back()))
    text.remove_suffix(1);
  return text;
}

// Decodes exactly out.size() bytes of hex (kParse unless the text is exactly that).
bool from_hex(std::string_view text, std::span<uint8_t> out) {
  size_t written = 0;
  if (text.size() != 2 * out.size()) return false;
  return sodium_hex2bin(out.data(), out.size(), text.data(), text.size(), nullptr, &written,
                        nullptr) == 0 &&
         written == out.size();
}

bool from_base64(std::string_view text, std::span<uint8_t> out) {
  size_t written = 0;
  const char* end = nullptr;
  return sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &written,
                           &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
         written == out.size() && end == text.data() + text.size();
}

SigningKey key_from_seed(const std::array<uint8_t, 32>& seed) {
  SigningKey key;
  key.seed = seed;
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> secret{};
  crypto_sign_seed_keypair(key.public_key.data(), secret.data(), seed.data());
  sodium_memzero(secret.data(), secret.size());
  return key;
}

Error io_error(const std::string& what, const fs::path& path) {
  return make_error(ErrorCode::kIo, what + " " + path.string() + ": " + std::strerror(errno));
}

// Writes the new key to a private temporary file and links it into place, so that two processes
// creating the key at once end with one key, and a reader never sees half a file.
Result<void> create_key_file(const fs::path& key_file) {
  std::array<uint8_t, 32> seed{};
  randombytes_buf(seed.data(), seed.size());
  const std::string text = to_hex(seed) + "\n";
  sodium_memzero(seed.data(), seed.size());
  const fs::path temporary = key_file.string() + ".tmp." + std::to_string(::getpid());
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot create the signing key file", temporary);
  const bool written = ::fchmod(fd, 0600) == 0 &&
                       ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temporary.c_str());
    errno = saved_errno;
    return io_error("cannot write the signing key file", temporary);
  }
  const int linked = ::link(temporary.c_str(), key_file.c_str());
  const int link_errno = errno;
  ::unlink(temporary.c_str());
  if (linked != 0 && link_errno != EEXIST) {
    errno = link_errno;
    return io_error("cannot create the signing key file", key_file);
  }
  return {};
}

Result<void> ensure_key_directory(const fs::path& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create the key directory " + directory.string() +
                                          ": " + ec.message());
  }
  return {};
}

// Refuses a key file others could read or replace: not a regular file, or any group/other bit.
Result<void> check_key_file_mode(const fs::path& key_file, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "signing key " + key_file.string() + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(ErrorCode::kInvalidArgument,
                      "signing key " + key_file.string() + " has mode " + mode +
                          ": group and others must have no access (chmod 600 " + key_file.string() +
                          ")");
  }
  return {};
}

}  // namespace

std::string to_hex(std::span<const uint8_t> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

std::string to_base64(std::span<const uint8_t> bytes) {
  const size_t length = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(length, '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

Result<std::string> sha256_file_hex(const fs::path& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return io_error("cannot open", path);
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::vector<uint8_t> chunk(size_t{1} << 16);
  size_t got = 0;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), file)) > 0)
    crypto_hash_sha256_update(&state, chunk.data(), got);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return make_error(ErrorCode::kIo, "cannot read " + path.string());
  std::array<uint8_t, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256_final(&state, digest.data());
  return to_hex(digest);
}

std::string key_id(const PublicKey& key) {
  return sha256_hex(key).substr(0, 16);
}

Result<PublicKey> parse_public_key(std::string_view text) {
  const std::string_view key_text = trimmed(text);
  PublicKey key{};
  if (from_hex(key_text, key) || from_base64(key_text, key)) return key;
  return make_error(ErrorCode::kParse,
                    "not an Ed25519 public key: expected 64 hex digits or 44 characters of "
                    "base64 (as `cyclecast bundle key export` writes)");
}

Result<SigningKey> load_signing_key(const fs::path& key_file) {
  const int fd = ::open(key_file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open the signing key", key_file);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return io_error("cannot stat the signing key", key_file);
  }
  if (auto ok = check_key_file_mode(key_file, st); !ok) {
    ::close(fd);
    return ok.error();
  }
  char buffer[kMaxKeyFileBytes + 1];
  const ssize_t length = ::read(fd, buffer, sizeof buffer);
  ::close(fd);
  if (length < 0) return io_error("cannot read the signing key", key_file);
  std::array<uint8_t, 32> seed{};
  const std::string_view text(buffer, static_cast<size_t>(length));
  const bool ok = static_cast<size_t>(length) <= kMaxKeyFileBytes && from_hex(trimmed(text), seed);
  sodium_memzero(buffer, sizeof buffer);
  if (!ok) {
    return make_error(ErrorCode::kCorrupt, "signing key " + key_file.string() +
                                               " does not hold 64 hex digits (an Ed25519 seed)");
  }
  const SigningKey key = key_from_seed(seed);
  sodium_memzero(seed.data(), seed.size());
  return key;
}

Result<SigningKey> load_or_create_signing_key(const fs::path& state_dir) {
  if (!sodium_ready()) return make_error(ErrorCode::kIo, "libsodium could not be initialized");
  const fs::path key_file = state_dir / kSigningKeyRelativePath;
  if (auto ok = ensure_key_directory(key_file.parent_path()); !ok) return ok.error();
  struct stat st {};
  if (::lstat(key_file.c_str(), &st) != 0) {
    if (errno != ENOENT) return io_error("cannot stat the signing key", key_file);
    // The directory is made private too; an existing one keeps the mode its owner chose.
    ::chmod(key_file.parent_path().c_str(), 0700);
    if (auto created = create_key_file(key_file); !created) return created.error();
  }
  return load_signing_key(key_file);
}

Signature sign(std::span<const uint8_t> message, const SigningKey& key) {
  std::array<uint8_t, crypto_sign_SECRETKEYBYTES> secret{};
  PublicKey public_key{};
  crypto_sign_seed_keypair(public_key.data(), secret.data(), key.seed.data());
  Signature signature{};
  crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), secret.data());
  sodium_memzero(secret.data(), secret.size());
  return signature;
}

bool verify_signature(std::span<const uint8_t> message, std::span<const uint8_t> signature,
                      const PublicKey& key) {
  if (signature.size() != kSignatureBytes) return false;
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     key.data()) == 0;
}

}  // namespace cyclecast::bundle
