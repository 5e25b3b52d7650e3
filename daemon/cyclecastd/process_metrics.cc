#include "process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "metrics.h"

#ifndef CYCLECAST_VERSION
#error "CYCLECAST_VERSION is defined by daemon/CMakeLists.txt from the project's version"
#endif

namespace cyclecast::daemon {
namespace {

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "btime <seconds>" of /proc/stat; 0 when absent.
double boot_time_s() {
  std::istringstream lines(read_all("/proc/stat"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

std::uint64_t count_open_fds() {
  std::error_code ec;
  std::uint64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n > 0 ? n - 1 : 0;  // not the one the listing itself holds open
}

}  // namespace

std::optional<ProcessSample> parse_proc_stat(std::string_view stat, double boot_time_s,
                                             double ticks_per_s, double page_bytes) {
  // The command name (field 2) is in parentheses and may hold spaces and ')': the fields that
  // follow start after the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_s <= 0) return std::nullopt;
  std::istringstream fields{std::string(stat.substr(close + 1))};
  std::vector<std::string> after;  // after[0] is field 3 (state)
  for (std::string field; fields >> field;)
    after.push_back(field);
  if (after.size() < 22) return std::nullopt;
  const auto field = [&after](int number) { return after[static_cast<std::size_t>(number - 3)]; };
  try {
    ProcessSample sample;
    sample.cpu_seconds = (std::stod(field(14)) + std::stod(field(15))) / ticks_per_s;
    sample.start_time_s = boot_time_s + std::stod(field(22)) / ticks_per_s;
    sample.virtual_bytes = std::stoull(field(23));
    sample.resident_bytes = static_cast<std::uint64_t>(std::stod(field(24)) * page_bytes);
    return sample;
  } catch (const std::exception&) {  // std::stod/stoull on a field that is not a number
    return std::nullopt;
  }
}

std::optional<ProcessSample> sample_this_process() {
  auto sample = parse_proc_stat(read_all("/proc/self/stat"), boot_time_s(),
                                static_cast<double>(::sysconf(_SC_CLK_TCK)),
                                static_cast<double>(::sysconf(_SC_PAGESIZE)));
  if (!sample) return std::nullopt;
  sample->open_fds = count_open_fds();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    sample->max_fds = limit.rlim_cur;
  }
  return sample;
}

void render_process_metrics(std::string& out) {
  const auto p = sample_this_process();
  if (!p) return;
  render_metric(out, "process_cpu_seconds_total", "counter",
                "Total user and system CPU time spent in seconds.", p->cpu_seconds);
  render_metric(out, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.", p->start_time_s);
  render_metric(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                static_cast<double>(p->virtual_bytes));
  render_metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                static_cast<double>(p->resident_bytes));
  render_metric(out, "process_open_fds", "gauge", "Number of open file descriptors.",
                static_cast<double>(p->open_fds));
  if (p->max_fds > 0) {
    render_metric(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                  static_cast<double>(p->max_fds));
  }
}

void render_build_info(std::string& out) {
  MetricFamily info("cyclecast_build_info", "gauge",
                    "The cyclecastd build: version and compiler (value 1).");
#if defined(__clang__)
  const std::string compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  const std::string compiler = "gcc " __VERSION__;
#else
  const std::string compiler = "unknown";
#endif
  info.add({{"version", CYCLECAST_VERSION}, {"compiler", compiler}}, 1);
  info.render(out);
}

}  // namespace cyclecast::daemon
