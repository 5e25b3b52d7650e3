// The retraining worker (docs/lifecycle.md): one run at a time on a thread of its own at the
// lowest priority, on a consistent snapshot of the database, with the training itself in a
// process of its own (training_worker.h), from snapshot to a registered model with its signed
// bundle and the promotion gate's decision. A run that fails or is stopped
// leaves the registry as it was, removes its partial files and is recorded failed with its
// error. No Asio, MQTT or logging here: cyclecastd wires the triggers, the announcements and the
// log lines to this class.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cyclecast/lifecycle/gate.h"
#include "cyclecast/lifecycle/measure.h"
#include "cyclecast/pipeline/protocols.h"
#include "cyclecast/pipeline/train.h"
#include "cyclecast/result.h"

namespace cyclecast::lifecycle {

struct RetrainerConfig {
  std::filesystem::path database_path;  // the daemon's database (a connection of our own)
  std::filesystem::path state_dir;      // STATE: runs/, models/, bundles/, keys/
  std::string protocol = "split";       // pipeline::load_protocol name; "split" fits any database
  pipeline::ProtocolOptions protocol_options;
  pipeline::InputChoice inputs = pipeline::InputChoice::kSohOnly;
  pipeline::TrainingOptions training;
  // The lower 90 % bound of the improvement over the champion must exceed this fraction of the
  // champion's MAE (lifecycle/gate.h); 0: any improvement the data supports.
  double promotion_margin = 0.0;
  DeploymentBudget budget;  // of the gate; 0 limits are off
  // Keep STATE/runs/<id>/snapshot.db after a successful run (its digest is in the registry
  // either way; the copy is as large as the database).
  bool keep_snapshot = false;
  std::string gate_actor = "gate";  // who the automatic decision is recorded as
  // The worker thread runs at nice 19 and SCHED_IDLE, the training process also in a session of
  // its own at autogroup nice 19 (see docs/lifecycle.md). Off only where nothing else needs the
  // CPU more, e.g. tests on a loaded machine, where an idle-class run can take many times as
  // long.
  bool lower_priority = true;
  // The executable that trains, started as `<it> --training-worker REQUEST`: the running one,
  // cyclecastd, by default; tests that run a Retrainer themselves name the built cyclecastd.
  std::filesystem::path worker_executable = "/proc/self/exe";
  // The footprint of each run's student, which the gate checks against `budget` and the
  // registry keeps: measured on the Cortex-M4 under QEMU (bundle/measure.h) when kOn, or kAuto
  // and the cross tools run; else the pipeline's estimate. With kOn a run fails if it cannot
  // measure.
  enum class Measure { kAuto, kOn, kOff };
  Measure measure = Measure::kAuto;
  bundle::TargetTools target_tools;
};

// What a run is doing now. Stages: "snapshot", "read", then the pipeline's stages ("prepare",
// "teacher", "stage1", "prune", "stage2", "quantize", "select", "report"), then "export",
// "bundle", "gate".
struct RunProgress {
  std::int64_t run_id = 0;
  std::string trigger;
  std::string requested_by;
  std::string stage;
  double stage_fraction = 0.0;
  double overall_fraction = 0.0;
  std::string detail;
  double eta_s = std::numeric_limits<double>::quiet_NaN();  // seconds left; NaN: unknown
  std::int64_t started_at_ms = 0;
  std::string worker;  // the training process's pid and priority, once it has started
};

// How a run ended, handed to the completion callback.
struct RunOutcome {
  std::int64_t run_id = 0;
  std::string trigger;
  std::string requested_by;
  bool succeeded = false;
  bool interrupted = false;  // stopped by stop(): failed "interrupted by shutdown"
  std::string error;         // why it failed; empty when it succeeded
  // When it succeeded: the registered model, the gate's decision and the stored bundle.
  std::string model_version;
  bool promoted = false;
  std::string gate_reason;
  double candidate_mae = std::numeric_limits<double>::quiet_NaN();
  double champion_mae = std::numeric_limits<double>::quiet_NaN();  // NaN: no champion
  std::string bundle_path;
  std::string bundle_sha256;
  std::int64_t bundle_bytes = 0;
  std::string worker;  // how the training process ran (TrainingWorkerEvents::started)
};

// The model version of a run: "r<run id>-<YYYYMMDD>" of its start in UTC, e.g. "r12-20261130"
// (at most 32 characters of [A-Za-z0-9._-], as bundles and the node protocol require; unique
// because run ids are).
std::string model_version_for(std::int64_t run_id, std::int64_t started_at_ms);

class Retrainer {
 public:
  // Called on the worker thread when a run ends, before the next run may start; it must not
  // call start() or stop() (start() would answer kConflict; stop() would deadlock).
  using CompletionCallback = std::function<void(const RunOutcome&)>;

  // Creates STATE/runs, models, bundles and the signing key (bundle::load_or_create_signing_key)
  // if missing, and settles runs a stopped process left 'running': one whose model is registered
  // is finished succeeded ("recovered" in its summary), any other failed ("interrupted: the
  // process stopped during the run") with its files removed; so is any *.partial left in
  // models/ and bundles/. Errors: kIo, kInvalidArgument (key file mode), storage's errors.
  static Result<std::unique_ptr<Retrainer>> create(RetrainerConfig config,
                                                   CompletionCallback on_done = {});

  Retrainer(const Retrainer&) = delete;
  Retrainer& operator=(const Retrainer&) = delete;
  ~Retrainer();  // stop()

  // Records a new run (trigger: "manual", "interval", "cycles", ...; who: an operator or
  // "scheduler") and starts it on the worker thread. Returns the run id; kConflict while a run
  // is in progress or after stop(); storage's errors when the run cannot be recorded.
  Result<std::int64_t> start(const std::string& trigger, const std::string& who);

  // A snapshot of the run in progress; nullopt when none is. Thread-safe.
  std::optional<RunProgress> progress() const;
  bool running() const;
  // The outcome of the last run that ended since create(); nullopt before. Thread-safe.
  std::optional<RunOutcome> last_outcome() const;

  // Waits for the run in progress, if any, to end by itself.
  void wait();
  // Cancels the run in progress (SIGTERM to the training process, which sets the pipeline's
  // cancel flag: it ends within a training step) and joins the worker; the run is recorded
  // failed "interrupted by shutdown". Later start() calls answer kConflict. Call from the
  // owner's thread.
  void stop();

  const RetrainerConfig& config() const { return config_; }

 private:
  struct Signing;
  Retrainer(RetrainerConfig config, CompletionCallback on_done, std::unique_ptr<Signing> signing);

  // One run, stage by stage (retrainer.cc): each stage reads and fills the run's state, and the
  // first failure ends the run.
  struct RunState;
  void work(RunProgress started);
  RunOutcome execute(const RunProgress& started);
  Result<void> run_stages(RunState& run);
  Result<void> enter(RunState& run, const std::string& stage, double overall_fraction);
  Result<void> take_snapshot(RunState& run);
  Result<void> train(RunState& run);
  Result<void> store_model(RunState& run);
  Result<void> bundle_candidate(RunState& run);
  Result<void> gate_and_register(RunState& run);
  void set_worker(const std::string& worker);
  void set_progress(const std::string& stage, double stage_fraction, double overall_fraction,
                    const std::string& detail, double eta_s);

  RetrainerConfig config_;
  CompletionCallback on_done_;
  std::unique_ptr<Signing> signing_;

  mutable std::mutex mutex_;  // guards everything below but cancel_
  std::optional<RunProgress> progress_;
  std::optional<RunOutcome> last_outcome_;
  bool stopped_ = false;
  std::thread worker_;
  std::atomic<bool> cancel_{false};
};

}  // namespace cyclecast::lifecycle
