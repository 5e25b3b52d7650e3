// cyclecast_soak: the fault-injection soak (docs/reliability.md, "Fault-injection soak"). A real
// mosquitto, the built cyclecastd and several `cyclecast rig` clients replaying generated cells;
// at random points (seeded) it SIGKILLs the daemon and restarts it, restarts the broker on the
// same port, SIGKILLs rigs and restarts them on their outboxes, and asks for one retraining
// through the API. When every rig's outbox is answered it stops the daemon and checks the
// database: every record stored exactly once, integrity, host forecasts, the model registry.
// Prints the figures; exits 1 if anything was lost, duplicated or inconsistent.
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "cyclecast/storage/database.h"
#include "hostile.h"
#include "ingest_harness.h"
#include "soak_check.h"
#include "soak_plan.h"
#include "temp_dir.h"

namespace cyclecast::soak {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;
using namespace std::chrono_literals;
using testing::Broker;
using testing::Child;
using testing::DaemonProcess;
using testing::eventually;
using testing::read_text;

constexpr const char* kToken = "soak-token-of-the-test";
constexpr std::int64_t kWindow = 20;  // W of the tiny retraining below
constexpr auto kRunTimeout = 300s;    // a sanitizer build trains many times slower

struct Figures {
  int daemon_kills = 0;
  int broker_restarts = 0;
  int rig_kills = 0;
  int rig_restarts_after_error = 0;  // a rig that gave up (broker away at its start) and was rerun
  int gateway_kills = 0;
  int daemon_exits_on_its_own = 0;  // noticed between the soak's own kills: must stay 0
  std::int64_t run_id = 0;
  std::string run_status = "none";
  std::string champion;
};

class Soak {
 public:
  Soak(const Flags& flags, const fs::path& dir, std::uint64_t seed)
      : flags_(flags),
        dir_(dir),
        rng_(seed),
        broker_(dir, testing::free_port(), write_broker_access(dir, flags)) {}

  int run();
  int check_only();

 private:
  void start_daemon();
  void start_rig(std::size_t i);
  void supervise_rigs();
  bool rigs_done();
  void apply(Fault fault);
  bool run_in_progress();
  void note_champion();
  bool held(Fault fault);
  void start_node_line(const fs::path& model);
  void start_gateway();
  void stop_node_line();
  void wait_forecaster_idle();
  void notice_daemon_exit();
  void start_hostile();
  std::string victim_cell() const;
  std::string victim_cell_owner();
  Result<http::ApiClient> api(const std::string& token = "") const;
  std::optional<Json> api_get(const std::string& path);
  double elapsed_s() const {
    return std::chrono::duration<double>(Clock::now() - started_).count();
  }

  Flags flags_;
  fs::path dir_;
  std::mt19937_64 rng_;
  Broker broker_;
  std::unique_ptr<DaemonProcess> daemon_;
  int api_port_ = 0;
  std::string last_api_failure_;
  std::vector<RigSetup> rigs_;
  std::vector<Child> rig_children_;
  std::vector<bool> rig_done_;
  std::vector<PublishedCell> published_;
  ForecastExpectation forecasts_;
  Figures figures_;
  Clock::time_point started_;
  // The edge node: cyclecast-node on a pty's master, the gateway on its slave (by a link).
  int pty_master_ = -1, pty_slave_ = -1;
  pid_t node_pid_ = -1;
  Child gateway_;
  bool gateway_started_ = false;
  std::unique_ptr<HostileClients> hostile_;

 public:
  ~Soak() { stop_node_line(); }
};

// The virtual node reads and writes the pty's master; the gateway opens the slave by name. The
// soak keeps a slave descriptor open itself so that the node does not read EIO (no slave open)
// while the gateway is dead between a kill and its restart.
void Soak::start_node_line(const fs::path& model) {
  char name[256] = {};
  if (openpty(&pty_master_, &pty_slave_, name, nullptr, nullptr) != 0) {
    throw std::runtime_error("openpty failed");
  }
  ::fcntl(pty_master_, F_SETFD, FD_CLOEXEC);
  ::fcntl(pty_slave_, F_SETFD, FD_CLOEXEC);
  termios tio{};
  tcgetattr(pty_slave_, &tio);
  cfmakeraw(&tio);
  tcsetattr(pty_slave_, TCSANOW, &tio);
  fs::remove(dir_ / "tty");
  fs::create_symlink(name, dir_ / "tty");
  const std::string program = std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast-node";
  const std::string log = (dir_ / "node.log").string();
  node_pid_ = ::fork();
  if (node_pid_ < 0) throw std::runtime_error("fork failed");
  if (node_pid_ == 0) {
    ::dup2(pty_master_, 0);
    ::dup2(pty_master_, 1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) ::dup2(fd, 2);
    ::execl(program.c_str(), program.c_str(), "--model", model.c_str(), nullptr);
    ::_exit(127);
  }
}

void Soak::stop_node_line() {
  gateway_.signal(SIGKILL);
  gateway_.wait(15s);
  if (node_pid_ > 0) {
    ::kill(node_pid_, SIGKILL);
    ::waitpid(node_pid_, nullptr, 0);
    node_pid_ = -1;
  }
  if (pty_master_ >= 0) ::close(pty_master_);
  if (pty_slave_ >= 0) ::close(pty_slave_);
  pty_master_ = pty_slave_ = -1;
}

// The node forecasts the cells of the first rig.
void Soak::start_gateway() {
  std::string cells;
  for (int c = 0; c < flags_.cells_per_rig; ++c)
    cells += (c == 0 ? "" : ",") + published_[static_cast<std::size_t>(c)].cell_id;
  gateway_ = Child({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast-gateway",
                    "--node",
                    kNode,
                    "--username",
                    "gateway-" + std::string(kNode),
                    "--password",
                    broker_password("gateway-" + std::string(kNode)),
                    "--serial",
                    (dir_ / "tty").string(),
                    "--cells",
                    cells,
                    "--mqtt-port",
                    std::to_string(broker_.port()),
                    "--answer-timeout-ms",
                    "500",
                    "--reopen-min-ms",
                    "50",
                    "--reopen-max-ms",
                    "1000",
                    "--status-interval-ms",
                    "1000",
                    "--log-level",
                    "info"},
                   dir_ / "gateway.log");
  gateway_started_ = true;
}

// A daemon killed during the run would leave it failed and no champion to forecast with; a
// gateway kill waits for the gateway. The other faults go on meanwhile.
bool Soak::held(Fault fault) {
  return (fault == Fault::kDaemonKill && run_in_progress()) ||
         (fault == Fault::kGatewayKill && !gateway_started_);
}

void Soak::start_daemon() {
  const auto log_size_before = read_text(dir_ / "cyclecastd.log").size();
  daemon_->start();
  // The API's port of this start: its log line comes after what the earlier starts wrote.
  const std::string marker = "operators' API listens on http://127.0.0.1:";
  api_port_ = 0;
  eventually(
      [&] {
        const std::string text = read_text(daemon_->log());
        const auto at = text.find(marker, log_size_before);
        if (at != std::string::npos) api_port_ = std::atoi(text.c_str() + at + marker.size());
        return api_port_ > 0;
      },
      15s);
  if (api_port_ == 0) throw std::runtime_error("cyclecastd did not say where its API listens");
}

void Soak::start_rig(std::size_t i) {
  const RigSetup& rig = rigs_[i];
  const double rate = static_cast<double>(rig.records) / flags_.publish_s;
  rig_children_[i] = testing::start_rig(
      dir_, broker_.port(),
      {rig.csv.string(), "--cells", rig.cells_csv.string(), "--outbox", rig.outbox.string(),
       "--client-id", rig.rig_id, "--username", rig.rig_id, "--password",
       broker_password(rig.rig_id), "--rate", std::to_string(rate), "--ack-timeout-ms", "2000"},
      rig.rig_id + ".log");
}

// A rig that exited 0 has every record answered; one that failed (it could not reach the broker
// within its connect timeout at its start) is started again on its outbox.
void Soak::supervise_rigs() {
  for (std::size_t i = 0; i < rig_children_.size(); ++i) {
    if (rig_done_[i] || rig_children_[i].running()) continue;
    const auto status = rig_children_[i].wait(0ms);
    if (status && *status == 0) {
      rig_done_[i] = true;
    } else {
      ++figures_.rig_restarts_after_error;
      start_rig(i);
    }
  }
}

bool Soak::rigs_done() {
  return std::all_of(rig_done_.begin(), rig_done_.end(), [](bool done) { return done; });
}

Result<http::ApiClient> Soak::api(const std::string& token) const {
  http::ClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(api_port_);
  options.token = token;
  options.timeout = 10s;
  return http::ApiClient::create(options);
}

std::optional<Json> Soak::api_get(const std::string& path) {
  auto client = api();
  if (!client) return std::nullopt;
  auto response = client->get(path);
  if (!response || (response->status != 200 && response->status != 503)) {
    // Said once per kind of failure: the daemon may be restarting, but a failure that lasts is
    // what a reader of a stuck soak needs to see.
    const std::string why = response ? std::to_string(response->status) : response.error().message;
    if (why != last_api_failure_) std::printf("soak: GET %s: %s\n", path.c_str(), why.c_str());
    last_api_failure_ = why;
    return std::nullopt;
  }
  Json body = Json::parse(response->body, nullptr, false);
  if (body.is_discarded()) return std::nullopt;
  return body;
}

bool Soak::run_in_progress() {
  if (figures_.run_id == 0 || figures_.run_status != "running") return false;
  auto run = api_get("/api/v1/runs/" + std::to_string(figures_.run_id));
  if (!run || !run->contains("status")) return true;
  figures_.run_status = (*run)["status"].get<std::string>();
  if (figures_.run_status != "running") {
    std::printf("soak: run %lld %s at %.1f s\n", static_cast<long long>(figures_.run_id),
                figures_.run_status.c_str(), elapsed_s());
    if (figures_.run_status == "succeeded") note_champion();
  }
  return figures_.run_status == "running";
}

// Once the run's model is champion, host forecasts are checked at the end, and the edge node
// starts with that model.
void Soak::note_champion() {
  eventually(
      [&] {
        auto health = api_get("/healthz");
        if (health && (*health)["champion"].is_string()) {
          figures_.champion = (*health)["champion"].get<std::string>();
        }
        return !figures_.champion.empty();
      },
      30s);
  if (figures_.champion.empty()) return;
  forecasts_.check = true;
  forecasts_.window = kWindow;
  forecasts_.strict = flags_.strict_forecasts;
  if (flags_.gateway_kills > 0) {
    start_node_line(dir_ / "state" / "models" / figures_.champion / "model.bin");
    start_gateway();
  }
}

void Soak::apply(Fault fault) {
  switch (fault) {
    case Fault::kDaemonKill:
      daemon_->signal(SIGKILL);
      daemon_->wait(15s);
      ++figures_.daemon_kills;
      start_daemon();
      break;
    case Fault::kBrokerRestart: {
      broker_.kill();
      std::uniform_int_distribution<int> downtime_ms(100, 1500);
      std::this_thread::sleep_for(std::chrono::milliseconds(downtime_ms(rng_)));
      broker_.start();
      ++figures_.broker_restarts;
      break;
    }
    case Fault::kRigKill: {
      std::vector<std::size_t> running;
      for (std::size_t i = 0; i < rig_children_.size(); ++i)
        if (!rig_done_[i] && rig_children_[i].running()) running.push_back(i);
      if (running.empty()) break;
      const std::size_t i =
          running[std::uniform_int_distribution<std::size_t>(0, running.size() - 1)(rng_)];
      rig_children_[i].signal(SIGKILL);
      rig_children_[i].wait(15s);
      ++figures_.rig_kills;
      start_rig(i);
      break;
    }
    case Fault::kGatewayKill:
      gateway_.signal(SIGKILL);
      gateway_.wait(15s);
      ++figures_.gateway_kills;
      start_gateway();
      break;
    case Fault::kRetrain: {
      auto client = api(kToken);
      if (!client) throw std::runtime_error(client.error().message);
      auto response = client->post("/api/v1/retrain", Json{{"who", "soak"}, {"why", "soak"}});
      if (!response || response->status != 200) {
        throw std::runtime_error("POST /api/v1/retrain failed: " +
                                 (response ? response->error_message() : response.error().message));
      }
      const Json run = Json::parse(response->body);
      figures_.run_id = run["id"].get<std::int64_t>();
      figures_.run_status = "running";
      std::printf("soak: retraining run %lld started at %.1f s\n",
                  static_cast<long long>(figures_.run_id), elapsed_s());
      break;
    }
  }
}

double metric(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::atof(text.c_str() + at + name.size() + 2);
}

// The forecaster works in passes after the commits; the soak stops the daemon only when no cell
// waits and the count of stored forecasts stopped moving.
void Soak::wait_forecaster_idle() {
  double last = -1;
  eventually(
      [&] {
        auto client = api();
        if (!client) return false;
        auto response = client->get("/metrics");
        if (!response || response->status != 200) return false;
        const double pending = metric(response->body, "cyclecast_forecaster_cells_pending");
        const double stored = metric(response->body, "cyclecast_forecasts_total");
        const bool settled = pending == 0 && stored == last;
        last = stored;
        if (!settled) std::this_thread::sleep_for(500ms);
        return settled;
      },
      120s);
}

// The daemon must never exit but when the soak kills it: a hostile message that crashes it would
// show here first (and again at every start when it was retained).
void Soak::notice_daemon_exit() {
  if (daemon_->running()) return;
  ++figures_.daemon_exits_on_its_own;
  std::printf("soak: cyclecastd exited on its own at %.1f s; restarting it\n", elapsed_s());
  start_daemon();
}

// The last rig's first cell is the victim. The hostile clients start once the daemon knows it:
// a cell belongs to the rig that registered it first, and the soak's rigs are the legitimate
// owners.
void Soak::start_hostile() {
  if (elapsed_s() < 0.2 * flags_.publish_s) return;
  const auto cell = api_get("/api/v1/cells/" + victim_cell());
  if (!cell || !cell->contains("cell")) return;
  HostileTargets targets;
  targets.broker_port = broker_.port();
  targets.intruder_rig_id = kIntruderRig;
  targets.rig_intruder = {kIntruderRig, broker_password(kIntruderRig)};
  const std::string gateway = "gateway-" + std::string(kIntruderNode);
  targets.gateway_intruder = {gateway, broker_password(gateway)};
  targets.victim_rig_id = rigs_.back().rig_id;
  targets.victim_cell_id = victim_cell();
  targets.daemon_client_id = "cyclecastd-test";  // DaemonProcess's --client-id
  hostile_ = std::make_unique<HostileClients>(dir_, targets);
  hostile_->start();
  std::printf("soak: hostile clients started at %.1f s\n", elapsed_s());
}

std::string Soak::victim_cell() const {
  return published_[static_cast<std::size_t>((flags_.rigs - 1) * flags_.cells_per_rig)].cell_id;
}

// The rig the daemon says the victim cell belongs to, or what went wrong asking.
std::string Soak::victim_cell_owner() {
  const auto cell = api_get("/api/v1/cells/" + victim_cell());
  if (!cell || !cell->contains("cell")) return "(the API did not answer)";
  const Json& rig = (*cell)["cell"]["rig_id"];
  return rig.is_string() ? rig.get<std::string>() : rig.dump();
}

// Checks what an earlier soak with the same data flags left in the directory.
int Soak::check_only() {
  fs::create_directories(dir_ / "check-only");
  rigs_ = write_rigs(dir_ / "check-only", flags_, published_);
  forecasts_.check = flags_.retrain;
  forecasts_.window = kWindow;
  forecasts_.strict = flags_.strict_forecasts;
  const SoakVerdict verdict = check_database(dir_ / "state", published_, forecasts_);
  std::printf(
      "soak: records published %lld, stored %lld; lost %lld, duplicated %lld, wrong value "
      "%lld; host forecasts %lld, missing %lld, late cycles without one %lld, stranded %lld; "
      "integrity %s\n",
      static_cast<long long>(verdict.published), static_cast<long long>(verdict.stored),
      static_cast<long long>(verdict.lost), static_cast<long long>(verdict.duplicated),
      static_cast<long long>(verdict.wrong_value), static_cast<long long>(verdict.host_forecasts),
      static_cast<long long>(verdict.forecasts_missing),
      static_cast<long long>(verdict.late_without_forecast),
      static_cast<long long>(verdict.stranded_without_forecast), verdict.integrity.c_str());
  for (const auto& problem : verdict.problems)
    std::printf("soak: FAILED: %s\n", problem.c_str());
  return verdict.problems.empty() ? 0 : 1;
}

int Soak::run() {
  fs::create_directories(dir_ / "state");
  const fs::path token_file = dir_ / "api-token";
  std::ofstream(token_file) << kToken << "\n";
  ::chmod(token_file.c_str(), 0600);
  const fs::path config = dir_ / "cyclecastd.toml";
  std::ofstream(config) << daemon_config(token_file);
  rigs_ = write_rigs(dir_, flags_, published_);
  const auto events = schedule(flags_, rng_);

  started_ = Clock::now();
  broker_.start();
  daemon_ = std::make_unique<DaemonProcess>(dir_ / "state", broker_.port(), config);
  start_daemon();
  rig_children_.resize(rigs_.size());
  rig_done_.assign(rigs_.size(), false);
  for (std::size_t i = 0; i < rigs_.size(); ++i)
    start_rig(i);

  std::size_t next = 0;
  while (next < events.size() || !rigs_done() || run_in_progress()) {
    if (elapsed_s() > flags_.timeout_s) {
      std::printf("soak: gave up after %d s with %zu faults to go and rigs %s\n", flags_.timeout_s,
                  events.size() - next, rigs_done() ? "done" : "unfinished");
      return 1;
    }
    notice_daemon_exit();
    if (flags_.hostile && !hostile_) start_hostile();
    supervise_rigs();
    run_in_progress();  // follows the run: its end starts the gateway that gateway kills wait for
    if (next < events.size() && events[next].at_s <= elapsed_s()) {
      const Fault fault = events[next].fault;
      if (fault == Fault::kGatewayKill && !gateway_started_ && figures_.run_status != "running") {
        ++next;  // the run gave no champion: no node, no gateway to kill
      } else if (!held(fault)) {
        apply(fault);
        ++next;
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  const double publish_end_s = elapsed_s();
  if (hostile_) hostile_->stop();

  wait_forecaster_idle();
  notice_daemon_exit();
  const std::string victim_owner = flags_.hostile ? victim_cell_owner() : "";
  const bool gateway_up = !gateway_started_ || gateway_.running();
  gateway_.signal(SIGTERM);
  const auto gateway_exit = gateway_started_ ? gateway_.wait(30s) : std::optional<int>(0);
  daemon_->signal(SIGTERM);
  const auto daemon_exit = daemon_->wait(60s);
  broker_.kill();
  SoakVerdict verdict = check_database(dir_ / "state", published_, forecasts_);
  if (daemon_exit != 0) verdict.problems.push_back("cyclecastd did not stop cleanly on SIGTERM");
  if (!gateway_up) verdict.problems.push_back("cyclecast-gateway was not running at the end");
  if (gateway_exit != 0) verdict.problems.push_back("cyclecast-gateway did not stop on SIGTERM");
  if (gateway_started_ && verdict.edge_forecasts == 0) {
    verdict.problems.push_back("the gateway's node made no edge forecast that was stored");
  }
  if (figures_.daemon_exits_on_its_own > 0) {
    verdict.problems.push_back("cyclecastd exited on its own " +
                               std::to_string(figures_.daemon_exits_on_its_own) + " times");
  }
  if (flags_.hostile && !hostile_) verdict.problems.push_back("the hostile clients never started");
  if (flags_.hostile && victim_owner != rigs_.back().rig_id) {
    verdict.problems.push_back("cell " + victim_cell() + " belongs to " + victim_owner +
                               " instead of " + rigs_.back().rig_id);
  }
  if (flags_.retrain && figures_.run_status != "succeeded") {
    verdict.problems.push_back("the retraining run ended " + figures_.run_status);
  }

  std::printf(
      "soak: records published %lld, stored %lld; lost %lld, duplicated %lld, wrong value %lld\n"
      "soak: cyclecastd SIGKILLs %d, broker restarts %d, rig SIGKILLs %d (reruns after an error "
      "%d), gateway SIGKILLs %d\n"
      "soak: retraining run %lld %s, champion %s; host forecasts %lld, missing %lld, late "
      "cycles without one %lld, stranded %lld; edge forecasts %lld; "
      "rejected rows %lld\n"
      "soak: integrity %s; %lld runs in the registry\n"
      "soak: cyclecastd exits on its own %d\n"
      "soak: all answered after %.1f s, %.1f s in all\n",
      static_cast<long long>(verdict.published), static_cast<long long>(verdict.stored),
      static_cast<long long>(verdict.lost), static_cast<long long>(verdict.duplicated),
      static_cast<long long>(verdict.wrong_value), figures_.daemon_kills, figures_.broker_restarts,
      figures_.rig_kills, figures_.rig_restarts_after_error, figures_.gateway_kills,
      static_cast<long long>(figures_.run_id), figures_.run_status.c_str(),
      figures_.champion.empty() ? "none" : figures_.champion.c_str(),
      static_cast<long long>(verdict.host_forecasts),
      static_cast<long long>(verdict.forecasts_missing),
      static_cast<long long>(verdict.late_without_forecast),
      static_cast<long long>(verdict.stranded_without_forecast),
      static_cast<long long>(verdict.edge_forecasts), static_cast<long long>(verdict.rejected_rows),
      verdict.integrity.c_str(), static_cast<long long>(verdict.runs),
      figures_.daemon_exits_on_its_own, publish_end_s, elapsed_s());
  if (hostile_) std::printf("soak: hostile messages sent: %s\n", hostile_->summary().c_str());
  for (const auto& problem : verdict.problems)
    std::printf("soak: FAILED: %s\n", problem.c_str());
  if (!verdict.problems.empty()) {
    std::printf("soak: logs and files in %s\n", dir_.c_str());
    return 1;
  }
  std::printf("soak: passed\n");
  return 0;
}

}  // namespace
}  // namespace cyclecast::soak

int main(int argc, char** argv) {
  using cyclecast::soak::Flags;
  Flags flags;
  CLI::App app{"Fault-injection soak of cyclecastd (docs/reliability.md)"};
  cyclecast::soak::add_flags(app, flags);
  CLI11_PARSE(app, argc, argv);
  if (flags.records < 1 || flags.rigs < 1 || flags.cells_per_rig < 1 || flags.publish_s <= 0) {
    std::fprintf(stderr, "soak: --records, --rigs, --cells-per-rig and --publish-s must be > 0\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines show up when piped to a file
  std::uint64_t seed = flags.seed;
  if (seed == 0) seed = std::random_device{}() | 1u;
  std::printf("soak: seed %llu (rerun with --seed %llu)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  try {
    std::optional<cyclecast::testing::TempDir> temp;
    std::filesystem::path dir = flags.work_dir;
    if (dir.empty()) {
      temp.emplace();
      dir = temp->path();
    }
    std::filesystem::create_directories(dir);
    const int status = flags.check_only ? cyclecast::soak::Soak(flags, dir, seed).check_only()
                                        : cyclecast::soak::Soak(flags, dir, seed).run();
    std::fflush(stdout);
    if (temp && (status != 0 || flags.keep)) {
      // Keep the evidence: move the files out of the directory TempDir removes.
      const auto kept =
          std::filesystem::temp_directory_path() / ("cyclecast-soak-" + std::to_string(seed));
      std::filesystem::remove_all(kept);
      std::filesystem::rename(dir, kept);
      std::filesystem::create_directories(dir);
      std::printf("soak: files kept in %s\n", kept.c_str());
    }
    return status;
  } catch (const std::exception& e) {
    std::printf("soak: FAILED: %s\n", e.what());
    return 1;
  }
}
