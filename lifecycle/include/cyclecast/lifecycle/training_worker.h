// The training step of a retraining run, in a process of its own (docs/lifecycle.md,
// "Priority"). Why a process: the kernel shares the CPU first between scheduling groups (a
// session's autogroup, or a cgroup) and only then between the threads of a group, so training
// threads at SCHED_IDLE inside the daemon keep the daemon's whole group busy, and every wake-up
// of ingestion then waits behind other processes' work (docs/benchmarks.md, "Ingest during a
// retraining run"). The worker runs in a session of its own at autogroup nice 19, nice 19 and
// SCHED_IDLE; the daemon's group stays idle between ingestion's wake-ups.
//
// The worker is the daemon's own executable started as `cyclecastd --training-worker REQUEST`:
// it reads the request (JSON), loads the snapshot, trains into the request's out_dir, evaluates
// the champion on the same test windows, and reports on stdout, one JSON object per line.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cyclecast/pipeline/train.h"
#include "cyclecast/result.h"

namespace cyclecast::lifecycle {

inline constexpr const char* kTrainingWorkerFlag = "--training-worker";

struct TrainingRequest {
  std::filesystem::path snapshot_path;  // the run's copy of the database
  std::string protocol;
  pipeline::ProtocolOptions protocol_options;
  pipeline::InputChoice inputs = pipeline::InputChoice::kSohOnly;
  pipeline::TrainingOptions training;
  std::filesystem::path out_dir;         // run_training's: must not exist yet
  std::filesystem::path champion_model;  // an int8 blob to evaluate too; empty: none
  bool lower_priority = true;            // own session, autogroup nice 19, nice 19, SCHED_IDLE
};

struct TrainingOutcome {
  std::string protocol_name;
  std::vector<std::string> test_cells;
  pipeline::TrainingResult result;
  double champion_mae = std::numeric_limits<double>::quiet_NaN();  // NaN: none or unreadable
  // The champion (reference) against the run's int8 student (candidate) on the test cells; cells
  // 0 when there is no champion or it could not be evaluated. When the run scored by k-fold over
  // cells (too few cells for a held-out set, pipeline/train.h), the champion is evaluated on every
  // cell's windows against the chosen student's k-fold errors, the test the baselines faced:
  // champion_scoring says which ("held-out" or "k-fold"; empty without a comparison).
  pipeline::PairedBootstrap champion_comparison;
  std::string champion_scoring;
};

struct TrainingWorkerEvents {
  // How the worker runs: "pid 123, nice 19, SCHED_IDLE, own session, autogroup nice 19".
  std::function<void(const std::string& worker)> started;
  std::function<void()> loaded;  // the snapshot is read
  pipeline::TrainingProgressCallback progress;
};

// The request as the worker reads it (JSON with every option, and the daemon's pid), and back.
std::string training_request_text(const TrainingRequest& request);
Result<TrainingRequest> parse_training_request(const std::string& text);  // kParse

// Starts `executable` as the worker for `request` (written to `request_file`), relays its events
// and returns what it trained. Setting `cancel` sends the worker SIGTERM (the pipeline's cancel
// flag: it stops within a training step; SIGKILL 30 s later) and returns kCancelled. Errors: the
// worker's own (the pipeline's codes), kIo when it cannot be started, kCorrupt when it ended
// without a result.
Result<TrainingOutcome> train_in_worker(const std::filesystem::path& executable,
                                        const TrainingRequest& request,
                                        const std::filesystem::path& request_file,
                                        const TrainingWorkerEvents& events,
                                        const std::atomic<bool>& cancel);

// The worker's side, for the executable's main(): returns its exit status (0: a result was
// reported). It dies with the thread that started it (PR_SET_PDEATHSIG).
int training_worker_main(const std::filesystem::path& request_file);

}  // namespace cyclecast::lifecycle
