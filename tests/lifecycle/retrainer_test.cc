// The retraining worker end to end on real SQLite files and real (tiny) training runs: manual
// start to a promoted champion with a verifiable bundle, a worse run kept as candidate, manual
// promote and rollback, one run at a time, stop() mid-run and a failing run leaving the
// registry unchanged and no files behind.
#include "cyclecast/lifecycle/retrainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/storage/registry.h"
#include "lifecycle_fixture.h"
#include "temp_dir.h"

namespace cyclecast::lifecycle {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every file under `dir`, relative, sorted.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file()) names.push_back(fs::relative(e.path(), dir).string());
  std::sort(names.begin(), names.end());
  return names;
}

class RetrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_fading_cells(db_path_, 18, 160); }

  std::unique_ptr<Retrainer> make(RetrainerConfig config) {
    auto r = Retrainer::create(std::move(config), [this](const RunOutcome& outcome) {
      // On the worker thread.
      worker_nice_ = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
      outcomes_.push_back(outcome);
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(*r) : nullptr;
  }

  RunOutcome run_once(Retrainer& retrainer, const std::string& who) {
    auto id = retrainer.start("manual", who);
    EXPECT_TRUE(id.ok()) << id.error().message;
    retrainer.wait();
    auto outcome = retrainer.last_outcome();
    EXPECT_TRUE(outcome.has_value());
    return outcome.value_or(RunOutcome{});
  }

  storage::Database open_db() {
    auto db = storage::Database::open(db_path_);
    EXPECT_TRUE(db.ok());
    return std::move(*db);
  }

  TempDir tmp_;
  fs::path db_path_ = tmp_ / "cyclecast.db";
  fs::path state_ = tmp_ / "state";
  std::vector<RunOutcome> outcomes_;
  int worker_nice_ = 0;
};

TEST_F(RetrainerTest, ManualRunPromotesAWorseRunStaysCandidateAndRollbackReturns) {
  RetrainerConfig measuring = testing::tiny_config(db_path_, state_);
  measuring.measure = RetrainerConfig::Measure::kOn;  // scripts/setup installs the cross tools
  auto retrainer = make(measuring);
  ASSERT_TRUE(retrainer);
  const RunOutcome first = run_once(*retrainer, "alice");
  ASSERT_TRUE(first.succeeded) << first.error;
  EXPECT_TRUE(first.promoted) << first.gate_reason;
  EXPECT_FALSE(retrainer->running());
  EXPECT_FALSE(retrainer->progress().has_value());

  auto db = open_db();
  auto champion = storage::champion(db);
  ASSERT_TRUE(champion.ok() && champion->has_value());
  const storage::ModelRecord& model = **champion;
  EXPECT_EQ(model.version, first.model_version);
  EXPECT_EQ(model.bundle_path, (state_ / "bundles" / (model.version + ".ccb")).string());
  EXPECT_EQ(model.bundle_sha256, first.bundle_sha256);
  for (const char* name :
       {"student.int8", "student.ccm", "model.bin", "report.json", "report.html"})
    EXPECT_TRUE(fs::exists(fs::path(model.model_dir) / name)) << name;
  const auto metrics = nlohmann::json::parse(model.metrics_json);
  EXPECT_NEAR(metrics["mae"].get<double>(), first.candidate_mae, 1e-12);
  const auto lineage = nlohmann::json::parse(model.lineage_json);
  EXPECT_EQ(lineage["run_id"], first.run_id);
  EXPECT_TRUE(lineage.contains("teacher"));
  // The evidence against the baselines the node could run (k-fold: 18 cells, under 20) is kept
  // with the model and stated in the promotion's reason.
  const auto& evidence = lineage["gate_evidence"];
  ASSERT_TRUE(evidence.is_object()) << lineage;
  EXPECT_EQ(evidence["scoring"], "k-fold");
  EXPECT_EQ(evidence["cells"], 18);
  EXPECT_TRUE(evidence["beats_baselines"].get<bool>()) << evidence;
  EXPECT_LT(evidence["candidate_mae"].get<double>(), evidence["best_baseline_mae"].get<double>());
  EXPECT_NE(first.gate_reason.find("beats every baseline the node could run"), std::string::npos)
      << first.gate_reason;
  // Measured on the Cortex-M4 under QEMU, and the bundle carries the same figures.
  const auto footprint = nlohmann::json::parse(model.footprint_json);
  EXPECT_EQ(footprint["kind"], "measured") << footprint;
  EXPECT_GT(footprint.value("flash_bytes", 0), 1000) << footprint;
  EXPECT_GT(footprint.value("ram_bytes", 0), 100) << footprint;
  EXPECT_GT(footprint.value("stack_bytes", 0), 0) << footprint;
  EXPECT_GT(footprint.value("instructions", 0), 1000) << footprint;

  // The run is recorded with its snapshot; the snapshot copy itself is gone.
  auto run = storage::get_run(db, first.run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, storage::RunStatus::kSucceeded);
  EXPECT_EQ(run->trigger, "manual");
  EXPECT_EQ(run->requested_by, "alice");
  EXPECT_EQ(run->stage, "gate");
  EXPECT_EQ(first.model_version, model_version_for(first.run_id, run->started_at_ms));
  EXPECT_EQ(run->snapshot.cells, 18);
  EXPECT_EQ(run->snapshot.cycles, 18 * 160);
  EXPECT_EQ(run->snapshot.sha256.size(), 64u);
  EXPECT_FALSE(fs::exists(run->snapshot.path));

  // The bundle verifies with the state's key and names the snapshot it was trained on.
  auto key = bundle::load_signing_key(state_ / bundle::kSigningKeyRelativePath);
  ASSERT_TRUE(key.ok()) << key.error().message;
  const auto bytes = read_bytes(model.bundle_path);
  EXPECT_EQ(static_cast<std::int64_t>(bytes.size()), model.bundle_bytes);
  auto verified = bundle::verify_bundle(bytes, key->public_key);
  ASSERT_TRUE(verified.ok()) << verified.error().message;
  EXPECT_EQ(verified->manifest.model_version, model.version);
  EXPECT_EQ(verified->manifest.data_snapshot.digest, "sha256:" + run->snapshot.sha256);
  EXPECT_EQ(verified->manifest.footprint.kind, "measured");
  EXPECT_EQ(verified->manifest.footprint.instructions, footprint.value("instructions", 0));

  // A second run that cannot beat the champion (a 100 % margin) stays a candidate.
  RetrainerConfig strict = testing::tiny_config(db_path_, state_);
  strict.promotion_margin = 1.0;
  retrainer.reset();
  retrainer = make(strict);
  ASSERT_TRUE(retrainer);
  const RunOutcome second = run_once(*retrainer, "bob");
  ASSERT_TRUE(second.succeeded) << second.error;
  EXPECT_FALSE(second.promoted);
  EXPECT_TRUE(std::isfinite(second.champion_mae));  // the champion, on the new test windows
  auto kept = storage::get_model(db, second.model_version);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->status, storage::ModelStatus::kCandidate);
  EXPECT_EQ(kept->status_reason, second.gate_reason);
  EXPECT_NE(kept->status_reason.find(first.model_version), std::string::npos);
  auto events = storage::events_of(db, second.model_version);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ(events->back().action, "not_promoted");
  EXPECT_EQ(events->back().actor, "gate");
  champion = storage::champion(db);
  ASSERT_TRUE(champion.ok() && champion->has_value());
  EXPECT_EQ((*champion)->version, first.model_version);

  // An operator promotes it anyway, then rolls back: the first model is champion again.
  ASSERT_TRUE(storage::promote(db, second.model_version, "carol", "try it on rig b").ok());
  auto back = storage::rollback(db, "carol", "live error too high");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, first.model_version);
  auto rolled = storage::get_model(db, second.model_version);
  ASSERT_TRUE(rolled.ok());
  EXPECT_EQ(rolled->status, storage::ModelStatus::kRolledBack);
  events = storage::events_of(db, second.model_version);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().action, "rolled_back");
  EXPECT_EQ(events->back().actor, "carol");
  EXPECT_EQ(events->back().reason, "live error too high");
  EXPECT_EQ(outcomes_.size(), 2u);
}

TEST_F(RetrainerTest, OneRunAtATimeAndStopInterruptsItLeavingNothing) {
  RetrainerConfig config = testing::tiny_config(db_path_, state_);
  config.training.teacher_budget_s = 600;  // long enough that stop() lands inside training
  config.training.teacher_max_epochs = 100000;
  auto retrainer = make(config);
  ASSERT_TRUE(retrainer);
  auto id = retrainer->start("manual", "alice");
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto again = retrainer->start("interval", "scheduler");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);

  // Wait (bounded) until the pipeline itself runs, so the cancel flag is what stops it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  for (;;) {
    auto p = retrainer->progress();
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->run_id, *id);
    if (p->stage == "teacher") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "stuck in " << p->stage;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  retrainer->stop();
  ASSERT_EQ(outcomes_.size(), 1u);
  EXPECT_FALSE(outcomes_[0].succeeded);
  EXPECT_TRUE(outcomes_[0].interrupted);
  EXPECT_EQ(outcomes_[0].error, "interrupted by shutdown (during train)");

  auto db = open_db();
  auto run = storage::get_run(db, *id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, storage::RunStatus::kFailed);
  EXPECT_EQ(run->error.rfind("interrupted by shutdown", 0), 0u) << run->error;
  auto models = storage::list_models(db);
  ASSERT_TRUE(models.ok());
  EXPECT_TRUE(models->empty());
  EXPECT_EQ(files_under(state_ / "runs"), std::vector<std::string>{});
  EXPECT_EQ(files_under(state_ / "models"), std::vector<std::string>{});
  EXPECT_EQ(files_under(state_ / "bundles"), std::vector<std::string>{});
  EXPECT_EQ(retrainer->start("manual", "alice").error().code, ErrorCode::kConflict);
}

TEST_F(RetrainerTest, FailingRunIsRecordedWithItsErrorAndChangesNothing) {
  const fs::path empty_db = tmp_ / "empty.db";
  ASSERT_TRUE(storage::Database::open(empty_db).ok());
  RetrainerConfig config = testing::tiny_config(empty_db, state_);
  config.lower_priority = true;
  auto retrainer = make(config);
  ASSERT_TRUE(retrainer);
  const RunOutcome outcome = run_once(*retrainer, "alice");
  EXPECT_EQ(worker_nice_, 19);  // the worker thread lowered its own priority first
  // So did the training process, in a session (and autogroup) of its own.
  EXPECT_NE(outcome.worker.find(", nice 19, SCHED_IDLE, own session"), std::string::npos)
      << outcome.worker;
  EXPECT_FALSE(outcome.succeeded);
  EXPECT_FALSE(outcome.interrupted);
  EXPECT_EQ(outcome.error.rfind("read: ", 0), 0u) << outcome.error;

  auto db = storage::Database::open(empty_db);
  ASSERT_TRUE(db.ok());
  auto run = storage::get_run(*db, outcome.run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, storage::RunStatus::kFailed);
  EXPECT_EQ(run->error, outcome.error);
  EXPECT_EQ(run->stage, "read");
  auto models = storage::list_models(*db);
  ASSERT_TRUE(models.ok());
  EXPECT_TRUE(models->empty());
  EXPECT_EQ(files_under(state_ / "runs"), std::vector<std::string>{});
  EXPECT_EQ(files_under(state_ / "bundles"), std::vector<std::string>{});
}

// A training process that ends without answering, or cannot be started: the run fails saying
// so, and leaves nothing behind.
TEST_F(RetrainerTest, ATrainingProcessWithoutAResultFailsTheRun) {
  const std::pair<const char*, const char*> cases[] = {
      {"/bin/true", "read: the training process ended without a result (exit status 0"},
      {"/nonexistent/cyclecastd", "read: cannot start the training process /nonexistent/"}};
  for (const auto& [executable, error] : cases) {
    RetrainerConfig config = testing::tiny_config(db_path_, state_);
    config.worker_executable = executable;
    auto retrainer = make(config);
    ASSERT_TRUE(retrainer);
    const RunOutcome outcome = run_once(*retrainer, "alice");
    EXPECT_FALSE(outcome.succeeded);
    EXPECT_EQ(outcome.error.rfind(error, 0), 0u) << outcome.error;
    EXPECT_EQ(files_under(state_ / "runs"), std::vector<std::string>{});
  }
}

// retrain.measure = "on" where the cross compiler is missing: the run fails naming it, in the
// bundle stage, and registers nothing.
TEST_F(RetrainerTest, MeasuringWithoutTheCrossCompilerFailsTheRunNamingIt) {
  RetrainerConfig config = testing::tiny_config(db_path_, state_);
  config.measure = RetrainerConfig::Measure::kOn;
  config.target_tools.gcc = "cyclecast-test-no-such-gcc";
  auto retrainer = make(config);
  ASSERT_TRUE(retrainer);
  const RunOutcome outcome = run_once(*retrainer, "alice");
  EXPECT_FALSE(outcome.succeeded);
  EXPECT_EQ(outcome.error.rfind("bundle: ", 0), 0u) << outcome.error;
  EXPECT_NE(outcome.error.find("cyclecast-test-no-such-gcc"), std::string::npos) << outcome.error;
  auto db = open_db();
  auto models = storage::list_models(db);
  ASSERT_TRUE(models.ok());
  EXPECT_TRUE(models->empty());
  EXPECT_EQ(files_under(state_ / "bundles"), std::vector<std::string>{});
}

// retrain.measure = "auto" where the tools start but the measurement fails (here a QEMU that
// refuses to run, as a sandbox might): the run succeeds with the estimate and says why.
TEST_F(RetrainerTest, AutoMeasureFallsBackToTheEstimateSayingWhy) {
  const fs::path qemu = tmp_ / "refusing-qemu";
  std::ofstream(qemu) << "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\necho refused >&2\nexit 1\n";
  fs::permissions(qemu, fs::perms::owner_all);
  RetrainerConfig config = testing::tiny_config(db_path_, state_);
  config.measure = RetrainerConfig::Measure::kAuto;
  config.target_tools.qemu = qemu.string();
  auto retrainer = make(config);
  ASSERT_TRUE(retrainer);
  const RunOutcome outcome = run_once(*retrainer, "alice");
  ASSERT_TRUE(outcome.succeeded) << outcome.error;
  auto db = open_db();
  auto model = storage::get_model(db, outcome.model_version);
  ASSERT_TRUE(model.ok()) << model.error().message;
  const auto footprint = nlohmann::json::parse(model->footprint_json);
  EXPECT_EQ(footprint["kind"], "estimate") << footprint;
  EXPECT_NE(footprint["method"].get<std::string>().find(
                "measuring failed: the node harness failed under QEMU"),
            std::string::npos)
      << footprint;
}

TEST_F(RetrainerTest, CreateFailsRunsAStoppedProcessLeftRunning) {
  {
    auto db = open_db();
    auto id = storage::create_run(db, {"interval", "scheduler", "{}", 0});
    ASSERT_TRUE(id.ok());
    fs::create_directories(state_ / "runs" / std::to_string(*id) / "train.partial");
    fs::create_directories(state_ / "bundles");
    std::ofstream(state_ / "bundles" / "r1-20261130.ccb.partial") << "half";
  }
  auto retrainer = make(testing::tiny_config(db_path_, state_));
  ASSERT_TRUE(retrainer);
  auto db = open_db();
  auto runs = storage::list_runs(db);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().status, storage::RunStatus::kFailed);
  EXPECT_NE(runs->front().error.find("interrupted"), std::string::npos);
  EXPECT_EQ(files_under(state_ / "runs"), std::vector<std::string>{});
  EXPECT_EQ(files_under(state_ / "bundles"), std::vector<std::string>{});
  EXPECT_TRUE(fs::exists(state_ / bundle::kSigningKeyRelativePath));
}

TEST_F(RetrainerTest, CreateRemovesTheFilesOfAnInterruptedRunsUnregisteredModel) {
  std::string version;
  {
    auto db = open_db();
    auto id = storage::create_run(db, {"interval", "scheduler", "{}", 0});
    ASSERT_TRUE(id.ok());
    version = model_version_for(*id, storage::get_run(db, *id)->started_at_ms);
    // Stopped after the model's files and bundle were written, before it was registered.
    fs::create_directories(state_ / "models" / version);
    std::ofstream(state_ / "models" / version / "model.bin") << "model";
    fs::create_directories(state_ / "bundles");
    std::ofstream(state_ / "bundles" / (version + ".ccb")) << "bundle";
  }
  auto retrainer = make(testing::tiny_config(db_path_, state_));
  ASSERT_TRUE(retrainer);
  EXPECT_EQ(files_under(state_ / "models"), std::vector<std::string>{});
  EXPECT_EQ(files_under(state_ / "bundles"), std::vector<std::string>{});
}

TEST_F(RetrainerTest, CreateFinishesARunStoppedAfterItsModelWasRegistered) {
  std::int64_t run_id = 0;
  {
    auto db = open_db();
    auto id = storage::create_run(db, {"cycles", "scheduler", "{}", 0});
    ASSERT_TRUE(id.ok());
    run_id = *id;
    const std::string version =
        model_version_for(run_id, storage::get_run(db, run_id)->started_at_ms);
    fs::create_directories(state_ / "models" / version);
    std::ofstream(state_ / "models" / version / "model.bin") << "model";
    storage::NewModel model;
    model.version = version;
    model.run_id = run_id;
    model.model_dir = (state_ / "models" / version).string();
    ASSERT_TRUE(storage::register_model(db, model, "gate", "trained",
                                        storage::AfterRegister::kPromote, "no champion")
                    .ok());
    // ...and stopped before the run was finished.
  }
  auto retrainer = make(testing::tiny_config(db_path_, state_));
  ASSERT_TRUE(retrainer);
  auto db = open_db();
  auto run = storage::get_run(db, run_id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, storage::RunStatus::kSucceeded) << run->error;
  EXPECT_NE(run->summary_json.find("recovered"), std::string::npos) << run->summary_json;
  auto champion = storage::champion(db);
  ASSERT_TRUE(champion.ok() && champion->has_value());
  EXPECT_EQ((*champion)->run_id, run_id);
  EXPECT_EQ(files_under(state_ / "models").size(), 1u);  // the registered model's files stay
}

}  // namespace
}  // namespace cyclecast::lifecycle
