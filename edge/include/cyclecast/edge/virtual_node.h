// The virtual node: the firmware's node program (firmware/node/cc_node.c, the very code the Nano
// runs) on the host, with its model loaded from a node-model blob (model.bin) instead of compiled
// in. `cyclecast-node` serves it on stdin/stdout or a pty; tests drive it directly or through
// the executable.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "cc_node.h"
#include "cyclecast/pipeline/export.h"
#include "cyclecast/result.h"

namespace cyclecast::edge {

// A node-model blob in the form cc_node takes. view() points into this object: keep it alive
// (it is neither copyable nor movable, so the pointers cannot dangle) while a cc_node uses it.
class LoadedNodeModel {
 public:
  explicit LoadedNodeModel(pipeline::NodeModel model);
  LoadedNodeModel(const LoadedNodeModel&) = delete;
  LoadedNodeModel& operator=(const LoadedNodeModel&) = delete;

  const cc_node_model& view() const { return view_; }
  const pipeline::NodeModel& model() const { return model_; }

 private:
  pipeline::NodeModel model_;
  cc_student_model student_{};
  cc_node_interval interval_{};
  cc_node_model view_{};
};

// Reads and checks a blob (pipeline::read_node_model's errors).
Result<std::unique_ptr<LoadedNodeModel>> load_node_model(std::span<const uint8_t> blob);
Result<std::unique_ptr<LoadedNodeModel>> load_node_model_file(const std::string& path);

// Why cc_node_init refused a model, as a sentence.
std::string node_status_text(cc_node_status status);

}  // namespace cyclecast::edge
