// The promotion gate (docs/lifecycle.md, "Promotion gate"): a candidate becomes champion only if
// it fits the deployment budget and, when there is a champion, forecasts the same held-out
// windows better by a margin. The metric is the MAE over the horizon of the int8 student (what
// the node runs) on the candidate run's test windows; the champion's int8 file is evaluated on
// those same windows (pipeline::evaluate_model_file), since the two runs may have seen different
// data.
#pragma once

#include <cstdint>
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
};

struct GateChampion {
  std::string version;
  double mae = 0.0;        // the champion's int8 file on the same test windows
  std::string why_no_mae;  // why mae is NaN, for the gate's reason; empty: a generic sentence
};

struct GateDecision {
  bool promote = false;
  std::string reason;  // one sentence with both figures, for the registry and the operator
};

// Promote when the candidate fits `budget` (a limit set on a figure the footprint lacks does not
// fit) and either there is no champion or candidate.mae <= champion.mae * (1 - margin)
// (margin 0.02: at least 2 % lower). A NaN MAE (candidate or champion) never promotes.
GateDecision gate(const GateCandidate& candidate, const std::optional<GateChampion>& champion,
                  double margin, const DeploymentBudget& budget);

}  // namespace cyclecast::lifecycle
