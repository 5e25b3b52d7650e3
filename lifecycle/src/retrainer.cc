#include "cyclecast/lifecycle/retrainer.h"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>
#include <vector>

#include "cyclecast/lifecycle/bundle.h"
#include "cyclecast/lifecycle/training_worker.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/pipeline/report.h"
#include "cyclecast/storage/database.h"
#include "cyclecast/storage/registry.h"
#include "run_files.h"

namespace cyclecast::lifecycle {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct Retrainer::Signing {
  bundle::SigningKey key;
};

namespace {

constexpr const char* kInterruptedByShutdown = "interrupted by shutdown";
constexpr const char* kInterruptedByStop = "interrupted: the process stopped during the run";

// Share of the overall progress before and after the pipeline's own stages.
constexpr double kBeforeTraining = 0.05;
constexpr double kTrainingShare = 0.90;

// nice 19 on this thread (Linux keeps the nice value per thread) and SCHED_IDLE where allowed;
// threads it creates, the pipeline's workers, inherit both, so ingestion keeps its pace.
void lower_own_priority() {
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
  sched_param param{};
  param.sched_priority = 0;
  pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);  // refused: nice 19 still holds
}

// The first line of a message, at most 200 bytes (a tool's whole output is too much to keep).
std::string first_line(const std::string& message) {
  return message.substr(0, std::min<std::size_t>(message.find('\n'), 200));
}

// The tools to measure the student's footprint with, or none for the pipeline's estimate.
std::optional<bundle::TargetTools> measuring_tools(const RetrainerConfig& config) {
  using Measure = RetrainerConfig::Measure;
  if (config.measure == Measure::kOff) return std::nullopt;
  if (config.measure == Measure::kAuto && !bundle::target_tools_available(config.target_tools)) {
    return std::nullopt;
  }
  return config.target_tools;
}

Json metrics_json(const pipeline::ForecastMetrics& m) {
  return {{"mae", m.mae},
          {"mae_10", m.mae_10},
          {"mae_100", m.mae_100},
          {"rmse", m.rmse},
          {"windows", m.windows},
          {"eol_error_cycles", m.eol_error_cycles},
          {"eol_windows", m.eol_windows}};
}

Json footprint_json(const bundle::Footprint& f) {
  Json j = {{"kind", f.kind}, {"method", f.method}};
  const auto put = [&j](const char* key, const std::optional<std::int64_t>& value) {
    if (value) j[key] = *value;
  };
  put("flash_bytes", f.flash_bytes);
  put("ram_bytes", f.ram_bytes);
  put("stack_bytes", f.stack_bytes);
  put("instructions", f.instructions);
  put("cycles", f.cycles);
  return j;
}

// Runs a stopped process left 'running'. The model is registered and the gate decided in one
// transaction, so a run whose model is registered did all that counts and is finished as
// succeeded; any other failed, its files removed (the registry never pointed at them).
Result<void> settle_unfinished_runs(storage::Database& db, const fs::path& state_dir) {
  auto runs = storage::list_runs(db, 1000);
  if (!runs) return runs.error();
  auto models = storage::list_models(db);
  if (!models) return models.error();
  for (const auto& run : *runs) {
    if (run.status != storage::RunStatus::kRunning) continue;
    const std::string version = model_version_for(run.id, run.started_at_ms);
    const bool registered = std::any_of(models->begin(), models->end(),
                                        [&](const auto& m) { return m.run_id == run.id; });
    if (registered) {
      const Json summary = {{"model_version", version},
                            {"recovered",
                             "the process stopped after registering the model; "
                             "finished at the next start"}};
      if (auto finished =
              storage::finish_run(db, run.id, storage::RunStatus::kSucceeded, "", summary.dump());
          !finished) {
        return finished.error();
      }
      continue;
    }
    if (auto failed =
            storage::finish_run(db, run.id, storage::RunStatus::kFailed, kInterruptedByStop);
        !failed) {
      return failed.error();
    }
    remove_run_files(state_dir / "runs" / std::to_string(run.id), state_dir / "models" / version,
                     state_dir / "bundles" / (version + ".ccb"));
  }
  // Runs beyond the newest 1000 (never in practice) are failed without looking at their files.
  auto failed = storage::fail_unfinished_runs(db, kInterruptedByStop);
  if (!failed) return failed.error();
  return {};
}

// A step's error as the run records it: "<stage>: <message>".
Error at_stage(const std::string& stage, const Error& error) {
  return Error{error.code, stage + ": " + error.message};
}

}  // namespace

std::string model_version_for(std::int64_t run_id, std::int64_t started_at_ms) {
  const std::time_t seconds = static_cast<std::time_t>(started_at_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char date[16];
  std::strftime(date, sizeof date, "%Y%m%d", &tm);
  return "r" + std::to_string(run_id) + "-" + date;
}

Result<std::unique_ptr<Retrainer>> Retrainer::create(RetrainerConfig config,
                                                     CompletionCallback on_done) {
  std::error_code ec;
  for (const char* sub : {"runs", "models", "bundles"}) {
    fs::create_directories(config.state_dir / sub, ec);
    if (ec) {
      return make_error(ErrorCode::kIo,
                        "cannot create " + (config.state_dir / sub).string() + ": " + ec.message());
    }
  }
  auto key = bundle::load_or_create_signing_key(config.state_dir);
  if (!key) return key.error();
  auto db = storage::Database::open(config.database_path);
  if (!db) return db.error();
  if (auto settled = settle_unfinished_runs(*db, config.state_dir); !settled) {
    return settled.error();
  }
  remove_partials(config.state_dir / "models");
  remove_partials(config.state_dir / "bundles");
  auto signing = std::make_unique<Signing>();
  signing->key = *key;
  return std::unique_ptr<Retrainer>(
      new Retrainer(std::move(config), std::move(on_done), std::move(signing)));
}

Retrainer::Retrainer(RetrainerConfig config, CompletionCallback on_done,
                     std::unique_ptr<Signing> signing)
    : config_(std::move(config)), on_done_(std::move(on_done)), signing_(std::move(signing)) {}

Retrainer::~Retrainer() {
  stop();
}

Result<std::int64_t> Retrainer::start(const std::string& trigger, const std::string& who) {
  std::lock_guard lock(mutex_);
  if (stopped_) return make_error(ErrorCode::kConflict, "the retrainer is stopped");
  if (progress_) {
    return make_error(ErrorCode::kConflict,
                      "training run " + std::to_string(progress_->run_id) + " is in progress");
  }
  // The previous worker has finished (progress_ is cleared last); collect it.
  if (worker_.joinable()) worker_.join();
  auto db = storage::Database::open(config_.database_path);
  if (!db) return db.error();
  const Json config = {{"protocol", config_.protocol},
                       {"window", config_.protocol_options.input_len},
                       {"horizon", config_.protocol_options.horizon},
                       {"widths", config_.training.widths},
                       {"teacher_budget_s", config_.training.teacher_budget_s},
                       {"seed", config_.training.seed},
                       {"promotion_margin", config_.promotion_margin},
                       {"budget",
                        {{"max_flash_bytes", config_.budget.max_flash_bytes},
                         {"max_ram_bytes", config_.budget.max_ram_bytes},
                         {"max_instructions", config_.budget.max_instructions}}}};
  storage::NewRun run{trigger, who, config.dump(), storage::now_ms()};
  auto id = storage::create_run(*db, run);
  if (!id) return id.error();
  RunProgress started;
  started.run_id = *id;
  started.trigger = trigger;
  started.requested_by = who;
  started.stage = "snapshot";
  started.started_at_ms = run.started_at_ms;
  progress_ = started;
  cancel_.store(false);
  worker_ = std::thread([this, started] { work(started); });
  return *id;
}

std::optional<RunProgress> Retrainer::progress() const {
  std::lock_guard lock(mutex_);
  return progress_;
}

bool Retrainer::running() const {
  std::lock_guard lock(mutex_);
  return progress_.has_value();
}

std::optional<RunOutcome> Retrainer::last_outcome() const {
  std::lock_guard lock(mutex_);
  return last_outcome_;
}

void Retrainer::wait() {
  std::thread finished;
  {
    std::lock_guard lock(mutex_);
    finished = std::move(worker_);
  }
  if (finished.joinable()) finished.join();
}

void Retrainer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  cancel_.store(true);
  wait();
}

void Retrainer::set_progress(const std::string& stage, double stage_fraction,
                             double overall_fraction, const std::string& detail, double eta_s) {
  std::lock_guard lock(mutex_);
  if (!progress_) return;
  progress_->stage = stage;
  progress_->stage_fraction = stage_fraction;
  progress_->overall_fraction = overall_fraction;
  progress_->detail = detail;
  progress_->eta_s = eta_s;
}

void Retrainer::set_worker(const std::string& worker) {
  std::lock_guard lock(mutex_);
  if (progress_) progress_->worker = worker;
}

void Retrainer::work(RunProgress started) {
  if (config_.lower_priority) lower_own_priority();
  RunOutcome outcome = execute(started);
  {
    std::lock_guard lock(mutex_);
    last_outcome_ = outcome;
  }
  if (on_done_) on_done_(outcome);
  // Last: from here start() may begin the next run (and join this thread).
  std::lock_guard lock(mutex_);
  progress_.reset();
}

// What a run carries from stage to stage.
struct Retrainer::RunState {
  RunState(RunProgress run, storage::Database database)
      : started(std::move(run)), db(std::move(database)) {}

  RunProgress started;
  std::string version;  // of the model it makes
  fs::path run_dir, snapshot_path, train_dir, model_dir, bundle_path;
  storage::Database db;
  std::string stage = "snapshot";  // the stage in progress, for the failure's message
  bool registered = false;         // from here on the run's files are the registry's

  storage::DataSnapshot snapshot;
  std::optional<storage::ModelRecord> champion_at_start;
  std::optional<TrainingOutcome> trained;
  std::optional<pipeline::ExportedModel> exported;
  std::optional<bundle::Manifest> manifest;
  RunOutcome outcome;
};

RunOutcome Retrainer::execute(const RunProgress& started) {
  RunOutcome outcome;
  outcome.run_id = started.run_id;
  outcome.trigger = started.trigger;
  outcome.requested_by = started.requested_by;
  auto db = storage::Database::open(config_.database_path);
  if (!db) {
    outcome.error = "open: " + db.error().message;
    return outcome;  // nothing can record the failure; the next start marks the run failed
  }
  RunState run(started, std::move(*db));
  run.version = model_version_for(started.run_id, started.started_at_ms);
  run.run_dir = config_.state_dir / "runs" / std::to_string(started.run_id);
  run.snapshot_path = run.run_dir / "snapshot.db";
  run.train_dir = run.run_dir / "train";
  run.model_dir = config_.state_dir / "models" / run.version;
  run.bundle_path = config_.state_dir / "bundles" / (run.version + ".ccb");
  run.outcome = outcome;

  if (Result<void> done = run_stages(run); !done) {
    const bool interrupted = done.error().code == ErrorCode::kCancelled;
    RunOutcome failed = outcome;
    failed.worker = run.outcome.worker;
    failed.interrupted = interrupted;
    failed.error = interrupted ? std::string(kInterruptedByShutdown) + " (during " + run.stage + ")"
                               : at_stage(run.stage, done.error()).message;
    if (!run.registered) remove_run_files(run.run_dir, run.model_dir, run.bundle_path);
    auto recorded =
        storage::finish_run(run.db, started.run_id, storage::RunStatus::kFailed, failed.error);
    if (!recorded) {
      failed.error += "; and recording the failure failed: " + recorded.error().message;
    }
    return failed;
  }
  std::error_code ec;
  if (!config_.keep_snapshot) fs::remove(run.snapshot_path, ec);
  const RunOutcome& o = run.outcome;
  const Json summary = {{"model_version", o.model_version}, {"promoted", o.promoted},
                        {"gate_reason", o.gate_reason},     {"candidate_mae", o.candidate_mae},
                        {"champion_mae", o.champion_mae},   {"bundle", o.bundle_path},
                        {"bundle_sha256", o.bundle_sha256}, {"bundle_bytes", o.bundle_bytes}};
  auto finished = storage::finish_run(run.db, started.run_id, storage::RunStatus::kSucceeded, "",
                                      summary.dump());
  run.outcome.succeeded = finished.ok();
  if (!finished) run.outcome.error = "finish: " + finished.error().message;
  set_progress("done", 1.0, 1.0, "", 0.0);
  return run.outcome;
}

Result<void> Retrainer::run_stages(RunState& run) {
  std::error_code ec;
  fs::create_directories(run.run_dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "cannot create " + run.run_dir.string());
  // The stages in order, each with the share of the whole run done when it starts. The
  // training process reports "train" itself once it has read the snapshot.
  struct Stage {
    const char* name;
    double overall_fraction;
    Result<void> (Retrainer::*run)(RunState&);
  };
  static constexpr Stage kStages[] = {
      {"snapshot", 0.0, &Retrainer::take_snapshot},  {"read", 0.03, &Retrainer::train},
      {"export", 0.96, &Retrainer::store_model},     {"bundle", 0.97, &Retrainer::bundle_candidate},
      {"gate", 0.98, &Retrainer::gate_and_register},
  };
  for (const Stage& stage : kStages) {
    if (auto entered = enter(run, stage.name, stage.overall_fraction); !entered) return entered;
    if (auto done = (this->*stage.run)(run); !done) return done;
  }
  return {};
}

Result<void> Retrainer::enter(RunState& run, const std::string& stage, double overall_fraction) {
  if (cancel_.load()) return make_error(ErrorCode::kCancelled, "training was interrupted");
  run.stage = stage;
  set_progress(stage, 0.0, overall_fraction, "", std::nan(""));
  storage::RunUpdate update;
  update.stage = stage;
  return storage::update_run(run.db, run.started.run_id, update);
}

// A consistent copy of the database, which the training process reads and trains on.
Result<void> Retrainer::take_snapshot(RunState& run) {
  std::error_code ec;
  fs::remove(run.snapshot_path, ec);
  if (auto copied = run.db.backup_to(run.snapshot_path); !copied) return copied;
  run.snapshot.path = run.snapshot_path.string();
  {
    auto copy = storage::Database::open(run.snapshot_path);
    if (!copy) return copy.error();
    auto counts = copy->counts();
    if (!counts) return counts.error();
    run.snapshot.cells = counts->cells;
    run.snapshot.cycles = counts->cycles;
  }
  auto digest = bundle::sha256_file_hex(run.snapshot_path);
  if (!digest) return digest.error();
  run.snapshot.sha256 = *digest;
  storage::RunUpdate with_snapshot;
  with_snapshot.snapshot = run.snapshot;
  with_snapshot.out_dir = run.train_dir.string();
  return storage::update_run(run.db, run.started.run_id, with_snapshot);
}

// Trains in the worker process (training_worker.h); the champion at this point is evaluated
// there too, on the same test windows.
Result<void> Retrainer::train(RunState& run) {
  auto champion_at_start = storage::champion(run.db);
  if (!champion_at_start) return champion_at_start.error();
  run.champion_at_start = *champion_at_start;
  TrainingRequest request;
  request.snapshot_path = run.snapshot_path;
  request.protocol = config_.protocol;
  request.protocol_options = config_.protocol_options;
  request.inputs = config_.inputs;
  request.training = config_.training;
  request.out_dir = run.train_dir;
  if (run.champion_at_start) {
    request.champion_model =
        fs::path(run.champion_at_start->model_dir) / pipeline::RunFiles::kStudentInt8;
  }
  request.lower_priority = config_.lower_priority;
  TrainingWorkerEvents events;
  events.started = [&](const std::string& worker) {
    run.outcome.worker = worker;
    set_worker(worker);
  };
  events.loaded = [&] { (void)enter(run, "train", kBeforeTraining); };
  events.progress = [this](const pipeline::TrainingProgress& p) {
    set_progress(pipeline::stage_name(p.stage), p.stage_fraction,
                 kBeforeTraining + kTrainingShare * p.overall_fraction, p.detail, p.eta_s);
  };
  auto trained = train_in_worker(config_.worker_executable, request,
                                 run.run_dir / "training-request.json", events, cancel_);
  if (!trained) return trained.error();
  run.trained = std::move(*trained);
  run.outcome.candidate_mae = run.trained->result.chosen_int8.mae;
  return {};
}

// The model folder; the export it holds is the one the bundle ships (exported once per run).
Result<void> Retrainer::store_model(RunState& run) {
  auto exported = store_model_files(run.trained->result, run.version, run.model_dir);
  if (!exported) return exported.error();
  run.exported = std::move(*exported);
  return {};
}

// The signed bundle of the chosen student, its footprint measured on the target where the
// configuration asks for it.
Result<void> Retrainer::bundle_candidate(RunState& run) {
  bundle::RunBundleOptions options;
  options.run_dir = run.train_dir.string();
  options.model_version = run.version;
  options.data_path = run.snapshot_path.string();
  options.measure_with = measuring_tools(config_);
  options.exported = run.exported;
  // The run as the training process described it, not re-read from its report.
  options.run = static_cast<const pipeline::RunOutput&>(run.trained->result);
  auto contents = bundle::collect_run(options);
  if (!contents && options.measure_with && config_.measure == RetrainerConfig::Measure::kAuto) {
    // "auto" measures where it can: a measurement that fails leaves the estimate, saying why.
    const std::string why = first_line(contents.error().message);
    options.measure_with.reset();
    contents = bundle::collect_run(options);
    if (contents) contents->manifest.footprint.method += "; measuring failed: " + why;
  }
  if (!contents) return contents.error();
  run.manifest = contents->manifest;
  auto bytes = bundle::build_bundle(std::move(*contents), signing_->key);
  if (!bytes) return bytes.error();
  if (auto written = write_durably(run.bundle_path, *bytes); !written) return written;
  run.outcome.bundle_path = run.bundle_path.string();
  run.outcome.bundle_sha256 = bundle::sha256_hex(*bytes);
  run.outcome.bundle_bytes = static_cast<std::int64_t>(bytes->size());
  return {};
}

// The gate's decision against the champion of now, registered with the model in one
// transaction (storage::register_model).
Result<void> Retrainer::gate_and_register(RunState& run) {
  const TrainingOutcome& trained_run = *run.trained;
  const pipeline::TrainingResult& trained = trained_run.result;
  const bundle::Manifest& manifest = *run.manifest;
  RunOutcome& outcome = run.outcome;
  auto current = storage::champion(run.db);
  if (!current) return current.error();
  // The worker evaluated the champion of the run's start; one promoted since is not compared.
  const bool champion_changed =
      *current && !(run.champion_at_start && run.champion_at_start->version == (*current)->version);
  std::optional<GateChampion> champion;
  if (*current) {
    champion =
        GateChampion{(*current)->version, trained_run.champion_mae, "",
                     trained_run.champion_comparison.lower, trained_run.champion_comparison.cells};
    if (trained_run.champion_scoring == "k-fold") {
      champion->scoring = "k-fold";
      champion->candidate_mae = trained_run.champion_comparison.candidate_mae;
    }
    if (champion_changed) {
      champion->mae = std::nan("");
      champion->why_no_mae = "became champion during the run (promote by hand if wanted)";
    }
    outcome.champion_mae = champion->mae;
  }
  GateCandidate candidate{run.version, trained.chosen_int8.mae,
                          GateFootprint{manifest.footprint.kind, manifest.footprint.flash_bytes,
                                        manifest.footprint.ram_bytes,
                                        manifest.footprint.instructions, manifest.footprint.cycles},
                          trained.gate_evidence.beats_references, trained.gate_evidence.reason};
  const GateDecision decision = gate(candidate, champion, config_.promotion_margin, config_.budget);
  outcome.promoted = decision.promote;
  outcome.gate_reason = decision.reason;

  // The last point where a stop still leaves nothing behind.
  if (cancel_.load()) return make_error(ErrorCode::kCancelled, "training was interrupted");
  Json baselines = Json::object();
  for (const auto& [name, m] : trained.baselines)
    baselines[name] = m.mae;
  const RunProgress& started = run.started;
  const Json lineage = {
      {"run_id", started.run_id},
      {"trigger", started.trigger},
      {"requested_by", started.requested_by},
      {"data_snapshot",
       {{"sha256", run.snapshot.sha256},
        {"cells", run.snapshot.cells},
        {"cycles", run.snapshot.cycles}}},
      {"protocol", trained_run.protocol_name},
      {"pipeline_run_id", manifest.training_run.run_id},
      {"candidate", trained.chosen},
      {"choice_reason", trained.choice_reason},
      {"teacher", {{"params", trained.teacher_params}, {"mae", trained.teacher.mae}}},
      {"stages",
       {{"teacher_mae", trained.teacher.mae},
        {"student_float_mae", trained.chosen_float.mae},
        {"student_int8_mae", trained.chosen_int8.mae}}},
      {"baselines_mae", baselines},
      {"gate_evidence", pipeline::gate_evidence_json(trained.gate_evidence)}};
  Json metrics = metrics_json(trained.chosen_int8);
  metrics["metric"] = "int8 student on the run's test windows";
  metrics["test_cells"] = trained_run.test_cells;
  storage::NewModel model;
  model.version = run.version;
  model.run_id = started.run_id;
  model.lineage_json = lineage.dump();
  model.metrics_json = metrics.dump();
  model.footprint_json = footprint_json(manifest.footprint).dump();
  model.model_dir = run.model_dir.string();
  model.bundle_path = outcome.bundle_path;
  model.bundle_sha256 = outcome.bundle_sha256;
  model.bundle_bytes = outcome.bundle_bytes;
  auto stored = storage::register_model(
      run.db, model, config_.gate_actor,
      "trained by run " + std::to_string(started.run_id) + " (" + started.trigger + ")",
      decision.promote ? storage::AfterRegister::kPromote : storage::AfterRegister::kNotPromoted,
      decision.reason);
  if (!stored) return stored.error();
  run.registered = true;
  outcome.model_version = run.version;
  return {};
}

}  // namespace cyclecast::lifecycle
