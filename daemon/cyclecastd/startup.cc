// Daemon::run() and its start-up steps in order (daemon.h): storage, forecaster, checkpointer,
// MQTT, models, HTTP. Each step logs why it failed; run() undoes the steps before it.
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <system_error>

#include "cyclecast/wire/edge.h"
#include "daemon.h"

namespace cyclecast::daemon {
namespace {

constexpr auto kCheckpointInterval = std::chrono::milliseconds(100);

// "http://127.0.0.1:8080", "http://[::1]:8080": where the API serves what the daemon announces.
std::string api_base(const std::string& address, std::uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// What champion announcements point clients to: http.public_url, else where the API listens,
// except that "0.0.0.0" or "::" is no place to pull from (the announcement then has no url).
std::string announced_api_base(const Config& config, const std::string& listening) {
  if (!config.http_public_url.empty()) return config.http_public_url;
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(config.http_address, error);
  if (!error && address.is_unspecified()) {
    spdlog::warn(
        "http: listening on every address ({}) and no http.public_url: champion announcements "
        "carry no url; set http.public_url to where clients reach the API",
        config.http_address);
    return {};
  }
  return listening;
}

// A damaged file is not written to: more writes could spread the damage over what is intact.
bool database_is_sound(storage::Database& db) {
  const std::string path = db.path().string();
  auto problems = db.quick_check();
  if (!problems) {
    spdlog::critical("database {}: the integrity check could not run: {}", path,
                     problems.error().message);
    return false;
  }
  if (problems->empty()) return true;
  spdlog::critical(
      "database {} failed its integrity check ({} problems; first: {}). It is not used. Keep a "
      "copy of the file and its -wal, then: `cyclecast db check --db {}` lists every problem; "
      "restore the latest backup (`cyclecast db backup` makes them), or salvage the readable rows "
      "with `sqlite3 {} .recover | sqlite3 NEW.db` and point storage.database at NEW.db",
      path, problems->size(), problems->front(), path, path);
  return false;
}

}  // namespace

int Daemon::run() {
  started_at_ms_ = storage::now_ms();
  if (!open_storage()) return 1;
  if (!start_forecaster()) {
    writer_->stop();
    return 1;
  }
  start_checkpointer();
  if (!start_mqtt()) {
    writer_->stop();
    return 1;
  }
  if (!start_models() || !start_http()) {
    if (keeper_) keeper_->stop();
    writer_->stop();
    return 1;
  }
  keeper_->start();

  wait_signals();
  start_watchdog();
  start_stats_timer();
  boost::asio::post(io_, [this] {
    spdlog::info("ready: batches of {} records or {} ms", config_.batch_records, config_.batch_ms);
    sd_notify(0, "READY=1\nSTATUS=ready");
  });
  io_.run();
  spdlog::info("stopped: {}", status_line(metrics_));
  return exit_code_;
}

bool Daemon::open_storage() {
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (ec) {
    spdlog::critical("state directory {}: {}", config_.state_dir, ec.message());
    return false;
  }
  storage::OpenOptions open_options;
  open_options.synchronous_full = config_.synchronous_full;
  open_options.max_size_bytes = config_.max_size_bytes();
  auto db = storage::Database::open(config_.database_path(), open_options);
  if (!db) {
    spdlog::critical("database {}: {}", config_.database_path().string(), db.error().message);
    return false;
  }
  if (!database_is_sound(*db)) return false;
  auto known = db->cells();
  if (!known) {
    spdlog::critical("database {}: {}", config_.database_path().string(), known.error().message);
    return false;
  }
  for (auto& summary : *known)
    cells_[summary.info.cell_id] = std::move(summary.info);
  spdlog::info("database {} open ({} cells known)", config_.database_path().string(),
               cells_.size());

  writer_ = std::make_unique<Writer>(
      std::move(*db), BatchPolicy{config_.batch_records, config_.batch_ms},
      [this](CommitReport report) {
        boost::asio::post(io_, [this, report = std::move(report)]() mutable {
          handle_commit(std::move(report));
        });
      });
  return true;
}

bool Daemon::start_forecaster() {
  auto forecaster = Forecaster::start(
      ForecasterOptions{.database = config_.database_path(),
                        .max_size_bytes = config_.max_size_bytes()},
      [this](std::vector<storage::ForecastRecord> forecasts) {
        boost::asio::post(
            io_, [this, forecasts = std::move(forecasts)] { publish_forecasts(forecasts); });
      },
      [this](std::vector<storage::ScoredForecast> scored) {
        // Through the loop: the keeper is created after the forecaster.
        boost::asio::post(io_, [this, scored = std::move(scored)] {
          if (keeper_) keeper_->observe_scored(scored);
        });
      });
  if (!forecaster) {
    spdlog::critical("forecaster: {}", forecaster.error().message);
    return false;
  }
  forecaster_ = std::move(*forecaster);
  return true;
}

void Daemon::start_checkpointer() {
  checkpointer_ = std::make_unique<Checkpointer>(config_.database_path(), kCheckpointInterval);
  if (!checkpointer_->running()) {
    spdlog::warn("background WAL checkpoints unavailable; SQLite checkpoints in the commit path");
  }
}

bool Daemon::start_mqtt() {
  mqtt::Options options;
  options.host = config_.mqtt_host;
  options.port = config_.mqtt_port;
  options.client_id = config_.mqtt_client_id;
  options.keepalive_s = config_.mqtt_keepalive_s;
  options.username = config_.mqtt_username;
  options.password = config_.mqtt_password;
  options.tls_ca_file = config_.mqtt_tls_ca_file;
  options.tls_cert_file = config_.mqtt_tls_cert_file;
  options.tls_key_file = config_.mqtt_tls_key_file;
  options.reconnect_min_ms = config_.mqtt_reconnect_min_ms;
  options.reconnect_max_ms = config_.mqtt_reconnect_max_ms;
  options.subscriptions = {protocol::meta_subscription(), protocol::cycles_subscription(),
                           wire::node_forecasts_subscription(), wire::node_status_subscription(),
                           wire::daemon_status_subscription()};
  options.status_topic = protocol::status_topic(config_.mqtt_client_id);
  mqtt::Handlers handlers;
  handlers.on_message = [this](std::string topic, std::string payload) {
    boost::asio::post(io_, [this, topic = std::move(topic), payload = std::move(payload)] {
      handle_message(topic, payload);
    });
  };
  handlers.on_connection = [this](bool connected, const std::string& detail) {
    metrics_.mqtt_connected = connected;
    boost::asio::post(io_, [this, connected, detail] {
      if (connected) {
        spdlog::info("mqtt: connected to {}:{} as {}", config_.mqtt_host, config_.mqtt_port,
                     config_.mqtt_client_id);
      } else {
        spdlog::warn("mqtt: {} (reconnecting with backoff)", detail);
      }
    });
  };
  if (!config_.mqtt_tls_ca_file.empty()) {
    handlers.on_tls_failure = [this](const std::string& detail) {
      boost::asio::post(io_, [this, detail] {
        if (draining_) return;
        spdlog::critical(
            "mqtt: TLS with {}:{} failed before any connection ({}): the broker's certificate "
            "does not verify against mqtt.tls_ca_file {} (or the broker is not speaking TLS, or "
            "the client certificate is refused); refusing to run",
            config_.mqtt_host, config_.mqtt_port, detail, config_.mqtt_tls_ca_file);
        exit_code_ = 1;
        shutdown();
      });
    };
  }
  mqtt_ = std::make_unique<mqtt::Client>(std::move(options), std::move(handlers));
  if (auto started = mqtt_->start(); !started) {
    spdlog::critical("mqtt: {}", started.error().message);
    return false;
  }
  return true;
}

bool Daemon::start_models() {
  ModelKeeperHooks hooks;
  hooks.use_model = [this](std::shared_ptr<const edge::LoadedNodeModel> model,
                           const std::string& version) { use_model(std::move(model), version); };
  hooks.publish = [this](const std::string& topic, const std::string& payload, bool retain) {
    if (draining_) return;
    if (!mqtt_->publish(topic, payload, 1, retain)) spdlog::warn("{} not queued", topic);
  };
  auto keeper = ModelKeeper::create(io_, config_, std::move(hooks));
  if (!keeper) {
    spdlog::critical("models: {}", keeper.error().message);
    return false;
  }
  keeper_ = std::move(*keeper);
  return true;
}

void Daemon::use_model(std::shared_ptr<const edge::LoadedNodeModel> model,
                       const std::string& version) {
  if (auto set = forecaster_->set_model(std::move(model)); !set) {
    spdlog::error("champion {}: the forecaster refuses it: {}", version, set.error().message);
    return;
  }
  spdlog::info("forecasting with champion {}", version);
}

bool Daemon::start_http() {
  if (!config_.http_enabled) {
    spdlog::info("http: the operators' API is disabled (http.enabled = false)");
    return true;
  }
  if (!http::is_loopback(config_.http_address)) {
    spdlog::warn(
        "http: listening on {}, not a loopback address: the API has no TLS and its "
        "reads need no token; prefer 127.0.0.1 and an SSH tunnel",
        config_.http_address);
  }
  ApiSources sources{
      config_.database_path(), &metrics_, keeper_.get(), [this] { return forecaster_->stats(); },
      started_at_ms_,
      // No checkpointer thread: nothing known about the WAL, nothing to say.
      [this] { return checkpointer_->running() ? checkpointer_->status() : WalStatus{}; },
      [this](storage::CellInfo cell) {
        boost::asio::post(
            io_, [this, cell = std::move(cell)]() mutable { cell_moved(std::move(cell)); });
      },
      &node_statuses_, &gateway_statuses_};
  api_ = std::make_unique<DaemonApi>(std::move(sources));
  http::ServerOptions options;
  options.address = config_.http_address;
  options.port = static_cast<std::uint16_t>(config_.http_port);
  options.token_file = config_.http_token_file;
  options.access_log = [this](const http::AccessLogEntry& e) {
    metrics_.count_http_response(e.status);
    spdlog::debug("http: {} {} {} -> {} ({} bytes, {} ms)", e.remote, e.method, e.target, e.status,
                  e.bytes_sent, e.duration.count());
  };
  http_ = std::make_unique<http::HttpServer>(io_, *api_, std::move(options));
  if (auto started = http_->start(); !started) {
    spdlog::critical("http: {}", started.error().message);
    http_.reset();
    return false;
  }
  const std::string listening = api_base(config_.http_address, http_->port());
  spdlog::info("http: the operators' API listens on {}{}", listening,
               config_.http_token_file.empty() ? " (changes disabled: no http.token_file)" : "");
  keeper_->set_api_base(announced_api_base(config_, listening));
  return true;
}

}  // namespace cyclecast::daemon
