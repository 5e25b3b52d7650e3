// The Arduino sketch's sources as prepare_sketch.sh lays them out compile for the Nano's
// Cortex-M4F without any include path, as the Arduino build compiles them (gnu11, whose default
// would contract floats into FMAs: cc_node.c must turn that off itself). The sketch itself needs
// the Arduino core, which this machine does not have.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "node_fixture.h"
#include "node_qemu.h"
#include "temp_dir.h"

namespace cyclecast {
namespace {

TEST(ArduinoSketch, PreparedSourcesCompileForTheNanoWithoutIncludePaths) {
  if (testing::run_command("arm-none-eabi-gcc --version").status != 0)
    GTEST_SKIP() << "arm-none-eabi-gcc not installed";
  const auto cells = testing::generated_cells(3, 60, 2);
  pipeline::FeatureOptions options;
  options.input_len = 16;
  options.horizon = 12;
  const auto spec = *pipeline::fit_feature_spec(cells, options);
  const auto student = testing::random_student(spec, pipeline::make_windows(cells, spec, 4), 4, 1);
  const testing::TempDir dir;
  ASSERT_TRUE(pipeline::write_exported_model(*pipeline::export_model(student, spec, "ino"),
                                             dir.path() / "model"));
  const auto sketch = dir.path() / "cyclecast_node";
  std::filesystem::create_directories(sketch);
  const auto prepared = testing::run_command(
      std::string(CYCLECAST_SOURCE_DIR) + "/firmware/arduino/prepare_sketch.sh '" +
      (dir.path() / "model").string() + "' '" + sketch.string() + "'");
  ASSERT_EQ(prepared.status, 0) << prepared.output;
  for (const char* file :
       {"cc_student.c", "cc_requantize.c", "cc_tanh.c", "cc_node.c", "model_data.c"}) {
    const auto compiled = testing::run_command(
        "cd '" + (sketch / "src").string() +
        "' && arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -Os "
        "-std=gnu11 -Wall -Wextra -Werror -c " +
        file + " -o /dev/null");
    EXPECT_EQ(compiled.status, 0) << file << ":\n" << compiled.output;
  }
}

}  // namespace
}  // namespace cyclecast
