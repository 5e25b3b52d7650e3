// Digests, key files and signatures: the key is created once with mode 0600 and reused, a key
// file others can read is refused, and public keys read back in both exported forms.
#include "cyclecast/lifecycle/signing.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "temp_dir.h"

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

std::span<const uint8_t> bytes_of(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST(Sha256, MatchesTheFips180Vectors) {
  EXPECT_EQ(sha256_hex(bytes_of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(bytes_of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  TempDir dir;
  write_file(dir / "abc", "abc");
  auto file_digest = sha256_file_hex(dir / "abc");
  ASSERT_TRUE(file_digest.ok());
  EXPECT_EQ(*file_digest, sha256_hex(bytes_of("abc")));
  EXPECT_FALSE(sha256_file_hex(dir / "missing").ok());
}

TEST(SigningKey, IsCreatedOnFirstUseWithMode0600AndReused) {
  TempDir dir;
  auto first = load_or_create_signing_key(dir / "state");
  ASSERT_TRUE(first.ok()) << first.error().message;
  const fs::path key_file = dir / "state" / kSigningKeyRelativePath;
  EXPECT_EQ(mode_of(key_file), 0600u);
  EXPECT_EQ(mode_of(key_file.parent_path()), 0700u);
  auto second = load_or_create_signing_key(dir / "state");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(first->public_key, second->public_key);
  EXPECT_EQ(first->seed, second->seed);
  EXPECT_FALSE(fs::exists(key_file.string() + ".tmp." + std::to_string(::getpid())));
}

TEST(SigningKey, RefusesAKeyFileGroupOrOthersCanRead) {
  TempDir dir;
  ASSERT_TRUE(load_or_create_signing_key(dir.path()).ok());
  const fs::path key_file = dir / kSigningKeyRelativePath;
  for (const fs::perms loose : {fs::perms::group_read, fs::perms::others_read,
                                fs::perms::others_write, fs::perms::group_exec}) {
    fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write | loose);
    auto key = load_or_create_signing_key(dir.path());
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(key.error().message.find("group and others must have no access"), std::string::npos)
        << key.error().message;
    EXPECT_NE(key.error().message.find("chmod 600"), std::string::npos);
  }
  fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_TRUE(load_or_create_signing_key(dir.path()).ok());
}

TEST(SigningKey, RefusesASymlinkAndCorruptContents) {
  TempDir dir;
  ASSERT_TRUE(load_or_create_signing_key(dir / "real").ok());
  fs::create_directories(dir / "linked" / "keys");
  fs::create_symlink(dir / "real" / kSigningKeyRelativePath,
                     dir / "linked" / kSigningKeyRelativePath);
  EXPECT_FALSE(load_or_create_signing_key(dir / "linked").ok());

  fs::create_directories(dir / "bad" / "keys");
  const fs::path bad = dir / "bad" / kSigningKeyRelativePath;
  write_file(bad, "not a key\n");
  fs::permissions(bad, fs::perms::owner_read | fs::perms::owner_write);
  auto key = load_or_create_signing_key(dir / "bad");
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.error().code, ErrorCode::kCorrupt);
}

TEST(PublicKey, ReadsBackHexAndBase64AndRefusesAnythingElse) {
  TempDir dir;
  auto key = load_or_create_signing_key(dir.path());
  ASSERT_TRUE(key.ok());
  auto from_hex = parse_public_key("  " + to_hex(key->public_key) + "\n");
  ASSERT_TRUE(from_hex.ok());
  EXPECT_EQ(*from_hex, key->public_key);
  const std::string base64 = to_base64(key->public_key);
  EXPECT_EQ(base64.size(), 44u);
  auto from_base64 = parse_public_key(base64 + "\n");
  ASSERT_TRUE(from_base64.ok());
  EXPECT_EQ(*from_base64, key->public_key);
  for (const std::string& bad :
       {std::string(""), to_hex(key->public_key).substr(2), to_hex(key->public_key) + "00",
        base64.substr(0, 40), std::string(64, 'g')}) {
    EXPECT_FALSE(parse_public_key(bad).ok()) << bad;
  }
  EXPECT_EQ(key_id(key->public_key).size(), 16u);
}

TEST(Signature, VerifiesOnlyTheSignedBytesWithTheSigningKey) {
  TempDir dir;
  auto key = load_or_create_signing_key(dir / "a");
  auto other = load_or_create_signing_key(dir / "b");
  ASSERT_TRUE(key.ok() && other.ok());
  EXPECT_NE(key->public_key, other->public_key);
  const std::string message = "{\"model_version\": \"v1\"}\n";
  const Signature signature = sign(bytes_of(message), *key);
  EXPECT_TRUE(verify_signature(bytes_of(message), signature, key->public_key));
  EXPECT_FALSE(verify_signature(bytes_of(message), signature, other->public_key));
  std::string changed = message;
  changed[3] ^= 1;
  EXPECT_FALSE(verify_signature(bytes_of(changed), signature, key->public_key));
  EXPECT_FALSE(
      verify_signature(bytes_of(message), std::span(signature).first(63), key->public_key));
}

}  // namespace
}  // namespace cyclecast::bundle
