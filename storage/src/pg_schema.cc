// The PostgreSQL schema and its forward-only migrations (docs/storage.md, "Backends").
//
// A cyclecast database on PostgreSQL is recognised by the table cyclecast_database (one row,
// application = 'cyclecast') in the connection's current schema; a schema with other tables and
// no such row is someone else's and is refused, as SQLite files with another application id
// are. schema_version holds one row per applied migration. Each migration runs in its own
// transaction (PostgreSQL's DDL is transactional) under an advisory lock, so that replicas
// opening the same database at once migrate it once, and a crash leaves the previous version.
#include <iterator>
#include <string>

#include "pg_backend.h"

namespace cyclecast::storage::detail {
namespace {

struct PgMigration {
  int version;
  const char* description;
  const char* sql;
};

// Version 1: the ingest path and forecasts, with the concepts of the SQLite schema's version 2
// and the forecasts' interval columns of its version 4 (docs/storage.md). Version 1 has not
// been released (not on main), so the interval columns extend it rather than make a version 2.
// bigint ids (identity), double precision values, epoch-millisecond bigints; the raw rejected
// payload and the forecast's float32 vector as bytea. cycles is keyed by (cell, cycle): "stored
// exactly once" is the primary key, whichever replica writes.
constexpr const char* kPgSchemaV1 = R"sql(
CREATE TABLE rigs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rig_id text NOT NULL UNIQUE CHECK (rig_id <> ''),
  description text NOT NULL DEFAULT ''
);

CREATE TABLE cells (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cell_id text NOT NULL UNIQUE CHECK (cell_id <> ''),
  rig bigint REFERENCES rigs(id),
  chemistry text NOT NULL DEFAULT '',
  rated_capacity_ah double precision NOT NULL CHECK (rated_capacity_ah > 0),
  charge_policy text NOT NULL DEFAULT '',
  metadata_json text NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(metadata_json::jsonb) = 'object')
);
CREATE INDEX cells_by_rig ON cells(rig);

CREATE TABLE sources (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE
);

CREATE TABLE cycles (
  cell bigint NOT NULL REFERENCES cells(id),
  cycle bigint NOT NULL,
  discharge_capacity_ah double precision NOT NULL,
  charge_capacity_ah double precision,
  internal_resistance_ohm double precision,
  temperature_min_c double precision,
  temperature_avg_c double precision,
  temperature_max_c double precision,
  charge_time_min double precision,
  measured_at_ms bigint,
  received_at_ms bigint NOT NULL,
  source bigint NOT NULL REFERENCES sources(id),
  PRIMARY KEY (cell, cycle)
);

CREATE TABLE rejected (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source text NOT NULL,
  payload bytea NOT NULL,
  reason text NOT NULL,
  rejected_at_ms bigint NOT NULL
);

CREATE TABLE forecasts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cell bigint NOT NULL REFERENCES cells(id),
  at_cycle bigint NOT NULL,
  model_version text NOT NULL,
  origin text NOT NULL,
  soh_f32le bytea NOT NULL CHECK (length(soh_f32le) % 4 = 0),
  created_at_ms bigint NOT NULL,
  error_10 double precision,
  error_h double precision,
  -- Prediction intervals (SQLite's version 4): the bounds of each step of soh_f32le, as it
  -- holds them; NULL: the forecast has no interval.
  lower_f32le bytea CHECK (lower_f32le IS NULL OR length(lower_f32le) % 4 = 0),
  upper_f32le bytea CHECK (upper_f32le IS NULL OR length(upper_f32le) % 4 = 0)
);
-- One forecast per (cell, at_cycle, model_version, origin), by the key rather than by a
-- look-up before the insert: replicas may write the same re-delivered forecast at once.
CREATE UNIQUE INDEX forecasts_once ON forecasts(cell, at_cycle, model_version, origin);
CREATE INDEX forecasts_unscored ON forecasts(cell, at_cycle) WHERE error_h IS NULL;
)sql";

// Version 2: the model registry, with the concepts of the SQLite schema's versions 3 and 5
// (docs/storage.md, "Model registry"): training runs with their trigger, stage, error and data
// snapshot; models with their status, lineage, footprint and bundle; model_events, the audit
// trail, drift_detected and its detail included. The JSON columns stay text (an operator reads
// back exactly what was written), CHECKed to hold a JSON object. "Exactly one champion" is the
// partial unique index, as on SQLite.
constexpr const char* kPgSchemaV2 = R"sql(
CREATE TABLE training_runs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  started_at_ms bigint NOT NULL,
  finished_at_ms bigint,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  config_json text NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config_json::jsonb) = 'object'),
  summary_json text NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(summary_json::jsonb) = 'object'),
  trigger_kind text NOT NULL DEFAULT 'manual',
  requested_by text NOT NULL DEFAULT '',
  stage text NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT '',
  out_dir text NOT NULL DEFAULT '',
  snapshot_path text NOT NULL DEFAULT '',
  snapshot_sha256 text NOT NULL DEFAULT '',
  snapshot_cells bigint NOT NULL DEFAULT 0,
  snapshot_cycles bigint NOT NULL DEFAULT 0
);
CREATE INDEX training_runs_by_status ON training_runs(status);

CREATE TABLE models (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  version text NOT NULL UNIQUE CHECK (version <> ''),
  kind text NOT NULL,
  training_run bigint REFERENCES training_runs(id),
  created_at_ms bigint NOT NULL,
  file_path text,
  metrics_json text NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics_json::jsonb) = 'object'),
  status text NOT NULL DEFAULT 'candidate'
    CHECK (status IN ('candidate', 'champion', 'retired', 'rolled_back')),
  status_reason text NOT NULL DEFAULT '',
  status_changed_at_ms bigint NOT NULL DEFAULT 0,
  lineage_json text NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(lineage_json::jsonb) = 'object'),
  footprint_json text NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(footprint_json::jsonb) = 'object'),
  bundle_path text NOT NULL DEFAULT '',
  bundle_sha256 text NOT NULL DEFAULT '',
  bundle_bytes bigint NOT NULL DEFAULT 0
);
CREATE INDEX models_by_training_run ON models(training_run);
CREATE UNIQUE INDEX models_one_champion ON models(status) WHERE status = 'champion';

CREATE TABLE model_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  model bigint NOT NULL REFERENCES models(id),
  action text NOT NULL CHECK (action IN ('registered', 'promoted', 'not_promoted', 'demoted',
                                         'rolled_back', 'drift_detected')),
  actor text NOT NULL,
  reason text NOT NULL DEFAULT '',
  at_ms bigint NOT NULL,
  detail_json text NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail_json::jsonb) = 'object')
);
CREATE INDEX model_events_by_model ON model_events(model, id);
)sql";

constexpr PgMigration kPgMigrations[] = {
    {1, "ingest path and forecasts", kPgSchemaV1},
    {2, "model registry", kPgSchemaV2},
};
static_assert(std::size(kPgMigrations) == kPgSchemaVersion);

// Any constant both sides agree on: serialises migrations across connections.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7164934655131369827)";

constexpr const char* kCreateMarker = R"sql(
CREATE TABLE IF NOT EXISTS cyclecast_database (
  application text PRIMARY KEY CHECK (application = 'cyclecast')
);
INSERT INTO cyclecast_database VALUES ('cyclecast') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS schema_version (
  version integer PRIMARY KEY,
  description text NOT NULL,
  applied_at_ms bigint NOT NULL
);
)sql";

std::int64_t single_int(const PgRows& rows) {
  if (rows.rows.empty() || rows.rows.front().empty() || !rows.rows.front().front()) return 0;
  return std::stoll(*rows.rows.front().front());
}

// 0: an empty schema (a new database); 1: ours; -1: someone else's tables. One statement, so
// one snapshot: as two, a replica migrating the schema meanwhile could commit between them, and
// "no marker yet" followed by "tables now" read as a foreign schema (the concurrent-open flake).
Result<int> whose_schema(PgBackend& backend) {
  auto counts = backend.query(
      "SELECT (SELECT count(*) FROM information_schema.tables WHERE table_schema = "
      "current_schema() AND table_name = 'cyclecast_database'), (SELECT count(*) FROM "
      "information_schema.tables WHERE table_schema = current_schema())",
      "looking for cyclecast's tables");
  if (!counts) return counts.error();
  if (counts->rows.empty() || counts->rows.front().size() < 2) return 0;
  const auto& row = counts->rows.front();
  if (row[0] && std::stoll(*row[0]) > 0) return 1;
  return row[1] && std::stoll(*row[1]) > 0 ? -1 : 0;
}

Result<int> read_version(PgBackend& backend) {
  auto rows = backend.query("SELECT coalesce(max(version), 0) FROM schema_version",
                            "reading the schema version");
  if (!rows) return rows.error();
  return static_cast<int>(single_int(*rows));
}

// One migration in one transaction; nothing when another connection applied it meanwhile.
Result<void> apply(PgBackend& backend, const PgMigration& migration) {
  return backend.in_transaction([&]() -> Result<void> {
    if (auto locked = backend.query(kMigrationLock, "locking the schema"); !locked) {
      return locked.error();
    }
    if (auto marked = backend.query(kCreateMarker, "marking the database as cyclecast's");
        !marked) {
      return marked.error();
    }
    Result<int> version = read_version(backend);
    if (!version) return version.error();
    if (*version >= migration.version) return {};
    const std::string what = "migrating to schema version " + std::to_string(migration.version);
    if (auto done = backend.query(migration.sql, what); !done) return done.error();
    const PgParam params[] = {{std::to_string(migration.version)},
                              {std::string(migration.description)},
                              {std::to_string(now_ms())}};
    if (auto recorded = backend.query(
            "INSERT INTO schema_version(version, description, applied_at_ms) VALUES ($1, $2, $3)",
            params, what);
        !recorded) {
      return recorded.error();
    }
    return {};
  });
}

}  // namespace

Result<int> pg_migrate(PgBackend& backend, const std::string& url, bool read_only) {
  Result<int> whose = whose_schema(backend);
  if (!whose) return whose.error();
  if (*whose < 0) {
    return make_error(ErrorCode::kUnsupported,
                      "PostgreSQL database " + url +
                          " is not a cyclecast database: its schema has tables but no "
                          "cyclecast_database marker");
  }
  int version = 0;
  if (*whose > 0) {
    Result<int> stored = read_version(backend);
    if (!stored) return stored.error();
    version = *stored;
  }
  if (version > kPgSchemaVersion) {
    return make_error(ErrorCode::kUnsupported,
                      "PostgreSQL database " + url + " has schema version " +
                          std::to_string(version) + ", newer than this build's " +
                          std::to_string(kPgSchemaVersion) + "; upgrade cyclecast");
  }
  if (version == kPgSchemaVersion) return version;
  if (read_only) {
    return make_error(ErrorCode::kUnsupported,
                      "PostgreSQL database " + url + " is at schema version " +
                          std::to_string(version) + " and needs migrating to " +
                          std::to_string(kPgSchemaVersion) + ", which a read-only open cannot do");
  }
  for (const PgMigration& migration : kPgMigrations) {
    if (migration.version <= version) continue;
    if (auto done = apply(backend, migration); !done) return done.error();
  }
  Result<int> migrated = read_version(backend);
  if (!migrated) return migrated.error();
  if (*migrated > kPgSchemaVersion) {
    return make_error(ErrorCode::kUnsupported, "PostgreSQL database " + url +
                                                   " was migrated past this build's schema by "
                                                   "another process; upgrade cyclecast");
  }
  return *migrated;
}

}  // namespace cyclecast::storage::detail
