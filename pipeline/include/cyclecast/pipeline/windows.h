// The forecasting representation: windows of W input cycles and H target cycles of one cell,
// encoded as model input and output vectors (docs/pipeline.md, "Features and windows").
//
// Input vector, representation 2 (size FeatureSpec::input_size()), with soh_last the last input
// SOH and amp = max(|soh[0] - soh_last|, amp_floor) the window's amplitude:
//   [0, W)   curve shape   (soh[t] - soh_last) / amp
//   W        SOH level     (soh_last - level_offset) / level_scale
//   W + 1    log amplitude (ln(amp) - log_amp_mean) / log_amp_std
//   then W values per optional feature present: (value[t] - mean) / std (missing values: 0)
//   last     gain          amp * delta_scale, not normalized (gain_index())
// The first encoded_size() rows are what a model's encoder sees; models multiply their output by
// the gain, so they learn the curve's shape apart from its amplitude, which forecasts better.
// Output vector (size H): (soh[T + j] - soh_last) * delta_scale, j = 1..H.
// The linear baselines keep the plain design (linear_inputs): on the v2 encoding a linear map
// of the inputs is no longer a linear autoregressive model.
// Everything needed to encode and decode lives in FeatureSpec, which travels in the model file's
// metadata, so a model file is self-describing.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "cyclecast/models/tensor.h"
#include "cyclecast/pipeline/soh_data.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// The optional per-cycle features, in the order they appear in the input vector.
inline constexpr const char* kFeatureIrOhm = "ir_ohm";
inline constexpr const char* kFeatureTemperatureC = "temperature_c";
inline constexpr const char* kFeatureChargeTimeMin = "charge_time_min";

// The value of a named optional feature in a row (NaN for an unknown name).
double feature_value(const SeriesRow& row, const std::string& name);

struct FeatureStats {
  std::string name;  // one of the kFeature* names
  double mean = 0.0;
  double std = 1.0;
};

struct FeatureSpec {
  int64_t input_len = 100;  // W
  int64_t horizon = 100;    // H
  double delta_scale = 100.0;
  double level_offset = 0.0;  // mean of soh_last over the training windows
  double level_scale = 1.0;   // its standard deviation
  // Smallest amplitude a window is normalized by, in SOH: below it (a flat window) the shape
  // would be noise blown up.
  double amp_floor = 0.003;
  double log_amp_mean = 0.0;  // mean of ln(amp) over the training windows
  double log_amp_std = 1.0;   // its standard deviation
  std::vector<FeatureStats> features;

  // W shape values, level, log amplitude, W per feature, gain.
  int64_t input_size() const {
    return input_len + 2 + input_len * static_cast<int64_t>(features.size()) + 1;
  }
  // The row of the gain: the last one.
  int64_t gain_index() const { return input_size() - 1; }
  // The rows a model's encoder sees: everything except the gain.
  int64_t encoded_size() const { return input_size() - 1; }
  // Keys "pipeline.representation" ("2"), "pipeline.input_len", "pipeline.horizon",
  // "pipeline.delta_scale", "pipeline.level_offset", "pipeline.level_scale",
  // "pipeline.amp_floor", "pipeline.log_amp_mean", "pipeline.log_amp_std", "pipeline.features"
  // (comma-separated names, may be empty) and "pipeline.feature.<name>.mean" / ".std"; doubles
  // written so they read back exactly.
  std::map<std::string, std::string> to_metadata() const;
  // Reads what to_metadata() wrote (other keys ignored). kInvalidArgument naming the key when
  // one is missing, does not parse, or is out of range (representation 2 only; W, H >= 1;
  // scales, stds and amp_floor > 0 and finite; known feature names, no repeats).
  static Result<FeatureSpec> from_metadata(const std::map<std::string, std::string>& metadata);
};

struct FeatureOptions {
  int64_t input_len = 100;
  int64_t horizon = 100;
  double delta_scale = 100.0;
  double amp_floor = 0.003;  // FeatureSpec::amp_floor
  // Use the optional features at all (false: SOH only).
  bool use_optional_features = true;
  // An optional feature is used when at least this fraction of the training rows report it.
  double min_feature_coverage = 0.5;
};

// Statistics from the training cells only: the level statistics over the last input SOH and the
// log-amplitude statistics over ln(amp) of every stride-1 window the cells hold, each feature's
// mean and std over its finite values in those cells. kInvalidArgument when W or H < 1,
// delta_scale or amp_floor is not positive, or no training cell is long enough for one window.
Result<FeatureSpec> fit_feature_spec(std::span<const CellSeries> cells,
                                     const FeatureOptions& options = {});

struct WindowRef {
  int64_t cell = 0;       // index into the cells the windows were made from
  int64_t first_row = 0;  // index of the first input row in that cell's rows
};

// n windows, one per column.
struct Windows {
  models::Matrix<float> inputs;   // input_size x n (representation 2)
  models::Matrix<float> targets;  // H x n (normalized deltas)
  std::vector<double> last_soh;   // n: soh_last of each window
  Eigen::MatrixXd input_soh;      // W x n absolute input SOH (for the extrapolation baselines)
  Eigen::MatrixXd truth_soh;      // H x n absolute target SOH
  std::vector<WindowRef> refs;    // n

  int64_t size() const { return static_cast<int64_t>(refs.size()); }
};

// Encodes the input vector of the window whose input rows are rows[0, W) (rows.size() == W).
// Used to forecast a live cell from its latest W cycles.
models::Vector<float> encode_input(std::span<const SeriesRow> rows, const FeatureSpec& spec);

// The linear (v1) design matrix of the windows, (W + 1 + W * F) x n, for the linear baselines:
// [W deltas (soh[t] - soh_last) * delta_scale; level; W values per optional feature], built from
// Windows::input_soh, last_soh and the feature rows of `inputs`. Bit for bit the input vector
// before representation 2, so the ridge baselines keep their figures.
models::Matrix<float> linear_inputs(const Windows& windows, const FeatureSpec& spec);

// Builds the windows at the given places. kInvalidArgument when a ref is outside its cell.
Result<Windows> make_windows_at(std::span<const CellSeries> cells, const FeatureSpec& spec,
                                std::span<const WindowRef> refs);

// Returns true for a window to leave out.
using WindowFilter = std::function<bool(const WindowRef&)>;

// Every window (first_row = 0, stride, 2 * stride...) of the listed cells that fits entirely
// within its cell and is not excluded. No cells listed, no windows.
Windows make_windows(std::span<const CellSeries> cells, const FeatureSpec& spec, int64_t stride,
                     std::span<const int64_t> cell_indices, const WindowFilter& exclude = {});
// The same over every cell.
Windows make_windows(std::span<const CellSeries> cells, const FeatureSpec& spec, int64_t stride);

// The windows at the given column indices, in that order.
Windows select_windows(const Windows& windows, std::span<const int64_t> columns);

// Model outputs (H x n, normalized deltas) to absolute SOH (H x n).
Eigen::MatrixXd to_soh(const models::Matrix<float>& outputs, std::span<const double> last_soh,
                       const FeatureSpec& spec);
Eigen::MatrixXd to_soh(const Eigen::MatrixXd& outputs, std::span<const double> last_soh,
                       const FeatureSpec& spec);

// A split of cell indices: disjoint by construction, their union is every cell.
struct CellSplit {
  std::vector<int64_t> train;
  std::vector<int64_t> validation;
  std::vector<int64_t> test;
};

// Deterministic split by cell: cells are ordered by a hash of (cell id, seed) and the first
// round(validation_fraction * n) go to validation, the next round(test_fraction * n) to test,
// the rest to train. The same ids and seed give the same split on every machine, whatever the
// order of `cells`. Each index list is in increasing order.
CellSplit split_by_cell(std::span<const CellSeries> cells, double validation_fraction,
                        double test_fraction, uint64_t seed);
// The same over a subset: only the cells listed in `among` are split.
CellSplit split_by_cell(std::span<const CellSeries> cells, std::span<const int64_t> among,
                        double validation_fraction, double test_fraction, uint64_t seed);

}  // namespace cyclecast::pipeline
