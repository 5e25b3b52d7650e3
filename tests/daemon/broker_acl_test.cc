// The broker's security model (docs/security.md) against a real mosquitto configured with the
// shipped packaging/mosquitto/cyclecast.acl (and one gateway's section from gateway-acl.in) and
// a password file made with mosquitto_passwd, the built cyclecastd as user cyclecastd and the
// built rig as user rig-0. Each spoofing case is refused by the broker: MQTT 5 clients get
// "not authorized", MQTT 3.1.1 clients are dropped in silence, which a fence message published
// after the broker's PUBACK proves (the broker queues a message to its subscribers before it
// answers, and delivers a subscriber's queue in order). The legitimate rig still gets every
// record stored and acknowledged.
#include <sqlite3.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/protocol.h"
#include "ingest_harness.h"
#include "mqtt_test_client.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using namespace std::chrono_literals;
using Version = MqttTestClient::Version;
constexpr int kNotAuthorized = MqttTestClient::kNotAuthorized;
constexpr auto kRigTimeout = 60s;

bool shell(const std::string& command) {
  return std::system(command.c_str()) == 0;
}

// The values of the first column of `sql`'s rows, comma-separated, read-only.
std::string query(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  std::string out;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(handle, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        const auto* text = sqlite3_column_text(stmt, 0);
        out +=
            (out.empty() ? "" : ",") + std::string(text ? reinterpret_cast<const char*>(text) : "");
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(handle);
  return out;
}

std::string ack_of(const std::string& cell, int from, int to) {
  return R"({"v":1,"seq":1,"committed_at_ms":1,"ranges":[{"cell":")" + cell + R"(","from":)" +
         std::to_string(from) + R"(,"to":)" + std::to_string(to) + R"(,"outcome":"stored"}]})";
}
const std::string kEmptyAck = R"({"v":1,"seq":0,"committed_at_ms":0,"ranges":[]})";

std::string edge_forecast(const std::string& node, const std::string& cell, int cycle) {
  wire::EdgeForecast f;
  f.node = node;
  f.cell = cell;
  f.cycle = cycle;
  f.model_version = "m1";
  f.model_sha256 = std::string(64, 'a');
  f.horizon = 20;
  f.soh_at_10 = 0.97;
  f.soh_at_h = 0.95;
  f.forecast_us = 100;
  f.received_at_ms = 1700000000000;
  return wire::serialize_edge_forecast(f);
}

class BrokerAcl : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto source = std::filesystem::path(CYCLECAST_SOURCE_DIR) / "packaging/mosquitto";
    const std::string acl = (dir_ / "cyclecast.acl").string();
    const std::string passwords = (dir_ / "cyclecast.passwd").string();
    // The documented recipe (docs/security.md): the shipped file, one section per gateway.
    ASSERT_TRUE(shell("cp '" + (source / "cyclecast.acl").string() + "' '" + acl +
                      "' && sed 's/@NODE@/n1/g' '" + (source / "gateway-acl.in").string() +
                      "' >> '" + acl + "'"));
    ASSERT_TRUE(shell("mosquitto_passwd -b -c '" + passwords + "' cyclecastd pw-cyclecastd"));
    for (const char* user : {"rig-0", "rig-1", "gateway-n1", "cyclecast-reader"}) {
      ASSERT_TRUE(shell("mosquitto_passwd -b '" + passwords + "' " + user + " pw-" + user));
    }
    // Started as root, mosquitto drops to its own user, which must read its files.
    ASSERT_TRUE(shell("chmod 755 '" + dir_.path().string() + "' && chmod 644 '" + acl + "' '" +
                      passwords + "'"));
    broker_.start();
    std::ofstream(dir_ / "daemon.toml") << "[mqtt]\nusername = \"cyclecastd\"\npassword = "
                                           "\"pw-cyclecastd\"\n";
    daemon_.start();
  }

  std::string access() const {
    return "allow_anonymous false\npassword_file " + (dir_ / "cyclecast.passwd").string() +
           "\nacl_file " + (dir_ / "cyclecast.acl").string() + "\n";
  }

  // A connected client of `user` (its password is "pw-<user>").
  std::unique_ptr<MqttTestClient> client(const std::string& user, Version version = Version::kV5) {
    auto c = std::make_unique<MqttTestClient>(broker_.port(), user, "pw-" + user, version);
    EXPECT_EQ(c->connect(), 0) << user;
    return c;
  }

  // `cyclecast rig` as user rig-0 publishing `data` (cell t0, rig-0's).
  Child start_rig0(const RigData& data, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {data.cycles_csv.string(),
                                     "--cells",
                                     data.cells_csv.string(),
                                     "--outbox",
                                     (dir_ / "rig.outbox").string(),
                                     "--username",
                                     "rig-0",
                                     "--password",
                                     "pw-rig-0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return start_rig(dir_.path(), broker_.port(), args, "rig.log");
  }
  std::string rig_log() const { return read_text(dir_ / "rig.log"); }

  TempDir dir_;
  Broker broker_{dir_.path(), free_port(), access()};
  DaemonProcess daemon_{dir_ / "state", broker_.port(), dir_ / "daemon.toml"};
};

TEST_F(BrokerAcl, AForgedStoredAckNeverReachesTheRigWhichGetsEveryRecordStored) {
  auto forger = client("rig-1");
  auto forger_v311 = client("rig-1", Version::kV311);
  auto watcher = client("rig-0", Version::kV311);  // what rig-0 would receive
  ASSERT_EQ(watcher->subscribe(protocol::acks_topic("rig-0")), 1);
  EXPECT_EQ(forger->publish(protocol::acks_topic("rig-0"), ack_of("t0", 1, 300)), kNotAuthorized);
  EXPECT_EQ(forger_v311->publish(protocol::acks_topic("rig-0"), ack_of("t0", 1, 300)), 0);
  auto daemon_user = client("cyclecastd");
  ASSERT_EQ(daemon_user->publish(protocol::acks_topic("rig-0"), kEmptyAck), 0);
  ASSERT_TRUE(watcher->wait_for([](const ReceivedMessage& m) { return m.payload == kEmptyAck; }));
  EXPECT_EQ(watcher->received().size(), 1u) << "a forged ack was delivered";

  // The real rig, with forged acks of all its records arriving all along.
  const RigData data = write_rig_data(dir_.path(), 1, 300);
  Child rig = start_rig0(data, {"--rate", "1000", "--per-message", "20"});
  int forged = 0;
  while (rig.running() && forged < 100000) {
    forger_v311->publish(protocol::acks_topic("rig-0"), ack_of("t0", 1, 300));
    ++forged;
  }
  ASSERT_EQ(rig.wait(kRigTimeout).value_or(-1), 0) << rig_log();
  EXPECT_GT(forged, 0);
  EXPECT_EQ(stored_cycle_count(daemon_.database()), 300) << rig_log();
  EXPECT_NE(rig_log().find("confirmed 300, rejected 0, unanswered 0"), std::string::npos)
      << rig_log();
}

TEST_F(BrokerAcl, ARigSubscribedToOtherRigsTopicsReceivesNothingOfThem) {
  auto snoop = client("rig-1");
  for (const char* topic :
       {"cyclecast/v1/rigs/+/acks", "cyclecast/v1/rigs/rig-0/acks",
        "cyclecast/v1/rigs/+/cells/+/cycles", "cyclecast/v1/rigs/+/cells/+/meta",
        "cyclecast/v1/nodes/+/forecasts", "#"}) {
    snoop->subscribe(topic);  // mosquitto grants it; delivery is checked message by message
  }
  const RigData data = write_rig_data(dir_.path(), 1, 200);
  ASSERT_EQ(start_rig0(data).wait(kRigTimeout).value_or(-1), 0) << rig_log();
  EXPECT_EQ(stored_cycle_count(daemon_.database()), 200);
  // rig-0 received its acks: the broker had queued them to every allowed reader before this.
  auto daemon_user = client("cyclecastd");
  ASSERT_EQ(daemon_user->publish(protocol::acks_topic("rig-1"), kEmptyAck), 0);
  ASSERT_TRUE(snoop->wait_for([](const ReceivedMessage& m) { return m.payload == kEmptyAck; }));
  for (const auto& m : snoop->received()) {
    EXPECT_EQ(m.topic.find("rig-0"), std::string::npos) << m.topic << " " << m.payload;
  }
}

TEST_F(BrokerAcl, MetadataAndRecordsUnderAnotherRigsIdAreDropped) {
  const RigData data = write_rig_data(dir_.path(), 1, 50);
  ASSERT_EQ(start_rig0(data).wait(kRigTimeout).value_or(-1), 0) << rig_log();
  const std::string meta = protocol::meta_topic("rig-0", "t0");
  const std::string cycles = protocol::cycles_topic("rig-0", "t0");
  const std::string takeover = R"({"rated_capacity_ah":5.0,"chemistry":"NMC"})";
  auto intruder = client("rig-1");
  EXPECT_EQ(intruder->publish(meta, takeover), kNotAuthorized);
  EXPECT_EQ(intruder->publish(meta, takeover, /*retain=*/true), kNotAuthorized);
  EXPECT_EQ(intruder->publish(cycles, cycle_record(51, 4.5)), kNotAuthorized);
  auto intruder_v311 = client("rig-1", Version::kV311);
  EXPECT_EQ(intruder_v311->publish(meta, takeover), 0);
  EXPECT_EQ(intruder_v311->publish(cycles, cycle_record(52, 4.5)), 0);
  // A fence from the owner, after the broker answered the intruder: once it is stored, anything
  // of the intruder's that had passed would have been committed before or with it.
  auto owner = client("rig-0", Version::kV311);
  ASSERT_EQ(owner->publish(cycles, cycle_record(53)), 0);
  ASSERT_TRUE(eventually([&] { return stored_cycle_count(daemon_.database()) >= 51; }, 20s));
  const auto db = daemon_.database();
  EXPECT_EQ(query(db, "SELECT cycle FROM cycles WHERE cycle > 50 ORDER BY cycle"), "53");
  EXPECT_EQ(query(db, "SELECT rated_capacity_ah || ' ' || chemistry FROM cells"), "1.1 LFP");
  EXPECT_EQ(query(db, "SELECT r.rig_id FROM cells c JOIN rigs r ON r.id = c.rig"), "rig-0");
  EXPECT_TRUE(rejected_reasons(db).empty());
  // A new subscriber gets the owner's retained metadata, not the intruder's.
  auto reader = client("cyclecastd");
  reader->subscribe(meta);
  ASSERT_TRUE(reader->wait_for([](const ReceivedMessage& m) { return m.retained; }));
  EXPECT_EQ(reader->received().front().payload.find("5.0"), std::string::npos);
}

TEST_F(BrokerAcl, OnlyTheNodesGatewayPublishesItsEdgeForecasts) {
  const RigData data = write_rig_data(dir_.path(), 1, 20);
  ASSERT_EQ(start_rig0(data).wait(kRigTimeout).value_or(-1), 0) << rig_log();
  const std::string topic = wire::node_forecasts_topic("n1");
  EXPECT_EQ(client("rig-0")->publish(topic, edge_forecast("n1", "t0", 5)), kNotAuthorized);
  EXPECT_EQ(client("cyclecast-reader")->publish(topic, edge_forecast("n1", "t0", 5)),
            kNotAuthorized);
  EXPECT_EQ(client("cyclecastd")->publish(topic, edge_forecast("n1", "t0", 5)), kNotAuthorized);
  EXPECT_EQ(client("rig-1", Version::kV311)->publish(topic, edge_forecast("n1", "t0", 5)), 0);
  auto gateway = client("gateway-n1");
  EXPECT_EQ(gateway->publish(wire::node_forecasts_topic("n2"), edge_forecast("n2", "t0", 5)),
            kNotAuthorized);
  EXPECT_EQ(gateway->publish(protocol::cycles_topic("gateway-n1", "t9"), cycle_record(1)),
            kNotAuthorized)
      << "a gateway is no rig";
  ASSERT_EQ(gateway->publish(topic, edge_forecast("n1", "t0", 6)), 0);
  const auto db = daemon_.database();
  ASSERT_TRUE(
      eventually([&] { return !query(db, "SELECT at_cycle FROM forecasts").empty(); }, 20s));
  EXPECT_EQ(query(db, "SELECT origin || ' ' || at_cycle FROM forecasts"), "edge:n1 6");
}

TEST_F(BrokerAcl, SpoofedDaemonStatusesAreRefused) {
  const std::string status = protocol::status_topic("cyclecastd-test");
  auto watcher = client("rig-0", Version::kV311);
  ASSERT_EQ(watcher->subscribe(protocol::status_topic("+")), 1);
  ASSERT_TRUE(watcher->wait_for([&](const ReceivedMessage& m) { return m.topic == status; }));
  const std::string real = watcher->received().front().payload;
  ASSERT_EQ(protocol::parse_status(real).state, "online");
  ASSERT_FALSE(protocol::parse_status(real).start_id.empty()) << real;

  EXPECT_EQ(client("rig-1")->publish(status, "online"), kNotAuthorized);
  EXPECT_EQ(client("rig-1")->publish(status, "offline", /*retain=*/true), kNotAuthorized);
  EXPECT_EQ(client("rig-1", Version::kV311)->publish(status, "online 0000000000000bad"), 0);
  EXPECT_EQ(client("cyclecast-reader")->publish(status, "online"), kNotAuthorized);
  auto gateway = client("gateway-n1");
  EXPECT_EQ(gateway->publish(status, "online"), kNotAuthorized);
  EXPECT_EQ(gateway->publish(protocol::status_topic("cyclecast-gateway-n1"), "online g"), 0);
  auto daemon_user = client("cyclecastd");
  ASSERT_EQ(daemon_user->publish(protocol::status_topic("fence"), "online fence"), 0);
  ASSERT_TRUE(
      watcher->wait_for([](const ReceivedMessage& m) { return m.payload == "online fence"; }));
  for (const auto& m : watcher->received()) {
    if (m.topic == status) {
      EXPECT_EQ(m.payload, real);
    }
  }
  // The retained status is still the daemon's.
  auto late = client("rig-1");
  late->subscribe(status);
  ASSERT_TRUE(late->wait_for([](const ReceivedMessage& m) { return m.retained; }));
  EXPECT_EQ(late->received().front().payload, real);
}

TEST_F(BrokerAcl, AnonymousClientsAndWrongPasswordsAreRefused) {
  EXPECT_NE(MqttTestClient(broker_.port(), "", "").connect(), 0);
  EXPECT_NE(MqttTestClient(broker_.port(), "rig-0", "pw-rig-1").connect(), 0);
  EXPECT_NE(MqttTestClient(broker_.port(), "rig-0", "pw-rig-1", Version::kV311).connect(), 0);
}

// cyclecast-gateway takes its user name, and its password from the environment, and publishes
// its node's status where the ACL lets it.
TEST_F(BrokerAcl, TheGatewayConnectsWithItsOwnCredentials) {
  auto reader = client("cyclecast-reader");
  ASSERT_EQ(reader->subscribe(wire::node_status_topic("n1")), 1);
  Child gateway({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast-gateway", "--node", "n1",
                 "--serial", (dir_ / "no-such-device").string(), "--cells", "t0", "--mqtt-port",
                 std::to_string(broker_.port()), "--username", "gateway-n1"},
                dir_ / "gateway.log", {"CYCLECAST_MQTT_PASSWORD=pw-gateway-n1"});
  EXPECT_TRUE(reader->wait_for([](const ReceivedMessage& m) {
    return m.payload.find(R"("node":"n1")") != std::string::npos;
  })) << read_text(dir_ / "gateway.log");
  gateway.signal(SIGTERM);
  EXPECT_EQ(gateway.wait(30s).value_or(-1), 0) << read_text(dir_ / "gateway.log");
}

// The node of `nodes` (an /api/v1/nodes answer) named `node`; null when absent.
nlohmann::json node_of(const nlohmann::json& nodes, const std::string& node) {
  if (nodes.is_array()) {
    for (const auto& n : nodes)
      if (n.is_object() && n.contains("node") && n["node"] == node) return n;
  }
  return nullptr;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++count;
  return count;
}

// The daemon follows the real gateway's liveness through the shipped ACL: online with its start
// id, then offline by its last will once the process is killed (its node's retained status still
// says what it said last). Malformed and oversized retained statuses, published where the ACL
// lets the gateway's user publish, are logged and ignored: the last valid status stands.
TEST_F(BrokerAcl, TheDaemonFollowsTheGatewayToItsLastWillAndIgnoresMalformedStatuses) {
  ASSERT_TRUE(eventually([&] { return daemon_.api_port() > 0; }, 10s));
  http::ClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(daemon_.api_port());
  auto api = http::ApiClient::create(options);
  ASSERT_TRUE(api.ok()) << api.error().message;
  nlohmann::json n1;
  const auto n1_shows = [&](const std::function<bool(const nlohmann::json&)>& condition) {
    return eventually(
        [&] {
          auto answer = api->get("/api/v1/nodes");
          if (!answer || answer->status != 200) return false;
          n1 = node_of(nlohmann::json::parse(answer->body, nullptr, false), "n1");
          return n1.is_object() && n1["liveness"].is_object() && condition(n1);
        },
        30s);
  };
  Child gateway({std::string(CYCLECAST_BINARY_DIR) + "/bin/cyclecast-gateway", "--node", "n1",
                 "--serial", (dir_ / "no-such-device").string(), "--cells", "t0", "--mqtt-port",
                 std::to_string(broker_.port()), "--username", "gateway-n1"},
                dir_ / "gateway.log", {"CYCLECAST_MQTT_PASSWORD=pw-gateway-n1"});
  ASSERT_TRUE(n1_shows([](const nlohmann::json& n) { return n["liveness"]["state"] == "online"; }))
      << n1.dump() << read_text(dir_ / "gateway.log") << read_text(daemon_.log());
  const nlohmann::json online = n1["liveness"];
  EXPECT_EQ(online["client_id"], "cyclecast-gateway-n1");
  EXPECT_TRUE(online["start_id"].is_string()) << online.dump();
  EXPECT_TRUE(online["since"].is_string()) << online.dump();
  EXPECT_TRUE(online["last_seen"].is_string()) << online.dump();

  // What a broken or hostile client of user gateway-n1 may leave retained on its status topic.
  const std::string topic = protocol::status_topic("cyclecast-gateway-n1");
  const std::vector<std::string> hostile = {
      std::string(wire::kMaxGatewayStatusBytes + 1, 'o'), "online " + std::string(200 * 1024, 'a'),
      "on fire", std::string("online \x01\xff\0", 10), R"({"state":"online"})"};
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    const auto file = dir_ / ("status-" + std::to_string(i));
    std::ofstream(file, std::ios::binary) << hostile[i];
    ASSERT_TRUE(shell("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker_.port()) +
                      " -u gateway-n1 -P pw-gateway-n1 -q 1 -r -t '" + topic + "' -f '" +
                      file.string() + "'"));
  }
  const std::string ignored = topic + ": ignored: gateway status: ";
  ASSERT_TRUE(eventually([&] { return occurrences(read_text(daemon_.log()), ignored) >= 5; }, 30s))
      << read_text(daemon_.log());
  const std::string log = read_text(daemon_.log());
  EXPECT_NE(log.find(ignored + "payload of 129 bytes exceeds the limit of 128 bytes"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(ignored + "payload of 204807 bytes exceeds the limit"), std::string::npos);
  EXPECT_EQ(log.find(std::string(200, 'a')), std::string::npos) << "a payload was logged";
  EXPECT_TRUE(daemon_.running());
  ASSERT_TRUE(n1_shows([](const nlohmann::json&) { return true; }));
  EXPECT_EQ(n1["liveness"]["state"], "online") << n1.dump();
  EXPECT_EQ(n1["liveness"]["start_id"], online["start_id"]) << n1.dump();

  // Killed: no clean "offline" of its own, the broker publishes its last will.
  gateway.signal(SIGKILL);
  ASSERT_TRUE(gateway.wait(30s).has_value());
  ASSERT_TRUE(n1_shows([](const nlohmann::json& n) { return n["liveness"]["state"] == "offline"; }))
      << n1.dump() << read_text(daemon_.log());
  EXPECT_EQ(n1["state"], "offline") << n1.dump();
  EXPECT_TRUE(n1["liveness"]["start_id"].is_null()) << n1.dump();
  EXPECT_NE(read_text(daemon_.log()).find("gateway cyclecast-gateway-n1 of node n1 is offline"),
            std::string::npos);
}

}  // namespace
}  // namespace cyclecast::testing
