// A real bundle re-packed by GNU tar and by Python's tarfile with header fields our writer never
// sets that way (a setuid, world-writable mode, owners, base-256 numbers, pax and GNU headers):
// `cyclecast bundle verify` refuses each, naming the member and the field, before `tar -xf` as
// root could create what the header says. Re-packed with the writer's own settings, it verifies.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_run.h"
#include "temp_dir.h"
#include "tiny_run.h"

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::CliRun;
using cyclecast::testing::TempDir;

constexpr const char* kTarget = "model/model.bin";

// One bundle made by `cyclecast bundle build`, its public key, and the tar and Python re-packs.
class ForeignTar : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("command -v tar >/dev/null && command -v python3 >/dev/null") != 0) return;
    dir_ = new TempDir();
    error_ = make_archives();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (dir_ == nullptr) GTEST_SKIP() << "needs tar and python3";
    // A failure here, not in SetUpTestSuite, where gtest would report the tests as skipped.
    ASSERT_EQ(error_, "");
  }

  // Builds the bundle and its re-packs; what went wrong, or "".
  static std::string make_archives() {
    const std::string state = "--state-dir '" + (*dir_ / "state").string() + "'";
    const CliRun built = cyclecast::testing::run_cyclecast(
        *dir_, "bundle build --run '" + testing::tiny_run_dir().string() +
                   "' --version foreign-1 --out '" + bundle().string() + "' " + state);
    if (built.exit_code != 0) return "bundle build: " + built.err;
    const CliRun key = cyclecast::testing::run_cyclecast(
        *dir_, "bundle key export " + state + " --out '" + (*dir_ / "pub.key").string() + "'");
    if (key.exit_code != 0) return "bundle key export: " + key.err;
    fs::create_directory(out());
    const std::string script =
        (fs::path(CYCLECAST_SOURCE_DIR) / "tests/bundle/foreign_tars.py").string();
    if (std::system(("python3 '" + script + "' '" + bundle().string() + "' " + kTarget + " '" +
                     out().string() + "'")
                        .c_str()) != 0) {
      return "foreign_tars.py failed";
    }
    // GNU tar packs the unpacked files again, in the bundle's order.
    const std::string in_dir = "cd '" + dir_->path().string() + "' && ";
    if (std::system(
            (in_dir + "mkdir x && tar -xf model.ccb -C x && tar -tf model.ccb > order").c_str()) !=
        0) {
      return "could not unpack the bundle with tar";
    }
    const std::pair<const char*, const char*> repacks[] = {
        {"gnu-tar-mode-4777", "--format=ustar --owner=0 --group=0 --numeric-owner --mode=4777"},
        {"gnu-tar-owner-root", "--format=ustar --owner=root:0 --group=root:0 --mode=0644"},
        {"gnu-tar-writer-settings",
         "--format=ustar --owner=0 --group=0 --numeric-owner --mode=0644"},
        {"gnu-tar-gnu-format", "--format=gnu --owner=0 --group=0 --numeric-owner --mode=0644"},
        {"gnu-tar-posix-format", "--format=posix --owner=0 --group=0 --numeric-owner --mode=0644"},
    };
    for (const auto& [name, options] : repacks) {
      const std::string command = in_dir + "tar -cf out/" + name + ".tar --mtime=@1790000000 " +
                                  options + " -C x --no-recursion -T order";
      if (std::system(command.c_str()) != 0) return std::string("tar for ") + name + " failed";
    }
    return "";
  }

  static fs::path bundle() { return *dir_ / "model.ccb"; }
  static fs::path out() { return *dir_ / "out"; }
  static CliRun verify(const std::string& name) {
    return cyclecast::testing::run_cyclecast(*dir_, "bundle verify --public-key '" +
                                                        (*dir_ / "pub.key").string() + "' '" +
                                                        (out() / (name + ".tar")).string() + "'");
  }

  static TempDir* dir_;
  static std::string error_;
};

TempDir* ForeignTar::dir_ = nullptr;
std::string ForeignTar::error_;

TEST_F(ForeignTar, TheWritersSettingsVerifyWhoeverPacksThem) {
  const CliRun python = verify("writer-settings");
  EXPECT_EQ(python.exit_code, 0) << python.err;
  EXPECT_NE(python.out.find("ok: "), std::string::npos) << python.out;
}

TEST_F(ForeignTar, EveryOtherHeaderIsRefusedNamingTheMemberAndField) {
  const std::string model = "member 'model/model.bin'";
  const std::string manifest = "member 'manifest.json'";
  const std::pair<const char*, std::string> cases[] = {
      {"mode-4777", model + ": header field 'mode' is \"0004777\", the writer makes \"0000644\""},
      {"mode-spaced", model + ": header field 'mode' is \"   644 \""},
      {"uid-1000", model + ": header field 'uid' is \"0001750\""},
      {"gid-1000", model + ": header field 'gid' is \"0001750\""},
      {"uname-root", model + ": header field 'uname' is \"root\", the writer makes \"\""},
      {"gname-root", model + ": header field 'gname' is \"root\""},
      {"mtime-later", model + ": header field 'mtime' is"},
      {"type-aregtype", model + " has type NUL"},
      {"uid-base256", model + ": header field 'uid' is a base-256 number"},
      {"size-base256", model + ": header field 'size' is a base-256 number"},
      {"pax-comment", "has type 'x'"},
      {"pax-large-uid", "has type 'x'"},
      {"gnu-format", "is not a POSIX ustar header"},
      {"gnu-large-uid", "is not a POSIX ustar header"},
      {"gnu-tar-mode-4777", manifest + ": header field 'mode' is \"0004777\""},
      {"gnu-tar-owner-root", manifest + ": header field 'uname' is \"root\""},
      // GNU tar writes device numbers 0 for regular files, where our writer leaves them empty.
      {"gnu-tar-writer-settings", manifest + ": header field 'devmajor' is \"0000000\""},
      {"gnu-tar-gnu-format", "is not a POSIX ustar header"},
      {"gnu-tar-posix-format", "has type 'x'"},
  };
  for (const auto& [name, message] : cases) {
    const CliRun verified = verify(name);
    EXPECT_EQ(verified.exit_code, 3) << name << ": " << verified.out << verified.err;
    EXPECT_NE(verified.err.find(message), std::string::npos) << name << ": " << verified.err;
  }
}

}  // namespace
}  // namespace cyclecast::bundle
