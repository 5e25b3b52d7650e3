#include "tiny_run.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "cyclecast/pipeline/train.h"
#include "fading_cells.h"
#include "temp_dir.h"

namespace cyclecast::bundle::testing {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

using cyclecast::testing::write_fading_cells_csv;

void train_into(const fs::path& out) {
  TempDir tmp;
  write_fading_cells_csv(tmp / "data", 18, 160);
  pipeline::ProtocolOptions p;
  p.input_len = 20;
  p.horizon = 10;
  p.use_optional_features = false;
  p.train_stride = 2;
  auto protocol = pipeline::heldout_protocol(tmp / "data", p);
  if (!protocol) {
    ADD_FAILURE() << protocol.error().message;
    return;
  }
  pipeline::TrainingOptions options;
  options.teacher = pipeline::TeacherKind::kLiquid;
  options.teacher_budget_s = 1.0;
  options.teacher_max_epochs = 2;
  options.widths = {4};
  options.features = 3;
  options.prune_ratios = {};
  options.student_epochs = 2;
  options.stage2_epochs = 1;
  // The epochs above, not the production floor of optimizer steps (7,200 and 2,400), which took
  // about 250 s per test binary under the -O0 ThreadSanitizer build.
  options.min_student_steps = 0;
  options.min_stage2_steps = 0;
  options.calibration_windows = 64;
  options.threads = 2;
  auto result = pipeline::run_training(*protocol, options, out.string());
  if (!result) ADD_FAILURE() << result.error().message;
}

// ctest runs every test case in a process of its own, and a sanitizer build trains slowly, so the
// run is made once per build of the test binary and kept in the build tree (keyed by the binary's
// modification time, so a rebuilt binary trains afresh). A lock file serialises processes that
// start at once; run_training renames its output into place only when complete.
fs::path shared_run() {
  const fs::path self = fs::read_symlink("/proc/self/exe");
  struct stat st {};
  ::stat(self.c_str(), &st);
  const fs::path root = fs::path(CYCLECAST_BINARY_DIR) / "test-fixtures";
  fs::create_directories(root);
  const std::string key = self.filename().string() + "-" + std::to_string(st.st_mtim.tv_sec) + "-" +
                          std::to_string(st.st_mtim.tv_nsec);
  const fs::path run = root / ("tiny-run-" + key);
  const fs::path lock_file = root / ("tiny-run-" + self.filename().string() + ".lock");
  const int lock = ::open(lock_file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock >= 0) ::flock(lock, LOCK_EX);
  if (!fs::exists(run)) {
    // Runs of older builds of this binary are of no further use.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("tiny-run-" + self.filename().string() + "-", 0) == 0 &&
          entry.path() != lock_file)
        fs::remove_all(entry.path(), ec);
    }
    train_into(run);
  }
  if (lock >= 0) ::close(lock);
  return run;
}

}  // namespace

const fs::path& tiny_run_dir() {
  static const fs::path run = shared_run();
  return run;
}

}  // namespace cyclecast::bundle::testing
