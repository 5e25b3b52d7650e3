// cyclecast-gateway: one edge node's serial line <-> MQTT (docs/gateway.md). The Asio loop owns
// all state; libmosquitto runs on cyclecastd's MqttClient thread and posts messages here.
//
// Records of the node's cells arrive over MQTT, become CY frames in a bounded queue and go to
// the node one at a time (stop and wait, docs/node-protocol.md); FC answers become edge forecasts
// on MQTT. The gateway keeps each cell's last W acknowledged cycles, so that after a node reset
// (HI frame), or after the line was reopened, it replays them before going on.
#pragma once

#include <utility>  // before Asio: its awaitable.hpp uses std::exchange unincluded

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cyclecast/mqtt/client.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/wire/edge.h"
#include "cyclecast/wire/node_frames.h"

namespace cyclecast::gateway {

struct GatewayOptions {
  std::string node_id;      // names the MQTT topics; [A-Za-z0-9_.-], 1-64 characters
  std::string serial_path;  // e.g. /dev/ttyACM0, or a pty's link
  unsigned baud = 115200;
  std::vector<std::string> cells;  // the cells this node forecasts
  mqtt::Options mqtt;              // host, port, client id, credentials
  int answer_timeout_ms = 1000;    // per request; the Nano answers within a few ms
  int max_retries = 2;             // resends of one request before the node is unresponsive
  int reopen_min_ms = 100;         // backoff of reopening the line: min * 2^n up to max
  int reopen_max_ms = 5000;
  size_t queue_limit = 10000;  // pending cycles; beyond it the oldest is dropped (and counted)
  int status_interval_ms = 5000;
  // Model update (docs/gateway.md "Model update"): a signed bundle (cyclecast bundle build) whose
  // model the node must run, and the file with the operator's Ed25519 public key (cyclecast
  // bundle key export) that must have signed it. Both or neither.
  std::string update_bundle, operator_key;
};

class Gateway {
 public:
  Gateway(boost::asio::io_context& io, GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Starts MQTT and opens the line. Errors: MQTT configuration (bad TLS files).
  Result<void> start();
  // Publishes the "offline" status, stops MQTT and closes the line.
  void stop();

 private:
  enum class RequestKind { kIdentify, kCycle, kSlots, kUpdate };
  // The model the node must run, from a bundle whose signature verified.
  struct ModelUpdate {
    std::string blob;  // the CCNM node-model blob (model/model.bin)
    std::string version, sha256;
    bool sent = false;  // a transfer was started since the gateway started
    int refusals = 0;   // chunk/offset refusals in a row, bounded
  };
  struct Item {
    wire::NodeCycle cycle;
    bool replay = false;  // a resend of history after a reset: its forecast is not published
  };
  struct InFlight {
    RequestKind kind = RequestKind::kIdentify;
    uint32_t seq = 0;
    std::string frame;
    Item item;
    int retries = 0;
  };

  void on_mqtt_message(const std::string& topic, const std::string& payload);
  void enqueue(const storage::CellInfo& cell, const storage::CycleRecord& record);

  void open_line();
  void schedule_reopen(const std::string& state, const std::string& why);
  void close_line();
  void read_more();
  void on_bytes(size_t n);
  void on_line(const std::string& line);
  void on_answer(const wire::Answer& answer);
  void on_hello(const wire::HelloAnswer& hello);
  void on_identify(const wire::IdentifyAnswer& id);
  void on_cycle_answer(const wire::Answer& answer);
  Result<void> load_update();
  void send_slots();
  void on_slots_answer(const wire::Answer& answer);
  void on_update_answer(const wire::Answer& answer);
  void send_update_frame(std::string frame);
  void end_update(const std::string& state);
  bool fall_back_to_v1(const wire::Answer& answer);
  void publish_forecast(const wire::ForecastAnswer& fc);

  void send_identify();
  void send_next();
  void send(InFlight request);
  void write_frame();
  void arm_answer_timer();
  void on_answer_timeout();
  void requeue_in_flight();
  void queue_replay();
  void remember(const wire::NodeCycle& cycle);

  void set_state(const std::string& state);
  void publish_status();
  void schedule_status();

  boost::asio::io_context& io_;
  GatewayOptions options_;
  std::unique_ptr<mqtt::Client> mqtt_;
  boost::asio::serial_port serial_;
  boost::asio::steady_timer answer_timer_;
  boost::asio::steady_timer reopen_timer_;
  boost::asio::steady_timer status_timer_;
  std::array<char, 512> read_buffer_{};
  std::string line_;
  bool skipping_ = false;  // inside a line longer than wire::kMaxNodeLine
  bool open_ = false;
  bool writing_ = false;  // an async_write is outstanding
  bool stopping_ = false;
  bool identified_ = false;
  bool replay_after_identify_ = false;
  // The node protocol version spoken on the line: 2 is tried first on every identify; a node
  // that refuses it ("ER version", a v1 node) is spoken to in v1 (docs/node-protocol.md).
  int protocol_ = wire::kNodeProtocolV2;
  int reopen_attempt_ = 0;
  uint32_t next_seq_ = 1;
  std::optional<InFlight> in_flight_;
  std::deque<Item> queue_;
  std::map<std::string, std::deque<wire::NodeCycle>>
      history_;                                     // last W acknowledged cycles per cell
  std::map<std::string, int64_t> last_enqueued_;    // per cell, to skip rig re-sends
  std::map<std::string, storage::CellInfo> cells_;  // metadata seen, by cell id
  wire::NodeStatus status_;
  std::optional<ModelUpdate> update_;
};

}  // namespace cyclecast::gateway
