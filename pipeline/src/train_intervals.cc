// The prediction intervals of a run's chosen student (train_steps.h; docs/pipeline.md,
// "Prediction intervals"): split-conformal half-widths per step from the int8 student's
// validation residuals, their coverage on the test windows, and the ridge baseline's residual
// quantiles calibrated the same way for comparison.
#include <cmath>

#include "cyclecast/pipeline/baselines.h"
#include "train_steps.h"

namespace cyclecast::pipeline::training {

namespace {

Eigen::RowVectorXd gains(const Windows& windows) {
  return windows.inputs.row(windows.inputs.rows() - 1).cast<double>();
}

std::vector<int64_t> window_cells(const Windows& windows) {
  std::vector<int64_t> cells;
  cells.reserve(windows.refs.size());
  for (const WindowRef& ref : windows.refs)
    cells.push_back(ref.cell);
  return cells;
}

// The int8 student's forecasts in amplitude units (what cc_student_forecast outputs, dequantized).
Result<Eigen::MatrixXd> amplitude_forecasts(const models::QuantizedStudent& student,
                                            const Windows& windows) {
  auto out = models::run_quantized(student, windows.inputs.topRows(windows.inputs.rows() - 1));
  if (!out) return out.error();
  return Eigen::MatrixXd(out->cast<double>());
}

// |truth - forecast| in amplitude units: the residual divided by the window's gain.
Eigen::MatrixXd amplitude_scores(const Windows& windows, const Eigen::MatrixXd& forecast) {
  Eigen::MatrixXd truth = windows.targets.cast<double>();
  truth.array().rowwise() /= gains(windows).array();
  return (truth - forecast).cwiseAbs();
}

struct Bounds {
  Eigen::MatrixXd lower, upper;
};

// Absolute-SOH bounds of the int8 student's forecasts with the table's half-widths.
Result<Bounds> student_bounds(const models::QuantizedStudent& student,
                              const std::vector<int32_t>& table, const Windows& windows,
                              const FeatureSpec& spec) {
  auto amp = amplitude_forecasts(student, windows);
  if (!amp) return amp.error();
  Eigen::MatrixXd half(amp->rows(), amp->cols());
  for (Eigen::Index k = 0; k < half.rows(); ++k)
    half.row(k).setConstant(static_cast<double>(table[static_cast<size_t>(k)]) *
                            student.output_scale());
  const Eigen::RowVectorXd g = gains(windows);
  Eigen::MatrixXd lower = *amp - half, upper = *amp + half;
  lower.array().rowwise() *= g.array();
  upper.array().rowwise() *= g.array();
  return Bounds{to_soh(lower, windows.last_soh, spec), to_soh(upper, windows.last_soh, spec)};
}

Bounds constant_bounds(const Eigen::MatrixXd& forecast, const std::vector<double>& half_width) {
  const Eigen::VectorXd half = Eigen::Map<const Eigen::VectorXd>(
      half_width.data(), static_cast<Eigen::Index>(half_width.size()));
  return {forecast.colwise() - half, forecast.colwise() + half};
}

std::string percent(double x) {
  return std::to_string(static_cast<int>(std::lround(100.0 * x))) + " %";
}

}  // namespace

Result<IntervalReport> calibrate_intervals(const EvalProtocol& protocol,
                                           const models::QuantizedStudent& student,
                                           double coverage) {
  auto validation = amplitude_forecasts(student, protocol.validation);
  if (!validation) return validation.error();
  auto q = conformal_quantiles(amplitude_scores(protocol.validation, *validation),
                               window_cells(protocol.validation), coverage);
  if (!q) return q.error();
  IntervalReport r;
  r.method =
      "split-conformal on the int8 student's |residual| / window amplitude, per step, over the "
      "validation cells (each cell weighs the same; finite-sample rank over windows)";
  r.calibration = *q;
  r.table = half_width_table(q->half_width, student.output_scale());
  const std::string needed =
      std::to_string(static_cast<int64_t>(std::ceil(coverage / (1.0 - coverage) - 1e-9)));
  if (q->capped) {
    r.note = std::to_string(q->windows) + " validation windows cannot support " +
             percent(coverage) + ": the half-widths are the largest validation residuals";
  } else if (q->few_cells) {
    r.note = std::to_string(q->cells) + " validation cells, fewer than the " + needed +
             " a guarantee for a new cell at " + percent(coverage) +
             " needs: the coverage is nominal, measured on the test cells";
  }

  const Windows& test = protocol.test;
  auto bounds = student_bounds(student, r.table, test, protocol.spec);
  if (!bounds) return bounds.error();

  // The comparison: the ridge baseline's absolute residual quantiles, calibrated the same way.
  Bounds baseline{Eigen::MatrixXd::Constant(test.truth_soh.rows(), test.size(), std::nan("")),
                  Eigen::MatrixXd::Constant(test.truth_soh.rows(), test.size(), std::nan(""))};
  if (auto ridge = fit_ridge(protocol.train, protocol.spec, protocol.ridge_lambda)) {
    const Windows& val = protocol.validation;
    const Eigen::MatrixXd val_soh =
        to_soh(ridge->predict(val, protocol.spec), val.last_soh, protocol.spec);
    auto ridge_q =
        conformal_quantiles((val.truth_soh - val_soh).cwiseAbs(), window_cells(val), coverage);
    if (ridge_q) {
      r.baseline = "ridge";
      baseline =
          constant_bounds(to_soh(ridge->predict(test, protocol.spec), test.last_soh, protocol.spec),
                          ridge_q->half_width);
    }
  }

  r.rows.push_back({"all", interval_coverage(test.truth_soh, bounds->lower, bounds->upper),
                    interval_coverage(test.truth_soh, baseline.lower, baseline.upper)});
  const auto model_bands =
      interval_coverage_by_group(test.truth_soh, bounds->lower, bounds->upper, protocol.test_bands);
  const auto baseline_bands = interval_coverage_by_group(test.truth_soh, baseline.lower,
                                                         baseline.upper, protocol.test_bands);
  for (size_t i = 0; i < model_bands.size(); ++i)
    r.rows.push_back({model_bands[i].first, model_bands[i].second, baseline_bands[i].second});
  r.coverage_by_step = coverage_by_step(test.truth_soh, bounds->lower, bounds->upper);
  return r;
}

}  // namespace cyclecast::pipeline::training
