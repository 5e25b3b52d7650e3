// Bundles built from a real (tiny) training run: the manifest describes the run, the files are
// the exported model, the firmware sources and the report, and verify refuses every tampering
// of the tamper suite, each with its own message.
#include "cyclecast/lifecycle/bundle.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cyclecast/pipeline/export.h"
#include "tar_edit.h"
#include "temp_dir.h"
#include "tiny_run.h"

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;
using cyclecast::bundle::testing::tiny_run_dir;
using cyclecast::bundle::testing::with_raw_member;
using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;
using Json = nlohmann::json;

constexpr const char* kCreatedAt = "2026-11-30T17:00:00Z";

class BundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    keys_ = new TempDir();
    auto a = load_or_create_signing_key(keys_->path() / "a");
    auto b = load_or_create_signing_key(keys_->path() / "b");
    ASSERT_TRUE(a.ok() && b.ok());
    key_ = *a;
    other_key_ = *b;
    RunBundleOptions options;
    options.run_dir = tiny_run_dir().string();
    options.model_version = "tiny-1";
    options.created_at = kCreatedAt;
    auto contents = collect_run(options);
    ASSERT_TRUE(contents.ok()) << contents.error().message;
    contents_ = *contents;
    auto bytes = build_bundle(*contents, key_);
    ASSERT_TRUE(bytes.ok()) << bytes.error().message;
    bundle_ = *bytes;
  }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }
  void SetUp() override { ASSERT_FALSE(bundle_.empty()); }

  static std::vector<ArchiveMember> members() {
    auto read = read_archive(bundle_);
    EXPECT_TRUE(read.ok());
    return read.ok() ? *read : std::vector<ArchiveMember>{};
  }
  static std::vector<uint8_t> archive_of(const std::vector<ArchiveMember>& members) {
    auto archive = write_archive(members, 0);
    EXPECT_TRUE(archive.ok()) << archive.error().message;
    return archive.ok() ? *archive : std::vector<uint8_t>{};
  }
  // The bundle with its manifest edited and signed again by `key`.
  static std::vector<uint8_t> resigned(const std::function<void(Json&)>& edit,
                                       const SigningKey& key) {
    std::vector<ArchiveMember> list = members();
    Json manifest = Json::parse(list[0].data.begin(), list[0].data.end());
    edit(manifest);
    const std::string text = manifest.dump(2) + "\n";
    list[0].data.assign(text.begin(), text.end());
    const Signature signature =
        sign({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, key);
    list[1].data.assign(signature.begin(), signature.end());
    return archive_of(list);
  }
  static std::string refusal(const std::vector<uint8_t>& bytes, const PublicKey& key) {
    auto verified = verify_bundle(bytes, key);
    EXPECT_FALSE(verified.ok());
    return verified.ok() ? std::string("(accepted)") : verified.error().message;
  }

  static TempDir* keys_;
  static SigningKey key_, other_key_;
  static BundleContents contents_;
  static std::vector<uint8_t> bundle_;
};

TempDir* BundleTest::keys_ = nullptr;
SigningKey BundleTest::key_;
SigningKey BundleTest::other_key_;
BundleContents BundleTest::contents_;
std::vector<uint8_t> BundleTest::bundle_;

TEST_F(BundleTest, VerifiesAndHoldsTheModelSourcesAndReport) {
  auto verified = verify_bundle(bundle_, key_.public_key);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  std::map<std::string, std::vector<uint8_t>> files;
  for (const BundleFile& f : verified->files)
    files[f.name] = f.data;
  auto exported = pipeline::export_run(tiny_run_dir(), "tiny-1");
  ASSERT_TRUE(exported.ok()) << exported.error().message;
  EXPECT_EQ(files["model/model.bin"], exported->blob);
  const std::string header(files["model/model_data.h"].begin(), files["model/model_data.h"].end());
  EXPECT_EQ(header, exported->model_data_h);
  EXPECT_EQ(read_file(tiny_run_dir() / "report.json"),
            std::string(files["report/report.json"].begin(), files["report/report.json"].end()));
  EXPECT_EQ(files.count("report/report.html"), 1u);
  EXPECT_EQ(files.count("model/model_data.c"), 1u);
  EXPECT_EQ(files.count("firmware/include/cyclecast/cc_student.h"), 1u);
  EXPECT_EQ(files.count("firmware/src/cc_student.c"), 1u);
  // Members: manifest.json, manifest.sig, then exactly the listed files.
  EXPECT_EQ(verified->manifest.files.size(), files.size());
  EXPECT_EQ(members()[0].name, kManifestName);
  EXPECT_EQ(members()[1].name, kSignatureName);
}

TEST_F(BundleTest, ManifestDescribesTheRun) {
  std::ifstream in(tiny_run_dir() / "report.json");
  const Json report = Json::parse(in);
  const Json& chosen = report["candidates"][report["choice"]["index"].get<size_t>()];
  auto read = read_bundle_unverified(bundle_);
  ASSERT_TRUE(read.ok()) << read.error().message;
  const Manifest& m = read->manifest;
  EXPECT_EQ(m.model_version, "tiny-1");
  EXPECT_EQ(m.created_at, kCreatedAt);
  EXPECT_EQ(m.signing_key_id, key_id(key_.public_key));
  EXPECT_EQ(m.training_run.run_id, report["run_id"]);
  EXPECT_EQ(m.training_run.protocol, "heldout");
  EXPECT_EQ(m.training_run.candidate, chosen["name"]);
  EXPECT_EQ(m.data_snapshot.source, report["data_source"]);
  EXPECT_FALSE(m.data_snapshot.digest.has_value());  // no --data given
  EXPECT_EQ(m.window, 20);
  EXPECT_EQ(m.horizon, 10);
  EXPECT_EQ(m.feature_spec.at("pipeline.input_len"), "20");
  for (const Json& stage : report["stages"]) {
    if (stage["stage"] == "int8" && stage["model"] == chosen["name"]) {
      EXPECT_DOUBLE_EQ(m.heldout.mae.value(), stage["metrics"]["mae"].get<double>());
      EXPECT_EQ(m.heldout.windows, stage["metrics"]["windows"].get<int64_t>());
    }
  }
  EXPECT_EQ(m.footprint.kind, "estimate");
  EXPECT_EQ(m.footprint.flash_bytes, chosen["flash_bytes"].get<int64_t>());
  EXPECT_EQ(m.runtime_abi_version, pipeline::kNodeModelVersion);
}

TEST_F(BundleTest, RuntimeSourcesAreTheSourceTreeFiles) {
  const std::vector<BundleFile> runtime = runtime_files();
  std::set<std::string> names;
  for (const BundleFile& f : runtime) {
    names.insert(f.name);
    // Not EXPECT_EQ: a mismatch would print whole source files.
    EXPECT_TRUE(std::string(f.data.begin(), f.data.end()) ==
                read_file(fs::path(CYCLECAST_SOURCE_DIR) / f.name))
        << f.name << " differs from the source tree (rebuild to embed the current file)";
  }
  for (const char* dir : {"firmware/include/cyclecast", "firmware/src"}) {
    for (const auto& entry : fs::directory_iterator(fs::path(CYCLECAST_SOURCE_DIR) / dir)) {
      const std::string name = std::string(dir) + "/" + entry.path().filename().string();
      EXPECT_EQ(names.count(name), 1u) << name << " is not embedded";
    }
  }
}

TEST_F(BundleTest, SameInputsAndKeyGiveTheSameBytes) {
  auto again = build_bundle(contents_, key_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, bundle_);
}

TEST_F(BundleTest, ADataSnapshotAndMeasuredFootprintAreRecorded) {
  TempDir dir;
  fs::create_directories(dir / "data" / "sub");
  cyclecast::testing::write_file(dir / "data" / "b.csv", "1,2\n");
  cyclecast::testing::write_file(dir / "data" / "sub" / "a.csv", "3\n");
  cyclecast::testing::write_file(dir / "footprint.json",
                                 R"({"flash_bytes": 9100, "ram_bytes": 1800, "stack_bytes": 420,
                                     "instructions": 51000, "method": "linker map + qemu"})");
  RunBundleOptions options;
  options.run_dir = tiny_run_dir().string();
  options.model_version = "tiny-2";
  options.data_path = (dir / "data").string();
  options.footprint_path = (dir / "footprint.json").string();
  auto contents = collect_run(options);
  ASSERT_TRUE(contents.ok()) << contents.error().message;
  const Manifest& m = contents->manifest;
  // The documented digest: SHA-256 of the `sha256sum` listing of the files sorted by path.
  const auto digest = [](const std::string& text) {
    return sha256_hex({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  };
  const std::string listing = digest("1,2\n") + "  b.csv\n" + digest("3\n") + "  sub/a.csv\n";
  EXPECT_EQ(m.data_snapshot.digest, "sha256:" + digest(listing));
  // ... which is what the shell pipeline of docs/bundles.md prints.
  if (std::system("command -v sha256sum >/dev/null 2>&1") == 0) {
    const std::string command = "cd '" + (dir / "data").string() +
                                "' && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d "
                                "'\\n' sha256sum | sha256sum > '" +
                                (dir / "sum.txt").string() + "'";
    ASSERT_EQ(std::system(command.c_str()), 0);
    EXPECT_EQ(read_file(dir / "sum.txt"), digest(listing) + "  -\n");
  }
  EXPECT_NE(m.data_snapshot.digest_of.find("2 files"), std::string::npos);
  EXPECT_EQ(m.footprint.kind, "measured");
  EXPECT_EQ(m.footprint.instructions, 51000);
  EXPECT_EQ(m.footprint.stack_bytes, 420);
  EXPECT_EQ(m.footprint.method, "linker map + qemu");

  cyclecast::testing::write_file(dir / "bad.json", R"({"flash": 1})");
  options.footprint_path = (dir / "bad.json").string();
  auto refused = collect_run(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("unknown or mistyped key 'flash'"), std::string::npos);
}

TEST_F(BundleTest, RefusesAChangedByteInEveryMember) {
  const std::vector<ArchiveMember> original = members();
  for (size_t i = 0; i < original.size(); ++i) {
    std::vector<ArchiveMember> list = original;
    ASSERT_FALSE(list[i].data.empty()) << list[i].name;
    list[i].data[list[i].data.size() / 2] ^= 0x20;
    const std::string error = refusal(archive_of(list), key_.public_key);
    const std::string expected =
        i < 2 ? std::string("bad signature") : "changed file '" + list[i].name + "'";
    EXPECT_NE(error.find(expected), std::string::npos) << list[i].name << ": " << error;
  }
}

TEST_F(BundleTest, RefusesAMissingMember) {
  const std::vector<ArchiveMember> original = members();
  for (size_t i = 0; i < original.size(); ++i) {
    std::vector<ArchiveMember> list = original;
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
    const std::string error = refusal(archive_of(list), key_.public_key);
    EXPECT_NE(error.find("missing file '" + original[i].name + "'"), std::string::npos)
        << original[i].name << ": " << error;
  }
}

TEST_F(BundleTest, RefusesAnExtraMember) {
  std::vector<ArchiveMember> list = members();
  list.push_back({"firmware/src/extra.c", {'/', '*', '*', '/'}});
  EXPECT_NE(refusal(archive_of(list), key_.public_key)
                .find("extra file 'firmware/src/extra.c': in the bundle but not listed"),
            std::string::npos);
}

TEST_F(BundleTest, RefusesTheWrongKey) {
  const std::string error = refusal(bundle_, other_key_.public_key);
  EXPECT_NE(error.find("wrong key: the bundle was signed by key " + key_id(key_.public_key)),
            std::string::npos)
      << error;
}

TEST_F(BundleTest, RefusesABadSignature) {
  // Signed by another key while naming ours: the signature is not ours.
  const std::string forged = refusal(resigned([](Json&) {}, other_key_), key_.public_key);
  EXPECT_NE(forged.find("bad signature"), std::string::npos) << forged;
  std::vector<ArchiveMember> list = members();
  list[1].data.pop_back();
  const std::string short_sig = refusal(archive_of(list), key_.public_key);
  EXPECT_NE(short_sig.find("bad signature: manifest.sig holds 63 bytes"), std::string::npos);
}

TEST_F(BundleTest, RefusesAnUnknownFormatVersionEvenWhenSigned) {
  const std::string error =
      refusal(resigned([](Json& j) { j["format_version"] = 2; }, key_), key_.public_key);
  EXPECT_NE(error.find("unknown bundle format version 2; this cyclecast reads version 1"),
            std::string::npos)
      << error;
  // Sanity: the same re-signing without an edit verifies, so the refusal is the version's.
  EXPECT_TRUE(verify_bundle(resigned([](Json&) {}, key_), key_.public_key).ok());
}

TEST_F(BundleTest, RefusesAManifestNamingAnotherSigner) {
  const std::string error =
      refusal(resigned([&](Json& j) { j["signing_key_id"] = key_id(other_key_.public_key); }, key_),
              key_.public_key);
  EXPECT_NE(error.find("wrong key: the manifest names signing key"), std::string::npos) << error;
}

TEST_F(BundleTest, RefusesATruncatedArchive) {
  for (size_t keep : {bundle_.size() / 2, bundle_.size() - 1, size_t{700}}) {
    const std::vector<uint8_t> cut(bundle_.begin(),
                                   bundle_.begin() + static_cast<std::ptrdiff_t>(keep));
    EXPECT_NE(refusal(cut, key_.public_key).find("truncated archive"), std::string::npos) << keep;
  }
}

TEST_F(BundleTest, RefusesPathTraversalAndLinkMembers) {
  const std::string traversal =
      refusal(with_raw_member(bundle_, "../../etc/cron.d/x", '0', "x"), key_.public_key);
  EXPECT_NE(traversal.find("unsafe member name '../../etc/cron.d/x'"), std::string::npos)
      << traversal;
  const std::string absolute =
      refusal(with_raw_member(bundle_, "/etc/x", '0', "x"), key_.public_key);
  EXPECT_NE(absolute.find("absolute path"), std::string::npos) << absolute;
  const std::string link =
      refusal(with_raw_member(bundle_, "firmware/l", '2', ""), key_.public_key);
  EXPECT_NE(link.find("is a link"), std::string::npos) << link;
}

TEST_F(BundleTest, BuildRefusesReservedNamesAndBadVersions) {
  BundleContents contents = contents_;
  contents.files.push_back({"manifest.sig", {1}});
  EXPECT_FALSE(build_bundle(contents, key_).ok());
  contents = contents_;
  contents.manifest.model_version = "bad version";
  EXPECT_FALSE(build_bundle(contents, key_).ok());
  contents = contents_;
  contents.manifest.created_at = "yesterday";
  EXPECT_FALSE(build_bundle(contents, key_).ok());
}

TEST(CollectRun, NamesTheMissingFileOfARunDirectory) {
  TempDir dir;
  RunBundleOptions options;
  options.run_dir = dir.path().string();
  options.model_version = "v1";
  auto contents = collect_run(options);
  ASSERT_FALSE(contents.ok());
  EXPECT_EQ(contents.error().code, ErrorCode::kNotFound);
  EXPECT_NE(contents.error().message.find("report.json"), std::string::npos);
}

}  // namespace
}  // namespace cyclecast::bundle
