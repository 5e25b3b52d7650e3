// Forecasts: Database::write_forecasts and forecasts_of. Statements are prepared per call:
// forecasts arrive a few per second at most, far from the cycle writer's rates.
#include <sqlite3.h>

#include <cstring>

#include "cyclecast/storage/database.h"
#include "database_impl.h"

namespace cyclecast::storage {
namespace {

// The cell's row id comes from the cells table inside the statement; a forecast of an unknown
// cell or one already stored inserts nothing (sqlite3_changes tells which).
constexpr const char* kInsertForecast =
    "INSERT INTO forecasts(cell, at_cycle, model_version, origin, soh_f32le, created_at_ms) "
    "SELECT c.id, ?2, ?3, ?4, ?5, ?6 FROM cells c WHERE c.cell_id = ?1 AND NOT EXISTS ("
    "SELECT 1 FROM forecasts f WHERE f.cell = c.id AND f.at_cycle = ?2 AND "
    "f.model_version = ?3 AND f.origin = ?4)";
constexpr const char* kCellExists = "SELECT 1 FROM cells WHERE cell_id = ?1";
constexpr const char* kForecastsOf =
    "SELECT f.at_cycle, f.model_version, f.origin, f.soh_f32le, f.created_at_ms FROM forecasts f "
    "JOIN cells c ON c.id = f.cell WHERE c.cell_id = ?1 ORDER BY f.at_cycle, f.origin, f.id";

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

Result<void> check_forecast(const ForecastRecord& f) {
  if (f.at_cycle < 1 || f.model_version.empty() || f.origin.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forecast of cell '" + f.cell_id + "' at cycle " +
                          std::to_string(f.at_cycle) +
                          ": needs at_cycle >= 1, a model version and an origin");
  }
  return {};
}

}  // namespace

Result<ForecastWriteResult> Database::write_forecasts(std::span<const ForecastRecord> forecasts) {
  for (const ForecastRecord& f : forecasts) {
    if (auto ok = check_forecast(f); !ok) return ok.error();
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

Result<std::vector<ForecastRecord>> Database::forecasts_of(const std::string& cell_id) {
  auto select = prepare(*impl_, kForecastsOf);
  if (!select) return select.error();
  sqlite3_stmt* stmt = select->get();
  detail::bind_text_static(stmt, 1, cell_id);
  std::vector<ForecastRecord> out;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    ForecastRecord f;
    f.cell_id = cell_id;
    f.at_cycle = sqlite3_column_int64(stmt, 0);
    f.model_version = detail::column_string(stmt, 1);
    f.origin = detail::column_string(stmt, 2);
    const int bytes = sqlite3_column_bytes(stmt, 3);
    f.soh.resize(static_cast<size_t>(bytes) / 4);
    if (bytes > 0) std::memcpy(f.soh.data(), sqlite3_column_blob(stmt, 3), f.soh.size() * 4);
    f.created_at_ms = sqlite3_column_int64(stmt, 4);
    out.push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return impl_->error(rc, "reading the forecasts of cell '" + cell_id + "'");
  return out;
}

}  // namespace cyclecast::storage
