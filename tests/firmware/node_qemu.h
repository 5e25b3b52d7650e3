// Runs the node program with an exported model on the Cortex-M4 under QEMU and on the host, and
// reads what the target build measured: the parity and footprint checks of issue 6, shared by
// node_qemu_test.cc (generated data) and the Edge benchmark (real data).
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cc_node.h"
#include "cyclecast/pipeline/export.h"
#include "virtual_node.h"

namespace cyclecast::testing {

struct CommandResult {
  int status = -1;
  std::string output;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr)
    r.output += buffer.data();
  r.status = pclose(pipe);
  return r;
}

// The host side: the same frames through the same node code, with the transcript rule of
// node_harness.c (each FC answer followed by "Y <CRC-32 of the int32 outputs>").
inline std::string host_transcript(const node::LoadedNodeModel& model, const std::string& frames) {
  struct Sink {
    std::string text;
    cc_node* node = nullptr;
    uint16_t horizon = 0;
  } sink;
  auto n = std::make_unique<cc_node>();
  sink.node = n.get();
  sink.horizon = model.view().horizon;
  const auto write = [](void* context, const char* bytes, size_t length) {
    auto* s = static_cast<Sink*>(context);
    s->text.append(bytes, length);
    if (length > 7 && std::string(bytes, 7) == "cc1 FC ") {
      char line[16];
      std::snprintf(line, sizeof line, "Y %08x\n",
                    cc_node_crc32(0, cc_node_last_output(s->node), s->horizon * sizeof(int32_t)));
      s->text += line;
    }
  };
  const auto micros = [](void*) -> uint32_t { return 0; };
  if (cc_node_init(n.get(), &model.view(), cc_node_io{write, micros, &sink}) != CC_NODE_OK)
    return "node init failed";
  cc_node_feed(n.get(), frames.data(), frames.size());
  return sink.text;
}

// Drops the duration field (the last before the CRC) and the CRC of FC answers: the only thing
// a host and a target may legitimately disagree on.
inline std::string without_durations(const std::string& transcript) {
  static const std::regex fc(R"((cc1 FC [^*\n]*) \d+\*[0-9a-f]{8})");
  return std::regex_replace(transcript, fc, "$1");
}

// Bytes per section class and object group from a GNU ld map (after "Linker script and memory
// map", so discarded sections do not count).
struct MapSizes {
  std::map<std::string, int64_t> flash;  // .text, .rodata, .data (its initial values)
  std::map<std::string, int64_t> ram;    // .data, .bss, COMMON
};

// runtime: firmware/src; model: model_data; node: cc_node; libc: newlib/libgcc; harness: the rest.
inline std::string object_group(const std::string& file) {
  const std::string name = std::filesystem::path(file).filename().string();
  if (name.find("model_data") != std::string::npos) return "model";
  if (name.rfind("cc_node.c", 0) == 0) return "node";
  for (const char* runtime : {"cc_student.c", "cc_requantize.c", "cc_tanh.c", "cc_fully_connected"})
    if (name.rfind(runtime, 0) == 0) return "runtime";
  if (file.find(".a(") != std::string::npos) return "libc";
  return "harness";
}

inline MapSizes read_map(const std::filesystem::path& path) {
  MapSizes sizes;
  std::ifstream in(path);
  std::string line, pending;
  bool started = false;
  static const std::regex full(R"(^ (\.[^\s]+|COMMON)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(.+)$)");
  static const std::regex name_only(R"(^ (\.[^\s]+|COMMON)$)");
  static const std::regex rest(R"(^\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(.+)$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (!started) {
      started = line.rfind("Linker script and memory map", 0) == 0;
      continue;
    }
    std::string section, size, file;
    if (std::regex_match(line, m, full)) {
      section = m[1];
      size = m[2];
      file = m[3];
    } else if (std::regex_match(line, m, name_only)) {
      pending = m[1];
      continue;
    } else if (!pending.empty() && std::regex_match(line, m, rest)) {
      section = pending;
      size = m[1];
      file = m[2];
    }
    pending.clear();
    if (section.empty() || file.find(".o") == std::string::npos) continue;
    const int64_t bytes = std::stoll(size, nullptr, 16);
    const std::string group = object_group(file);
    if (section.rfind(".text", 0) == 0 || section.rfind(".rodata", 0) == 0) {
      sizes.flash[group] += bytes;
    } else if (section.rfind(".data", 0) == 0) {
      sizes.flash[group] += bytes;
      sizes.ram[group] += bytes;
    } else if (section.rfind(".bss", 0) == 0 || section == "COMMON") {
      sizes.ram[group] += bytes;
    }
  }
  return sizes;
}

// "key value" lines printed by node_harness.c.
inline std::map<std::string, int64_t> harness_figures(const std::string& output) {
  std::map<std::string, int64_t> out;
  static const std::regex kv(R"(^([a-z_]+) (\d+)$)");
  std::istringstream in(output);
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_match(line, m, kv)) out[m[1]] = std::stoll(m[2]);
  return out;
}

struct TargetRun {
  std::string error;  // empty when everything ran
  std::string build_log, qemu_output, transcript;
  MapSizes map;
  std::map<std::string, int64_t> figures;
  double instructions_per_forecast = 0;  // cc_student_forecast alone
  double instructions_per_frame = 0;     // one CY frame that forecasts, end to end
};

// Cross-builds the harness for the model exported into `dir` (model_data.c), runs it under
// QEMU on dir/vectors.txt and dir/probe.txt, and reads dir/out.txt and the map.
inline TargetRun run_on_target(const std::filesystem::path& dir, const std::string& source_dir,
                               const std::string& cmake, const std::string& qemu) {
  TargetRun r;
  const std::filesystem::path build = dir / "m4";
  const auto configure =
      run_command("'" + cmake + "' -S '" + source_dir + "/firmware/target/node_harness' -B '" +
                  build.string() + "' -G Ninja -DCMAKE_TOOLCHAIN_FILE='" + source_dir +
                  "/cmake/arm-none-eabi.cmake' -DCMAKE_BUILD_TYPE=MinSizeRel -DCYCLECAST_WERROR=ON "
                  "-DCC_MODEL_DIR='" +
                  dir.string() + "' && '" + cmake + "' --build '" + build.string() + "'");
  r.build_log = configure.output;
  if (configure.status != 0) {
    r.error = "cross build failed:\n" + configure.output;
    return r;
  }
  // -icount shift=0: virtual time advances 1 ns per instruction, which SysTick counts.
  const auto qemu_run = run_command("cd '" + dir.string() + "' && '" + qemu +
                                    "' -M mps2-an386 -nographic -monitor none -serial none "
                                    "-icount shift=0 -semihosting-config enable=on,target=native "
                                    "-kernel '" +
                                    (build / "cc_node_harness.elf").string() + "'");
  r.qemu_output = qemu_run.output;
  if (qemu_run.status != 0) {
    r.error = "QEMU run failed:\n" + qemu_run.output;
    return r;
  }
  std::ifstream out(dir / "out.txt", std::ios::binary);
  std::ostringstream text;
  text << out.rdbuf();
  r.transcript = text.str();
  r.map = read_map(build / "cc_node_harness.map");
  r.figures = harness_figures(qemu_run.output);
  const double per_tick = static_cast<double>(r.figures["calibration_instructions"]) /
                          static_cast<double>(std::max<int64_t>(r.figures["calibration_ticks"], 1));
  r.instructions_per_forecast =
      per_tick * static_cast<double>(r.figures["forecast_ticks"]) /
      static_cast<double>(std::max<int64_t>(r.figures["forecast_runs"], 1));
  r.instructions_per_frame = per_tick * static_cast<double>(r.figures["frame_ticks"]) /
                             static_cast<double>(std::max<int64_t>(r.figures["frame_runs"], 1));
  return r;
}

}  // namespace cyclecast::testing
