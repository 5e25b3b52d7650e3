// The promotion gate (docs/lifecycle.md, "Promotion gate"): a candidate becomes champion only if
// it fits the deployment budget, beats the best baseline the node could run, and, when there is
// a champion, forecasts the same held-out cells better by more than their noise (a paired
// bootstrap over cells, pipeline/paired_bootstrap.h). The metric is the MAE over the horizon of the
// int8 student (what the node runs) on the candidate run's test windows; the champion's int8 file
// is evaluated on those same windows (pipeline::evaluate_model_file), since the two runs may have
// seen different data.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace cyclecast::lifecycle {

// Limits of the edge node; 0 means no limit on that figure.
struct DeploymentBudget {
  std::int64_t max_flash_bytes = 0;
  std::int64_t max_ram_bytes = 0;
  // Instructions per forecast. Checked against measured instructions when the footprint has
  // them, otherwise against the estimated Cortex-M4 cycles (never fewer than instructions there,
  // so the check errs on the safe side).
  std::int64_t max_instructions = 0;
};

// A model's footprint as the bundle manifest gives it (bundle::Footprint).
struct GateFootprint {
  std::string kind;  // "measured" or "estimate"
  std::optional<std::int64_t> flash_bytes, ram_bytes, instructions, cycles;
};

struct GateCandidate {
  std::string version;
  double mae = 0.0;  // int8 MAE over the horizon on the candidate run's test windows
  GateFootprint footprint;
  // The run's evidence against the baselines the node could run (pipeline/gate_evidence.h):
  // whether the lower 90 % bound of its improvement over the best of them is above zero, and the
  // sentence that says so with both MAEs and the bound.
  bool beats_baselines = false;
  std::string baseline_reason;
};

struct GateChampion {
  std::string version;
  double mae = 0.0;        // the champion's int8 file on the same test windows
  std::string why_no_mae;  // why mae is NaN, for the gate's reason; empty: a generic sentence
  // Paired bootstrap over the run's test cells (pipeline/paired_bootstrap.h) of the champion's
  // MAE minus the candidate's: its lower 90 % bound (NaN from one cell) and the cells.
  double lower = std::numeric_limits<double>::quiet_NaN();
  std::int64_t cells = 0;
  // How the two were compared: "held-out" (the candidate run's int8 student on its test cells,
  // mae above) or "k-fold" (every cell, the candidate's architecture refitted without it, too few
  // cells for a held-out set); then candidate_mae is the candidate's MAE on those windows.
  std::string scoring = "held-out";
  double candidate_mae = std::numeric_limits<double>::quiet_NaN();
};

struct GateDecision {
  bool promote = false;
  std::string reason;  // one sentence with both figures, for the registry and the operator
};

// Promote when the candidate fits `budget` (a limit set on a figure the footprint lacks does not
// fit), beats the baselines the node could run (beats_baselines), and either there is no
// champion or the lower bound of its improvement over the champion exceeds margin x the
// champion's MAE (margin 0: any improvement the data supports; 0.02: at least 2 % of it). A NaN
// MAE or bound never promotes, so one test cell keeps the champion.
GateDecision gate(const GateCandidate& candidate, const std::optional<GateChampion>& champion,
                  double margin, const DeploymentBudget& budget);

}  // namespace cyclecast::lifecycle
