// The in-flash layouts of the firmware (cc_student_model, cc_node_model, the tanh table) as the
// Cortex-M4 compiler lays them out, the C99 static assertion that pins them, and the cost model's
// constants that count them. The headers pin every offset for whichever compiler includes them;
// these tests hold the target's figures and check that a failed pin really stops a C99 build.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "cyclecast/cc_student.h"
#include "cyclecast/models/cost.h"
#include "cyclecast/pipeline/export.h"
#include "node_qemu.h"
#include "temp_dir.h"

namespace cyclecast {
namespace {

// Compiles `body` after the firmware headers with the Cortex-M4 compiler as C99 and the project's
// C warnings as errors (the runtime's own build), and returns the compiler's result.
testing::CommandResult compile_for_cortex_m4(const std::string& body) {
  const testing::TempDir dir;
  const auto source = dir.path() / "pin.c";
  std::ofstream(source) << "#include \"cyclecast/cc_student.h\"\n#include \"cc_node.h\"\n"
                        << body << "\n";
  return testing::run_command(
      "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -std=c99 -Wall -Wextra -Wpedantic -Werror -I'" +
      std::string(CYCLECAST_SOURCE_DIR) + "/firmware/include' -I'" +
      std::string(CYCLECAST_SOURCE_DIR) + "/firmware/node' -c '" + source.string() +
      "' -o /dev/null");
}

bool have_cortex_m4_compiler() {
  return testing::run_command("arm-none-eabi-gcc --version").status == 0;
}

// 116, 76 and 16 bytes are the figures docs/firmware.md and the cost table use.
TEST(FirmwareLayout, DescriptorsHaveTheirDocumentedSizesOnTheCortexM4) {
  if (!have_cortex_m4_compiler()) GTEST_SKIP() << "arm-none-eabi-gcc not installed";
  const auto compiled = compile_for_cortex_m4(
      "CC_STATIC_ASSERT(sizeof(cc_student_model) == 116u, student_model_bytes);\n"
      "CC_STATIC_ASSERT(sizeof(cc_student_model) == CC_STUDENT_MODEL_BYTES(4), formula);\n"
      "CC_STATIC_ASSERT(sizeof(cc_node_model) == 76u, node_model_bytes);\n"
      "CC_STATIC_ASSERT(sizeof(cc_node_interval) == 16u, node_interval_bytes);");
  EXPECT_EQ(compiled.status, 0) << compiled.output;
  EXPECT_EQ(CC_STUDENT_MODEL_BYTES(4), 116u);
}

// The fallback for C99 (no _Static_assert) must fail the build, not merely warn, and name the pin.
TEST(FirmwareLayout, C99StaticAssertStopsTheBuildWhenItsConditionIsFalse) {
  if (!have_cortex_m4_compiler()) GTEST_SKIP() << "arm-none-eabi-gcc not installed";
  const auto failed =
      compile_for_cortex_m4("CC_STATIC_ASSERT(sizeof(cc_student_model) == 117u, wrong_size);");
  EXPECT_NE(failed.status, 0);
  EXPECT_NE(failed.output.find("cc_static_assert_wrong_size"), std::string::npos) << failed.output;
}

// The cost model counts the runtime's real descriptor and table, and the measured cost file the
// pipeline reads (firmware/target/measured_cost.json) has not gone stale against them.
TEST(FirmwareLayout, CostConstantsCountTheRuntimesDescriptorAndTanhTable) {
  const models::CostConstants defaults;
  EXPECT_EQ(defaults.descriptor_bytes, static_cast<int64_t>(CC_STUDENT_MODEL_BYTES(4)));
  EXPECT_EQ(defaults.tanh_table_bytes, static_cast<int64_t>(sizeof cc_tanh_q15_table));
  const auto measured = pipeline::read_cost_file(std::string(CYCLECAST_SOURCE_DIR) +
                                                 "/firmware/target/measured_cost.json");
  ASSERT_TRUE(measured.ok()) << measured.error().message;
  EXPECT_EQ(measured->descriptor_bytes, defaults.descriptor_bytes);
  EXPECT_EQ(measured->tanh_table_bytes, defaults.tanh_table_bytes);
}

}  // namespace
}  // namespace cyclecast
