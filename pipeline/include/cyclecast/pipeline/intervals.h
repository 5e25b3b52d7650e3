// Prediction intervals of the forecasts (docs/pipeline.md, "Prediction intervals"): per-horizon-
// step split-conformal half-widths calibrated on the validation cells, and the empirical coverage
// of intervals on held-out windows, overall and by group (SOH band).
//
// The calibration works on any nonconformity scores (>= 0, one per step of each window). The
// training run uses the int8 student's |residual| divided by the window's amplitude: the student
// forecasts in amplitude units (windows.h), so a half-width in those units becomes one per-step
// integer in the int8 output scale that the node adds to and subtracts from its forecast.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::pipeline {

inline constexpr double kDefaultIntervalCoverage = 0.9;

// Per-step half-widths from split-conformal calibration.
struct ConformalQuantiles {
  std::vector<double> half_width;  // H values, in the scores' units
  double coverage = 0.0;           // the nominal coverage asked for
  // Level of the quantile taken of the cell-weighted score distribution: the finite-sample
  // conformal rank over n windows, ceil((n + 1) c) / n for nominal coverage c, at most 1.
  double level = 0.0;
  int64_t cells = 0, windows = 0;
  // True when (n + 1) c > n: half_width is the largest score.
  bool capped = false;
  // True with fewer than c / (1 - c) cells (9 at 90 %): a rank over cells (the guarantee for a
  // new cell) would need a quantile beyond the largest score; the coverage is then nominal.
  bool few_cells = false;
};

// Windows are not exchangeable (the windows of one cell share its history), cells are: every
// cell weighs the same, spread evenly over its windows, so a cell with many windows does not
// set the quantile. The level is the finite-sample rank over windows; a rank over cells would be
// the strict guarantee, but with the few validation cells of a run (4 to 12) it is always the
// largest score, and intervals that wide cover 100 % (docs/pipeline.md, "Prediction intervals").
// scores: H x n, each >= 0 and finite; window_cells: n cell indices (any integers, equal for
// windows of one cell). kInvalidArgument for n = 0, H = 0, a size mismatch, a negative or
// non-finite score, or coverage outside (0, 1).
Result<ConformalQuantiles> conformal_quantiles(const Eigen::MatrixXd& scores,
                                               std::span<const int64_t> window_cells,
                                               double coverage);

// Smallest value v such that the weights of the values <= v sum to at least `level` of the total
// (level in (0, 1]; values and weights of equal, non-zero size, weights > 0).
double weighted_quantile(std::span<const double> values, std::span<const double> weights,
                         double level);

// How well intervals cover the truth: over every step of every window.
struct IntervalCoverage {
  int64_t windows = 0;
  double coverage = std::numeric_limits<double>::quiet_NaN();    // share of lower <= truth <= upper
  double mean_width = std::numeric_limits<double>::quiet_NaN();  // mean of upper - lower
};

// truth, lower, upper: H x n of equal shapes; columns selects windows (all when empty). NaN
// figures when no window is selected.
IntervalCoverage interval_coverage(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& lower,
                                   const Eigen::MatrixXd& upper,
                                   std::span<const int64_t> columns = {});

// The same per group (e.g. SOH band) of the windows, groups in order of first appearance;
// groups has one entry per column.
std::vector<std::pair<std::string, IntervalCoverage>> interval_coverage_by_group(
    const Eigen::MatrixXd& truth, const Eigen::MatrixXd& lower, const Eigen::MatrixXd& upper,
    std::span<const std::string> groups);

// Coverage at each step 1..H over every window.
std::vector<double> coverage_by_step(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& lower,
                                     const Eigen::MatrixXd& upper);

// Half-widths (amplitude units) as integers of the int8 output scale, rounded up so that the
// integer interval is never narrower than the calibrated one, and at most 2^30 (the node adds
// and subtracts them from an int32 forecast with saturation).
std::vector<int32_t> half_width_table(std::span<const double> half_width, double output_scale);

// What the run report shows of a run's intervals (report.json "intervals", report.html).
struct IntervalCoverageRow {
  std::string group;  // "all" or an SOH band
  IntervalCoverage model, baseline;
};
struct IntervalReport {
  std::string method;    // one sentence: how they were calibrated
  std::string baseline;  // the baseline whose residual quantiles give the comparison widths
  ConformalQuantiles calibration;         // in amplitude units
  std::vector<int32_t> table;             // the int8 table shipped with the model
  std::vector<IntervalCoverageRow> rows;  // "all" first, then each band
  std::vector<double> coverage_by_step;   // the model's, on the test windows
  std::string note;                       // e.g. why the finite-sample level was capped
};

// The intervals in a model file's metadata (docs/pipeline.md, "Prediction intervals"):
// pipeline.interval.coverage (nominal) and pipeline.interval.half_width (H comma-separated
// values, amplitude units, shortest round-trip text). A file without them (a model from before
// intervals) forecasts without an interval.
struct ModelIntervals {
  double coverage = 0.0;
  std::vector<double> half_width;
};
std::map<std::string, std::string> interval_metadata(const IntervalReport& report);
// nullopt when the keys are absent; kInvalidArgument naming the key when one is present without
// the other, does not parse, is negative or not finite, or does not hold `horizon` values.
Result<std::optional<ModelIntervals>> intervals_from_metadata(
    const std::map<std::string, std::string>& metadata, int64_t horizon);

}  // namespace cyclecast::pipeline
