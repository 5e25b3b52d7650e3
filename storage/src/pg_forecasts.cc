// Forecasts on PostgreSQL (pg_backend.h): the statements of forecasts.cc in PostgreSQL's
// dialect, with its validation and scoring arithmetic shared (forecast_scoring.h). Float vectors
// travel as bytea (sent binary, read back as hex); errors are NULL while unknown, NaN in memory.
// Text is ordered COLLATE "C", byte order as SQLite's, whatever the server's default collation.
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "forecast_scoring.h"
#include "pg_backend.h"

namespace cyclecast::storage::detail {
namespace {

// A forecast of an unknown cell, or one already stored (the unique index forecasts_once),
// inserts nothing: the affected row count tells which, then kCellExists tells apart the two.
constexpr const char* kInsertForecast =
    "INSERT INTO forecasts(cell, at_cycle, model_version, origin, soh_f32le, created_at_ms, "
    "lower_f32le, upper_f32le) SELECT c.id, $2, $3, $4, $5, $6, $7, $8 FROM cells c "
    "WHERE c.cell_id = $1 ON CONFLICT (cell, at_cycle, model_version, origin) DO NOTHING";
constexpr const char* kCellExists = "SELECT 1 FROM cells WHERE cell_id = $1";
constexpr const char* kForecastColumns =
    "SELECT f.at_cycle, f.model_version, f.origin, encode(f.soh_f32le, 'hex'), "
    "f.created_at_ms, f.error_10, f.error_h, encode(f.lower_f32le, 'hex'), "
    "encode(f.upper_f32le, 'hex') FROM forecasts f JOIN cells c ON c.id = f.cell "
    "WHERE c.cell_id = $1 ";
constexpr const char* kForecastsOfOrder = "ORDER BY f.at_cycle, f.origin COLLATE \"C\", f.id";
constexpr const char* kRecentOrder = "ORDER BY f.at_cycle DESC, f.id DESC LIMIT $2";
constexpr const char* kUnscored =
    "SELECT f.id, f.at_cycle, encode(f.soh_f32le, 'hex'), f.error_10, f.model_version, f.origin "
    "FROM forecasts f WHERE f.cell = $1 AND f.error_h IS NULL ORDER BY f.at_cycle";
constexpr const char* kCellOf = "SELECT id, rated_capacity_ah FROM cells WHERE cell_id = $1";
constexpr const char* kCapacities =
    "SELECT cycle, discharge_capacity_ah FROM cycles WHERE cell = $1 AND cycle BETWEEN $2 AND $3";
constexpr const char* kSetErrors = "UPDATE forecasts SET error_10 = $2, error_h = $3 WHERE id = $1";
constexpr const char* kLiveErrors =
    "SELECT model_version, origin, count(error_10), avg(abs(error_10)), count(error_h), "
    "avg(abs(error_h)) FROM forecasts GROUP BY model_version, origin "
    "ORDER BY model_version COLLATE \"C\", origin COLLATE \"C\"";
// The model version of the node's newest forecast (SQLite's bare column beside max()).
constexpr const char* kEdgeNodes =
    "SELECT substr(origin, 6), (array_agg(model_version ORDER BY created_at_ms DESC, id DESC))[1], "
    "max(created_at_ms), count(*), count(DISTINCT cell) FROM forecasts "
    "WHERE starts_with(origin, 'edge:') GROUP BY origin ORDER BY origin COLLATE \"C\"";
constexpr const char* kLastForecast =
    "SELECT coalesce(max(f.at_cycle), 0) FROM forecasts f JOIN cells c ON c.id = f.cell "
    "WHERE c.cell_id = $1 AND f.origin = $2";
constexpr const char* kOldestUnforecast =
    "WITH c AS (SELECT id FROM cells WHERE cell_id = $1), "
    "first AS (SELECT min(f.at_cycle) AS cycle FROM forecasts f, c "
    "          WHERE f.cell = c.id AND f.origin = $2) "
    "SELECT coalesce(min(y.cycle), 0) FROM cycles y, c, first "
    "WHERE y.cell = c.id AND y.cycle > first.cycle AND NOT EXISTS ("
    "  SELECT 1 FROM forecasts f WHERE f.cell = c.id AND f.at_cycle = y.cycle AND f.origin = $2)";

PgParam text_param(std::string value) {
  return PgParam{std::move(value), false};
}
PgParam int_param(std::int64_t value) {
  return PgParam{std::to_string(value), false};
}
// NaN (not known) as NULL; otherwise the shortest text that reads back the same double.
PgParam error_param(double value) {
  if (std::isnan(value)) return PgParam{};
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  return PgParam{std::string(buffer, end), false};
}
// Floats as little-endian IEEE-754 bytes, sent as binary bytea (as forecasts.cc's f32le).
PgParam floats_param(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return PgParam{std::move(bytes), true};
}

std::int64_t int_of(const std::optional<std::string>& value) {
  return value ? std::strtoll(value->c_str(), nullptr, 10) : 0;
}
double double_or_nan(const std::optional<std::string>& value) {
  return value ? std::strtod(value->c_str(), nullptr) : std::nan("");
}
std::string string_of(const std::optional<std::string>& value) {
  return value.value_or(std::string{});
}
// A bytea read as hex; NULL (no interval) reads as no values.
std::vector<float> floats_of(const std::optional<std::string>& hex) {
  if (!hex) return {};
  const std::string bytes = pg_bytes_from_hex(*hex);
  std::vector<float> values(bytes.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

std::vector<ForecastRecord> forecasts_from(const PgRows& rows, const std::string& cell_id) {
  std::vector<ForecastRecord> out;
  out.reserve(rows.rows.size());
  for (const auto& row : rows.rows) {
    ForecastRecord f;
    f.cell_id = cell_id;
    f.at_cycle = int_of(row[0]);
    f.model_version = string_of(row[1]);
    f.origin = string_of(row[2]);
    f.soh = floats_of(row[3]);
    f.created_at_ms = int_of(row[4]);
    f.error_10 = double_or_nan(row[5]);
    f.error_h = double_or_nan(row[6]);
    f.lower = floats_of(row[7]);
    f.upper = floats_of(row[8]);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

Result<ForecastWriteResult> PgBackend::write_forecasts(std::span<const ForecastRecord> forecasts) {
  for (const ForecastRecord& f : forecasts) {
    if (auto ok = check_forecast(f); !ok) return ok.error();
  }
  const std::int64_t now = now_ms();
  ForecastWriteResult result;
  auto written = in_transaction([&]() -> Result<void> {
    for (const ForecastRecord& f : forecasts) {
      const bool interval = !f.lower.empty();
      const PgParam params[] = {text_param(f.cell_id),
                                int_param(f.at_cycle),
                                text_param(f.model_version),
                                text_param(f.origin),
                                floats_param(f.soh),
                                int_param(f.created_at_ms != 0 ? f.created_at_ms : now),
                                interval ? floats_param(f.lower) : PgParam{},
                                interval ? floats_param(f.upper) : PgParam{}};
      auto inserted = query(kInsertForecast, params, "storing a forecast");
      if (!inserted) return inserted.error();
      if (inserted->affected == 1) {
        ++result.stored;
        continue;
      }
      const PgParam cell[] = {text_param(f.cell_id)};
      auto exists = query(kCellExists, cell, "looking up cell '" + f.cell_id + "'");
      if (!exists) return exists.error();
      ++(exists->rows.empty() ? result.unknown_cells : result.duplicates);
    }
    return {};
  });
  if (!written) return written.error();
  return result;
}

Result<std::vector<ForecastRecord>> PgBackend::forecasts_of(const std::string& cell_id) {
  const PgParam params[] = {text_param(cell_id)};
  auto rows = query(std::string(kForecastColumns) + kForecastsOfOrder, params,
                    "reading the forecasts of cell '" + cell_id + "'");
  if (!rows) return rows.error();
  return forecasts_from(*rows, cell_id);
}

Result<std::vector<ForecastRecord>> PgBackend::recent_forecasts(const std::string& cell_id,
                                                                std::int64_t limit) {
  const PgParam params[] = {text_param(cell_id), int_param(limit)};
  auto rows = query(std::string(kForecastColumns) + kRecentOrder, params,
                    "reading the forecasts of cell '" + cell_id + "'");
  if (!rows) return rows.error();
  return forecasts_from(*rows, cell_id);
}

Result<std::size_t> PgBackend::score_forecasts(std::span<const std::string> cell_ids,
                                               std::vector<ScoredForecast>* scored_h) {
  // Reads first, then every update in one transaction, as on SQLite.
  std::vector<ScoreUpdate> updates;
  for (const std::string& cell_id : cell_ids) {
    const PgParam by_id[] = {text_param(cell_id)};
    auto cell = query(kCellOf, by_id, "looking up cell '" + cell_id + "'");
    if (!cell) return cell.error();
    if (cell->rows.empty()) continue;
    const std::int64_t cell_row = int_of(cell->rows.front()[0]);
    const double rated = double_or_nan(cell->rows.front()[1]);

    const PgParam by_row[] = {int_param(cell_row)};
    auto unscored = query(kUnscored, by_row, "reading the unscored forecasts of '" + cell_id + "'");
    if (!unscored) return unscored.error();
    if (unscored->rows.empty()) continue;
    std::vector<Unscored> pending;
    std::int64_t last_target = 0;
    for (const auto& row : unscored->rows) {
      Unscored u{int_of(row[0]),        int_of(row[1]),    floats_of(row[2]),
                 double_or_nan(row[3]), string_of(row[4]), string_of(row[5])};
      last_target = std::max<std::int64_t>(last_target, u.at_cycle + std::ssize(u.soh));
      pending.push_back(std::move(u));
    }
    const PgParam range[] = {int_param(cell_row), int_param(pending.front().at_cycle),
                             int_param(last_target)};
    auto capacities = query(kCapacities, range, "reading the cycles of '" + cell_id + "'");
    if (!capacities) return capacities.error();
    std::unordered_map<std::int64_t, double> actual;
    for (const auto& row : capacities->rows)
      actual[int_of(row[0])] = double_or_nan(row[1]) / rated;
    std::vector<ScoreUpdate> more = score_updates(cell_id, pending, actual);
    updates.insert(updates.end(), more.begin(), more.end());
  }
  if (updates.empty()) return std::size_t{0};
  std::size_t set = 0;
  auto written = in_transaction([&]() -> Result<void> {
    for (const ScoreUpdate& u : updates) {
      const PgParam params[] = {int_param(u.id), error_param(u.error_10), error_param(u.error_h)};
      if (auto done = query(kSetErrors, params, "storing a forecast's error"); !done) {
        return done.error();
      }
      set += u.new_errors;
    }
    return {};
  });
  if (!written) return written.error();
  if (scored_h != nullptr) {
    for (ScoreUpdate& u : updates) {
      if (!std::isnan(u.error_h)) scored_h->push_back(std::move(u.scored));
    }
  }
  return set;
}

Result<std::vector<LiveError>> PgBackend::live_errors() {
  auto rows = query(kLiveErrors, "reading the live errors");
  if (!rows) return rows.error();
  std::vector<LiveError> out;
  for (const auto& row : rows->rows) {
    out.push_back({string_of(row[0]), string_of(row[1]), int_of(row[2]), double_or_nan(row[3]),
                   int_of(row[4]), double_or_nan(row[5])});
  }
  return out;
}

Result<std::vector<EdgeNodeSummary>> PgBackend::edge_nodes() {
  auto rows = query(kEdgeNodes, "reading the edge nodes");
  if (!rows) return rows.error();
  std::vector<EdgeNodeSummary> out;
  for (const auto& row : rows->rows) {
    out.push_back(
        {string_of(row[0]), string_of(row[1]), int_of(row[2]), int_of(row[3]), int_of(row[4])});
  }
  return out;
}

Result<std::int64_t> PgBackend::last_forecast_cycle(const std::string& cell_id,
                                                    const std::string& origin) {
  const PgParam params[] = {text_param(cell_id), text_param(origin)};
  auto rows = query(kLastForecast, params, "reading the last forecast of '" + cell_id + "'");
  if (!rows) return rows.error();
  return rows->rows.empty() ? 0 : int_of(rows->rows.front()[0]);
}

Result<std::int64_t> PgBackend::oldest_unforecast_cycle(const std::string& cell_id,
                                                        const std::string& origin) {
  const PgParam params[] = {text_param(cell_id), text_param(origin)};
  auto rows = query(kOldestUnforecast, params,
                    "looking for cycles of '" + cell_id + "' without a forecast");
  if (!rows) return rows.error();
  return rows->rows.empty() ? 0 : int_of(rows->rows.front()[0]);
}

}  // namespace cyclecast::storage::detail
