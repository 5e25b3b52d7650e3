// Evaluation protocols: which windows a model trains on, which it is validated on and which it is
// tested on, for each kind of data source (docs/pipeline.md, "Evaluation protocols").
//   paper    severson-soh folder: test = the paper's segments (one window each); train = every
//            window of every series none of whose rows (input or target) meet a segment's
//            target rows;
//            validation = the windows of ~10 % of the series (by cell) taken out of train.
//   heldout  severson-raw folder, cleaned: train = cells whose paper_split is train (~15 % of
//            them, by cell, for validation); test = every window (stride 10) of the test1 cells.
//   split    any source, cleaned: cells split 70/15/15 into train/validation/test.
//   cross-batch  severson-raw folder with cycles_qd_approx.csv read too, cleaned, SOH only: leave
//            one batch out; test = every window (stride 10) of the held-out batch's cells; train
//            = the other batches' cells, ~15 % of them (by cell) for validation, so model
//            selection never sees the held-out batch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cyclecast/pipeline/cleaning.h"
#include "cyclecast/pipeline/metrics.h"
#include "cyclecast/pipeline/soh_data.h"
#include "cyclecast/pipeline/windows.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

struct ProtocolOptions {
  int64_t input_len = 100;  // W
  int64_t horizon = 100;    // H
  double delta_scale = 100.0;
  bool use_optional_features = true;  // IR, temperature, charge time where the data has them
  int64_t train_stride = 1;           // training and validation windows
  int64_t test_stride = 10;           // heldout and split test windows
  double paper_validation_fraction = 0.10;
  double heldout_validation_fraction = 0.15;
  double split_validation_fraction = 0.15;
  double split_test_fraction = 0.15;
  uint64_t seed = 1;  // of the cell splits
  CleaningOptions cleaning;
  RawReadOptions raw;
  double ridge_lambda = 1e-3;  // of the ridge baseline in evaluate_baselines
  // cross-batch: the batch held out for testing (severson-raw `batch`, e.g. "2017-05-12"); empty
  // holds out the earliest batch (in name order).
  std::string test_batch;
  double cross_batch_validation_fraction = 0.15;
};

struct EvalProtocol {
  std::string name;  // "paper", "heldout", "split" or "cross-batch"
  FeatureSpec spec;  // fitted on the training cells only
  Windows train, validation, test;
  std::vector<std::string> test_cells;  // ids of the cells the test windows come from
  CleaningReport cleaning;              // all zero for the paper protocol (data used as given)
  // The series the windows' refs index into (after cleaning).
  SeriesSet data;
  // SOH band of each test window: the segment's band for paper; otherwise from its last input
  // SOH: "high" >= 0.95, "medium" >= 0.9, "low" below.
  std::vector<std::string> test_bands;
  double ridge_lambda = 1e-3;
  // paper: training and validation windows left out because their rows meet a test segment's
  // target rows (reported with the cleaning counts).
  int64_t windows_left_out = 0;
  // The strides the windows were made with (ProtocolOptions), for windows made again on other
  // cell splits (the k-fold scoring of train.h).
  int64_t train_stride = 1;
  int64_t test_stride = 10;
  // Windows (train, validation and test) left out because they span a filled gap longer than
  // options.cleaning.max_window_gap_cycles (cleaning.h); reported with the cleaning counts.
  int64_t windows_across_gaps = 0;
  // cross-batch: the held-out batch and the batches trained (and validated) on; empty otherwise.
  std::string test_batch;
  std::vector<std::string> train_batches;
};

Result<EvalProtocol> paper_protocol(const std::filesystem::path& dir,
                                    const ProtocolOptions& options = {});
Result<EvalProtocol> heldout_protocol(const std::filesystem::path& dir,
                                      const ProtocolOptions& options = {});
// Leave one batch out (see the top of this file). kInvalidArgument for a folder that is not
// severson-raw, a named batch the data lacks, or fewer than two batches.
Result<EvalProtocol> cross_batch_protocol(const std::filesystem::path& dir,
                                          const ProtocolOptions& options = {});
Result<EvalProtocol> data_protocol(const std::filesystem::path& path,
                                   const ProtocolOptions& options = {});
// By name: "paper", "heldout", "split", "cross-batch", or "auto" (paper for a severson-soh folder,
// heldout for a severson-raw folder, split otherwise). kInvalidArgument for another name or a
// protocol that does not fit the source.
Result<EvalProtocol> load_protocol(const std::filesystem::path& path, const std::string& name,
                                   const ProtocolOptions& options = {});

// Whether rows [first_row, first_row + rows) of `cell` meet a gap that cleaning filled with more
// than `max_gap` rows.
bool spans_long_gap(const CellSeries& cell, int64_t first_row, int64_t rows, int64_t max_gap);

// The band of a window from its last input SOH (see EvalProtocol::test_bands).
const char* soh_band(double last_soh);

// Metrics of every baseline on the protocol's test windows, in this order: "last value",
// "line-10", "quadratic-50", "ridge" (fitted on protocol.train with protocol.ridge_lambda;
// left out if the fit fails), and, when the spec has optional features, "ridge (SOH only)": the
// same fitted on the SOH deltas and level alone.
std::vector<std::pair<std::string, ForecastMetrics>> evaluate_baselines(
    const EvalProtocol& protocol);

}  // namespace cyclecast::pipeline
