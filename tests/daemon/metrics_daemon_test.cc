// /metrics of the running cyclecastd read by parsers the project did not write: Debian's
// python3-prometheus-client (tests/daemon/check_metrics.py), and Prometheus' promtool where it is
// installed (docs/daemon.md, "Metrics"). The database holds scored forecasts of two models from
// two origins, so that the labelled live-error families have several samples each.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cyclecast/http/client.h"
#include "cyclecast/storage/database.h"
#include "fading_cells.h"
#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kCycles = 40;

storage::ForecastRecord forecast(const std::string& cell, const std::string& model,
                                 const std::string& origin, float offset) {
  storage::ForecastRecord f;
  f.cell_id = cell;
  f.at_cycle = 20;
  f.model_version = model;
  f.origin = origin;
  for (std::int64_t k = 1; k <= 10; ++k)
    f.soh.push_back(static_cast<float>(fading_soh(0, 20 + k)) - offset);
  return f;
}

// Two cells with forecasts of models m-a (host) and m-b (an edge node), scored at +10 (= +H).
void write_scored_forecasts(const std::filesystem::path& db_path) {
  write_fading_cells(db_path, 2, kCycles);
  auto db = storage::Database::open(db_path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  const std::vector<storage::ForecastRecord> forecasts = {
      forecast("t0", "m-a", "host", 0.01F), forecast("t1", "m-a", "host", 0.02F),
      forecast("t0", "m-b", "edge:node-1", 0.03F)};
  ASSERT_TRUE(db->write_forecasts(forecasts).ok());
  const std::vector<std::string> cells = {"t0", "t1"};
  auto scored = db->score_forecasts(cells);
  ASSERT_TRUE(scored.ok()) << scored.error().message;
  auto live = db->live_errors();
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 2u);
}

// Runs `command` with its stdout and stderr into `log`; the exit status, -1 when it did not exit.
int run(const std::string& command, const std::filesystem::path& log) {
  const int status = std::system((command + " >'" + log.string() + "' 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class MetricsDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "state");
    ASSERT_NO_FATAL_FAILURE(write_scored_forecasts(dir_ / "state" / "cyclecast.db"));
    broker_.start();
    std::ofstream(dir_ / "cyclecastd.toml") << "[retrain]\ninterval_h = 0\nnew_cycles = 0\n";
    daemon_ =
        std::make_unique<DaemonProcess>(dir_ / "state", broker_.port(), dir_ / "cyclecastd.toml");
    daemon_->start();
    ASSERT_TRUE(eventually([&] { return daemon_->api_port() > 0; }, 10s));
    http::ClientOptions options;
    options.base_url = "http://127.0.0.1:" + std::to_string(daemon_->api_port());
    auto api = http::ApiClient::create(options);
    ASSERT_TRUE(api.ok());
    // An answer of each kind first, so that the response counter has samples.
    ASSERT_TRUE(api->get("/api/v1/cells/nope").ok());
    auto metrics = api->get("/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.error().message;
    ASSERT_EQ(metrics->status, 200u);
    text_ = metrics->body;
    std::ofstream(metrics_file_) << text_;
  }

  TempDir dir_;
  Broker broker_{dir_.path(), free_port()};
  std::unique_ptr<DaemonProcess> daemon_;
  std::filesystem::path metrics_file_ = dir_ / "metrics.txt";
  std::string text_;
};

TEST_F(MetricsDaemon, PrometheusClientParsesEveryFamilyOnceWithItsLabels) {
  // Debian's interpreter: its python3-prometheus-client, whatever python3 comes first on PATH.
  const auto log = dir_ / "check.txt";
  const int status =
      run("/usr/bin/python3 '" CYCLECAST_SOURCE_DIR "/tests/daemon/check_metrics.py' '" +
              metrics_file_.string() + "'",
          log);
  EXPECT_EQ(status, 0) << read_text(log) << "\n/metrics:\n" << text_;
  EXPECT_EQ(read_text(log).rfind("ok: ", 0), 0u) << read_text(log);
}

TEST_F(MetricsDaemon, LiveErrorSamplesFollowTheirOwnFamilyHeader) {
  // The defect the parser saw, checked on the text itself: after "# TYPE cyclecast_live_mae_ratio"
  // come its samples only, then the next family's header.
  const auto mae = text_.find("# TYPE cyclecast_live_mae_ratio gauge\n");
  const auto scored = text_.find("# HELP cyclecast_live_scored ");
  ASSERT_NE(mae, std::string::npos) << text_;
  ASSERT_NE(scored, std::string::npos) << text_;
  ASSERT_LT(mae, scored);
  EXPECT_EQ(text_.find("cyclecast_live_scored{", scored), text_.find("cyclecast_live_scored{"));
  EXPECT_EQ(text_.find("\ncyclecast_live_mae_ratio{", scored), std::string::npos) << text_;
  EXPECT_NE(text_.find("process_cpu_seconds_total "), std::string::npos);
  EXPECT_NE(text_.find("cyclecast_build_info{version=\""), std::string::npos);
}

TEST_F(MetricsDaemon, PromtoolFindsNoProblem) {
  // scripts/setup takes promtool out of Debian's prometheus package into tests/tools (the
  // package itself would start a Prometheus server; docs/daemon.md, "Metrics");
  // $CYCLECAST_PROMTOOL, or promtool on PATH, runs instead where set up otherwise.
  const char* configured = std::getenv("CYCLECAST_PROMTOOL");
  const std::filesystem::path set_up = CYCLECAST_SOURCE_DIR "/tests/tools/promtool";
  const std::string promtool = configured != nullptr && *configured != '\0' ? configured
                               : std::filesystem::exists(set_up)            ? set_up.string()
                                                                            : "promtool";
  if (run("command -v '" + promtool + "'", dir_ / "which.txt") != 0) {
    GTEST_SKIP() << "promtool not found: run scripts/setup";
  }
  const auto log = dir_ / "promtool.txt";
  EXPECT_EQ(run("'" + promtool + "' check metrics <'" + metrics_file_.string() + "'", log), 0)
      << read_text(log);
  EXPECT_EQ(read_text(log), "") << read_text(log);
}

}  // namespace
}  // namespace cyclecast::testing
