// What the gateways publish about themselves and their edge nodes, for the API's /api/v1/nodes:
// the nodes' retained statuses (docs/protocol.md, "Node status") and the gateways' own liveness
// ("Gateway liveness"). Updated on the daemon's loop, read from the API's threads. Bounded: a
// flood of made-up node ids cannot grow a table past kMax entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cyclecast/wire/edge.h"

namespace cyclecast::daemon {

// The latest status of each key (a node id), thread-safe.
template <typename Status>
class LatestStatuses {
 public:
  static constexpr std::size_t kMax = 1024;

  // Keeps `status` as the latest of `key`. False (and nothing kept) when kMax other keys are
  // held already.
  bool update(const std::string& key, Status status) {
    std::lock_guard lock(mutex_);
    const auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      it->second = std::move(status);
      return true;
    }
    if (by_key_.size() >= kMax) return false;
    by_key_.emplace(key, std::move(status));
    return true;
  }

  // An empty retained message clears the key's status.
  void remove(const std::string& key) {
    std::lock_guard lock(mutex_);
    by_key_.erase(key);
  }

  std::optional<Status> find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = by_key_.find(key);
    if (it == by_key_.end()) return std::nullopt;
    return it->second;
  }

  // Every status held, by key.
  std::vector<Status> all() const {
    std::lock_guard lock(mutex_);
    std::vector<Status> out;
    out.reserve(by_key_.size());
    for (const auto& [key, status] : by_key_)
      out.push_back(status);
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Status> by_key_;
};

using NodeStatuses = LatestStatuses<wire::NodeStatus>;

// A gateway as the daemon follows it: its latest valid liveness status and when the daemon
// heard from it (ms since 1970, by the daemon's clock).
struct GatewayLiveness {
  wire::GatewayStatus status;
  std::int64_t since_ms = 0;      // when the daemon saw the current state begin
  std::int64_t last_seen_ms = 0;  // its latest "online", or its node's latest status while online
};
using GatewayStatuses = LatestStatuses<GatewayLiveness>;  // by node id

}  // namespace cyclecast::daemon
