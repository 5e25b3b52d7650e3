#include "forecaster.h"

#include <algorithm>

namespace cyclecast::daemon {
namespace {

constexpr const char* kHostOrigin = "host";

node::WindowCycle window_cycle(const storage::CycleRecord& r, double rated_capacity_ah) {
  return {r.discharge_capacity_ah / rated_capacity_ah, r.internal_resistance_ohm,
          r.temperature_avg_c, r.charge_time_min};
}

}  // namespace

Result<std::unique_ptr<Forecaster>> Forecaster::start(ForecasterOptions options,
                                                      OnForecasts on_forecasts) {
  storage::OpenOptions open;
  open.create_if_missing = false;
  // Forecasts can be made again: after a power loss the forecaster resumes after the last one
  // that reached the disk, so it need not pay for FULL synchronous commits.
  open.synchronous_full = false;
  auto db = storage::Database::open(options.database, open);
  if (!db) return db.error();
  std::unique_ptr<Forecaster> forecaster(
      new Forecaster(std::move(*db), std::move(options), std::move(on_forecasts)));
  forecaster->thread_ = std::thread([f = forecaster.get()] { f->run(); });
  return forecaster;
}

Forecaster::Forecaster(storage::Database db, ForecasterOptions options, OnForecasts on_forecasts)
    : db_(std::move(db)), options_(std::move(options)), on_forecasts_(std::move(on_forecasts)) {}

Forecaster::~Forecaster() {
  stop();
}

Result<void> Forecaster::set_model(std::shared_ptr<const node::LoadedNodeModel> model) {
  std::unique_ptr<node::WindowForecaster> next;
  if (model) {
    auto created = node::WindowForecaster::create(std::move(model));
    if (!created) return created.error();
    next = std::move(*created);
  }
  std::lock_guard lock(mutex_);
  stats_.model_version = next ? next->version() : "";
  next_forecaster_ = std::move(next);
  model_changed_ = true;
  return {};
}

void Forecaster::notify(const std::unordered_map<std::string, std::int64_t>& newest_cycles) {
  if (newest_cycles.empty()) return;
  std::lock_guard lock(mutex_);
  for (const auto& [cell, cycle] : newest_cycles) {
    std::int64_t& pending = pending_[cell];
    pending = std::max(pending, cycle);
  }
  stats_.cells_pending = pending_.size();
  wake_.notify_one();
}

void Forecaster::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

ForecasterStats Forecaster::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Forecaster::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    if (model_changed_) {
      forecaster_ = std::move(next_forecaster_);
      model_changed_ = false;
    }
    auto pending = std::move(pending_);
    pending_.clear();
    lock.unlock();
    pass(std::move(pending));
    lock.lock();
    stats_.cells_pending = pending_.size();
    // Let records accumulate, so that a pass covers many commits.
    wake_.wait_for(lock, options_.pass_interval, [this] { return stopping_; });
  }
}

void Forecaster::pass(std::unordered_map<std::string, std::int64_t> pending) {
  std::vector<storage::ForecastRecord> made;
  std::vector<std::string> cells;
  std::unordered_map<std::string, std::int64_t> later;
  std::string error;
  for (const auto& [cell, newest] : pending) {
    cells.push_back(cell);
    if (!forecaster_) continue;
    auto done = forecast_cell(cell, newest, made);
    if (!done) {
      error = done.error().message;
      break;
    }
    if (!*done) later[cell] = newest;
  }
  std::uint64_t stored = 0, scored = 0;
  if (error.empty() && !made.empty()) {
    auto written = db_.write_forecasts(made);
    if (written)
      stored = written->stored;
    else
      error = written.error().message;
  }
  if (error.empty()) {
    auto set = db_.score_forecasts(cells);
    if (set)
      scored = *set;
    else
      error = set.error().message;
  }
  if (!error.empty()) {
    // Nothing is lost: the cells are tried again on the next pass, from their last stored
    // forecast (read again from the database).
    last_forecast_cycle_.clear();
    later = std::move(pending);
  }
  {
    std::lock_guard lock(mutex_);
    for (const auto& [cell, newest] : later) {
      std::int64_t& p = pending_[cell];
      p = std::max(p, newest);
    }
    stats_.forecasts += stored;
    stats_.errors_scored += scored;
    if (!error.empty()) {
      ++stats_.failures;
      stats_.last_error = error;
    }
  }
  if (!error.empty() || made.empty() || !on_forecasts_) return;
  // The newest forecast of each cell: `made` holds each cell's forecasts in cycle order.
  std::unordered_map<std::string, std::size_t> newest_of;
  for (std::size_t i = 0; i < made.size(); ++i)
    newest_of[made[i].cell_id] = i;
  std::vector<storage::ForecastRecord> newest;
  newest.reserve(newest_of.size());
  for (const auto& [cell, index] : newest_of)
    newest.push_back(std::move(made[index]));
  on_forecasts_(std::move(newest));
}

Result<bool> Forecaster::forecast_cell(const std::string& cell_id, std::int64_t newest,
                                       std::vector<storage::ForecastRecord>& out) {
  auto known = last_forecast_cycle_.find(cell_id);
  if (known == last_forecast_cycle_.end()) {
    auto last = db_.last_forecast_cycle(cell_id, kHostOrigin);
    if (!last) return last.error();
    // Never forecast: start at the newest cycle rather than back-filling the cell's history.
    known = last_forecast_cycle_.emplace(cell_id, *last > 0 ? *last : newest - 1).first;
  }
  const std::int64_t from = known->second + 1;
  if (from > newest) return true;
  if (out.size() >= options_.max_forecasts_per_pass) return false;
  // A long catch-up is spread over passes.
  const auto room = static_cast<std::int64_t>(options_.max_forecasts_per_pass - out.size());
  const std::int64_t to = std::min(newest, from + room - 1);
  auto cell = db_.find_cell(cell_id);
  if (!cell) return cell.error();
  if (!*cell) return true;  // not registered: nothing was stored for it
  const std::int64_t w = forecaster_->input_len();
  auto cycles = db_.recent_cycles(cell_id, to, w + (to - from) + 1);
  if (!cycles) return cycles.error();
  std::vector<node::WindowCycle> window;
  std::uint64_t lacking = 0;
  for (std::size_t i = 0; i < cycles->size(); ++i) {
    const storage::CycleRecord& r = (*cycles)[i];
    window.push_back(window_cycle(r, (*cell)->rated_capacity_ah));
    if (std::ssize(window) > w) window.erase(window.begin());
    if (r.cycle < from) continue;
    if (std::ssize(window) < w) {
      ++lacking;
      continue;
    }
    auto soh = forecaster_->forecast(window);
    if (!soh) return soh.error();
    out.push_back({cell_id, r.cycle, forecaster_->version(), kHostOrigin, std::move(*soh), 0});
  }
  known->second = to;
  if (lacking > 0) {
    std::lock_guard lock(mutex_);
    stats_.lacking_history += lacking;
  }
  return to == newest;
}

}  // namespace cyclecast::daemon
