// Helpers shared by the storage tests: records with known values, and raw SQLite access to a
// database file behind the Database API's back (to plant newer versions, triggers, ...).
#pragma once

#include <sqlite3.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/storage/database.h"

namespace cyclecast::storage::testing {

// A plausible cycle of `cell_id` whose values depend on the cycle number only.
inline CycleRecord make_cycle(const std::string& cell_id, std::int64_t cycle) {
  CycleRecord record;
  record.cell_id = cell_id;
  record.cycle = cycle;
  record.discharge_capacity_ah = 1.07 - 0.0001 * static_cast<double>(cycle);
  record.charge_capacity_ah = 1.071 - 0.0001 * static_cast<double>(cycle);
  record.internal_resistance_ohm = 0.0165;
  record.temperature_min_c = 29.5;
  record.temperature_avg_c = 31.25;
  record.temperature_max_c = 34.75;
  record.charge_time_min = 10.5;
  record.measured_at_ms = 1'500'000'000'000 + cycle * 3'600'000;
  record.received_at_ms = 1'600'000'000'000 + cycle;
  record.source = "test";
  return record;
}

inline std::vector<CycleRecord> make_cycles(const std::string& cell_id, std::int64_t first,
                                            std::int64_t count) {
  std::vector<CycleRecord> records;
  for (std::int64_t cycle = first; cycle < first + count; ++cycle) {
    records.push_back(make_cycle(cell_id, cycle));
  }
  return records;
}

inline CellInfo make_cell(const std::string& cell_id) {
  CellInfo cell;
  cell.cell_id = cell_id;
  cell.rig_id = "rig-a";
  cell.chemistry = "LFP/graphite";
  cell.rated_capacity_ah = 1.1;
  cell.charge_policy = "5.4C(40%)-3.6C";
  cell.metadata_json = R"({"batch":"test"})";
  return cell;
}

// Runs SQL on the file through a separate connection; fails the test on error.
inline void raw_exec(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  const std::string error = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << error;
}

// The integer a single-value query returns, through a separate connection (-1 on error).
inline std::int64_t raw_int(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::int64_t value = -1;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

}  // namespace cyclecast::storage::testing
