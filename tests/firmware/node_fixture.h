// Shared by the node and export tests: generated SOH series with features, a FeatureSpec fitted
// on them, and an int8 student quantized on their windows (random weights: the tests check that
// the node computes what the host computes, not that the forecast is good).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cyclecast/models/quantize.h"
#include "cyclecast/models/student.h"
#include "cyclecast/pipeline/windows.h"

namespace cyclecast::testing {

// Fading cells: a slow linear fade, then a knee, with measurement noise; every 7th row has no
// temperature and every 11th no resistance, so missing values are exercised.
inline std::vector<pipeline::CellSeries> generated_cells(int count, int rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.0015);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<pipeline::CellSeries> cells;
  for (int c = 0; c < count; ++c) {
    pipeline::CellSeries cell;
    cell.cell_id = "gen" + std::to_string(c);
    cell.rated_capacity_ah = 1.1;
    const double start = 1.0 + 0.05 * unit(rng);
    const double fade = 1e-4 * (1.0 + 2.0 * unit(rng));
    const double knee = rows * (0.4 + 0.5 * unit(rng));
    const double speed = 0.01 + 0.02 * unit(rng);
    for (int r = 0; r < rows; ++r) {
      pipeline::SeriesRow row;
      row.cycle = r + 1;
      const double t = static_cast<double>(r);
      row.soh = start - fade * t -
                0.002 * (std::exp(speed * (t - knee)) - std::exp(-speed * knee)) + noise(rng);
      row.ir_ohm = r % 11 == 5 ? std::nan("") : 0.016 + 2e-6 * t + 1e-4 * unit(rng);
      row.temperature_c = r % 7 == 3 ? std::nan("") : 31.0 + 2.0 * unit(rng);
      row.charge_time_min = 10.0 + 0.5 * unit(rng);
      cell.rows.push_back(row);
    }
    cells.push_back(std::move(cell));
  }
  return cells;
}

// A quantized student of the given width for `spec`, calibrated on `windows`.
inline models::QuantizedStudent random_student(const pipeline::FeatureSpec& spec,
                                               const pipeline::Windows& windows, int64_t width,
                                               uint64_t seed, int64_t features = 8,
                                               int64_t euler_steps = 1) {
  const models::StudentConfig config{spec.encoded_size(), features,     width,
                                     euler_steps,         spec.horizon, true};
  const models::StudentModel<float> model(config);
  models::Vector<float> params(model.layout().size());
  model.init(params.data(), seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> perturb(-0.05f, 0.05f);
  for (int64_t i = 0; i < params.size(); ++i)
    params(i) += perturb(rng);
  const Eigen::MatrixXf calibration = windows.inputs.topRows(windows.inputs.rows() - 1);
  auto q = models::quantize_student(models::student_weights(model, params.data()), calibration);
  return std::move(*q);
}

}  // namespace cyclecast::testing
