// Causal cleaning of per-cycle series as real rigs produce them. Every rule decides about a cycle
// from that cycle and earlier ones only, so the same code can run on a live stream where the
// following cycles have not happened yet. The rules, their order and their thresholds are
// documented in docs/pipeline.md, "Cleaning rules"; each has a test in
// tests/pipeline/cleaning_test.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "cyclecast/pipeline/soh_data.h"

namespace cyclecast::pipeline {

struct CleaningOptions {
  // A charge time of exactly this many minutes is a fill value written by the cycler.
  double charge_time_fill_min = 20.0;
  // Charge times above this are interrupted tests (the reference data has some near 500 min,
  // against at most 34 min otherwise); 240 min still admits a C/4 charge.
  double charge_time_max_min = 240.0;
  // SOH spikes: a value further than spike_threshold_soh from the median of the previous
  // spike_median_cycles recorded SOH values is an outlier. The median is over recorded values
  // (outliers included), so a real, lasting change is accepted after about half that many
  // cycles instead of being rejected forever.
  int64_t spike_median_cycles = 5;
  double spike_threshold_soh = 0.03;
  // A row whose cycle number jumps further than this past the previous row is dropped rather
  // than filled (a corrupt cycle number would otherwise make millions of filler rows).
  int64_t max_gap_cycles = 500;
  // A row whose cycle number falls back to restart_max_cycle or below, at least restart_min_drop
  // cycles under the previous row's, restarts the numbering, as a cycler does after a restart or
  // a continuation test: it and the rows after it are renumbered after the last cycle seen,
  // instead of being dropped as out of order. A smaller fall-back is a late record (dropped).
  int64_t restart_max_cycle = 1;
  int64_t restart_min_drop = 10;
  // Windows must not span a filled gap longer than this many cycles (protocols.h): held values
  // across a long gap would teach or test a flat stretch that never happened. Counted here.
  int64_t max_window_gap_cycles = 10;
};

// How many values each rule changed, summed over cells. "Missing" values are replaced by the
// last good value of the same quantity (held), or stay NaN before the first good one. A NaN
// optional feature means "not reported" and is not counted; a NaN SOH counts as non-finite.
struct CleaningReport {
  int64_t cells = 0;
  int64_t rows_in = 0;
  int64_t rows_out = 0;
  int64_t non_finite = 0;            // NaN or infinite measurement -> missing
  int64_t non_positive = 0;          // zero or negative measurement -> missing
  int64_t fill_values = 0;           // charge time exactly the fill value -> missing
  int64_t charge_time_outliers = 0;  // charge time above charge_time_max_min -> missing
  int64_t soh_spikes = 0;            // SOH off the running median -> missing
  int64_t duplicate_cycles = 0;      // cycle number equal to the previous one: row dropped
  int64_t out_of_order_cycles = 0;   // cycle number below the previous one: row dropped
  int64_t gap_cycles_filled = 0;     // cycles absent from the data, inserted holding last values
  int64_t cycle_jumps_dropped = 0;   // rows jumping more than max_gap_cycles ahead: dropped
  int64_t leading_rows_dropped = 0;  // rows before the first usable SOH value
  int64_t soh_held = 0;              // rows whose SOH is a held value (spikes, missing SOH)
  int64_t cycle_restarts = 0;        // numbering restarted: later rows renumbered, not dropped
  int64_t long_gaps = 0;             // filled gaps longer than max_window_gap_cycles
  // Set by the severson-raw protocols, not by clean_series: continuation cells appended to
  // their parent (soh_data.h).
  int64_t continuations_joined = 0;

  CleaningReport& operator+=(const CleaningReport& other);
};

// Cleans one series in place (rows in arrival order). Afterwards cycles are consecutive and
// every SOH is finite; optional features may still be NaN before their first good value.
// cell.filled_gaps lists the rows inserted for missing cycles.
CleaningReport clean_series(CellSeries& cell, const CleaningOptions& options = {});

// Cleans every cell; cells left with no rows are removed.
CleaningReport clean_all(std::vector<CellSeries>& cells, const CleaningOptions& options = {});

}  // namespace cyclecast::pipeline
