#include "cyclecast/mqtt/client.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include <mosquitto.h>

namespace cyclecast::mqtt {
namespace {

// One mosquitto_lib_init() per process, before any client exists.
void init_library_once() {
  static const int initialised = [] {
    mosquitto_lib_init();
    return 1;
  }();
  (void)initialised;
}

const char* or_null(const std::string& text) {
  return text.empty() ? nullptr : text.c_str();
}

std::string mosq_error(int rc) {
  return mosquitto_strerror(rc);
}

std::string random_start_id() {
  std::random_device device;
  const std::uint64_t bits = (std::uint64_t{device()} << 32) | device();
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
  return text;
}

}  // namespace

int reconnect_delay_ms(int attempt, int min_ms, int max_ms, std::mt19937& rng) {
  long long delay = min_ms;
  for (int i = 0; i < attempt && delay < max_ms; ++i)
    delay *= 2;
  delay = std::min<long long>(delay, max_ms);
  std::uniform_int_distribution<long long> jitter(delay / 2, delay);
  return static_cast<int>(jitter(rng));
}

Client::Client(Options options, Handlers handlers)
    : options_(std::move(options)),
      handlers_(std::move(handlers)),
      rng_(std::random_device{}()),
      start_id_(random_start_id()) {}

Client::~Client() {
  stop(std::chrono::milliseconds(0));
  if (mosq_ != nullptr) mosquitto_destroy(mosq_);
}

Result<void> Client::start() {
  init_library_once();
  mosq_ = mosquitto_new(options_.client_id.c_str(), options_.clean_session, this);
  if (mosq_ == nullptr) return make_error(ErrorCode::kIo, "mosquitto_new failed");
  mosquitto_threaded_set(mosq_, true);
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  // Several QoS 1 messages in flight at once; the default of 20 caps throughput of acks.
  mosquitto_max_inflight_messages_set(mosq_, 1000);
  mosquitto_connect_callback_set(mosq_, &Client::on_connect);
  mosquitto_disconnect_callback_set(mosq_, &Client::on_disconnect);
  mosquitto_message_callback_set(mosq_, &Client::on_message);
  mosquitto_publish_callback_set(mosq_, &Client::on_publish);
  if (!options_.username.empty()) {
    const int rc =
        mosquitto_username_pw_set(mosq_, options_.username.c_str(), or_null(options_.password));
    if (rc != MOSQ_ERR_SUCCESS) {
      return make_error(ErrorCode::kInvalidArgument, "mqtt username/password: " + mosq_error(rc));
    }
  }
  if (!options_.tls_ca_file.empty()) {
    const int rc =
        mosquitto_tls_set(mosq_, options_.tls_ca_file.c_str(), nullptr,
                          or_null(options_.tls_cert_file), or_null(options_.tls_key_file), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      return make_error(ErrorCode::kInvalidArgument, "mqtt TLS files: " + mosq_error(rc));
    }
  }
  if (!options_.status_topic.empty()) {
    const std::string offline = "offline";
    const int rc = mosquitto_will_set(mosq_, options_.status_topic.c_str(),
                                      static_cast<int>(offline.size()), offline.data(), 1, true);
    if (rc != MOSQ_ERR_SUCCESS) {
      return make_error(ErrorCode::kInvalidArgument, "mqtt last will: " + mosq_error(rc));
    }
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

bool Client::publish(const std::string& topic, const std::string& payload, int qos, bool retain) {
  if (mosq_ == nullptr) return false;
  int mid = 0;
  const int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), qos, retain);
  // NO_CONN: libmosquitto keeps QoS > 0 messages queued and sends them once reconnected.
  const bool queued = rc == MOSQ_ERR_SUCCESS || (rc == MOSQ_ERR_NO_CONN && qos > 0);
  if (queued && qos > 0) ++outstanding_;
  return queued;
}

void Client::stop(std::chrono::milliseconds drain) {
  if (!thread_.joinable()) return;
  if (!options_.status_topic.empty() && connected_) {
    publish(options_.status_topic, "offline", 1, true);
  }
  {
    std::lock_guard lock(mutex_);
    drain_deadline_ = std::chrono::steady_clock::now() + drain;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool Client::wait_or_stop(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stopping_.load(); });
}

void Client::report_tls_failure(int rc) {
  if (rc == MOSQ_ERR_TLS && !ever_connected_ && handlers_.on_tls_failure) {
    handlers_.on_tls_failure(mosq_error(rc));
  }
}

void Client::run() {
  bool need_connect = true;
  bool first_connect = true;
  for (;;) {
    if (stopping_) {
      const bool drained = outstanding_.load() <= 0 || !connected_ ||
                           std::chrono::steady_clock::now() >= drain_deadline_;
      if (drained) break;
    }
    if (need_connect) {
      // The first call stores host and port (even when it fails); later ones reuse them.
      const int rc = first_connect ? mosquitto_connect(mosq_, options_.host.c_str(), options_.port,
                                                       options_.keepalive_s)
                                   : mosquitto_reconnect(mosq_);
      first_connect = false;
      if (rc != MOSQ_ERR_SUCCESS) {
        if (handlers_.on_connection) handlers_.on_connection(false, "connect: " + mosq_error(rc));
        report_tls_failure(rc);
        const int delay = reconnect_delay_ms(attempt_, options_.reconnect_min_ms,
                                             options_.reconnect_max_ms, rng_);
        ++attempt_;
        if (!wait_or_stop(std::chrono::milliseconds(delay))) break;
        continue;
      }
      need_connect = false;
    }
    const int rc = mosquitto_loop(mosq_, 100, 1);
    if (rc != MOSQ_ERR_SUCCESS && !stopping_) {
      connected_ = false;
      if (handlers_.on_connection)
        handlers_.on_connection(false, "connection lost: " + mosq_error(rc));
      report_tls_failure(rc);
      const int delay =
          reconnect_delay_ms(attempt_, options_.reconnect_min_ms, options_.reconnect_max_ms, rng_);
      ++attempt_;
      if (!wait_or_stop(std::chrono::milliseconds(delay))) break;
      need_connect = true;
    } else if (rc != MOSQ_ERR_SUCCESS) {
      break;
    }
  }
  if (connected_) {
    mosquitto_disconnect(mosq_);
    // Let the DISCONNECT go out.
    for (int i = 0; i < 5 && mosquitto_loop(mosq_, 10, 1) == MOSQ_ERR_SUCCESS; ++i) {
    }
  }
  connected_ = false;
}

void Client::on_connect(mosquitto* mosq, void* self_ptr, int rc) {
  auto* self = static_cast<Client*>(self_ptr);
  if (rc != 0) {
    if (self->handlers_.on_connection) {
      self->handlers_.on_connection(false,
                                    std::string("broker refused: ") + mosquitto_connack_string(rc));
    }
    return;
  }
  self->connected_ = true;
  self->ever_connected_ = true;
  self->attempt_ = 0;
  for (const auto& topic : self->options_.subscriptions) {
    mosquitto_subscribe(mosq, nullptr, topic.c_str(), 1);
  }
  if (!self->options_.status_topic.empty()) {
    const std::string online = "online " + self->start_id_;
    if (mosquitto_publish(mosq, nullptr, self->options_.status_topic.c_str(),
                          static_cast<int>(online.size()), online.data(), 1,
                          true) == MOSQ_ERR_SUCCESS) {
      ++self->outstanding_;
    }
  }
  if (self->handlers_.on_connection) self->handlers_.on_connection(true, "connected");
}

void Client::on_disconnect(mosquitto* /*mosq*/, void* self_ptr, int rc) {
  auto* self = static_cast<Client*>(self_ptr);
  self->connected_ = false;
  if (rc != 0 && self->handlers_.on_connection) {
    self->handlers_.on_connection(false, "disconnected: " + mosq_error(rc));
  }
}

void Client::on_message(mosquitto* /*mosq*/, void* self_ptr, const mosquitto_message* message) {
  auto* self = static_cast<Client*>(self_ptr);
  if (!self->handlers_.on_message) return;
  std::string payload;
  if (message->payloadlen > 0) {
    payload.assign(static_cast<const char*>(message->payload),
                   static_cast<std::size_t>(message->payloadlen));
  }
  self->handlers_.on_message(message->topic, std::move(payload));
}

void Client::on_publish(mosquitto* /*mosq*/, void* self_ptr, int /*mid*/) {
  auto* self = static_cast<Client*>(self_ptr);
  --self->outstanding_;
}

}  // namespace cyclecast::mqtt
