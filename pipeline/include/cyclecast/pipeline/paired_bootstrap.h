// Whether one model forecasts better than another by more than the data's noise
// (docs/lifecycle.md, "Promotion gate"): a paired bootstrap over cells. Windows of one cell are
// strongly correlated (they overlap and share the cell's fade), so the unit resampled is the cell,
// never the window: each resample draws as many cells as there are, with replacement, and scores
// both models on the same drawn cells.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// One model's absolute error summed over every forecast step of every window of one cell.
struct CellError {
  std::string cell;
  double abs_error_sum = 0.0;
  int64_t values = 0;  // windows x horizon steps summed
};

// The errors by cell of `prediction` against `truth` (both H x n, absolute SOH), window i
// belonging to window_cells[i]; cells in the order of their first window.
std::vector<CellError> errors_by_cell(const Eigen::MatrixXd& truth,
                                      const Eigen::MatrixXd& prediction,
                                      std::span<const std::string> window_cells);

// The MAE of errors by cell: every step of every window weighs the same (ForecastMetrics::mae).
double pooled_mae(std::span<const CellError> errors);

struct BootstrapOptions {
  int64_t resamples = 2000;
  uint64_t seed = 20261203;  // fixed: the same errors always give the same bound
  double level = 0.90;       // one-sided: the bound lies below the improvement with this odds
};

struct PairedBootstrap {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  int64_t cells = 0;
  double reference_mae = kNaN;  // pooled over every cell
  double candidate_mae = kNaN;
  double improvement =
      kNaN;  // reference_mae - candidate_mae: positive when the candidate is better
  // The (1 - level) quantile of the resampled improvements. NaN with one cell: the spread between
  // cells cannot be told from one, and a bound equal to the point figure would claim certainty.
  double lower = kNaN;
};

// Compares `candidate` with `reference` on the same cells (same names, same order, same values
// per cell). kInvalidArgument when they differ, when there is no cell, when a cell has no value,
// or when resamples < 1 or level is not in (0, 1).
Result<PairedBootstrap> paired_bootstrap(std::span<const CellError> reference,
                                         std::span<const CellError> candidate,
                                         const BootstrapOptions& options = {});

}  // namespace cyclecast::pipeline
