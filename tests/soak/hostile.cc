#include "hostile.h"

#include <chrono>
#include <fstream>
#include <string_view>

#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/protocol.h"
#include "ingest_harness.h"

namespace cyclecast::soak {
namespace {

using protocol::cycles_topic;
using protocol::meta_topic;

using namespace std::chrono_literals;

// Deeper than any parser's recursion survives, and ~180 kB: under the 256 kB payload limit, so
// only a nesting limit stops it.
constexpr int kDeep = 90000;

std::string deep_array() {
  return std::string(kDeep, '[') + std::string(kDeep, ']');
}

std::string edge_forecast(std::string_view cell, std::string_view cycle,
                          std::string_view model_version) {
  return R"({"v":1,"node":"intruder-node","cell":")" + std::string(cell) + R"(","cycle":)" +
         std::string(cycle) + R"(,"model_version":")" + std::string(model_version) +
         R"(","model_sha256":"00","horizon":100,"soh_at_10":0.99,"soh_at_h":0.95,)"
         R"("eol_cycle":null,"forecast_us":400,"received_at_ms":1700000000000})";
}

}  // namespace

HostileClients::HostileClients(const std::filesystem::path& dir, HostileTargets targets)
    : dir_(dir / "hostile"), targets_(std::move(targets)) {
  std::filesystem::create_directories(dir_);
  write_messages();
}

HostileClients::~HostileClients() {
  stop();
}

// One file per message: mosquitto_pub -f sends it as it is.
void HostileClients::write_messages() {
  const std::string& own = targets_.intruder_rig_id;
  const std::string& victim = targets_.victim_cell_id;
  const BrokerLogin* rig = &targets_.rig_intruder;
  const BrokerLogin* gateway = &targets_.gateway_intruder;
  const std::string edge_topic = wire::node_forecasts_topic("intruder-node");
  const std::string forged_ack =
      R"({"v":1,"seq":1,"committed_at_ms":1700000000000,"ranges":[{"cell":")" + victim +
      R"(","from":1,"to":1000000,"outcome":"stored"}]})";
  const std::vector<std::tuple<std::string, std::string, std::string, bool, const BrokerLogin*>>
      kinds = {
          {"deep metadata (retained)", meta_topic(own, "intruder-deep"),
           R"({"rated_capacity_ah":1.1,"metadata":{"x":)" + deep_array() + "}}", true, rig},
          {"deep unknown record field", cycles_topic(own, "intruder-deep"),
           R"({"cycle":1,"qd_ah":1.0,"junk":)" + deep_array() + "}", false, rig},
          {"deep array element", cycles_topic(own, "intruder-deep"),
           R"([{"cycle":2,"qd_ah":1.0},)" + deep_array() + "]", false, rig},
          {"forged ack to another rig", protocol::acks_topic(targets_.victim_rig_id), forged_ack,
           false, rig},
          {"spoofed daemon status", protocol::status_topic(targets_.daemon_client_id), "online",
           false, rig},
          {"metadata for another rig's cell (retained)", meta_topic(own, victim),
           R"({"rated_capacity_ah":2.2,"chemistry":"NMC"})", true, rig},
          {"records for another rig's cell", cycles_topic(own, victim),
           R"({"cycle":999999,"qd_ah":1.0})", false, rig},
          {"records on another rig's topic", cycles_topic(targets_.victim_rig_id, victim),
           R"({"cycle":999998,"qd_ah":1.0})", false, rig},
          {"edge forecast from a rig", edge_topic, edge_forecast(victim, "10", "x"), false, rig},
          {"edge forecast, 200 kB model_version", edge_topic,
           edge_forecast(victim, "10", std::string(200000, 'v')), false, gateway},
          {"edge forecast, cycle 2^63-1", edge_topic,
           edge_forecast(victim, "9223372036854775807", "x"), false, gateway},
      };
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const auto& [kind, topic, payload, retained, login] = kinds[i];
    const auto file = dir_ / ("message-" + std::to_string(i));
    std::ofstream(file, std::ios::binary) << payload;
    messages_.push_back({kind, topic, file, retained, login});
  }
}

void HostileClients::send(const Message& message) {
  std::vector<std::string> argv = {"/usr/bin/mosquitto_pub",
                                   "-h",
                                   "127.0.0.1",
                                   "-p",
                                   std::to_string(targets_.broker_port),
                                   "-q",
                                   "1",
                                   "-t",
                                   message.topic,
                                   "-f",
                                   message.payload.string()};
  if (message.retained) argv.push_back("-r");
  if (message.login != nullptr && !message.login->user.empty()) {
    argv.insert(argv.end(), {"-u", message.login->user, "-P", message.login->password});
  }
  // Refused publishes are dropped by the broker without telling an MQTT 3.1.1 client, and a
  // broker restart may fail one: the exit status says nothing the verdict needs.
  testing::Child child(argv, dir_ / "mosquitto_pub.log");
  child.wait(10s);
  ++sent_[message.kind];
}

void HostileClients::loop() {
  for (std::size_t i = 0; !stopping_; ++i) {
    send(messages_[i % messages_.size()]);
    std::this_thread::sleep_for(200ms);
  }
}

void HostileClients::start() {
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void HostileClients::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

// Call after stop(): the counts belong to the sending thread while it runs.
std::string HostileClients::summary() const {
  std::string text;
  for (const auto& [kind, count] : sent_) {
    text += (text.empty() ? "" : "; ") + kind + " x" + std::to_string(count);
  }
  return text;
}

}  // namespace cyclecast::soak
