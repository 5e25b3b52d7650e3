// Generated fading cells for tests that train or forecast: `cells` cells fading at different,
// slowly accelerating rates, written through storage::Database as the daemon stores them, or as
// CSV files. The SOH of every cycle is a known function, so tests can check what was stored and
// scored.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/storage/database.h"
#include "temp_dir.h"

namespace cyclecast::testing {

inline constexpr double kFadingRatedAh = 1.1;

inline std::string fading_cell_id(int cell) {
  return "t" + std::to_string(cell);
}

inline double fading_soh(int cell, std::int64_t cycle) {
  const double rate = 1e-4 * (1.0 + 0.37 * (cell % 7));
  const double t = static_cast<double>(cycle);
  return 1.0 - rate * t - rate * 4e-3 * t * t + 0.0004 * std::sin(0.7 * t + cell);
}

// Cells t0..t<cells-1> of rig "rig-a", rated 1.1 Ah, cycles 1..`cycles`.
inline void write_fading_cells(const std::filesystem::path& path, int cells, std::int64_t cycles) {
  auto db = storage::Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::vector<storage::CellInfo> infos;
  std::vector<storage::CycleRecord> records;
  for (int c = 0; c < cells; ++c) {
    storage::CellInfo cell;
    cell.cell_id = fading_cell_id(c);
    cell.rig_id = "rig-a";
    cell.rated_capacity_ah = kFadingRatedAh;
    infos.push_back(cell);
    for (std::int64_t k = 1; k <= cycles; ++k) {
      storage::CycleRecord r;
      r.cell_id = cell.cell_id;
      r.cycle = k;
      r.discharge_capacity_ah = kFadingRatedAh * fading_soh(c, k);
      r.source = "test";
      records.push_back(r);
    }
  }
  ASSERT_TRUE(db->upsert_cells(infos).ok());
  auto written = db->write_cycles(records);
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_EQ(written->inserted, records.size());
}

// The same cells as a severson-raw folder (cycles.csv, cells.csv) for the CSV readers: every third
// cell in the paper protocol's test split.
inline void write_fading_cells_csv(const std::filesystem::path& dir, int cells,
                                   std::int64_t cycles) {
  std::filesystem::create_directories(dir);
  std::string cycles_csv =
      "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";
  std::string cells_csv =
      "cell_id,batch,policy,cycle_life,in_paper_124,paper_split,continuation_of,continued_in,"
      "dlnet_id\n";
  for (int c = 0; c < cells; ++c) {
    const std::string id = fading_cell_id(c);
    cells_csv += id + ",x,p,1,1," + (c % 3 == 2 ? "test1" : "train") + ",,,\n";
    for (std::int64_t k = 1; k <= cycles; ++k) {
      cycles_csv += id + ",x," + std::to_string(k) + "," +
                    std::to_string(kFadingRatedAh * fading_soh(c, k)) +
                    ",1.0,0.017,32,30,29,10.5\n";
    }
  }
  write_file(dir / "cycles.csv", cycles_csv);
  write_file(dir / "cells.csv", cells_csv);
}

}  // namespace cyclecast::testing
