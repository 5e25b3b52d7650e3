// Runs the node program with an exported model on the Cortex-M4 under QEMU and on the host, and
// reads what the target build measured: the parity and footprint checks of docs/firmware.md, shared
// by node_qemu_test.cc (generated data) and the Edge benchmark (real data).
#pragma once

#include <algorithm>
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
#include "cyclecast/edge/virtual_node.h"
#include "cyclecast/lifecycle/measure.h"
#include "cyclecast/pipeline/export.h"

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
// node_harness.c (each FC answer, v1 or v2, followed by "Y <CRC-32 of the int32 outputs>" and,
// with an interval table, "L <CRC-32 of the H lower then H upper float bounds>").
inline std::string host_transcript(const edge::LoadedNodeModel& model, const std::string& frames) {
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
    const std::string start(bytes, std::min<size_t>(length, 7));
    if (start == "cc1 FC " || start == "cc2 FC ") {
      char line[16];
      std::snprintf(line, sizeof line, "Y %08x\n",
                    cc_node_crc32(0, cc_node_last_output(s->node), s->horizon * sizeof(int32_t)));
      s->text += line;
      std::vector<float> bounds(2u * s->horizon);
      if (cc_node_last_interval(s->node, bounds.data(), bounds.data() + s->horizon) == CC_OK) {
        std::snprintf(line, sizeof line, "L %08x\n",
                      cc_node_crc32(0, bounds.data(), bounds.size() * sizeof(float)));
        s->text += line;
      }
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
  static const std::regex fc(R"((cc[12] FC [^*\n]*) \d+\*[0-9a-f]{8})");
  return std::regex_replace(transcript, fc, "$1");
}

inline std::string read_file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Cross-builds the node harness for the model exported into `dir` (model_data.h/.c) and runs it
// under QEMU on dir/vectors.txt and dir/probe.txt, as retraining and `cyclecast bundle build
// --measure` do (bundle/measure.h): the tests check the production measurement.
inline Result<bundle::TargetRun> run_on_target(const std::filesystem::path& dir,
                                               const std::string& qemu) {
  bundle::TargetTools tools;
  tools.qemu = qemu;
#ifdef CYCLECAST_M4_WARNINGS
  std::istringstream flags(CYCLECAST_M4_WARNINGS);  // ','-separated
  for (std::string flag; std::getline(flags, flag, ',');)
    if (!flag.empty()) tools.extra_flags.push_back(flag);
#endif
  return bundle::run_on_target(
      {read_file_text(dir / "model_data.h"), read_file_text(dir / "model_data.c")},
      read_file_text(dir / "vectors.txt"), read_file_text(dir / "probe.txt"), tools, dir / "m4");
}

}  // namespace cyclecast::testing
