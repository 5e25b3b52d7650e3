// The running cyclecastd against its OpenAPI description (docs/openapi.json): a real mosquitto,
// the built daemon on a database of generated fading cells, two real (tiny) training runs, so
// that the registry holds a champion and another model with bundles and the runs have reports,
// and cells with scored host and edge forecasts. tests/openapi/check_live.py then calls every
// documented operation, successes and documented errors, and validates every answer with Debian's
// python3-jsonschema (draft 2020-12); and the degraded health answer (503) once the broker is gone.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "cyclecast/storage/database.h"
#include "fading_cells.h"
#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kOpenApiRunTimeout = 300s;  // sanitizer builds train many times slower
constexpr int kOpenApiCells = 8;
constexpr std::int64_t kOpenApiCycles = 120;
constexpr const char* kOpenApiToken = "token-of-the-openapi-test";

// The tiny training of tests/lifecycle/lifecycle_fixture.h, no automatic trigger.
std::string openapi_daemon_config(const std::filesystem::path& token_file) {
  return "[http]\ntoken_file = \"" + token_file.string() +
         "\"\n"
         "[retrain]\ninterval_h = 0\nnew_cycles = 0\ncheck_s = 1\nmin_cycles = 0\nmin_gap_min = 0\n"
         "window = 20\nhorizon = 10\ntrain_stride = 2\nteacher = \"liquid\"\nteacher_budget_s = 1\n"
         "teacher_max_epochs = 2\nwidths = [4]\nfeatures = 3\nprune_ratios = []\n"
         "student_epochs = 2\nstage2_epochs = 1\nstudent_steps = 0\nstage2_steps = 0\n"
         "calibration_windows = 64\nthreads = 2\nlower_priority = false\n";
}

// An edge node's forecast for cell t5 at cycle 100, scored by the cycles already stored, so that
// the description's edge fields ("node", live error by origin) are answered too.
void write_openapi_edge_forecast(const std::filesystem::path& db_path) {
  auto db = storage::Database::open(db_path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  storage::ForecastRecord f;
  f.cell_id = fading_cell_id(5);
  f.at_cycle = 100;
  f.model_version = "m-edge";
  f.origin = "edge:node-7";
  for (std::int64_t k = 1; k <= 10; ++k)
    f.soh.push_back(static_cast<float>(fading_soh(5, 100 + k) - 0.01));
  const std::vector<storage::ForecastRecord> forecasts = {f};
  ASSERT_TRUE(db->write_forecasts(forecasts).ok());
  const std::vector<std::string> cells = {f.cell_id};
  ASSERT_TRUE(db->score_forecasts(cells).ok());
}

// Runs `command` with its stdout and stderr into `log`; the exit status, -1 when it did not exit.
int run_openapi_command(const std::string& command, const std::filesystem::path& log) {
  const int status = std::system((command + " >'" + log.string() + "' 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class OpenApiDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto token_file = dir_ / "api-token";
    std::ofstream(token_file) << kOpenApiToken << "\n";
    ::chmod(token_file.c_str(), 0600);
    std::filesystem::create_directories(dir_ / "state");
    const auto db = dir_ / "state" / "cyclecast.db";
    ASSERT_NO_FATAL_FAILURE(write_fading_cells(db, kOpenApiCells, kOpenApiCycles));
    ASSERT_NO_FATAL_FAILURE(write_openapi_edge_forecast(db));
    broker_.start();
    std::ofstream(dir_ / "cyclecastd.toml") << openapi_daemon_config(token_file);
    daemon_ =
        std::make_unique<DaemonProcess>(dir_ / "state", broker_.port(), dir_ / "cyclecastd.toml");
    daemon_->start();
    ASSERT_TRUE(eventually([&] { return daemon_->api_port() > 0; }, 10s)) << log();
    base_url_ = "http://127.0.0.1:" + std::to_string(daemon_->api_port());
    auto client = http::ApiClient::create({.base_url = base_url_, .token = kOpenApiToken});
    ASSERT_TRUE(client.ok()) << client.error().message;
    api_.emplace(std::move(*client));
  }

  std::string log() const { return daemon_ ? read_text(daemon_->log()) : std::string(); }

  // The JSON of a 200 answer; null for anything else.
  Json fetch(const std::string& path) const {
    auto response = api_->get(path);
    if (!response || response->status != 200) return nullptr;
    return Json::parse(response->body, nullptr, false);
  }

  // Starts a run by hand and waits for it to succeed; its model version.
  std::string train() {
    auto started = api_->post("/api/v1/retrain", Json::object());
    if (!started || started->status != 200) {
      ADD_FAILURE() << "retrain: " << (started ? started->body : started.error().message);
      return {};
    }
    const std::string run =
        "/api/v1/runs/" + std::to_string(Json::parse(started->body)["id"].get<std::int64_t>());
    Json done;
    EXPECT_TRUE(eventually(
        [&] {
          done = fetch(run);
          return done.is_object() && done["status"] != "running";
        },
        kOpenApiRunTimeout))
        << log();
    EXPECT_EQ(done["status"], "succeeded") << done.dump() << log();
    return done["model_version"].is_string() ? done["model_version"].get<std::string>() : "";
  }

  // Runs tests/openapi/check_live.py on the daemon with `mode` ("" or "degraded"); expects it
  // to pass.
  void check_live(const std::string& mode) {
    const auto check_log = dir_ / "check_live.txt";
    const int status = run_openapi_command("/usr/bin/python3 '" CYCLECAST_SOURCE_DIR
                                           "/tests/openapi/check_live.py' '" CYCLECAST_SOURCE_DIR
                                           "/docs/openapi.json' '" +
                                               base_url_ + "' '" + kOpenApiToken + "' " + mode,
                                           check_log);
    const std::string checked = read_text(check_log);
    EXPECT_EQ(status, 0) << checked << "\ndaemon log:\n" << log();
    EXPECT_NE(checked.find("\nok: "), std::string::npos) << checked;
  }

  TempDir dir_;
  Broker broker_{dir_.path(), free_port()};
  std::unique_ptr<DaemonProcess> daemon_;
  std::string base_url_;
  std::optional<http::ApiClient> api_;
};

TEST_F(OpenApiDaemon, EveryDocumentedOperationAnswersAsDescribed) {
  // A champion that forecasts cell t0's new cycles, and scores them once +10 has arrived.
  const std::string first = train();
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(eventually(
      [&] { return log().find("forecasting with champion " + first) != std::string::npos; }, 30s))
      << log();
  Json records = Json::array();
  for (std::int64_t k = kOpenApiCycles + 1; k <= kOpenApiCycles + 11; ++k)
    records.push_back({{"cycle", k}, {"qd_ah", kFadingRatedAh * fading_soh(0, k)}});
  ASSERT_TRUE(
      publish_raw(broker_.port(), "cyclecast/v1/rigs/rig-a/cells/t0/cycles", records.dump()));
  ASSERT_TRUE(eventually(
      [&] {
        const Json model = fetch("/api/v1/models/" + first);
        return model.is_object() && model["live_error"].is_object();
      },
      60s))
      << log();
  // A second model: the champion or a candidate, whichever the gate made it.
  ASSERT_FALSE(train().empty());
  // A gateway's liveness (as cyclecast-gateway's MQTT client publishes it), so that the nodes'
  // answer holds one to validate.
  ASSERT_TRUE(publish_raw(broker_.port(), "cyclecast/v1/daemons/cyclecast-gateway-node-7/status",
                          "online 0123456789abcdef"));
  ASSERT_TRUE(eventually(
      [&] {
        return fetch("/api/v1/nodes").dump().find("cyclecast-gateway-node-7") != std::string::npos;
      },
      30s))
      << log();

  check_live("");
  // The check started a third run: let it end, so that no training process is left writing into
  // the test's directory while it is removed.
  EXPECT_TRUE(
      eventually([&] { return fetch("/healthz")["retraining"] == false; }, kOpenApiRunTimeout))
      << log();
}

TEST_F(OpenApiDaemon, DegradedHealthAnswersAsDescribed) {
  broker_.kill();
  ASSERT_TRUE(eventually(
      [&] {
        auto health = api_->get("/healthz");
        return health.ok() && health->status == 503;
      },
      30s))
      << log();
  check_live("degraded");
}

}  // namespace
}  // namespace cyclecast::testing
