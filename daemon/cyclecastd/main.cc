// cyclecastd: takes cycle telemetry over MQTT into SQLite, forecasts, retrains and serves the
// operators' API (docs/daemon.md). Configuration:
// embedded defaults < TOML file < flags. Exceptions stop here, at the process edge.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "config.h"
#include "cyclecast/lifecycle/training_worker.h"
#include "daemon.h"

namespace {

using cyclecast::Result;
using cyclecast::daemon::Config;

// Flags given on the command line; each overrides its configuration key.
struct Flags {
  std::string config_path{cyclecast::daemon::kDefaultConfigPath};
  bool config_given = false;
  std::optional<std::string> state_dir, database, host, client_id, log_level;
  std::optional<int> port, batch_ms, http_port;
  std::optional<std::string> token_file;
  std::optional<std::size_t> batch_records;
};

Result<Config> load(const Flags& flags) {
  auto config = cyclecast::daemon::load_config_file(flags.config_path, !flags.config_given);
  if (!config) return config;
  if (flags.state_dir) config->state_dir = *flags.state_dir;
  if (flags.database) config->database = *flags.database;
  if (flags.host) config->mqtt_host = *flags.host;
  if (flags.port) config->mqtt_port = *flags.port;
  if (flags.client_id) config->mqtt_client_id = *flags.client_id;
  if (flags.log_level) config->log_level = *flags.log_level;
  if (flags.batch_records) config->batch_records = *flags.batch_records;
  if (flags.batch_ms) config->batch_ms = *flags.batch_ms;
  if (flags.http_port) config->http_port = *flags.http_port;
  if (flags.token_file) config->http_token_file = *flags.token_file;
  return config;
}

// Under systemd (stderr connected to the journal) log through the journal's native protocol,
// which keeps levels; otherwise to stderr.
void setup_logging(const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    logger = std::make_shared<spdlog::logger>(
        "cyclecastd", std::make_shared<spdlog::sinks::systemd_sink_mt>("cyclecastd"));
    logger->set_pattern("%v");
  } else {
    logger = std::make_shared<spdlog::logger>("cyclecastd",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e cyclecastd %l: %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace

int main(int argc, char** argv) {
  // A retraining run's training process (lifecycle/training_worker.h), started by this daemon.
  if (argc == 3 && std::string_view(argv[1]) == cyclecast::lifecycle::kTrainingWorkerFlag) {
    return cyclecast::lifecycle::training_worker_main(argv[2]);
  }
  CLI::App app{
      "cyclecastd: takes battery cycle telemetry over MQTT into SQLite, forecasts every cell's SOH "
      "with the champion model, retrains and promotes models, and serves the operators' HTTP API "
      "(docs/daemon.md)."};
  Flags flags;
  bool check_only = false;
  auto* config_option = app.add_option("-c,--config", flags.config_path, "TOML configuration file")
                            ->capture_default_str();
  app.add_option("--state-dir", flags.state_dir, "state directory (storage.state_dir)");
  app.add_option("--database", flags.database, "database file (storage.database)");
  app.add_option("--mqtt-host", flags.host, "broker host (mqtt.host)");
  app.add_option("--mqtt-port", flags.port, "broker port (mqtt.port)")->check(CLI::Range(1, 65535));
  app.add_option("--client-id", flags.client_id, "MQTT client id (mqtt.client_id)");
  app.add_option("--log-level", flags.log_level, "log level (log.level)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--batch-records", flags.batch_records,
                 "records per commit (ingest.batch_records)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--batch-ms", flags.batch_ms, "longest wait before a commit (ingest.batch_ms)")
      ->check(CLI::Range(0, 60000));
  app.add_option("--http-port", flags.http_port, "operators' API port, 0: a free one (http.port)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--token-file", flags.token_file,
                 "bearer token file of the API's changes (http.token_file)");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  flags.config_given = config_option->count() > 0;

  try {
    auto config = load(flags);
    if (!config) {
      std::cerr << "cyclecastd: " << config.error().message << '\n';
      return 2;
    }
    if (check_only) {
      std::cout << "configuration ok; database " << config->database_path().string() << ", broker "
                << config->mqtt_host << ':' << config->mqtt_port << '\n';
      return 0;
    }
    setup_logging(config->log_level);
    cyclecast::daemon::Daemon daemon(*config, [flags] { return load(flags); });
    return daemon.run();
  } catch (const std::exception& e) {
    std::cerr << "cyclecastd: " << e.what() << '\n';
    return 1;
  }
}
