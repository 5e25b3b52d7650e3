#include "cyclecast/lifecycle/policy.h"

#include <algorithm>

#include "cyclecast/storage/registry.h"

namespace cyclecast::lifecycle {

RetrainDecision should_retrain(const RetrainPolicy& policy, const RetrainState& state) {
  if (state.run_in_progress) return {false, "", "a run is in progress"};
  if (state.cycles_stored < policy.min_cycles) {
    return {false, "",
            "waiting for data: " + std::to_string(state.cycles_stored) +
                " cycles stored, automatic runs start at " + std::to_string(policy.min_cycles)};
  }
  if (state.last_run_started_ms) {
    const std::int64_t since_ms = state.now_ms - *state.last_run_started_ms;
    if (since_ms < policy.min_gap_ms) {
      return {false, "",
              "the last run started " + std::to_string(since_ms / 1000) + " s ago, under the " +
                  std::to_string(policy.min_gap_ms / 1000) + " s minimum gap"};
    }
    if (policy.interval_ms > 0 && since_ms >= policy.interval_ms) {
      return {true, "interval",
              "the last run started " + std::to_string(since_ms / 1000) + " s ago, interval " +
                  std::to_string(policy.interval_ms / 1000) + " s"};
    }
  } else if (policy.interval_ms > 0) {
    return {true, "interval", "no run yet and the interval trigger is on"};
  }
  if (policy.new_cycles > 0 && state.cycles_since_last_snapshot >= policy.new_cycles) {
    return {true, "cycles",
            std::to_string(state.cycles_since_last_snapshot) +
                " cycles arrived since the last snapshot, threshold " +
                std::to_string(policy.new_cycles)};
  }
  if (policy.interval_ms <= 0 && policy.new_cycles <= 0) {
    return {false, "", "both automatic triggers are off"};
  }
  return {false, "",
          "not due: " + std::to_string(state.cycles_since_last_snapshot) +
              " cycles since the last snapshot"};
}

Result<RetrainState> retrain_state(storage::Database& db, std::int64_t now_ms) {
  RetrainState state;
  state.now_ms = now_ms;
  auto counts = db.counts();
  if (!counts) return counts.error();
  // The newest run for its start; the newest run that took a snapshot for its cycle count.
  constexpr std::int64_t kRunsLookedAt = 50;
  auto runs = storage::list_runs(db, kRunsLookedAt);
  if (!runs) return runs.error();
  std::int64_t snapshot_cycles = 0;
  for (const auto& run : *runs) {
    if (!state.last_run_started_ms) state.last_run_started_ms = run.started_at_ms;
    if (!run.snapshot.sha256.empty()) {
      snapshot_cycles = run.snapshot.cycles;
      break;
    }
  }
  state.cycles_stored = counts->cycles;
  state.cycles_since_last_snapshot = std::max<std::int64_t>(0, counts->cycles - snapshot_cycles);
  return state;
}

}  // namespace cyclecast::lifecycle
