// Re-send amplification (docs/protocol.md, "Daemon status"): on a broker where anyone may
// publish a daemon status (no ACL), spoofed live `online` statuses make a rig re-send what is
// in flight at most once per ack timeout, and a replay of the daemon's own start id not at all;
// a real restart of the daemon still re-sends once and loses nothing. Against a real mosquitto,
// the built cyclecastd and the built rig; records on the wire are counted by a subscriber.
#include <csignal>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "cyclecast/wire/protocol.h"
#include "ingest_harness.h"
#include "mqtt_test_client.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using namespace std::chrono_literals;
constexpr auto kRigTimeout = 60s;

// Records published on the cycle topics so far (each record is one "cycle" key).
std::size_t records_seen(MqttTestClient& watcher) {
  std::size_t n = 0;
  for (const auto& m : watcher.received()) {
    for (auto at = m.payload.find("\"cycle\""); at != std::string::npos;
         at = m.payload.find("\"cycle\"", at + 1)) {
      ++n;
    }
  }
  return n;
}

long summary_number(const std::string& log, const std::string& pattern) {
  std::smatch match;
  if (!std::regex_search(log, match, std::regex(pattern))) return -1;
  return std::stol(match[1]);
}

class StatusSpoofing : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_.start();
    daemon_.start();
    watcher_ = std::make_unique<MqttTestClient>(broker_.port(), "", "");
    ASSERT_EQ(watcher_->connect(), 0);
    ASSERT_EQ(watcher_->subscribe(status_), 1);
    ASSERT_EQ(watcher_->subscribe(protocol::cycles_subscription()), 1);
    ASSERT_TRUE(watcher_->wait_for([&](const ReceivedMessage& m) { return m.topic == status_; }));
    start_id_ = protocol::parse_status(watcher_->received().front().payload).start_id;
    ASSERT_EQ(start_id_.size(), 16u) << watcher_->received().front().payload;
    spoofer_ = std::make_unique<MqttTestClient>(broker_.port(), "", "");
    ASSERT_EQ(spoofer_->connect(), 0);
  }

  void spoof(const std::string& payload, int times) {
    for (int i = 0; i < times; ++i)
      ASSERT_EQ(spoofer_->publish(status_, payload), 0);
  }
  std::string rig_log() const { return read_text(dir_ / "rig.log"); }

  TempDir dir_;
  Broker broker_{dir_.path(), free_port()};
  DaemonProcess daemon_{dir_ / "state", broker_.port()};
  const std::string status_ = protocol::status_topic("cyclecastd-test");
  std::unique_ptr<MqttTestClient> watcher_, spoofer_;
  std::string start_id_;
};

// The daemon is stopped (SIGSTOP) so that a whole window stays in flight; 50 replays of its start
// id and 50 bare `online`s re-send that window once (the first bare one), not 100 times.
TEST_F(StatusSpoofing, SpoofedOnlineStatusesReSendTheWindowAtMostOnce) {
  daemon_.signal(SIGSTOP);
  const RigData data = write_rig_data(dir_.path(), 1, 200);
  Child rig = start_rig(dir_.path(), broker_.port(),
                        {data.cycles_csv.string(), "--cells", data.cells_csv.string(), "--outbox",
                         (dir_ / "rig.outbox").string(), "--window", "200", "--per-message", "20",
                         "--ack-timeout-ms", "60000"},
                        "rig.log");
  ASSERT_TRUE(eventually([&] { return records_seen(*watcher_) >= 200; }, 20s)) << rig_log();
  spoof("online " + start_id_, 50);
  spoof("online", 50);
  ASSERT_TRUE(eventually([&] { return records_seen(*watcher_) >= 400; }, 20s)) << rig_log();
  daemon_.signal(SIGCONT);
  ASSERT_EQ(rig.wait(kRigTimeout).value_or(-1), 0) << rig_log();
  const std::string log = rig_log();
  EXPECT_EQ(summary_number(log, "resent ([0-9]+)\\)"), 200) << log;
  EXPECT_NE(log.find("a daemon came online 1 times"), std::string::npos) << log;
  EXPECT_NE(log.find("ignored 99 online statuses"), std::string::npos) << log;
  EXPECT_EQ(records_seen(*watcher_), 400u);
  EXPECT_EQ(stored_cycle_count(daemon_.database()), 200);
}

// Replays of the running daemon's start id, then a real crash and restart: exactly one re-send,
// for the restart, and every record stored once.
TEST_F(StatusSpoofing, ARealRestartAmidReplayedStatusesReSendsOnceAndLosesNothing) {
  const RigData data = write_rig_data(dir_.path(), 4, 500);
  Child rig = start_rig(dir_.path(), broker_.port(),
                        {data.cycles_csv.string(), "--cells", data.cells_csv.string(), "--outbox",
                         (dir_ / "rig.outbox").string(), "--rate", "2000", "--per-message", "20"},
                        "rig.log");
  ASSERT_TRUE(eventually([&] { return stored_cycle_count(daemon_.database()) >= 300; }, 30s))
      << rig_log();
  spoof("online " + start_id_, 50);
  daemon_.signal(SIGKILL);
  ASSERT_TRUE(daemon_.wait(10s).has_value());
  ASSERT_LT(stored_cycle_count(daemon_.database()), 2000) << "the stream ended before the kill";
  daemon_.start();
  ASSERT_EQ(rig.wait(kRigTimeout).value_or(-1), 0) << rig_log();
  const std::string log = rig_log();
  EXPECT_NE(log.find("a daemon came online 1 times"), std::string::npos) << log;
  EXPECT_NE(log.find("ignored 50 online statuses"), std::string::npos) << log;
  EXPECT_EQ(stored_cycle_count(daemon_.database()), 2000);
  const auto rows = stored_cycles(daemon_.database());
  for (const auto& row : rows) {
    EXPECT_NEAR(row.qd_ah, RigData::qd_ah(std::stoi(row.cell_id.substr(1)), int(row.cycle)), 1e-9);
  }
}

}  // namespace
}  // namespace cyclecast::testing
