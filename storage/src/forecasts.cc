// Forecasts: Database::write_forecasts, forecasts_of and their scoring. Statements are prepared
// per call: the forecaster writes and scores one cell at a time, far below the cycle writer's
// rates.
#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "cyclecast/storage/database.h"
#include "database_impl.h"
#include "forecast_scoring.h"

namespace cyclecast::storage {
namespace {

// The cell's row id comes from the cells table inside the statement; a forecast of an unknown
// cell or one already stored inserts nothing (sqlite3_changes tells which).
constexpr const char* kInsertForecast =
    "INSERT INTO forecasts(cell, at_cycle, model_version, origin, soh_f32le, created_at_ms, "
    "lower_f32le, upper_f32le) "
    "SELECT c.id, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM cells c WHERE c.cell_id = ?1 AND NOT EXISTS ("
    "SELECT 1 FROM forecasts f WHERE f.cell = c.id AND f.at_cycle = ?2 AND "
    "f.model_version = ?3 AND f.origin = ?4)";
constexpr const char* kCellExists = "SELECT 1 FROM cells WHERE cell_id = ?1";
constexpr const char* kForecastsOf =
    "SELECT f.at_cycle, f.model_version, f.origin, f.soh_f32le, f.created_at_ms, f.error_10, "
    "f.error_h, f.lower_f32le, f.upper_f32le FROM forecasts f JOIN cells c ON c.id = f.cell "
    "WHERE c.cell_id = ?1 ORDER BY f.at_cycle, f.origin, f.id";
constexpr const char* kRecentForecasts =
    "SELECT f.at_cycle, f.model_version, f.origin, f.soh_f32le, f.created_at_ms, f.error_10, "
    "f.error_h, f.lower_f32le, f.upper_f32le FROM forecasts f JOIN cells c ON c.id = f.cell "
    "WHERE c.cell_id = ?1 ORDER BY f.at_cycle DESC, f.id DESC LIMIT ?2";
// Forecasts still waiting for their +H cycle (the partial index forecasts_unscored).
constexpr const char* kUnscored =
    "SELECT f.id, f.at_cycle, f.soh_f32le, f.error_10, f.model_version, f.origin FROM forecasts f "
    "WHERE f.cell = ?1 AND f.error_h IS NULL ORDER BY f.at_cycle";
constexpr const char* kCellOf = "SELECT id, rated_capacity_ah FROM cells WHERE cell_id = ?1";
constexpr const char* kCapacities =
    "SELECT cycle, discharge_capacity_ah FROM cycles WHERE cell = ?1 AND cycle BETWEEN ?2 AND ?3";
constexpr const char* kSetErrors = "UPDATE forecasts SET error_10 = ?2, error_h = ?3 WHERE id = ?1";
constexpr const char* kLiveErrors =
    "SELECT model_version, origin, count(error_10), avg(abs(error_10)), count(error_h), "
    "avg(abs(error_h)) FROM forecasts GROUP BY model_version, origin "
    "ORDER BY model_version, origin";
// The bare model_version comes from the row of max(created_at_ms) (SQLite's rule for a query
// with a single max() aggregate).
constexpr const char* kEdgeNodes =
    "SELECT substr(origin, 6), model_version, max(created_at_ms), count(*), count(DISTINCT cell) "
    "FROM forecasts WHERE origin >= 'edge:' AND origin < 'edge;' GROUP BY origin ORDER BY origin";
constexpr const char* kLastForecast =
    "SELECT coalesce(max(f.at_cycle), 0) FROM forecasts f JOIN cells c ON c.id = f.cell "
    "WHERE c.cell_id = ?1 AND f.origin = ?2";

// Past the cell's first forecast from the origin (cycles before it were history, never to be
// forecast), the oldest stored cycle without one.
constexpr const char* kOldestUnforecast =
    "WITH c AS (SELECT id FROM cells WHERE cell_id = ?1), "
    "first AS (SELECT min(f.at_cycle) AS cycle FROM forecasts f, c "
    "          WHERE f.cell = c.id AND f.origin = ?2) "
    "SELECT coalesce(min(y.cycle), 0) FROM cycles y, c, first "
    "WHERE y.cell = c.id AND y.cycle > first.cycle AND NOT EXISTS ("
    "  SELECT 1 FROM forecasts f WHERE f.cell = c.id AND f.at_cycle = y.cycle AND f.origin = ?2)";

Result<detail::Statement> prepare(Database::Impl& impl, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(impl.db, sql, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return impl.error(rc, "preparing a forecast statement");
  return detail::Statement(stmt);
}

// Floats as little-endian IEEE-754 bytes (the column's name says so; hosts we build for are
// little-endian, which the static_assert below pins).
std::string f32le(const std::vector<float>& values) {
  static_assert(sizeof(float) == 4);
  std::string bytes(values.size() * 4, '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::vector<float> floats_of(sqlite3_stmt* stmt, int column) {
  const int bytes = sqlite3_column_bytes(stmt, column);
  std::vector<float> values(static_cast<size_t>(bytes) / 4);
  if (!values.empty())
    std::memcpy(values.data(), sqlite3_column_blob(stmt, column), values.size() * 4);
  return values;
}

double nan_if_null(sqlite3_stmt* stmt, int column) {
  return detail::column_optional_double(stmt, column).value_or(std::nan(""));
}

void bind_nan_as_null(sqlite3_stmt* stmt, int index, double value) {
  if (std::isnan(value))
    sqlite3_bind_null(stmt, index);
  else
    sqlite3_bind_double(stmt, index, value);
}

// An interval bound as its column: NULL when the forecast has no interval.
void bind_bound(sqlite3_stmt* stmt, int index, const std::string& bytes, bool present) {
  if (!present) {
    sqlite3_bind_null(stmt, index);
    return;
  }
  sqlite3_bind_blob(stmt, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
}

}  // namespace

Result<ForecastWriteResult> Database::write_forecasts(std::span<const ForecastRecord> forecasts) {
  if (impl_->pg) return impl_->pg->write_forecasts(forecasts);
  for (const ForecastRecord& f : forecasts) {
    if (auto ok = detail::check_forecast(f); !ok) return ok.error();
  }
  auto insert = prepare(*impl_, kInsertForecast);
  if (!insert) return insert.error();
  auto exists = prepare(*impl_, kCellExists);
  if (!exists) return exists.error();
  const std::int64_t now = now_ms();
  ForecastWriteResult result;
  auto written = impl_->in_transaction([&]() -> Result<void> {
    for (const ForecastRecord& f : forecasts) {
      sqlite3_stmt* stmt = insert->get();
      const std::string blob = f32le(f.soh);
      detail::bind_text_static(stmt, 1, f.cell_id);
      sqlite3_bind_int64(stmt, 2, f.at_cycle);
      detail::bind_text_static(stmt, 3, f.model_version);
      detail::bind_text_static(stmt, 4, f.origin);
      sqlite3_bind_blob(stmt, 5, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
      sqlite3_bind_int64(stmt, 6, f.created_at_ms != 0 ? f.created_at_ms : now);
      const std::string lower = f32le(f.lower), upper = f32le(f.upper);
      const bool interval = !f.lower.empty();
      bind_bound(stmt, 7, lower, interval);
      bind_bound(stmt, 8, upper, interval);
      if (auto done = impl_->step_done(stmt, "storing a forecast"); !done) return done;
      if (sqlite3_changes(impl_->db) == 1) {
        ++result.stored;
        continue;
      }
      detail::ScopedReset reset(exists->get());
      detail::bind_text_static(exists->get(), 1, f.cell_id);
      const bool known = sqlite3_step(exists->get()) == SQLITE_ROW;
      ++(known ? result.duplicates : result.unknown_cells);
    }
    return {};
  });
  if (!written) return written.error();
  return result;
}

namespace {

// Reads the rows of kForecastsOf or kRecentForecasts (same columns), the cell bound as ?1.
Result<std::vector<ForecastRecord>> read_forecasts(Database::Impl& impl, sqlite3_stmt* stmt,
                                                   const std::string& cell_id) {
  std::vector<ForecastRecord> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ForecastRecord f;
    f.cell_id = cell_id;
    f.at_cycle = sqlite3_column_int64(stmt, 0);
    f.model_version = detail::column_string(stmt, 1);
    f.origin = detail::column_string(stmt, 2);
    f.soh = floats_of(stmt, 3);
    f.created_at_ms = sqlite3_column_int64(stmt, 4);
    f.error_10 = nan_if_null(stmt, 5);
    f.error_h = nan_if_null(stmt, 6);
    f.lower = floats_of(stmt, 7);  // NULL reads as no bytes: no interval
    f.upper = floats_of(stmt, 8);
    out.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return impl.error(rc, "reading the forecasts of cell '" + cell_id + "'");
  return out;
}

}  // namespace

Result<std::vector<ForecastRecord>> Database::forecasts_of(const std::string& cell_id) {
  if (impl_->pg) return impl_->pg->forecasts_of(cell_id);
  auto select = prepare(*impl_, kForecastsOf);
  if (!select) return select.error();
  detail::bind_text_static(select->get(), 1, cell_id);
  return read_forecasts(*impl_, select->get(), cell_id);
}

Result<std::vector<ForecastRecord>> Database::recent_forecasts(const std::string& cell_id,
                                                               std::int64_t limit) {
  if (impl_->pg) return impl_->pg->recent_forecasts(cell_id, limit);
  auto select = prepare(*impl_, kRecentForecasts);
  if (!select) return select.error();
  detail::bind_text_static(select->get(), 1, cell_id);
  sqlite3_bind_int64(select->get(), 2, limit);
  return read_forecasts(*impl_, select->get(), cell_id);
}

namespace {

// The errors newly known for one cell's pending forecasts (reads only).
Result<std::vector<detail::ScoreUpdate>> errors_to_set(Database::Impl& impl,
                                                       const std::string& cell_id) {
  auto cell = prepare(impl, kCellOf);
  if (!cell) return cell.error();
  detail::bind_text_static(cell->get(), 1, cell_id);
  if (sqlite3_step(cell->get()) != SQLITE_ROW) return std::vector<detail::ScoreUpdate>{};
  const std::int64_t cell_row = sqlite3_column_int64(cell->get(), 0);
  const double rated = sqlite3_column_double(cell->get(), 1);

  auto unscored = prepare(impl, kUnscored);
  if (!unscored) return unscored.error();
  sqlite3_bind_int64(unscored->get(), 1, cell_row);
  std::vector<detail::Unscored> pending;
  std::int64_t last_target = 0;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(unscored->get())) == SQLITE_ROW) {
    detail::Unscored u{sqlite3_column_int64(unscored->get(), 0),
                       sqlite3_column_int64(unscored->get(), 1),
                       floats_of(unscored->get(), 2),
                       nan_if_null(unscored->get(), 3),
                       detail::column_string(unscored->get(), 4),
                       detail::column_string(unscored->get(), 5)};
    last_target = std::max<std::int64_t>(last_target, u.at_cycle + std::ssize(u.soh));
    pending.push_back(std::move(u));
  }
  if (rc != SQLITE_DONE)
    return impl.error(rc, "reading the unscored forecasts of '" + cell_id + "'");
  if (pending.empty()) return std::vector<detail::ScoreUpdate>{};

  // The actual SOH of every cycle a pending forecast targets, in one range read.
  auto capacities = prepare(impl, kCapacities);
  if (!capacities) return capacities.error();
  sqlite3_bind_int64(capacities->get(), 1, cell_row);
  // From the first origin on: its SOH is the drift monitor's band (ScoredForecast::origin_soh).
  sqlite3_bind_int64(capacities->get(), 2, pending.front().at_cycle);
  sqlite3_bind_int64(capacities->get(), 3, last_target);
  std::unordered_map<std::int64_t, double> actual;
  while ((rc = sqlite3_step(capacities->get())) == SQLITE_ROW)
    actual[sqlite3_column_int64(capacities->get(), 0)] =
        sqlite3_column_double(capacities->get(), 1) / rated;
  if (rc != SQLITE_DONE) return impl.error(rc, "reading the cycles of '" + cell_id + "'");

  return detail::score_updates(cell_id, pending, actual);
}

}  // namespace

Result<std::size_t> Database::score_forecasts(std::span<const std::string> cell_ids,
                                              std::vector<ScoredForecast>* scored_h) {
  if (impl_->pg) return impl_->pg->score_forecasts(cell_ids, scored_h);
  std::vector<detail::ScoreUpdate> updates;
  for (const std::string& cell_id : cell_ids) {
    auto more = errors_to_set(*impl_, cell_id);
    if (!more) return more.error();
    updates.insert(updates.end(), more->begin(), more->end());
  }
  if (updates.empty()) return std::size_t{0};
  auto update = prepare(*impl_, kSetErrors);
  if (!update) return update.error();
  std::size_t set = 0;
  auto written = impl_->in_transaction([&]() -> Result<void> {
    for (const detail::ScoreUpdate& u : updates) {
      sqlite3_stmt* stmt = update->get();
      sqlite3_bind_int64(stmt, 1, u.id);
      bind_nan_as_null(stmt, 2, u.error_10);
      bind_nan_as_null(stmt, 3, u.error_h);
      if (auto done = impl_->step_done(stmt, "storing a forecast's error"); !done) return done;
      set += u.new_errors;
    }
    return {};
  });
  if (!written) return written.error();
  if (scored_h != nullptr) {
    for (detail::ScoreUpdate& u : updates) {
      if (!std::isnan(u.error_h)) scored_h->push_back(std::move(u.scored));
    }
  }
  return set;
}

Result<std::vector<LiveError>> Database::live_errors() {
  if (impl_->pg) return impl_->pg->live_errors();
  auto select = prepare(*impl_, kLiveErrors);
  if (!select) return select.error();
  sqlite3_stmt* stmt = select->get();
  std::vector<LiveError> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back({detail::column_string(stmt, 0), detail::column_string(stmt, 1),
                   sqlite3_column_int64(stmt, 2), nan_if_null(stmt, 3),
                   sqlite3_column_int64(stmt, 4), nan_if_null(stmt, 5)});
  }
  if (rc != SQLITE_DONE) return impl_->error(rc, "reading the live errors");
  return out;
}

Result<std::vector<EdgeNodeSummary>> Database::edge_nodes() {
  if (impl_->pg) return impl_->pg->edge_nodes();
  auto select = prepare(*impl_, kEdgeNodes);
  if (!select) return select.error();
  sqlite3_stmt* stmt = select->get();
  std::vector<EdgeNodeSummary> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    out.push_back({detail::column_string(stmt, 0), detail::column_string(stmt, 1),
                   sqlite3_column_int64(stmt, 2), sqlite3_column_int64(stmt, 3),
                   sqlite3_column_int64(stmt, 4)});
  }
  if (rc != SQLITE_DONE) return impl_->error(rc, "reading the edge nodes");
  return out;
}

namespace {

// One cycle number that `sql` selects for (cell_id, origin); `what` names the query in errors.
Result<std::int64_t> cycle_of_cell(Database::Impl& impl, const char* sql,
                                   const std::string& cell_id, const std::string& origin,
                                   const std::string& what) {
  auto select = prepare(impl, sql);
  if (!select) return select.error();
  detail::bind_text_static(select->get(), 1, cell_id);
  detail::bind_text_static(select->get(), 2, origin);
  const int rc = sqlite3_step(select->get());
  if (rc != SQLITE_ROW) return impl.error(rc, what);
  return sqlite3_column_int64(select->get(), 0);
}

}  // namespace

Result<std::int64_t> Database::last_forecast_cycle(const std::string& cell_id,
                                                   const std::string& origin) {
  if (impl_->pg) return impl_->pg->last_forecast_cycle(cell_id, origin);
  return cycle_of_cell(*impl_, kLastForecast, cell_id, origin,
                       "reading the last forecast of '" + cell_id + "'");
}

Result<std::int64_t> Database::oldest_unforecast_cycle(const std::string& cell_id,
                                                       const std::string& origin) {
  if (impl_->pg) return impl_->pg->oldest_unforecast_cycle(cell_id, origin);
  return cycle_of_cell(*impl_, kOldestUnforecast, cell_id, origin,
                       "looking for cycles of '" + cell_id + "' without a forecast");
}

}  // namespace cyclecast::storage
