// End-to-end ingestion against a real mosquitto: the rig client and cyclecastd as processes.
// After each scenario every record is stored exactly once, none is missing, and the database
// passes integrity_check.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cyclecast/wire/protocol.h"
#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kRigTimeout = seconds(60);

class Ingest : public ::testing::Test {
 protected:
  Ingest()
      : port_(free_port()), broker_(dir_.path(), port_), daemon_(dir_.path() / "state", port_) {}

  void SetUp() override {
    broker_.start();
    daemon_.start();
  }

  Child rig(const RigData& data, const std::string& outbox, std::vector<std::string> extra = {},
            const std::string& log = "rig.log") {
    std::vector<std::string> args = {data.cycles_csv.string(),
                                     "--cells",
                                     data.cells_csv.string(),
                                     "--outbox",
                                     (dir_.path() / outbox).string(),
                                     "--ack-timeout-ms",
                                     "1500",
                                     "--deadline-s",
                                     "50"};
    args.insert(args.end(), extra.begin(), extra.end());
    return start_rig(dir_.path(), port_, args, log);
  }

  int run_rig(const RigData& data, const std::string& outbox, std::vector<std::string> extra = {}) {
    Child child = rig(data, outbox, std::move(extra));
    const auto status = child.wait(kRigTimeout);
    return status.value_or(-1);
  }

  std::string rig_log(const std::string& name = "rig.log") { return read_text(dir_ / name); }

  // Every (cell, cycle) of `data` stored once with its value, nothing else, integrity ok.
  void expect_exactly(const RigData& data) {
    const auto rows = stored_cycles(daemon_.database());
    std::map<std::pair<std::string, std::int64_t>, int> seen;
    for (const auto& row : rows) {
      ++seen[{row.cell_id, row.cycle}];
      const int cell = std::stoi(row.cell_id.substr(1));
      EXPECT_NEAR(row.qd_ah, RigData::qd_ah(cell, static_cast<int>(row.cycle)), 1e-9)
          << row.cell_id << " cycle " << row.cycle;
    }
    EXPECT_EQ(rows.size(), static_cast<std::size_t>(data.cells * data.cycles));
    for (int cell = 0; cell < data.cells; ++cell) {
      for (int cycle = 1; cycle <= data.cycles; ++cycle) {
        const auto it = seen.find({RigData::cell_id(cell), cycle});
        ASSERT_NE(it, seen.end()) << "missing " << RigData::cell_id(cell) << " cycle " << cycle;
        EXPECT_EQ(it->second, 1);
      }
    }
    EXPECT_EQ(integrity(daemon_.database()), "ok");
  }

  bool stored_at_least(std::int64_t n, milliseconds timeout = seconds(30)) {
    return eventually([&] { return stored_cycle_count(daemon_.database()) >= n; }, timeout);
  }

  TempDir dir_;
  int port_;
  Broker broker_;
  DaemonProcess daemon_;
};

TEST_F(Ingest, HappyPathStoresEveryRecordOnceAndConfirmsThem) {
  const auto data = write_rig_data(dir_.path(), 4, 150);
  ASSERT_EQ(run_rig(data, "outbox.db"), 0) << rig_log();
  EXPECT_NE(rig_log().find("confirmed 600, rejected 0, unanswered 0"), std::string::npos)
      << rig_log();
  expect_exactly(data);
  EXPECT_TRUE(rejected_reasons(daemon_.database()).empty());
}

TEST_F(Ingest, DuplicatesAreConfirmedWithoutBeingStoredTwice) {
  const auto data = write_rig_data(dir_.path(), 3, 100);
  ASSERT_EQ(run_rig(data, "first.db"), 0) << rig_log();
  // A second rig with a fresh outbox sends everything again: all confirmed as duplicates.
  ASSERT_EQ(run_rig(data, "second.db"), 0) << rig_log();
  EXPECT_NE(rig_log().rfind("confirmed 300, rejected 0, unanswered 0"), std::string::npos)
      << rig_log();
  // The first outbox again: nothing left to send.
  ASSERT_EQ(run_rig(data, "first.db"), 0) << rig_log();
  expect_exactly(data);
}

TEST_F(Ingest, ConflictingDuplicateIsRejectedAndTheFirstValueKept) {
  const auto data = write_rig_data(dir_.path(), 1, 20);
  ASSERT_EQ(run_rig(data, "first.db"), 0) << rig_log();
  // Same (cell, cycle), different capacity.
  ASSERT_TRUE(
      publish_raw(port_, protocol::cycles_topic("rig-0", "t0"), R"({"cycle":5,"qd_ah":0.5})"));
  ASSERT_TRUE(eventually(
      [&] {
        const auto reasons = rejected_reasons(daemon_.database());
        return std::find(reasons.begin(), reasons.end(), "conflicting duplicate") != reasons.end();
      },
      seconds(20)));
  expect_exactly(data);
}

TEST_F(Ingest, CyclesArrivingOutOfOrderAreAllStored) {
  const std::string cell = "ooo1";
  ASSERT_TRUE(
      publish_raw(port_, protocol::meta_topic("rig-x", cell), R"({"rated_capacity_ah":1.1})"));
  for (int cycle : {5, 3, 1, 4, 2}) {
    ASSERT_TRUE(publish_raw(port_, protocol::cycles_topic("rig-x", cell),
                            R"({"cycle":)" + std::to_string(cycle) + R"(,"qd_ah":1.05})"));
  }
  ASSERT_TRUE(
      publish_raw(port_, protocol::cycles_topic("rig-x", cell),
                  R"([{"cycle":10,"qd_ah":1.0},{"cycle":8,"qd_ah":1.0},)"
                  R"({"cycle":9,"qd_ah":1.0},{"cycle":6,"qd_ah":1.0},{"cycle":7,"qd_ah":1.0}])"));
  ASSERT_TRUE(stored_at_least(10, seconds(20)));
  const auto rows = stored_cycles(daemon_.database());
  std::vector<std::int64_t> cycles;
  for (const auto& r : rows)
    cycles.push_back(r.cycle);
  std::sort(cycles.begin(), cycles.end());
  EXPECT_EQ(cycles, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(integrity(daemon_.database()), "ok");
}

struct Malformed {
  std::string topic;
  std::string payload;
  std::string reason;  // prefix of the recorded reason
};

TEST_F(Ingest, MalformedCorpusIsRecordedWithReasonsAndTheDaemonKeepsServing) {
  const std::string rig = "rig-m";
  ASSERT_TRUE(publish_raw(port_, protocol::meta_topic(rig, "m1"), R"({"rated_capacity_ah":1.1})"));
  const std::string cycles = protocol::cycles_topic(rig, "m1");
  const std::string root = "cyclecast/v1/rigs/";
  const std::vector<Malformed> corpus = {
      {cycles, "not json", "invalid JSON: "},
      {cycles, R"({"cycle":1,"qd_ah":)", "invalid JSON: "},
      {cycles, R"({"cycle":1,"qd_ah":1e999})", "invalid JSON: a number overflows to infinity"},
      {cycles, "42", "payload must be a JSON object or an array of objects, got number"},
      {cycles, "[]", "empty array: no records"},
      {cycles, "[1]", "record must be a JSON object, got number"},
      {cycles, R"({"cycle":1,"qd_ah":1.0,"volts":3})", "unknown field 'volts'"},
      {cycles, R"({"qd_ah":1.0})", "missing required field 'cycle'"},
      {cycles, R"({"cycle":"1","qd_ah":1.0})", "field 'cycle' must be an integer, got string"},
      {cycles, R"({"cycle":1.5,"qd_ah":1.0})", "field 'cycle' must be an integer, got 1.5"},
      {cycles, R"({"cycle":0,"qd_ah":1.0})", "field 'cycle' must be in [1, 1000000], got 0"},
      {cycles, R"({"cycle":2})", "missing required field 'qd_ah'"},
      {cycles, R"({"cycle":3,"qd_ah":"1"})", "field 'qd_ah' must be a number or null, got string"},
      {cycles, R"({"cycle":4,"qd_ah":-1})", "field 'qd_ah' = -1 Ah is out of range"},
      {cycles, R"({"cycle":5,"qd_ah":1070})", "field 'qd_ah' = 1070 Ah is out of range"},
      {cycles, R"({"cycle":6,"qd_ah":1,"ir_ohm":17})", "field 'ir_ohm' = 17 ohm is out of range"},
      {cycles, R"({"cycle":7,"qd_ah":1,"tmax_c":305})", "field 'tmax_c' = 305 C is out of range"},
      {cycles, R"({"cycle":8,"qd_ah":1,"tmin_c":40,"tmax_c":30})",
       "temperatures out of order: need tmin_c <= tavg_c <= tmax_c"},
      {cycles, R"({"cycle":9,"qd_ah":1,"chargetime_min":0})",
       "field 'chargetime_min' = 0 min is out of range"},
      {cycles, R"({"cycle":10,"qd_ah":1,"measured_at_ms":1700000000})",
       "field 'measured_at_ms' must be in [946684800000, 4102444800000]"},
      {cycles, R"([{"cycle":11,"qd_ah":1},{"cycle":11,"qd_ah":1}])",
       "cycle 11 appears twice in one message"},
      {protocol::cycles_topic(rig, "nometa"), R"({"cycle":1,"qd_ah":1})", "unknown cell 'nometa'"},
      {root + rig + "/cells/.dot/cycles", R"({"cycle":1})", "cell id '.dot' starts with '.'"},
      {root + rig + "/cells/" + std::string(70, 'x') + "/cycles", R"({"cycle":1})",
       "cell id of 70 characters exceeds 64"},
      {protocol::meta_topic(rig, "m2"), R"({"chemistry":"LFP"})",
       "missing required field 'rated_capacity_ah'"},
      {protocol::meta_topic(rig, "m3"), R"({"rated_capacity_ah":-2})",
       "field 'rated_capacity_ah' = -2 Ah is out of range"},
      {protocol::cycles_topic(rig, "m1"), std::string(300 * 1024, ' '),
       "payload of 307200 bytes exceeds the limit of 262144 bytes"},
  };
  // Only topics matching the daemon's wildcards reach it; other topic shapes are covered by the
  // protocol unit tests.
  for (const auto& m : corpus)
    ASSERT_TRUE(publish_raw(port_, m.topic, m.payload)) << m.topic;
  const std::size_t delivered = corpus.size();
  ASSERT_GE(delivered, 25u);
  // Still serving: a good record after the corpus is stored and acknowledged.
  ASSERT_TRUE(publish_raw(port_, cycles, R"({"cycle":100,"qd_ah":1.05})"));
  // Stored: cycle 100 and the first of the two cycle-11 records (only the repeat is refused).
  ASSERT_TRUE(stored_at_least(2, seconds(20)));
  ASSERT_TRUE(eventually([&] { return rejected_reasons(daemon_.database()).size() >= delivered; },
                         seconds(20)));
  const auto reasons = rejected_reasons(daemon_.database());
  for (const auto& m : corpus) {
    const bool found = std::any_of(reasons.begin(), reasons.end(), [&](const std::string& r) {
      return r.compare(0, m.reason.size(), m.reason) == 0;
    });
    EXPECT_TRUE(found) << "no rejection with reason '" << m.reason << "'";
  }
  EXPECT_EQ(reasons.size(), delivered);
  EXPECT_TRUE(daemon_.running());
  EXPECT_EQ(stored_cycle_count(daemon_.database()), 2);
  EXPECT_EQ(integrity(daemon_.database()), "ok");
}

TEST_F(Ingest, BrokerRestartedMidStreamLosesNothing) {
  const auto data = write_rig_data(dir_.path(), 4, 1000);
  Child child = rig(data, "outbox.db", {"--rate", "4000", "--per-message", "20"});
  ASSERT_TRUE(stored_at_least(500)) << rig_log();
  broker_.kill();
  ASSERT_LT(stored_cycle_count(daemon_.database()), 4000) << "the stream ended before the kill";
  broker_.start();
  const auto status = child.wait(kRigTimeout);
  ASSERT_EQ(status.value_or(-1), 0) << rig_log();
  expect_exactly(data);
}

TEST_F(Ingest, DaemonKilledMidStreamAndRestartedLosesNothing) {
  const auto data = write_rig_data(dir_.path(), 4, 1000);
  Child child = rig(data, "outbox.db", {"--rate", "4000", "--per-message", "20"});
  ASSERT_TRUE(stored_at_least(500)) << rig_log();
  daemon_.signal(SIGKILL);
  ASSERT_TRUE(daemon_.wait(seconds(10)).has_value());
  ASSERT_LT(stored_cycle_count(daemon_.database()), 4000) << "the stream ended before the kill";
  daemon_.start();
  const auto status = child.wait(kRigTimeout);
  ASSERT_EQ(status.value_or(-1), 0) << rig_log();
  EXPECT_NE(rig_log().find("a daemon came online 1 times"), std::string::npos) << rig_log();
  expect_exactly(data);
}

TEST_F(Ingest, RigKilledMidStreamAndRestartedResendsOnlyWhatIsMissing) {
  const auto data = write_rig_data(dir_.path(), 4, 1000);
  Child first = rig(data, "outbox.db", {"--rate", "4000", "--per-message", "20"});
  ASSERT_TRUE(stored_at_least(500)) << rig_log();
  first.signal(SIGKILL);
  ASSERT_TRUE(first.wait(seconds(10)).has_value());
  ASSERT_LT(stored_cycle_count(daemon_.database()), 4000) << "the stream ended before the kill";
  ASSERT_EQ(run_rig(data, "outbox.db"), 0) << rig_log();
  expect_exactly(data);
}

TEST_F(Ingest, SigtermMidStreamDrainsExitsCleanlyAndLosesNothing) {
  const auto data = write_rig_data(dir_.path(), 4, 1000);
  Child child = rig(data, "outbox.db", {"--rate", "4000", "--per-message", "20"});
  ASSERT_TRUE(stored_at_least(500)) << rig_log();
  daemon_.signal(SIGTERM);
  const auto status = daemon_.wait(seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
  EXPECT_LT(stored_cycle_count(daemon_.database()), 4000);
  EXPECT_NE(read_text(daemon_.log()).find("stopped: "), std::string::npos);
  daemon_.start();
  ASSERT_EQ(child.wait(kRigTimeout).value_or(-1), 0) << rig_log();
  expect_exactly(data);
}

// A rig publishing 100 records of 2 cells to the broker on `port`, with nobody answering yet.
Child start_lone_rig(const TempDir& dir, int port, const std::string& ack_timeout_ms,
                     const std::string& deadline_s) {
  const RigData data = write_rig_data(dir.path(), 2, 50);
  return start_rig(dir.path(), port,
                   {data.cycles_csv.string(), "--cells", data.cells_csv.string(), "--outbox",
                    (dir / "outbox.db").string(), "--ack-timeout-ms", ack_timeout_ms,
                    "--deadline-s", deadline_s},
                   "rig.log");
}

// Nobody answers (the daemon is down, or its database is full): the rig must not re-send its
// whole window every --ack-timeout-ms, or a daemon that comes back drowns in duplicates. Its
// wait doubles on each expiry: in 4 s at 100 ms that is about 6 sends of each record, not 40.
TEST(IngestRig, ResendsBackOffWhileNobodyAnswers) {
  TempDir dir;
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  Child rig = start_lone_rig(dir, port, "100", "4");
  EXPECT_EQ(rig.wait(kRigTimeout).value_or(-1), 1) << "records stay unanswered";
  const std::string log = read_text(dir / "rig.log");
  std::smatch summary;  // the last line, on stdout: "sent N (resent M), ..."
  ASSERT_TRUE(std::regex_search(log, summary, std::regex("(^|\n)sent ([0-9]+) \\(resent"))) << log;
  const long sent = std::stol(summary[2]);
  EXPECT_GE(sent, 2 * 100) << "it re-sends: " << log;
  EXPECT_LE(sent, 8 * 100) << "it backs off: " << log;
  EXPECT_NE(log.find("unanswered 100"), std::string::npos) << log;
}

// The daemon's live `online` status ends the backoff: the rig re-sends what is in flight at once
// instead of after a wait that grew while the daemon was down.
TEST(IngestRig, ResendsAtOnceWhenTheDaemonComesOnline) {
  TempDir dir;
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  Child rig = start_lone_rig(dir, port, "200", "120");
  // Nobody answers for 3.5 s: the rig's wait has doubled four times, to 3.2 s.
  std::this_thread::sleep_for(milliseconds(3500));
  DaemonProcess daemon(dir.path() / "state", port);
  daemon.start();
  EXPECT_EQ(rig.wait(kRigTimeout).value_or(-1), 0) << read_text(dir / "rig.log");
  const std::string log = read_text(dir / "rig.log");
  EXPECT_NE(log.find("a daemon came online 1 times"), std::string::npos) << log;
  EXPECT_EQ(stored_cycle_count(daemon.database()), 100);
}

TEST(IngestDaemon, RefusesABadConfigurationNamingFileLineAndReason) {
  TempDir dir;
  write_file(dir / "bad.toml", "[ingest]\nbatch_records = \"many\"\n");
  Child daemon({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecastd", "--config",
                (dir / "bad.toml").string(), "--state-dir", (dir / "state").string()},
               dir / "out.log");
  EXPECT_EQ(daemon.wait(seconds(10)).value_or(-1), 2);
  EXPECT_NE(read_text(dir / "out.log")
                .find((dir / "bad.toml").string() +
                      ":2:17: key 'ingest.batch_records': expected an integer"),
            std::string::npos)
      << read_text(dir / "out.log");
}

TEST(IngestDaemon, SighupReloadsBatchesKeepsFlagsAndNamesWhatNeedsARestart) {
  TempDir dir;
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  write_file(dir / "d.toml", "[ingest]\nbatch_records = 100\n");
  DaemonProcess daemon(dir / "state", port, dir / "d.toml");
  daemon.start();
  write_file(dir / "d.toml",
             "[ingest]\nbatch_records = 50\n[log]\nlevel = \"warn\"\n[mqtt]\nkeepalive_s = 60\n");
  daemon.signal(SIGHUP);
  ASSERT_TRUE(eventually(
      [&] { return read_text(daemon.log()).find("reloaded: ") != std::string::npos; }, seconds(10)))
      << read_text(daemon.log());
  const std::string log = read_text(daemon.log());
  // batch_records comes from the file; the log level stays the one given by --log-level, since
  // flags override the file on reload too.
  EXPECT_NE(log.find("reloaded: log level debug, batches of 50 records or 10 ms"),
            std::string::npos);
  EXPECT_NE(log.find("reload: mqtt.keepalive_s changed but needs a restart; not applied"),
            std::string::npos);
  EXPECT_TRUE(daemon.running());
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(seconds(10)).value_or(-1), 0);
}

TEST(IngestAuth, DaemonAndRigAuthenticateAndAWrongPasswordIsRefusedWithItsReason) {
  TempDir dir;
  // mosquitto started as root drops to its own user, which must be able to read the password
  // file inside our (mkdtemp, 0700) directory.
  namespace fs = std::filesystem;
  fs::permissions(dir.path(),
                  fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                      fs::perms::others_exec,
                  fs::perm_options::add);
  Child passwd({"/usr/bin/mosquitto_passwd", "-c", "-b", (dir / "passwd").string(), "cc", "s3cret"},
               dir / "passwd.log");
  ASSERT_EQ(passwd.wait(seconds(10)).value_or(-1), 0) << read_text(dir / "passwd.log");
  fs::permissions(dir / "passwd", fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::add);
  const int port = free_port();
  Broker broker(dir.path(), port,
                "allow_anonymous false\npassword_file " + (dir / "passwd").string() + "\n");
  broker.start();
  write_file(dir / "d.toml", "[mqtt]\nusername = \"cc\"\npassword = \"s3cret\"\n");
  DaemonProcess daemon(dir / "state", port, dir / "d.toml");
  daemon.start();
  const auto data = write_rig_data(dir.path(), 2, 20);
  const std::vector<std::string> input = {data.cycles_csv.string(), "--cells",
                                          data.cells_csv.string(), "--deadline-s", "30"};
  auto args = input;
  args.insert(args.end(),
              {"--outbox", (dir / "good.db").string(), "--username", "cc", "--password", "s3cret"});
  Child good = start_rig(dir.path(), port, args, "good.log");
  EXPECT_EQ(good.wait(seconds(60)).value_or(-1), 0) << read_text(dir / "good.log");
  EXPECT_EQ(stored_cycle_count(daemon.database()), 40);
  args = input;
  args.insert(args.end(),
              {"--outbox", (dir / "bad.db").string(), "--username", "cc", "--password", "wrong"});
  Child bad = start_rig(dir.path(), port, args, "bad.log");
  EXPECT_EQ(bad.wait(seconds(30)).value_or(-1), 1);
  EXPECT_NE(read_text(dir / "bad.log").find("refused us"), std::string::npos)
      << read_text(dir / "bad.log");
}

TEST(IngestTls, DaemonAndRigConnectOverTlsVerifyingTheBroker) {
  TempDir dir;
  namespace fs = std::filesystem;
  // Readable by the mosquitto user, which a broker started as root switches to.
  fs::permissions(dir.path(),
                  fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                      fs::perms::others_exec,
                  fs::perm_options::add);
  const std::string crt = (dir / "server.crt").string();
  const std::string key = (dir / "server.key").string();
  Child openssl({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 key, "-out", crt, "-subj", "/CN=127.0.0.1", "-addext",
                 "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1", "-days", "2"},
                dir / "openssl.log");
  ASSERT_EQ(openssl.wait(seconds(60)).value_or(-1), 0) << read_text(dir / "openssl.log");
  fs::permissions(key, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  const int port = free_port();
  Broker broker(dir.path(), port,
                "certfile " + crt + "\nkeyfile " + key + "\nallow_anonymous true\n");
  broker.start();
  // The broker's self-signed certificate is its own CA.
  write_file(dir / "d.toml", "[mqtt]\ntls_ca_file = \"" + crt + "\"\n");
  DaemonProcess daemon(dir / "state", port, dir / "d.toml");
  daemon.start();
  const auto data = write_rig_data(dir.path(), 2, 30);
  Child rig = start_rig(dir.path(), port,
                        {data.cycles_csv.string(), "--cells", data.cells_csv.string(), "--outbox",
                         (dir / "o.db").string(), "--tls-ca-file", crt, "--deadline-s", "30"},
                        "rig.log");
  EXPECT_EQ(rig.wait(seconds(60)).value_or(-1), 0) << read_text(dir / "rig.log");
  EXPECT_EQ(stored_cycle_count(daemon.database()), 60);
}

// A NOTIFY_SOCKET as systemd provides it: a datagram socket the daemon's sd_notify() writes to.
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string text = path.string();
    text.copy(address.sun_path, sizeof address.sun_path - 1);
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~NotifySocket() { close(fd_); }
  bool bound() const { return bound_; }
  // Reads what has arrived so far and appends it to `received`.
  const std::string& poll() {
    char buffer[4096];
    for (;;) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      received_.append(buffer, static_cast<std::size_t>(n));
      received_ += '\n';
    }
    return received_;
  }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  bool bound_ = false;
  std::string received_;
};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

TEST(IngestSystemd, NotifiesReadyFeedsTheWatchdogAndSaysStopping) {
  TempDir dir;
  const int port = free_port();
  Broker broker(dir.path(), port);
  broker.start();
  NotifySocket notify(dir / "notify.sock");
  ASSERT_TRUE(notify.bound());
  Child daemon({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecastd", "--config", "/dev/null",
                "--state-dir", (dir / "state").string(), "--mqtt-port", std::to_string(port)},
               dir / "cyclecastd.log",
               {"NOTIFY_SOCKET=" + (dir / "notify.sock").string(), "WATCHDOG_USEC=200000"});
  ASSERT_TRUE(
      eventually([&] { return notify.poll().find("READY=1") != std::string::npos; }, seconds(15)))
      << read_text(dir / "cyclecastd.log");
  // A 200 ms watchdog is fed every 100 ms: several pings within a second or so.
  ASSERT_TRUE(eventually([&] { return count_of(notify.poll(), "WATCHDOG=1") >= 5; }, seconds(15)))
      << notify.poll();
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(seconds(10)).value_or(-1), 0);
  EXPECT_NE(notify.poll().find("STOPPING=1"), std::string::npos);
  // READY only after the database exists.
  EXPECT_TRUE(std::filesystem::exists(dir / "state" / "cyclecast.db"));
}

}  // namespace
}  // namespace cyclecast::testing
