// Split-conformal calibration and interval coverage (intervals.h).
#include "cyclecast/pipeline/intervals.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>

namespace cyclecast::pipeline {

double weighted_quantile(std::span<const double> values, std::span<const double> weights,
                         double level) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  // The weights are sums of 1/(cells * windows) terms: a relative tolerance keeps rounding from
  // moving a quantile that lands exactly on a cell boundary one value up.
  const double target = level * total * (1.0 - 1e-12);
  double cumulative = 0.0;
  for (size_t i : order) {
    cumulative += weights[i];
    if (cumulative >= target) return values[i];
  }
  return values[order.back()];
}

Result<ConformalQuantiles> conformal_quantiles(const Eigen::MatrixXd& scores,
                                               std::span<const int64_t> window_cells,
                                               double coverage) {
  const auto bad = [](const std::string& message) {
    return make_error(ErrorCode::kInvalidArgument, "interval calibration: " + message);
  };
  if (!(coverage > 0.0 && coverage < 1.0)) return bad("coverage must lie in (0, 1)");
  if (scores.rows() == 0 || scores.cols() == 0) return bad("no calibration windows");
  if (static_cast<size_t>(scores.cols()) != window_cells.size())
    return bad("one cell per calibration window is needed");
  if (!scores.allFinite() || (scores.array() < 0.0).any())
    return bad("scores must be finite and non-negative");

  std::map<int64_t, int64_t> windows_of_cell;
  for (int64_t cell : window_cells)
    ++windows_of_cell[cell];
  const auto cells = static_cast<double>(windows_of_cell.size());
  std::vector<double> weights;
  weights.reserve(window_cells.size());
  for (int64_t cell : window_cells)
    weights.push_back(1.0 / (cells * static_cast<double>(windows_of_cell[cell])));

  ConformalQuantiles q;
  q.coverage = coverage;
  q.cells = static_cast<int64_t>(windows_of_cell.size());
  q.windows = scores.cols();
  const auto windows = static_cast<double>(scores.cols());
  const double rank = std::ceil((windows + 1.0) * coverage - 1e-9);
  q.capped = rank > windows;
  q.level = std::min(1.0, rank / windows);
  q.few_cells = std::ceil((cells + 1.0) * coverage - 1e-9) > cells;
  std::vector<double> row(static_cast<size_t>(scores.cols()));
  for (Eigen::Index k = 0; k < scores.rows(); ++k) {
    for (Eigen::Index j = 0; j < scores.cols(); ++j)
      row[static_cast<size_t>(j)] = scores(k, j);
    q.half_width.push_back(weighted_quantile(row, weights, q.level));
  }
  return q;
}

namespace {

void add_column(IntervalCoverage& c, const Eigen::MatrixXd& truth, const Eigen::MatrixXd& lower,
                const Eigen::MatrixXd& upper, Eigen::Index j, int64_t& inside, double& width) {
  for (Eigen::Index k = 0; k < truth.rows(); ++k) {
    if (lower(k, j) <= truth(k, j) && truth(k, j) <= upper(k, j)) ++inside;
    width += upper(k, j) - lower(k, j);
  }
  ++c.windows;
}

}  // namespace

IntervalCoverage interval_coverage(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& lower,
                                   const Eigen::MatrixXd& upper, std::span<const int64_t> columns) {
  IntervalCoverage c;
  c.windows = 0;
  int64_t inside = 0;
  double width = 0.0;
  if (columns.empty()) {
    for (Eigen::Index j = 0; j < truth.cols(); ++j)
      add_column(c, truth, lower, upper, j, inside, width);
  } else {
    for (int64_t j : columns)
      add_column(c, truth, lower, upper, static_cast<Eigen::Index>(j), inside, width);
  }
  const double values = static_cast<double>(c.windows) * static_cast<double>(truth.rows());
  if (values > 0.0) {
    c.coverage = static_cast<double>(inside) / values;
    c.mean_width = width / values;
  }
  return c;
}

std::vector<std::pair<std::string, IntervalCoverage>> interval_coverage_by_group(
    const Eigen::MatrixXd& truth, const Eigen::MatrixXd& lower, const Eigen::MatrixXd& upper,
    std::span<const std::string> groups) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> members;
  for (size_t j = 0; j < groups.size(); ++j) {
    auto it = std::find_if(members.begin(), members.end(),
                           [&](const auto& m) { return m.first == groups[j]; });
    if (it == members.end()) it = members.insert(members.end(), {groups[j], {}});
    it->second.push_back(static_cast<int64_t>(j));
  }
  std::vector<std::pair<std::string, IntervalCoverage>> out;
  for (const auto& [group, columns] : members)
    out.emplace_back(group, interval_coverage(truth, lower, upper, columns));
  return out;
}

std::vector<double> coverage_by_step(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& lower,
                                     const Eigen::MatrixXd& upper) {
  std::vector<double> out;
  for (Eigen::Index k = 0; k < truth.rows(); ++k) {
    const auto inside = ((lower.row(k).array() <= truth.row(k).array()) &&
                         (truth.row(k).array() <= upper.row(k).array()))
                            .count();
    out.push_back(truth.cols() > 0 ? static_cast<double>(inside) / static_cast<double>(truth.cols())
                                   : std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

std::vector<int32_t> half_width_table(std::span<const double> half_width, double output_scale) {
  constexpr double kMax = 1 << 30;
  std::vector<int32_t> table;
  for (double w : half_width) {
    const double steps = std::ceil(w / output_scale);
    table.push_back(
        static_cast<int32_t>(std::clamp(std::isfinite(steps) ? steps : kMax, 0.0, kMax)));
  }
  return table;
}

namespace {

constexpr const char* kCoverageKey = "pipeline.interval.coverage";
constexpr const char* kHalfWidthKey = "pipeline.interval.half_width";

std::string round_trip_text(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::optional<double> parse_number(const std::string& text) {
  double value = 0.0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

Error bad_key(const char* key, const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument, std::string("model metadata ") + key + " " + why);
}

}  // namespace

std::map<std::string, std::string> interval_metadata(const IntervalReport& report) {
  std::string widths;
  for (double w : report.calibration.half_width)
    widths += (widths.empty() ? "" : ",") + round_trip_text(w);
  return {{kCoverageKey, round_trip_text(report.calibration.coverage)}, {kHalfWidthKey, widths}};
}

Result<std::optional<ModelIntervals>> intervals_from_metadata(
    const std::map<std::string, std::string>& metadata, int64_t horizon) {
  const auto coverage = metadata.find(kCoverageKey);
  const auto widths = metadata.find(kHalfWidthKey);
  if (coverage == metadata.end() && widths == metadata.end())
    return std::optional<ModelIntervals>();
  if (coverage == metadata.end()) return bad_key(kCoverageKey, "is missing");
  if (widths == metadata.end()) return bad_key(kHalfWidthKey, "is missing");
  ModelIntervals out;
  const auto c = parse_number(coverage->second);
  if (!c || !(*c > 0.0 && *c < 1.0)) return bad_key(kCoverageKey, "must be a number in (0, 1)");
  out.coverage = *c;
  const std::string& text = widths->second;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const auto w = parse_number(text.substr(start, comma - start));
    if (!w || !std::isfinite(*w) || *w < 0.0)
      return bad_key(kHalfWidthKey, "must hold finite non-negative numbers");
    out.half_width.push_back(*w);
    if (static_cast<int64_t>(out.half_width.size()) > horizon) break;
    start = comma + 1;
  }
  if (static_cast<int64_t>(out.half_width.size()) != horizon)
    return bad_key(kHalfWidthKey,
                   "must hold one value per horizon step (" + std::to_string(horizon) + ")");
  return std::optional<ModelIntervals>(std::move(out));
}

}  // namespace cyclecast::pipeline
