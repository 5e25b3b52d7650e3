// Staged rollout of a new champion to the edge nodes (docs/lifecycle.md, "Staged rollout"): the
// canary nodes run the new model first, the others keep the previous one; the canaries' live
// errors are compared with the previous model's on the other nodes over the same period, and the
// rollout proceeds to every node, waits for more evidence, or rolls the canaries back.
//
// What a rollout compares is the +H error of scored edge forecasts (storage::ScoredForecast). The
// two sides forecast different cells, so the comparison is made "on comparable cells": the
// previous model's error is taken per SOH band of the forecast's origin (the bands of the drift
// monitor and the training report) and weighted by how many of the new model's forecasts fall in
// each band, so that canaries with older cells are not blamed for their cells' age. The unit of
// the bootstrap is the cell, as in the promotion gate: forecasts of one cell are correlated.
//
// Plain functions of plain values: the daemon persists the rollout and feeds it the samples.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::lifecycle {

struct RolloutPolicy {
  // How many nodes are canaries: canary_share of the fleet (rounded up) when above 0, else
  // canary_count; at least one, and never every node of a fleet of two or more.
  std::int64_t canary_count = 1;
  double canary_share = 0.0;
  // Scored forecasts each side needs before any decision.
  std::int64_t min_scored = 50;
  // The new model may be this much worse (relative to the previous model's band-weighted MAE)
  // and still proceed: 0.10 tolerates 10 %.
  double tolerance = 0.10;
  // When the new model has this many scored forecasts and the bootstrap still cannot tell, the
  // point estimate decides (proceed when within tolerance): a rollout never waits forever.
  std::int64_t max_scored = 500;
  std::int64_t resamples = 2000;
  double level = 0.90;  // of each one-sided bound
  std::uint64_t seed = 20261203;
};

// kInvalidArgument naming the first option out of range.
Result<void> check_rollout_policy(const RolloutPolicy& policy);

// The canaries among `nodes`: the first ones in id order, so that the same fleet always gives
// the same canaries (a restarted daemon does not pick others). Duplicates count once.
std::vector<std::string> choose_canaries(std::vector<std::string> nodes,
                                         const RolloutPolicy& policy);

// One scored edge forecast: its cell, |actual - forecast| at +H, and the SOH of its origin
// (NaN when unknown: such a sample counts in the "unknown" band).
struct LiveSample {
  std::string cell;
  double abs_error = 0.0;
  double origin_soh = std::numeric_limits<double>::quiet_NaN();
};

enum class RolloutVerdict { kWait, kProceed, kRollBack };
const char* to_string(RolloutVerdict verdict);

struct RolloutDecision {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  RolloutVerdict verdict = RolloutVerdict::kWait;
  std::string reason;                 // one sentence with both MAEs, the bounds and the counts
  std::int64_t candidate_scored = 0;  // the new model's samples in bands the previous one has
  std::int64_t reference_scored = 0;
  double candidate_mae = kNaN;
  double reference_mae = kNaN;  // band-weighted as described above
  // Bootstrap bounds of (candidate_mae - reference_mae) / reference_mae: `lower` below it and
  // `upper` above it, each with odds `level`. NaN while either side has fewer than two cells.
  double lower = kNaN, upper = kNaN;
};

// Proceed when the upper bound is within tolerance (the new model is not worse by more than it,
// with odds `level`); roll back when the lower bound exceeds it (it is worse by more than that);
// otherwise wait, until max_scored, where the point estimate decides. Samples with a NaN or
// negative error are ignored; the new model's samples in a band the previous model has no sample
// of are left out (nothing comparable) and the reason counts them.
RolloutDecision decide_rollout(std::span<const LiveSample> candidate,
                               std::span<const LiveSample> reference, const RolloutPolicy& policy);

}  // namespace cyclecast::lifecycle
