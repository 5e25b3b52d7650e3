// cyclecastd's process: the Asio event loop that owns everything. Messages arrive from the MQTT
// network thread as posts; the loop validates them (protocol v1) against its cache of cell
// metadata and hands them to the writer thread; the writer's commit reports come back as posts
// and become acks. The stream forecaster forecasts what was stored with the champion; the model
// keeper retrains, promotes and watches live error; the HTTP API serves operators. Signals:
// SIGTERM/SIGINT drain and exit, SIGHUP reloads. systemd: READY once the database is open and the
// loop runs, WATCHDOG from the loop while the writer is alive.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "api.h"
#include "checkpointer.h"
#include "config.h"
#include "cyclecast/http/server.h"
#include "cyclecast/mqtt/client.h"
#include "cyclecast/wire/protocol.h"
#include "forecaster.h"
#include "metrics.h"
#include "model_keeper.h"
#include "node_statuses.h"
#include "writer.h"

namespace cyclecast::daemon {

class Daemon {
 public:
  // `reload` re-reads the configuration (file + flags) for SIGHUP.
  Daemon(Config config, std::function<Result<Config>()> reload);
  ~Daemon();

  // Opens the database, connects, runs the loop until SIGTERM/SIGINT. Returns the exit code.
  int run();

 private:
  void handle_message(const std::string& topic, const std::string& payload);
  void handle_cycles(const protocol::Topic& topic, const std::string& raw_topic,
                     const std::string& payload);
  void handle_meta(const protocol::Topic& topic, const std::string& raw_topic,
                   const std::string& payload);
  // cyclecast/v1/nodes/{node}/forecasts: an edge forecast (docs/protocol.md, "Edge nodes").
  void handle_edge_forecast(const std::string& raw_topic, const std::string& payload);
  // cyclecast/v1/nodes/{node}/status: a node's retained status, kept for the API.
  void handle_node_status(const std::string& raw_topic, const std::string& payload);
  void handle_daemon_status(const std::string& raw_topic, const std::string& payload);
  void reject(RejectReason kind, const std::string& rig_id, const std::string& cell_id,
              std::optional<std::int64_t> cycle, const std::string& source,
              const std::string& payload, const std::string& reason);
  // The steps of run(), in order; each logs why it failed.
  bool open_storage();  // the state directory, the database, the known cells and the writer
  bool start_forecaster();
  void start_checkpointer();
  bool start_mqtt();
  bool start_models();
  bool start_http();
  void use_model(std::shared_ptr<const edge::LoadedNodeModel> model, const std::string& version);
  void handle_commit(CommitReport report);
  void note_cells(CommitReport& report);
  // The cell's metadata as records are checked against: the newest announced, else the stored.
  const storage::CellInfo* cell_for_records(const std::string& cell_id) const;
  // Why `rig_id` may not publish for the cell (it belongs to another rig); empty when it may.
  std::string foreign_cell(const std::string& cell_id, const std::string& rig_id) const;
  // An operator moved the cell (the API, after its commit).
  void cell_moved(storage::CellInfo cell);
  void note_commit_failure(const CommitReport& report);
  void publish_forecasts(const std::vector<storage::ForecastRecord>& forecasts);
  void wait_signals();
  void reload();
  void shutdown();
  void start_watchdog();
  void schedule_watchdog();
  void start_stats_timer();
  void apply_log_level();

  Config config_;
  std::function<Result<Config>()> reload_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer stats_timer_;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Forecaster> forecaster_;
  std::unique_ptr<mqtt::Client> mqtt_;
  std::unique_ptr<ModelKeeper> keeper_;
  std::unique_ptr<DaemonApi> api_;
  std::unique_ptr<http::HttpServer> http_;  // declared after api_: destroyed before it
  // Cells as the database holds them: changed only by a commit (the writer's reports, the
  // API's moves), never ahead of it.
  std::unordered_map<std::string, storage::CellInfo> cells_;
  // Metadata handed to the writer whose commit has not been reported yet. Records are checked
  // against it (the writer stores the cell before them); the writer retries a failed write.
  std::unordered_map<std::string, storage::CellInfo> announced_;
  protocol::Limits limits_;
  DaemonMetrics metrics_;
  NodeStatuses node_statuses_;  // read by api_'s threads
  bool node_statuses_full_warned_ = false;
  GatewayStatuses gateway_statuses_;  // read by api_'s threads
  bool gateway_statuses_full_warned_ = false;
  std::int64_t started_at_ms_ = 0;
  std::uint64_t ack_seq_ = 0;
  std::uint64_t failed_commits_in_a_row_ = 0;
  std::unordered_set<std::string> unpublishable_cells_;  // warned about once each
  bool draining_ = false;
  int exit_code_ = 0;  // of run(): 1 when the daemon gave up (TLS that cannot verify)
  std::chrono::microseconds watchdog_interval_{0};
};

}  // namespace cyclecast::daemon
