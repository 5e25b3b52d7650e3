// Digests, Ed25519 keys and signatures for bundles (libsodium). The signing key lives in the
// state directory as keys/bundle-signing.key (docs/bundles.md, "Keys"): created on first use with
// mode 0600 inside a 0700 directory, and refused when group or others may read or write it.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/pipeline/export.h"
#include "cyclecast/result.h"

namespace cyclecast::bundle {

inline constexpr size_t kPublicKeyBytes = 32;
inline constexpr size_t kSignatureBytes = 64;
inline constexpr const char* kSigningKeyRelativePath = "keys/bundle-signing.key";

using PublicKey = std::array<uint8_t, kPublicKeyBytes>;
using Signature = std::array<uint8_t, kSignatureBytes>;

struct SigningKey {
  std::array<uint8_t, 32> seed{};  // the secret: libsodium derives the key pair from it
  PublicKey public_key{};
};

// Lower-case hex SHA-256 of `bytes` (64 characters): the project's one, pipeline's.
using pipeline::sha256_hex;
// The same of a file's contents, read in chunks (for data snapshots of any size). kIo on failure.
Result<std::string> sha256_file_hex(const std::filesystem::path& path);

std::string to_hex(std::span<const uint8_t> bytes);
std::string to_base64(std::span<const uint8_t> bytes);  // standard alphabet, with padding

// A short fingerprint naming a public key in manifests and messages: the first 16 hex digits of
// the SHA-256 of its 32 bytes.
std::string key_id(const PublicKey& key);

// A public key as `cyclecast bundle key export` writes it: 64 hex digits or 44 characters of
// base64, surrounded by whitespace at most. kParse otherwise.
Result<PublicKey> parse_public_key(std::string_view text);

// The key in state_dir/keys/bundle-signing.key, created (with its directory) when absent.
// Errors: kIo (cannot create or read), kInvalidArgument (the file's mode lets group or others in,
// or it is not a regular file), kCorrupt (the file's contents are not a key).
Result<SigningKey> load_or_create_signing_key(const std::filesystem::path& state_dir);
// Loads an existing key file with the same checks, never creating one.
Result<SigningKey> load_signing_key(const std::filesystem::path& key_file);

// Detached Ed25519 signature (crypto_sign_detached) of `message`.
Signature sign(std::span<const uint8_t> message, const SigningKey& key);
bool verify_signature(std::span<const uint8_t> message, std::span<const uint8_t> signature,
                      const PublicKey& key);

}  // namespace cyclecast::bundle
