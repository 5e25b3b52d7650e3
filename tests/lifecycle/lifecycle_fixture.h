// Shared by the lifecycle tests: a real cyclecast database of generated fading cells
// (tests/support/fading_cells.h) and a Retrainer configuration small enough that a whole run takes
// seconds.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/lifecycle/retrainer.h"
#include "cyclecast/storage/database.h"
#include "fading_cells.h"

namespace cyclecast::lifecycle::testing {

using cyclecast::testing::write_fading_cells;

// W = 20, H = 10, one width-4 student, a one-second teacher.
inline RetrainerConfig tiny_config(const std::filesystem::path& database,
                                   const std::filesystem::path& state) {
  RetrainerConfig config;
  config.database_path = database;
  config.state_dir = state;
  // This test executable is not cyclecastd: the built one trains.
  config.worker_executable = CYCLECAST_BINARY_DIR "/bin/cyclecastd";
  config.protocol_options.input_len = 20;
  config.protocol_options.horizon = 10;
  config.protocol_options.train_stride = 2;
  // An idle-class run crawls while other tests use the CPU; the priority is checked on a run
  // that trains nothing (retrainer_test.cc).
  config.lower_priority = false;
  // The estimate, whatever is installed; retrainer_test.cc measures on one run.
  config.measure = RetrainerConfig::Measure::kOff;
  auto& o = config.training;
  o.teacher = pipeline::TeacherKind::kLiquid;
  o.teacher_budget_s = 1.0;
  o.teacher_max_epochs = 2;
  o.widths = {4};
  o.features = 3;
  o.prune_ratios = {};
  o.student_epochs = 2;
  o.stage2_epochs = 1;
  o.min_student_steps = 0;
  o.min_stage2_steps = 0;
  o.calibration_windows = 64;
  o.threads = 2;
  return config;
}

}  // namespace cyclecast::lifecycle::testing
