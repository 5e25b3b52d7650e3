#include "config.h"

#include <fstream>
#include <functional>
#include <sstream>
#include <system_error>

#include <toml++/toml.h>

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
      {"storage", "synchronous_full", false, boolean(&Config::synchronous_full)},
      {"ingest", "batch_records", true, integer(&Config::batch_records, 1, 1000000)},
      {"ingest", "batch_ms", true, integer(&Config::batch_ms, 0, 60000)},
      {"log", "level", true, {set_log_level, [](const Config& c) { return c.log_level; }}},
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

}  // namespace

std::filesystem::path Config::database_path() const {
  const std::filesystem::path db(database);
  return db.is_absolute() ? db : std::filesystem::path(state_dir) / db;
}

Result<Config> parse_config(std::string_view text, const std::string& source_name, Config base) {
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
                          "unknown section (mqtt, storage, ingest, log)");
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
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path.string(), std::move(base));
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
