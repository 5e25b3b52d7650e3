// What every Prometheus exporter says about itself: the process metrics under the names the
// official client libraries use (process_cpu_seconds_total, process_resident_memory_bytes, ...),
// read from /proc at each scrape, and cyclecast_build_info. docs/daemon.md, "Metrics".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cyclecast::daemon {

struct ProcessSample {
  double cpu_seconds = 0;   // user + system
  double start_time_s = 0;  // since the Unix epoch
  std::uint64_t virtual_bytes = 0;
  std::uint64_t resident_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;  // soft RLIMIT_NOFILE; 0 when unlimited
};

// From the text of /proc/self/stat and the boot time ("btime" of /proc/stat); nullopt when
// `stat` does not parse. `ticks_per_s` and `page_bytes` as sysconf gives them.
std::optional<ProcessSample> parse_proc_stat(std::string_view stat, double boot_time_s,
                                             double ticks_per_s, double page_bytes);

// This process, now; nullopt when /proc cannot be read (the families are then left out).
std::optional<ProcessSample> sample_this_process();

void render_process_metrics(std::string& out);
// cyclecast_build_info{version, compiler} 1.
void render_build_info(std::string& out);

}  // namespace cyclecast::daemon
