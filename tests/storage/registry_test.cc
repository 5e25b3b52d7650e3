// The model registry on both backends (real SQLite files, a real PostgreSQL server): runs from
// start to finish, models through their statuses with the audit trail, one champion at a time,
// rollback by the event history; and the migrations that bring the registry to an older database
// of either backend.
#include "cyclecast/storage/registry.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "backend_test_util.h"
#include "pg_server.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using testing::raw_exec;
using testing::raw_int;

using testing::BackendTest;

class RegistryTest : public BackendTest {
 protected:
  void SetUp() override {
    auto opened = open_database();
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_ = std::make_unique<Database>(std::move(*opened));
  }

  std::int64_t new_run(const std::string& trigger = "manual") {
    auto id = create_run(*db_, NewRun{trigger, "tester", R"({"seed":1})", 0});
    EXPECT_TRUE(id.ok()) << id.error().message;
    return id.ok() ? *id : 0;
  }

  ModelRecord new_model(const std::string& version) {
    NewModel m;
    m.version = version;
    m.run_id = new_run();
    m.metrics_json = R"({"mae":0.01})";
    m.lineage_json = R"({"run":1})";
    m.footprint_json = R"({"flash_bytes":6000})";
    m.model_dir = "/state/models/" + version;
    m.bundle_path = "/state/bundles/" + version + ".ccb";
    m.bundle_sha256 = std::string(64, 'a');
    m.bundle_bytes = 1234;
    auto registered = register_model(*db_, m, "retrainer", "run finished");
    EXPECT_TRUE(registered.ok()) << registered.error().message;
    return registered.ok() ? *registered : ModelRecord{};
  }

  std::vector<std::string> actions_of(const std::string& version) {
    std::vector<std::string> actions;
    auto events = events_of(*db_, version);
    EXPECT_TRUE(events.ok()) << events.error().message;
    if (events.ok())
      for (const auto& e : *events)
        actions.push_back(e.action);
    return actions;
  }

  std::unique_ptr<Database> db_;
};
CYCLECAST_ON_BOTH_BACKENDS(RegistryTest);

TEST_P(RegistryTest, RunGoesFromRunningToSucceededWithItsSnapshot) {
  const std::int64_t id = new_run("cycles");
  RunUpdate update;
  update.stage = "train";
  update.out_dir = "/state/runs/1/train";
  update.snapshot = DataSnapshot{"/state/runs/1/snapshot.db", std::string(64, 'b'), 12, 3400};
  ASSERT_TRUE(update_run(*db_, id, update).ok());
  ASSERT_TRUE(update_run(*db_, id, RunUpdate{std::string("gate"), {}, {}}).ok());
  ASSERT_TRUE(finish_run(*db_, id, RunStatus::kSucceeded, "", R"({"model":"r1"})").ok());

  auto run = get_run(*db_, id);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->trigger, "cycles");
  EXPECT_EQ(run->requested_by, "tester");
  EXPECT_EQ(run->status, RunStatus::kSucceeded);
  EXPECT_EQ(run->stage, "gate");
  EXPECT_EQ(run->out_dir, "/state/runs/1/train");  // kept when a later update leaves it out
  EXPECT_EQ(run->snapshot.sha256, std::string(64, 'b'));
  EXPECT_EQ(run->snapshot.cells, 12);
  EXPECT_EQ(run->snapshot.cycles, 3400);
  EXPECT_GT(run->finished_at_ms, 0);
  EXPECT_EQ(run->summary_json, R"({"model":"r1"})");

  // A finished run is not changed again.
  EXPECT_EQ(finish_run(*db_, id, RunStatus::kFailed, "late").error().code, ErrorCode::kConflict);
  EXPECT_EQ(update_run(*db_, id, update).error().code, ErrorCode::kConflict);
}

TEST_P(RegistryTest, FailedRunKeepsItsErrorAndUnfinishedRunsAreFailedAtStart) {
  const std::int64_t failed = new_run();
  EXPECT_EQ(finish_run(*db_, failed, RunStatus::kFailed, "").error().code,
            ErrorCode::kInvalidArgument);
  ASSERT_TRUE(finish_run(*db_, failed, RunStatus::kFailed, "no cells").ok());
  const std::int64_t left = new_run();
  auto count = fail_unfinished_runs(*db_, "interrupted: the daemon stopped during the run");
  ASSERT_TRUE(count.ok()) << count.error().message;
  EXPECT_EQ(*count, 1);
  auto runs = list_runs(*db_);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ(runs->at(0).id, left);  // newest first
  EXPECT_EQ(runs->at(0).status, RunStatus::kFailed);
  EXPECT_EQ(runs->at(0).error, "interrupted: the daemon stopped during the run");
  EXPECT_EQ(runs->at(1).error, "no cells");
  EXPECT_EQ(get_run(*db_, 999).error().code, ErrorCode::kNotFound);
}

TEST_P(RegistryTest, RefusesRunsWithoutTriggerOrWithBadJson) {
  EXPECT_EQ(create_run(*db_, NewRun{"", "x", "{}", 0}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(create_run(*db_, NewRun{"manual", "x", "[1]", 0}).error().code,
            ErrorCode::kInvalidArgument);
}

TEST_P(RegistryTest, RegisteredModelIsACandidateWithEverythingItWasGiven) {
  const ModelRecord m = new_model("r1-20261130");
  EXPECT_EQ(m.status, ModelStatus::kCandidate);
  EXPECT_EQ(m.status_reason, "run finished");
  EXPECT_EQ(m.metrics_json, R"({"mae":0.01})");
  EXPECT_EQ(m.footprint_json, R"({"flash_bytes":6000})");
  EXPECT_EQ(m.bundle_bytes, 1234);
  EXPECT_EQ(m.model_dir, "/state/models/r1-20261130");
  EXPECT_GT(m.run_id, 0);
  EXPECT_EQ(actions_of("r1-20261130"), std::vector<std::string>{"registered"});
  auto none = champion(*db_);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  NewModel again;
  again.version = "r1-20261130";
  EXPECT_EQ(register_model(*db_, again, "x", "y").error().code, ErrorCode::kConflict);
  NewModel orphan;
  orphan.version = "orphan";
  orphan.run_id = 4242;
  EXPECT_EQ(register_model(*db_, orphan, "x", "y").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(get_model(*db_, "orphan").error().code, ErrorCode::kNotFound);
}

TEST_P(RegistryTest, PromotionRetiresTheOldChampionAndRecordsBoth) {
  new_model("a");
  new_model("b");
  ASSERT_TRUE(promote(*db_, "a", "gate", "first model").ok());
  ASSERT_TRUE(promote(*db_, "b", "alice", "better on held-out cells").ok());
  auto now = champion(*db_);
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_EQ((*now)->version, "b");
  EXPECT_EQ((*now)->status_reason, "better on held-out cells");
  auto a = get_model(*db_, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->status, ModelStatus::kRetired);
  EXPECT_EQ(actions_of("a"), (std::vector<std::string>{"registered", "promoted", "demoted"}));
  auto events = events_of(*db_, "b");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(events->back().actor, "alice");
  EXPECT_EQ(events->back().reason, "better on held-out cells");
  EXPECT_GT(events->back().at_ms, 0);
  EXPECT_EQ(promote(*db_, "b", "alice", "again").error().code, ErrorCode::kConflict);
  EXPECT_EQ(promote(*db_, "nope", "alice", "x").error().code, ErrorCode::kNotFound);
}

TEST_P(RegistryTest, TheDatabaseItselfRefusesASecondChampion) {
  new_model("a");
  new_model("b");
  ASSERT_TRUE(promote(*db_, "a", "gate", "first").ok());
  const char* second = "UPDATE models SET status = 'champion' WHERE version = 'b'";
  if (on_postgresql()) {
    EXPECT_THROW(cyclecast::testing::PgServer::shared().exec(location(), second),
                 std::runtime_error);
  } else {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(location().c_str(), &raw), SQLITE_OK);
    const int rc = sqlite3_exec(raw, second, nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    EXPECT_EQ(rc & 0xff, SQLITE_CONSTRAINT);
  }
  EXPECT_EQ(raw_count("SELECT count(*) FROM models WHERE status = 'champion'"), 1);
}

TEST_P(RegistryTest, NotPromotedStaysCandidateWithTheReason) {
  new_model("a");
  ASSERT_TRUE(record_not_promoted(*db_, "a", "gate", "MAE 0.012 not 2 % below 0.011").ok());
  auto a = get_model(*db_, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->status, ModelStatus::kCandidate);
  EXPECT_EQ(a->status_reason, "MAE 0.012 not 2 % below 0.011");
  EXPECT_EQ(actions_of("a"), (std::vector<std::string>{"registered", "not_promoted"}));
  ASSERT_TRUE(promote(*db_, "a", "bob", "manual override").ok());
  EXPECT_EQ(record_not_promoted(*db_, "a", "gate", "x").error().code, ErrorCode::kConflict);
}

TEST_P(RegistryTest, RollbackReturnsToThePreviousChampionByTheEventHistory) {
  new_model("a");
  new_model("b");
  new_model("c");
  EXPECT_EQ(rollback(*db_, "ops", "nothing yet").error().code, ErrorCode::kConflict);
  ASSERT_TRUE(promote(*db_, "a", "gate", "first").ok());
  EXPECT_EQ(rollback(*db_, "ops", "only one").error().code, ErrorCode::kConflict);
  ASSERT_TRUE(promote(*db_, "b", "gate", "better").ok());
  ASSERT_TRUE(promote(*db_, "c", "gate", "better still").ok());

  auto back = rollback(*db_, "carol", "live error too high");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, "b");
  auto c = get_model(*db_, "c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, ModelStatus::kRolledBack);
  EXPECT_EQ(c->status_reason, "live error too high");
  auto events = events_of(*db_, "c");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().action, "rolled_back");
  EXPECT_EQ(events->back().actor, "carol");

  // Again: b is rolled back to a; c, rolled back once, is not brought back.
  back = rollback(*db_, "carol", "still bad");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, "a");
  EXPECT_EQ(rollback(*db_, "carol", "and again").error().code, ErrorCode::kConflict);
  auto now = champion(*db_);
  ASSERT_TRUE(now.ok() && now->has_value());
  EXPECT_EQ((*now)->version, "a");
  auto recent = recent_events(*db_, 3);
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 3u);
  EXPECT_EQ(recent->front().model_version, "a");  // newest first
  EXPECT_EQ(recent->front().action, "promoted");
}

TEST_P(RegistryTest, DriftIsAnEventOfTheModelWithItsFiguresAndLeavesItsStatus) {
  new_model("d1");
  ASSERT_TRUE(promote(*db_, "d1", "gate", "better").ok());
  const std::string detail = R"({"statistic":123.5,"samples":640})";
  ASSERT_TRUE(
      record_drift_detected(*db_, "d1", "drift monitor", "live errors drifted up", detail).ok());
  EXPECT_EQ(actions_of("d1"),
            (std::vector<std::string>{"registered", "promoted", "drift_detected"}));
  auto events = events_of(*db_, "d1");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().detail_json, detail);
  EXPECT_EQ(events->back().reason, "live errors drifted up");
  EXPECT_EQ(events->front().detail_json, "{}") << "other events carry no figures";
  auto model = get_model(*db_, "d1");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->status, ModelStatus::kChampion) << "drift alone changes no status";

  EXPECT_EQ(record_drift_detected(*db_, "nope", "m", "r", "{}").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(record_drift_detected(*db_, "d1", "m", "r", "[1]").error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(actions_of("d1").size(), 3u) << "refused ones leave nothing";
}

TEST_P(RegistryTest, RegistrationCarriesTheGateDecisionInTheSameTransaction) {
  NewModel first;
  first.version = "g1";
  auto promoted =
      register_model(*db_, first, "gate", "run 1 finished", AfterRegister::kPromote, "no champion");
  ASSERT_TRUE(promoted.ok()) << promoted.error().message;
  EXPECT_EQ(promoted->status, ModelStatus::kChampion);
  EXPECT_EQ(promoted->status_reason, "no champion");
  NewModel second;
  second.version = "g2";
  auto kept = register_model(*db_, second, "gate", "run 2 finished", AfterRegister::kNotPromoted,
                             "not 2 % better");
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  EXPECT_EQ(kept->status, ModelStatus::kCandidate);
  EXPECT_EQ(kept->status_reason, "not 2 % better");
  EXPECT_EQ(actions_of("g2"), (std::vector<std::string>{"registered", "not_promoted"}));
  EXPECT_EQ(actions_of("g1"), (std::vector<std::string>{"registered", "promoted"}));
}

TEST_P(RegistryTest, ReplicasPromotingAtOnceLeaveOneChampionAndAConsistentTrail) {
  // Each thread a replica with a connection of its own: promotions serialise (SQLite's write
  // lock, PostgreSQL's advisory lock), so each one demotes the champion the one before crowned.
  constexpr int kReplicas = 4;
  for (int i = 0; i < kReplicas; ++i)
    new_model("p" + std::to_string(i));
  std::vector<Result<void>> promoted(kReplicas, make_error(ErrorCode::kIo, "not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      auto db = Database::open_url(location());
      if (!db) {
        promoted[static_cast<std::size_t>(i)] = db.error();
        return;
      }
      promoted[static_cast<std::size_t>(i)] =
          promote(*db, "p" + std::to_string(i), "replica " + std::to_string(i), "at once");
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  for (const Result<void>& done : promoted)
    EXPECT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(raw_count("SELECT count(*) FROM models WHERE status = 'champion'"), 1);
  EXPECT_EQ(raw_count("SELECT count(*) FROM models WHERE status = 'retired'"), kReplicas - 1);
  EXPECT_EQ(raw_count("SELECT count(*) FROM model_events WHERE action = 'promoted'"), kReplicas);
  EXPECT_EQ(raw_count("SELECT count(*) FROM model_events WHERE action = 'demoted'"), kReplicas - 1);
}

TEST_P(RegistryTest, CountsIncludeModelsAndRuns) {
  new_model("n1");
  auto counts = db_->counts();
  ASSERT_TRUE(counts.ok()) << counts.error().message;
  EXPECT_EQ(counts->models, 1);
  EXPECT_EQ(counts->training_runs, 1);
}

class PgRegistryMigration : public BackendTest {};
INSTANTIATE_TEST_SUITE_P(Backends, PgRegistryMigration,
                         ::testing::Values(testing::TestBackend::kPostgresql),
                         testing::backend_name);

TEST_P(PgRegistryMigration, AVersion1DatabaseGainsTheRegistryAndKeepsItsRows) {
  {
    auto db = open_database();
    ASSERT_TRUE(db.ok()) << db.error().message;
    ASSERT_TRUE(db->upsert_cell(testing::make_cell("c1")).ok());
  }
  // Back to version 1 as main's first PostgreSQL release made it: no registry tables.
  raw_sql("",
          "DROP TABLE model_events; DROP TABLE models; DROP TABLE training_runs; "
          "DELETE FROM schema_version WHERE version > 1");
  ASSERT_EQ(raw_count("SELECT max(version) FROM schema_version"), 1);
  auto db = open_database();
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(db->schema_version(), 2);
  EXPECT_TRUE(db->find_cell("c1")->has_value());
  NewModel model;
  model.version = "after-migration";
  ASSERT_TRUE(register_model(*db, model, "ops", "first", AfterRegister::kPromote, "only").ok());
  EXPECT_EQ(raw_count("SELECT count(*) FROM model_events"), 2);
}

// The schema of a version-2 file as that release wrote it (schema.cc, versions 1 and 2).
constexpr const char* kVersion2File = R"sql(
PRAGMA application_id = 1668899692;
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
  applied_at_ms INTEGER NOT NULL);
CREATE TABLE rigs (id INTEGER PRIMARY KEY, rig_id TEXT NOT NULL UNIQUE CHECK (rig_id <> ''),
  description TEXT NOT NULL DEFAULT '');
CREATE TABLE cells (id INTEGER PRIMARY KEY, cell_id TEXT NOT NULL UNIQUE CHECK (cell_id <> ''),
  rig INTEGER REFERENCES rigs(id), chemistry TEXT NOT NULL DEFAULT '',
  rated_capacity_ah REAL NOT NULL CHECK (rated_capacity_ah > 0),
  charge_policy TEXT NOT NULL DEFAULT '', metadata_json TEXT NOT NULL DEFAULT '{}'
  CHECK (json_valid(metadata_json) AND json_type(metadata_json) = 'object'));
CREATE INDEX cells_by_rig ON cells(rig);
CREATE TABLE sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE cycles (cell INTEGER NOT NULL REFERENCES cells(id), cycle INTEGER NOT NULL,
  discharge_capacity_ah REAL NOT NULL, charge_capacity_ah REAL, internal_resistance_ohm REAL,
  temperature_min_c REAL, temperature_avg_c REAL, temperature_max_c REAL, charge_time_min REAL,
  measured_at_ms INTEGER, received_at_ms INTEGER NOT NULL,
  source INTEGER NOT NULL REFERENCES sources(id), PRIMARY KEY (cell, cycle)) WITHOUT ROWID;
CREATE TABLE rejected (id INTEGER PRIMARY KEY, source TEXT NOT NULL, payload BLOB NOT NULL,
  reason TEXT NOT NULL, rejected_at_ms INTEGER NOT NULL);
CREATE TABLE training_runs (id INTEGER PRIMARY KEY, started_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER,
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  config_json TEXT NOT NULL DEFAULT '{}', summary_json TEXT NOT NULL DEFAULT '{}');
CREATE TABLE models (id INTEGER PRIMARY KEY, version TEXT NOT NULL UNIQUE CHECK (version <> ''),
  kind TEXT NOT NULL, training_run INTEGER REFERENCES training_runs(id),
  created_at_ms INTEGER NOT NULL, file_path TEXT, metrics_json TEXT NOT NULL DEFAULT '{}');
CREATE INDEX models_by_training_run ON models(training_run);
CREATE TABLE forecasts (id INTEGER PRIMARY KEY, cell INTEGER NOT NULL REFERENCES cells(id),
  at_cycle INTEGER NOT NULL, model_version TEXT NOT NULL, origin TEXT NOT NULL,
  soh_f32le BLOB NOT NULL CHECK (length(soh_f32le) % 4 = 0), created_at_ms INTEGER NOT NULL);
CREATE INDEX forecasts_by_cell ON forecasts(cell, at_cycle);
ALTER TABLE forecasts ADD COLUMN error_10 REAL;
ALTER TABLE forecasts ADD COLUMN error_h REAL;
CREATE INDEX forecasts_unscored ON forecasts(cell, at_cycle) WHERE error_h IS NULL;
INSERT INTO schema_version VALUES (1, 'initial schema', 1), (2, 'forecast scoring', 2);
INSERT INTO training_runs(id, started_at_ms, finished_at_ms, status) VALUES (7, 100, 200,
  'succeeded');
INSERT INTO models(version, kind, training_run, created_at_ms, file_path, metrics_json)
  VALUES ('old-1', 'student-int8', 7, 150, '/m/old-1', '{"mae":0.02}');
)sql";

TEST(RegistryMigration, AVersion2FileGainsTheRegistryAndKeepsItsRows) {
  TempDir tmp;
  const fs::path path = tmp / "v2.db";
  raw_exec(path, kVersion2File);
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(db->schema_version(), kSchemaVersion);
  EXPECT_EQ(raw_int(path, "SELECT max(version) FROM schema_version"), kSchemaVersion);

  auto run = get_run(*db, 7);
  ASSERT_TRUE(run.ok()) << run.error().message;
  EXPECT_EQ(run->status, RunStatus::kSucceeded);
  EXPECT_EQ(run->trigger, "manual");
  EXPECT_EQ(run->snapshot.cycles, 0);
  auto old = get_model(*db, "old-1");
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_EQ(old->status, ModelStatus::kCandidate);
  EXPECT_EQ(old->run_id, 7);
  EXPECT_EQ(old->metrics_json, R"({"mae":0.02})");
  EXPECT_EQ(old->lineage_json, "{}");
  ASSERT_TRUE(promote(*db, "old-1", "ops", "the only model there is").ok());
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM model_events"), 1);
}

TEST(RegistryMigration, AVersion4FileKeepsItsEventsAndAcceptsDriftEvents) {
  TempDir tmp;
  const fs::path path = tmp / "v4.db";
  {
    auto db = Database::open(path);
    ASSERT_TRUE(db.ok()) << db.error().message;
    auto run = create_run(*db, NewRun{"manual", "tester", "{}", 0});
    ASSERT_TRUE(run.ok());
    NewModel m;
    m.version = "v3-1";
    m.run_id = *run;
    ASSERT_TRUE(register_model(*db, m, "retrainer", "run finished").ok());
    ASSERT_TRUE(promote(*db, "v3-1", "ops", "first").ok());
  }
  // Back to the events table as versions 3 and 4 made it, its rows kept.
  raw_exec(path, R"sql(
CREATE TABLE old_events (id INTEGER PRIMARY KEY, model INTEGER NOT NULL REFERENCES models(id),
  action TEXT NOT NULL
    CHECK (action IN ('registered', 'promoted', 'not_promoted', 'demoted', 'rolled_back')),
  actor TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', at_ms INTEGER NOT NULL);
INSERT INTO old_events SELECT id, model, action, actor, reason, at_ms FROM model_events;
DROP TABLE model_events;
ALTER TABLE old_events RENAME TO model_events;
CREATE INDEX model_events_by_model ON model_events(model, id);
DELETE FROM schema_version WHERE version = 5;
)sql");
  ASSERT_EQ(raw_int(path, "SELECT max(version) FROM schema_version"), 4);
  auto db = Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(raw_int(path, "SELECT max(version) FROM schema_version"), kSchemaVersion);
  auto events = events_of(*db, "v3-1");
  ASSERT_TRUE(events.ok()) << events.error().message;
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].action, "promoted");
  EXPECT_EQ((*events)[1].reason, "first");
  ASSERT_TRUE(record_drift_detected(*db, "v3-1", "m", "drifted", R"({"samples":1})").ok());
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM model_events WHERE action = 'drift_detected'"), 1);
}

}  // namespace
}  // namespace cyclecast::storage
