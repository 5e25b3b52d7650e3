// cyclecastd configuration (docs/configuration.md): defaults, TOML over defaults, and refusal of
// unknown keys and bad values with file, line and reason.
#include "config.h"

#include <gtest/gtest.h>

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

TEST(DaemonConfig, LifecycleSectionsOverrideTheirDefaults) {
  auto config = parse_config(
      "[http]\nenabled = false\naddress = \"::1\"\nport = 0\ntoken_file = \"/etc/t\"\n"
      "public_url = \"https://lab.example/cyclecast/\"\n"
      "[retrain]\ninterval_h = 0\nnew_cycles = 500\nmargin = 0\nteacher_budget_s = 2\n"
      "student_steps = 10\nmax_ram_bytes = 65536\nwidths = [8, 4]\nprune_ratios = []\n"
      "teacher = \"liquid\"\nwindow = 20\nhorizon = 10\n"
      "[alerts]\nlive_error_factor = 3\nmin_scored = 5\nretrain = false\n"
      "drift_threshold = 0\ndrift_delta = 0.5\ndrift_min_samples = 100\ndrift_retrain = false\n",
      "d.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(config->http_enabled);
  EXPECT_EQ(config->http_address, "::1");
  EXPECT_EQ(config->http_port, 0);
  EXPECT_EQ(config->http_token_file, "/etc/t");
  EXPECT_EQ(config->http_public_url, "https://lab.example/cyclecast");  // paths are appended
  EXPECT_EQ(config->retrain_interval_h, 0);
  EXPECT_EQ(config->retrain_new_cycles, 500);
  EXPECT_EQ(config->retrain_margin, 0.0);  // an integer is accepted where a number is expected
  EXPECT_EQ(config->retrain_teacher_budget_s, 2.0);
  EXPECT_EQ(config->retrain_student_steps, 10);
  EXPECT_EQ(config->retrain_max_ram_bytes, 65536);
  EXPECT_EQ(config->retrain_widths, (std::vector<std::int64_t>{8, 4}));
  EXPECT_TRUE(config->retrain_prune_ratios.empty());
  EXPECT_EQ(config->retrain_teacher, "liquid");
  EXPECT_EQ(config->retrain_window, 20);
  EXPECT_EQ(config->retrain_horizon, 10);
  EXPECT_EQ(config->alert_live_error_factor, 3.0);
  EXPECT_EQ(config->alert_min_scored, 5);
  EXPECT_FALSE(config->alert_retrain);
  EXPECT_EQ(config->alert_drift_threshold, 0.0);  // the drift monitor off
  EXPECT_EQ(config->alert_drift_delta, 0.5);
  EXPECT_EQ(config->alert_drift_min_samples, 100);
  EXPECT_FALSE(config->alert_drift_retrain);
  const Config defaults;
  EXPECT_EQ(defaults.alert_drift_threshold, 100.0);
  EXPECT_EQ(defaults.alert_drift_delta, 1.0);
  EXPECT_EQ(defaults.alert_drift_min_samples, 30);
  EXPECT_TRUE(defaults.alert_drift_retrain);
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
                  "cyclecastd.toml:1:1: key 'mqqt': unknown section (mqtt, storage, ingest, log, "
                  "http, retrain, alerts)"},
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
                  "cyclecastd.toml:1:8: key 'port': unknown section (mqtt, storage, ingest, log, "
                  "http, retrain, alerts)"},
        BadConfig{"MarginOutOfRange", "[retrain]\nmargin = 1.5\n",
                  "cyclecastd.toml:2:10: key 'retrain.margin': must be in [0, 0.9], got 1.5"},
        BadConfig{"MarginAsString", "[retrain]\nmargin = \"2%\"\n",
                  "cyclecastd.toml:2:10: key 'retrain.margin': expected a number"},
        BadConfig{"NegativeNewCycles", "[retrain]\nnew_cycles = -1\n",
                  "cyclecastd.toml:2:14: key 'retrain.new_cycles': must be in [0, "
                  "1000000000000], got -1"},
        BadConfig{"FactorBelowOne", "[alerts]\nlive_error_factor = 0.5\n",
                  "cyclecastd.toml:2:21: key 'alerts.live_error_factor': must be in [1, 1000], "
                  "got 0.5"},
        BadConfig{"NegativeDriftThreshold", "[alerts]\ndrift_threshold = -1\n",
                  "cyclecastd.toml:2:19: key 'alerts.drift_threshold': must be in [0, 1e+09], "
                  "got -1"},
        BadConfig{"NoDriftSamples", "[alerts]\ndrift_min_samples = 0\n",
                  "cyclecastd.toml:2:21: key 'alerts.drift_min_samples': must be in [1, "
                  "1000000000000], got 0"},
        BadConfig{"NoWidths", "[retrain]\nwidths = []\n",
                  "cyclecastd.toml:2:10: key 'retrain.widths': must not be empty"},
        BadConfig{"WidthNotAnInteger", "[retrain]\nwidths = [8, 4.5]\n",
                  "cyclecastd.toml:2:10: key 'retrain.widths': expected an array of integers"},
        BadConfig{"PruneRatioOutOfRange", "[retrain]\nprune_ratios = [0.5, 1]\n",
                  "cyclecastd.toml:2:16: key 'retrain.prune_ratios': every value must be in "
                  "[0, 0.95], got 1"},
        BadConfig{"UnknownTeacher", "[retrain]\nteacher = \"big\"\n",
                  "cyclecastd.toml:2:11: key 'retrain.teacher': unknown value 'big' (auto,dlnet,"
                  "liquid)"},
        BadConfig{"EmptyHttpAddress", "[http]\naddress = \"\"\n",
                  "cyclecastd.toml:2:11: key 'http.address': must not be empty"},
        BadConfig{"PublicUrlWithoutScheme", "[http]\npublic_url = \"lab.example:8080\"\n",
                  "cyclecastd.toml:2:14: key 'http.public_url': expected an http:// or https:// "
                  "URL with a host, got 'lab.example:8080'"},
        BadConfig{"PublicUrlWithoutHost", "[http]\npublic_url = \"https://\"\n",
                  "cyclecastd.toml:2:14: key 'http.public_url': expected an http:// or https:// "
                  "URL with a host, got 'https://'"},
        BadConfig{"PublicUrlWithQuery", "[http]\npublic_url = \"http://h/?x=1\"\n",
                  "cyclecastd.toml:2:14: key 'http.public_url': a base URL has no spaces, query "
                  "or fragment, got 'http://h/?x=1'"},
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

TEST(DaemonConfig, StorageUrlOtherThanPostgresqlIsRefused) {
  auto config = parse_config("[storage]\nurl = \"mysql://h/db\"\n", "c.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message,
            "c.toml:2:7: key 'storage.url': expected a postgresql:// URL (an SQLite file is "
            "storage.database)");
}

TEST(DaemonConfig, PostgresqlStorageUrlFailsSayingWhatIsNotOnPostgresqlYet) {
  // Until the daemon runs wholly on PostgreSQL, it must not start half on it.
  auto config = parse_config("[storage]\nurl = \"postgresql://db.example/cyclecast\"\n", "c.toml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code, ErrorCode::kUnsupported);
  const std::string& message = config.error().message;
  EXPECT_EQ(message.rfind("c.toml: key 'storage.url': cyclecastd cannot run on PostgreSQL yet", 0),
            0u)
      << message;
  for (const char* missing : {"forecasts", "model registry", "retraining snapshots", "backups"}) {
    EXPECT_NE(message.find(missing), std::string::npos) << missing << " in: " << message;
  }
  EXPECT_NE(message.find("remove storage.url"), std::string::npos) << message;
}

TEST(DaemonConfig, ReloadTellsWhichKeysNeedARestart) {
  Config before;
  Config after = before;
  after.log_level = "debug";
  after.batch_records = 10;
  after.retrain_interval_h = 1;
  after.alert_live_error_factor = 4;
  after.alert_drift_threshold = 50;
  after.alert_drift_retrain = false;
  EXPECT_TRUE(keys_needing_restart(before, after).empty());
  after.mqtt_port = 1884;
  after.state_dir = "/tmp";
  after.http_port = 9000;
  after.retrain_margin = 0.1;
  EXPECT_EQ(
      keys_needing_restart(before, after),
      (std::vector<std::string>{"mqtt.port", "storage.state_dir", "http.port", "retrain.margin"}));
}

}  // namespace
}  // namespace cyclecast::daemon
