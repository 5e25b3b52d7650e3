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
  bool synchronous_full = true;
  // [ingest]
  std::size_t batch_records = 2000;  // commit when this many records are pending...
  int batch_ms = 5;                  // ...or when the oldest pending one is this old
  // [log]
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off

  std::filesystem::path database_path() const;
};

// Applies the TOML `text` over `base`. `source_name` prefixes error messages.
Result<Config> parse_config(std::string_view text, const std::string& source_name,
                            Config base = {});
// Reads and applies a file. A missing file is an error unless `missing_ok` (the default path).
Result<Config> load_config_file(const std::filesystem::path& path, bool missing_ok,
                                Config base = {});

// Keys whose values differ between `before` and `after` that only a restart applies (SIGHUP
// reloads log.level and the ingest.* keys).
std::vector<std::string> keys_needing_restart(const Config& before, const Config& after);

}  // namespace cyclecast::daemon
