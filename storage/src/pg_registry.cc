// The model registry on PostgreSQL (pg_registry.h): registry.cc's statements in PostgreSQL's
// dialect. Every change that reads before it writes (promote, rollback, register, finishing a
// run) is one transaction that first takes a transaction-level advisory lock: replicas sharing
// the database change the registry one at a time, as SQLite's BEGIN IMMEDIATE makes writers
// do, so "read the champion, then crown another" cannot interleave between two of them (the
// partial unique index models_one_champion would refuse the second, but as an error rather than
// the promotion the first one's outcome implies).
#include "pg_registry.h"

#include <charconv>
#include <utility>

namespace cyclecast::storage::detail {
namespace {

// Any constant of its own (pg_schema.cc's migration lock is another).
constexpr const char* kRegistryLock = "SELECT pg_advisory_xact_lock(7164934655131369828)";

PgParam text_value(std::string value) {
  return PgParam{std::move(value), false};
}
PgParam int_value(std::int64_t value) {
  return PgParam{std::to_string(value), false};
}
std::int64_t int_from(const std::optional<std::string>& value) {
  std::int64_t out = 0;
  if (value) std::from_chars(value->data(), value->data() + value->size(), out);
  return out;
}
std::string text_from(const std::optional<std::string>& value) {
  return value.value_or(std::string{});
}

std::int64_t now_or(std::int64_t ms) {
  return ms != 0 ? ms : now_ms();
}

// Runs `body` in a transaction holding the registry's lock.
template <typename Body>
auto changing(PgBackend& pg, Body&& body) -> decltype(body()) {
  return pg.in_transaction([&]() -> decltype(body()) {
    if (auto locked = pg.query(kRegistryLock, "locking the model registry"); !locked) {
      return locked.error();
    }
    return body();
  });
}

// kInvalidArgument unless `text` is a JSON object. A text that is not JSON at all fails the cast
// (SQLSTATE class 22), which must not abort a transaction: callers check before they begin one.
Result<void> require_json_object(PgBackend& pg, const std::string& text, const char* field) {
  const PgParam params[] = {text_value(text)};
  auto rows = pg.query("SELECT jsonb_typeof($1::text::jsonb) = 'object'", params, "checking JSON");
  const bool object = rows && !rows->rows.empty() && rows->rows.front()[0] == "t";
  if (!rows && rows.error().code != ErrorCode::kInvalidArgument) return rows.error();
  if (!object) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(field) + " is not a JSON object: " + text.substr(0, 80));
  }
  return {};
}

// ---- runs ----

constexpr const char* kRunColumns =
    "SELECT id, trigger_kind, requested_by, status, stage, error, out_dir, snapshot_path, "
    "snapshot_sha256, snapshot_cells, snapshot_cycles, started_at_ms, "
    "coalesce(finished_at_ms, 0), config_json, summary_json FROM training_runs ";

TrainingRunRecord run_of(const std::vector<std::optional<std::string>>& row) {
  TrainingRunRecord r;
  r.id = int_from(row[0]);
  r.trigger = text_from(row[1]);
  r.requested_by = text_from(row[2]);
  r.status = run_status_of(text_from(row[3]));
  r.stage = text_from(row[4]);
  r.error = text_from(row[5]);
  r.out_dir = text_from(row[6]);
  r.snapshot.path = text_from(row[7]);
  r.snapshot.sha256 = text_from(row[8]);
  r.snapshot.cells = int_from(row[9]);
  r.snapshot.cycles = int_from(row[10]);
  r.started_at_ms = int_from(row[11]);
  r.finished_at_ms = int_from(row[12]);
  r.config_json = text_from(row[13]);
  r.summary_json = text_from(row[14]);
  return r;
}

Result<TrainingRunRecord> read_run(PgBackend& pg, std::int64_t run_id) {
  const PgParam params[] = {int_value(run_id)};
  auto rows =
      pg.query(std::string(kRunColumns) + "WHERE id = $1", params, "reading a training run");
  if (!rows) return rows.error();
  if (rows->rows.empty()) {
    return make_error(ErrorCode::kNotFound, "no training run " + std::to_string(run_id));
  }
  return run_of(rows->rows.front());
}

Result<void> require_running(PgBackend& pg, std::int64_t run_id) {
  auto run = read_run(pg, run_id);
  if (!run) return run.error();
  if (run->status != RunStatus::kRunning) {
    return make_error(ErrorCode::kConflict, "training run " + std::to_string(run_id) + " is " +
                                                run_status_name(run->status) +
                                                ", no longer running");
  }
  return {};
}

// ---- models ----

constexpr const char* kModelColumns =
    "SELECT m.version, coalesce(m.training_run, 0), m.created_at_ms, m.status, m.status_reason, "
    "m.status_changed_at_ms, m.lineage_json, m.metrics_json, m.footprint_json, "
    "coalesce(m.file_path, ''), m.bundle_path, m.bundle_sha256, m.bundle_bytes FROM models m ";

ModelRecord model_of(const std::vector<std::optional<std::string>>& row) {
  ModelRecord m;
  m.version = text_from(row[0]);
  m.run_id = int_from(row[1]);
  m.created_at_ms = int_from(row[2]);
  m.status = model_status_of(text_from(row[3]));
  m.status_reason = text_from(row[4]);
  m.status_changed_at_ms = int_from(row[5]);
  m.lineage_json = text_from(row[6]);
  m.metrics_json = text_from(row[7]);
  m.footprint_json = text_from(row[8]);
  m.model_dir = text_from(row[9]);
  m.bundle_path = text_from(row[10]);
  m.bundle_sha256 = text_from(row[11]);
  m.bundle_bytes = int_from(row[12]);
  return m;
}

Result<std::vector<ModelRecord>> read_models(PgBackend& pg, const std::string& where,
                                             std::span<const PgParam> params) {
  auto rows = pg.query(std::string(kModelColumns) + where + " ORDER BY m.id DESC", params,
                       "reading models");
  if (!rows) return rows.error();
  std::vector<ModelRecord> models;
  models.reserve(rows->rows.size());
  for (const auto& row : rows->rows)
    models.push_back(model_of(row));
  return models;
}

Result<ModelRecord> read_model(PgBackend& pg, const std::string& version) {
  if (version.empty()) return make_error(ErrorCode::kNotFound, "no model of an empty version");
  const PgParam params[] = {text_value(version)};
  auto models = read_models(pg, "WHERE m.version = $1", params);
  if (!models) return models.error();
  if (models->empty()) return make_error(ErrorCode::kNotFound, "no model '" + version + "'");
  return std::move(models->front());
}

Result<std::optional<ModelRecord>> read_champion(PgBackend& pg) {
  auto models = read_models(pg, "WHERE m.status = 'champion'", {});
  if (!models) return models.error();
  if (models->empty()) return std::optional<ModelRecord>();
  return std::optional<ModelRecord>(std::move(models->front()));
}

// Sets a model's status (when `status` is not null) and reason, and appends its event.
Result<void> change_status(PgBackend& pg, const std::string& version, const char* status,
                           const char* action, const std::string& actor, const std::string& reason,
                           std::int64_t at_ms) {
  if (status != nullptr) {
    const PgParam params[] = {text_value(version), text_value(status), text_value(reason),
                              int_value(at_ms)};
    auto done = pg.query(
        "UPDATE models SET status = $2, status_reason = $3, status_changed_at_ms = $4 "
        "WHERE version = $1",
        params, "changing the status of model '" + version + "'");
    if (!done) return done.error();
  } else {
    const PgParam params[] = {text_value(version), text_value(reason)};
    auto done = pg.query("UPDATE models SET status_reason = $2 WHERE version = $1", params,
                         "recording why model '" + version + "' is where it is");
    if (!done) return done.error();
  }
  const PgParam params[] = {text_value(version), text_value(action), text_value(actor),
                            text_value(reason), int_value(at_ms)};
  auto done = pg.query(
      "INSERT INTO model_events(model, action, actor, reason, at_ms) "
      "SELECT id, $2, $3, $4, $5 FROM models WHERE version = $1",
      params, "recording an event of model '" + version + "'");
  if (!done) return done.error();
  return {};
}

// The bodies of promote and record_not_promoted, inside the caller's transaction.
Result<void> promote_in(PgBackend& pg, const std::string& version, const std::string& actor,
                        const std::string& reason, std::int64_t at_ms) {
  auto model = read_model(pg, version);
  if (!model) return model.error();
  if (model->status == ModelStatus::kChampion) {
    return make_error(ErrorCode::kConflict, "model '" + version + "' already is the champion");
  }
  auto old = read_champion(pg);
  if (!old) return old.error();
  // The old champion steps down first: the unique index allows one champion at a time.
  if (*old) {
    if (auto demoted = change_status(pg, (*old)->version, "retired", "demoted", actor,
                                     "replaced by " + version + ": " + reason, at_ms);
        !demoted)
      return demoted;
  }
  return change_status(pg, version, "champion", "promoted", actor, reason, at_ms);
}

Result<void> not_promoted_in(PgBackend& pg, const std::string& version, const std::string& actor,
                             const std::string& reason, std::int64_t at_ms) {
  auto model = read_model(pg, version);
  if (!model) return model.error();
  if (model->status != ModelStatus::kCandidate) {
    return make_error(
        ErrorCode::kConflict,
        "model '" + version + "' is " + model_status_name(model->status) + ", not a candidate");
  }
  return change_status(pg, version, nullptr, "not_promoted", actor, reason, at_ms);
}

// Events by `tail` (WHERE, ORDER BY, LIMIT), with its parameters.
Result<std::vector<ModelEvent>> read_events(PgBackend& pg, const char* tail,
                                            std::span<const PgParam> params) {
  auto rows = pg.query(
      std::string("SELECT e.id, m.version, e.action, e.actor, e.reason, e.at_ms, e.detail_json "
                  "FROM model_events e JOIN models m ON m.id = e.model ") +
          tail,
      params, "reading model events");
  if (!rows) return rows.error();
  std::vector<ModelEvent> events;
  events.reserve(rows->rows.size());
  for (const auto& row : rows->rows) {
    events.push_back(ModelEvent{int_from(row[0]), text_from(row[1]), text_from(row[2]),
                                text_from(row[3]), text_from(row[4]), int_from(row[5]),
                                text_from(row[6])});
  }
  return events;
}

}  // namespace

Result<std::int64_t> pg_create_run(PgBackend& pg, const NewRun& run) {
  if (auto ok = require_json_object(pg, run.config_json, "config_json"); !ok) return ok.error();
  const PgParam params[] = {int_value(now_or(run.started_at_ms)), text_value(run.config_json),
                            text_value(run.trigger), text_value(run.requested_by)};
  auto rows = pg.query(
      "INSERT INTO training_runs(started_at_ms, status, config_json, trigger_kind, "
      "requested_by) VALUES ($1, 'running', $2, $3, $4) RETURNING id",
      params, "creating a training run");
  if (!rows) return rows.error();
  if (rows->rows.empty()) return make_error(ErrorCode::kIo, "creating a training run gave no id");
  return int_from(rows->rows.front()[0]);
}

Result<void> pg_update_run(PgBackend& pg, std::int64_t run_id, const RunUpdate& update) {
  return changing(pg, [&]() -> Result<void> {
    if (auto running = require_running(pg, run_id); !running) return running;
    const DataSnapshot snapshot = update.snapshot.value_or(DataSnapshot{});
    const PgParam params[] = {int_value(run_id),
                              update.stage ? text_value(*update.stage) : PgParam{},
                              update.out_dir ? text_value(*update.out_dir) : PgParam{},
                              text_value(update.snapshot ? "true" : "false"),
                              text_value(snapshot.path),
                              text_value(snapshot.sha256),
                              int_value(snapshot.cells),
                              int_value(snapshot.cycles)};
    auto done = pg.query(
        "UPDATE training_runs SET stage = coalesce($2, stage), "
        "out_dir = coalesce($3, out_dir), "
        "snapshot_path = CASE WHEN $4::boolean THEN $5 ELSE snapshot_path END, "
        "snapshot_sha256 = CASE WHEN $4::boolean THEN $6 ELSE snapshot_sha256 END, "
        "snapshot_cells = CASE WHEN $4::boolean THEN $7::bigint ELSE snapshot_cells END, "
        "snapshot_cycles = CASE WHEN $4::boolean THEN $8::bigint ELSE snapshot_cycles END "
        "WHERE id = $1",
        params, "updating training run " + std::to_string(run_id));
    if (!done) return done.error();
    return {};
  });
}

Result<void> pg_finish_run(PgBackend& pg, std::int64_t run_id, RunStatus status,
                           const std::string& error, const std::string& summary_json) {
  if (auto ok = require_json_object(pg, summary_json, "summary_json"); !ok) return ok;
  return changing(pg, [&]() -> Result<void> {
    if (auto running = require_running(pg, run_id); !running) return running;
    const PgParam params[] = {int_value(run_id), text_value(run_status_name(status)),
                              text_value(error), text_value(summary_json), int_value(now_ms())};
    auto done = pg.query(
        "UPDATE training_runs SET status = $2, error = $3, summary_json = $4, "
        "finished_at_ms = $5 WHERE id = $1",
        params, "finishing training run " + std::to_string(run_id));
    if (!done) return done.error();
    return {};
  });
}

Result<std::int64_t> pg_fail_unfinished_runs(PgBackend& pg, const std::string& error) {
  const PgParam params[] = {text_value(error), int_value(now_ms())};
  auto done = pg.query(
      "UPDATE training_runs SET status = 'failed', error = $1, finished_at_ms = $2 "
      "WHERE status = 'running'",
      params, "failing unfinished training runs");
  if (!done) return done.error();
  return done->affected;
}

Result<std::vector<TrainingRunRecord>> pg_list_runs(PgBackend& pg, std::int64_t limit) {
  const PgParam params[] = {limit < 0 ? PgParam{} : int_value(limit)};
  auto rows = pg.query(std::string(kRunColumns) + "ORDER BY id DESC LIMIT $1::bigint", params,
                       "listing training runs");
  if (!rows) return rows.error();
  std::vector<TrainingRunRecord> runs;
  runs.reserve(rows->rows.size());
  for (const auto& row : rows->rows)
    runs.push_back(run_of(row));
  return runs;
}

Result<TrainingRunRecord> pg_get_run(PgBackend& pg, std::int64_t run_id) {
  return read_run(pg, run_id);
}

Result<ModelRecord> pg_register_model(PgBackend& pg, const NewModel& model,
                                      const std::string& actor, const std::string& reason,
                                      AfterRegister then, const std::string& then_reason) {
  for (const auto& [text, field] : {std::pair{&model.lineage_json, "lineage_json"},
                                    std::pair{&model.metrics_json, "metrics_json"},
                                    std::pair{&model.footprint_json, "footprint_json"}}) {
    if (auto ok = require_json_object(pg, *text, field); !ok) return ok.error();
  }
  const std::int64_t at_ms = now_ms();
  auto registered = changing(pg, [&]() -> Result<void> {
    if (auto existing = read_model(pg, model.version); existing) {
      return make_error(ErrorCode::kConflict, "model '" + model.version + "' already exists");
    } else if (existing.error().code != ErrorCode::kNotFound) {
      return existing.error();
    }
    if (model.run_id != 0) {
      if (auto run = read_run(pg, model.run_id); !run) return run.error();
    }
    const PgParam params[] = {text_value(model.version),
                              text_value(model.kind),
                              int_value(model.run_id),
                              int_value(at_ms),
                              text_value(model.model_dir),
                              text_value(model.metrics_json),
                              text_value(reason),
                              text_value(model.lineage_json),
                              text_value(model.footprint_json),
                              text_value(model.bundle_path),
                              text_value(model.bundle_sha256),
                              int_value(model.bundle_bytes)};
    auto done = pg.query(
        "INSERT INTO models(version, kind, training_run, created_at_ms, file_path, "
        "metrics_json, status, status_reason, status_changed_at_ms, lineage_json, "
        "footprint_json, bundle_path, bundle_sha256, bundle_bytes) "
        "VALUES ($1, $2, nullif($3::bigint, 0), $4, $5, $6, 'candidate', $7, $4, $8, $9, $10, "
        "$11, $12)",
        params, "registering model '" + model.version + "'");
    if (!done) return done.error();
    if (auto noted = change_status(pg, model.version, nullptr, "registered", actor, reason, at_ms);
        !noted)
      return noted;
    switch (then) {
      case AfterRegister::kPromote:
        return promote_in(pg, model.version, actor, then_reason, at_ms);
      case AfterRegister::kNotPromoted:
        return not_promoted_in(pg, model.version, actor, then_reason, at_ms);
      case AfterRegister::kNothing:
        break;
    }
    return {};
  });
  if (!registered) return registered.error();
  return read_model(pg, model.version);
}

Result<std::vector<ModelRecord>> pg_list_models(PgBackend& pg) {
  return read_models(pg, "", {});
}

Result<ModelRecord> pg_get_model(PgBackend& pg, const std::string& version) {
  return read_model(pg, version);
}

Result<std::optional<ModelRecord>> pg_champion(PgBackend& pg) {
  return read_champion(pg);
}

Result<void> pg_promote(PgBackend& pg, const std::string& version, const std::string& actor,
                        const std::string& reason) {
  return changing(pg, [&] { return promote_in(pg, version, actor, reason, now_ms()); });
}

Result<void> pg_record_not_promoted(PgBackend& pg, const std::string& version,
                                    const std::string& actor, const std::string& reason) {
  return changing(pg, [&] { return not_promoted_in(pg, version, actor, reason, now_ms()); });
}

Result<void> pg_record_drift_detected(PgBackend& pg, const std::string& version,
                                      const std::string& actor, const std::string& reason,
                                      const std::string& detail_json) {
  if (auto ok = require_json_object(pg, detail_json, "the drift event's detail"); !ok) return ok;
  return changing(pg, [&]() -> Result<void> {
    auto model = read_model(pg, version);
    if (!model) return model.error();
    const PgParam params[] = {text_value(version), text_value(actor), text_value(reason),
                              int_value(now_ms()), text_value(detail_json)};
    auto done = pg.query(
        "INSERT INTO model_events(model, action, actor, reason, at_ms, detail_json) "
        "SELECT id, 'drift_detected', $2, $3, $4, $5 FROM models WHERE version = $1",
        params, "recording the drift of model '" + version + "'");
    if (!done) return done.error();
    return {};
  });
}

Result<std::string> pg_rollback(PgBackend& pg, const std::string& actor,
                                const std::string& reason) {
  std::string restored;
  const std::int64_t at_ms = now_ms();
  auto done = changing(pg, [&]() -> Result<void> {
    auto current = read_champion(pg);
    if (!current) return current.error();
    if (!*current) return make_error(ErrorCode::kConflict, "there is no champion to roll back");
    // The latest model promoted before, other than the champion, that is still merely retired
    // (one rolled back once is not brought back by a later rollback).
    const PgParam params[] = {text_value((*current)->version)};
    auto rows = pg.query(
        "SELECT m.version FROM model_events e JOIN models m ON m.id = e.model "
        "WHERE e.action = 'promoted' AND m.version <> $1 AND m.status = 'retired' "
        "ORDER BY e.id DESC LIMIT 1",
        params, "finding the previous champion");
    if (!rows) return rows.error();
    if (rows->rows.empty()) {
      return make_error(ErrorCode::kConflict,
                        "no previous champion to roll back to from '" + (*current)->version + "'");
    }
    restored = text_from(rows->rows.front()[0]);
    if (auto out = change_status(pg, (*current)->version, "rolled_back", "rolled_back", actor,
                                 reason, at_ms);
        !out)
      return out;
    return change_status(pg, restored, "champion", "promoted", actor,
                         "rollback from " + (*current)->version + ": " + reason, at_ms);
  });
  if (!done) return done.error();
  return restored;
}

Result<std::vector<ModelEvent>> pg_events_of(PgBackend& pg, const std::string& version) {
  if (auto model = read_model(pg, version); !model) return model.error();
  const PgParam params[] = {text_value(version)};
  return read_events(pg, "WHERE m.version = $1 ORDER BY e.id ASC", params);
}

Result<std::vector<ModelEvent>> pg_recent_events(PgBackend& pg, std::int64_t limit) {
  // A negative limit is none, as SQLite's LIMIT -1 (LIMIT NULL).
  const PgParam params[] = {limit < 0 ? PgParam{} : int_value(limit)};
  return read_events(pg, "ORDER BY e.id DESC LIMIT $1::bigint", params);
}

}  // namespace cyclecast::storage::detail
