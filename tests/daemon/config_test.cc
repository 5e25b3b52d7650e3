// cyclecastd configuration (docs/configuration.md): defaults, TOML over defaults, and refusal of
// unknown keys and bad values with file, line and reason; reconnect backoff bounds.
#include "config.h"

#include <random>

#include <gtest/gtest.h>

#include "mqtt_client.h"
#include "temp_dir.h"

namespace cyclecast::daemon {
namespace {

TEST(DaemonConfig, EmbeddedDefaultsNeedNoFile) {
  auto config = load_config_file("/nonexistent/cyclecastd.toml", /*missing_ok=*/true);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->mqtt_host, "127.0.0.1");
  EXPECT_EQ(config->mqtt_port, 1883);
  EXPECT_EQ(config->state_dir, "/var/lib/cyclecast");
  EXPECT_EQ(config->database_path(), "/var/lib/cyclecast/cyclecast.db");
}

TEST(DaemonConfig, MissingExplicitFileIsAnError) {
  auto config = load_config_file("/nonexistent/cyclecastd.toml", /*missing_ok=*/false);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kNotFound);
}

TEST(DaemonConfig, FileValuesOverrideDefaults) {
  testing::TempDir dir;
  testing::write_file(dir / "d.toml",
                      "[mqtt]\nhost = \"broker.lab\"\nport = 8883\nclient_id = \"d1\"\n"
                      "[storage]\nstate_dir = \"/srv/cc\"\ndatabase = \"/data/x.db\"\n"
                      "synchronous_full = false\n"
                      "[ingest]\nbatch_records = 500\nbatch_ms = 5\n[log]\nlevel = \"debug\"\n");
  auto config = load_config_file(dir / "d.toml", false);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->mqtt_host, "broker.lab");
  EXPECT_EQ(config->mqtt_port, 8883);
  EXPECT_EQ(config->mqtt_client_id, "d1");
  EXPECT_EQ(config->database_path(), "/data/x.db");
  EXPECT_FALSE(config->synchronous_full);
  EXPECT_EQ(config->batch_records, 500u);
  EXPECT_EQ(config->batch_ms, 5);
  EXPECT_EQ(config->log_level, "debug");
}

struct BadConfig {
  const char* name;
  std::string text;
  std::string message;
};

class DaemonBadConfig : public ::testing::TestWithParam<BadConfig> {};

TEST_P(DaemonBadConfig, IsRefusedWithFileLineAndReason) {
  auto config = parse_config(GetParam().text, "cyclecastd.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, DaemonBadConfig,
    ::testing::Values(
        BadConfig{"UnknownKey", "[mqtt]\nhost = \"h\"\nprot = 1\n",
                  "cyclecastd.toml:3:8: key 'mqtt.prot': unknown key"},
        BadConfig{"UnknownSection", "[mqqt]\nhost = \"h\"\n",
                  "cyclecastd.toml:1:1: key 'mqqt': unknown section (mqtt, storage, ingest, log)"},
        BadConfig{"PortAsString", "[mqtt]\nport = \"1883\"\n",
                  "cyclecastd.toml:2:8: key 'mqtt.port': expected an integer"},
        BadConfig{"PortOutOfRange", "[mqtt]\nport = 70000\n",
                  "cyclecastd.toml:2:8: key 'mqtt.port': must be in [1, 65535], got 70000"},
        BadConfig{"EmptyHost", "[mqtt]\nhost = \"\"\n",
                  "cyclecastd.toml:2:8: key 'mqtt.host': must not be empty"},
        BadConfig{"BatchZero", "[ingest]\nbatch_records = 0\n",
                  "cyclecastd.toml:2:17: key 'ingest.batch_records': must be in [1, 1000000], "
                  "got 0"},
        BadConfig{"SyncNotBool", "[storage]\nsynchronous_full = 1\n",
                  "cyclecastd.toml:2:20: key 'storage.synchronous_full': expected true or false"},
        BadConfig{"BadLogLevel", "[log]\nlevel = \"loud\"\n",
                  "cyclecastd.toml:2:9: key 'log.level': unknown level 'loud' (trace, debug, "
                  "info, warn, error, critical, off)"},
        BadConfig{"TopLevelKey", "port = 1\n",
                  "cyclecastd.toml:1:8: key 'port': unknown section (mqtt, storage, ingest, log)"},
        BadConfig{"CertWithoutKey", "[mqtt]\ntls_cert_file = \"c.pem\"\n",
                  "cyclecastd.toml: keys 'mqtt.tls_cert_file' and 'mqtt.tls_key_file' go "
                  "together"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(DaemonConfig, SyntaxErrorsNameFileAndLine) {
  auto config = parse_config("[mqtt]\nhost = \n", "x.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kParse);
  EXPECT_EQ(config.error().message.rfind("x.toml:2:", 0), 0u) << config.error().message;
}

TEST(DaemonConfig, ReloadTellsWhichKeysNeedARestart) {
  Config before;
  Config after = before;
  after.log_level = "debug";
  after.batch_records = 10;
  EXPECT_TRUE(keys_needing_restart(before, after).empty());
  after.mqtt_port = 1884;
  after.state_dir = "/tmp";
  EXPECT_EQ(keys_needing_restart(before, after),
            (std::vector<std::string>{"mqtt.port", "storage.state_dir"}));
}

TEST(DaemonReconnect, DelayDoublesUpToTheCapWithJitterInTheUpperHalf) {
  std::mt19937 rng(7);
  for (int attempt = 0; attempt < 12; ++attempt) {
    long long full = 100;
    for (int i = 0; i < attempt; ++i)
      full = std::min(full * 2, 5000LL);
    for (int draw = 0; draw < 50; ++draw) {
      const int delay = reconnect_delay_ms(attempt, 100, 5000, rng);
      EXPECT_GE(delay, full / 2) << "attempt " << attempt;
      EXPECT_LE(delay, full) << "attempt " << attempt;
    }
  }
}

}  // namespace
}  // namespace cyclecast::daemon
