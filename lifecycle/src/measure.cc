// measure.h: the node harness cross-built from the embedded firmware sources and run under QEMU.
// The tools run as child processes (posix_spawn) with their output captured and a time limit, so
// a hung QEMU cannot hang a retraining run.
#include "cyclecast/lifecycle/measure.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>

#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/wire/node_frames.h"

extern char** environ;

namespace cyclecast::bundle {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kCortexM4Flags[] = {"-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
                                          "-mfloat-abi=hard"};

struct ToolRun {
  int status = -1;  // exit status; -1 when killed (time limit) or killed by a signal
  std::string output;
};

// Runs argv[0] (searched in PATH) in `cwd` with stdout and stderr captured together; kills it
// when it runs over `timeout`.
Result<ToolRun> run_tool(const std::vector<std::string>& argv, const fs::path& cwd,
                         std::chrono::seconds timeout) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return make_error(ErrorCode::kIo, "pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    return make_error(ErrorCode::kUnsupported,
                      "cannot run " + argv[0] + ": " + std::generic_category().message(spawned));
  }
  ToolRun run;
  const auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fd{pipe_fds[0], POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000))) < 0 &&
        errno != EINTR) {
      break;
    }
    if (fd.revents == 0) continue;
    char chunk[4096];
    const ssize_t n = read(pipe_fds[0], chunk, sizeof chunk);
    if (n > 0) {
      run.output.append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;  // end of output: the tool exited (or closed both streams)
    }
  }
  close(pipe_fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.status = !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (timed_out) {
    run.output += "\n(stopped after " + std::to_string(timeout.count()) + " s)";
  }
  return run;
}

Result<void> write_file(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (ec || !out) return make_error(ErrorCode::kIo, "cannot write " + path.string());
  return {};
}

Result<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, path.string() + " is missing");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// runtime: firmware/src; model: model_data; node: cc_node; libc: newlib/libgcc; harness: the rest.
std::string object_group(const std::string& file) {
  const std::string name = fs::path(file).filename().string();
  if (name.find("model_data") != std::string::npos) return "model";
  if (name.rfind("cc_node.c", 0) == 0) return "node";
  for (const char* runtime : {"cc_student.c", "cc_requantize.c", "cc_tanh.c", "cc_fully_connected"})
    if (name.rfind(runtime, 0) == 0) return "runtime";
  if (file.find(".a(") != std::string::npos) return "libc";
  return "harness";
}

// The model's integer #defines (CC_MODEL_INPUT_LEN, ...) from model_data.h.
std::map<std::string, int64_t> model_defines(const std::string& header) {
  std::map<std::string, int64_t> out;
  static const std::regex define(R"(#define (CC_MODEL_[A-Z0-9_]+) ([0-9]+))");
  for (std::sregex_iterator it(header.begin(), header.end(), define), end; it != end; ++it)
    out[(*it)[1]] = std::stoll((*it)[2]);
  return out;
}

int64_t figure(const std::map<std::string, int64_t>& figures, const std::string& key) {
  const auto found = figures.find(key);
  return found == figures.end() ? 0 : found->second;
}

// Writes the embedded sources under `dir` and compiles the harness; returns the link's map.
Result<std::string> build_harness(const ModelSources& model_sources, const fs::path& dir,
                                  const std::map<std::string, int64_t>& model,
                                  const TargetTools& tools) {
  std::vector<std::string> sources;
  for (const auto& files : {runtime_files(), target_harness_files()}) {
    for (const auto& file : files) {
      const std::string text(file.data.begin(), file.data.end());
      if (auto written = write_file(dir / file.name, text); !written) return written.error();
      const bool compiled = file.name.rfind("firmware/src/", 0) == 0 ||
                            file.name == "firmware/node/cc_node.c" ||
                            file.name.rfind("firmware/target/", 0) == 0;
      if (compiled && file.name.ends_with(".c")) sources.push_back(file.name);
    }
  }
  if (auto w = write_file(dir / "model/model_data.c", model_sources.model_data_c); !w) {
    return w.error();
  }
  if (auto w = write_file(dir / "model/model_data.h", model_sources.model_data_h); !w) {
    return w.error();
  }
  sources.push_back("model/model_data.c");

  // With cmake/arm-none-eabi.cmake's flags at MinSizeRel, as the cortex-m4 preset builds firmware/;
  // node buffers sized for exactly this model (at least one feature channel, since a zero-length
  // array dimension is not C99).
  std::vector<std::string> common(std::begin(kCortexM4Flags), std::end(kCortexM4Flags));
  const std::vector<std::string> compile_flags = {
      "-ffunction-sections",
      "-fdata-sections",
      "-Os",
      "-DNDEBUG",
      "-std=c99",
      "-ffp-contract=off",
      "-Ifirmware/include",
      "-Ifirmware/node",
      "-Ifirmware/target",
      "-Imodel",
      "-DCC_NODE_MAX_CELLS=8",
      "-DCC_NODE_MAX_INPUT_LEN=" + std::to_string(figure(model, "CC_MODEL_INPUT_LEN")),
      "-DCC_NODE_MAX_HORIZON=" + std::to_string(figure(model, "CC_MODEL_HORIZON")),
      "-DCC_NODE_MAX_FEATURES=" +
          std::to_string(std::max<int64_t>(figure(model, "CC_MODEL_FEATURE_COUNT"), 1)),
      "-DCC_NODE_MAX_SCRATCH_BYTES=" + std::to_string(figure(model, "CC_MODEL_SCRATCH_BYTES"))};
  std::vector<std::string> link = {tools.gcc};
  link.insert(link.end(), common.begin(), common.end());
  for (const auto& source : sources) {
    // Objects named after their source (cc_student.c.o), as object_group() reads them.
    const std::string object = "obj/" + fs::path(source).filename().string() + ".o";
    std::vector<std::string> compile = {tools.gcc};
    compile.insert(compile.end(), common.begin(), common.end());
    compile.insert(compile.end(), compile_flags.begin(), compile_flags.end());
    compile.insert(compile.end(), tools.extra_flags.begin(), tools.extra_flags.end());
    compile.insert(compile.end(), {"-c", source, "-o", object});
    std::error_code ec;
    fs::create_directories(dir / "obj", ec);
    auto compiled = run_tool(compile, dir, tools.timeout);
    if (!compiled) return compiled.error();
    if (compiled->status != 0) {
      return make_error(ErrorCode::kIo,
                        "cross-compiling " + source + " failed:\n" + compiled->output);
    }
    link.push_back(object);
  }
  link.insert(link.end(),
              {"-Wl,--gc-sections", "-nostartfiles", "-nostdlib", "-Tfirmware/target/mps2_an386.ld",
               "-Wl,-Map=harness.map", "-Wl,--start-group", "-lc", "-lgcc", "-Wl,--end-group", "-o",
               "harness.elf"});
  auto linked = run_tool(link, dir, tools.timeout);
  if (!linked) return linked.error();
  if (linked->status != 0) {
    return make_error(ErrorCode::kIo, "linking the node harness failed:\n" + linked->output);
  }
  return read_text(dir / "harness.map");
}

}  // namespace

bool target_tools_available(const TargetTools& tools) {
  for (const auto& tool : {tools.gcc, tools.qemu}) {
    auto run = run_tool({tool, "--version"}, fs::temp_directory_path(), std::chrono::seconds(10));
    if (!run || run->status != 0) return false;
  }
  return true;
}

MapSizes read_linker_map(std::string_view map_text) {
  MapSizes sizes;
  std::istringstream in{std::string(map_text)};
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
      // A long section name: its address, size and file follow on the next line.
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

std::map<std::string, int64_t> harness_figures(std::string_view output) {
  std::map<std::string, int64_t> out;
  static const std::regex kv(R"(^([a-z_]+) (\d+)$)");
  std::istringstream in{std::string(output)};
  std::string line;
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_match(line, m, kv)) out[m[1]] = std::stoll(m[2]);
  return out;
}

Result<TargetRun> run_on_target(const ModelSources& model, const std::string& frames,
                                const std::string& probe, const TargetTools& tools,
                                const fs::path& work_dir) {
  TargetRun run;
  run.model = model_defines(model.model_data_h);
  auto map = build_harness(model, work_dir, run.model, tools);
  if (!map) return map.error();
  run.map = read_linker_map(*map);
  if (auto w = write_file(work_dir / "vectors.txt", frames); !w) return w.error();
  if (auto w = write_file(work_dir / "probe.txt", probe); !w) return w.error();
  // -icount shift=0: virtual time advances 1 ns per instruction, which SysTick counts.
  // split-wx: the code QEMU translates is written through one mapping and run through another,
  // so QEMU also runs where no memory may be writable and executable at once (cyclecastd's unit:
  // MemoryDenyWriteExecute=yes), which refuses its usual single W+X buffer.
  auto qemu = run_tool({tools.qemu, "-accel", "tcg,split-wx=on", "-M", "mps2-an386", "-nographic",
                        "-monitor", "none", "-serial", "none", "-icount", "shift=0",
                        "-semihosting-config", "enable=on,target=native", "-kernel", "harness.elf"},
                       work_dir, tools.timeout);
  if (!qemu) return qemu.error();
  if (qemu->status != 0) {
    return make_error(ErrorCode::kIo, "the node harness failed under QEMU:\n" + qemu->output);
  }
  auto transcript = read_text(work_dir / "out.txt");
  if (!transcript) return transcript.error();
  run.transcript = std::move(*transcript);
  run.figures = harness_figures(qemu->output);
  for (const char* key : {"calibration_ticks", "forecast_runs", "frame_runs", "frame_forecasts"}) {
    if (figure(run.figures, key) <= 0) {
      return make_error(ErrorCode::kIo, std::string("the node harness did not report ") + key +
                                            " (no forecast from the frames?):\n" + qemu->output);
    }
  }
  const double per_tick = static_cast<double>(figure(run.figures, "calibration_instructions")) /
                          static_cast<double>(figure(run.figures, "calibration_ticks"));
  run.instructions_per_forecast = per_tick *
                                  static_cast<double>(figure(run.figures, "forecast_ticks")) /
                                  static_cast<double>(figure(run.figures, "forecast_runs"));
  run.instructions_per_frame = per_tick * static_cast<double>(figure(run.figures, "frame_ticks")) /
                               static_cast<double>(figure(run.figures, "frame_runs"));
  return run;
}

Footprint measured_footprint(const TargetRun& run) {
  const auto group = [](const std::map<std::string, int64_t>& sizes, const char* name) {
    const auto found = sizes.find(name);
    return found == sizes.end() ? int64_t{0} : found->second;
  };
  // The buffers the runtime is handed: int16 input, int32 output, scratch (in the node's state).
  const int64_t buffers = 2 * figure(run.model, "CC_MODEL_INPUT_SIZE") +
                          4 * figure(run.model, "CC_MODEL_HORIZON") +
                          figure(run.model, "CC_MODEL_SCRATCH_BYTES");
  Footprint f;
  f.kind = "measured";
  f.method =
      "arm-none-eabi-gcc -Os for the Cortex-M4F, qemu-system-arm mps2-an386 -icount: linker "
      "map, stack painting, instruction count";
  f.flash_bytes = group(run.map.flash, "runtime") + group(run.map.flash, "model");
  f.ram_bytes = group(run.map.ram, "runtime") + group(run.map.ram, "model") + buffers +
                figure(run.figures, "stack_forecast_bytes");
  f.stack_bytes = figure(run.figures, "stack_frame_bytes");
  f.instructions = std::llround(run.instructions_per_forecast);
  return f;
}

Result<Footprint> measure_model(const ModelSources& model, const TargetTools& tools) {
  const int64_t window = figure(model_defines(model.model_data_h), "CC_MODEL_INPUT_LEN");
  if (window <= 0) {
    return make_error(ErrorCode::kParse, "model_data.h defines no CC_MODEL_INPUT_LEN");
  }
  std::string pattern = (fs::temp_directory_path() / "cyclecast-measure-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return make_error(ErrorCode::kIo,
                      "cannot create a directory in " + fs::temp_directory_path().string());
  }
  const fs::path work_dir = pattern;
  const ProbeFrames probe = synthetic_probe(window);
  auto run = run_on_target(model, probe.frames, probe.probe, tools, work_dir);
  std::error_code ec;
  fs::remove_all(work_dir, ec);
  if (!run) return run.error();
  return measured_footprint(*run);
}

ProbeFrames synthetic_probe(int64_t window) {
  // A cell fading linearly from SOH 1.0, with every optional feature measured at a typical
  // value: the node uses the ones its model takes.
  const auto cycle = [](int64_t n) {
    wire::NodeCycle c;
    c.cell = "probe";
    c.cycle = n;
    c.soh = 1.0 - 0.0004 * static_cast<double>(n);
    c.ir_ohm = 0.0165;
    c.temperature_c = 32.5;
    c.charge_time_min = 10.5;
    return c;
  };
  ProbeFrames out;
  uint32_t seq = 1;
  for (int64_t n = 1; n <= window; ++n)
    out.frames += wire::cycle_request(seq++, cycle(n));
  out.probe = wire::cycle_request(seq, cycle(window + 1));
  return out;
}

}  // namespace cyclecast::bundle
