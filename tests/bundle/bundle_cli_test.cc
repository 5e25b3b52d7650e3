// `cyclecast bundle ...` run as an operator would: key export, build, verify, inspect, and the
// refusals with their exit codes.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_run.h"
#include "cyclecast/lifecycle/archive.h"
#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/lifecycle/measure.h"
#include "cyclecast/lifecycle/signing.h"
#include "temp_dir.h"
#include "tiny_run.h"

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;
using cyclecast::bundle::testing::tiny_run_dir;
using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

using cyclecast::testing::CliRun;

CliRun run_cli(const TempDir& dir, const std::string& args) {
  return cyclecast::testing::run_cyclecast(dir, args);
}

class BundleCli : public ::testing::Test {
 protected:
  std::string state() const { return "--state-dir '" + (dir_ / "state").string() + "'"; }
  std::string bundle_path() const { return (dir_ / "model.ccb").string(); }
  CliRun build(const std::string& extra = "") {
    return run_cli(dir_, "bundle build --run '" + tiny_run_dir().string() +
                             "' --version cli-1 --out '" + bundle_path() + "' " + state() + " " +
                             extra);
  }
  CliRun export_key(const std::string& extra = "") {
    return run_cli(dir_, "bundle key export " + state() + " " + extra);
  }
  TempDir dir_;
};

TEST_F(BundleCli, KeyExportCreatesThePrivateKeyAndPrintsThePublicOne) {
  const CliRun hex = export_key();
  ASSERT_EQ(hex.exit_code, 0) << hex.err;
  EXPECT_EQ(hex.out.size(), 65u);  // 64 hex digits and a newline
  EXPECT_TRUE(parse_public_key(hex.out).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "state" / kSigningKeyRelativePath).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const CliRun base64 = export_key("--format base64");
  ASSERT_EQ(base64.exit_code, 0) << base64.err;
  EXPECT_EQ(base64.out.size(), 45u);
  EXPECT_EQ(*parse_public_key(base64.out), *parse_public_key(hex.out));  // the same key again
  const CliRun to_file = export_key("--out '" + (dir_ / "pub.key").string() + "'");
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_EQ(read_file(dir_ / "pub.key"), hex.out);
  EXPECT_EQ(export_key("--format pem").exit_code, 2);
}

TEST_F(BundleCli, BuildThenVerifyThenInspect) {
  const CliRun built = build();
  ASSERT_EQ(built.exit_code, 0) << built.err;
  EXPECT_NE(built.out.find("wrote " + bundle_path() + ": model cli-1"), std::string::npos);
  ASSERT_EQ(export_key("--out '" + (dir_ / "pub.key").string() + "'").exit_code, 0);
  const CliRun verified =
      run_cli(dir_, "bundle verify --public-key '" + (dir_ / "pub.key").string() + "' '" +
                        bundle_path() + "'");
  ASSERT_EQ(verified.exit_code, 0) << verified.err;
  EXPECT_NE(verified.out.find("ok: " + bundle_path() + " is model cli-1"), std::string::npos);
  // --extract writes the verified files, byte for byte, into a new directory only.
  const auto extract = [&] {
    return run_cli(dir_, "bundle verify --public-key '" + (dir_ / "pub.key").string() +
                             "' --extract '" + (dir_ / "unpacked").string() + "' '" +
                             bundle_path() + "'");
  };
  const CliRun extracted = extract();
  ASSERT_EQ(extracted.exit_code, 0) << extracted.err;
  EXPECT_NE(extracted.out.find("extracted "), std::string::npos) << extracted.out;
  const auto model_bin = dir_ / "unpacked" / "model" / "model.bin";
  ASSERT_TRUE(std::filesystem::is_regular_file(model_bin));
  const std::string archive = read_file(bundle_path());
  auto members = read_bundle_unverified(
      std::span(reinterpret_cast<const std::uint8_t*>(archive.data()), archive.size()));
  ASSERT_TRUE(members.ok());
  for (const auto& member : members->files) {
    if (member.name == "model/model.bin") {
      EXPECT_EQ(read_file(model_bin), std::string(member.data.begin(), member.data.end()));
    }
  }
  const CliRun again = extract();
  EXPECT_EQ(again.exit_code, 3);  // refused, as any input the command will not take
  EXPECT_NE(again.err.find("is not empty"), std::string::npos) << again.err;

  const CliRun inspected = run_cli(dir_, "bundle inspect '" + bundle_path() + "'");
  ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
  EXPECT_NE(inspected.out.find("model version:   cli-1"), std::string::npos) << inspected.out;
  EXPECT_NE(inspected.out.find("footprint (estimate)"), std::string::npos);
  EXPECT_NE(inspected.out.find("model/model.bin"), std::string::npos);
  const CliRun json = run_cli(dir_, "bundle inspect --json '" + bundle_path() + "'");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto manifest = nlohmann::json::parse(json.out);
  EXPECT_EQ(manifest["model_version"], "cli-1");
  EXPECT_EQ(manifest["format_version"], 1);

  EXPECT_EQ(build().exit_code, 1);  // the bundle exists: refused without --force
  EXPECT_EQ(build("--force").exit_code, 0);
}

TEST_F(BundleCli, BuildWithMeasureCarriesTheFootprintMeasuredUnderQemu) {
  if (!target_tools_available({})) GTEST_SKIP() << "gcc-arm-none-eabi or qemu-system-arm missing";
  const CliRun built = build("--measure");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const CliRun inspected = run_cli(dir_, "bundle inspect '" + bundle_path() + "'");
  ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
  EXPECT_NE(inspected.out.find("footprint (measured)"), std::string::npos) << inspected.out;
  // A footprint is read or measured, not both: a usage error.
  const CliRun both = build("--force --measure --footprint '" + (dir_ / "f.json").string() + "'");
  EXPECT_EQ(both.exit_code, 2) << both.err;
}

TEST_F(BundleCli, VerifyRefusesATamperedBundleAndTheWrongKeyWithExitCode3) {
  ASSERT_EQ(build().exit_code, 0);
  ASSERT_EQ(export_key("--out '" + (dir_ / "pub.key").string() + "'").exit_code, 0);
  auto members = read_archive([&] {
    const std::string text = read_file(bundle_path());
    return std::vector<uint8_t>(text.begin(), text.end());
  }());
  ASSERT_TRUE(members.ok());
  (*members)[2].data[0] ^= 1;
  const auto tampered = write_archive(*members, 0);
  write_file(dir_ / "tampered.ccb", std::string(tampered->begin(), tampered->end()));
  const CliRun changed =
      run_cli(dir_, "bundle verify --public-key '" + (dir_ / "pub.key").string() + "' '" +
                        (dir_ / "tampered.ccb").string() + "'");
  EXPECT_EQ(changed.exit_code, 3);
  EXPECT_NE(changed.err.find("cyclecast bundle verify: changed file '" + (*members)[2].name),
            std::string::npos)
      << changed.err;

  const CliRun other = run_cli(dir_, "bundle key export --state-dir '" + (dir_ / "other").string() +
                                         "' --out '" + (dir_ / "other.key").string() + "'");
  ASSERT_EQ(other.exit_code, 0);
  const CliRun wrong =
      run_cli(dir_, "bundle verify --public-key '" + (dir_ / "other.key").string() + "' '" +
                        bundle_path() + "'");
  EXPECT_EQ(wrong.exit_code, 3);
  EXPECT_NE(wrong.err.find("wrong key"), std::string::npos) << wrong.err;

  const CliRun missing =
      run_cli(dir_, "bundle verify --public-key '" + (dir_ / "pub.key").string() + "' '" +
                        (dir_ / "nope.ccb").string() + "'");
  EXPECT_EQ(missing.exit_code, 1);
}

// An operator needs nothing but the unpacked bundle to fill the Arduino sketch, and its C sources
// compile (here with the host's C compiler; arduino-cli is not part of the test machine).
TEST_F(BundleCli, AnUnpackedBundleFillsTheArduinoSketch) {
  if (std::system("command -v tar >/dev/null && command -v cc >/dev/null") != 0)
    GTEST_SKIP() << "needs tar and cc";
  bool have_sketch = false;
  for (const BundleFile& f : runtime_files())
    have_sketch = have_sketch || f.name == "firmware/arduino/prepare_sketch.sh";
  if (!have_sketch) GTEST_SKIP() << "this build embeds no Arduino sketch";
  ASSERT_EQ(build().exit_code, 0);
  const std::string x = (dir_ / "x").string();
  const std::string command =
      "mkdir '" + x + "' && tar -xf '" + bundle_path() + "' -C '" + x + "' && cd '" + x +
      "' && sh firmware/arduino/prepare_sketch.sh model >'" + (dir_ / "prepare.txt").string() +
      "' && cd firmware/arduino/cyclecast_node/src && cc -std=c99 -Wall -Werror -c *.c";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(dir_ / "prepare.txt");
  EXPECT_NE(read_file(dir_ / "prepare.txt").find("(model cli-1)"), std::string::npos);
  for (const char* file : {"cc_node.c", "cc_student.c", "model_data.c", "model_data.h"})
    EXPECT_TRUE(fs::exists(dir_ / "x/firmware/arduino/cyclecast_node/src" / file)) << file;
}

TEST_F(BundleCli, BuildRefusesAKeyFileOthersCanRead) {
  ASSERT_EQ(export_key().exit_code, 0);
  fs::permissions(dir_ / "state" / kSigningKeyRelativePath,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  const CliRun built = build();
  EXPECT_EQ(built.exit_code, 3);
  EXPECT_NE(built.err.find("has mode 0640: group and others must have no access"),
            std::string::npos)
      << built.err;
  EXPECT_FALSE(fs::exists(bundle_path()));
}

}  // namespace
}  // namespace cyclecast::bundle
