#include "schema.h"

#include <iterator>
#include <string>

#include "cyclecast/storage/database.h"
#include "sqlite_util.h"

namespace cyclecast::storage::detail {
namespace {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Version 1, the initial schema. Columns carry their unit in the name; timestamps are Unix
// epoch milliseconds. Cycle rows are WITHOUT ROWID keyed by (cell, cycle): the key is the
// table, so an insert touches one B-tree and "stored exactly once" is the primary key.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE schema_version (
  version INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  applied_at_ms INTEGER NOT NULL
);

CREATE TABLE rigs (
  id INTEGER PRIMARY KEY,
  rig_id TEXT NOT NULL UNIQUE CHECK (rig_id <> ''),
  description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE cells (
  id INTEGER PRIMARY KEY,
  cell_id TEXT NOT NULL UNIQUE CHECK (cell_id <> ''),
  rig INTEGER REFERENCES rigs(id),
  chemistry TEXT NOT NULL DEFAULT '',
  rated_capacity_ah REAL NOT NULL CHECK (rated_capacity_ah > 0),
  charge_policy TEXT NOT NULL DEFAULT '',
  metadata_json TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(metadata_json) AND json_type(metadata_json) = 'object')
);
CREATE INDEX cells_by_rig ON cells(rig);

-- Where records came from ("import:FILE", "mqtt:TOPIC"): few distinct values, so cycles
-- refer to them by id instead of repeating the text in every row.
CREATE TABLE sources (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);

CREATE TABLE cycles (
  cell INTEGER NOT NULL REFERENCES cells(id),
  cycle INTEGER NOT NULL,
  discharge_capacity_ah REAL NOT NULL,
  charge_capacity_ah REAL,
  internal_resistance_ohm REAL,
  temperature_min_c REAL,
  temperature_avg_c REAL,
  temperature_max_c REAL,
  charge_time_min REAL,
  measured_at_ms INTEGER,
  received_at_ms INTEGER NOT NULL,
  source INTEGER NOT NULL REFERENCES sources(id),
  PRIMARY KEY (cell, cycle)
) WITHOUT ROWID;

CREATE TABLE rejected (
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  payload BLOB NOT NULL,
  reason TEXT NOT NULL,
  rejected_at_ms INTEGER NOT NULL
);

CREATE TABLE training_runs (
  id INTEGER PRIMARY KEY,
  started_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  config_json TEXT NOT NULL DEFAULT '{}',
  summary_json TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE models (
  id INTEGER PRIMARY KEY,
  version TEXT NOT NULL UNIQUE CHECK (version <> ''),
  kind TEXT NOT NULL,
  training_run INTEGER REFERENCES training_runs(id),
  created_at_ms INTEGER NOT NULL,
  file_path TEXT,
  metrics_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX models_by_training_run ON models(training_run);

CREATE TABLE forecasts (
  id INTEGER PRIMARY KEY,
  cell INTEGER NOT NULL REFERENCES cells(id),
  at_cycle INTEGER NOT NULL,
  model_version TEXT NOT NULL,
  origin TEXT NOT NULL,
  soh_f32le BLOB NOT NULL CHECK (length(soh_f32le) % 4 = 0),
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX forecasts_by_cell ON forecasts(cell, at_cycle);
)sql";

// Version 2: forecasts are scored as the real cycles arrive. error_10 / error_h are the actual
// SOH at at_cycle + 10 / at_cycle + H minus the forecast there (NULL until that cycle is stored,
// or for good when the forecast has no value there). The partial index keeps the scorer's scan
// to the forecasts still waiting for their +H cycle.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE forecasts ADD COLUMN error_10 REAL;
ALTER TABLE forecasts ADD COLUMN error_h REAL;
CREATE INDEX forecasts_unscored ON forecasts(cell, at_cycle) WHERE error_h IS NULL;
)sql";

// Version 3: the model registry (docs/lifecycle.md). A run records what started it, how far it
// got, why it failed and the data snapshot it trained on; the CHECK of training_runs.status
// cannot change, so an interrupted run is 'failed' with an error saying so. A model has a status
// (at most one champion: the partial unique index), its lineage, held-out metrics, footprint and
// bundle; model_events is the audit trail of who changed a status, when and why.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE training_runs ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE training_runs ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
ALTER TABLE training_runs ADD COLUMN stage TEXT NOT NULL DEFAULT '';
ALTER TABLE training_runs ADD COLUMN error TEXT NOT NULL DEFAULT '';
ALTER TABLE training_runs ADD COLUMN out_dir TEXT NOT NULL DEFAULT '';
ALTER TABLE training_runs ADD COLUMN snapshot_path TEXT NOT NULL DEFAULT '';
ALTER TABLE training_runs ADD COLUMN snapshot_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE training_runs ADD COLUMN snapshot_cells INTEGER NOT NULL DEFAULT 0;
ALTER TABLE training_runs ADD COLUMN snapshot_cycles INTEGER NOT NULL DEFAULT 0;
CREATE INDEX training_runs_by_status ON training_runs(status);

ALTER TABLE models ADD COLUMN status TEXT NOT NULL DEFAULT 'candidate'
  CHECK (status IN ('candidate', 'champion', 'retired', 'rolled_back'));
ALTER TABLE models ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN status_changed_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN lineage_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE models ADD COLUMN footprint_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE models ADD COLUMN bundle_path TEXT NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN bundle_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN bundle_bytes INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX models_one_champion ON models(status) WHERE status = 'champion';

CREATE TABLE model_events (
  id INTEGER PRIMARY KEY,
  model INTEGER NOT NULL REFERENCES models(id),
  action TEXT NOT NULL
    CHECK (action IN ('registered', 'promoted', 'not_promoted', 'demoted', 'rolled_back')),
  actor TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  at_ms INTEGER NOT NULL
);
CREATE INDEX model_events_by_model ON model_events(model, id);
)sql";

// Version 4: prediction intervals (docs/pipeline.md, "Prediction intervals"). lower_f32le and
// upper_f32le hold the bounds of each step of soh_f32le, as it does; NULL: the forecast has no
// interval (every forecast stored before, and those of a model without an interval table).
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE forecasts ADD COLUMN lower_f32le BLOB
  CHECK (lower_f32le IS NULL OR length(lower_f32le) % 4 = 0);
ALTER TABLE forecasts ADD COLUMN upper_f32le BLOB
  CHECK (upper_f32le IS NULL OR length(upper_f32le) % 4 = 0);
)sql";

// Version 5: a drift alarm on a champion is an event of the model (docs/lifecycle.md, "Drift"),
// with what the monitor measured in detail_json. SQLite cannot widen a CHECK in place, so the
// table is copied into a new one with the wider set of actions; ids and rows are kept.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE model_events_v5 (
  id INTEGER PRIMARY KEY,
  model INTEGER NOT NULL REFERENCES models(id),
  action TEXT NOT NULL
    CHECK (action IN ('registered', 'promoted', 'not_promoted', 'demoted', 'rolled_back',
                      'drift_detected')),
  actor TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  at_ms INTEGER NOT NULL,
  detail_json TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(detail_json) AND json_type(detail_json) = 'object')
);
INSERT INTO model_events_v5(id, model, action, actor, reason, at_ms)
  SELECT id, model, action, actor, reason, at_ms FROM model_events;
DROP TABLE model_events;
ALTER TABLE model_events_v5 RENAME TO model_events;
CREATE INDEX model_events_by_model ON model_events(model, id);
)sql";

// Forward-only: a released step is never edited; a schema change is a new step at the end.
constexpr Migration kMigrations[] = {
    {1, "initial schema", kSchemaV1}, {2, "forecast scoring", kSchemaV2},
    {3, "model registry", kSchemaV3}, {4, "forecast intervals", kSchemaV4},
    {5, "drift events", kSchemaV5},
};

static_assert(std::size(kMigrations) == static_cast<std::size_t>(kSchemaVersion),
              "every schema version from 1 to kSchemaVersion needs exactly one migration");

Result<void> apply(sqlite3* db, const Migration& step) {
  if (auto begun = exec(db, "BEGIN IMMEDIATE", "starting a migration"); !begun) return begun;
  // Another process may have migrated the file between our read and our write lock.
  Result<int> current = read_schema_version(db);
  Result<void> outcome;
  if (!current) {
    outcome = current.error();
  } else if (*current < step.version) {
    const std::string what = "migration to schema version " + std::to_string(step.version);
    outcome = exec(db, step.sql, what);
    if (outcome && step.version == 1) {
      outcome = exec(db, ("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str(),
                     "marking the file as a cyclecast database");
    }
    if (outcome) {
      const std::string record =
          "INSERT INTO schema_version(version, description, applied_at_ms) VALUES (" +
          std::to_string(step.version) + ", '" + step.description + "', " +
          std::to_string(now_ms()) + ")";
      outcome = exec(db, record.c_str(), what);
    }
  }
  if (!outcome) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return outcome;
  }
  return exec(db, "COMMIT", "committing a migration");
}

}  // namespace

Result<void> check_is_cyclecast_database(sqlite3* db, const std::filesystem::path& path) {
  // The first read of the file: this is where SQLite notices a file that is not a database.
  Result<std::int64_t> app_id = query_int(db, "PRAGMA application_id", "reading the header");
  if (!app_id) {
    // What to do next, for an operator whose database this was (docs/storage.md).
    const std::string hint =
        "; if it is cyclecast's database, stop the daemon and restore the latest `cyclecast db "
        "backup` over it, or salvage its rows with `sqlite3 " +
        path.string() + " .recover` (docs/storage.md, \"Check and backup\")";
    if (app_id.error().code == ErrorCode::kUnsupported) {
      return make_error(
          ErrorCode::kUnsupported,
          quoted(path) + " is not an SQLite database (or its header is damaged)" + hint);
    }
    if (app_id.error().code == ErrorCode::kCorrupt) {
      return make_error(ErrorCode::kCorrupt, app_id.error().message + hint);
    }
    return app_id.error();
  }
  if (*app_id == kApplicationId) return {};
  if (*app_id != 0) {
    return make_error(ErrorCode::kUnsupported,
                      quoted(path) +
                          " is an SQLite database of another application (application_id " +
                          std::to_string(*app_id) + "), not a cyclecast database");
  }
  Result<std::int64_t> objects =
      query_int(db, "SELECT count(*) FROM sqlite_schema", "listing the schema");
  if (!objects) return objects.error();
  if (*objects != 0) {
    return make_error(ErrorCode::kUnsupported,
                      quoted(path) + " is an SQLite database with " + std::to_string(*objects) +
                          " schema objects but not a cyclecast database (no cyclecast "
                          "application_id)");
  }
  return {};
}

Result<int> read_schema_version(sqlite3* db) {
  Result<std::int64_t> has_table = query_int(
      db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'",
      "looking for the schema_version table");
  if (!has_table) return has_table.error();
  if (*has_table == 0) return 0;
  Result<std::int64_t> version =
      query_int(db, "SELECT max(version) FROM schema_version", "reading the schema version");
  if (!version) return version.error();
  return static_cast<int>(*version);
}

Result<int> migrate(sqlite3* db, const std::filesystem::path& path, bool read_only) {
  Result<int> version = read_schema_version(db);
  if (!version) return version;
  if (*version > kSchemaVersion) {
    return make_error(ErrorCode::kUnsupported,
                      quoted(path) + " has schema version " + std::to_string(*version) +
                          ", newer than version " + std::to_string(kSchemaVersion) +
                          " that this build of cyclecast supports; use a newer cyclecast");
  }
  if (*version == kSchemaVersion) return version;
  if (read_only) {
    return make_error(ErrorCode::kUnsupported,
                      quoted(path) + " has schema version " + std::to_string(*version) +
                          " and needs migrating to version " + std::to_string(kSchemaVersion) +
                          ", which a read-only open cannot do");
  }
  for (const Migration& step : kMigrations) {
    if (step.version <= *version) continue;
    if (auto applied = apply(db, step); !applied) return applied.error();
  }
  return read_schema_version(db);
}

}  // namespace cyclecast::storage::detail
