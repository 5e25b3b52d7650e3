#include "daemon.h"

#include <csignal>
#include <limits>
#include <string_view>
#include <system_error>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <boost/asio/post.hpp>

#include "cyclecast/wire/edge.h"
#include "plausibility.h"

namespace cyclecast::daemon {
namespace {

// Rejected payloads are kept for diagnosis, not in full when someone sends megabytes.
constexpr std::size_t kMaxStoredPayloadBytes = 64 * 1024;
constexpr auto kStatsInterval = std::chrono::seconds(10);
constexpr auto kMqttDrain = std::chrono::milliseconds(2000);
// Edge forecasts: topics under this prefix (parse_edge_forecast bounds what a row holds).
constexpr const char* kNodesPrefix = "cyclecast/v1/nodes/";
constexpr std::string_view kNodeStatusSuffix = "/status";
// The daemons' and gateways' statuses (protocol::status_topic): the gateways' are followed.
constexpr std::string_view kDaemonsPrefix = "cyclecast/v1/daemons/";
// What of a hostile topic a log line repeats: enough to recognise it, never megabytes.
constexpr std::size_t kMaxLoggedTopicBytes = 200;

std::string loggable_topic(const std::string& topic) {
  if (topic.size() <= kMaxLoggedTopicBytes) return topic;
  return topic.substr(0, kMaxLoggedTopicBytes) + "... (" + std::to_string(topic.size()) + " bytes)";
}

bool same_cell(const storage::CellInfo& a, const storage::CellInfo& b) {
  return a.rig_id == b.rig_id && a.chemistry == b.chemistry &&
         a.rated_capacity_ah == b.rated_capacity_ah && a.charge_policy == b.charge_policy &&
         a.metadata_json == b.metadata_json;
}

}  // namespace

Daemon::Daemon(Config config, std::function<Result<Config>()> reload)
    : config_(std::move(config)),
      reload_(std::move(reload)),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      watchdog_timer_(io_),
      stats_timer_(io_) {
  limits_.max_payload_bytes = config_.mqtt_max_payload_bytes;
}

Daemon::~Daemon() {
  if (http_) http_->stop();
  if (keeper_) keeper_->stop();
  if (writer_) writer_->stop();
  if (forecaster_) forecaster_->stop();
  if (mqtt_) mqtt_->stop(std::chrono::milliseconds(0));
}

void Daemon::handle_message(const std::string& raw_topic, const std::string& payload) {
  // While draining, new messages are left unacknowledged: their rigs send them again.
  if (draining_) return;
  ++metrics_.messages;
  if (raw_topic.starts_with(kDaemonsPrefix)) {
    handle_daemon_status(raw_topic, payload);
    return;
  }
  if (raw_topic.rfind(kNodesPrefix, 0) == 0) {
    if (raw_topic.ends_with(kNodeStatusSuffix)) {
      handle_node_status(raw_topic, payload);
    } else {
      handle_edge_forecast(raw_topic, payload);
    }
    return;
  }
  auto topic = protocol::parse_topic(raw_topic);
  if (!topic) {
    reject(RejectReason::kTopic, "", "", std::nullopt, "mqtt:" + raw_topic, payload,
           topic.error().message);
    return;
  }
  switch (topic->kind) {
    case protocol::TopicKind::kCycles:
      handle_cycles(*topic, raw_topic, payload);
      break;
    case protocol::TopicKind::kCellMeta:
      handle_meta(*topic, raw_topic, payload);
      break;
    case protocol::TopicKind::kAcks:
      break;  // our own acks: not subscribed, ignored if a broker delivers them anyway
  }
}

const storage::CellInfo* Daemon::cell_for_records(const std::string& cell_id) const {
  if (const auto a = announced_.find(cell_id); a != announced_.end()) return &a->second;
  const auto known = cells_.find(cell_id);
  return known == cells_.end() ? nullptr : &known->second;
}

std::string Daemon::foreign_cell(const std::string& cell_id, const std::string& rig_id) const {
  // The stored owner decides; a cell not stored yet belongs to the rig that announced it first.
  const auto known = cells_.find(cell_id);
  const storage::CellInfo* owner = known != cells_.end() ? &known->second : nullptr;
  if (owner == nullptr || owner->rig_id.empty()) {
    const auto a = announced_.find(cell_id);
    owner = a != announced_.end() ? &a->second : owner;
  }
  if (owner == nullptr || owner->rig_id.empty() || owner->rig_id == rig_id) return {};
  return "cell '" + cell_id + "' belongs to rig '" + owner->rig_id +
         "'; an operator moves it to another rig (cyclecast cell move)";
}

void Daemon::handle_cycles(const protocol::Topic& topic, const std::string& raw_topic,
                           const std::string& payload) {
  const std::string source = "mqtt:" + raw_topic;
  if (auto foreign = foreign_cell(topic.cell_id, topic.rig_id); !foreign.empty()) {
    reject(RejectReason::kForeignCell, topic.rig_id, topic.cell_id, std::nullopt, source, payload,
           foreign);
    return;
  }
  const storage::CellInfo* cell = cell_for_records(topic.cell_id);
  auto parsed = protocol::parse_cycles_payload(payload, topic, cell, limits_);
  if (!parsed) {
    reject(RejectReason::kPayload, topic.rig_id, topic.cell_id, std::nullopt, source, payload,
           parsed.error().message);
    return;
  }
  for (const auto& r : parsed->rejected) {
    reject(RejectReason::kRecord, topic.rig_id, topic.cell_id, r.cycle, source, r.record_json,
           r.reason);
  }
  metrics_.records_received += parsed->records.size();
  writer_->add_records(topic.rig_id, std::move(parsed->records));
}

// Stored as a forecast row of origin "edge:<node>": SOH by step, NaN but at +10 and +H, and the
// same for the interval's bounds when the node sent one.
void Daemon::handle_edge_forecast(const std::string& raw_topic, const std::string& payload) {
  auto forecast = wire::parse_edge_forecast(payload);
  if (forecast && raw_topic != wire::node_forecasts_topic(forecast->node)) {
    forecast = make_error(ErrorCode::kInvalidArgument,
                          "edge forecast of node '" + forecast->node + "' on another node's topic");
  }
  if (!forecast) {
    reject(RejectReason::kEdgeForecast, "", "", std::nullopt, "mqtt:" + raw_topic, payload,
           forecast.error().message);
    return;
  }
  // Well-formed but physically impossible: refused like a malformed one, and counted apart.
  if (auto why = implausible_edge_forecast(forecast->soh_at_10, forecast->soh_at_h); !why.empty()) {
    ++metrics_.edge_forecasts_implausible;
    reject(RejectReason::kEdgeForecast, "", "", std::nullopt, "mqtt:" + raw_topic, payload,
           "implausible edge forecast of cell '" + forecast->cell + "' at cycle " +
               std::to_string(forecast->cycle) + ": " + why);
    return;
  }
  storage::ForecastRecord row;
  row.cell_id = forecast->cell;
  row.at_cycle = forecast->cycle;
  row.model_version = forecast->model_version;
  row.origin = "edge:" + forecast->node;
  row.soh.assign(static_cast<size_t>(forecast->horizon), std::numeric_limits<float>::quiet_NaN());
  if (forecast->soh_at_10 && forecast->horizon >= 10)
    row.soh[9] = static_cast<float>(*forecast->soh_at_10);
  row.soh.back() = static_cast<float>(forecast->soh_at_h);
  if (forecast->interval) {  // the node's interval, NaN where the node gave no bound
    const wire::ForecastInterval& in = *forecast->interval;
    row.lower.assign(row.soh.size(), std::numeric_limits<float>::quiet_NaN());
    row.upper.assign(row.soh.size(), std::numeric_limits<float>::quiet_NaN());
    if (in.lower_at_10 && in.upper_at_10 && forecast->horizon >= 10) {
      row.lower[9] = static_cast<float>(*in.lower_at_10);
      row.upper[9] = static_cast<float>(*in.upper_at_10);
    }
    row.lower.back() = static_cast<float>(in.lower_at_h);
    row.upper.back() = static_cast<float>(in.upper_at_h);
  }
  row.created_at_ms = forecast->received_at_ms;
  writer_->add_forecast(std::move(row));
}

void Daemon::handle_node_status(const std::string& raw_topic, const std::string& payload) {
  const std::string_view prefix(kNodesPrefix);
  const std::string node =
      raw_topic.substr(prefix.size(), raw_topic.size() - prefix.size() - kNodeStatusSuffix.size());
  if (payload.empty()) {  // a cleared retained status
    node_statuses_.remove(node);
    return;
  }
  auto status = wire::parse_node_status(payload);
  if (status && status->node != node) {
    status = make_error(ErrorCode::kInvalidArgument,
                        "status of node '" + status->node + "' on another node's topic");
  }
  if (!status) {
    // Informational only (nothing is stored or acknowledged): logged, not kept.
    spdlog::debug("{}: ignored: {}", raw_topic, status.error().message);
    return;
  }
  // The gateway serving the node is alive as long as its statuses keep coming.
  if (auto gateway = gateway_statuses_.find(node); gateway && gateway->status.state == "online") {
    gateway->last_seen_ms = storage::now_ms();
    gateway_statuses_.update(node, std::move(*gateway));
  }
  if (!node_statuses_.update(node, std::move(*status)) && !node_statuses_full_warned_) {
    node_statuses_full_warned_ = true;
    spdlog::warn("node statuses: {} nodes known already; statuses of further nodes are ignored",
                 NodeStatuses::kMax);
  }
}

// A gateway's liveness (docs/protocol.md, "Gateway liveness"); the daemons' statuses (this
// daemon's own among them) are for rigs and ignored here.
void Daemon::handle_daemon_status(const std::string& raw_topic, const std::string& payload) {
  if (!wire::is_gateway_status_topic(raw_topic)) return;
  if (payload.empty()) {  // a cleared retained status: the gateway is gone for good
    if (auto status = wire::parse_gateway_status(raw_topic, "offline"); status) {
      gateway_statuses_.remove(status->node);
    }
    return;
  }
  auto status = wire::parse_gateway_status(raw_topic, payload);
  if (!status) {
    // Nothing of it is kept or shown; the gateway's last valid status stands.
    spdlog::warn("{}: ignored: {}", loggable_topic(raw_topic), status.error().message);
    return;
  }
  const std::int64_t now = storage::now_ms();
  GatewayLiveness liveness;
  if (auto before = gateway_statuses_.find(status->node); before) liveness = std::move(*before);
  const bool changed = liveness.status.state != status->state;
  if (changed) {
    liveness.since_ms = now;
    spdlog::info("gateway {} of node {} is {}", status->client_id, status->node, status->state);
  }
  if (status->state == "online") liveness.last_seen_ms = now;
  liveness.status = std::move(*status);
  const std::string node = liveness.status.node;
  if (!gateway_statuses_.update(node, std::move(liveness)) && !gateway_statuses_full_warned_) {
    gateway_statuses_full_warned_ = true;
    spdlog::warn("gateway statuses: {} gateways known already; further gateways are ignored",
                 GatewayStatuses::kMax);
  }
}

void Daemon::handle_meta(const protocol::Topic& topic, const std::string& raw_topic,
                         const std::string& payload) {
  if (payload.empty()) {
    // An empty retained message is how a rig clears its metadata from the broker.
    spdlog::debug("{}: retained metadata cleared", raw_topic);
    return;
  }
  auto cell = protocol::parse_cell_meta(payload, topic, limits_);
  if (!cell) {
    reject(RejectReason::kCellMeta, topic.rig_id, topic.cell_id, std::nullopt, "mqtt:" + raw_topic,
           payload, cell.error().message);
    return;
  }
  if (auto foreign = foreign_cell(cell->cell_id, cell->rig_id); !foreign.empty()) {
    spdlog::warn("{}: refused, {}", raw_topic, foreign);
    reject(RejectReason::kForeignCell, topic.rig_id, topic.cell_id, std::nullopt,
           "mqtt:" + raw_topic, payload, foreign);
    return;
  }
  // Equal to what is stored or on its way there: nothing to write. A write that failed or was
  // refused is forgotten (handle_commit), so announcing the cell again writes it again.
  const storage::CellInfo* current = cell_for_records(cell->cell_id);
  if (current != nullptr && same_cell(*current, *cell)) return;
  spdlog::info("cell {} on rig {}: rated {} Ah", cell->cell_id, cell->rig_id,
               cell->rated_capacity_ah);
  announced_[cell->cell_id] = *cell;
  writer_->add_cell(std::move(*cell));
}

void Daemon::reject(RejectReason kind, const std::string& rig_id, const std::string& cell_id,
                    std::optional<std::int64_t> cycle, const std::string& source,
                    const std::string& payload, const std::string& reason) {
  metrics_.count_rejection(kind);
  spdlog::debug("rejected from {}: {}", source, reason);
  storage::RejectedRecord rejected;
  rejected.source = source;
  rejected.payload = payload.substr(0, kMaxStoredPayloadBytes);
  rejected.reason = reason;
  writer_->add_rejection(rig_id, cell_id, cycle, std::move(rejected));
}

void Daemon::note_cells(CommitReport& report) {
  for (auto& cell : report.cells) {
    const auto a = announced_.find(cell.cell_id);
    if (a != announced_.end() && same_cell(a->second, cell)) announced_.erase(a);
    cells_[cell.cell_id] = std::move(cell);
  }
  for (auto& refused : report.refused_cells) {
    const storage::CellInfo& cell = refused.cell;
    const auto a = announced_.find(cell.cell_id);
    if (a != announced_.end() && same_cell(a->second, cell)) announced_.erase(a);
    spdlog::warn("cell {} of rig {} not stored: {}", cell.cell_id, cell.rig_id, refused.reason);
    reject(refused.owned_elsewhere ? RejectReason::kForeignCell : RejectReason::kCellMeta,
           cell.rig_id, cell.cell_id, std::nullopt,
           "mqtt:" + protocol::meta_topic(cell.rig_id, cell.cell_id),
           protocol::serialize_cell_meta(cell), "cell metadata not stored: " + refused.reason);
  }
}

void Daemon::cell_moved(storage::CellInfo cell) {
  spdlog::info("cell {} moved to rig {} by an operator", cell.cell_id, cell.rig_id);
  // An announcement of the old owner still on its way is refused by the database.
  const auto a = announced_.find(cell.cell_id);
  if (a != announced_.end() && a->second.rig_id != cell.rig_id) announced_.erase(a);
  cells_[cell.cell_id] = std::move(cell);
}

void Daemon::handle_commit(CommitReport report) {
  if (!report.error.empty()) {
    // The writer keeps the batch's cells and writes them with its next batch.
    note_commit_failure(report);
    return;
  }
  note_cells(report);
  if (!report.forecast_error.empty()) {
    spdlog::error("edge forecasts not stored: {}", report.forecast_error);
  }
  // A batch of records already stored writes nothing, so it commits on a full database too: only
  // one that stored something says there is room again (else health would flicker to ok).
  const bool still_full = metrics_.storage_full && report.stored == 0;
  if (failed_commits_in_a_row_ > 0 && !still_full) {
    spdlog::info("commits succeed again after {} failed; rigs resend what was not confirmed",
                 failed_commits_in_a_row_);
    failed_commits_in_a_row_ = 0;
  }
  if (!still_full) {
    metrics_.last_commit_failed = false;
    metrics_.storage_full = false;
  }
  ++metrics_.commits;
  metrics_.stored += report.stored;
  metrics_.duplicates += report.duplicates;
  metrics_.count_rejection(RejectReason::kConflict, report.conflicts);
  metrics_.count_rejection(RejectReason::kUnknownCell, report.unknown_cells);
  metrics_.edge_forecasts += report.edge_forecasts;
  metrics_.commit_latency.observe(report.commit_time);
  spdlog::debug("commit: {} stored, {} duplicates, {} conflicts, {} rejected in {} us",
                report.stored, report.duplicates, report.conflicts, report.rejected,
                report.commit_time.count());
  forecaster_->notify(report.new_cycles);
  const std::int64_t now = storage::now_ms();
  for (auto& [rig, ack] : report.acks) {
    ack.seq = ++ack_seq_;
    ack.committed_at_ms = now;
    if (mqtt_->publish(protocol::acks_topic(rig), protocol::serialize_ack(ack))) {
      ++metrics_.acks_published;
    } else {
      spdlog::warn("ack {} for rig {} not queued; the rig will resend", ack.seq, rig);
    }
  }
}

void Daemon::note_commit_failure(const CommitReport& report) {
  // Nothing of the batch is acknowledged, so every rig keeps its records and sends them again.
  ++metrics_.commit_failures;
  metrics_.last_commit_failed = true;
  metrics_.storage_full = report.error_code == ErrorCode::kFull;
  // Rigs resend while the condition lasts: said once at error level, then at debug.
  const auto level = failed_commits_in_a_row_++ == 0 ? spdlog::level::err : spdlog::level::debug;
  if (metrics_.storage_full) {
    spdlog::log(level,
                "database full (disk full or storage.max_size_mb reached): records are not "
                "confirmed until there is room; rigs keep them. {}",
                report.error);
  } else {
    spdlog::log(level, "commit failed, batch not acknowledged: {}", report.error);
  }
}

void Daemon::publish_forecasts(const std::vector<storage::ForecastRecord>& forecasts) {
  if (draining_) return;  // stored already; consumers get the next ones after the restart
  for (const auto& f : forecasts) {
    const auto topic = protocol::forecast_topic(f.cell_id);
    if (!topic) {
      if (unpublishable_cells_.insert(f.cell_id).second) {
        spdlog::warn(
            "cell '{}': its forecasts are stored but not published, the id is not a "
            "valid MQTT topic segment ({})",
            f.cell_id, protocol::check_id(f.cell_id));
      }
      continue;
    }
    if (mqtt_->publish(*topic, protocol::serialize_forecast(f), 1, /*retain=*/true)) {
      ++metrics_.forecasts_published;
    }
  }
}

void Daemon::wait_signals() {
  signals_.async_wait([this](const boost::system::error_code& error, int signal) {
    if (error) return;
    if (signal == SIGHUP) {
      reload();
      wait_signals();
      return;
    }
    spdlog::info("signal {}: draining the current batch and stopping", signal);
    shutdown();
  });
}

void Daemon::apply_log_level() {
  spdlog::set_level(spdlog::level::from_str(config_.log_level));
}

void Daemon::reload() {
  sd_notify(0, "RELOADING=1");
  auto fresh = reload_();
  if (!fresh) {
    spdlog::error("reload refused, configuration unchanged: {}", fresh.error().message);
    sd_notify(0, "READY=1");
    return;
  }
  for (const auto& key : keys_needing_restart(config_, *fresh)) {
    spdlog::warn("reload: {} changed but needs a restart; not applied", key);
  }
  config_.log_level = fresh->log_level;
  config_.batch_records = fresh->batch_records;
  config_.batch_ms = fresh->batch_ms;
  writer_->set_policy(BatchPolicy{config_.batch_records, config_.batch_ms});
  if (fresh->max_size_mb != config_.max_size_mb) {
    config_.max_size_mb = fresh->max_size_mb;
    writer_->set_max_size(config_.max_size_bytes());
    forecaster_->set_max_size(config_.max_size_bytes());
    spdlog::info("reload: database size limit {} MB (0: none)", config_.max_size_mb);
  }
  keeper_->reload(*fresh);
  if (http_) {
    if (auto token = http_->reload_token(); !token) {
      spdlog::error("reload: API token not reloaded, the previous one stays: {}",
                    token.error().message);
    }
  }
  // Said before the new level applies, so that a quieter level still leaves this line.
  spdlog::info("reloaded: log level {}, batches of {} records or {} ms", config_.log_level,
               config_.batch_records, config_.batch_ms);
  apply_log_level();
  sd_notify(0, "READY=1");
}

void Daemon::shutdown() {
  if (draining_) return;
  draining_ = true;
  sd_notify(0, "STOPPING=1");
  signals_.cancel();
  watchdog_timer_.cancel();
  stats_timer_.cancel();
  // No API call runs after this; a retraining run in progress is interrupted and recorded so.
  if (http_) http_->stop();
  keeper_->stop();
  // The last commit report is posted before stop() returns, so its acks go out before the
  // MQTT client is stopped below.
  writer_->stop();
  forecaster_->stop();
  boost::asio::post(io_, [this] {
    mqtt_->stop(kMqttDrain);
    io_.stop();
  });
}

void Daemon::start_watchdog() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
  watchdog_interval_ = std::chrono::microseconds(usec);
  spdlog::info("systemd watchdog every {} ms", usec / 1000);
  sd_notify(0, "WATCHDOG=1");
  schedule_watchdog();
}

void Daemon::schedule_watchdog() {
  watchdog_timer_.expires_after(watchdog_interval_ / 2);
  watchdog_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    // The loop is alive if we are here; the writer must have been seen within the interval.
    if (std::chrono::steady_clock::now() - writer_->last_alive() < watchdog_interval_) {
      sd_notify(0, "WATCHDOG=1");
    } else {
      spdlog::error("writer thread unresponsive; withholding the watchdog ping");
    }
    schedule_watchdog();
  });
}

void Daemon::start_stats_timer() {
  stats_timer_.expires_after(kStatsInterval);
  stats_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    const std::string line = status_line(metrics_);
    spdlog::info("{}", line);
    sd_notify(0, ("STATUS=" + line).c_str());
    start_stats_timer();
  });
}

}  // namespace cyclecast::daemon
