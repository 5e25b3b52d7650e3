#include "cyclecast/pipeline/metrics.h"

#include <cassert>
#include <cmath>
#include <limits>

namespace cyclecast::pipeline {

int64_t first_crossing_step(const Eigen::Ref<const Eigen::VectorXd>& column, double threshold) {
  for (Eigen::Index j = 0; j < column.size(); ++j) {
    if (column(j) < threshold) return j + 1;
  }
  return column.size() + 1;
}

ForecastMetrics compute_metrics(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& prediction,
                                std::span<const double> last_soh, const MetricsOptions& options) {
  assert(truth.rows() == prediction.rows() && truth.cols() == prediction.cols());
  assert(last_soh.empty() || static_cast<Eigen::Index>(last_soh.size()) == truth.cols());
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  ForecastMetrics m;
  const Eigen::Index h = truth.rows();
  const Eigen::Index n = truth.cols();
  m.windows = n;
  if (n == 0 || h == 0) {
    m.mae = m.mae_10 = m.mae_100 = m.rmse = m.eol_error_cycles = kNaN;
    return m;
  }
  const Eigen::ArrayXXd error = (prediction - truth).array();
  const Eigen::ArrayXXd abs_error = error.abs();
  const double count = static_cast<double>(h * n);
  m.mae = abs_error.sum() / count;
  m.rmse = std::sqrt(error.square().sum() / count);
  const Eigen::ArrayXd by_step = abs_error.rowwise().mean();
  m.mae_by_step.assign(by_step.data(), by_step.data() + h);
  m.mae_10 = by_step(std::min<Eigen::Index>(10, h) - 1);
  m.mae_100 = by_step(h - 1);

  double eol_sum = 0.0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double start = last_soh.empty() ? truth(0, i) : last_soh[static_cast<std::size_t>(i)];
    if (start < options.eol_soh) continue;
    const int64_t true_step = first_crossing_step(truth.col(i), options.eol_soh);
    if (true_step > h) continue;
    const int64_t predicted_step = first_crossing_step(prediction.col(i), options.eol_soh);
    eol_sum += std::abs(static_cast<double>(predicted_step - true_step));
    ++m.eol_windows;
  }
  m.eol_error_cycles = m.eol_windows > 0 ? eol_sum / static_cast<double>(m.eol_windows) : kNaN;
  return m;
}

}  // namespace cyclecast::pipeline
