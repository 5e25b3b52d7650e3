// libmosquitto behind a network thread of our own (docs/daemon.md says why): the thread runs
// mosquitto_loop(), reconnects with exponential backoff and jitter, and hands every event to
// the callbacks, which the daemon turns into posts onto its Asio loop. publish() is safe from
// any thread (libmosquitto locks its queues when told it is threaded).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cyclecast/result.h"

struct mosquitto;
struct mosquitto_message;

namespace cyclecast::mqtt {

struct Options {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string client_id;
  bool clean_session = false;  // false: the broker queues QoS 1 messages while we are away
  int keepalive_s = 30;
  std::string username, password;
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  int reconnect_min_ms = 500;
  int reconnect_max_ms = 30000;
  std::vector<std::string> subscriptions;  // QoS 1, re-made on every connect
  // Retained "online <start id>" on every connect; last will "offline" (docs/protocol.md,
  // "Daemon status").
  std::string status_topic;
};

struct Handlers {
  // Run on the network thread; must not block.
  std::function<void(std::string topic, std::string payload)> on_message;
  std::function<void(bool connected, const std::string& detail)> on_connection;
  // A TLS failure (handshake, certificate verification) before the first connection ever
  // succeeded: with the broker unchanged, retrying cannot help, so the owner may give up.
  std::function<void(const std::string& detail)> on_tls_failure;
};

// Delay before reconnect attempt `attempt` (0-based): min * 2^attempt capped at max, then a
// uniformly random point in its upper half, so that many clients do not reconnect in step.
int reconnect_delay_ms(int attempt, int min_ms, int max_ms, std::mt19937& rng);

class Client {
 public:
  Client(Options options, Handlers handlers);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Creates the client, configures TLS/credentials/will, starts the network thread (which
  // connects, and keeps reconnecting). Errors are configuration errors (bad TLS files...).
  Result<void> start();
  // QoS 1 unless told otherwise. False when libmosquitto refused (e.g. payload too large);
  // while disconnected, messages are queued by libmosquitto and sent after reconnecting.
  bool publish(const std::string& topic, const std::string& payload, int qos = 1,
               bool retain = false);
  // Publishes "offline" on the status topic, waits (up to drain) for outgoing QoS 1 messages to
  // be acknowledged by the broker, disconnects and joins the thread. Idempotent.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds(2000));
  bool connected() const { return connected_.load(); }
  // 16 hex digits drawn when the client is made, one per run of the process: the same on every
  // reconnect, so that a rig re-sends once per restart of the daemon, not once per reconnect.
  const std::string& start_id() const { return start_id_; }

 private:
  static void on_connect(mosquitto* mosq, void* self, int rc);
  static void on_disconnect(mosquitto* mosq, void* self, int rc);
  static void on_message(mosquitto* mosq, void* self, const mosquitto_message* message);
  static void on_publish(mosquitto* mosq, void* self, int mid);
  void run();
  void report_tls_failure(int rc);
  bool wait_or_stop(std::chrono::milliseconds delay);

  Options options_;
  Handlers handlers_;
  mosquitto* mosq_ = nullptr;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<bool> ever_connected_{false};
  std::atomic<int> outstanding_{0};
  std::chrono::steady_clock::time_point drain_deadline_{};
  int attempt_ = 0;
  std::mt19937 rng_;
  std::string start_id_;
};

}  // namespace cyclecast::mqtt
