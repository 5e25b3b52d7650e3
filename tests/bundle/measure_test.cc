// measure.h: the linker-map and harness-output readers on fixed text, and the measurement of a
// real (tiny) run's student on the Cortex-M4 under QEMU, as `bundle build --measure` and
// retraining do it. The QEMU tests need scripts/setup's gcc-arm-none-eabi and qemu-system-arm.
#include "cyclecast/lifecycle/measure.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cyclecast/lifecycle/bundle.h"
#include "temp_dir.h"
#include "tiny_run.h"

namespace cyclecast::bundle {
namespace {

using cyclecast::bundle::testing::tiny_run_dir;
using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

// Shaped like arm-none-eabi-ld's map: discarded sections first (not counted), then long names
// split over two lines, archive members, .data counted in flash and RAM.
constexpr const char* kMap = R"(Discarded input sections

 .text.unused   0x00000000       0x40 obj/cc_student.c.o

Memory Configuration

Linker script and memory map

 .text          0x00000400      0x200 obj/cc_student.c.o
 .text.cc_requantize_multiplier
                0x00000600       0x30 obj/cc_requantize.c.o
 .rodata        0x00000630      0x100 obj/model_data.c.o
 .text          0x00000730       0x80 obj/cc_node.c.o
 .text          0x000007b0       0x20 /usr/lib/arm-none-eabi/newlib/thumb/libc.a(libc_a-memset.o)
 .data          0x20000000        0x8 obj/cc_tanh.c.o
 .bss           0x20000008      0x400 obj/node_harness.c.o
 COMMON         0x20000408       0x10 obj/model_data.c.o
)";

TEST(LinkerMap, GroupsSectionsByObjectAfterTheMemoryMapOnly) {
  const MapSizes sizes = read_linker_map(kMap);
  EXPECT_EQ(sizes.flash.at("runtime"), 0x200 + 0x30 + 0x8);
  EXPECT_EQ(sizes.flash.at("model"), 0x100);
  EXPECT_EQ(sizes.flash.at("node"), 0x80);
  EXPECT_EQ(sizes.flash.at("libc"), 0x20);
  EXPECT_EQ(sizes.ram.at("runtime"), 0x8);
  EXPECT_EQ(sizes.ram.at("harness"), 0x400);
  EXPECT_EQ(sizes.ram.at("model"), 0x10);
  EXPECT_TRUE(read_linker_map("").flash.empty());
}

TEST(HarnessFigures, ReadsKeyValueLinesAndIgnoresTheRest) {
  const auto figures = harness_figures("forecasts 3\nnode init failed\nframe_ticks 120\nx 1 2\n");
  EXPECT_EQ(figures.size(), 2u);
  EXPECT_EQ(figures.at("forecasts"), 3);
  EXPECT_EQ(figures.at("frame_ticks"), 120);
}

TEST(SyntheticProbe, FillsOneWindowThenProbesTheNextCycle) {
  const ProbeFrames probe = synthetic_probe(3);
  EXPECT_EQ(std::count(probe.frames.begin(), probe.frames.end(), '\n'), 3);
  EXPECT_EQ(probe.frames.rfind("cc1 CY 1 probe 1 ", 0), 0u) << probe.frames;
  EXPECT_EQ(probe.probe.rfind("cc1 CY 4 probe 4 ", 0), 0u) << probe.probe;
}

class MeasureOnTarget : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!target_tools_available({})) GTEST_SKIP() << "gcc-arm-none-eabi or qemu-system-arm missing";
  }
  // The tiny run's bundle contents, its footprint measured with `tools`.
  static Result<BundleContents> collect_measured(const TargetTools& tools) {
    RunBundleOptions options;
    options.run_dir = tiny_run_dir().string();
    options.model_version = "tiny-m";
    options.measure_with = tools;
    return collect_run(options);
  }
};

TEST_F(MeasureOnTarget, ABundleBuiltWithMeasureCarriesMeasuredFigures) {
  auto contents = collect_measured(TargetTools{});
  ASSERT_TRUE(contents.ok()) << contents.error().message;
  const Footprint& f = contents->manifest.footprint;
  EXPECT_EQ(f.kind, "measured");
  EXPECT_NE(f.method.find("qemu-system-arm"), std::string::npos) << f.method;
  // The tiny student (W 20, H 10, width 4) is far inside the Nano's budget (docs/firmware.md), and
  // the runtime alone is some kilobytes of code.
  ASSERT_TRUE(f.flash_bytes && f.ram_bytes && f.stack_bytes && f.instructions);
  EXPECT_GT(*f.flash_bytes, 1000);
  EXPECT_LE(*f.flash_bytes, 16 * 1024);
  EXPECT_GT(*f.ram_bytes, 0);
  EXPECT_LE(*f.ram_bytes, 4 * 1024);
  EXPECT_GT(*f.stack_bytes, 0);
  EXPECT_GT(*f.instructions, 1000) << "the clock did not count";
  EXPECT_LE(*f.instructions, 64000);
  EXPECT_FALSE(f.cycles.has_value()) << "QEMU counts instructions, not cycles";
}

// cyclecastd.service has MemoryDenyWriteExecute=yes, which refuses QEMU's usual JIT buffer; the
// measurement runs QEMU with split-wx and so works inside the unit's filter.
TEST_F(MeasureOnTarget, QemuRunsWhereMemoryMayNotBeWritableAndExecutable) {
  const TempDir dir;
  const auto wrapper = dir / "qemu-in-unit";
  write_file(wrapper, "#!/bin/sh\nexec '" + std::string(CYCLECAST_BINARY_DIR) +
                          "/bin/deny_write_execute' qemu-system-arm \"$@\"\n");
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
  TargetTools tools;
  tools.qemu = wrapper.string();
  ASSERT_TRUE(target_tools_available(tools));
  auto contents = collect_measured(tools);
  ASSERT_TRUE(contents.ok()) << contents.error().message;
  EXPECT_EQ(contents->manifest.footprint.kind, "measured");
  // The filter is real: QEMU without split-wx cannot make its translation buffer executable.
  const auto log = dir / "refused.txt";
  const int refused = std::system(("'" + wrapper.string() +
                                   "' -M mps2-an386 -nographic -monitor none -serial none "
                                   "-kernel /dev/null >'" +
                                   log.string() + "' 2>&1")
                                      .c_str());
  EXPECT_NE(refused, 0);
  EXPECT_NE(read_file(log).find("mprotect"), std::string::npos) << read_file(log);
}

TEST_F(MeasureOnTarget, AMissingToolOrAFileAndAMeasurementTogetherAreRefused) {
  TargetTools missing;
  missing.qemu = "cyclecast-test-no-such-qemu";
  EXPECT_FALSE(target_tools_available(missing));
  auto contents = collect_measured(missing);
  ASSERT_FALSE(contents.ok());
  EXPECT_EQ(contents.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(contents.error().message.find("cyclecast-test-no-such-qemu"), std::string::npos)
      << contents.error().message;

  RunBundleOptions options;
  options.run_dir = tiny_run_dir().string();
  options.model_version = "tiny-m";
  options.measure_with = TargetTools{};
  options.footprint_path = "footprint.json";
  auto both = collect_run(options);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace cyclecast::bundle
