// Harness of the ingestion integration tests: a real mosquitto on a free loopback port, the built
// cyclecastd and `cyclecast rig` as child processes, and helpers that wait on observable state
// (a port accepting, a log line, a row count, a process exit) with a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cyclecast::testing {

// A child process with stdout and stderr sent to `log`. Killed (SIGKILL) if still running when
// destroyed.
class Child {
 public:
  Child() = default;
  // `env`: extra "NAME=value" entries on top of this process's environment.
  Child(const std::vector<std::string>& argv, const std::filesystem::path& log,
        const std::vector<std::string>& env = {});
  ~Child();
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;

  bool running();
  void signal(int sig);
  // Waits for the exit; the exit status, or nullopt at the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

int free_port();
bool port_accepts(int port);
std::string read_text(const std::filesystem::path& path);

class Broker {
 public:
  // `access` goes into the broker's configuration after the listener line.
  Broker(const std::filesystem::path& dir, int port,
         const std::string& access = "allow_anonymous true\n");
  void start();
  void kill();
  int port() const { return port_; }

 private:
  std::filesystem::path dir_;
  int port_;
  Child child_;
};

class DaemonProcess {
 public:
  // The operators' API listens on a free port (--http-port 0); `extra_args` go last.
  DaemonProcess(const std::filesystem::path& state_dir, int broker_port,
                std::filesystem::path config = "/dev/null",
                std::vector<std::string> extra_args = {});
  // Starts and waits until it logged its MQTT connection.
  void start();
  // The API's port, from the log line of the latest start; 0 when it has not said.
  int api_port() const;
  void signal(int sig) { child_.signal(sig); }
  std::optional<int> wait(std::chrono::milliseconds timeout) { return child_.wait(timeout); }
  bool running() { return child_.running(); }
  std::filesystem::path database() const { return state_dir_ / "cyclecast.db"; }
  std::filesystem::path log() const { return log_; }

 private:
  std::filesystem::path state_dir_;
  std::filesystem::path log_;
  int port_;
  std::filesystem::path config_;
  std::vector<std::string> extra_args_;
  Child child_;
};

// Runs `cyclecast rig` with the given extra arguments against the broker.
Child start_rig(const std::filesystem::path& dir, int broker_port,
                const std::vector<std::string>& args, const std::string& log_name);

// Publishes one QoS 1 message with mosquitto_pub; true when it exited 0.
bool publish_raw(int port, const std::string& topic, const std::string& payload);

// Rows of the cycles table (cell, cycle, qd_ah) and the number of rows, read-only.
struct StoredCycle {
  std::string cell_id;
  std::int64_t cycle = 0;
  double qd_ah = 0;
};
std::vector<StoredCycle> stored_cycles(const std::filesystem::path& db);
std::int64_t stored_cycle_count(const std::filesystem::path& db);
std::vector<std::string> rejected_reasons(const std::filesystem::path& db);
// "ok", or what integrity_check (or opening the file) said.
std::string integrity(const std::filesystem::path& db);

// A small rig data set written by the test: `cells` cells of `cycles` cycles, capacity a
// known function of (cell, cycle) so that stored values can be checked.
struct RigData {
  std::filesystem::path cycles_csv;
  std::filesystem::path cells_csv;
  int cells = 0;
  int cycles = 0;
  static double qd_ah(int cell, int cycle);
  static std::string cell_id(int cell);
};
RigData write_rig_data(const std::filesystem::path& dir, int cells, int cycles,
                       const std::string& name = "rig");

}  // namespace cyclecast::testing
