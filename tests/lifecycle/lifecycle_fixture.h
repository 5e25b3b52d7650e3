// Shared by the lifecycle tests: a real cyclecast database of generated fading cells and a
// Retrainer configuration small enough that a whole run takes seconds.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclecast/lifecycle/retrainer.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::lifecycle::testing {

// `cells` cells of `cycles` cycles fading at different, slowly accelerating rates (the data of
// tests/pipeline/train_test.cc), written through storage::Database as the daemon stores them.
inline void write_fading_cells(const std::filesystem::path& path, int cells, std::int64_t cycles) {
  auto db = storage::Database::open(path);
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::vector<storage::CellInfo> infos;
  std::vector<storage::CycleRecord> records;
  for (int c = 0; c < cells; ++c) {
    storage::CellInfo cell;
    cell.cell_id = "t" + std::to_string(c);
    cell.rig_id = "rig-a";
    cell.rated_capacity_ah = 1.1;
    infos.push_back(cell);
    const double rate = 1e-4 * (1.0 + 0.37 * (c % 7));
    for (std::int64_t k = 1; k <= cycles; ++k) {
      const double t = static_cast<double>(k);
      const double soh = 1.0 - rate * t - rate * 4e-3 * t * t + 0.0004 * std::sin(0.7 * t + c);
      storage::CycleRecord r;
      r.cell_id = cell.cell_id;
      r.cycle = k;
      r.discharge_capacity_ah = 1.1 * soh;
      r.source = "test";
      records.push_back(r);
    }
  }
  ASSERT_TRUE(db->upsert_cells(infos).ok());
  auto written = db->write_cycles(records);
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_EQ(written->inserted, records.size());
}

// W = 20, H = 10, one width-4 student, a one-second teacher.
inline RetrainerConfig tiny_config(const std::filesystem::path& database,
                                   const std::filesystem::path& state) {
  RetrainerConfig config;
  config.database_path = database;
  config.state_dir = state;
  config.protocol_options.input_len = 20;
  config.protocol_options.horizon = 10;
  config.protocol_options.train_stride = 2;
  // An idle-class run crawls while other tests use the CPU; the priority is checked on a run
  // that trains nothing (retrainer_test.cc).
  config.lower_priority = false;
  auto& o = config.training;
  o.teacher = pipeline::TeacherKind::kLiquid;
  o.teacher_budget_s = 1.0;
  o.teacher_max_epochs = 2;
  o.widths = {4};
  o.features = 3;
  o.prune_ratios = {};
  o.student_epochs = 2;
  o.stage2_epochs = 1;
  o.min_student_steps = 0;
  o.min_stage2_steps = 0;
  o.calibration_windows = 64;
  o.threads = 2;
  return config;
}

}  // namespace cyclecast::lifecycle::testing
