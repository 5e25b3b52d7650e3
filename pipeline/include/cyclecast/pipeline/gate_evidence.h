// The evidence a run gives the promotion gate (docs/lifecycle.md, "Promotion gate"): whether the
// student it chose forecasts better than the best model the node could run without it. Those
// references are the extrapolations (last value, line-10, quadratic-50) and, for a liquid
// student, the run's int8 linear candidate; the float ridge baseline is reported but is not one
// of them, since the node's int8 linear model cannot express it (docs/lifecycle.md). "Better"
// means that a paired bootstrap over cells (paired_bootstrap.h) puts the lower 90 % bound of the
// improvement over every one of them above zero: the most accurate on average is not always the
// one the data separates the candidate from least.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cyclecast/pipeline/paired_bootstrap.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

struct BaselineComparison {
  std::string reference;  // "last value", "line-10", "quadratic-50", "linear"
  PairedBootstrap result;
};

struct GateEvidence {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  // "held-out": the deployed int8 student on the protocol's test cells; "k-fold": the chosen
  // architecture refitted on each fold of cells, every cell tested once (docs/pipeline.md).
  std::string scoring;
  int64_t folds = 0;  // k-fold only
  std::string candidate;
  int64_t cells = 0;
  double candidate_mae = kNaN;
  std::string best_reference;  // lowest MAE of the references on the same windows
  double best_reference_mae = kNaN;
  // The reference with the lowest bound on the improvement, and that bound: the decisive one.
  std::string weakest_reference;
  double lower = kNaN;
  bool beats_references = false;                // lower > 0 (never from one cell: NaN)
  std::vector<BaselineComparison> comparisons;  // one per reference, in the order given
  // The candidate's errors by cell that were judged, so that the champion can face the same test
  // on the same windows (lifecycle's training worker). Not part of the run's files.
  std::vector<CellError> candidate_errors;
  std::string reason;  // one sentence with both MAEs and the bound

  bool present() const { return !scoring.empty(); }
};

// The evidence for `candidate` against every reference (errors on the same cells and windows):
// it beats them when every comparison's lower bound is above zero. `scoring` and `folds` are
// copied in and named in the reason. kInvalidArgument when there is no reference or the errors do
// not pair (paired_bootstrap).
Result<GateEvidence> judge_against_references(
    const std::string& candidate, const std::vector<CellError>& candidate_errors,
    const std::vector<std::pair<std::string, std::vector<CellError>>>& references,
    const std::string& scoring, int64_t folds, const BootstrapOptions& options = {});

}  // namespace cyclecast::pipeline
