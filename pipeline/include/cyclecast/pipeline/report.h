// The run report of a retraining run: report.json (every figure, for machines and for diffing
// runs) and report.html (one self-contained page: inline CSS and inline SVG plots, no script, no
// external file), both built from one RunReport. What each contains is in
// docs/pipeline-report.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cyclecast/pipeline/gate_evidence.h"
#include "cyclecast/pipeline/intervals.h"
#include "cyclecast/pipeline/metrics.h"
#include "cyclecast/pipeline/pareto.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// One row of the stages table: a model of the run (teacher, stage 1, pruned, stage 2, int8) or
// a baseline, scored on the protocol's evaluation windows.
struct StageRow {
  std::string stage;  // "teacher", "stage1", "pruned", "stage2", "int8", "baseline"
  std::string model;  // candidate or baseline name
  ForecastMetrics metrics;
};

// One evaluation window drawn as forecast against truth. Values are absolute SOH; `input` has W
// values (cycles first_cycle .. first_cycle + W - 1), every forecast and `truth` H values (the
// cycles after). An empty forecast is not drawn; NaN values leave a gap.
struct SampleForecast {
  std::string cell;
  std::string band;  // the SOH band the sample stands for, e.g. "0.95-1.00"
  int64_t first_cycle = 0;
  std::vector<double> input, truth, teacher, student_float, student_int8, best_baseline;
};

struct RunReport {
  std::string run_id;
  std::string created_at;  // ISO 8601, UTC
  std::string data_source;
  std::string protocol;  // "paper", "heldout", or the evaluation set's name
  std::map<std::string, std::string> settings;
  std::vector<StageRow> stages;  // teacher, stage 1, pruned, stage 2, int8 and the baselines
  std::vector<Candidate> candidates;
  std::vector<size_t> front;  // indices into candidates (pareto_front)
  // The deployed student; no choice was made when choice.index >= candidates.size() (every
  // candidate over budget), and the report says so.
  Choice choice;
  std::vector<SampleForecast> samples;
  std::vector<std::pair<std::string, std::vector<double>>> error_by_step;  // model, MAE at 1..H
  std::vector<std::pair<std::string, double>> timings_s;                   // stage, seconds
  std::vector<std::pair<std::string, int64_t>> cleaning;  // cleaning rule, values it changed
  GateEvidence gate_evidence;  // the chosen student against the node's baselines
  // The chosen student's prediction intervals and their coverage on the test windows (none when
  // the run chose no student).
  std::optional<IntervalReport> intervals;
  Budget budget;  // the deployment budget the choice was made under (drawn on the Pareto plot)

  bool has_choice() const { return choice.index < candidates.size(); }
};

// The report as JSON text (format "cyclecast-report", version 1; NaN figures are null) and as
// one HTML page. Pure functions of the report.
std::string report_json_text(const RunReport& report);
std::string report_html_text(const RunReport& report);

// Write the text above to `path`, through `path` + ".tmp" renamed into place, so a reader never
// sees half a report. Errors: kIo (the file could not be written or renamed).
Result<void> write_report_json(const std::filesystem::path& path, const RunReport& report);
Result<void> write_report_html(const std::filesystem::path& path, const RunReport& report);

// A run's evidence against the node's baselines as the model's lineage and `cyclecast train
// --json` show it (report.json adds every comparison); NaN figures are null; null when the run
// has none.
nlohmann::ordered_json gate_evidence_json(const GateEvidence& evidence);

}  // namespace cyclecast::pipeline
