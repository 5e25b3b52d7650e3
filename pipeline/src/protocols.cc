#include "cyclecast/pipeline/protocols.h"

#include <algorithm>
#include <map>
#include <set>
#include <system_error>

#include "cyclecast/pipeline/baselines.h"

namespace cyclecast::pipeline {

namespace {

namespace fs = std::filesystem;

FeatureOptions feature_options(const ProtocolOptions& options) {
  FeatureOptions f;
  f.input_len = options.input_len;
  f.horizon = options.horizon;
  f.delta_scale = options.delta_scale;
  f.use_optional_features = options.use_optional_features;
  return f;
}

Result<FeatureSpec> fit_on(const std::vector<CellSeries>& cells,
                           const std::vector<int64_t>& train_cells,
                           const ProtocolOptions& options) {
  std::vector<CellSeries> train;
  train.reserve(train_cells.size());
  for (const int64_t c : train_cells)
    train.push_back(cells[static_cast<std::size_t>(c)]);
  return fit_feature_spec(train, feature_options(options));
}

std::vector<std::string> unique_cell_ids(const std::vector<CellSeries>& cells,
                                         const Windows& windows) {
  std::vector<std::string> ids;
  std::set<int64_t> seen;
  for (const WindowRef& ref : windows.refs) {
    if (seen.insert(ref.cell).second)
      ids.push_back(cells[static_cast<std::size_t>(ref.cell)].cell_id);
  }
  return ids;
}

std::vector<std::string> bands_of(const Windows& windows) {
  std::vector<std::string> bands;
  bands.reserve(windows.last_soh.size());
  for (const double soh : windows.last_soh)
    bands.emplace_back(soh_band(soh));
  return bands;
}

Result<void> check_options(const ProtocolOptions& options) {
  if (options.input_len < 2 || options.horizon < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "protocol needs an input length >= 2 and a horizon >= 1");
  }
  if (options.train_stride < 1 || options.test_stride < 1) {
    return make_error(ErrorCode::kInvalidArgument, "window strides must be >= 1");
  }
  return {};
}

Result<void> check_windows(const EvalProtocol& p) {
  if (p.train.size() == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      p.name + " protocol: no training window (too few or too short cells)");
  }
  if (p.test.size() == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      p.name + " protocol: no test window (too few or too short cells)");
  }
  return {};
}

// Builds train/validation/test windows from a cell split and fits the spec on the train cells.
Result<EvalProtocol> from_split(std::string name, SeriesSet data, const CellSplit& split,
                                CleaningReport cleaning, const ProtocolOptions& options) {
  EvalProtocol p;
  p.name = std::move(name);
  p.cleaning = cleaning;
  p.ridge_lambda = options.ridge_lambda;
  p.train_stride = options.train_stride;
  p.test_stride = options.test_stride;
  auto spec = fit_on(data.cells, split.train, options);
  if (!spec) return spec.error();
  p.spec = std::move(*spec);
  const int64_t span = options.input_len + options.horizon;
  const WindowFilter across_a_long_gap = [&](const WindowRef& ref) {
    const bool spans = spans_long_gap(data.cells[static_cast<std::size_t>(ref.cell)], ref.first_row,
                                      span, options.cleaning.max_window_gap_cycles);
    p.windows_across_gaps += spans ? 1 : 0;
    return spans;
  };
  p.train = make_windows(data.cells, p.spec, options.train_stride, split.train, across_a_long_gap);
  p.validation =
      make_windows(data.cells, p.spec, options.train_stride, split.validation, across_a_long_gap);
  p.test = make_windows(data.cells, p.spec, options.test_stride, split.test, across_a_long_gap);
  p.test_cells = unique_cell_ids(data.cells, p.test);
  p.test_bands = bands_of(p.test);
  p.data = std::move(data);
  if (auto ok = check_windows(p); !ok) return ok.error();
  return p;
}

}  // namespace

bool spans_long_gap(const CellSeries& cell, int64_t first_row, int64_t rows, int64_t max_gap) {
  const int64_t end = first_row + rows;
  return std::any_of(cell.filled_gaps.begin(), cell.filled_gaps.end(), [&](const FilledGap& g) {
    return g.rows > max_gap && first_row < g.first_row + g.rows && g.first_row < end;
  });
}

const char* soh_band(double last_soh) {
  if (last_soh >= 0.95) return "high";
  if (last_soh >= 0.9) return "medium";
  return "low";
}

Result<EvalProtocol> paper_protocol(const fs::path& dir, const ProtocolOptions& options) {
  if (auto ok = check_options(options); !ok) return ok.error();
  auto data = read_severson_soh(dir);
  if (!data) return data.error();
  // Segments are fixed by the paper: their shape must be the protocol's window.
  std::vector<WindowRef> test_refs;
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> test_targets;
  for (const Segment& s : data->segments) {
    if (s.target_begin - s.input_begin != options.input_len ||
        s.target_end - s.target_begin != options.horizon) {
      return make_error(ErrorCode::kInvalidArgument,
                        "paper protocol: the segments have " +
                            std::to_string(s.target_begin - s.input_begin) + " input and " +
                            std::to_string(s.target_end - s.target_begin) +
                            " target rows; use that window and horizon");
    }
    const int64_t cell = find_cell(*data, s.series);
    test_refs.push_back(WindowRef{cell, s.input_begin});
    test_targets[cell].emplace_back(s.target_begin, s.target_end);
  }
  const CellSplit split =
      split_by_cell(data->cells, options.paper_validation_fraction, 0.0, options.seed);
  EvalProtocol p;
  p.name = "paper";
  p.ridge_lambda = options.ridge_lambda;
  auto spec = fit_on(data->cells, split.train, options);
  if (!spec) return spec.error();
  p.spec = std::move(*spec);
  const int64_t w = options.input_len;
  const int64_t h = options.horizon;
  // A training or validation window whose rows (inputs or targets) meet a segment's target rows
  // would show the model the answer to that test segment: left out, and counted for the report.
  const WindowFilter touches_a_test_target = [&](const WindowRef& ref) {
    auto it = test_targets.find(ref.cell);
    if (it == test_targets.end()) return false;
    const int64_t begin = ref.first_row;
    const int64_t end = begin + w + h;
    const bool touches = std::any_of(it->second.begin(), it->second.end(), [&](const auto& t) {
      return begin < t.second && t.first < end;
    });
    p.windows_left_out += touches ? 1 : 0;
    return touches;
  };
  p.train =
      make_windows(data->cells, p.spec, options.train_stride, split.train, touches_a_test_target);
  p.validation = make_windows(data->cells, p.spec, options.train_stride, split.validation,
                              touches_a_test_target);
  auto test = make_windows_at(data->cells, p.spec, test_refs);
  if (!test) return test.error();
  p.test = std::move(*test);
  p.test_cells = unique_cell_ids(data->cells, p.test);
  for (const Segment& s : data->segments)
    p.test_bands.push_back(s.band);
  p.data = std::move(*data);
  if (auto ok = check_windows(p); !ok) return ok.error();
  return p;
}

Result<EvalProtocol> heldout_protocol(const fs::path& dir, const ProtocolOptions& options) {
  if (auto ok = check_options(options); !ok) return ok.error();
  std::error_code ec;
  if (!fs::exists(dir / "cycles.csv", ec) || !fs::exists(dir / "cells.csv", ec)) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "heldout protocol needs a severson-raw folder (cycles.csv, cells.csv): " + dir.string());
  }
  auto data = read_severson_raw(dir, options.raw);
  if (!data) return data.error();
  CleaningReport cleaning = clean_all(data->cells, options.cleaning);
  cleaning.continuations_joined = data->continuations_joined;
  std::vector<int64_t> train_cells;
  CellSplit split;
  for (std::size_t i = 0; i < data->cells.size(); ++i) {
    const std::string& s = data->cells[i].split;
    if (s == "train") train_cells.push_back(static_cast<int64_t>(i));
    if (s == "test1") split.test.push_back(static_cast<int64_t>(i));
  }
  const CellSplit train_split = split_by_cell(
      data->cells, train_cells, options.heldout_validation_fraction, 0.0, options.seed);
  split.train = train_split.train;
  split.validation = train_split.validation;
  return from_split("heldout", std::move(*data), split, cleaning, options);
}

namespace {

// The batches of `cells` in name order, and the held-out one: `wanted`, or the first.
Result<std::pair<std::vector<std::string>, std::string>> pick_test_batch(
    const std::vector<CellSeries>& cells, const std::string& wanted) {
  std::set<std::string> batches;
  for (const CellSeries& cell : cells) {
    if (!cell.batch.empty()) batches.insert(cell.batch);
  }
  if (batches.size() < 2) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cross-batch protocol needs cells of at least two batches, the data has " +
                          std::to_string(batches.size()));
  }
  const std::string test = wanted.empty() ? *batches.begin() : wanted;
  if (!batches.count(test)) {
    std::string known;
    for (const std::string& b : batches)
      known += (known.empty() ? "" : ", ") + b;
    return make_error(ErrorCode::kInvalidArgument, "cross-batch protocol: no cell of batch '" +
                                                       test + "' (batches: " + known + ")");
  }
  batches.erase(test);
  return std::make_pair(std::vector<std::string>(batches.begin(), batches.end()), test);
}

}  // namespace

Result<EvalProtocol> cross_batch_protocol(const fs::path& dir, const ProtocolOptions& options) {
  if (auto ok = check_options(options); !ok) return ok.error();
  std::error_code ec;
  if (!fs::exists(dir / "cycles.csv", ec) || !fs::exists(dir / "cells.csv", ec)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cross-batch protocol needs a severson-raw folder (cycles.csv, cells.csv): " +
                          dir.string());
  }
  ProtocolOptions o = options;
  // The earlier batch is only in cycles_qd_approx.csv, and reports capacity alone: features
  // measured in one batch only would be noise (their mean) in the other.
  o.raw.include_approx = fs::exists(dir / "cycles_qd_approx.csv", ec);
  o.use_optional_features = false;
  auto data = read_severson_raw(dir, o.raw);
  if (!data) return data.error();
  CleaningReport cleaning = clean_all(data->cells, o.cleaning);
  cleaning.continuations_joined = data->continuations_joined;
  auto batches = pick_test_batch(data->cells, o.test_batch);
  if (!batches) return batches.error();
  std::vector<int64_t> train_cells;
  CellSplit split;
  for (std::size_t i = 0; i < data->cells.size(); ++i) {
    const std::string& batch = data->cells[i].batch;
    if (batch.empty()) continue;
    (batch == batches->second ? split.test : train_cells).push_back(static_cast<int64_t>(i));
  }
  const CellSplit train_split =
      split_by_cell(data->cells, train_cells, o.cross_batch_validation_fraction, 0.0, o.seed);
  split.train = train_split.train;
  split.validation = train_split.validation;
  auto p = from_split("cross-batch", std::move(*data), split, cleaning, o);
  if (!p) return p;
  p->test_batch = batches->second;
  p->train_batches = batches->first;
  return p;
}

Result<EvalProtocol> data_protocol(const fs::path& path, const ProtocolOptions& options) {
  if (auto ok = check_options(options); !ok) return ok.error();
  auto data = read_series(path, options.raw);
  if (!data) return data.error();
  CleaningReport cleaning;
  // The severson-soh series are published smoothed; only telemetry is cleaned.
  if (data->source != "severson-soh") cleaning = clean_all(data->cells, options.cleaning);
  cleaning.continuations_joined = data->continuations_joined;
  data->segments.clear();
  const CellSplit split = split_by_cell(data->cells, options.split_validation_fraction,
                                        options.split_test_fraction, options.seed);
  return from_split("split", std::move(*data), split, cleaning, options);
}

Result<EvalProtocol> load_protocol(const fs::path& path, const std::string& name,
                                   const ProtocolOptions& options) {
  std::error_code ec;
  const bool soh_folder = fs::is_directory(path, ec) && fs::exists(path / "soh.csv", ec);
  const bool raw_folder = fs::is_directory(path, ec) && fs::exists(path / "cycles.csv", ec);
  std::string chosen = name;
  if (name == "auto") chosen = soh_folder ? "paper" : raw_folder ? "heldout" : "split";
  if (chosen == "paper") return paper_protocol(path, options);
  if (chosen == "heldout") return heldout_protocol(path, options);
  if (chosen == "split") return data_protocol(path, options);
  if (chosen == "cross-batch") return cross_batch_protocol(path, options);
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown protocol '" + name + "' (auto, paper, heldout, split or cross-batch)");
}

std::vector<std::pair<std::string, ForecastMetrics>> evaluate_baselines(
    const EvalProtocol& protocol) {
  const Windows& test = protocol.test;
  const int64_t h = protocol.spec.horizon;
  const auto score = [&](const Eigen::MatrixXd& prediction) {
    return compute_metrics(test.truth_soh, prediction, test.last_soh);
  };
  std::vector<std::pair<std::string, ForecastMetrics>> out;
  out.emplace_back("last value", score(forecast_last_value(test.input_soh, h)));
  out.emplace_back("line-10", score(forecast_polynomial(test.input_soh, h, 10, 1)));
  out.emplace_back("quadratic-50", score(forecast_polynomial(test.input_soh, h, 50, 2)));
  // The ridges see the linear design of the windows, never the model input vector (windows.h).
  const models::Matrix<float> train_x = linear_inputs(protocol.train, protocol.spec);
  const models::Matrix<float> test_x = linear_inputs(test, protocol.spec);
  auto ridge = fit_ridge(train_x, protocol.train.targets, protocol.ridge_lambda);
  if (ridge) {
    out.emplace_back("ridge", score(to_soh(ridge->predict(test_x), test.last_soh, protocol.spec)));
  }
  if (!protocol.spec.features.empty()) {
    // The SOH part of the design (deltas and level) is the same with or without features; a
    // linear model can do better on it alone (fewer inputs to overfit), so it is reported too
    // and a model must beat the better of the two.
    const Eigen::Index soh_inputs = protocol.spec.input_len + 1;
    const models::Matrix<float> train_soh = train_x.topRows(soh_inputs);
    auto soh_ridge = fit_ridge(train_soh, protocol.train.targets, protocol.ridge_lambda);
    if (soh_ridge) {
      const models::Matrix<float> test_soh = test_x.topRows(soh_inputs);
      out.emplace_back("ridge (SOH only)",
                       score(to_soh(soh_ridge->predict(test_soh), test.last_soh, protocol.spec)));
    }
  }
  return out;
}

}  // namespace cyclecast::pipeline
