// One tiny real training run (pipeline::run_training on generated fading cells, the setup of
// tests/pipeline/train_test.cc), made once per build of the test binary and shared by its tests
// (kept under <build>/test-fixtures/).
#pragma once

#include <filesystem>

namespace cyclecast::bundle::testing {

// The run directory (student.ccm, student.int8, report.json, report.html); the test fails when
// the run could not be made. Tests must not change it.
const std::filesystem::path& tiny_run_dir();

}  // namespace cyclecast::bundle::testing
