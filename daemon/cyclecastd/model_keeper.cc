#include "model_keeper.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "cyclecast/bounded_json.h"
#include "cyclecast/pipeline/simulate.h"
#include "cyclecast/storage/registry.h"
#include "cyclecast/wire/protocol.h"

namespace cyclecast::daemon {
namespace {

using Json = nlohmann::json;
constexpr std::int64_t kHourMs = 3600 * 1000;

// 0 (the default) leaves one hardware thread to ingestion. The training process runs in an
// idle scheduling group of its own, so every core would do too; measured on 2 cores, two
// threads trained 1.6 times as much and met the ingest target, with a worse worst case than one
// (docs/benchmarks.md, "Ingest during a retraining run").
int training_threads(int configured) {
  if (configured > 0) return configured;
  const int hardware = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, hardware - 1);
}

lifecycle::RetrainerConfig retrainer_config(const Config& config) {
  lifecycle::RetrainerConfig rc;
  rc.database_path = config.database_path();
  rc.state_dir = config.state_dir;
  rc.promotion_margin = config.retrain_margin;
  rc.budget.max_flash_bytes = config.retrain_max_flash_bytes;
  rc.budget.max_ram_bytes = config.retrain_max_ram_bytes;
  rc.budget.max_instructions = config.retrain_max_instructions;
  rc.keep_snapshot = config.retrain_keep_snapshot;
  rc.lower_priority = config.retrain_lower_priority;
  rc.measure = config.retrain_measure == "on"    ? lifecycle::RetrainerConfig::Measure::kOn
               : config.retrain_measure == "off" ? lifecycle::RetrainerConfig::Measure::kOff
                                                 : lifecycle::RetrainerConfig::Measure::kAuto;
  rc.protocol_options.input_len = config.retrain_window;
  rc.protocol_options.horizon = config.retrain_horizon;
  rc.protocol_options.train_stride = config.retrain_train_stride;
  pipeline::TrainingOptions& t = rc.training;
  t.teacher = config.retrain_teacher == "dlnet"    ? pipeline::TeacherKind::kDlnet
              : config.retrain_teacher == "liquid" ? pipeline::TeacherKind::kLiquid
                                                   : pipeline::TeacherKind::kAuto;
  t.widths = config.retrain_widths;
  t.features = config.retrain_features;
  t.prune_ratios = config.retrain_prune_ratios;
  t.calibration_windows = config.retrain_calibration_windows;
  t.teacher_budget_s = config.retrain_teacher_budget_s;
  t.teacher_max_epochs = config.retrain_teacher_max_epochs;
  t.student_epochs = config.retrain_student_epochs;
  t.min_student_steps = config.retrain_student_steps;
  t.stage2_epochs = config.retrain_stage2_epochs;
  t.min_stage2_steps = config.retrain_stage2_steps;
  t.threads = training_threads(config.retrain_threads);
  return rc;
}

lifecycle::RetrainPolicy policy_of(const Config& config) {
  lifecycle::RetrainPolicy policy;
  policy.interval_ms = static_cast<std::int64_t>(config.retrain_interval_h) * kHourMs;
  policy.new_cycles = config.retrain_new_cycles;
  policy.min_gap_ms = static_cast<std::int64_t>(config.retrain_min_gap_min) * 60 * 1000;
  policy.min_cycles = config.retrain_min_cycles;
  return policy;
}

// The held-out MAE at +H a registered model was chosen with; NaN when the registry lacks it.
double heldout_mae_h(const storage::ModelRecord& model) {
  const auto metrics = parse_bounded_json(model.metrics_json, model.metrics_json.size());
  if (!metrics || !metrics->is_object() || !metrics->contains("mae_100") ||
      !(*metrics)["mae_100"].is_number()) {
    return std::nan("");
  }
  return (*metrics)["mae_100"].get<double>();
}

// The champion's error at +H over every origin's scored forecasts.
LiveErrorState live_error_of(const std::string& version, const std::vector<storage::LiveError>& all,
                             double heldout, const Config& config) {
  LiveErrorState state;
  state.model_version = version;
  state.heldout_mae = heldout;
  state.threshold = config.alert_live_error_factor * heldout;
  double sum = 0.0;
  for (const auto& e : all) {
    if (e.model_version != version || e.scored_h == 0 || std::isnan(e.mae_h)) continue;
    state.scored += e.scored_h;
    sum += e.mae_h * static_cast<double>(e.scored_h);
  }
  state.live_mae = state.scored > 0 ? sum / static_cast<double>(state.scored) : std::nan("");
  state.alert = state.scored >= config.alert_min_scored && state.live_mae > state.threshold;
  return state;
}

lifecycle::PageHinkleyOptions drift_options(const Config& config) {
  lifecycle::PageHinkleyOptions o;
  o.delta = config.alert_drift_delta;
  o.threshold = config.alert_drift_threshold;
  o.min_samples = config.alert_drift_min_samples;
  return o;
}

bool drift_monitored(const Config& config) {
  return config.alert_drift_threshold > 0.0;
}

// The registry event's sentence (docs/lifecycle.md, "Drift"): what crossed, where, and what
// followed.
std::string drift_event_reason(const DriftState& s, std::int64_t after_cycles) {
  std::string reason = fmt::format(
      "live errors drifted up: Page-Hinkley statistic {:.1f} over {:.1f} after {} forecasts "
      "(mean |error at +H| {:.2f} x held-out {:.5f}); crossed in SOH band {} on cell {} at cycle "
      "{}",
      s.statistic, s.threshold, s.samples, s.mean_ratio, s.heldout_mae, s.detected_band,
      s.detected_cell, s.detected_cycle);
  if (s.retrain_run > 0) {
    reason += "; retraining run " + std::to_string(s.retrain_run) + " started";
  } else if (s.retrain_pending) {
    reason += "; a retraining run starts once " + std::to_string(after_cycles) +
              " more cycles are stored";
  } else {
    reason += "; no retraining run started";
  }
  return reason;
}

// What the monitor measured, as the registry event's detail and the alert payload both say it.
Json drift_measurements(const DriftState& s) {
  return Json{{"statistic", s.statistic},
              {"threshold", s.threshold},
              {"samples", s.samples},
              {"mean_error_ratio", s.mean_ratio},
              {"heldout_mae_100", s.heldout_mae},
              {"cell", s.detected_cell},
              {"cycle", s.detected_cycle},
              {"band", s.detected_band}};
}

std::string drift_detail(const DriftState& s) {
  Json detail = drift_measurements(s);
  detail["retrain_run"] = s.retrain_run > 0 ? Json(s.retrain_run) : Json(nullptr);
  detail["retrain_pending"] = s.retrain_pending;
  return detail.dump();
}

std::string drift_payload(const DriftState& s, std::int64_t now_ms) {
  Json payload = drift_measurements(s);
  payload["kind"] = "drift";
  payload["state"] = "raised";
  payload["model_version"] = s.model_version;
  payload["at"] = pipeline::format_utc_iso8601(now_ms);
  return payload.dump();
}

std::string alert_payload(const LiveErrorState& s, bool raised, std::int64_t now_ms) {
  return Json{{"kind", "live_error"},
              {"state", raised ? "raised" : "cleared"},
              {"model_version", s.model_version},
              {"live_mae_100", s.live_mae},
              {"heldout_mae_100", s.heldout_mae},
              {"threshold", s.threshold},
              {"scored", s.scored},
              {"at", pipeline::format_utc_iso8601(now_ms)}}
      .dump();
}

}  // namespace

std::string champion_announcement(const storage::ModelRecord& model, const std::string& api_base,
                                  std::int64_t now_ms) {
  const std::string path = "/api/v1/models/" + model.version + "/bundle";
  auto parsed = parse_bounded_json(model.metrics_json, model.metrics_json.size());
  const Json metrics = parsed && parsed->is_object() ? std::move(*parsed) : Json::object();
  return Json{{"version", model.version},
              {"sha256", model.bundle_sha256},
              {"bytes", model.bundle_bytes},
              {"path", path},
              {"url", api_base.empty() ? Json(nullptr) : Json(api_base + path)},
              {"metrics", metrics},
              {"announced_at", pipeline::format_utc_iso8601(now_ms)}}
      .dump();
}

Result<std::unique_ptr<ModelKeeper>> ModelKeeper::create(boost::asio::io_context& loop,
                                                         const Config& config,
                                                         ModelKeeperHooks hooks) {
  auto db = storage::Database::open(config.database_path());
  if (!db) return db.error();
  std::unique_ptr<ModelKeeper> keeper(
      new ModelKeeper(loop, config, std::move(hooks), std::move(*db)));
  auto retrainer = lifecycle::Retrainer::create(
      retrainer_config(config),
      [raw = keeper.get()](const lifecycle::RunOutcome& outcome) { raw->run_ended(outcome); });
  if (!retrainer) return retrainer.error();
  keeper->retrainer_ = std::move(*retrainer);
  return keeper;
}

ModelKeeper::ModelKeeper(boost::asio::io_context& loop, const Config& config,
                         ModelKeeperHooks hooks, storage::Database db)
    : loop_(loop), hooks_(std::move(hooks)), timer_(loop), db_(std::move(db)), config_(config) {}

ModelKeeper::~ModelKeeper() {
  stop();
}

void ModelKeeper::set_api_base(std::string base) {
  std::lock_guard lock(mutex_);
  api_base_ = std::move(base);
}

void ModelKeeper::start() {
  boost::asio::post(monitor_, [this] { check(); });
  schedule_check();
}

void ModelKeeper::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  timer_.cancel();
  if (retrainer_) retrainer_->stop();
  monitor_.stop();
  monitor_.join();
}

void ModelKeeper::reload(const Config& config) {
  std::lock_guard lock(mutex_);
  const bool drift_changed = config.alert_drift_threshold != config_.alert_drift_threshold ||
                             config.alert_drift_delta != config_.alert_drift_delta ||
                             config.alert_drift_min_samples != config_.alert_drift_min_samples;
  config_ = config;
  if (!drift_changed || !status_.drift) return;
  // New parameters: the monitor starts over (a detection under the old ones stays latched).
  if (status_.drift->detected) return;
  drift_ = lifecycle::BandedDrift(drift_options(config_));
  DriftState fresh;
  fresh.model_version = status_.drift->model_version;
  fresh.heldout_mae = status_.drift->heldout_mae;
  fresh.threshold = config_.alert_drift_threshold;
  status_.drift = fresh;
}

void ModelKeeper::schedule_check() {
  int seconds = 0;
  {
    std::lock_guard lock(mutex_);
    seconds = config_.retrain_check_s;
  }
  timer_.expires_after(std::chrono::seconds(seconds));
  timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    // A check still running (a slow query) is not queued twice.
    if (!check_queued_.exchange(true)) {
      boost::asio::post(monitor_, [this] {
        check();
        check_queued_ = false;
      });
    }
    schedule_check();
  });
}

Result<std::int64_t> ModelKeeper::retrain(const std::string& trigger, const std::string& who) {
  auto run = retrainer_->start(trigger, who);
  if (!run) return run;
  spdlog::info("retraining run {} started (trigger {}, requested by {})", *run, trigger, who);
  std::lock_guard lock(mutex_);
  ++status_.runs_started;
  return run;
}

void ModelKeeper::champion_changed() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
  }
  boost::asio::post(monitor_, [this] { refresh_champion(); });
}

void ModelKeeper::observe_scored(const std::vector<storage::ScoredForecast>& scored) {
  std::optional<DriftState> detected;
  {
    std::lock_guard lock(mutex_);
    if (stopped_ || !status_.drift || !drift_monitored(config_)) return;
    DriftState& state = *status_.drift;
    if (state.detected) return;  // latched until the next champion
    for (const storage::ScoredForecast& s : scored) {
      // Host forecasts only: an edge node runs the same model on the same cycles, so its errors
      // would count the same forecast twice.
      if (s.model_version != state.model_version || s.origin != "host") continue;
      const bool raised = drift_.add(std::abs(s.error_h) / state.heldout_mae, s.origin_soh);
      state.peak_statistic = std::max(state.peak_statistic, drift_.statistic());
      if (!raised) continue;
      state.detected = true;
      state.detected_at_ms = storage::now_ms();
      state.detected_cell = s.cell_id;
      state.detected_cycle = s.target_cycle;
      state.detected_samples = drift_.samples();
      state.detected_band = drift_.drifted_band();
      break;
    }
    state.samples = drift_.samples();
    state.mean_ratio = drift_.mean();
    state.statistic = drift_.statistic();
    if (state.detected) {
      ++status_.drifts_detected;
      detected = state;
    }
  }
  if (detected) {
    boost::asio::post(monitor_, [this, state = std::move(*detected)] { drift_detected(state); });
  }
}

void ModelKeeper::drift_detected(DriftState state) {
  Config config;
  {
    std::lock_guard lock(mutex_);
    config = config_;
  }
  const std::int64_t now = storage::now_ms();
  spdlog::warn(
      "DRIFT: live errors of champion {} rose: Page-Hinkley statistic {:.1f} over {:.1f} after "
      "{} forecasts (mean |error at +H| {:.2f} x held-out {:.5f}); crossed in SOH band {} on cell "
      "{} at cycle {}",
      state.model_version, state.statistic, state.threshold, state.samples, state.mean_ratio,
      state.heldout_mae, state.detected_band, state.detected_cell, state.detected_cycle);
  boost::asio::post(loop_, [this, payload = drift_payload(state, now)] {
    hooks_.publish(protocol::alerts_topic(), payload, /*retain=*/false);
  });
  if (config.alert_drift_retrain && config.alert_drift_retrain_after_cycles > 0) {
    // A model trained on the data of now knows nothing of the new regime yet: wait for cycles.
    auto stored = lifecycle::retrain_state(db_, now);
    if (stored) {
      state.retrain_pending = true;
      state.cycles_at_detection = stored->cycles_stored;
      std::lock_guard lock(mutex_);
      if (status_.drift && status_.drift->model_version == state.model_version) {
        status_.drift->retrain_pending = true;
        status_.drift->cycles_at_detection = stored->cycles_stored;
      }
    } else {
      spdlog::warn("drift: retrain not scheduled: {}", stored.error().message);
    }
  } else if (config.alert_drift_retrain) {
    state.retrain_run = start_drift_run(now, config, state.model_version);
  }
  // The registry's audit trail of the model (model_events), next to its promotion.
  auto recorded = storage::record_drift_detected(
      db_, state.model_version, "drift monitor",
      drift_event_reason(state, config.alert_drift_retrain_after_cycles), drift_detail(state));
  if (!recorded) {
    spdlog::error("drift of {}: the registry event was not recorded: {}", state.model_version,
                  recorded.error().message);
  }
}

std::int64_t ModelKeeper::start_drift_run(std::int64_t now_ms, const Config& config,
                                          const std::string& version) {
  if (!outside_min_gap(now_ms, config, "drift")) return 0;
  auto run = retrain("drift", "scheduler");
  if (!run) {
    spdlog::warn("drift: retrain not started: {}", run.error().message);
    return 0;
  }
  std::lock_guard lock(mutex_);
  if (status_.drift && status_.drift->model_version == version) {
    status_.drift->retrain_run = *run;
    status_.drift->retrain_pending = false;
  }
  return *run;
}

void ModelKeeper::start_pending_drift_run(std::int64_t now_ms) {
  Config config;
  std::optional<DriftState> drift;
  {
    std::lock_guard lock(mutex_);
    config = config_;
    drift = status_.drift;
  }
  if (!drift || !drift->retrain_pending || !config.alert_drift_retrain) return;
  auto stored = lifecycle::retrain_state(db_, now_ms);
  if (!stored) {
    spdlog::warn("drift: {}", stored.error().message);
    return;
  }
  const std::int64_t arrived = stored->cycles_stored - drift->cycles_at_detection;
  if (arrived < config.alert_drift_retrain_after_cycles) return;
  spdlog::info("drift: {} cycles stored since the detection; starting the retraining run", arrived);
  start_drift_run(now_ms, config, drift->model_version);
}

bool ModelKeeper::outside_min_gap(std::int64_t now_ms, const Config& config,
                                  const std::string& why) {
  auto state = lifecycle::retrain_state(db_, now_ms);
  const std::int64_t min_gap_ms = static_cast<std::int64_t>(config.retrain_min_gap_min) * 60000;
  if (state && state->last_run_started_ms && now_ms - *state->last_run_started_ms < min_gap_ms) {
    spdlog::info("{}: no retrain, the last run started under {} min ago", why,
                 config.retrain_min_gap_min);
    return false;
  }
  return true;
}

KeeperStatus ModelKeeper::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

void ModelKeeper::check() {
  const std::int64_t now = storage::now_ms();
  refresh_champion();
  consider_retraining(now);
  watch_live_error(now);
  start_pending_drift_run(now);
}

void ModelKeeper::refresh_champion() {
  auto current = storage::champion(db_);
  if (!current) {
    spdlog::error("model registry: {}", current.error().message);
    return;
  }
  if (!*current || (*current)->version == announced_) return;
  const storage::ModelRecord& model = **current;
  announced_ = model.version;  // tried once per change, not on every check
  const auto file = std::filesystem::path(model.model_dir) / "model.bin";
  auto loaded = edge::load_node_model_file(file.string());
  if (!loaded) {
    spdlog::error("champion {}: {} cannot be loaded ({}); forecasting stays as it was",
                  model.version, file.string(), loaded.error().message);
    std::lock_guard lock(mutex_);
    status_.champion_error =
        "champion " + model.version + " cannot be loaded: " + loaded.error().message;
    return;
  }
  std::string api_base;
  const double heldout = heldout_mae_h(model);
  {
    std::lock_guard lock(mutex_);
    status_.champion = model.version;
    status_.champion_error.clear();
    status_.live_error.reset();
    // A new champion starts a new drift monitor: its errors are its own.
    status_.drift.reset();
    drift_ = lifecycle::BandedDrift(drift_options(config_));
    if (heldout > 0.0 && drift_monitored(config_)) {
      DriftState drift;
      drift.model_version = model.version;
      drift.heldout_mae = heldout;
      drift.threshold = config_.alert_drift_threshold;
      status_.drift = drift;
    } else if (drift_monitored(config_)) {
      spdlog::warn("champion {}: no held-out MAE at +H in its metrics; its drift is not watched",
                   model.version);
    }
    api_base = api_base_;
  }
  std::shared_ptr<const edge::LoadedNodeModel> shared = std::move(*loaded);
  std::string announcement = champion_announcement(model, api_base, storage::now_ms());
  spdlog::info("champion {}: bundle {} ({} bytes, sha256 {})", model.version, model.bundle_path,
               model.bundle_bytes, model.bundle_sha256);
  boost::asio::post(
      loop_, [this, shared, version = model.version, announcement = std::move(announcement)] {
        hooks_.use_model(shared, version);
        hooks_.publish(protocol::champion_topic(), announcement, /*retain=*/true);
      });
}

void ModelKeeper::consider_retraining(std::int64_t now_ms) {
  lifecycle::RetrainPolicy policy;
  {
    std::lock_guard lock(mutex_);
    policy = policy_of(config_);
  }
  if (policy.interval_ms == 0 && policy.new_cycles == 0) return;
  auto state = lifecycle::retrain_state(db_, now_ms);
  if (!state) {
    spdlog::warn("retrain policy: {}", state.error().message);
    return;
  }
  state->run_in_progress = retrainer_->running();
  const auto decision = lifecycle::should_retrain(policy, *state);
  {
    std::lock_guard lock(mutex_);
    status_.last_decision = decision.reason;
  }
  if (!decision.retrain) return;
  spdlog::info("retrain: {}", decision.reason);
  if (auto run = retrain(decision.trigger, "scheduler"); !run) {
    spdlog::warn("retrain: not started: {}", run.error().message);
  }
}

void ModelKeeper::watch_live_error(std::int64_t now_ms) {
  Config config;
  std::optional<LiveErrorState> previous;
  std::string champion;
  {
    std::lock_guard lock(mutex_);
    config = config_;
    previous = status_.live_error;
    champion = status_.champion;
  }
  if (champion.empty()) return;
  auto model = storage::get_model(db_, champion);
  auto errors = db_.live_errors();
  if (!model || !errors) {
    spdlog::warn("live error: {}", !model ? model.error().message : errors.error().message);
    return;
  }
  const double heldout = heldout_mae_h(*model);
  if (!(heldout > 0.0)) return;  // nothing to compare against
  const LiveErrorState now = live_error_of(champion, *errors, heldout, config);
  const bool was_raised = previous && previous->alert && previous->model_version == champion;
  {
    std::lock_guard lock(mutex_);
    if (status_.champion != champion) return;  // a promotion happened meanwhile
    status_.live_error = now;
    if (now.alert && !was_raised) ++status_.alerts_raised;
  }
  if (now.alert == was_raised) return;
  boost::asio::post(loop_, [this, payload = alert_payload(now, now.alert, now_ms)] {
    hooks_.publish(protocol::alerts_topic(), payload, /*retain=*/false);
  });
  if (!now.alert) {
    spdlog::info("live error of champion {} back under its threshold: {:.4f} <= {:.4f}", champion,
                 now.live_mae, now.threshold);
    return;
  }
  spdlog::warn(
      "ALERT: live error of champion {} at +H is {:.4f} over {} forecasts, above {:.1f} x its "
      "held-out {:.4f}",
      champion, now.live_mae, now.scored, config.alert_live_error_factor, now.heldout_mae);
  if (!config.alert_retrain) return;
  if (!outside_min_gap(now_ms, config, "live error")) return;
  if (auto run = retrain("live_error", "scheduler"); !run) {
    spdlog::warn("live error: retrain not started: {}", run.error().message);
  }
}

void ModelKeeper::run_ended(const lifecycle::RunOutcome& outcome) {
  {
    std::lock_guard lock(mutex_);
    ++(outcome.succeeded ? status_.runs_succeeded : status_.runs_failed);
    if (outcome.promoted) ++status_.promotions;
  }
  if (!outcome.succeeded) {
    spdlog::error("retraining run {} failed: {}", outcome.run_id, outcome.error);
    return;
  }
  spdlog::info("retraining run {}: model {} {}: {}", outcome.run_id, outcome.model_version,
               outcome.promoted ? "promoted" : "not promoted", outcome.gate_reason);
  if (outcome.promoted) champion_changed();
}

}  // namespace cyclecast::daemon
