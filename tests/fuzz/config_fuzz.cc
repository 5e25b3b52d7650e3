// libFuzzer target for cyclecastd's configuration: the TOML text an operator writes, through the
// same parse_config() that load_config_file() and SIGHUP reloads use. Invariants beyond "does not
// crash": a refused file says why (a non-empty message), an accepted one has values inside the
// ranges docs/configuration.md documents, parses the same over its own result, and compares
// with itself without any key needing a restart.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config.h"

namespace daemon = cyclecast::daemon;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void check_ranges(const daemon::Config& config) {
  check(config.mqtt_port >= 1 && config.mqtt_port <= 65535);
  check(config.http_port >= 0 && config.http_port <= 65535);
  check(config.mqtt_reconnect_min_ms > 0);
  check(config.mqtt_reconnect_min_ms <= config.mqtt_reconnect_max_ms);
  check(config.batch_records > 0);
  check(!config.state_dir.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = daemon::parse_config(text, "fuzz.toml");
  if (!parsed) {
    check(!parsed.error().message.empty());
    return 0;
  }
  check_ranges(*parsed);
  check(daemon::keys_needing_restart(*parsed, *parsed).empty());
  // The same text over the accepted result gives the same result.
  auto again = daemon::parse_config(text, "fuzz.toml", *parsed);
  check(again.ok());
  check(daemon::keys_needing_restart(*parsed, *again).empty());
  return 0;
}
