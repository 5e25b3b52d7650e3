// cyclecast-gateway end to end: a real mosquitto, the built gateway, and the virtual node
// (cyclecast-node, the firmware's node program) behind a pty the test owns, so that the test can
// put garbage on the line, reset the node, take it away and bring it back. Records go in as a
// rig publishes them; what must come out are edge forecasts and the retained node status.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/lifecycle/signing.h"
#include "cyclecast/models/model_file.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/node_frames.h"
#include "ingest_harness.h"
#include "temp_dir.h"
#include "tiny_run.h"

namespace cyclecast::gateway {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::Broker;
using cyclecast::testing::Child;
using cyclecast::testing::eventually;
using cyclecast::testing::read_text;
using cyclecast::testing::TempDir;
using Json = nlohmann::json;
using std::chrono::seconds;

std::string binary(const std::string& name) {
  return std::string(CYCLECAST_BINARY_DIR) + "/bin/" + name;
}

void write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// The serial line: a pty whose slave the gateway opens (through a symlink), and whose master the
// test connects to the virtual node's stdin/stdout. The test can inject bytes towards the
// gateway, reset the node (SIGUSR1), stop it (nothing answers), and unplug the whole line.
class NodeLine {
 public:
  // With `slots`, the node keeps model-update slots in that file (cyclecast-node --slots).
  NodeLine(fs::path link, fs::path model, fs::path slots = {})
      : link_(std::move(link)), model_(std::move(model)), slots_(std::move(slots)) {}
  ~NodeLine() {
    stop_node();
    unplug();
  }

  void plug() {
    int slave = -1;
    char name[256] = {};
    ASSERT_EQ(openpty(&master_, &slave, name, nullptr, nullptr), 0);
    // Children (the gateway among them) must not inherit the master: unplugging closes it.
    ::fcntl(master_, F_SETFD, FD_CLOEXEC);
    termios tio{};
    tcgetattr(slave, &tio);
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    ::close(slave);  // the gateway opens it by name
    fs::remove(link_);
    fs::create_symlink(name, link_);
    pumping_ = true;
    pump_ = std::thread([this] { pump(); });
  }
  void unplug() {
    pumping_ = false;
    if (pump_.joinable()) pump_.join();
    if (master_ >= 0) ::close(master_);
    master_ = -1;
    std::error_code ec;
    fs::remove(link_, ec);
  }
  void start_node() {
    int to_node[2], from_node[2];
    ASSERT_EQ(::pipe2(to_node, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(from_node, O_CLOEXEC), 0);
    const std::string program = binary("cyclecast-node");
    const std::string model = model_.string();
    const std::string slots = slots_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(to_node[0], 0);
      ::dup2(from_node[1], 1);
      ::close(to_node[1]);
      ::close(from_node[0]);
      if (slots.empty()) {
        ::execl(program.c_str(), program.c_str(), "--model", model.c_str(), nullptr);
      } else {
        ::execl(program.c_str(), program.c_str(), "--model", model.c_str(), "--slots",
                slots.c_str(), nullptr);
      }
      ::_exit(127);
    }
    ::close(to_node[0]);
    ::close(from_node[1]);
    std::lock_guard lock(mutex_);
    node_in_ = to_node[1];
    node_out_ = from_node[0];
  }
  void stop_node() {
    std::lock_guard lock(mutex_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
    if (node_in_ >= 0) ::close(node_in_);
    if (node_out_ >= 0) ::close(node_out_);
    node_in_ = node_out_ = -1;
  }
  void reset_node() { ::kill(pid_, SIGUSR1); }
  // Makes the line behave as a node of protocol v1 only: every v2 request is answered
  // "cc1 ER SEQ version", as such a node answers it, and only v1 requests reach the node.
  void speak_v1_only() { v1_only_ = true; }
  // Bytes towards the gateway, between whole lines of the node.
  void inject(const std::string& bytes) {
    std::lock_guard lock(mutex_);
    write_all(master_, bytes);
  }

 private:
  // Copies gateway -> node and node -> gateway; without a node, the gateway's bytes are lost.
  void pump() {
    char buffer[4096];
    while (pumping_) {
      std::unique_lock lock(mutex_);
      pollfd fds[2] = {{master_, POLLIN, 0}, {node_out_, POLLIN, 0}};
      const int nfds = node_out_ >= 0 ? 2 : 1;
      lock.unlock();
      if (::poll(fds, static_cast<nfds_t>(nfds), 20) <= 0) continue;
      lock.lock();
      if (fds[0].revents & POLLIN) {
        const ssize_t n = ::read(master_, buffer, sizeof buffer);
        if (n > 0) to_node(std::string(buffer, static_cast<size_t>(n)));
      }
      if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP)) && node_out_ >= 0) {
        const ssize_t n = ::read(node_out_, buffer, sizeof buffer);
        if (n > 0) write_all(master_, std::string(buffer, static_cast<size_t>(n)));
      }
    }
  }

  // Gateway -> node bytes (the mutex held); a v1-only line refuses v2 requests itself.
  void to_node(const std::string& bytes) {
    if (!v1_only_) {
      if (node_in_ >= 0) write_all(node_in_, bytes);
      return;
    }
    pending_ += bytes;
    for (size_t end = pending_.find('\n'); end != std::string::npos; end = pending_.find('\n')) {
      const std::string line = pending_.substr(0, end + 1);
      pending_.erase(0, end + 1);
      if (line.rfind("cc2 ", 0) == 0) {
        const size_t seq_end = line.find_first_of(" *", 7);
        write_all(master_, wire::frame("cc1 ER " + line.substr(7, seq_end - 7) + " version"));
      } else if (node_in_ >= 0) {
        write_all(node_in_, line);
      }
    }
  }

  fs::path link_, model_, slots_;
  std::atomic<bool> v1_only_{false};
  std::string pending_;
  int master_ = -1;
  pid_t pid_ = -1;
  int node_in_ = -1, node_out_ = -1;
  std::mutex mutex_;
  std::atomic<bool> pumping_{false};
  std::thread pump_;
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    port_ = cyclecast::testing::free_port();
    broker_ = std::make_unique<Broker>(dir_.path(), port_);
    broker_->start();
    // The tiny run's student with an interval table of its own, so that the node's forecasts
    // carry an interval whatever the run calibrated.
    const fs::path run = bundle::testing::tiny_run_dir();
    std::ifstream int8_file(run / "student.int8", std::ios::binary);
    const std::vector<uint8_t> int8((std::istreambuf_iterator<char>(int8_file)), {});
    auto student = models::deserialize_quantized_student(int8);
    ASSERT_TRUE(student.ok()) << student.error().message;
    student->interval_half_width.assign(student->horizon, 1 << 22);
    auto saved = models::load_model((run / "student.ccm").string());
    ASSERT_TRUE(saved.ok());
    auto spec = pipeline::FeatureSpec::from_metadata(saved->metadata);
    ASSERT_TRUE(spec.ok());
    auto exported = pipeline::export_model(*student, *spec, "gw-1");
    ASSERT_TRUE(exported.ok()) << exported.error().message;
    model_sha_ = exported->sha256_hex;
    ASSERT_TRUE(pipeline::write_exported_model(*exported, dir_ / "model").ok());
    line_ = std::make_unique<NodeLine>(dir_ / "tty", dir_ / "model" / "model.bin", node_slots());
    line_->plug();
    if (v1_node()) line_->speak_v1_only();
    line_->start_node();
    subscriber_ = Child({"/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port_),
                         "-q", "1", "-v", "-t", "cyclecast/v1/nodes/n1/#"},
                        dir_ / "sub.txt");
    publish("cyclecast/v1/rigs/r1/cells/c1/meta", R"({"rated_capacity_ah": 1.1})", true);
    std::vector<std::string> gateway_args{binary("cyclecast-gateway"),
                                          "--node",
                                          "n1",
                                          "--serial",
                                          (dir_ / "tty").string(),
                                          "--cells",
                                          "c1",
                                          "--mqtt-port",
                                          std::to_string(port_),
                                          "--answer-timeout-ms",
                                          "200",
                                          "--max-retries",
                                          "1",
                                          "--reopen-min-ms",
                                          "50",
                                          "--reopen-max-ms",
                                          "400",
                                          "--status-interval-ms",
                                          "100",
                                          "--queue-limit",
                                          queue_limit(),
                                          "--log-level",
                                          "debug"};
    for (const std::string& arg : extra_gateway_args())
      gateway_args.push_back(arg);
    gateway_ = Child(gateway_args, dir_ / "gateway.log");
    ASSERT_TRUE(eventually([&] { return status()["state"] == "online"; }, seconds(20)))
        << read_text(dir_ / "gateway.log");
  }

  virtual std::string queue_limit() const { return "10000"; }
  virtual fs::path node_slots() { return {}; }
  virtual std::vector<std::string> extra_gateway_args() { return {}; }
  virtual bool v1_node() const { return false; }

  void publish(const std::string& topic, const std::string& payload, bool retain = false) {
    std::vector<std::string> argv = {"/usr/bin/mosquitto_pub",
                                     "-h",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(port_),
                                     "-q",
                                     "1",
                                     "-t",
                                     topic,
                                     "-m",
                                     payload};
    if (retain) argv.push_back("-r");
    Child pub(argv, "/dev/null");
    ASSERT_EQ(pub.wait(seconds(10)), 0);
  }
  // Cycles first..last of cell c1, fading slowly, in one message as a rig sends them.
  void publish_cycles(int first, int last) {
    Json records = Json::array();
    for (int k = first; k <= last; ++k) {
      records.push_back({{"cycle", k},
                         {"qd_ah", 1.1 * (1.0 - 0.0004 * k - 0.000002 * k * k)},
                         {"ir_ohm", 0.017},
                         {"tavg_c", 30.0},
                         {"chargetime_min", 10.5}});
    }
    publish("cyclecast/v1/rigs/r1/cells/c1/cycles", records.dump());
  }

  // Messages seen by the subscriber, by topic suffix.
  std::vector<Json> messages(const std::string& suffix) {
    std::vector<Json> out;
    std::istringstream in(read_text(dir_ / "sub.txt"));
    for (std::string line; std::getline(in, line);) {
      const std::string topic = "cyclecast/v1/nodes/n1/" + suffix + " ";
      if (line.rfind(topic, 0) != 0) continue;
      Json j = Json::parse(line.substr(topic.size()), nullptr, false);
      if (!j.is_discarded()) out.push_back(j);
    }
    return out;
  }
  Json status() {
    const auto all = messages("status");
    return all.empty() ? Json::object() : all.back();
  }
  std::map<int64_t, Json> forecasts() {
    std::map<int64_t, Json> out;
    for (const Json& f : messages("forecasts"))
      out[f["cycle"].get<int64_t>()] = f;
    return out;
  }
  bool forecasts_up_to(int64_t cycle) { return forecasts().count(cycle) == 1; }

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<NodeLine> line_;
  Child subscriber_;
  Child gateway_;
  std::string model_sha_;
};

// The tiny run's model has W = 20, H = 10: cycles 20.. are forecast.
TEST_F(GatewayTest, RecordsBecomeEdgeForecastsWithARetainedStatus) {
  publish_cycles(1, 25);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(25); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  const auto all = forecasts();
  EXPECT_EQ(all.size(), 6u);  // cycles 20..25, each once
  EXPECT_EQ(all.begin()->first, 20);
  EXPECT_EQ(messages("forecasts").size(), 6u);
  for (const auto& [cycle, f] : all) {
    EXPECT_EQ(f["node"], "n1");
    EXPECT_EQ(f["cell"], "c1");
    EXPECT_EQ(f["model_version"], "gw-1");
    EXPECT_EQ(f["model_sha256"], model_sha_);
    EXPECT_EQ(f["horizon"], 10);
    EXPECT_GT(f["soh_at_h"].get<double>(), 0.5);
    EXPECT_LT(f["soh_at_h"].get<double>(), 1.1);
    // Protocol v2: the node's interval, in the host payload's fields, around the forecast.
    ASSERT_TRUE(f.contains("lower") && f.contains("upper") && f.contains("eol_interval")) << f;
    ASSERT_EQ(f["lower"].size(), 10u);
    EXPECT_TRUE(f["lower"][0].is_null());
    EXPECT_LT(f["lower"][9].get<double>(), f["soh_at_h"].get<double>());
    EXPECT_GT(f["upper"][9].get<double>(), f["soh_at_h"].get<double>());
    EXPECT_TRUE(wire::parse_edge_forecast(f.dump()).ok());
  }
  ASSERT_TRUE(eventually([&] { return status()["forecasts"] == 6; }, seconds(5)));
  const Json s = status();
  EXPECT_EQ(s["state"], "online");
  EXPECT_EQ(s["model_version"], "gw-1");
  EXPECT_EQ(s["window"], 20);
  EXPECT_GT(s["last_seen_ms"].get<int64_t>(), 0);

  // A rig re-sending what it sent is not forecast again.
  publish_cycles(20, 25);
  publish_cycles(26, 26);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(26); }, seconds(10)));
  EXPECT_EQ(messages("forecasts").size(), 7u);
}

TEST_F(GatewayTest, ANodeResetIsHealedByReplayingTheHistory) {
  publish_cycles(1, 22);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(22); }, seconds(20)));
  line_->reset_node();  // histories lost; without a replay cycle 23 would get no forecast
  ASSERT_TRUE(eventually([&] { return status()["resets"] == 1; }, seconds(10)))
      << read_text(dir_ / "gateway.log");
  publish_cycles(23, 24);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(24); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  EXPECT_EQ(messages("forecasts").size(), 5u);  // 20..24, none for the replayed cycles
}

TEST_F(GatewayTest, GarbageOnTheLineIsCountedAndSkipped) {
  publish_cycles(1, 20);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(20); }, seconds(20)));
  const Json resets_before = status()["resets"];  // the node's start-up HI may count
  std::string bad_crc = "cc1 FC 99 c1 21 gw-1 0.9 0.9 - 5*00000000\n";
  line_->inject("line noise\n" + std::string("\x00\xff\x7f\n", 4) + std::string(2000, 'x') + "\n" +
                bad_crc + "cc1 HI 0 1 half-a-fra");  // ... and an unfinished line
  line_->inject("\n");
  publish_cycles(21, 22);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(22); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  ASSERT_TRUE(eventually([&] { return status()["garbage_lines"] >= 5; }, seconds(5)))
      << status().dump();
  EXPECT_EQ(status()["resets"], resets_before);  // a HI without its CRC is garbage, not a reset
  EXPECT_EQ(status()["state"], "online");
}

TEST_F(GatewayTest, ANodeThatStopsAnsweringOrIsUnpluggedComesBack) {
  publish_cycles(1, 20);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(20); }, seconds(20)));

  // Silent node: the gateway resends, gives up, says so, and keeps the records queued.
  line_->stop_node();
  publish_cycles(21, 21);
  ASSERT_TRUE(eventually([&] { return status()["state"] == "unresponsive"; }, seconds(10)))
      << read_text(dir_ / "gateway.log");
  line_->start_node();
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(21); }, seconds(20)))
      << read_text(dir_ / "gateway.log");

  // Unplugged: the device is gone, reopening fails with backoff until it is back.
  line_->stop_node();
  line_->unplug();
  ASSERT_TRUE(eventually([&] { return status()["state"] == "disconnected"; }, seconds(10)))
      << read_text(dir_ / "gateway.log");
  publish_cycles(22, 23);
  line_->plug();
  line_->start_node();
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(23); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  EXPECT_EQ(status()["state"], "online");
  EXPECT_GE(status()["reopens"].get<int64_t>(), 3);
  EXPECT_GE(status()["timeouts"].get<int64_t>(), 2);
}

// rig -> broker -> gateway -> node -> gateway -> broker -> cyclecastd -> forecasts table.
TEST_F(GatewayTest, CyclecastdStoresEdgeForecasts) {
  cyclecast::testing::DaemonProcess daemon(dir_ / "state", port_);
  daemon.start();  // gets the retained metadata: cell c1 is registered
  publish_cycles(1, 23);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(23); }, seconds(20)));
  const auto published = forecasts();
  std::vector<storage::ForecastRecord> stored;
  ASSERT_TRUE(eventually(
      [&] {
        storage::OpenOptions options;
        options.create_if_missing = false;
        options.read_only = true;
        auto db = storage::Database::open(daemon.database(), options);
        if (!db) return false;
        auto rows = db->forecasts_of("c1");
        if (!rows) return false;
        stored = *rows;
        return stored.size() == 4;
      },
      seconds(20)))
      << stored.size() << " rows; " << read_text(daemon.log());
  for (const storage::ForecastRecord& row : stored) {
    const Json& f = published.at(row.at_cycle);
    EXPECT_EQ(row.origin, "edge:n1");
    EXPECT_EQ(row.model_version, "gw-1");
    EXPECT_EQ(row.created_at_ms, f["received_at_ms"].get<int64_t>());
    ASSERT_EQ(row.soh.size(), 10u);  // H = 10: step 10 is +10 and +H at once
    EXPECT_EQ(row.soh[9], static_cast<float>(f["soh_at_h"].get<double>()));
    EXPECT_TRUE(std::isnan(row.soh[0]));
    ASSERT_EQ(row.lower.size(), 10u);
    ASSERT_EQ(row.upper.size(), 10u);
    EXPECT_EQ(row.lower[9], static_cast<float>(f["lower"][9].get<double>()));
    EXPECT_EQ(row.upper[9], static_cast<float>(f["upper"][9].get<double>()));
    EXPECT_TRUE(std::isnan(row.lower[0]));
  }
  EXPECT_EQ(stored.front().at_cycle, 20);

  // What is not an edge forecast is recorded as rejected with its reason, never stored.
  publish("cyclecast/v1/nodes/n1/forecasts", "{}");
  publish("cyclecast/v1/nodes/n2/forecasts", messages("forecasts").front().dump());
  std::vector<std::string> reasons;
  ASSERT_TRUE(eventually(
      [&] {
        reasons = cyclecast::testing::rejected_reasons(daemon.database());
        return reasons.size() == 2;
      },
      seconds(20)));
  EXPECT_NE(reasons[0].find("edge forecast"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[1].find("edge forecast"), std::string::npos) << reasons[1];
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(seconds(10)), 0);
}

// A node that speaks only v1 (firmware from before intervals): the gateway's v2 identify is
// refused, it falls back to v1, and the forecasts flow without an interval.
class V1NodeGatewayTest : public GatewayTest {
 protected:
  bool v1_node() const override { return true; }
};

TEST_F(V1NodeGatewayTest, AV1NodeIsSpokenToInV1AndItsForecastsHaveNoInterval) {
  publish_cycles(1, 22);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(22); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  const auto all = forecasts();
  EXPECT_EQ(all.size(), 3u);
  for (const auto& [cycle, f] : all) {
    EXPECT_FALSE(f.contains("lower")) << f;
    EXPECT_TRUE(wire::parse_edge_forecast(f.dump()).ok());
  }
  EXPECT_EQ(status()["state"], "online");
  EXPECT_NE(read_text(dir_ / "gateway.log").find("speaking v1"), std::string::npos);
  // A reset makes the gateway try v2 again, and fall back again.
  line_->reset_node();
  publish_cycles(23, 23);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(23); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  EXPECT_FALSE(forecasts().at(23).contains("lower"));
}

class SmallQueueGatewayTest : public GatewayTest {
 protected:
  std::string queue_limit() const override { return "5"; }
};

// A node that is away lets the queue fill: the oldest records go (counted), the newest wait.
TEST_F(SmallQueueGatewayTest, TheQueueIsBoundedAndDropsTheOldest) {
  line_->stop_node();
  publish_cycles(1, 30);
  ASSERT_TRUE(eventually([&] { return status()["dropped_records"] == 25; }, seconds(10)))
      << status().dump();
  line_->start_node();
  ASSERT_TRUE(eventually([&] { return status()["state"] == "online" && status()["queued"] == 0; },
                         seconds(20)))
      << status().dump() << read_text(dir_ / "gateway.log");
  EXPECT_EQ(status()["dropped_records"], 25);
  EXPECT_TRUE(messages("forecasts").empty());  // 5 cycles are fewer than W = 20
}

TEST_F(GatewayTest, StopsCleanlyWithAnOfflineStatus) {
  gateway_.signal(SIGTERM);
  EXPECT_EQ(gateway_.wait(seconds(10)), 0);
  ASSERT_TRUE(eventually([&] { return status()["state"] == "offline"; }, seconds(5)));
}

// JSON nested 90,000 deep (about 180 kB) on the gateway's topics once made it overflow the stack,
// like the daemon (docs/reliability.md, "Hostile JSON"): now refused, and records still flow.
TEST_F(GatewayTest, DeepJsonOnItsTopicsIsRefusedAndRecordsStillFlow) {
  const std::string deep = std::string(90000, '[') + std::string(90000, ']');
  const std::string meta = "cyclecast/v1/rigs/r1/cells/c1/meta";
  const std::string cycles = "cyclecast/v1/rigs/r1/cells/c1/cycles";
  ASSERT_TRUE(cyclecast::testing::publish_raw(
      port_, meta, R"({"rated_capacity_ah": 1.1, "metadata": {"x": )" + deep + "}}"));
  ASSERT_TRUE(cyclecast::testing::publish_raw(
      port_, cycles, R"([{"cycle": 1, "qd_ah": 1.0, "x": )" + deep + "}]"));
  ASSERT_TRUE(cyclecast::testing::publish_raw(port_, cycles,
                                              R"([{"cycle": 1, "qd_ah": 1.0}, )" + deep + "]"));
  publish_cycles(1, 20);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(20); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  EXPECT_TRUE(gateway_.running());
  EXPECT_NE(read_text(dir_ / "gateway.log").find("nested deeper than 64 levels"),
            std::string::npos);
}

// A signed bundle of the tiny run exported as "gw-2" (the node runs "gw-1"), and the operator's
// public key file; `other_key` signs with a key the gateway was not given.
void write_update_bundle(const fs::path& dir, bool other_key) {
  auto key = bundle::load_or_create_signing_key(dir / "keys");
  auto wrong = bundle::load_or_create_signing_key(dir / "other-keys");
  ASSERT_TRUE(key.ok() && wrong.ok());
  bundle::RunBundleOptions options;
  options.run_dir = bundle::testing::tiny_run_dir().string();
  options.model_version = "gw-2";
  auto contents = bundle::collect_run(options);
  ASSERT_TRUE(contents.ok()) << contents.error().message;
  auto bytes = bundle::build_bundle(*contents, other_key ? *wrong : *key);
  ASSERT_TRUE(bytes.ok());
  std::ofstream(dir / "gw-2.bundle", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes->data()),
             static_cast<std::streamsize>(bytes->size()));
  std::ofstream(dir / "operator.pub") << bundle::to_hex(key->public_key) << "\n";
}

class UpdateGatewayTest : public GatewayTest {
 protected:
  fs::path node_slots() override { return dir_ / "slots.bin"; }
  std::vector<std::string> extra_gateway_args() override {
    write_update_bundle(dir_.path(), false);
    return {"--update-bundle", (dir_ / "gw-2.bundle").string(), "--operator-key",
            (dir_ / "operator.pub").string()};
  }
};

// The gateway verifies the bundle, sends its model in chunks, the node switches (slot A) and
// forecasts with it; the retained status says so, and a node reset keeps the new model.
TEST_F(UpdateGatewayTest, UpdatesTheNodeToTheBundlesModel) {
  ASSERT_TRUE(eventually([&] { return status()["update"] == "switched"; }, seconds(30)))
      << read_text(dir_ / "gateway.log");
  ASSERT_TRUE(eventually([&] { return status()["model_version"] == "gw-2"; }, seconds(10)));
  EXPECT_EQ(status()["active_slot"], "A");
  publish_cycles(1, 21);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(21); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  // The bundle's model.bin carries the run's interval table (if its training calibrated one) in
  // its tag 2 section: the updated node's v2 forecasts then carry that interval.
  std::ifstream int8_file(bundle::testing::tiny_run_dir() / "student.int8", std::ios::binary);
  const std::vector<uint8_t> int8((std::istreambuf_iterator<char>(int8_file)), {});
  const auto run_student = models::deserialize_quantized_student(int8);
  ASSERT_TRUE(run_student.ok());
  const bool run_has_table = !run_student->interval_half_width.empty();
  for (const auto& [cycle, f] : forecasts()) {
    EXPECT_EQ(f["model_version"], "gw-2") << cycle;
    EXPECT_EQ(f.contains("lower"), run_has_table) << cycle << " " << f;
  }
  const int64_t resets_before = status()["resets"].get<int64_t>();
  line_->reset_node();
  publish_cycles(22, 22);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(22); }, seconds(20)));
  EXPECT_EQ(forecasts()[22]["model_version"], "gw-2") << "the slot survives the reset";
  ASSERT_TRUE(
      eventually([&] { return status()["resets"].get<int64_t>() > resets_before; }, seconds(10)));
  EXPECT_EQ(status()["update"], "switched");
  const std::string log = read_text(dir_ / "gateway.log");
  EXPECT_EQ(log.find("updating node n1"), log.rfind("updating node n1"))
      << "after the reset the node runs the bundle's model already: nothing is sent again";
}

class V1NodeUpdateGatewayTest : public UpdateGatewayTest {
 protected:
  bool v1_node() const override { return true; }
};

// One protocol version carries both the intervals and the update: a node that speaks only v1
// gets neither, keeps its model and forecasts in v1, and the status says why.
TEST_F(V1NodeUpdateGatewayTest, AV1NodeIsNotUpdatedAndKeepsForecasting) {
  ASSERT_TRUE(eventually([&] { return status()["update"] == "failed:protocol"; }, seconds(30)))
      << read_text(dir_ / "gateway.log");
  publish_cycles(1, 21);
  ASSERT_TRUE(eventually([&] { return forecasts_up_to(21); }, seconds(20)))
      << read_text(dir_ / "gateway.log");
  for (const auto& [cycle, f] : forecasts()) {
    EXPECT_EQ(f["model_version"], "gw-1") << cycle;
    EXPECT_FALSE(f.contains("lower")) << cycle;
  }
  EXPECT_EQ(read_text(dir_ / "gateway.log").find("updating node n1"), std::string::npos);
}

TEST(UpdateGateway, RefusesABundleSignedWithAnotherKeyBeforeSendingAnything) {
  const TempDir dir;
  write_update_bundle(dir.path(), true);
  Child gateway({binary("cyclecast-gateway"), "--node", "n1", "--serial",
                 (dir.path() / "no-such-tty").string(), "--cells", "c1", "--mqtt-port", "1",
                 "--update-bundle", (dir.path() / "gw-2.bundle").string(), "--operator-key",
                 (dir.path() / "operator.pub").string()},
                dir.path() / "gateway.log");
  EXPECT_EQ(gateway.wait(seconds(20)), 1);
  EXPECT_NE(read_text(dir.path() / "gateway.log").find("key"), std::string::npos)
      << read_text(dir.path() / "gateway.log");
}

}  // namespace
}  // namespace cyclecast::gateway
