// The model registry: training runs, models, their statuses and the audit trail (registry.h).
// Every call works on the Database's own connection and transactions (database_impl.h), so its
// open options hold for registry writes too. Statements are prepared per call: the registry
// changes a few times per training run, far below any rate where caching would matter.
#include "cyclecast/storage/registry.h"

#include <sqlite3.h>

#include <string_view>
#include <utility>

#include "cyclecast/storage/sqlite.h"
#include "database_impl.h"
#include "pg_registry.h"
#include "sqlite_util.h"

namespace cyclecast::storage {

namespace detail {

RunStatus run_status_of(const std::string& text) {
  if (text == "succeeded") return RunStatus::kSucceeded;
  if (text == "failed") return RunStatus::kFailed;
  return RunStatus::kRunning;
}

ModelStatus model_status_of(const std::string& text) {
  if (text == "champion") return ModelStatus::kChampion;
  if (text == "retired") return ModelStatus::kRetired;
  if (text == "rolled_back") return ModelStatus::kRolledBack;
  return ModelStatus::kCandidate;
}

}  // namespace detail

namespace {

using detail::model_status_of;
using detail::run_status_of;

Result<bool> is_json_object(sqlite3* db, const std::string& text) {
  auto q = Query::prepare(db, "SELECT json_valid(?1) AND json_type(?1) = 'object'");
  if (!q) return q.error();
  q->text(1, text);
  auto row = q->step("checking JSON");
  if (!row) return row.error();
  return *row && q->column_int(0) == 1;
}

Result<void> require_json_object(sqlite3* db, const std::string& text, const char* field) {
  auto ok = is_json_object(db, text);
  if (!ok) return ok.error();
  if (!*ok) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(field) + " is not a JSON object: " + text.substr(0, 80));
  }
  return {};
}

std::int64_t now_or(std::int64_t ms) {
  return ms != 0 ? ms : now_ms();
}

// ---- runs ----

constexpr const char* kRunColumns =
    "id, trigger_kind, requested_by, status, stage, error, out_dir, snapshot_path, "
    "snapshot_sha256, snapshot_cells, snapshot_cycles, started_at_ms, "
    "coalesce(finished_at_ms, 0), config_json, summary_json";

TrainingRunRecord run_of(const Query& q) {
  TrainingRunRecord r;
  r.id = q.column_int(0);
  r.trigger = q.column_text(1);
  r.requested_by = q.column_text(2);
  r.status = run_status_of(q.column_text(3));
  r.stage = q.column_text(4);
  r.error = q.column_text(5);
  r.out_dir = q.column_text(6);
  r.snapshot.path = q.column_text(7);
  r.snapshot.sha256 = q.column_text(8);
  r.snapshot.cells = q.column_int(9);
  r.snapshot.cycles = q.column_int(10);
  r.started_at_ms = q.column_int(11);
  r.finished_at_ms = q.column_int(12);
  r.config_json = q.column_text(13);
  r.summary_json = q.column_text(14);
  return r;
}

Result<TrainingRunRecord> read_run(sqlite3* db, std::int64_t run_id) {
  auto q = Query::prepare(
      db, std::string("SELECT ") + kRunColumns + " FROM training_runs WHERE id = ?1");
  if (!q) return q.error();
  q->integer(1, run_id);
  auto row = q->step("reading a training run");
  if (!row) return row.error();
  if (!*row) {
    return make_error(ErrorCode::kNotFound, "no training run " + std::to_string(run_id));
  }
  return run_of(*q);
}

Result<void> require_running(sqlite3* db, std::int64_t run_id) {
  auto run = read_run(db, run_id);
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
    "m.version, coalesce(m.training_run, 0), m.created_at_ms, m.status, m.status_reason, "
    "m.status_changed_at_ms, m.lineage_json, m.metrics_json, m.footprint_json, "
    "coalesce(m.file_path, ''), m.bundle_path, m.bundle_sha256, m.bundle_bytes";

ModelRecord model_of(const Query& q) {
  ModelRecord m;
  m.version = q.column_text(0);
  m.run_id = q.column_int(1);
  m.created_at_ms = q.column_int(2);
  m.status = model_status_of(q.column_text(3));
  m.status_reason = q.column_text(4);
  m.status_changed_at_ms = q.column_int(5);
  m.lineage_json = q.column_text(6);
  m.metrics_json = q.column_text(7);
  m.footprint_json = q.column_text(8);
  m.model_dir = q.column_text(9);
  m.bundle_path = q.column_text(10);
  m.bundle_sha256 = q.column_text(11);
  m.bundle_bytes = q.column_int(12);
  return m;
}

Result<std::vector<ModelRecord>> read_models(sqlite3* db, const std::string& where,
                                             const std::string& bound_text) {
  auto q = Query::prepare(db, std::string("SELECT ") + kModelColumns + " FROM models m " + where +
                                  " ORDER BY m.id DESC");
  if (!q) return q.error();
  if (!bound_text.empty()) q->text(1, bound_text);
  std::vector<ModelRecord> models;
  for (;;) {
    auto row = q->step("reading models");
    if (!row) return row.error();
    if (!*row) break;
    models.push_back(model_of(*q));
  }
  return models;
}

Result<ModelRecord> read_model(sqlite3* db, const std::string& version) {
  if (version.empty()) return make_error(ErrorCode::kNotFound, "no model of an empty version");
  auto models = read_models(db, "WHERE m.version = ?1", version);
  if (!models) return models.error();
  if (models->empty()) return make_error(ErrorCode::kNotFound, "no model '" + version + "'");
  return std::move(models->front());
}

Result<std::optional<ModelRecord>> read_champion(sqlite3* db) {
  auto models = read_models(db, "WHERE m.status = 'champion'", "");
  if (!models) return models.error();
  if (models->empty()) return std::optional<ModelRecord>();
  return std::optional<ModelRecord>(std::move(models->front()));
}

// Sets a model's status and reason, and appends its event, at `at_ms`.
Result<void> change_status(sqlite3* db, const std::string& version, const char* status,
                           const char* action, const std::string& actor, const std::string& reason,
                           std::int64_t at_ms) {
  if (status != nullptr) {
    auto q = Query::prepare(db,
                            "UPDATE models SET status = ?2, status_reason = ?3, "
                            "status_changed_at_ms = ?4 WHERE version = ?1");
    if (!q) return q.error();
    q->text(1, version).text(2, status).text(3, reason).integer(4, at_ms);
    if (auto ran = q->run("changing the status of model '" + version + "'"); !ran) return ran;
  } else {
    auto q = Query::prepare(db, "UPDATE models SET status_reason = ?2 WHERE version = ?1");
    if (!q) return q.error();
    q->text(1, version).text(2, reason);
    if (auto ran = q->run("recording why model '" + version + "' is " + "where it is"); !ran)
      return ran;
  }
  auto e = Query::prepare(db,
                          "INSERT INTO model_events(model, action, actor, reason, at_ms) "
                          "SELECT id, ?2, ?3, ?4, ?5 FROM models WHERE version = ?1");
  if (!e) return e.error();
  e->text(1, version).text(2, action).text(3, actor).text(4, reason).integer(5, at_ms);
  return e->run("recording an event of model '" + version + "'");
}

// The bodies of promote and record_not_promoted, inside the caller's transaction.
Result<void> promote_in(sqlite3* db, const std::string& version, const std::string& actor,
                        const std::string& reason, std::int64_t at_ms) {
  auto model = read_model(db, version);
  if (!model) return model.error();
  if (model->status == ModelStatus::kChampion) {
    return make_error(ErrorCode::kConflict, "model '" + version + "' already is the champion");
  }
  auto old = read_champion(db);
  if (!old) return old.error();
  // The old champion steps down first: the unique index allows one champion at a time.
  if (*old) {
    if (auto demoted = change_status(db, (*old)->version, "retired", "demoted", actor,
                                     "replaced by " + version + ": " + reason, at_ms);
        !demoted)
      return demoted;
  }
  return change_status(db, version, "champion", "promoted", actor, reason, at_ms);
}

Result<void> not_promoted_in(sqlite3* db, const std::string& version, const std::string& actor,
                             const std::string& reason, std::int64_t at_ms) {
  auto model = read_model(db, version);
  if (!model) return model.error();
  if (model->status != ModelStatus::kCandidate) {
    return make_error(
        ErrorCode::kConflict,
        "model '" + version + "' is " + model_status_name(model->status) + ", not a candidate");
  }
  return change_status(db, version, nullptr, "not_promoted", actor, reason, at_ms);
}

Result<std::vector<ModelEvent>> read_events(sqlite3* db, const std::string& where,
                                            const std::string& order, std::int64_t limit,
                                            const std::string& version) {
  auto q = Query::prepare(db,
                          "SELECT e.id, m.version, e.action, e.actor, e.reason, e.at_ms, "
                          "e.detail_json "
                          "FROM model_events e JOIN models m ON m.id = e.model " +
                              where + " ORDER BY e.id " + order + " LIMIT ?2");
  if (!q) return q.error();
  if (!version.empty()) q->text(1, version);
  q->integer(2, limit);
  std::vector<ModelEvent> events;
  for (;;) {
    auto row = q->step("reading model events");
    if (!row) return row.error();
    if (!*row) break;
    events.push_back(ModelEvent{q->column_int(0), q->column_text(1), q->column_text(2),
                                q->column_text(3), q->column_text(4), q->column_int(5),
                                q->column_text(6)});
  }
  return events;
}

}  // namespace

const char* run_status_name(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kSucceeded:
      return "succeeded";
    case RunStatus::kFailed:
      return "failed";
  }
  return "running";
}

const char* model_status_name(ModelStatus status) {
  switch (status) {
    case ModelStatus::kCandidate:
      return "candidate";
    case ModelStatus::kChampion:
      return "champion";
    case ModelStatus::kRetired:
      return "retired";
    case ModelStatus::kRolledBack:
      return "rolled_back";
  }
  return "candidate";
}

Result<std::int64_t> create_run(Database& database, const NewRun& run) {
  if (run.trigger.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a training run needs a trigger");
  }
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_create_run(*c.pg, run);
  sqlite3* db = c.db;
  if (auto ok = require_json_object(db, run.config_json, "config_json"); !ok) return ok.error();
  auto q = Query::prepare(db,
                          "INSERT INTO training_runs(started_at_ms, status, config_json, "
                          "trigger_kind, requested_by) VALUES (?1, 'running', ?2, ?3, ?4)");
  if (!q) return q.error();
  q->integer(1, now_or(run.started_at_ms))
      .text(2, run.config_json)
      .text(3, run.trigger)
      .text(4, run.requested_by);
  if (auto ran = q->run("creating a training run"); !ran) return ran.error();
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db));
}

Result<void> update_run(Database& database, std::int64_t run_id, const RunUpdate& update) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_update_run(*c.pg, run_id, update);
  sqlite3* db = c.db;
  return c.in_transaction([&]() -> Result<void> {
    if (auto running = require_running(db, run_id); !running) return running;
    const DataSnapshot snapshot = update.snapshot.value_or(DataSnapshot{});
    auto q = Query::prepare(db,
                            "UPDATE training_runs SET stage = coalesce(?2, stage), "
                            "out_dir = coalesce(?3, out_dir), "
                            "snapshot_path = CASE WHEN ?4 THEN ?5 ELSE snapshot_path END, "
                            "snapshot_sha256 = CASE WHEN ?4 THEN ?6 ELSE snapshot_sha256 END, "
                            "snapshot_cells = CASE WHEN ?4 THEN ?7 ELSE snapshot_cells END, "
                            "snapshot_cycles = CASE WHEN ?4 THEN ?8 ELSE snapshot_cycles END "
                            "WHERE id = ?1");
    if (!q) return q.error();
    q->integer(1, run_id);
    if (update.stage) q->text(2, *update.stage);
    if (update.out_dir) q->text(3, *update.out_dir);
    q->integer(4, update.snapshot ? 1 : 0)
        .text(5, snapshot.path)
        .text(6, snapshot.sha256)
        .integer(7, snapshot.cells)
        .integer(8, snapshot.cycles);
    return q->run("updating training run " + std::to_string(run_id));
  });
}

Result<void> finish_run(Database& database, std::int64_t run_id, RunStatus status,
                        const std::string& error, const std::string& summary_json) {
  if (status == RunStatus::kRunning) {
    return make_error(ErrorCode::kInvalidArgument, "a run finishes succeeded or failed");
  }
  if (status == RunStatus::kFailed && error.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a failed run needs its error");
  }
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_finish_run(*c.pg, run_id, status, error, summary_json);
  sqlite3* db = c.db;
  if (auto ok = require_json_object(db, summary_json, "summary_json"); !ok) return ok.error();
  return c.in_transaction([&]() -> Result<void> {
    if (auto running = require_running(db, run_id); !running) return running;
    auto q = Query::prepare(db,
                            "UPDATE training_runs SET status = ?2, error = ?3, summary_json = ?4, "
                            "finished_at_ms = ?5 WHERE id = ?1");
    if (!q) return q.error();
    q->integer(1, run_id)
        .text(2, run_status_name(status))
        .text(3, error)
        .text(4, summary_json)
        .integer(5, now_ms());
    return q->run("finishing training run " + std::to_string(run_id));
  });
}

Result<std::int64_t> fail_unfinished_runs(Database& database, const std::string& error) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_fail_unfinished_runs(*c.pg, error);
  sqlite3* db = c.db;
  auto q = Query::prepare(db,
                          "UPDATE training_runs SET status = 'failed', error = ?1, "
                          "finished_at_ms = ?2 WHERE status = 'running'");
  if (!q) return q.error();
  q->text(1, error).integer(2, now_ms());
  if (auto ran = q->run("failing unfinished training runs"); !ran) return ran.error();
  return static_cast<std::int64_t>(sqlite3_changes(db));
}

Result<std::vector<TrainingRunRecord>> list_runs(Database& database, std::int64_t limit) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_list_runs(*c.pg, limit);
  auto q = Query::prepare(
      c.db, std::string("SELECT ") + kRunColumns + " FROM training_runs ORDER BY id DESC LIMIT ?1");
  if (!q) return q.error();
  q->integer(1, limit);
  std::vector<TrainingRunRecord> runs;
  for (;;) {
    auto row = q->step("listing training runs");
    if (!row) return row.error();
    if (!*row) break;
    runs.push_back(run_of(*q));
  }
  return runs;
}

Result<TrainingRunRecord> get_run(Database& database, std::int64_t run_id) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_get_run(*c.pg, run_id);
  return read_run(c.db, run_id);
}

Result<ModelRecord> register_model(Database& database, const NewModel& model,
                                   const std::string& actor, const std::string& reason,
                                   AfterRegister then, const std::string& then_reason) {
  if (model.version.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a model needs a version");
  }
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_register_model(*c.pg, model, actor, reason, then, then_reason);
  sqlite3* db = c.db;
  for (const auto& [text, field] : {std::pair{&model.lineage_json, "lineage_json"},
                                    std::pair{&model.metrics_json, "metrics_json"},
                                    std::pair{&model.footprint_json, "footprint_json"}}) {
    if (auto ok = require_json_object(db, *text, field); !ok) return ok.error();
  }
  const std::int64_t at_ms = now_ms();
  auto registered = c.in_transaction([&]() -> Result<void> {
    if (auto existing = read_model(db, model.version); existing) {
      return make_error(ErrorCode::kConflict, "model '" + model.version + "' already exists");
    } else if (existing.error().code != ErrorCode::kNotFound) {
      return existing.error();
    }
    if (model.run_id != 0) {
      if (auto run = read_run(db, model.run_id); !run) return run.error();
    }
    auto q =
        Query::prepare(db,
                       "INSERT INTO models(version, kind, training_run, created_at_ms, "
                       "file_path, metrics_json, status, status_reason, status_changed_at_ms, "
                       "lineage_json, footprint_json, bundle_path, bundle_sha256, bundle_bytes) "
                       "VALUES (?1, ?2, nullif(?3, 0), ?4, ?5, ?6, 'candidate', ?7, ?4, ?8, ?9, "
                       "?10, ?11, ?12)");
    if (!q) return q.error();
    q->text(1, model.version)
        .text(2, model.kind)
        .integer(3, model.run_id)
        .integer(4, at_ms)
        .text(5, model.model_dir)
        .text(6, model.metrics_json)
        .text(7, reason)
        .text(8, model.lineage_json)
        .text(9, model.footprint_json)
        .text(10, model.bundle_path)
        .text(11, model.bundle_sha256)
        .integer(12, model.bundle_bytes);
    if (auto ran = q->run("registering model '" + model.version + "'"); !ran) return ran;
    if (auto noted = change_status(db, model.version, nullptr, "registered", actor, reason, at_ms);
        !noted)
      return noted;
    switch (then) {
      case AfterRegister::kPromote:
        return promote_in(db, model.version, actor, then_reason, at_ms);
      case AfterRegister::kNotPromoted:
        return not_promoted_in(db, model.version, actor, then_reason, at_ms);
      case AfterRegister::kNothing:
        break;
    }
    return {};
  });
  if (!registered) return registered.error();
  return read_model(db, model.version);
}

Result<std::vector<ModelRecord>> list_models(Database& database) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_list_models(*c.pg);
  return read_models(c.db, "", "");
}

Result<ModelRecord> get_model(Database& database, const std::string& version) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_get_model(*c.pg, version);
  return read_model(c.db, version);
}

Result<std::optional<ModelRecord>> champion(Database& database) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_champion(*c.pg);
  return read_champion(c.db);
}

Result<void> promote(Database& database, const std::string& version, const std::string& actor,
                     const std::string& reason) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_promote(*c.pg, version, actor, reason);
  sqlite3* db = c.db;
  return c.in_transaction([&] { return promote_in(db, version, actor, reason, now_ms()); });
}

Result<void> record_not_promoted(Database& database, const std::string& version,
                                 const std::string& actor, const std::string& reason) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_record_not_promoted(*c.pg, version, actor, reason);
  sqlite3* db = c.db;
  return c.in_transaction([&] { return not_promoted_in(db, version, actor, reason, now_ms()); });
}

Result<void> record_drift_detected(Database& database, const std::string& version,
                                   const std::string& actor, const std::string& reason,
                                   const std::string& detail_json) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_record_drift_detected(*c.pg, version, actor, reason, detail_json);
  sqlite3* db = c.db;
  return c.in_transaction([&]() -> Result<void> {
    if (auto ok = require_json_object(db, detail_json, "the drift event's detail"); !ok) return ok;
    auto model = read_model(db, version);
    if (!model) return model.error();
    auto e = Query::prepare(db,
                            "INSERT INTO model_events(model, action, actor, reason, at_ms, "
                            "detail_json) SELECT id, 'drift_detected', ?2, ?3, ?4, ?5 FROM models "
                            "WHERE version = ?1");
    if (!e) return e.error();
    e->text(1, version).text(2, actor).text(3, reason).integer(4, now_ms()).text(5, detail_json);
    return e->run("recording the drift of model '" + version + "'");
  });
}

Result<std::string> rollback(Database& database, const std::string& actor,
                             const std::string& reason) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_rollback(*c.pg, actor, reason);
  sqlite3* db = c.db;
  std::string restored;
  const std::int64_t at_ms = now_ms();
  auto done = c.in_transaction([&]() -> Result<void> {
    auto current = read_champion(db);
    if (!current) return current.error();
    if (!*current) return make_error(ErrorCode::kConflict, "there is no champion to roll back");
    // The latest model promoted before, other than the champion, that is still merely retired
    // (one rolled back once is not brought back by a later rollback).
    auto q = Query::prepare(db,
                            "SELECT m.version FROM model_events e JOIN models m ON m.id = e.model "
                            "WHERE e.action = 'promoted' AND m.version <> ?1 AND "
                            "m.status = 'retired' ORDER BY e.id DESC LIMIT 1");
    if (!q) return q.error();
    q->text(1, (*current)->version);
    auto row = q->step("finding the previous champion");
    if (!row) return row.error();
    if (!*row) {
      return make_error(ErrorCode::kConflict,
                        "no previous champion to roll back to from '" + (*current)->version + "'");
    }
    restored = q->column_text(0);
    if (auto out = change_status(db, (*current)->version, "rolled_back", "rolled_back", actor,
                                 reason, at_ms);
        !out)
      return out;
    return change_status(db, restored, "champion", "promoted", actor,
                         "rollback from " + (*current)->version + ": " + reason, at_ms);
  });
  if (!done) return done.error();
  return restored;
}

Result<std::vector<ModelEvent>> events_of(Database& database, const std::string& version) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_events_of(*c.pg, version);
  sqlite3* db = c.db;
  if (auto model = read_model(db, version); !model) return model.error();
  return read_events(db, "WHERE m.version = ?1", "ASC", -1, version);
}

Result<std::vector<ModelEvent>> recent_events(Database& database, std::int64_t limit) {
  Database::Impl& c = database.impl();
  if (c.pg) return detail::pg_recent_events(*c.pg, limit);
  return read_events(c.db, "", "DESC", limit, "");
}

}  // namespace cyclecast::storage
