#include "cyclecast/pipeline/augment.h"

#include <algorithm>
#include <cmath>

#include "cyclecast/models/tensor.h"

namespace cyclecast::pipeline {

namespace {

bool all_finite(const Windows& windows, Eigen::Index column) {
  return windows.input_soh.col(column).allFinite() && windows.truth_soh.col(column).allFinite() &&
         std::isfinite(windows.last_soh[static_cast<std::size_t>(column)]);
}

// A SOH a copy may hold: positive and below twice the rated capacity, as a reader accepts.
bool plausible(double soh) {
  return soh > 0.0 && soh < 2.0;
}

// One augmented copy's transform of an absolute SOH: the fade around the last input SOH scaled,
// then the whole multiplied by the gain.
struct Transform {
  double last = 0.0;
  double fade = 1.0;
  double gain = 1.0;
  double operator()(double soh) const { return gain * (last + fade * (soh - last)); }
};

// Appends the copy of column `from` under `transform` as column `to` of `out`.
bool append_copy(const Windows& windows, Eigen::Index from, const FeatureSpec& spec,
                 const Transform& transform, Eigen::Index to, Windows& out) {
  const int64_t w = spec.input_len;
  const int64_t h = spec.horizon;
  std::vector<SeriesRow> rows(static_cast<std::size_t>(w));
  for (int64_t t = 0; t < w; ++t) {
    rows[static_cast<std::size_t>(t)].soh = transform(windows.input_soh(t, from));
    if (!plausible(rows[static_cast<std::size_t>(t)].soh)) return false;
  }
  // The last input row is the window's last SOH: the same transform of it.
  const double last = transform(windows.last_soh[static_cast<std::size_t>(from)]);
  for (int64_t j = 0; j < h; ++j) {
    const double soh = transform(windows.truth_soh(j, from));
    if (!plausible(soh)) return false;
    out.truth_soh(j, to) = soh;
    out.targets(j, to) = static_cast<float>((soh - last) * spec.delta_scale);
  }
  out.inputs.col(to) = encode_input(rows, spec);
  // The optional features are not SOH: the copy keeps the original's encoded rows.
  const int64_t feature_rows = w * static_cast<int64_t>(spec.features.size());
  if (feature_rows > 0) {
    out.inputs.col(to).segment(w + 2, feature_rows) =
        windows.inputs.col(from).segment(w + 2, feature_rows);
  }
  for (int64_t t = 0; t < w; ++t)
    out.input_soh(t, to) = rows[static_cast<std::size_t>(t)].soh;
  out.last_soh[static_cast<std::size_t>(to)] = last;
  out.refs[static_cast<std::size_t>(to)] = windows.refs[static_cast<std::size_t>(from)];
  return true;
}

// The median of the finite values among values[begin, end), or NaN when there is none.
double finite_median(const std::vector<double>& values, std::size_t begin, std::size_t end,
                     std::vector<double>& scratch) {
  scratch.clear();
  for (std::size_t i = begin; i < end; ++i) {
    if (std::isfinite(values[i])) scratch.push_back(values[i]);
  }
  if (scratch.empty()) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t mid = scratch.size() / 2;
  std::nth_element(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(mid),
                   scratch.end());
  const double upper = scratch[mid];
  if (scratch.size() % 2 == 1) return upper;
  const double lower = *std::max_element(scratch.begin(), scratch.begin() + mid);
  return 0.5 * (lower + upper);
}

}  // namespace

Result<void> check_augment_options(const AugmentOptions& options) {
  if (options.copies < 0) {
    return make_error(ErrorCode::kInvalidArgument, "augmented copies must not be negative");
  }
  if (!(options.fade_scale >= 0.0 && options.fade_scale <= 2.0)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the augmentation's fade scale must lie in [0, 2]");
  }
  if (!(options.gain >= 0.0 && options.gain < 0.5)) {
    return make_error(ErrorCode::kInvalidArgument, "the augmentation's gain must lie in [0, 0.5)");
  }
  return {};
}

Windows augment_windows(const Windows& windows, const FeatureSpec& spec,
                        const AugmentOptions& options) {
  const Eigen::Index n = windows.size();
  const Eigen::Index copies = std::max<int64_t>(options.copies, 0);
  Windows out;
  out.inputs.resize(windows.inputs.rows(), n * (1 + copies));
  out.targets.resize(windows.targets.rows(), n * (1 + copies));
  out.input_soh.resize(windows.input_soh.rows(), n * (1 + copies));
  out.truth_soh.resize(windows.truth_soh.rows(), n * (1 + copies));
  out.last_soh.resize(static_cast<std::size_t>(n * (1 + copies)));
  out.refs.resize(static_cast<std::size_t>(n * (1 + copies)));
  out.inputs.leftCols(n) = windows.inputs;
  out.targets.leftCols(n) = windows.targets;
  out.input_soh.leftCols(n) = windows.input_soh;
  out.truth_soh.leftCols(n) = windows.truth_soh;
  std::copy(windows.last_soh.begin(), windows.last_soh.end(), out.last_soh.begin());
  std::copy(windows.refs.begin(), windows.refs.end(), out.refs.begin());
  Eigen::Index next = n;
  for (Eigen::Index i = 0; i < n; ++i) {
    // Each window draws from its own stream, so a window's copies do not depend on whether the
    // windows before it could be copied.
    models::Rng rng(models::derive_seed(options.seed, static_cast<uint64_t>(i)));
    const bool usable = all_finite(windows, i);
    for (Eigen::Index c = 0; c < copies; ++c) {
      Transform transform;
      transform.last = windows.last_soh[static_cast<std::size_t>(i)];
      transform.fade = std::exp(rng.uniform(-options.fade_scale, options.fade_scale));
      transform.gain = 1.0 + rng.uniform(-options.gain, options.gain);
      if (usable && append_copy(windows, i, spec, transform, next, out)) ++next;
    }
  }
  out.inputs.conservativeResize(Eigen::NoChange, next);
  out.targets.conservativeResize(Eigen::NoChange, next);
  out.input_soh.conservativeResize(Eigen::NoChange, next);
  out.truth_soh.conservativeResize(Eigen::NoChange, next);
  out.last_soh.resize(static_cast<std::size_t>(next));
  out.refs.resize(static_cast<std::size_t>(next));
  return out;
}

std::vector<CellSeries> median_smoothed(std::span<const CellSeries> cells, int64_t radius) {
  std::vector<CellSeries> out(cells.begin(), cells.end());
  if (radius <= 0) return out;
  std::vector<double> soh;
  std::vector<double> scratch;
  const auto r = static_cast<std::size_t>(radius);
  for (CellSeries& cell : out) {
    const std::size_t n = cell.rows.size();
    soh.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      soh[i] = cell.rows[i].soh;
    for (std::size_t i = 0; i < n; ++i) {
      const double median = finite_median(soh, i >= r ? i - r : 0, std::min(n, i + r + 1), scratch);
      if (std::isfinite(median)) cell.rows[i].soh = median;
    }
  }
  return out;
}

}  // namespace cyclecast::pipeline
