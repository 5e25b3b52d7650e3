#include "soak_check.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "cyclecast/storage/database.h"
#include "cyclecast/storage/registry.h"

namespace cyclecast::soak {
namespace {

// The CSV holds 6 decimals; anything closer than this is the value that was published.
constexpr double kValueTolerance = 2e-6;

// Rows of the cycles table beyond one per (cell, cycle), counted by SQLite itself rather than
// through the storage library, which reads by primary key and could not show them.
std::int64_t duplicate_rows(const std::filesystem::path& db_path, std::string& error) {
  sqlite3* db = nullptr;
  std::int64_t extra = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* statement = nullptr;
    const char* sql =
        "SELECT COUNT(*) - (SELECT COUNT(*) FROM (SELECT DISTINCT cell, cycle FROM "
        "cycles)) FROM cycles";
    if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
      extra = sqlite3_column_int64(statement, 0);
    }
    sqlite3_finalize(statement);
  }
  if (extra < 0) error = std::string("counting duplicate rows: ") + sqlite3_errmsg(db);
  sqlite3_close(db);
  return extra;
}

void check_cell(storage::Database& db, const PublishedCell& cell, SoakVerdict& verdict) {
  auto cycles = db.cycles_of(cell.cell_id);
  if (!cycles) {
    verdict.problems.push_back("reading " + cell.cell_id + ": " + cycles.error().message);
    verdict.lost += cell.cycles;
    return;
  }
  std::set<std::int64_t> seen;
  for (const auto& record : *cycles) {
    if (record.cycle < 1 || record.cycle > cell.cycles) {
      ++verdict.unexpected;
      continue;
    }
    if (!seen.insert(record.cycle).second) ++verdict.duplicated;
    const double expected = soak_qd_ah(cell.index, record.cycle);
    if (std::fabs(record.discharge_capacity_ah - expected) > kValueTolerance) ++verdict.wrong_value;
  }
  verdict.lost += cell.cycles - static_cast<std::int64_t>(seen.size());
}

// Cycles stored before the model was loaded are not forecast by design, nor those of a cell below
// its first forecast (the forecaster starts a cell at its newest cycle, never back-filling). Every
// other stored cycle with W cycles up to it must have a host forecast, also one stored late (a
// re-send after a fault) and those stored while the daemon was down.
constexpr std::int64_t kModelLoadMarginMs = 2000;  // promotion to the forecaster's next pass

void check_forecasts(storage::Database& db, const PublishedCell& cell,
                     const ForecastExpectation& expectation, std::int64_t champion_since_ms,
                     SoakVerdict& verdict) {
  auto forecasts = db.forecasts_of(cell.cell_id);
  if (!forecasts) {
    verdict.problems.push_back("forecasts of " + cell.cell_id + ": " + forecasts.error().message);
    return;
  }
  std::set<std::int64_t> host;
  for (const auto& f : *forecasts) {
    if (f.origin == "host") {
      host.insert(f.at_cycle);
      ++verdict.host_forecasts;
    } else {
      ++verdict.edge_forecasts;
    }
  }
  if (!expectation.check || champion_since_ms == 0) return;
  auto cycles = db.cycles_of(cell.cell_id);
  if (!cycles) return;  // reported by check_cell
  const std::int64_t first = host.empty() ? 0 : *host.begin();
  // A cycle is late when a higher cycle of the cell was stored before it (a re-send after a
  // fault overtaken by newer records). Oldest storing time among the higher cycles, by cycle:
  std::vector<std::int64_t> earliest_above(cycles->size());
  std::int64_t earliest = std::numeric_limits<std::int64_t>::max();
  for (std::size_t i = cycles->size(); i-- > 0;) {
    earliest_above[i] = earliest;
    earliest = std::min(earliest, (*cycles)[i].received_at_ms);
  }
  // Stored after the last cycle the forecaster got to: it was never woken for the cell again (a
  // commit just before a SIGKILL, and no newer cycle of the cell after the restart).
  std::int64_t last_forecast_stored_ms = 0;
  for (const auto& record : *cycles)
    if (host.count(record.cycle) != 0)
      last_forecast_stored_ms = std::max(last_forecast_stored_ms, record.received_at_ms);
  const auto window_span = static_cast<std::size_t>(expectation.window);
  std::int64_t missing = 0, first_missing = 0, late = 0, stranded = 0;
  for (std::size_t i = 0; i < cycles->size(); ++i) {
    const auto& record = (*cycles)[i];
    if (record.received_at_ms <= champion_since_ms + kModelLoadMarginMs) continue;
    if (record.cycle < expectation.window || record.cycle <= first) continue;
    if (host.count(record.cycle) != 0) continue;
    // Its history arrived after it: the forecaster found fewer than W cycles and moved on.
    bool history_late = false;
    for (std::size_t j = i >= window_span ? i - window_span : 0; j < i; ++j)
      history_late = history_late || (*cycles)[j].received_at_ms > record.received_at_ms;
    const bool is_late = earliest_above[i] < record.received_at_ms || history_late;
    if (is_late && !expectation.strict) {
      ++late;
    } else if (record.received_at_ms > last_forecast_stored_ms && !expectation.strict) {
      ++stranded;
    } else if (missing++ == 0) {
      first_missing = record.cycle;
    }
  }
  verdict.late_without_forecast += late;
  verdict.stranded_without_forecast += stranded;
  if (missing > 0) {
    verdict.forecasts_missing += missing;
    verdict.problems.push_back(cell.cell_id + ": " + std::to_string(missing) +
                               " cycles stored after the champion have no host forecast (first: " +
                               std::to_string(first_missing) +
                               ", the cell's first forecast: " + std::to_string(first) + ")");
  }
}

void check_registry(storage::Database& db, SoakVerdict& verdict) {
  auto runs = storage::list_runs(db, 1000);
  if (!runs) {
    verdict.problems.push_back("listing runs: " + runs.error().message);
    return;
  }
  verdict.runs = static_cast<std::int64_t>(runs->size());
  for (const auto& run : *runs) {
    if (run.status == storage::RunStatus::kRunning) {
      verdict.problems.push_back("run " + std::to_string(run.id) + " is left running");
    }
  }
  auto champion = storage::champion(db);
  if (!champion) {
    verdict.problems.push_back("reading the champion: " + champion.error().message);
    return;
  }
  if (!*champion) return;
  const auto& model = **champion;
  if (!std::filesystem::exists(std::filesystem::path(model.model_dir) / "model.bin")) {
    verdict.problems.push_back("champion " + model.version + " has no model.bin in " +
                               model.model_dir);
  }
  if (!std::filesystem::exists(model.bundle_path)) {
    verdict.problems.push_back("champion " + model.version + " has no bundle at " +
                               model.bundle_path);
  }
}

}  // namespace

double soak_qd_ah(int index, std::int64_t cycle) {
  // A slow linear fade, distinct per cell: 1.08 Ah at cycle 0, 0.78 Ah at cycle 3000.
  const double value = 1.08 - 0.0001 * static_cast<double>(cycle) + 0.0005 * (index % 20);
  return std::round(value * 1e6) / 1e6;
}

SoakVerdict check_database(const std::filesystem::path& state_dir,
                           const std::vector<PublishedCell>& published,
                           const ForecastExpectation& forecasts) {
  SoakVerdict verdict;
  for (const auto& cell : published)
    verdict.published += cell.cycles;
  const auto path = state_dir / "cyclecast.db";
  storage::OpenOptions options;
  options.create_if_missing = false;
  options.read_only = true;
  auto db = storage::Database::open(path, options);
  if (!db) {
    verdict.problems.push_back("opening " + path.string() + ": " + db.error().message);
    verdict.lost = verdict.published;
    return verdict;
  }
  auto report = db->check();
  if (!report) {
    verdict.integrity = "check failed: " + report.error().message;
  } else {
    verdict.integrity = report->integrity_ok ? "ok" : "not ok";
    for (const auto& m : report->integrity_messages)
      if (!report->integrity_ok) verdict.integrity += "; " + m;
  }
  if (verdict.integrity != "ok") verdict.problems.push_back("integrity: " + verdict.integrity);

  auto counts = db->counts();
  if (counts) {
    verdict.stored = counts->cycles;
    verdict.rejected_rows = counts->rejected;
  }
  std::int64_t champion_since_ms = 0;
  if (auto champion = storage::champion(*db); champion && *champion) {
    champion_since_ms = (*champion)->status_changed_at_ms;
  }
  std::string error;
  const std::int64_t extra_rows = duplicate_rows(path, error);
  if (!error.empty()) verdict.problems.push_back(error);
  for (const auto& cell : published) {
    check_cell(*db, cell, verdict);
    check_forecasts(*db, cell, forecasts, champion_since_ms, verdict);
  }
  verdict.duplicated += std::max<std::int64_t>(extra_rows, 0);
  check_registry(*db, verdict);

  if (verdict.lost > 0) verdict.problems.push_back(std::to_string(verdict.lost) + " records lost");
  if (verdict.duplicated > 0) {
    verdict.problems.push_back(std::to_string(verdict.duplicated) + " records duplicated");
  }
  if (verdict.wrong_value > 0) {
    verdict.problems.push_back(std::to_string(verdict.wrong_value) + " records with a wrong value");
  }
  if (verdict.unexpected > 0) {
    verdict.problems.push_back(std::to_string(verdict.unexpected) + " records never published");
  }
  if (verdict.stored != verdict.published) {
    verdict.problems.push_back("cycles table holds " + std::to_string(verdict.stored) +
                               " rows for " + std::to_string(verdict.published) + " published");
  }
  return verdict;
}

}  // namespace cyclecast::soak
