// The running service for the tests that drive all of it through its API (the lifecycle daemon
// test, the OpenAPI live check, the dashboard in a browser): a real mosquitto on a free loopback
// port, the built cyclecastd on a database of generated fading cells, with a token file, its API
// client, and the waits they share (the API port, a training run's end), each with a deadline.
//
// Header-only: it builds on tests/daemon/ingest_harness.h (Broker, DaemonProcess), which each of
// those executables compiles in, and on cyclecast::http, which they link.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cyclecast/http/client.h"
#include "fading_cells.h"
#include "ingest_harness.h"
#include "temp_dir.h"

namespace cyclecast::testing {

// Training runs: sanitizer builds train many times slower.
inline constexpr std::chrono::seconds kServiceRunTimeout{300};

// cyclecastd's configuration with the tiny training of tests/lifecycle/lifecycle_fixture.h
// (W = 20, H = 10, one width-4 student: a run takes seconds); `retrain` adds the triggers and the
// margin, `alerts` the [alerts] table, `http` more of the [http] table.
inline std::string tiny_service_config(const std::filesystem::path& token_file,
                                       const std::string& retrain,
                                       const std::string& alerts = "retrain = false\n",
                                       const std::string& http = "") {
  return "[http]\ntoken_file = \"" + token_file.string() + "\"\n" + http +
         "[retrain]\ncheck_s = 1\nmin_cycles = 0\nmin_gap_min = 0\nwindow = 20\nhorizon = 10\n"
         "train_stride = 2\nteacher = \"liquid\"\nteacher_budget_s = 1\nteacher_max_epochs = 2\n"
         "widths = [4]\nfeatures = 3\nprune_ratios = []\nstudent_epochs = 2\nstage2_epochs = 1\n"
         "student_steps = 0\nstage2_steps = 0\ncalibration_windows = 64\nthreads = 2\n"
         "lower_priority = false\n" +
         retrain + "[alerts]\n" + alerts;
}

class ServiceTest : public ::testing::Test {
 protected:
  using Json = nlohmann::json;

  // The token file (mode 0600), the state directory and the broker started; the test stores
  // what the database should hold, then start_daemon.
  void prepare_service(const std::string& token) {
    token_ = token;
    token_file_ = dir_ / "api-token";
    std::ofstream(token_file_) << token << "\n";
    ::chmod(token_file_.c_str(), 0600);
    std::filesystem::create_directories(dir_ / "state");
    broker_.start();
  }

  // prepare_service, with `cells` fading cells of `cycles` cycles in the database.
  void seed_service(const std::string& token, int cells, std::int64_t cycles) {
    prepare_service(token);
    ASSERT_NO_FATAL_FAILURE(write_fading_cells(database(), cells, cycles));
  }

  std::filesystem::path database() const { return dir_ / "state" / "cyclecast.db"; }

  // Starts cyclecastd with `config` (a file of its own per start) and waits for its API.
  void start_daemon(const std::string& config) {
    const auto path = dir_ / ("cyclecastd-" + std::to_string(++starts_) + ".toml");
    std::ofstream(path) << config;
    daemon_ = std::make_unique<DaemonProcess>(dir_ / "state", broker_.port(), path);
    daemon_->start();
    ASSERT_TRUE(eventually([&] { return daemon_->api_port() > 0; }, std::chrono::seconds(10)))
        << log();
    base_url_ = "http://127.0.0.1:" + std::to_string(daemon_->api_port());
    auto client = http::ApiClient::create({.base_url = base_url_, .token = token_});
    ASSERT_TRUE(client.ok()) << client.error().message;
    api_.emplace(std::move(*client));
  }

  // SIGTERM, and a clean exit within the deadline.
  void stop_daemon() {
    daemon_->signal(SIGTERM);
    EXPECT_EQ(daemon_->wait(std::chrono::seconds(60)), 0) << log();
  }

  std::string log() const { return daemon_ ? read_text(daemon_->log()) : std::string(); }

  // The JSON of a 200 (or /healthz's 503) answer; null for anything else.
  Json fetch(const std::string& path) const {
    auto response = api_->get(path);
    if (!response || (response->status != 200 && response->status != 503)) return nullptr;
    return Json::parse(response->body, nullptr, false);
  }

  // Waits for run `id` to end; the run as the API shows it then.
  Json finished_run(std::int64_t id) const {
    Json run;
    const bool ended = eventually(
        [&] {
          run = fetch("/api/v1/runs/" + std::to_string(id));
          return run.is_object() && run["status"] != "running";
        },
        kServiceRunTimeout);
    EXPECT_TRUE(ended) << "run " << id << " still running; log:\n" << log();
    return run;
  }

  // Starts a run through the API and waits for it to succeed; its model's version ("" when it
  // did not).
  std::string train() {
    auto started = api_->post("/api/v1/retrain", Json{{"who", "test"}});
    if (!started || started->status != 200) {
      ADD_FAILURE() << "retrain refused: " << (started ? started->body : started.error().message);
      return {};
    }
    const Json done = finished_run(Json::parse(started->body)["id"].get<std::int64_t>());
    EXPECT_EQ(done["status"], "succeeded") << done.dump() << log();
    return done["status"] == "succeeded" ? done.value("model_version", "") : "";
  }

  // One message on the cell's cycles topic (rig "rig-a"): cycles [from, to], SOH `soh(cycle)`,
  // by default the cell's own fading curve.
  bool publish_cycles(int cell, std::int64_t from, std::int64_t to,
                      const std::function<double(std::int64_t)>& soh = {}) const {
    Json records = Json::array();
    for (std::int64_t k = from; k <= to; ++k) {
      const double value = soh ? soh(k) : fading_soh(cell, k);
      records.push_back({{"cycle", k}, {"qd_ah", kFadingRatedAh * value}});
    }
    return publish_raw(broker_.port(),
                       "cyclecast/v1/rigs/rig-a/cells/" + fading_cell_id(cell) + "/cycles",
                       records.dump());
  }

  TempDir dir_;
  std::string token_;
  std::filesystem::path token_file_;
  Broker broker_{dir_.path(), free_port()};
  std::unique_ptr<DaemonProcess> daemon_;
  std::string base_url_;
  std::optional<http::ApiClient> api_;
  int starts_ = 0;
};

}  // namespace cyclecast::testing
