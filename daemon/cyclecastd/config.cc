#include "config.h"

#include <fstream>
#include <functional>
#include <sstream>
#include <system_error>
#include <type_traits>

#include <toml++/toml.h>

#include "cyclecast/storage/database.h"

namespace cyclecast::daemon {
namespace {

// Sets one key from its TOML node; returns an empty string or why the value is refused.
using Setter = std::function<std::string(const toml::node&, Config&)>;
// Renders the current value, to tell which keys a reload changed.
using Getter = std::function<std::string(const Config&)>;

struct Access {
  Setter set;
  Getter get;
};

struct Key {
  std::string_view section;
  std::string_view name;
  bool reloadable;
  Access access;
};

Access text(std::string Config::*member, bool allow_empty = true) {
  return {[member, allow_empty](const toml::node& node, Config& config) -> std::string {
            const auto value = node.value<std::string>();
            if (!node.is_string() || !value) return "expected a string";
            if (!allow_empty && value->empty()) return "must not be empty";
            config.*member = *value;
            return {};
          },
          [member](const Config& config) { return config.*member; }};
}

template <typename T>
Access integer(T Config::*member, std::int64_t min, std::int64_t max) {
  return {[member, min, max](const toml::node& node, Config& config) -> std::string {
            if (!node.is_integer()) return "expected an integer";
            const std::int64_t value = *node.value<std::int64_t>();
            if (value < min || value > max) {
              return "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                     std::to_string(value);
            }
            config.*member = static_cast<T>(value);
            return {};
          },
          [member](const Config& config) { return std::to_string(config.*member); }};
}

std::string show(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

Access number(double Config::*member, double min, double max) {
  return {[member, min, max](const toml::node& node, Config& config) -> std::string {
            if (!node.is_number()) return "expected a number";
            const double value = *node.value<double>();
            if (!(value >= min && value <= max)) {
              return "must be in [" + show(min) + ", " + show(max) + "], got " + show(value);
            }
            config.*member = value;
            return {};
          },
          [member](const Config& config) { return show(config.*member); }};
}

template <typename T>
std::string join(const std::vector<T>& values) {
  std::ostringstream out;
  for (std::size_t i = 0; i < values.size(); ++i)
    out << (i > 0 ? "," : "") << values[i];
  return out.str();
}

// A non-empty array of integers or numbers, each within [min, max].
template <typename T>
Access list(std::vector<T> Config::*member, double min, double max, bool allow_empty) {
  return {[member, min, max, allow_empty](const toml::node& node, Config& config) -> std::string {
            const toml::array* array = node.as_array();
            const char* kind = std::is_integral_v<T> ? "integers" : "numbers";
            if (array == nullptr) return std::string("expected an array of ") + kind;
            if (array->empty() && !allow_empty) return "must not be empty";
            std::vector<T> values;
            for (const toml::node& item : *array) {
              const bool fits = std::is_integral_v<T> ? item.is_integer() : item.is_number();
              if (!fits) return std::string("expected an array of ") + kind;
              const T value = *item.value<T>();
              if (!(static_cast<double>(value) >= min && static_cast<double>(value) <= max)) {
                return "every value must be in [" + show(min) + ", " + show(max) + "], got " +
                       show(static_cast<double>(value));
              }
              values.push_back(value);
            }
            config.*member = std::move(values);
            return {};
          },
          [member](const Config& config) { return join(config.*member); }};
}

Access one_of(std::string Config::*member, std::vector<std::string> choices) {
  return {[member, choices](const toml::node& node, Config& config) -> std::string {
            const auto value = node.value<std::string>();
            if (!node.is_string() || !value) return "expected a string";
            for (const auto& choice : choices) {
              if (*value == choice) {
                config.*member = *value;
                return {};
              }
            }
            return "unknown value '" + *value + "' (" + join(choices) + ")";
          },
          [member](const Config& config) { return config.*member; }};
}

// An http:// or https:// URL with a host, kept without a trailing '/' (paths are appended).
Access base_url(std::string Config::*member) {
  return {[member](const toml::node& node, Config& config) -> std::string {
            const auto value = node.value<std::string>();
            if (!node.is_string() || !value) return "expected a string";
            std::string url = *value;
            while (!url.empty() && url.back() == '/')
              url.pop_back();
            const auto scheme_end = url.find("://");
            const std::string scheme = url.substr(0, scheme_end);
            if (!url.empty() &&
                (scheme_end == std::string::npos || (scheme != "http" && scheme != "https") ||
                 url.size() == scheme_end + 3)) {
              return "expected an http:// or https:// URL with a host, got '" + *value + "'";
            }
            if (url.find_first_of(" \t\r\n?#") != std::string::npos) {
              return "a base URL has no spaces, query or fragment, got '" + *value + "'";
            }
            config.*member = url;
            return {};
          },
          [member](const Config& config) { return config.*member; }};
}

Access boolean(bool Config::*member) {
  return {[member](const toml::node& node, Config& config) -> std::string {
            if (!node.is_boolean()) return "expected true or false";
            config.*member = *node.value<bool>();
            return {};
          },
          [member](const Config& config) { return std::string(config.*member ? "1" : "0"); }};
}

std::string set_log_level(const toml::node& node, Config& config) {
  const auto value = node.value<std::string>();
  if (!node.is_string() || !value) return "expected a string";
  for (std::string_view level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (*value == level) {
      config.log_level = *value;
      return {};
    }
  }
  return "unknown level '" + *value + "' (trace, debug, info, warn, error, critical, off)";
}

// storage.url: a PostgreSQL URL (libpq's syntax); anything else is a mistake worth naming.
Access storage_url() {
  return {[](const toml::node& node, Config& config) -> std::string {
            const auto value = node.value<std::string>();
            if (!node.is_string() || !value) return "expected a string";
            if (!value->empty() && !storage::is_postgresql_url(*value)) {
              return "expected a postgresql:// URL (an SQLite file is storage.database)";
            }
            config.storage_url = *value;
            return {};
          },
          [](const Config& config) { return config.storage_url; }};
}

// Why cyclecastd refuses storage.url until every part of it runs on PostgreSQL: a daemon whose
// records go to one database and whose forecasts, models and checks go to another (or nowhere)
// would half-work.
constexpr const char* kPostgresqlNotYet =
    "cyclecastd cannot run on PostgreSQL yet: the storage module stores cells, cycles, "
    "rejected records, forecasts (with their scoring) and the model registry there, but "
    "retraining snapshots, the models' files and bundles (still under the state directory), the "
    "database checks, checkpoints and backups, and the daemon's wiring are not on PostgreSQL yet "
    "(docs/storage.md, \"Backends\"); remove storage.url to use the SQLite database of "
    "storage.database";

constexpr std::int64_t kMaxCount = 1'000'000'000'000;

const std::vector<Key>& keys() {
  static const std::vector<Key> table = {
      {"mqtt", "host", false, text(&Config::mqtt_host, false)},
      {"mqtt", "port", false, integer(&Config::mqtt_port, 1, 65535)},
      {"mqtt", "client_id", false, text(&Config::mqtt_client_id, false)},
      {"mqtt", "keepalive_s", false, integer(&Config::mqtt_keepalive_s, 5, 3600)},
      {"mqtt", "username", false, text(&Config::mqtt_username)},
      {"mqtt", "password", false, text(&Config::mqtt_password)},
      {"mqtt", "tls_ca_file", false, text(&Config::mqtt_tls_ca_file)},
      {"mqtt", "tls_cert_file", false, text(&Config::mqtt_tls_cert_file)},
      {"mqtt", "tls_key_file", false, text(&Config::mqtt_tls_key_file)},
      {"mqtt", "reconnect_min_ms", false, integer(&Config::mqtt_reconnect_min_ms, 10, 600000)},
      {"mqtt", "reconnect_max_ms", false, integer(&Config::mqtt_reconnect_max_ms, 10, 3600000)},
      {"mqtt", "max_payload_bytes", false,
       integer(&Config::mqtt_max_payload_bytes, 64, 256 * 1024 * 1024)},
      {"storage", "state_dir", false, text(&Config::state_dir, false)},
      {"storage", "database", false, text(&Config::database, false)},
      {"storage", "url", false, storage_url()},
      {"storage", "synchronous_full", false, boolean(&Config::synchronous_full)},
      {"storage", "max_size_mb", true, integer(&Config::max_size_mb, 0, 1 << 30)},
      {"ingest", "batch_records", true, integer(&Config::batch_records, 1, 1000000)},
      {"ingest", "batch_ms", true, integer(&Config::batch_ms, 0, 60000)},
      {"log", "level", true, {set_log_level, [](const Config& c) { return c.log_level; }}},
      {"http", "enabled", false, boolean(&Config::http_enabled)},
      {"http", "address", false, text(&Config::http_address, false)},
      {"http", "port", false, integer(&Config::http_port, 0, 65535)},
      {"http", "token_file", false, text(&Config::http_token_file)},
      {"http", "public_url", false, base_url(&Config::http_public_url)},
      {"retrain", "interval_h", true, integer(&Config::retrain_interval_h, 0, 24 * 366)},
      {"retrain", "new_cycles", true, integer(&Config::retrain_new_cycles, 0, kMaxCount)},
      {"retrain", "min_gap_min", true, integer(&Config::retrain_min_gap_min, 0, 7 * 24 * 60)},
      {"retrain", "min_cycles", true, integer(&Config::retrain_min_cycles, 0, kMaxCount)},
      {"retrain", "check_s", true, integer(&Config::retrain_check_s, 1, 3600)},
      {"retrain", "margin", false, number(&Config::retrain_margin, 0.0, 0.9)},
      {"retrain", "max_flash_bytes", false,
       integer(&Config::retrain_max_flash_bytes, 0, kMaxCount)},
      {"retrain", "max_ram_bytes", false, integer(&Config::retrain_max_ram_bytes, 0, kMaxCount)},
      {"retrain", "max_instructions", false,
       integer(&Config::retrain_max_instructions, 0, kMaxCount)},
      {"retrain", "window", false, integer(&Config::retrain_window, 2, 1000)},
      {"retrain", "horizon", false, integer(&Config::retrain_horizon, 1, 1000)},
      {"retrain", "train_stride", false, integer(&Config::retrain_train_stride, 1, 1000)},
      {"retrain", "teacher", false, one_of(&Config::retrain_teacher, {"auto", "dlnet", "liquid"})},
      {"retrain", "widths", false, list(&Config::retrain_widths, 1, 1024, false)},
      {"retrain", "features", false, integer(&Config::retrain_features, 1, 64)},
      {"retrain", "prune_ratios", false, list(&Config::retrain_prune_ratios, 0.0, 0.95, true)},
      {"retrain", "calibration_windows", false,
       integer(&Config::retrain_calibration_windows, 1, 1000000)},
      {"retrain", "lower_priority", false, boolean(&Config::retrain_lower_priority)},
      {"retrain", "teacher_budget_s", false,
       number(&Config::retrain_teacher_budget_s, 0.1, 7 * 86400.0)},
      {"retrain", "teacher_max_epochs", false,
       integer(&Config::retrain_teacher_max_epochs, 1, 100000)},
      {"retrain", "student_epochs", false, integer(&Config::retrain_student_epochs, 1, 100000)},
      {"retrain", "student_steps", false, integer(&Config::retrain_student_steps, 0, kMaxCount)},
      {"retrain", "stage2_epochs", false, integer(&Config::retrain_stage2_epochs, 1, 100000)},
      {"retrain", "stage2_steps", false, integer(&Config::retrain_stage2_steps, 0, kMaxCount)},
      {"retrain", "threads", false, integer(&Config::retrain_threads, 0, 1024)},
      {"retrain", "keep_snapshot", false, boolean(&Config::retrain_keep_snapshot)},
      {"retrain", "measure", false, one_of(&Config::retrain_measure, {"auto", "on", "off"})},
      {"alerts", "live_error_factor", true, number(&Config::alert_live_error_factor, 1.0, 1000.0)},
      {"alerts", "min_scored", true, integer(&Config::alert_min_scored, 1, kMaxCount)},
      {"alerts", "retrain", true, boolean(&Config::alert_retrain)},
      {"alerts", "drift_threshold", true, number(&Config::alert_drift_threshold, 0.0, 1e9)},
      {"alerts", "drift_delta", true, number(&Config::alert_drift_delta, 0.0, 1000.0)},
      {"alerts", "drift_min_samples", true,
       integer(&Config::alert_drift_min_samples, 1, kMaxCount)},
      {"alerts", "drift_retrain", true, boolean(&Config::alert_drift_retrain)},
      {"alerts", "drift_retrain_after_cycles", true,
       integer(&Config::alert_drift_retrain_after_cycles, 0, kMaxCount)},
  };
  return table;
}

const Key* find_key(std::string_view section, std::string_view name) {
  for (const Key& key : keys()) {
    if (key.section == section && key.name == name) return &key;
  }
  return nullptr;
}

bool known_section(std::string_view section) {
  for (const Key& key : keys()) {
    if (key.section == section) return true;
  }
  return false;
}

std::string where(const std::string& source, const toml::source_region& region) {
  return source + ":" + std::to_string(region.begin.line) + ":" +
         std::to_string(region.begin.column);
}

Error config_error(const std::string& source, const toml::source_region& region,
                   const std::string& key, const std::string& reason) {
  return make_error(ErrorCode::kInvalidArgument,
                    where(source, region) + ": key '" + key + "': " + reason);
}

// Why `text` is refused before parsing (kMaxConfigBytes, kMaxConfigDotsPerLine), or empty. A key
// path lies on one line, so dots outside quoted strings per line bound the depth of every table
// it creates; legitimate lines have a few (a float, a dotted key).
std::string check_limits(std::string_view text, const std::string& source) {
  if (text.size() > kMaxConfigBytes) {
    return source + ": " + std::to_string(text.size()) + " bytes, more than the limit of " +
           std::to_string(kMaxConfigBytes);
  }
  std::size_t line = 1;
  std::size_t dots = 0;
  char quote = 0;  // the quote character of the string being skipped, or 0
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      dots = 0;
      quote = 0;  // a multi-line string's lines are counted too: only ever more refusals
    } else if (quote != 0) {
      if (c == '\\' && quote == '"') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '.' && ++dots > kMaxConfigDotsPerLine) {
      return source + ":" + std::to_string(line) + ": more than " +
             std::to_string(kMaxConfigDotsPerLine) + " dots in one line (keys nest too deep)";
    }
  }
  return {};
}

}  // namespace

std::filesystem::path Config::database_path() const {
  const std::filesystem::path db(database);
  return db.is_absolute() ? db : std::filesystem::path(state_dir) / db;
}

Result<Config> parse_config(std::string_view text, const std::string& source_name, Config base) {
  if (auto reason = check_limits(text, source_name); !reason.empty()) {
    return make_error(ErrorCode::kParse, std::move(reason));
  }
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kParse,
                      where(source_name, e.source()) + ": " + std::string(e.description()));
  }
  Config config = std::move(base);
  for (const auto& [section_key, section_node] : root) {
    const std::string section(section_key.str());
    if (!known_section(section)) {
      return config_error(source_name, section_node.source(), section,
                          "unknown section (mqtt, storage, ingest, log, http, retrain, alerts)");
    }
    const toml::table* table = section_node.as_table();
    if (table == nullptr) {
      return config_error(source_name, section_node.source(), section, "expected a [table]");
    }
    for (const auto& [name_key, node] : *table) {
      const std::string name(name_key.str());
      const std::string id = section + "." + name;
      const Key* key = find_key(section, name);
      if (key == nullptr) return config_error(source_name, node.source(), id, "unknown key");
      if (auto reason = key->access.set(node, config); !reason.empty()) {
        return config_error(source_name, node.source(), id, reason);
      }
    }
  }
  if (config.mqtt_reconnect_max_ms < config.mqtt_reconnect_min_ms) {
    return make_error(ErrorCode::kInvalidArgument,
                      source_name + ": key 'mqtt.reconnect_max_ms': must be >= reconnect_min_ms");
  }
  if (!config.storage_url.empty()) {
    return make_error(ErrorCode::kUnsupported,
                      source_name + ": key 'storage.url': " + kPostgresqlNotYet);
  }
  if (config.mqtt_tls_cert_file.empty() != config.mqtt_tls_key_file.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      source_name +
                          ": keys 'mqtt.tls_cert_file' and 'mqtt.tls_key_file' go "
                          "together");
  }
  return config;
}

Result<Config> load_config_file(const std::filesystem::path& path, bool missing_ok, Config base) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (missing_ok) return base;
    return make_error(ErrorCode::kNotFound, path.string() + ": configuration file not found");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path.string() + ": cannot be read");
  // Read at most one byte over the limit: parse_config refuses it without the rest in memory.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return parse_config(text, path.string(), std::move(base));
}

std::vector<std::string> keys_needing_restart(const Config& before, const Config& after) {
  std::vector<std::string> changed;
  for (const Key& key : keys()) {
    if (key.reloadable) continue;
    if (key.access.get(before) != key.access.get(after)) {
      changed.push_back(std::string(key.section) + "." + std::string(key.name));
    }
  }
  return changed;
}

}  // namespace cyclecast::daemon
