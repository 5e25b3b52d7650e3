#include "forecaster.h"

#include <algorithm>
#include <utility>

#include "plausibility.h"

namespace cyclecast::daemon {
namespace {

constexpr const char* kHostOrigin = "host";

edge::WindowCycle window_cycle(const storage::CycleRecord& r, double rated_capacity_ah) {
  return {r.discharge_capacity_ah / rated_capacity_ah, r.internal_resistance_ohm,
          r.temperature_avg_c, r.charge_time_min};
}

}  // namespace

Result<std::unique_ptr<Forecaster>> Forecaster::start(ForecasterOptions options,
                                                      OnForecasts on_forecasts,
                                                      OnScored on_scored) {
  storage::OpenOptions open;
  open.create_if_missing = false;
  // Forecasts can be made again: after a power loss the forecaster resumes after the last one
  // that reached the disk, so it need not pay for FULL synchronous commits.
  open.synchronous_full = false;
  open.max_size_bytes = options.max_size_bytes;
  auto db = storage::Database::open(options.database, open);
  if (!db) return db.error();
  std::unique_ptr<Forecaster> forecaster(new Forecaster(
      std::move(*db), std::move(options), std::move(on_forecasts), std::move(on_scored)));
  forecaster->thread_ = std::thread([f = forecaster.get()] { f->run(); });
  return forecaster;
}

Forecaster::Forecaster(storage::Database db, ForecasterOptions options, OnForecasts on_forecasts,
                       OnScored on_scored)
    : db_(std::move(db)),
      options_(std::move(options)),
      on_forecasts_(std::move(on_forecasts)),
      on_scored_(std::move(on_scored)) {}

Forecaster::~Forecaster() {
  stop();
}

Result<void> Forecaster::set_model(std::shared_ptr<const edge::LoadedNodeModel> model) {
  std::unique_ptr<edge::WindowForecaster> next;
  if (model) {
    auto created = edge::WindowForecaster::create(std::move(model));
    if (!created) return created.error();
    next = std::move(*created);
  }
  std::lock_guard lock(mutex_);
  stats_.model_version = next ? next->version() : "";
  next_forecaster_ = std::move(next);
  model_changed_ = true;
  wake_.notify_one();
  return {};
}

namespace {

void merge(NewCycles& into, const std::string& cell, CycleSpan span) {
  CycleSpan& pending = into[cell];
  if (span.oldest > 0) {
    pending.oldest = pending.oldest > 0 ? std::min(pending.oldest, span.oldest) : span.oldest;
  }
  pending.newest = std::max(pending.newest, span.newest);
}

}  // namespace

void Forecaster::notify(const NewCycles& cycles) {
  if (cycles.empty()) return;
  std::lock_guard lock(mutex_);
  for (const auto& [cell, span] : cycles)
    merge(pending_, cell, span);
  stats_.cells_pending = pending_.size();
  wake_.notify_one();
}

void Forecaster::set_max_size(std::int64_t bytes) {
  std::lock_guard lock(mutex_);
  new_max_size_ = bytes;
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
    wake_.wait(lock, [this] { return stopping_ || model_changed_ || !pending_.empty(); });
    if (stopping_) return;
    bool model_arrived = false;
    if (model_changed_) {
      forecaster_ = std::move(next_forecaster_);
      model_changed_ = false;
      model_arrived = forecaster_ != nullptr;
    }
    if (new_max_size_) {
      // A limit that cannot be set leaves the old one; the pass reports what it meets.
      (void)db_.set_max_size(*std::exchange(new_max_size_, std::nullopt));
    }
    auto pending = std::move(pending_);
    pending_.clear();
    lock.unlock();
    if (model_arrived) queue_unforecast_cells(pending);
    pass(std::move(pending));
    lock.lock();
    stats_.cells_pending = pending_.size();
    // Let records accumulate, so that a pass covers many commits.
    wake_.wait_for(lock, options_.pass_interval, [this] { return stopping_; });
  }
}

void Forecaster::queue_unforecast_cells(NewCycles& pending) {
  auto cells = db_.cells();
  if (!cells) {
    std::lock_guard lock(mutex_);
    ++stats_.failures;
    stats_.last_error = cells.error().message;
    return;
  }
  // Each cell from its oldest cycle without a forecast (late ones left by a crash or by a pass
  // without a model); forecast_cell resumes after the last forecast anyway.
  for (const auto& cell : *cells) {
    if (cell.cycles == 0) continue;
    auto oldest = db_.oldest_unforecast_cycle(cell.info.cell_id, kHostOrigin);
    if (!oldest) {
      std::lock_guard lock(mutex_);
      ++stats_.failures;
      stats_.last_error = oldest.error().message;
      return;
    }
    merge(pending, cell.info.cell_id, {*oldest, cell.last_cycle});
  }
}

void Forecaster::pass(NewCycles pending) {
  std::vector<storage::ForecastRecord> made;
  std::vector<std::string> cells;
  NewCycles later;
  std::string error;
  for (auto& [cell, span] : pending) {
    cells.push_back(cell);
    if (!forecaster_ || span.newest <= 0) continue;
    auto done = forecast_cell(cell, span, made);
    if (!done) {
      error = done.error().message;
      break;
    }
    if (*done) continue;
    later[cell] = span;
  }
  std::uint64_t stored = 0, scored = 0;
  std::vector<storage::ScoredForecast> scored_h;
  if (error.empty() && !made.empty()) {
    auto written = db_.write_forecasts(made);
    if (written)
      stored = written->stored;
    else
      error = written.error().message;
  }
  if (error.empty()) {
    auto set = db_.score_forecasts(cells, on_scored_ ? &scored_h : nullptr);
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
    for (const auto& [cell, span] : later)
      merge(pending_, cell, span);
    stats_.forecasts += stored;
    stats_.errors_scored += scored;
    if (!error.empty()) ++stats_.failures;
    // The health report shows the condition while it lasts, not after the passes succeed again.
    stats_.last_error = error;
  }
  if (!scored_h.empty()) on_scored_(std::move(scored_h));
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

Result<bool> Forecaster::forecast_cell(const std::string& cell_id, CycleSpan& span,
                                       std::vector<storage::ForecastRecord>& out) {
  auto known = last_forecast_cycle_.find(cell_id);
  bool back_fill = true;
  if (known == last_forecast_cycle_.end()) {
    auto last = db_.last_forecast_cycle(cell_id, kHostOrigin);
    if (!last) return last.error();
    // Never forecast: start at the newest cycle rather than back-filling the cell's history.
    back_fill = *last > 0;
    known = last_forecast_cycle_.emplace(cell_id, back_fill ? *last : span.newest - 1).first;
  }
  std::int64_t from = known->second + 1;
  std::int64_t newest = span.newest;
  // Cycles stored after newer ones of their cell: forecast from the oldest of them through the
  // last forecast, so that no cycle in between is left without one. Those already forecast are
  // made again and skipped by write_forecasts.
  if (back_fill && span.oldest > 0 && span.oldest < from) {
    from = span.oldest;
    newest = std::max(newest, known->second);
  }
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
  const double eol_soh = eol_soh_of(**cell);
  std::vector<edge::WindowCycle> window;
  std::vector<double> recent_soh;  // the window's last kEolMedianCycles SOH values
  std::uint64_t lacking = 0, past_eol = 0, implausible = 0;
  std::string last_implausible;
  for (std::size_t i = 0; i < cycles->size(); ++i) {
    const storage::CycleRecord& r = (*cycles)[i];
    window.push_back(window_cycle(r, (*cell)->rated_capacity_ah));
    if (std::ssize(window) > w) window.erase(window.begin());
    if (r.cycle < from) continue;
    if (std::ssize(window) < w) {
      ++lacking;
      continue;
    }
    // Past end of life there is nothing left to forecast: a model extrapolating the fade would
    // only walk the cell toward zero.
    recent_soh.clear();
    for (std::size_t k = window.size() - std::min(window.size(), kEolMedianCycles);
         k < window.size(); ++k)
      recent_soh.push_back(window[k].soh);
    if (end_of_life(recent_soh, eol_soh).past) {
      ++past_eol;
      continue;
    }
    // With the interval when the champion carries a table (none otherwise): the bounds may
    // leave [0, 1.2] where the forecast does not; they are what the table says, not refused.
    auto made = forecaster_->forecast_with_interval(window);
    if (!made) return made.error();
    if (auto why = implausible_host_forecast(made->soh); !why.empty()) {
      ++implausible;
      last_implausible = "cell " + cell_id + " at cycle " + std::to_string(r.cycle) + ": " + why;
      continue;
    }
    storage::ForecastRecord record{
        cell_id, r.cycle, forecaster_->version(), kHostOrigin, std::move(made->soh), 0};
    record.lower = std::move(made->lower);
    record.upper = std::move(made->upper);
    out.push_back(std::move(record));
  }
  known->second = std::max(known->second, to);
  span.oldest = to + 1;  // where the next pass goes on when this one's budget is spent
  if (lacking > 0 || past_eol > 0 || implausible > 0) {
    std::lock_guard lock(mutex_);
    stats_.lacking_history += lacking;
    stats_.past_end_of_life += past_eol;
    stats_.implausible += implausible;
    if (!last_implausible.empty()) stats_.last_implausible = std::move(last_implausible);
  }
  return to == newest;
}

}  // namespace cyclecast::daemon
