// DaemonStarts: how a rig rate-limits its reaction to daemon statuses (docs/protocol.md).
#include "cyclecast/rig/rig.h"

namespace cyclecast::rig {

void DaemonStarts::seen(std::string_view topic, std::string_view payload, bool retained) {
  const protocol::Status status = protocol::parse_status(payload);
  if (status.state != "online") return;
  std::string key;
  if (!status.start_id.empty()) key = std::string(topic) + ' ' + status.start_id;
  if (retained) {
    if (!key.empty() && known_.size() < kMaxKnown) known_.insert(std::move(key));
    return;
  }
  ++online_;
  if (!key.empty()) {
    if (known_.contains(key)) return;
    if (known_.size() < kMaxKnown) known_.insert(std::move(key));
  }
  pending_ = true;
}

bool DaemonStarts::resend_due(Clock::time_point now) {
  if (!pending_) return false;
  if (last_resend_ && now - *last_resend_ < min_interval_) return false;
  pending_ = false;
  last_resend_ = now;
  ++resends_;
  return true;
}

}  // namespace cyclecast::rig
