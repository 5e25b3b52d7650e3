// The node's forecast of one whole window, outside the line protocol: the service forecasts every
// stored cycle with the champion model through the very code an edge node runs (cc_node.c and the
// int8 runtime), so host and edge forecasts of the same window agree.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cc_node.h"
#include "cyclecast/edge/virtual_node.h"
#include "cyclecast/result.h"

namespace cyclecast::edge {

// One cycle in the node's units: SOH = discharge / rated capacity; the optional features when
// measured (internal resistance in ohm, average temperature in °C, charge time in minutes).
struct WindowCycle {
  double soh = 0.0;
  std::optional<double> ir_ohm, temperature_c, charge_time_min;
};

// A forecast with its prediction interval (docs/pipeline.md, "Prediction intervals"): lower and
// upper are empty when the model has no interval table, else horizon() values each, with
// lower[j] <= soh[j] <= upper[j].
struct WindowForecast {
  std::vector<float> soh, lower, upper;
};

class WindowForecaster {
 public:
  // kInvalidArgument when cc_node_init refuses the model (node_status_text says why).
  static Result<std::unique_ptr<WindowForecaster>> create(
      std::shared_ptr<const LoadedNodeModel> model);

  std::int64_t input_len() const { return model_->view().input_len; }
  std::int64_t horizon() const { return model_->view().horizon; }
  const std::string& version() const { return model_->model().version; }

  // `window`: exactly input_len() cycles, oldest first. Returns the horizon() SOH values that
  // follow the last one.
  Result<std::vector<float>> forecast(std::span<const WindowCycle> window);
  // The same forecast and, when the model carries an interval table, its interval, computed by
  // the node's own code (cc_node_last_interval: the int8 output -/+ the half-width of the
  // window's SOH band, saturated to int32, decoded as the forecast is).
  Result<WindowForecast> forecast_with_interval(std::span<const WindowCycle> window);
  bool has_interval() const { return model_->view().interval != nullptr; }

 private:
  explicit WindowForecaster(std::shared_ptr<const LoadedNodeModel> model);

  std::shared_ptr<const LoadedNodeModel> model_;
  std::unique_ptr<cc_node> node_;
  std::unique_ptr<cc_node_cell> cell_;
};

}  // namespace cyclecast::edge
