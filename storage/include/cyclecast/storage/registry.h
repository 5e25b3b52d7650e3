// The model registry (schema version 3, docs/lifecycle.md and docs/storage.md "Model registry"):
// training runs with their trigger, stage, error and data snapshot; models with their status
// (candidate, champion, retired, rolled_back), lineage, held-out metrics, footprint and bundle;
// and model_events, the audit trail of every status change with who, when and why.
//
// Free functions on a Database, working on its connection: its open options (size limit, read
// only, the VFS) apply, and the same rule holds: a Database, and these calls on it, are used by
// one thread at a time. Every change that touches more than one row (promote, rollback,
// register) is one IMMEDIATE transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::storage {

// ---- Training runs ----

// training_runs.status: SQLite cannot change the column's CHECK, so these three are all there is.
enum class RunStatus { kRunning, kSucceeded, kFailed };
const char* run_status_name(RunStatus status);  // "running", "succeeded", "failed"

// The data a run trained on: a consistent copy of the database (Database::backup_to).
struct DataSnapshot {
  std::string path;    // where the copy was (it may be deleted after the run)
  std::string sha256;  // of the copy's bytes, 64 lower-case hex digits
  std::int64_t cells = 0;
  std::int64_t cycles = 0;  // cycles stored when the copy was taken
};

struct TrainingRunRecord {
  std::int64_t id = 0;
  std::string trigger;       // what started it: "interval", "cycles", "manual", ...
  std::string requested_by;  // who: "scheduler", an operator's name, ...
  RunStatus status = RunStatus::kRunning;
  std::string stage;  // the last stage reached ("snapshot", "train", "bundle", "gate", ...)
  std::string error;  // why it failed; empty otherwise
  std::string out_dir;
  DataSnapshot snapshot;
  std::int64_t started_at_ms = 0;
  std::int64_t finished_at_ms = 0;  // 0 while running
  std::string config_json = "{}";   // the options it ran with
  std::string summary_json = "{}";  // what it produced (figures, model version, gate decision)
};

struct NewRun {
  std::string trigger;
  std::string requested_by;
  std::string config_json = "{}";
  std::int64_t started_at_ms = 0;  // 0: now
};

// Inserts a run in status running and returns its id. kInvalidArgument for an empty trigger or
// config_json that is not a JSON object.
Result<std::int64_t> create_run(Database& db, const NewRun& run);

// What a running run has learnt so far; fields left empty are not changed.
struct RunUpdate {
  std::optional<std::string> stage;
  std::optional<std::string> out_dir;
  std::optional<DataSnapshot> snapshot;
};
// kNotFound for an unknown run, kConflict for a run that is no longer running.
Result<void> update_run(Database& db, std::int64_t run_id, const RunUpdate& update);

// Ends a running run: succeeded (error empty) or failed with `error`. kNotFound, kConflict (not
// running), kInvalidArgument (failed without an error, or summary_json not a JSON object).
Result<void> finish_run(Database& db, std::int64_t run_id, RunStatus status,
                        const std::string& error, const std::string& summary_json = "{}");

// Marks every run still 'running' failed with `error` (a process that stopped mid-run leaves
// them so; the daemon calls this at start). Returns how many.
Result<std::int64_t> fail_unfinished_runs(Database& db, const std::string& error);

// Newest first; at most `limit`.
Result<std::vector<TrainingRunRecord>> list_runs(Database& db, std::int64_t limit = 100);
// kNotFound for an unknown id.
Result<TrainingRunRecord> get_run(Database& db, std::int64_t run_id);

// ---- Models ----

enum class ModelStatus { kCandidate, kChampion, kRetired, kRolledBack };
// "candidate", "champion", "retired", "rolled_back"
const char* model_status_name(ModelStatus status);

struct ModelRecord {
  std::string version;
  std::int64_t run_id = 0;  // 0: not from a recorded run
  std::int64_t created_at_ms = 0;
  ModelStatus status = ModelStatus::kCandidate;
  std::string status_reason;  // why it is in its status (the gate's decision, an operator's why)
  std::int64_t status_changed_at_ms = 0;
  std::string lineage_json = "{}";    // run, data snapshot digest, teacher, stage results
  std::string metrics_json = "{}";    // held-out metrics
  std::string footprint_json = "{}";  // flash, RAM, instructions/cycles; measured or estimated
  std::string model_dir;              // the model's files (student.int8, model.bin, report, ...)
  std::string bundle_path;
  std::string bundle_sha256;
  std::int64_t bundle_bytes = 0;
};

struct NewModel {
  std::string version;  // unique, non-empty
  std::int64_t run_id = 0;
  std::string kind = "student-int8";
  std::string lineage_json = "{}";
  std::string metrics_json = "{}";
  std::string footprint_json = "{}";
  std::string model_dir;
  std::string bundle_path;
  std::string bundle_sha256;
  std::int64_t bundle_bytes = 0;
};

// What register_model does right after registering, in the same transaction, so that a run's
// model and the gate's decision on it are stored together or not at all.
enum class AfterRegister {
  kNothing,      // stays a candidate
  kPromote,      // promote(version, actor, then_reason)
  kNotPromoted,  // record_not_promoted(version, actor, then_reason)
};

// Registers a model as a candidate and records the event 'registered' (actor, reason), then
// does `then`, all in one transaction. kConflict when the version exists, kInvalidArgument for
// an empty version or a JSON field that is not an object, kNotFound for an unknown run_id.
Result<ModelRecord> register_model(Database& db, const NewModel& model, const std::string& actor,
                                   const std::string& reason,
                                   AfterRegister then = AfterRegister::kNothing,
                                   const std::string& then_reason = "");

// Newest first.
Result<std::vector<ModelRecord>> list_models(Database& db);
// kNotFound for an unknown version.
Result<ModelRecord> get_model(Database& db, const std::string& version);
// The champion, or nullopt when no model is.
Result<std::optional<ModelRecord>> champion(Database& db);

// Makes `version` the champion: the old champion becomes retired (event 'demoted'), the model
// champion (event 'promoted'), both with `reason`, in one transaction. kNotFound, kConflict when
// it already is the champion.
Result<void> promote(Database& db, const std::string& version, const std::string& actor,
                     const std::string& reason);

// Records that the gate kept a candidate out: status_reason = reason, event 'not_promoted'.
// kNotFound; kConflict when the model is not a candidate.
Result<void> record_not_promoted(Database& db, const std::string& version, const std::string& actor,
                                 const std::string& reason);

// The champion becomes rolled_back (event 'rolled_back') and the previous champion, per the
// event history (the latest 'promoted' model other than it that is now retired), becomes
// champion again (event 'promoted'), in one transaction. Returns the new champion's version.
// kConflict when there is no champion or no previous champion to go back to.
Result<std::string> rollback(Database& db, const std::string& actor, const std::string& reason);

// Records that the drift monitor raised its alarm on a model (event 'drift_detected'; its status
// does not change): `reason` says it in a sentence, `detail_json` (a JSON object) holds the
// figures, e.g. the statistic and the sample count. kNotFound for an unknown version,
// kInvalidArgument when detail_json is not an object.
Result<void> record_drift_detected(Database& db, const std::string& version,
                                   const std::string& actor, const std::string& reason,
                                   const std::string& detail_json);

struct ModelEvent {
  std::int64_t id = 0;
  std::string model_version;
  std::string action;  // registered, promoted, not_promoted, demoted, rolled_back, drift_detected
  std::string actor;
  std::string reason;
  std::int64_t at_ms = 0;
  std::string detail_json = "{}";  // an object; figures of a drift_detected event
};

// The model's events, oldest first. kNotFound for an unknown version.
Result<std::vector<ModelEvent>> events_of(Database& db, const std::string& version);
// Every model's events, newest first; at most `limit`.
Result<std::vector<ModelEvent>> recent_events(Database& db, std::int64_t limit = 100);

}  // namespace cyclecast::storage
