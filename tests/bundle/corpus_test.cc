// The fuzz seeds of manifest_fuzz (tests/fuzz/corpus/manifest_fuzz/) are also the corpus of bad
// inputs: each must give its own error. The archives were written by Python's tarfile, a second
// ustar implementation, so the reader is also checked against a writer that is not ours.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/lifecycle/manifest.h"
#include "temp_dir.h"

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;

std::string seed(const std::string& name) {
  return cyclecast::testing::read_file(fs::path(CYCLECAST_SOURCE_DIR) /
                                       "tests/fuzz/corpus/manifest_fuzz" / name);
}

std::vector<uint8_t> seed_bytes(const std::string& name) {
  const std::string text = seed(name);
  return {text.begin(), text.end()};
}

TEST(ManifestCorpus, TheValidSeedParses) {
  auto manifest = parse_manifest(seed("manifest-valid.json"));
  ASSERT_TRUE(manifest.ok()) << manifest.error().message;
  EXPECT_EQ(manifest->model_version, "seed-1");
  EXPECT_EQ(manifest->files.size(), 2u);
}

TEST(ManifestCorpus, EachBadSeedGivesItsError) {
  const std::pair<const char*, const char*> cases[] = {
      {"manifest-unknown-version.json", "unknown bundle format version 2"},
      {"manifest-unknown-field.json", "unknown field 'signature'"},
      {"manifest-traversal-path.json", "unsafe member name '../../etc/passwd'"},
      {"manifest-duplicate-file.json", "'model/model.bin' is listed twice"},
      {"manifest-bad-digest.json", "'files[0].sha256' is not 64 lower-case hex digits"},
      {"manifest-missing-horizon.json", "missing field 'horizon'"},
      {"manifest-bad-footprint-kind.json", "expected 'measured' or 'estimate'"},
      {"manifest-not-json.txt", "invalid JSON"},
  };
  for (const auto& [name, message] : cases) {
    auto manifest = parse_manifest(seed(name));
    ASSERT_FALSE(manifest.ok()) << name;
    EXPECT_NE(manifest.error().message.find(message), std::string::npos)
        << name << ": " << manifest.error().message;
  }
}

TEST(ArchiveCorpus, EachBadSeedGivesItsError) {
  const std::pair<const char*, const char*> cases[] = {
      {"bundle-wrong-key.tar", "wrong key: the bundle was signed by key 0123456789abcdef"},
      {"bundle-symlink.tar", "'firmware/src/evil.c' is a link"},
      {"bundle-dotdot.tar", "unsafe member name '../evil'"},
      {"bundle-directory.tar", "has type '5'"},
      {"bundle-truncated.tar", "truncated archive"},
      {"bundle-gnu-longname.tar", "not a POSIX ustar header"},
      {"bundle-no-signature.tar", "missing file 'manifest.sig'"},
      // Made by tests/bundle/foreign_tars.py: header fields the writer never sets that way.
      {"bundle-mode-4777.tar", "member 'model/model.bin': header field 'mode' is \"0004777\""},
      {"bundle-uid-base256.tar", "header field 'uid' is a base-256 number"},
      {"bundle-uname-root.tar", "header field 'uname' is \"root\""},
      {"bundle-mtime-later.tar", "member 'model/model.bin': header field 'mtime'"},
      {"bundle-type-aregtype.tar", "member 'model/model.bin' has type NUL"},
  };
  const PublicKey key{};
  for (const auto& [name, message] : cases) {
    auto verified = verify_bundle(seed_bytes(name), key);
    ASSERT_FALSE(verified.ok()) << name;
    EXPECT_NE(verified.error().message.find(message), std::string::npos)
        << name << ": " << verified.error().message;
  }
  // Python's ustar output reads member for member (it pads to 10 KiB with zeros, as tar does).
  auto members = read_archive(seed_bytes("bundle-wrong-key.tar"));
  ASSERT_TRUE(members.ok()) << members.error().message;
  ASSERT_EQ(members->size(), 4u);
  EXPECT_EQ((*members)[3].name, "firmware/src/cc_tanh.c");
  EXPECT_EQ(std::string((*members)[3].data.begin(), (*members)[3].data.end()), "/* runtime */\n");
}

}  // namespace
}  // namespace cyclecast::bundle
