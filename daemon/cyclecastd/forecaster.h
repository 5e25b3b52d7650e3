// The stream forecaster: a thread of its own with its own database connection. After each commit
// the loop tells it which cells got new cycles; in passes (at most one per pass_interval, so that
// it takes SQLite's write lock a few times a second, not once per record) it forecasts every new
// cycle of those cells with the champion model, through the node's own code
// (edge::WindowForecaster), stores the forecasts (origin "host") in one transaction, scores those
// cells' earlier forecasts (host and edge) against the cycles that arrived, and hands each cell's
// newest forecast back for publishing.
//
// A cell it has never forecast starts at its newest cycle, so that history imported before a model
// existed is not back-filled; afterwards every stored cycle gets a forecast, including those stored
// while the daemon was down (when a model is set, every cell resumes after its last host
// forecast) and those stored late, after newer cycles of their cell (a rig's resend: they are
// forecast when they arrive). A cycle with fewer than W cycles up to it is counted as lacking
// history, not forecast.
//
// Plausibility (docs/reliability.md, "Plausible forecasts"): a cycle whose cell is past its end of
// life (median of its last 5 SOH values under the threshold) is not forecast, and a forecast with
// a step outside the physical SOH range [0, 1.2] is refused; both are counted, neither stored.
// The +H errors a pass sets go to `on_scored`, the champion's drift monitor's stream.
// Prediction intervals (docs/pipeline.md, "Prediction intervals"): when the champion's blob carries
// an interval table every forecast is stored and published with its lower and upper bounds, the
// node's int8 output -/+ the table's half-widths; a model without one forecasts without bounds.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cycle_span.h"
#include "cyclecast/edge/virtual_node.h"
#include "cyclecast/edge/window_forecaster.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::daemon {

struct ForecasterOptions {
  std::filesystem::path database;
  std::chrono::milliseconds pass_interval{200};
  // Forecasts per pass at most; a cell beyond it waits for the next pass (a long catch-up after a
  // restart does not hold the write lock for seconds).
  std::size_t max_forecasts_per_pass = 20000;
  std::int64_t max_size_bytes = 0;  // the database's size limit (storage.max_size_mb); 0: none
};

struct ForecasterStats {
  std::uint64_t forecasts = 0;         // stored
  std::uint64_t lacking_history = 0;   // cycles with fewer than W cycles up to them
  std::uint64_t errors_scored = 0;     // forecast errors set (at +10 or +H)
  std::uint64_t failures = 0;          // passes that failed (database errors)
  std::uint64_t implausible = 0;       // forecasts refused: a step outside [0, 1.2]
  std::uint64_t past_end_of_life = 0;  // cycles not forecast: the cell is past end of life
  std::string last_implausible;        // why the last refused forecast was refused
  std::size_t cells_pending = 0;       // cells waiting for the next pass
  std::string model_version;           // empty: no champion, nothing is forecast
  std::string last_error;
};

class Forecaster {
 public:
  // Called on the forecaster thread after each pass with the newest forecast of every cell it
  // forecast in that pass.
  using OnForecasts = std::function<void(std::vector<storage::ForecastRecord>)>;
  // Called on the forecaster thread after a pass that set +H errors (any model, any origin).
  using OnScored = std::function<void(std::vector<storage::ScoredForecast>)>;

  // Opens its own connection (the database must exist) and starts the thread.
  static Result<std::unique_ptr<Forecaster>> start(ForecasterOptions options,
                                                   OnForecasts on_forecasts,
                                                   OnScored on_scored = {});
  ~Forecaster();
  Forecaster(const Forecaster&) = delete;
  Forecaster& operator=(const Forecaster&) = delete;

  // The champion to forecast with from the next pass on; nullptr: none (cells are still scored).
  // kInvalidArgument when the node program refuses the model.
  Result<void> set_model(std::shared_ptr<const edge::LoadedNodeModel> model);
  // Cells with new cycles; thread-safe, returns at once.
  void notify(const NewCycles& cycles);
  // A new database size limit, applied before the next pass; 0: none.
  void set_max_size(std::int64_t bytes);
  // Finishes the pass in progress and stops. Idempotent.
  void stop();
  ForecasterStats stats() const;

 private:
  Forecaster(storage::Database db, ForecasterOptions options, OnForecasts on_forecasts,
             OnScored on_scored);
  void run();
  void pass(NewCycles pending);
  // Every cell with cycles after its last host forecast, into `pending` (when a model arrives:
  // cycles stored just before a crash, or while there was no model, are not left out).
  void queue_unforecast_cells(NewCycles& pending);
  // Forecasts the cycles after the cell's last forecast, and late ones from span.oldest, up to
  // span.newest into `out`; false when the pass's budget is spent (the cell is re-queued with
  // span.oldest where it stopped).
  Result<bool> forecast_cell(const std::string& cell_id, CycleSpan& span,
                             std::vector<storage::ForecastRecord>& out);

  storage::Database db_;  // the forecaster thread's only
  ForecasterOptions options_;
  OnForecasts on_forecasts_;
  OnScored on_scored_;
  std::unique_ptr<edge::WindowForecaster> forecaster_;                 // thread's only
  std::unordered_map<std::string, std::int64_t> last_forecast_cycle_;  // thread's only

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  NewCycles pending_;
  std::unique_ptr<edge::WindowForecaster> next_forecaster_;
  bool model_changed_ = false;
  std::optional<std::int64_t> new_max_size_;
  bool stopping_ = false;
  ForecasterStats stats_;
  std::thread thread_;
};

}  // namespace cyclecast::daemon
