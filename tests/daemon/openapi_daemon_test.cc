// The running cyclecastd against its OpenAPI description (docs/openapi.json): a real mosquitto,
// the built daemon on a database of generated fading cells, two real (tiny) training runs, so
// that the registry holds a champion and another model with bundles and the runs have reports,
// and cells with scored host and edge forecasts. tests/openapi/check_live.py then calls every
// documented operation, successes and documented errors, and validates every answer with Debian's
// python3-jsonschema (draft 2020-12); and the degraded health answer (503) once the broker is gone.
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
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

// A host forecast with a prediction interval for cell t6 at cycle 100 (as a champion with an
// interval table makes them), so that the description's interval fields are answered too: the
// lower bound crosses 80 % SOH at once, the upper one never within the horizon (open interval).
void write_openapi_interval_forecast(const std::filesystem::path& db_path) {
  auto db = storage::Database::open(db_path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  storage::ForecastRecord f;
  f.cell_id = fading_cell_id(6);
  f.at_cycle = 100;
  f.model_version = "m-interval";
  f.origin = "host";
  for (std::int64_t k = 1; k <= 10; ++k)
    f.soh.push_back(static_cast<float>(fading_soh(6, 100 + k)));
  f.lower.assign(f.soh.size(), 0.1f);
  f.upper.assign(f.soh.size(), 1.19f);
  const std::vector<storage::ForecastRecord> forecasts = {f};
  ASSERT_TRUE(db->write_forecasts(forecasts).ok());
}

// The first cycle at which `values` (a forecast from `at_cycle`) falls under `eol_soh`, as JSON:
// null when it does not within the horizon.
Json first_cycle_under(const std::vector<float>& values, std::int64_t at_cycle, double eol_soh) {
  for (std::size_t j = 0; j < values.size(); ++j) {
    if (values[j] < eol_soh) return at_cycle + static_cast<std::int64_t>(j) + 1;
  }
  return nullptr;
}

// Every forecast of `cell` that the API gives with an interval matches the row stored for it:
// lower/upper at +10 and +H, and the end of life with its interval at the cell's threshold.
// Returns how many were compared.
int expect_api_intervals_match_storage(const Json& detail, const std::filesystem::path& db_path,
                                       const std::string& cell) {
  storage::OpenOptions read_only;
  read_only.read_only = true;
  auto db = storage::Database::open(db_path, read_only);
  EXPECT_TRUE(db.ok()) << db.error().message;
  if (!db.ok()) return 0;
  auto stored = db->forecasts_of(cell);
  EXPECT_TRUE(stored.ok());
  if (!stored.ok()) return 0;
  int compared = 0;
  for (const Json& f : detail["forecasts"]) {
    const auto row = std::find_if(stored->begin(), stored->end(), [&](const auto& r) {
      return r.at_cycle == f["at_cycle"] && r.model_version == f["model_version"];
    });
    if (row == stored->end() || row->lower.empty()) {
      EXPECT_TRUE(f["interval"].is_null()) << f.dump();
      continue;
    }
    const Json& interval = f["interval"];
    EXPECT_TRUE(interval.is_object()) << f.dump();
    if (!interval.is_object()) continue;
    EXPECT_NEAR(interval["lower_10"].get<double>(), row->lower[9], 1e-6) << f.dump();
    EXPECT_NEAR(interval["upper_10"].get<double>(), row->upper[9], 1e-6) << f.dump();
    EXPECT_NEAR(interval["lower_100"].get<double>(), row->lower.back(), 1e-6) << f.dump();
    EXPECT_NEAR(interval["upper_100"].get<double>(), row->upper.back(), 1e-6) << f.dump();
    EXPECT_LE(interval["lower_10"].get<double>(), f["soh_10"].get<double>());
    EXPECT_GE(interval["upper_10"].get<double>(), f["soh_10"].get<double>());
    EXPECT_LE(interval["lower_100"].get<double>(), f["soh_100"].get<double>());
    EXPECT_GE(interval["upper_100"].get<double>(), f["soh_100"].get<double>());
    const double eol_soh = f["eol"]["eol_soh"].get<double>();
    EXPECT_EQ(f["eol"]["earliest"], first_cycle_under(row->lower, row->at_cycle, eol_soh));
    EXPECT_EQ(f["eol"]["expected"], first_cycle_under(row->soh, row->at_cycle, eol_soh));
    EXPECT_EQ(f["eol"]["latest"], first_cycle_under(row->upper, row->at_cycle, eol_soh));
    ++compared;
  }
  return compared;
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
    ASSERT_NO_FATAL_FAILURE(write_openapi_interval_forecast(database()));
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
  // The champion's live forecasts carry the interval of its table (per SOH band), and the API
  // answers them as stored.
  EXPECT_GT(expect_api_intervals_match_storage(fetch("/api/v1/cells/" + fading_cell_id(0)),
                                               database(), fading_cell_id(0)),
            0);
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
  // The interval and the end of life with its interval; none for the edge forecast. Here, where
  // no champion forecasts t6 after the row written in SetUp.
  const auto forecast_of = [&](int cell, const std::string& model) {
    const Json detail = fetch("/api/v1/cells/" + fading_cell_id(cell));  // outlives the loop
    for (const Json& f : detail["forecasts"])
      if (f["model_version"] == model) return f;
    return Json();
  };
  const Json with_interval = forecast_of(6, "m-interval");
  ASSERT_TRUE(with_interval.is_object()) << fetch("/api/v1/cells/t6").dump().substr(0, 600);
  EXPECT_NEAR(with_interval["interval"]["lower_10"].get<double>(), 0.1, 1e-6);
  EXPECT_NEAR(with_interval["interval"]["upper_100"].get<double>(), 1.19, 1e-6);
  EXPECT_EQ(with_interval["eol"]["eol_soh"], 0.8);
  EXPECT_EQ(with_interval["eol"]["earliest"], 101);
  EXPECT_TRUE(with_interval["eol"]["latest"].is_null());  // open: not within the horizon
  const Json edge = forecast_of(5, "m-edge");
  ASSERT_TRUE(edge.is_object());
  EXPECT_TRUE(edge["interval"].is_null());
  EXPECT_TRUE(edge["eol"]["earliest"].is_null());

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
