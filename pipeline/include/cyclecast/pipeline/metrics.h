// Forecast metrics, computed the same way for every model and baseline (docs/pipeline.md,
// "Metrics"). Inputs are absolute SOH, H x n (one window per column).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <span>
#include <vector>

namespace cyclecast::pipeline {

struct ForecastMetrics {
  double mae = 0.0;      // mean |pred - truth| over every step of every window
  double mae_10 = 0.0;   // the same at step 10 only (step H when H < 10)
  double mae_100 = 0.0;  // the same at the last step, H (named for the default H = 100)
  double rmse = 0.0;
  // Mean |predicted - true| first step below the end-of-life threshold, in cycles, over the
  // windows whose truth crosses it within the horizon (eol_windows of them; NaN when none). A
  // prediction that never crosses counts as crossing at step H + 1.
  double eol_error_cycles = 0.0;
  int64_t eol_windows = 0;
  int64_t windows = 0;
  std::vector<double> mae_by_step;  // H values: MAE at step 1..H
};

struct MetricsOptions {
  double eol_soh = 0.8;  // end of life: 80 % of rated capacity
};

// First step (1-based) at which `column` is below `threshold`, or rows + 1 when it never is.
int64_t first_crossing_step(const Eigen::Ref<const Eigen::VectorXd>& column, double threshold);

// `last_soh` (n values, or empty) is each window's last input SOH: a window counts for the
// end-of-life error when its last input is at or above the threshold and its truth falls below
// within the horizon. With `last_soh` empty the first truth step stands in for the last input.
// With n = 0 every figure is NaN and windows is 0. truth and prediction must have equal shapes.
ForecastMetrics compute_metrics(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& prediction,
                                std::span<const double> last_soh = {},
                                const MetricsOptions& options = {});

}  // namespace cyclecast::pipeline
