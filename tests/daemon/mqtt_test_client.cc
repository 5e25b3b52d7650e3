#include "mqtt_test_client.h"

#include <mosquitto.h>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace cyclecast::testing {

// What libmosquitto's thread hands over: CONNACK, the answers to our publishes and subscribes by
// message id, and the messages delivered.
struct MqttTestClient::State {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<int> connack;
  std::map<int, int> answers;  // mid -> reason code or granted QoS
  std::vector<ReceivedMessage> received;

  void answer(int mid, int code) {
    std::lock_guard lock(mutex);
    answers[mid] = code;
    changed.notify_all();
  }
  // The answer to `mid`, or -1 when none came in time.
  int await(int mid) {
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, std::chrono::seconds(20), [&] { return answers.contains(mid); })) {
      return -1;
    }
    return answers[mid];
  }
};

namespace {

MqttTestClient::State& state_of(void* user) {
  return *static_cast<MqttTestClient::State*>(user);
}

}  // namespace

MqttTestClient::MqttTestClient(int port, const std::string& username, const std::string& password,
                               Version version)
    : port_(port), state_(std::make_unique<State>()) {
  mosquitto_lib_init();
  mosq_ = mosquitto_new(nullptr, true, state_.get());
  if (mosq_ == nullptr) throw std::runtime_error("mosquitto_new failed");
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION,
                       version == Version::kV5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  if (!username.empty()) mosquitto_username_pw_set(mosq_, username.c_str(), password.c_str());
  mosquitto_connect_v5_callback_set(
      mosq_, [](mosquitto*, void* user, int rc, int, const mosquitto_property*) {
        State& state = state_of(user);
        std::lock_guard lock(state.mutex);
        state.connack = rc;
        state.changed.notify_all();
      });
  mosquitto_publish_v5_callback_set(
      mosq_, [](mosquitto*, void* user, int mid, int reason, const mosquitto_property*) {
        state_of(user).answer(mid, reason);
      });
  mosquitto_subscribe_v5_callback_set(mosq_, [](mosquitto*, void* user, int mid, int count,
                                                const int* granted, const mosquitto_property*) {
    state_of(user).answer(mid, count > 0 ? granted[0] : -1);
  });
  mosquitto_message_v5_callback_set(
      mosq_,
      [](mosquitto*, void* user, const mosquitto_message* message, const mosquitto_property*) {
        State& state = state_of(user);
        std::string payload;
        if (message->payloadlen > 0) {
          payload.assign(static_cast<const char*>(message->payload),
                         static_cast<std::size_t>(message->payloadlen));
        }
        std::lock_guard lock(state.mutex);
        state.received.push_back({message->topic, std::move(payload), message->retain});
        state.changed.notify_all();
      });
}

MqttTestClient::~MqttTestClient() {
  mosquitto_disconnect(mosq_);
  mosquitto_loop_stop(mosq_, false);
  mosquitto_destroy(mosq_);
}

int MqttTestClient::connect() {
  if (mosquitto_connect(mosq_, "127.0.0.1", port_, 30) != MOSQ_ERR_SUCCESS) return -1;
  if (mosquitto_loop_start(mosq_) != MOSQ_ERR_SUCCESS) return -1;
  std::unique_lock lock(state_->mutex);
  if (!state_->changed.wait_for(lock, std::chrono::seconds(20),
                                [&] { return state_->connack.has_value(); })) {
    return -1;
  }
  return *state_->connack;
}

int MqttTestClient::subscribe(const std::string& topic) {
  int mid = 0;
  if (mosquitto_subscribe(mosq_, &mid, topic.c_str(), 1) != MOSQ_ERR_SUCCESS) return -1;
  return state_->await(mid);
}

int MqttTestClient::publish(const std::string& topic, const std::string& payload, bool retain) {
  int mid = 0;
  if (mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                        payload.data(), 1, retain) != MOSQ_ERR_SUCCESS) {
    return -1;
  }
  return state_->await(mid);
}

std::vector<ReceivedMessage> MqttTestClient::received() {
  std::lock_guard lock(state_->mutex);
  return state_->received;
}

bool MqttTestClient::wait_for(const std::function<bool(const ReceivedMessage&)>& match,
                              std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] {
    for (const auto& message : state_->received) {
      if (match(message)) return true;
    }
    return false;
  });
}

std::string cycle_record(int cycle, double qd_ah) {
  char text[96];
  std::snprintf(text, sizeof text, R"({"cycle":%d,"qd_ah":%.4f})", cycle, qd_ah);
  return text;
}

}  // namespace cyclecast::testing
