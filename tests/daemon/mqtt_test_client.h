// A blocking MQTT client for tests that play a hostile (or a watching) client of the broker:
// connects as a given user with MQTT 3.1.1 or 5, publishes QoS 1 and returns once the broker
// answered (with MQTT 5's reason code: 0 accepted, 135 not authorized), and records what its
// subscriptions deliver. Each call waits on the broker's answer, never on a sleep.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct mosquitto;

namespace cyclecast::testing {

struct ReceivedMessage {
  std::string topic;
  std::string payload;
  bool retained = false;
};

class MqttTestClient {
 public:
  enum class Version { kV311, kV5 };
  // MQTT 5 reason code "not authorized" (PUBACK, SUBACK, CONNACK).
  static constexpr int kNotAuthorized = 135;

  MqttTestClient(int port, const std::string& username, const std::string& password,
                 Version version = Version::kV5);
  ~MqttTestClient();
  MqttTestClient(const MqttTestClient&) = delete;
  MqttTestClient& operator=(const MqttTestClient&) = delete;

  // The CONNACK code (0: accepted), or -1 when the broker gave none in time.
  int connect();
  // Subscribes (QoS 1) and returns the granted QoS or failure code from the SUBACK.
  int subscribe(const std::string& topic);
  // Publishes QoS 1 and waits for the PUBACK: its reason code (always 0 under MQTT 3.1.1, where
  // a refused publish is dropped in silence), or -1 without one in time. Once it returns, the
  // broker has queued the message to every subscriber allowed to read it, or dropped it.
  int publish(const std::string& topic, const std::string& payload, bool retain = false);

  std::vector<ReceivedMessage> received();
  // Waits until a received message satisfies `match`.
  bool wait_for(const std::function<bool(const ReceivedMessage&)>& match,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // What libmosquitto's thread hands over (mqtt_test_client.cc).
  struct State;

 private:
  mosquitto* mosq_ = nullptr;
  int port_;
  std::unique_ptr<State> state_;
};

// A protocol v1 cycle record of `cycle` (valid for a cell rated 1.1 Ah).
std::string cycle_record(int cycle, double qd_ah = 1.05);

}  // namespace cyclecast::testing
