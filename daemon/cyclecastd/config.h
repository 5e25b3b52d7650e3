// cyclecastd's configuration: embedded defaults, a TOML file over them, command-line flags over
// both. Every key is documented in docs/configuration.md. An unknown key or a bad value refuses
// the whole file with "FILE:LINE:COLUMN: key 'section.key': reason".
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::daemon {

inline constexpr std::string_view kDefaultConfigPath = "/etc/cyclecast/cyclecastd.toml";

struct Config {
  // [mqtt]
  std::string mqtt_host = "127.0.0.1";
  int mqtt_port = 1883;
  std::string mqtt_client_id = "cyclecastd";  // stable: the broker keeps our session under it
  int mqtt_keepalive_s = 30;
  std::string mqtt_username;
  std::string mqtt_password;
  std::string mqtt_tls_ca_file;    // non-empty: connect with TLS, verifying the broker
  std::string mqtt_tls_cert_file;  // client certificate (with key file) for mutual TLS
  std::string mqtt_tls_key_file;
  int mqtt_reconnect_min_ms = 500;
  int mqtt_reconnect_max_ms = 30000;
  std::size_t mqtt_max_payload_bytes = 256 * 1024;
  // [storage]
  std::string state_dir = "/var/lib/cyclecast";
  std::string database = "cyclecast.db";  // relative to state_dir unless absolute
  // A postgresql:// URL: the PostgreSQL backend instead of `database`. Refused for now, with
  // what is missing (kPostgresqlNotYet); docs/storage.md, "Backends".
  std::string storage_url;
  bool synchronous_full = true;
  std::int64_t max_size_mb = 0;  // the database never grows past this; 0: no limit
  // [ingest]
  std::size_t batch_records = 2000;  // commit when this many records are pending...
  int batch_ms = 5;                  // ...or when the oldest pending one is this old
  // [log]
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off
  // [http]: the operators' API (docs/api.md)
  bool http_enabled = true;
  std::string http_address = "127.0.0.1";  // anything but loopback: a warning (no TLS)
  int http_port = 8080;                    // 0: a free port, logged
  std::string http_token_file;             // empty: retrain/promote/rollback answer 403
  // Where clients reach the API ("https://lab.example/cyclecast"), for the champion
  // announcement's url; empty: built from http_address and the port.
  std::string http_public_url;
  // [retrain]: when and how (docs/lifecycle.md); 0 turns a trigger off
  int retrain_interval_h = 24;
  std::int64_t retrain_new_cycles = 20000;
  int retrain_min_gap_min = 10;
  std::int64_t retrain_min_cycles = 2000;  // no automatic run on fewer cycles stored
  int retrain_check_s = 30;  // how often the triggers and the live error are looked at
  double retrain_margin = 0.0;
  std::int64_t retrain_max_flash_bytes = 0;  // deployment budget; 0: no limit
  std::int64_t retrain_max_ram_bytes = 0;
  std::int64_t retrain_max_instructions = 0;
  std::int64_t retrain_window = 100;   // W: cycles of history per forecast
  std::int64_t retrain_horizon = 100;  // H: cycles forecast
  std::int64_t retrain_train_stride = 1;
  std::string retrain_teacher = "auto";  // auto, dlnet, liquid
  std::vector<std::int64_t> retrain_widths = {64, 32, 16, 8, 4};
  std::int64_t retrain_features = 8;
  std::vector<double> retrain_prune_ratios = {0.25, 0.5, 0.75};
  std::int64_t retrain_calibration_windows = 2048;
  bool retrain_lower_priority = true;  // nice 19 and SCHED_IDLE, so that ingestion keeps its pace
  double retrain_teacher_budget_s = 300;
  std::int64_t retrain_teacher_max_epochs = 40;
  std::int64_t retrain_student_epochs = 30;
  std::int64_t retrain_student_steps = 7200;
  std::int64_t retrain_stage2_epochs = 12;
  std::int64_t retrain_stage2_steps = 2400;
  int retrain_threads = 0;  // 0: every hardware thread but one (at least one)
  bool retrain_keep_snapshot = false;
  std::string retrain_measure = "auto";  // auto, on, off: the student's footprint on the target
  // [alerts]: a champion whose live error at +H exceeds factor x its held-out error at +H
  double alert_live_error_factor = 2.0;
  std::int64_t alert_min_scored = 50;  // forecasts scored at +H before it is judged
  bool alert_retrain = true;           // start a run (trigger "live_error") when raised
  // Drift of the champion's live errors (docs/lifecycle.md, "Drift"): a Page-Hinkley test on
  // |error at +H| / held-out MAE at +H of its host forecasts. threshold 0 turns it off.
  double alert_drift_threshold = 100.0;  // lambda, in held-out MAEs
  double alert_drift_delta = 1.0;        // the rise tolerated, in held-out MAEs
  std::int64_t alert_drift_min_samples = 30;
  bool alert_drift_retrain = true;  // start a run (trigger "drift") when detected
  // That run starts once this many cycles (all cells) were stored after the detection, so that
  // it trains on the new regime; 0: at once.
  std::int64_t alert_drift_retrain_after_cycles = 0;

  std::filesystem::path database_path() const;
  std::int64_t max_size_bytes() const { return max_size_mb * 1024 * 1024; }  // 0: no limit
};

// Limits on the configuration text, checked before toml++ reads it (docs/configuration.md): the
// packaged file is 4 KiB; toml++ bounds nested values (256) but not key paths, and a dotted key
// or table header 100,000 levels deep overflows the stack when its tables are destroyed.
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;
inline constexpr std::size_t kMaxConfigDotsPerLine = 64;

// Applies the TOML `text` over `base`. `source_name` prefixes error messages.
Result<Config> parse_config(std::string_view text, const std::string& source_name,
                            Config base = {});
// Reads and applies a file. A missing file is an error unless `missing_ok` (the default path).
Result<Config> load_config_file(const std::filesystem::path& path, bool missing_ok,
                                Config base = {});

// Keys whose values differ between `before` and `after` that only a restart applies (SIGHUP
// reloads log.level, storage.max_size_mb, the ingest.* keys, the retrain triggers and the alerts.*
// keys).
std::vector<std::string> keys_needing_restart(const Config& before, const Config& after);

}  // namespace cyclecast::daemon
