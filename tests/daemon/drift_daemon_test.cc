// Drift end to end (docs/lifecycle.md, "Drift"): a real mosquitto, the built cyclecastd, and cells
// from the rig simulator. The daemon holds 150 cycles of 12 simulated cells, trains a champion
// on them (the lifecycle tests' tiny training: W = 20, H = 10), then the cells' next cycles
// arrive over MQTT and are forecast and scored as they come. In one run every second cell's fade
// becomes 10 times as fast after cycle 200 (the simulator's regime change): the drift monitor
// must see it within a few cycles, say so in /healthz, /metrics and on the alerts topic, and start
// a retraining run; the gate promotes the model of that run (it beats the champion on the new
// regime), which starts a monitor of its own; and a changed cell, fading on past end of life, is
// marked so and no longer forecast. In the other the same cells carry on unchanged: no alarm.
//
// Cycles are published in lockstep, and each step waits until the daemon has scored what it
// made possible, so the cycle at which the drift is detected does not depend on timing. Each test
// takes 7 to 16 s in the release build (two or three tiny trainings, 90 to 100 live cycles).
#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "cyclecast/http/client.h"
#include "cyclecast/pipeline/simulate.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/wire/protocol.h"
#include "mqtt_test_client.h"
#include "service_fixture.h"

namespace cyclecast::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kSimCells = 12;
constexpr std::uint64_t kSimSeed = 11;
constexpr std::int64_t kStoredCycles = 150;  // in the database before the daemon starts
constexpr std::int64_t kChangeCycle = 200;   // the regime changes after this cycle
constexpr std::int64_t kLastCycle = 240;     // of the live phase
// Simulated at most: the changed cells reach end of life within it (their fade is 10 times as
// fast; the last of them at cycle 866), the others do not (the first at 1437).
constexpr std::int64_t kSimulatedCycles = 900;
constexpr std::int64_t kHorizon = 10;
// Cycles from the change to the one whose scored forecast raised the alarm, at most: measured 11
// (docs/lifecycle.md, "Drift"; 5 with a fade factor of 100, where the tiny training cannot beat
// the line-10 baseline on the new regime, so no model of it would be promoted); the bound leaves
// room for another seed of the tiny training.
constexpr std::int64_t kDetectionBoundCycles = 15;
constexpr const char* kDriftToken = "drift-test-token";
// The drift run waits for this many new cycles (all cells) after the detection, so that it trains
// on the new regime (alerts.drift_retrain_after_cycles): 20 cycles of each cell. The test then
// publishes every cell's cycles through kChangeCycle + 50 at once: the unchanged cells alone
// bring more than that.
constexpr std::int64_t kRetrainAfterCycles = 20 * kSimCells;

std::vector<pipeline::SimulatedCell> simulated_cells(bool regime_change) {
  pipeline::SimulationOptions options;
  options.seed = kSimSeed;
  options.cells = kSimCells;
  options.max_cycles = kSimulatedCycles;  // a cell's first cycles do not depend on it
  options.rigs = 1;
  options.policies = {"3.6C(80%)-3.6C"};  // ~2000 cycles of life: early, nearly linear fade
  options.glitches = pipeline::GlitchRates{0.0, 0.0, 0.0, 0.0, 0.0};
  if (regime_change) {
    options.regime_change_cycle = kChangeCycle;
    options.regime_fade_factor = 10.0;
    options.regime_every = 2;
  }
  auto cells = pipeline::simulate(options);
  EXPECT_TRUE(cells.ok()) << cells.error().message;
  return cells.ok() ? std::move(*cells) : std::vector<pipeline::SimulatedCell>{};
}

class DriftDaemon : public ServiceTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(prepare_service(kDriftToken)); }

  // The cells and their first kStoredCycles cycles, as the daemon would have stored them.
  void store_history(const std::vector<pipeline::SimulatedCell>& cells) {
    auto db = storage::Database::open(database());
    ASSERT_TRUE(db.ok()) << db.error().message;
    std::vector<storage::CellInfo> infos;
    std::vector<storage::CycleRecord> records;
    for (const auto& cell : cells) {
      infos.push_back(cell.info);
      for (const auto& r : cell.cycles) {
        if (r.cycle <= kStoredCycles) records.push_back(r);
      }
    }
    ASSERT_TRUE(db->upsert_cells(infos).ok());
    auto written = db->write_cycles(records);
    ASSERT_TRUE(written.ok()) << written.error().message;
  }

  // No automatic trigger, the live-error alert out of the way, the drift monitor at its
  // defaults, its run waiting for kRetrainAfterCycles new cycles.
  void start_daemon() {
    ServiceTest::start_daemon(tiny_service_config(
        token_file_, "interval_h = 0\nnew_cycles = 0\n",
        "live_error_factor = 1000\nretrain = false\ndrift_retrain_after_cycles = " +
            std::to_string(kRetrainAfterCycles) + "\n"));
  }

  // Trains the first model by hand and makes it the champion: by the gate, or by hand when the
  // gate keeps a model trained on so few cells out (this test is about what follows).
  void train_champion() {
    auto started = api_->post("/api/v1/retrain", Json{{"who", "tester"}});
    ASSERT_TRUE(started.ok() && started->status == 200u) << log();
    const Json run = finished_run(Json::parse(started->body)["id"].get<std::int64_t>());
    ASSERT_EQ(run["status"], "succeeded") << run.dump() << log();
    champion_ = run["model_version"];
    if (fetch("/api/v1/models/" + champion_)["status"] != "champion") {
      auto promoted = api_->post("/api/v1/models/" + champion_ + "/promote",
                                 Json{{"who", "tester"}, {"why", "the drift test needs one"}});
      ASSERT_TRUE(promoted.ok() && promoted->status == 200u) << log();
    }
    // The forecaster forecasts each cell's newest cycle once the model is loaded.
    ASSERT_TRUE(eventually(
        [&] {
          const Json cell = fetch("/api/v1/cells/" + cells_[0].info.cell_id);
          return cell.is_object() && !cell["forecasts"].empty() &&
                 cell["forecasts"][0]["model_version"] == champion_;
        },
        60s))
        << log();
  }

  // Publishes cycles [from, to] of every cell (one message per cell) and waits until the daemon
  // has scored at +H every champion forecast those cycles make scorable.
  void publish_and_wait(MqttTestClient& rig, std::int64_t from, std::int64_t to) {
    ASSERT_NO_FATAL_FAILURE(publish(rig, from, to));
    // Forecasts were made at kStoredCycles and every cycle after; the one at c is scored when
    // c + H arrives.
    const std::int64_t expected =
        kSimCells * std::max<std::int64_t>(0, to - kHorizon - kStoredCycles + 1);
    // Once drift is detected the monitor stops counting (it stays raised until a new champion).
    ASSERT_TRUE(eventually(
        [&] {
          const Json d = drift();
          return d.is_object() && (d["samples"] == expected || d["detected"] == true);
        },
        60s))
        << "drift samples " << drift_samples() << ", expected " << expected << "; log:\n"
        << log();
  }

  // Publishes cycles [from, to] of every cell that has any, one message per cell.
  void publish(MqttTestClient& rig, std::int64_t from, std::int64_t to) {
    for (const auto& cell : cells_)
      ASSERT_NO_FATAL_FAILURE(publish_cell(rig, cell, from, to));
    published_through_ = std::max(published_through_, to);
  }

  // Publishes cycles [from, to] of one cell, if it has any, in one message.
  static void publish_cell(MqttTestClient& rig, const pipeline::SimulatedCell& cell,
                           std::int64_t from, std::int64_t to) {
    std::vector<storage::CycleRecord> records;
    for (const auto& r : cell.cycles) {
      if (r.cycle >= from && r.cycle <= to) records.push_back(r);
    }
    if (records.empty()) return;
    const std::string topic =
        "cyclecast/v1/rigs/" + cell.info.rig_id + "/cells/" + cell.info.cell_id + "/cycles";
    ASSERT_EQ(rig.publish(topic, protocol::serialize_cycles(records)), 0);
  }

  // What the drift monitor has seen of the champion, from /healthz.
  Json drift() const { return fetch("/healthz")["drift"]; }
  std::int64_t drift_samples() const {
    const Json d = drift();
    return d.is_object() ? d["samples"].get<std::int64_t>() : -1;
  }

  // Publishes kStoredCycles + 1 .. kLastCycle, one cycle at a time from the change on; returns
  // the drift state once detected, or at the end.
  Json run_live_cycles(MqttTestClient& rig) {
    for (std::int64_t from = kStoredCycles + 1; from <= kLastCycle;) {
      const std::int64_t to = from <= kChangeCycle ? std::min(from + 9, kChangeCycle) : from;
      publish_and_wait(rig, from, to);
      if (HasFatalFailure()) return nullptr;
      const Json d = drift();
      if (d["detected"] == true) return d;
      from = to + 1;
    }
    return drift();
  }

  std::vector<pipeline::SimulatedCell> cells_;
  std::string champion_;
  std::int64_t published_through_ = kStoredCycles;
};

TEST_F(DriftDaemon, RegimeChangeIsDetectedStartsARunAndItsModelIsPromoted) {
  cells_ = simulated_cells(true);
  ASSERT_NO_FATAL_FAILURE(store_history(cells_));
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  ASSERT_NO_FATAL_FAILURE(train_champion());
  MqttTestClient watcher(broker_.port(), "", "");
  ASSERT_EQ(watcher.connect(), 0);
  ASSERT_EQ(watcher.subscribe("cyclecast/v1/alerts"), 1);
  MqttTestClient rig(broker_.port(), "", "");
  ASSERT_EQ(rig.connect(), 0);

  const Json d = run_live_cycles(rig);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(d.is_object()) << log();
  ASSERT_EQ(d["detected"], true) << d.dump() << log();
  EXPECT_EQ(d["model_version"], champion_);
  const std::int64_t cycles_after_change = d["detected_cycle"].get<std::int64_t>() - kChangeCycle;
  std::cout << "[ drift ] detected " << cycles_after_change
            << " cycles after the regime change (cell " << d["detected_cell"] << ", statistic "
            << d["statistic"] << " after " << d["samples"] << " forecasts)\n";
  EXPECT_GE(cycles_after_change, 1) << "an alarm before the change is a false one";
  EXPECT_LE(cycles_after_change, kDetectionBoundCycles);

  // Said in /healthz (degraded, with a sentence), /metrics, the log and on the alerts topic.
  const Json health = fetch("/healthz");
  EXPECT_EQ(health["status"], "degraded");
  bool said = false;
  for (const auto& problem : health["problems"])
    said = said || problem.get<std::string>().find("drifted") != std::string::npos;
  EXPECT_TRUE(said) << health.dump();
  auto metrics = api_->get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("cyclecast_drift_detected 1\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("cyclecast_drift_detections_total 1\n"), std::string::npos);
  EXPECT_TRUE(watcher.wait_for(
      [](const ReceivedMessage& m) {
        const Json alert = Json::parse(m.payload, nullptr, false);
        return alert.is_object() && alert["kind"] == "drift" && alert["state"] == "raised";
      },
      30s))
      << log();
  EXPECT_NE(log().find("DRIFT: live errors of champion " + champion_), std::string::npos);

  // Recorded in the registry as an event of the champion, with its figures: in the API and in
  // `cyclecast models show`.
  Json event;
  ASSERT_TRUE(eventually(
      [&] {
        const Json model = fetch("/api/v1/models/" + champion_);
        if (!model.is_object()) return false;
        for (const Json& e : model["events"]) {
          if (e["action"] == "drift_detected") event = e;
        }
        return event.is_object();
      },
      30s))
      << log();
  EXPECT_EQ(event["actor"], "drift monitor");
  EXPECT_EQ(event["detail"]["samples"], d["samples"]);
  EXPECT_GT(event["detail"]["statistic"].get<double>(), d["threshold"].get<double>());
  EXPECT_EQ(event["detail"]["cell"], d["detected_cell"]);
  EXPECT_EQ(event["detail"]["retrain_pending"], true);
  EXPECT_NE(event["reason"].get<std::string>().find("Page-Hinkley statistic"), std::string::npos);
  const CliRun shown = run_cyclecast(
      dir_.path(), "models show " + champion_ +
                       " --api http://127.0.0.1:" + std::to_string(daemon_->api_port()) +
                       " --token-file " + token_file_.string());
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("drift_detected"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("after " + d["samples"].dump() + " forecasts"), std::string::npos)
      << shown.out;

  // By policy (alerts.drift_retrain, on by default) a run with trigger "drift" starts, once
  // kRetrainAfterCycles cycles of the new regime are stored.
  EXPECT_EQ(fetch("/healthz")["drift"]["retrain_pending"], true);
  EXPECT_EQ(fetch("/api/v1/runs").size(), 1u) << "the drift run waits for new cycles";
  const std::int64_t detected_at = published_through_;
  ASSERT_NO_FATAL_FAILURE(publish(rig, published_through_ + 1, kChangeCycle + 50));
  Json runs;
  ASSERT_TRUE(eventually(
      [&] {
        runs = fetch("/api/v1/runs");
        return runs.is_array() && runs.size() == 2u;
      },
      60s))
      << log();
  EXPECT_EQ(runs[0]["trigger"], "drift");
  EXPECT_EQ(fetch("/healthz")["drift"]["retrain_run"], runs[0]["id"]);
  EXPECT_EQ(fetch("/healthz")["drift"]["retrain_pending"], false);
  const Json run = finished_run(runs[0]["id"].get<std::int64_t>());
  ASSERT_EQ(run["status"], "succeeded") << run.dump() << log();
  // It trained on the new regime (kRetrainAfterCycles cycles past the detection at least), and
  // the gate promotes its model: it beats the baselines and the champion, each by the k-fold test
  // over the 12 cells (too few for a held-out set), paired by cell. The new champion gets a
  // monitor of its own and health recovers.
  const std::string next = run["model_version"];
  const Json next_model = fetch("/api/v1/models/" + next);
  std::cout << "[ drift ] detected at cycle " << detected_at << "; run " << run["id"]
            << " trained on cycles through " << published_through_ << ", its model "
            << next_model["status"] << ": " << next_model["status_reason"] << "\n";
  EXPECT_EQ(next_model["status"], "champion") << next_model.dump();
  EXPECT_NE(next_model["status_reason"].get<std::string>().find("beats the champion: k-fold MAE"),
            std::string::npos)
      << next_model.dump();
  ASSERT_TRUE(eventually(
      [&] {
        const Json now = drift();
        return now.is_object() && now["model_version"] == next && now["detected"] == false;
      },
      30s))
      << drift().dump() << log();
  EXPECT_EQ(fetch("/healthz")["status"], "ok") << fetch("/healthz").dump();
  metrics = api_->get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("cyclecast_drift_detected 0\n"), std::string::npos);
  EXPECT_NE(metrics->body.find("cyclecast_drift_detections_total 1\n"), std::string::npos);

  // A changed cell fades on to end of life: marked so, and no longer forecast. (Only its
  // cycles: the other cells' would make the daemon forecast thousands of cycles for nothing.)
  const pipeline::SimulatedCell& changed = cells_[0];
  ASSERT_NO_FATAL_FAILURE(publish_cell(rig, changed, published_through_ + 1, kSimulatedCycles));
  ASSERT_TRUE(changed.regime_changed);
  ASSERT_LT(changed.last_cycle, kSimulatedCycles) << "it reached end of life in the run";
  Json cell;
  ASSERT_TRUE(eventually(
      [&] {
        cell = fetch("/api/v1/cells/" + changed.info.cell_id);
        return cell.is_object() && cell["cell"]["last_cycle"] == changed.last_cycle &&
               cell["cell"]["end_of_life"]["past"] == true &&
               fetch("/healthz")["forecasts_refused"]["past_end_of_life"].get<int>() > 0;
      },
      60s))
      << cell.dump() << log();
  EXPECT_LT(cell["cell"]["end_of_life"]["median_soh"].get<double>(), 0.8);
  EXPECT_NE(cell["note"].get<std::string>().find("past end of life"), std::string::npos);
  // Its newest forecast was made before it passed end of life, never after.
  ASSERT_FALSE(cell["forecasts"].empty());
  EXPECT_LT(cell["forecasts"][0]["at_cycle"].get<std::int64_t>(), changed.eol_cycle + 5);
  const Json healthy = fetch("/api/v1/cells/" + cells_[1].info.cell_id);
  EXPECT_EQ(healthy["cell"]["end_of_life"]["past"], false) << "an unchanged cell";
  EXPECT_EQ(healthy["cell"]["end_of_life"]["eol_soh"], 0.8);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(60s), 0) << log();
}

TEST_F(DriftDaemon, NoAlarmOnTheSameCellsWithoutTheChange) {
  cells_ = simulated_cells(false);
  ASSERT_NO_FATAL_FAILURE(store_history(cells_));
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  ASSERT_NO_FATAL_FAILURE(train_champion());
  MqttTestClient rig(broker_.port(), "", "");
  ASSERT_EQ(rig.connect(), 0);

  const Json d = run_live_cycles(rig);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(d.is_object()) << log();
  EXPECT_EQ(d["detected"], false) << d.dump();
  EXPECT_EQ(d["samples"], kSimCells * (kLastCycle - kHorizon - kStoredCycles + 1));
  std::cout << "[ drift ] no change: peak statistic " << d["peak_statistic"] << " (threshold "
            << d["threshold"] << "), mean error ratio " << d["mean_error_ratio"] << " over "
            << d["samples"] << " forecasts\n";
  EXPECT_LT(d["peak_statistic"].get<double>(), d["threshold"].get<double>());
  EXPECT_EQ(fetch("/api/v1/runs").size(), 1u) << "no run but the first";
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(60s), 0) << log();
}

}  // namespace
}  // namespace cyclecast::testing
