// The edge nodes' retained statuses as their gateways publish them (docs/protocol.md, "Node
// status"), for the API's /api/v1/nodes: updated on the daemon's loop, read from the API's
// threads. Bounded: a flood of made-up node ids cannot grow it past kMaxNodes.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cyclecast/wire/edge.h"

namespace cyclecast::daemon {

class NodeStatuses {
 public:
  static constexpr std::size_t kMaxNodes = 1024;

  // Keeps `status` as its node's latest. False (and nothing kept) when kMaxNodes other nodes
  // are held already.
  bool update(wire::NodeStatus status) {
    std::lock_guard lock(mutex_);
    const auto it = by_node_.find(status.node);
    if (it != by_node_.end()) {
      it->second = std::move(status);
      return true;
    }
    if (by_node_.size() >= kMaxNodes) return false;
    std::string node = status.node;
    by_node_.emplace(std::move(node), std::move(status));
    return true;
  }

  // An empty retained message clears the node's status.
  void remove(const std::string& node) {
    std::lock_guard lock(mutex_);
    by_node_.erase(node);
  }

  // Every status held, by node id.
  std::vector<wire::NodeStatus> all() const {
    std::lock_guard lock(mutex_);
    std::vector<wire::NodeStatus> out;
    out.reserve(by_node_.size());
    for (const auto& [node, status] : by_node_)
      out.push_back(status);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, wire::NodeStatus> by_node_;
};

}  // namespace cyclecast::daemon
