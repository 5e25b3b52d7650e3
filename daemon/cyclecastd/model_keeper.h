// Keeps cyclecastd's model current (docs/daemon.md, "Models"): owns the retraining worker
// (lifecycle::Retrainer), asks the retrain policy on a timer, loads the champion from the
// registry into the stream forecaster and announces it on the retained MQTT topic, and watches the
// champion's live error, raising an alert (log, MQTT, metric) when it exceeds its held-out error
// by a factor, optionally starting a run; and watches the champion's live errors for drift
// (lifecycle::BandedDrift, one Page-Hinkley test per SOH band on |error at +H| / held-out MAE at
// +H, fed by the stream forecaster's scoring), which degrades health, raises an alert and by policy
// starts a run.
//
// Database work runs on a monitor thread of its own (one Database connection, one call at a
// time), never on the event loop; what the loop must do (swap the forecaster's model, publish) is
// posted to it through the hooks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "config.h"
#include "cyclecast/edge/virtual_node.h"
#include "cyclecast/lifecycle/drift.h"
#include "cyclecast/lifecycle/policy.h"
#include "cyclecast/lifecycle/retrainer.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/storage/registry.h"

namespace cyclecast::daemon {

struct ModelKeeperHooks {
  // On the loop: forecast with this model from now on (never null).
  std::function<void(std::shared_ptr<const edge::LoadedNodeModel>, const std::string& version)>
      use_model;
  // On the loop: publish a message, QoS 1.
  std::function<void(const std::string& topic, const std::string& payload, bool retain)> publish;
};

// The champion's live error against its held-out error at +H.
struct LiveErrorState {
  std::string model_version;
  std::int64_t scored = 0;   // forecasts scored at +H, all origins
  double live_mae = 0.0;     // mean |error at +H| over them
  double heldout_mae = 0.0;  // the model's held-out MAE at +H (metrics "mae_100")
  double threshold = 0.0;    // factor x heldout_mae
  bool alert = false;        // scored >= min_scored and live_mae > threshold
};

// The drift monitor of the champion (docs/lifecycle.md, "Drift"); reset when a champion loads.
struct DriftState {
  std::string model_version;
  double heldout_mae = 0.0;     // the normalizer: the model's held-out MAE at +H ("mae_100")
  double threshold = 0.0;       // Page-Hinkley lambda, in held-out MAEs
  std::int64_t samples = 0;     // host forecasts of the champion scored at +H since it loaded
  double mean_ratio = 0.0;      // mean |error at +H| / heldout_mae over them
  double statistic = 0.0;       // Page-Hinkley PH_t now, in held-out MAEs
  double peak_statistic = 0.0;  // the highest PH_t so far: how close it came to the threshold
  bool detected = false;        // latched until the next champion loads
  std::int64_t detected_at_ms = 0;
  std::string detected_cell;          // the forecast whose error crossed the threshold: its cell
  std::int64_t detected_cycle = 0;    // and its target cycle (at_cycle + H)
  std::int64_t detected_samples = 0;  // samples when it crossed
  std::string detected_band;          // the SOH band of that forecast's origin whose test crossed
  std::int64_t retrain_run = 0;       // the run drift started; 0: none
  // The run waits for alerts.drift_retrain_after_cycles new cycles: stored cycles at detection.
  bool retrain_pending = false;
  std::int64_t cycles_at_detection = 0;
};

struct KeeperStatus {
  std::string champion;        // version forecasting now; empty: none
  std::string champion_error;  // why the registry's champion could not be loaded; empty: fine
  std::optional<LiveErrorState> live_error;
  std::optional<DriftState> drift;  // none while there is no champion or it lacks mae_100
  std::string last_decision;        // the retrain policy's last sentence
  std::uint64_t runs_started = 0, runs_succeeded = 0, runs_failed = 0, promotions = 0,
                alerts_raised = 0, drifts_detected = 0;
};

class ModelKeeper {
 public:
  // Creates the retrainer (which marks runs a stopped process left running as failed) and opens
  // the monitor's connection. Nothing runs until start().
  static Result<std::unique_ptr<ModelKeeper>> create(boost::asio::io_context& loop,
                                                     const Config& config, ModelKeeperHooks hooks);
  ~ModelKeeper();  // stop()
  ModelKeeper(const ModelKeeper&) = delete;
  ModelKeeper& operator=(const ModelKeeper&) = delete;

  // Where the API serves bundles ("http://127.0.0.1:8080"), for the announcement's url; empty
  // (the default) announces the path only.
  void set_api_base(std::string base);
  // Loads and announces the champion, then checks every retrain.check_s.
  void start();
  // Cancels the timer, stops the run in progress (recorded failed, "interrupted by shutdown")
  // and joins the monitor thread. Call from the loop. Idempotent.
  void stop();
  // Applies the reloadable keys (retrain triggers, alerts.*). Call from the loop.
  void reload(const Config& config);

  // Thread-safe. Starts a run now; kConflict while one is in progress.
  Result<std::int64_t> retrain(const std::string& trigger, const std::string& who);
  // Thread-safe. The registry's champion changed (a promotion, a rollback): load and announce
  // it on the monitor thread.
  void champion_changed();
  // Thread-safe, cheap (the caller is the loop). +H errors just scored: those of the champion's
  // host forecasts feed the drift monitor; a detection is acted on from the monitor thread.
  void observe_scored(const std::vector<storage::ScoredForecast>& scored);
  KeeperStatus status() const;
  const lifecycle::Retrainer& retrainer() const { return *retrainer_; }

 private:
  ModelKeeper(boost::asio::io_context& loop, const Config& config, ModelKeeperHooks hooks,
              storage::Database db);
  void schedule_check();
  // On the monitor thread:
  void check();
  void refresh_champion();
  void consider_retraining(std::int64_t now_ms);
  void watch_live_error(std::int64_t now_ms);
  void drift_detected(DriftState state);
  // Starts the drift run that waits for new cycles once they are stored.
  void start_pending_drift_run(std::int64_t now_ms);
  // Starts the run (retrain.min_gap_min permitting) and notes it in the champion's drift state;
  // its id, 0 when none started.
  std::int64_t start_drift_run(std::int64_t now_ms, const Config& config,
                               const std::string& version);
  // Whether an automatic run may start now (retrain.min_gap_min since the last); `why` names
  // the cause in the log line when it may not.
  bool outside_min_gap(std::int64_t now_ms, const Config& config, const std::string& why);
  void run_ended(const lifecycle::RunOutcome& outcome);  // on the retrainer's worker thread

  boost::asio::io_context& loop_;
  ModelKeeperHooks hooks_;
  boost::asio::steady_timer timer_;
  boost::asio::thread_pool monitor_{1};
  std::atomic<bool> check_queued_{false};
  std::unique_ptr<lifecycle::Retrainer> retrainer_;
  storage::Database db_;   // the monitor thread's only
  std::string announced_;  // monitor thread's only: the champion last loaded and announced

  mutable std::mutex mutex_;  // guards what follows
  std::string api_base_;
  Config config_;  // the reloadable keys change under it
  KeeperStatus status_;
  lifecycle::BandedDrift drift_;  // of status_.drift's champion
  bool stopped_ = false;
};

// The retained announcement of a champion (docs/protocol.md, "Model announcements").
std::string champion_announcement(const storage::ModelRecord& model, const std::string& api_base,
                                  std::int64_t now_ms);

}  // namespace cyclecast::daemon
