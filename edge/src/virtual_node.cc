#include "cyclecast/edge/virtual_node.h"

#include <fstream>
#include <iterator>
#include <vector>

namespace cyclecast::edge {

LoadedNodeModel::LoadedNodeModel(pipeline::NodeModel model) : model_(std::move(model)) {
  student_ = model_.student.model();
  const pipeline::NodeNormalization& n = model_.normalization;
  view_.student = &student_;
  view_.version = model_.version.c_str();
  view_.sha256_hex = model_.sha256_hex.c_str();
  view_.input_len = n.input_len;
  view_.horizon = n.horizon;
  view_.feature_count = static_cast<uint16_t>(n.feature_ids.size());
  for (size_t f = 0; f < n.feature_ids.size() && f < 3; ++f) {
    view_.feature_ids[f] = n.feature_ids[f];
    view_.feature_mean[f] = n.feature_mean[f];
    view_.feature_std[f] = n.feature_std[f];
  }
  view_.delta_scale = n.delta_scale;
  view_.level_offset = n.level_offset;
  view_.level_scale = n.level_scale;
  view_.amp_floor = n.amp_floor;
  view_.log_amp_mean = n.log_amp_mean;
  view_.log_amp_std = n.log_amp_std;
  const pipeline::NodeInterval& interval = model_.interval;
  if (interval.bands > 0) {
    interval_.half_width = interval.half_width.data();
    interval_.bands = interval.bands;
    interval_.band_soh[0] = interval.band_soh[0];
    interval_.band_soh[1] = interval.band_soh[1];
    view_.interval = &interval_;
  }
}

Result<std::unique_ptr<LoadedNodeModel>> load_node_model(std::span<const uint8_t> blob) {
  auto model = pipeline::read_node_model(blob);
  if (!model) return model.error();
  return std::make_unique<LoadedNodeModel>(std::move(*model));
}

Result<std::unique_ptr<LoadedNodeModel>> load_node_model_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + path);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  auto loaded = load_node_model(bytes);
  if (!loaded) return make_error(loaded.error().code, path + ": " + loaded.error().message);
  return loaded;
}

std::string node_status_text(cc_node_status status) {
  switch (status) {
    case CC_NODE_OK:
      return "ok";
    case CC_NODE_ERROR_ARGUMENT:
      return "missing model or I/O hooks";
    case CC_NODE_ERROR_MODEL:
      return "the model fails validation or does not match its normalization";
    case CC_NODE_ERROR_CAPACITY:
      return "the model needs more window, horizon, features or scratch than this node build has";
  }
  return "unknown status";
}

}  // namespace cyclecast::edge
