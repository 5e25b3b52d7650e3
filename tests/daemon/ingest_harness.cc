#include "ingest_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);
constexpr auto kStartTimeout = std::chrono::seconds(15);

std::string binary(const std::string& name) {
  return std::string(CYCLECAST_BINARY_DIR) + "/bin/" + name;
}

std::optional<storage::Database> open_read_only(const std::filesystem::path& db) {
  storage::OpenOptions options;
  options.create_if_missing = false;
  options.read_only = true;
  auto opened = storage::Database::open(db, options);
  if (!opened) return std::nullopt;
  return std::move(*opened);
}

}  // namespace

Child::Child(const std::vector<std::string>& argv, const std::filesystem::path& log,
             const std::vector<std::string>& env) {
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Built before fork: the child may only make async-signal-safe calls.
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e)
    envp.push_back(*e);
  for (const auto& e : env)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
}

Child::~Child() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

Child::Child(Child&& other) noexcept : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
  }
  return *this;
}

bool Child::running() {
  if (pid_ <= 0 || status_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

void Child::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  eventually([this] { return !running(); }, timeout);
  return status_;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

bool port_accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return ok;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Broker::Broker(const std::filesystem::path& dir, int port, const std::string& access)
    : dir_(dir), port_(port) {
  write_file(dir_ / "mosquitto.conf", "listener " + std::to_string(port_) + " 127.0.0.1\n" +
                                          access +
                                          "persistence false\nmax_queued_messages 100000\n");
}

void Broker::start() {
  child_ = Child({"/usr/sbin/mosquitto", "-c", (dir_ / "mosquitto.conf").string()},
                 dir_ / "mosquitto.log");
  if (!eventually([this] { return port_accepts(port_); }, kStartTimeout)) {
    throw std::runtime_error("mosquitto did not start on port " + std::to_string(port_));
  }
}

void Broker::kill() {
  child_.signal(SIGKILL);
  child_.wait(kStartTimeout);
}

DaemonProcess::DaemonProcess(const std::filesystem::path& state_dir, int broker_port,
                             std::filesystem::path config, std::vector<std::string> extra_args)
    : state_dir_(state_dir),
      log_(state_dir.parent_path() / "cyclecastd.log"),
      port_(broker_port),
      config_(std::move(config)),
      extra_args_(std::move(extra_args)) {}

int DaemonProcess::api_port() const {
  const std::string marker = "operators' API listens on http://127.0.0.1:";
  const std::string text = read_text(log_);
  const auto at = text.rfind(marker);
  if (at == std::string::npos) return 0;
  return std::atoi(text.c_str() + at + marker.size());
}

void DaemonProcess::start() {
  const std::string marker = "mqtt: connected";
  const auto connects_before = [&] {
    const std::string text = read_text(log_);
    std::size_t count = 0;
    for (auto at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
      ++count;
    }
    return count;
  };
  const std::size_t before = connects_before();
  std::vector<std::string> argv = {binary("cyclecastd"),
                                   "--config",
                                   config_.string(),
                                   "--state-dir",
                                   state_dir_.string(),
                                   "--mqtt-port",
                                   std::to_string(port_),
                                   "--client-id",
                                   "cyclecastd-test",
                                   "--batch-ms",
                                   "10",
                                   "--log-level",
                                   "debug",
                                   "--http-port",
                                   "0"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  child_ = Child(argv, log_);
  if (!eventually([&] { return connects_before() > before; }, kStartTimeout)) {
    throw std::runtime_error("cyclecastd did not connect; log:\n" + read_text(log_));
  }
}

Child start_rig(const std::filesystem::path& dir, int broker_port,
                const std::vector<std::string>& args, const std::string& log_name) {
  std::vector<std::string> argv = {binary("cyclecast"), "rig", "--broker",
                                   "127.0.0.1:" + std::to_string(broker_port), "--quiet"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Child(argv, dir / log_name);
}

bool publish_raw(int port, const std::string& topic, const std::string& payload) {
  // From a file: a payload can exceed the 128 KiB limit of one command-line argument.
  TempDir dir;
  write_file(dir / "payload", payload);
  Child pub({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port), "-q", "1",
             "-t", topic, "-f", (dir / "payload").string()},
            "/dev/null");
  const auto status = pub.wait(std::chrono::seconds(10));
  return status && *status == 0;
}

std::vector<StoredCycle> stored_cycles(const std::filesystem::path& db_path) {
  std::vector<StoredCycle> out;
  auto db = open_read_only(db_path);
  if (!db) return out;
  auto cells = db->cells();
  if (!cells) return out;
  for (const auto& cell : *cells) {
    auto cycles = db->cycles_of(cell.info.cell_id);
    if (!cycles) continue;
    for (const auto& c : *cycles)
      out.push_back({c.cell_id, c.cycle, c.discharge_capacity_ah});
  }
  return out;
}

std::int64_t stored_cycle_count(const std::filesystem::path& db_path) {
  auto db = open_read_only(db_path);
  if (!db) return 0;
  auto counts = db->counts();
  return counts ? counts->cycles : 0;
}

std::vector<std::string> rejected_reasons(const std::filesystem::path& db_path) {
  std::vector<std::string> out;
  auto db = open_read_only(db_path);
  if (!db) return out;
  auto rejected = db->rejected(100000);
  if (!rejected) return out;
  for (const auto& r : *rejected)
    out.push_back(r.reason);
  return out;
}

std::string integrity(const std::filesystem::path& db_path) {
  storage::OpenOptions options;
  options.create_if_missing = false;
  options.read_only = true;
  auto db = storage::Database::open(db_path, options);
  if (!db) return "open: " + db.error().message;
  auto report = db->check();
  if (!report) return "check: " + report.error().message;
  std::string text;
  for (const auto& m : report->integrity_messages)
    text += (text.empty() ? "" : "; ") + m;
  return report->integrity_ok ? "ok" : "not ok: " + text;
}

double RigData::qd_ah(int cell, int cycle) {
  return 1.07 - 0.0001 * cycle + 0.001 * cell;
}
std::string RigData::cell_id(int cell) {
  return "t" + std::to_string(cell);
}

RigData write_rig_data(const std::filesystem::path& dir, int cells, int cycles,
                       const std::string& name) {
  RigData data;
  data.cells = cells;
  data.cycles = cycles;
  data.cycles_csv = dir / (name + ".csv");
  data.cells_csv = dir / (name + ".cells.csv");
  std::string cells_text = "cell_id,rig_id,chemistry,rated_capacity_ah\n";
  std::string text = "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";
  char line[256];
  for (int cell = 0; cell < cells; ++cell) {
    cells_text += RigData::cell_id(cell) + ",rig-" + std::to_string(cell % 2) + ",LFP,1.1\n";
    for (int cycle = 1; cycle <= cycles; ++cycle) {
      std::snprintf(line, sizeof line, "%s,test,%d,%.6f,%.6f,0.0170,35.0,31.0,29.0,10.5\n",
                    RigData::cell_id(cell).c_str(), cycle, RigData::qd_ah(cell, cycle),
                    RigData::qd_ah(cell, cycle) + 0.0005);
      text += line;
    }
  }
  write_file(data.cells_csv, cells_text);
  write_file(data.cycles_csv, text);
  return data;
}

}  // namespace cyclecast::testing
