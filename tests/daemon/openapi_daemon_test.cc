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
#include "service_fixture.h"

namespace cyclecast::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kOpenApiCells = 8;
constexpr std::int64_t kOpenApiCycles = 120;
constexpr const char* kOpenApiToken = "token-of-the-openapi-test";

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

// No trigger but the API.
class OpenApiDaemon : public ServiceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(seed_service(kOpenApiToken, kOpenApiCells, kOpenApiCycles));
    ASSERT_NO_FATAL_FAILURE(write_openapi_edge_forecast(database()));
    ASSERT_NO_FATAL_FAILURE(
        start_daemon(tiny_service_config(token_file_, "interval_h = 0\nnew_cycles = 0\n")));
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
};

TEST_F(OpenApiDaemon, EveryDocumentedOperationAnswersAsDescribed) {
  // A champion that forecasts cell t0's new cycles, and scores them once +10 has arrived.
  const std::string first = train();
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(eventually(
      [&] { return log().find("forecasting with champion " + first) != std::string::npos; }, 30s))
      << log();
  ASSERT_TRUE(publish_cycles(0, kOpenApiCycles + 1, kOpenApiCycles + 11));
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
      eventually([&] { return fetch("/healthz")["retraining"] == false; }, kServiceRunTimeout))
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
