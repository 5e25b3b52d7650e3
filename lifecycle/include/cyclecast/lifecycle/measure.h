// Measures an exported model on the Cortex-M4 as the node runs it (docs/bundles.md,
// "Footprint"): the node program, the runtime and the model, cross-built with arm-none-eabi-gcc
// for the Nano's Cortex-M4F exactly as the bundle ships them, run under qemu-system-arm
// (mps2-an386, the same instruction set) with an instruction-counted clock. Flash and static RAM
// come from the linker map, the stack from painting, instructions from QEMU's `-icount`.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/lifecycle/archive.h"
#include "cyclecast/lifecycle/manifest.h"
#include "cyclecast/result.h"

namespace cyclecast::bundle {

// firmware/target's start-up code, linker script, semihosting and node harness, compiled into
// this binary like runtime_files().
std::vector<ArchiveMember> target_harness_files();

struct TargetTools {
  std::string gcc = "arm-none-eabi-gcc";
  std::string qemu = "qemu-system-arm";
  std::chrono::seconds timeout{120};     // for each compile, the link and the run
  std::vector<std::string> extra_flags;  // added to every compile (the tests: warnings as errors)
};

// Whether both tools run (`--version` exits 0).
bool target_tools_available(const TargetTools& tools);

// Bytes per object group in a GNU ld map, after "Linker script and memory map" (so discarded
// sections do not count). Groups: runtime (firmware/src), model (model_data), node (cc_node),
// libc (archive members) and harness (the rest).
struct MapSizes {
  std::map<std::string, int64_t> flash;  // .text, .rodata, .data (its initial values)
  std::map<std::string, int64_t> ram;    // .data, .bss, COMMON
};
MapSizes read_linker_map(std::string_view map_text);

// The "key value" lines the node harness prints.
std::map<std::string, int64_t> harness_figures(std::string_view output);

// What one run of the node harness on the target gave.
struct TargetRun {
  std::map<std::string, int64_t> model;  // model_data.h's CC_MODEL_* integers
  MapSizes map;
  std::map<std::string, int64_t> figures;
  std::string transcript;                // the node's answers to `frames` (out.txt)
  double instructions_per_forecast = 0;  // cc_student_forecast alone
  double instructions_per_frame = 0;     // one CY frame that forecasts, end to end
};

// An exported model's C sources (pipeline/export.h), what the node is built with.
struct ModelSources {
  std::string model_data_h, model_data_c;
};

// Cross-builds the node harness with `model` in `work_dir`, feeds it `frames` (node protocol
// frames, which must leave a cell with a full window) and measures `probe` (one more CY frame of
// that cell, so it forecasts). Node buffers are sized for exactly this model, so the RAM figures
// are the model's. kUnsupported when a tool cannot be started, kIo when the build or the run
// fails (the message carries the tool's output).
Result<TargetRun> run_on_target(const ModelSources& model, const std::string& frames,
                                const std::string& probe, const TargetTools& tools,
                                const std::filesystem::path& work_dir);

// The bundle's footprint from a run, kind "measured": flash of runtime and model; RAM of their
// static data, the buffers the node hands them and the stack of a forecast; the node's stack
// over a whole frame; instructions per forecast.
Footprint measured_footprint(const TargetRun& run);

// The whole measurement of a model on synthetic frames, in a temporary directory removed
// afterwards: run_on_target + measured_footprint.
Result<Footprint> measure_model(const ModelSources& model, const TargetTools& tools);

// Frames for run_on_target without real data: `window` cycles of one cell fading linearly, every
// optional feature at a typical value, then one more cycle as the probe.
struct ProbeFrames {
  std::string frames, probe;
};
ProbeFrames synthetic_probe(int64_t window);

}  // namespace cyclecast::bundle
