// Pareto selection of the deployed student: every int8 candidate is scored on (int8 validation
// MAE, flash bytes); the non-dominated ones form the front, and the student shipped is the knee
// of that front among the candidates that fit the deployment budget. The rules are written out
// in docs/pipeline-report.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// One student after int8 quantization, with its errors and its measured cost on the target.
struct Candidate {
  std::string name;   // unique within a run, e.g. "w16-p0.50"
  std::string stage;  // "stage1" (distilled) or "stage2" (pruned, then distilled again)
  int64_t width = 0;
  int64_t features = 0;
  double prune_ratio = 0;  // fraction of hidden units removed; 0 for stage-1 candidates
  int64_t params = 0;
  double float_mae = std::numeric_limits<double>::quiet_NaN();  // validation MAE, SOH units
  double int8_mae = std::numeric_limits<double>::quiet_NaN();
  int64_t flash_bytes = 0;  // int8 weights, tables and code
  int64_t ram_bytes = 0;    // state, scratch and stack
  int64_t macs = 0;         // multiply-accumulates per forecast
  double cycles = 0;        // estimated Cortex-M4 cycles per forecast
  double ms_at_64mhz = 0;   // cycles / 64e3
};

// The deployment budget of an edge node (Arduino Nano 33 BLE Sense by default: the model gets
// 16 kB of the 1 MB flash, 32 kB of the 256 kB RAM, and a forecast must take under 5 ms).
struct Budget {
  int64_t max_flash_bytes = 16384;
  int64_t max_ram_bytes = 32768;
  double max_ms = 5.0;
};

// True when `c` fits every limit of `budget` (each limit inclusive).
bool within_budget(const Candidate& c, const Budget& budget);

// Indices of the non-dominated candidates over (int8_mae, flash_bytes), both minimised: a
// candidate is on the front unless another one is <= in both and < in at least one. Exact
// duplicates do not dominate each other, so both are on the front. A candidate whose int8_mae
// is NaN or whose flash_bytes is not positive was not measured and is never on the front.
// Ordered by flash_bytes ascending (then int8_mae, then index), i.e. from the cheapest and least
// accurate to the most accurate.
std::vector<size_t> pareto_front(const std::vector<Candidate>& candidates);

struct Choice {
  size_t index = 0;    // into the candidates the choice was made from
  std::string reason;  // one or two sentences for the report and the operator
};

// The knee of the Pareto front of the candidates inside `budget` (see docs/pipeline-report.md):
// each front point is placed at u = normalized ln(flash_bytes), v = normalized int8_mae, both in
// [0, 1] over the in-budget front; the chosen point lies farthest below the chord joining the
// cheapest point (0, 1) to the most accurate (1, 0), i.e. it maximises 1 - u - v. When no point
// lies below the chord (one or two points, or a concave front) the most accurate point is chosen,
// since the budget already bounds the cost. Ties go to the cheaper point, then the lower index.
// Errors: kInvalidArgument when no measured candidate fits the budget (the message names the
// closest misses).
Result<Choice> choose_knee(const std::vector<Candidate>& candidates, const Budget& budget);

}  // namespace cyclecast::pipeline
