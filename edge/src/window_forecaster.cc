#include "cyclecast/edge/window_forecaster.h"

namespace cyclecast::edge {
namespace {

void discard(void*, const char*, size_t) {}  // the HI frame cc_node_init sends
uint32_t no_clock(void*) {
  return 0;
}

// The raw value of node feature `id` (CC_NODE_FEATURE_*), as handle_cycle receives it.
const std::optional<double>& feature(const WindowCycle& cycle, uint8_t id) {
  switch (id) {
    case CC_NODE_FEATURE_IR_OHM:
      return cycle.ir_ohm;
    case CC_NODE_FEATURE_TEMPERATURE_C:
      return cycle.temperature_c;
    default:
      return cycle.charge_time_min;
  }
}

}  // namespace

WindowForecaster::WindowForecaster(std::shared_ptr<const LoadedNodeModel> model)
    : model_(std::move(model)), node_(new cc_node), cell_(new cc_node_cell) {}

Result<std::unique_ptr<WindowForecaster>> WindowForecaster::create(
    std::shared_ptr<const LoadedNodeModel> model) {
  if (!model) return make_error(ErrorCode::kInvalidArgument, "no model to forecast with");
  std::unique_ptr<WindowForecaster> forecaster(new WindowForecaster(std::move(model)));
  const cc_node_status status = cc_node_init(forecaster->node_.get(), &forecaster->model_->view(),
                                             cc_node_io{discard, no_clock, nullptr});
  if (status != CC_NODE_OK) {
    return make_error(ErrorCode::kInvalidArgument,
                      "model " + forecaster->version() + ": " + node_status_text(status));
  }
  return forecaster;
}

Result<std::vector<float>> WindowForecaster::forecast(std::span<const WindowCycle> window) {
  const cc_node_model& m = model_->view();
  if (std::ssize(window) != m.input_len) {
    return make_error(ErrorCode::kInvalidArgument, "a window of " + std::to_string(window.size()) +
                                                       " cycles; the model needs " +
                                                       std::to_string(m.input_len));
  }
  // The cell as handle_cycle would hold it after these cycles: SOH as received, features
  // normalized in float, 0 when not measured; oldest at head 0.
  cc_node_cell& cell = *cell_;
  cell.count = m.input_len;
  cell.head = 0;
  for (uint16_t t = 0; t < m.input_len; ++t) {
    cell.values[0][t] = static_cast<float>(window[t].soh);
    for (uint16_t f = 0; f < m.feature_count; ++f) {
      const std::optional<double>& raw = feature(window[t], m.feature_ids[f]);
      cell.values[1u + f][t] =
          raw ? (static_cast<float>(*raw) - m.feature_mean[f]) / m.feature_std[f] : 0.0f;
    }
  }
  std::vector<float> soh(m.horizon);
  if (cc_node_forecast_cell(node_.get(), &cell, soh.data()) != CC_OK)
    return make_error(ErrorCode::kInvalidArgument, "the int8 runtime refused the window");
  return soh;
}

Result<WindowForecast> WindowForecaster::forecast_with_interval(
    std::span<const WindowCycle> window) {
  auto soh = forecast(window);
  if (!soh) return soh.error();
  WindowForecast out{std::move(*soh), {}, {}};
  if (!has_interval()) return out;
  out.lower.resize(model_->view().horizon);
  out.upper.resize(model_->view().horizon);
  if (cc_node_last_interval(node_.get(), out.lower.data(), out.upper.data()) != CC_OK)
    return make_error(ErrorCode::kInvalidArgument, "the node computed no interval");
  return out;
}

}  // namespace cyclecast::edge
