// When to retrain (docs/lifecycle.md, "Triggers"): a pure decision from the clock, the last run
// and the cycles stored since its snapshot, so the daemon's timer only has to ask.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::lifecycle {

struct RetrainPolicy {
  std::int64_t interval_ms = 0;  // retrain this long after the last run started; 0: never
  std::int64_t new_cycles = 0;   // retrain once this many cycles arrived since the last
                                 // run's snapshot; 0: never
  // No automatic run starts sooner than this after the last one started, whatever its outcome,
  // so a run that keeps failing is not restarted in a loop.
  std::int64_t min_gap_ms = 10 * 60 * 1000;
  // No automatic run while the database holds fewer cycles than this in all: a run on a few
  // cycles would fail or train on nothing worth forecasting with.
  std::int64_t min_cycles = 0;
};

// What the decision looks at. The daemon fills it from the registry (retrain_state below).
struct RetrainState {
  std::int64_t now_ms = 0;
  std::optional<std::int64_t> last_run_started_ms;  // nullopt: there never was a run
  std::int64_t cycles_since_last_snapshot = 0;      // all stored cycles when there is none
  std::int64_t cycles_stored = 0;
  bool run_in_progress = false;
};

struct RetrainDecision {
  bool retrain = false;
  std::string trigger;  // "interval" or "cycles" when retrain; empty otherwise
  std::string reason;   // one sentence either way ("due: 5000 new cycles >= 4000", ...)
};

// Never while a run is in progress, with fewer than min_cycles stored, or within min_gap_ms of
// the last start. Otherwise "interval"
// when interval_ms > 0 and it elapsed since the last start (or there never was a run), else
// "cycles" when new_cycles > 0 and at least that many cycles arrived since the last snapshot.
RetrainDecision should_retrain(const RetrainPolicy& policy, const RetrainState& state);

// The state from the registry: the newest run's start, and the cycles stored now minus those
// in the newest snapshot any run recorded. run_in_progress is left false (the Retrainer knows).
Result<RetrainState> retrain_state(storage::Database& db, std::int64_t now_ms);

}  // namespace cyclecast::lifecycle
