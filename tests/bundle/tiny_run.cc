#include "tiny_run.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "cyclecast/pipeline/train.h"
#include "temp_dir.h"

namespace cyclecast::bundle::testing {
namespace {

namespace fs = std::filesystem;
using cyclecast::testing::TempDir;
using cyclecast::testing::write_file;

// A severson-raw folder of `cells` cells fading at different, slowly accelerating rates.
void write_fading_cells(const fs::path& dir, int cells, int64_t cycles) {
  fs::create_directories(dir);
  std::string cycles_csv =
      "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min\n";
  std::string cells_csv =
      "cell_id,batch,policy,cycle_life,in_paper_124,paper_split,continuation_of,continued_in,"
      "dlnet_id\n";
  for (int c = 0; c < cells; ++c) {
    const std::string id = "t" + std::to_string(c);
    cells_csv += id + ",x,p,1,1," + (c % 3 == 2 ? "test1" : "train") + ",,,\n";
    const double rate = 1e-4 * (1.0 + 0.37 * (c % 7));
    for (int64_t k = 1; k <= cycles; ++k) {
      const double t = static_cast<double>(k);
      const double soh = 1.0 - rate * t - rate * 4e-3 * t * t + 0.0004 * std::sin(0.7 * t + c);
      cycles_csv += id + ",x," + std::to_string(k) + "," + std::to_string(1.1 * soh) +
                    ",1.0,0.017,32,30,29,10.5\n";
    }
  }
  write_file(dir / "cycles.csv", cycles_csv);
  write_file(dir / "cells.csv", cells_csv);
}

fs::path make_run(const TempDir& tmp) {
  write_fading_cells(tmp / "data", 18, 160);
  pipeline::ProtocolOptions p;
  p.input_len = 20;
  p.horizon = 10;
  p.use_optional_features = false;
  p.train_stride = 2;
  auto protocol = pipeline::heldout_protocol(tmp / "data", p);
  if (!protocol) {
    ADD_FAILURE() << protocol.error().message;
    return {};
  }
  pipeline::TrainingOptions options;
  options.teacher = pipeline::TeacherKind::kLiquid;
  options.teacher_budget_s = 1.0;
  options.teacher_max_epochs = 2;
  options.widths = {4};
  options.features = 3;
  options.prune_ratios = {};
  options.student_epochs = 2;
  options.stage2_epochs = 1;
  options.calibration_windows = 64;
  options.threads = 2;
  const fs::path out = tmp / "run";
  auto result = pipeline::run_training(*protocol, options, out.string());
  if (!result) ADD_FAILURE() << result.error().message;
  return out;
}

}  // namespace

const fs::path& tiny_run_dir() {
  static const auto tmp = std::make_unique<TempDir>();
  static const fs::path run = make_run(*tmp);
  return run;
}

}  // namespace cyclecast::bundle::testing
