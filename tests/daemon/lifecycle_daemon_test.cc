// The model lifecycle in the running service: a real mosquitto, the built cyclecastd on a database
// of generated fading cells, and its HTTP API. Each trigger (interval, new cycles, manual, live
// error) starts a run; the first run's model is promoted and announced, retained; a candidate that
// does not beat the champion by the margin stays a candidate; manual promote and rollback; the API
// refuses changes without the right token; forecasts are made with the champion as cycles arrive
// and scored against the cycles that follow; a live error over its threshold raises the alert.
//
// Training uses the lifecycle tests' tiny configuration (W = 20, H = 10, one width-4 student), so
// a run takes seconds; the service itself is tests/support/service_fixture.h.
#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/storage/registry.h"
#include "service_fixture.h"

namespace cyclecast::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kCells = 10;
constexpr std::int64_t kCycles = 120;
constexpr const char* kToken = "s3cret-token-of-the-test";

// The retained message on `topic`, or the next one within `wait_s`; empty when none came.
std::string read_retained(int port, const std::string& topic, int wait_s = 10) {
  const std::string command = "mosquitto_sub -h 127.0.0.1 -p " + std::to_string(port) + " -t '" +
                              topic + "' -C 1 -W " + std::to_string(wait_s) + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr)
    out += buffer;
  pclose(pipe);
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

// The next message on `topic` within `wait_s`, read by a subscriber that says when the broker
// has confirmed its subscription (mosquitto_sub -d prints the SUBACK), so that a test publishes
// only once the message cannot be missed.
class NextMessage {
 public:
  NextMessage(int port, const std::string& topic, int wait_s) {
    // stdbuf: mosquitto_sub's debug lines would otherwise wait in its stdio buffer until exit.
    const std::string command = "stdbuf -oL mosquitto_sub -d -h 127.0.0.1 -p " +
                                std::to_string(port) + " -t '" + topic + "' -C 1 -W " +
                                std::to_string(wait_s) + " 2>/dev/null";
    message_ = std::async(std::launch::async, [this, command] {
      FILE* pipe = popen(command.c_str(), "r");
      if (pipe == nullptr) return std::string();
      std::string payload;
      char buffer[4096];
      while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
        const std::string line = buffer;
        if (line.find("SUBACK") != std::string::npos) subscribed_ = true;
        const bool debug = line.rfind("Client ", 0) == 0 || line.rfind("Subscribed (", 0) == 0;
        if (!debug) payload += line;
      }
      pclose(pipe);
      subscribed_ = true;  // a subscriber that failed must not keep the test waiting
      while (!payload.empty() && payload.back() == '\n')
        payload.pop_back();
      return payload;
    });
  }
  bool subscribed() const { return subscribed_; }
  std::string get() { return message_.get(); }

 private:
  std::atomic<bool> subscribed_{false};
  std::future<std::string> message_;
};

class LifecycleDaemon : public ServiceTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(seed_service(kToken, kCells, kCycles)); }

  Json get(const std::string& path) const {
    Json answer = fetch(path);
    if (answer.is_null()) ADD_FAILURE() << "GET " << path << " failed; log:\n" << log();
    return answer;
  }

  http::Response post(const std::string& path, const std::string& token = kToken) const {
    auto client = http::ApiClient::create({.base_url = base_url_, .token = token});
    EXPECT_TRUE(client.ok());
    auto response = client->post(path, Json{{"who", "tester"}, {"why", "the test says so"}});
    EXPECT_TRUE(response.ok()) << response.error().message;
    return response.ok() ? *response : http::Response{};
  }

  bool champion_is(const std::string& version) {
    return eventually([&] { return fetch("/healthz")["champion"] == version; }, 30s);
  }
};

TEST_F(LifecycleDaemon, IntervalAndCycleTriggersGatePromoteAndRollback) {
  // No run yet and the interval trigger on: the first check starts one.
  ASSERT_NO_FATAL_FAILURE(
      start_daemon(tiny_service_config(token_file_, "interval_h = 1\nnew_cycles = 0\n")));
  Json first = finished_run(1);
  ASSERT_EQ(first["status"], "succeeded") << first.dump() << log();
  EXPECT_EQ(first["trigger"], "interval");
  EXPECT_EQ(first["requested_by"], "scheduler");
  const std::string v1 = first["model_version"];
  ASSERT_TRUE(champion_is(v1)) << log();

  // Promoted with no champion before it: stored bundle announced, retained, with its digest.
  const Json model = get("/api/v1/models/" + v1);
  EXPECT_EQ(model["status"], "champion");
  const Json announced =
      Json::parse(read_retained(broker_.port(), "cyclecast/v1/models/champion"), nullptr, false);
  ASSERT_TRUE(announced.is_object()) << log();
  EXPECT_EQ(announced["version"], v1);
  EXPECT_EQ(announced["sha256"], model["bundle"]["sha256"]);
  EXPECT_EQ(announced["bytes"], model["bundle"]["bytes"]);
  EXPECT_EQ(announced["url"], "http://127.0.0.1:" + std::to_string(daemon_->api_port()) +
                                  "/api/v1/models/" + v1 + "/bundle");
  const auto bundle_file = dir_ / "state" / "bundles" / (v1 + ".ccb");
  EXPECT_EQ(bundle::sha256_file_hex(bundle_file).value(), announced["sha256"]);
  // Within the hour, the interval does not start another.
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(get("/api/v1/runs").size(), 1u);
  stop_daemon();

  // New cycles: 50 since the last snapshot start a run. Its candidate, trained on much the same
  // data, cannot be 90 % better than the champion, so the gate keeps it a candidate.
  ASSERT_NO_FATAL_FAILURE(start_daemon(
      tiny_service_config(token_file_, "interval_h = 0\nnew_cycles = 50\nmargin = 0.9\n",
                          "retrain = false\n", "public_url = \"https://lab.example/cc/\"\n")));
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(get("/api/v1/runs").size(), 1u) << "no new cycles yet";
  ASSERT_TRUE(publish_cycles(0, kCycles + 1, kCycles + 60,
                             [](std::int64_t k) { return fading_soh(0, k); }));
  ASSERT_TRUE(eventually([&] { return get("/api/v1/runs").size() == 2u; }, 30s)) << log();
  Json second = finished_run(2);
  ASSERT_EQ(second["status"], "succeeded") << second.dump() << log();
  EXPECT_EQ(second["trigger"], "cycles");
  const std::string v2 = second["model_version"];
  const Json candidate = get("/api/v1/models/" + v2);
  EXPECT_EQ(candidate["status"], "candidate");
  EXPECT_NE(candidate["status_reason"].get<std::string>().find("MAE"), std::string::npos)
      << candidate.dump();
  EXPECT_EQ(get("/healthz")["champion"], v1);

  // Manual promotion (the gate is skipped), then rollback to the one before.
  const auto promoted = post("/api/v1/models/" + v2 + "/promote");
  ASSERT_EQ(promoted.status, 200u) << promoted.body;
  EXPECT_EQ(Json::parse(promoted.body), (Json{{"champion", v2}, {"previous", v1}}));
  EXPECT_TRUE(champion_is(v2)) << log();
  EXPECT_TRUE(eventually(
      [&] {
        const Json now = Json::parse(read_retained(broker_.port(), "cyclecast/v1/models/champion"),
                                     nullptr, false);
        return now.is_object() && now["version"] == v2 &&
               now["url"] == "https://lab.example/cc/api/v1/models/" + v2 + "/bundle";
      },
      30s))
      << "announced with http.public_url: "
      << read_retained(broker_.port(), "cyclecast/v1/models/champion");
  EXPECT_EQ(post("/api/v1/models/" + v2 + "/promote").status, 409u);
  EXPECT_EQ(post("/api/v1/models/r99-20000101/promote").status, 404u);

  const auto rolled_back = post("/api/v1/rollback");
  ASSERT_EQ(rolled_back.status, 200u) << rolled_back.body;
  EXPECT_EQ(Json::parse(rolled_back.body), (Json{{"champion", v1}, {"previous", v2}}));
  EXPECT_TRUE(champion_is(v1)) << log();
  const Json after = get("/api/v1/models/" + v2);
  EXPECT_EQ(after["status"], "rolled_back");
  const Json& events = after["events"];
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["action"], "rolled_back");
  EXPECT_EQ(events.back()["actor"], "tester");
  EXPECT_EQ(events.back()["reason"], "the test says so");
  stop_daemon();
}

TEST_F(LifecycleDaemon, ManualRunForecastsScoringAndTheLiveErrorAlert) {
  ASSERT_NO_FATAL_FAILURE(start_daemon(
      tiny_service_config(token_file_, "interval_h = 0\nnew_cycles = 0\n",
                          "live_error_factor = 1.5\nmin_scored = 5\nretrain = true\n")));

  // Changes need the token: none, a wrong one, then the right one.
  EXPECT_EQ(post("/api/v1/retrain", "").status, 401u);
  EXPECT_EQ(post("/api/v1/retrain", "not-the-token").status, 403u);
  const auto started = post("/api/v1/retrain");
  ASSERT_EQ(started.status, 200u) << started.body;
  const Json run = Json::parse(started.body);
  EXPECT_EQ(run["trigger"], "manual");
  EXPECT_EQ(run["requested_by"], "tester");
  const Json done = finished_run(run["id"].get<std::int64_t>());
  ASSERT_EQ(done["status"], "succeeded") << done.dump() << log();
  const std::string version = done["model_version"];
  ASSERT_TRUE(champion_is(version)) << log();
  ASSERT_TRUE(eventually(
      [&] { return log().find("forecasting with champion " + version) != std::string::npos; },
      30s));

  // A model arriving gives every cell a forecast at its newest cycle (120), then 121 gets one...
  const auto truth = [](std::int64_t k) { return fading_soh(0, k); };
  ASSERT_TRUE(publish_cycles(0, kCycles + 1, kCycles + 1, truth));
  Json cell;
  ASSERT_TRUE(eventually(
      [&] {
        cell = get("/api/v1/cells/t0");
        return cell.is_object() && !cell["forecasts"].empty() &&
               cell["forecasts"][0]["at_cycle"] == kCycles + 1;
      },
      30s))
      << log();
  const Json first = cell["forecasts"][0];
  EXPECT_EQ(first["at_cycle"], kCycles + 1);
  EXPECT_EQ(first["model_version"], version);
  EXPECT_EQ(first["origin"], "host");
  EXPECT_TRUE(first["error_10"].is_null());
  const double forecast_10 = first["soh_10"];

  // ...and every later cycle one of its own; cycle 131 scores the forecast made at 121.
  ASSERT_TRUE(publish_cycles(0, kCycles + 2, kCycles + 11, truth));
  ASSERT_TRUE(eventually(
      [&] {
        cell = get("/api/v1/cells/t0");
        return cell["forecasts"].size() == 12u && !cell["forecasts"][10]["error_10"].is_null();
      },
      30s))
      << cell.dump() << log();
  const Json scored = cell["forecasts"][10];  // newest first: 131 down to 121, then 120
  EXPECT_EQ(scored["at_cycle"], kCycles + 1);
  const double actual =
      static_cast<double>(static_cast<float>(kFadingRatedAh * truth(kCycles + 11))) /
      kFadingRatedAh;
  EXPECT_NEAR(scored["error_10"].get<double>(), std::abs(actual - forecast_10), 1e-6);
  EXPECT_NEAR(scored["error_100"].get<double>(), std::abs(actual - forecast_10), 1e-6)
      << "H = 10: the +10 and +H points are the same cycle";
  const Json retained =
      Json::parse(read_retained(broker_.port(), "cyclecast/v1/cells/t0/forecasts"), nullptr, false);
  ASSERT_TRUE(retained.is_object());
  EXPECT_EQ(retained["at_cycle"], kCycles + 11);
  EXPECT_EQ(get("/api/v1/models/" + version)["live_error"]["scored"], 2);  // at 120 and 121

  // The cell suddenly loses a third of its capacity: the champion's live error at +H climbs far
  // over 1.5 x its held-out error, which raises the alert (log, MQTT, metric) and starts a run.
  NextMessage alert(broker_.port(), "cyclecast/v1/alerts", 120);
  ASSERT_TRUE(eventually([&] { return alert.subscribed(); }, 30s));
  ASSERT_TRUE(publish_cycles(0, kCycles + 12, kCycles + 40,
                             [](std::int64_t k) { return 0.66 * fading_soh(0, k); }));
  const Json raised = Json::parse(alert.get(), nullptr, false);
  ASSERT_TRUE(raised.is_object()) << log();
  EXPECT_EQ(raised["kind"], "live_error");
  EXPECT_EQ(raised["state"], "raised");
  EXPECT_EQ(raised["model_version"], version);
  EXPECT_GT(raised["live_mae_100"].get<double>(), raised["threshold"].get<double>());
  EXPECT_NE(log().find("ALERT: live error of champion " + version), std::string::npos);
  const Json health = get("/healthz");
  EXPECT_EQ(health["status"], "degraded");
  auto metrics = api_->get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("cyclecast_live_error_alert 1\n"), std::string::npos);
  ASSERT_TRUE(eventually(
      [&] {
        const Json runs = get("/api/v1/runs");
        return runs.size() == 2u && runs[0]["trigger"] == "live_error";
      },
      30s))
      << log();
  stop_daemon();
  // Stopped mid-run or not, the run is recorded as ended; the registry keeps its champion.
  storage::OpenOptions read_only;
  read_only.read_only = true;
  auto db = storage::Database::open(dir_ / "state" / "cyclecast.db", read_only);
  ASSERT_TRUE(db.ok());
  auto runs = storage::list_runs(*db);
  ASSERT_TRUE(runs.ok());
  EXPECT_NE((*runs)[0].status, storage::RunStatus::kRunning);
  if ((*runs)[0].status == storage::RunStatus::kFailed) {
    EXPECT_NE((*runs)[0].error.find("interrupted"), std::string::npos) << (*runs)[0].error;
  }
}

}  // namespace
}  // namespace cyclecast::testing
