// Reader of the DLNet paper's smoothed SOH series (severson-soh/soh.csv, segments.json) and the
// windowing used by the train-vs-PyTorch benchmark and the teacher evaluation. Bench-only: the
// service's own readers belong to pipeline/.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cyclecast/models/training.h"
#include "cyclecast/result.h"

namespace cyclecast::bench {

// series name -> SOH values by row.
using SohSeries = std::map<std::string, std::vector<double>>;

struct Segment {
  std::string series;
  int64_t input_begin = 0;   // rows [input_begin, input_begin + 100)
  int64_t target_begin = 0;  // rows [target_begin, target_end)
  int64_t target_end = 0;
};

Result<SohSeries> read_soh_csv(const std::string& path);
Result<std::vector<Segment>> read_segments(const std::string& path);

// Min-max scaling fitted on the training series (the paper scales SOH to [0, 1]).
struct Scaling {
  double offset = 0.0;
  double scale = 1.0;
  double apply(double soh) const { return (soh - offset) / scale; }
  double invert(double scaled) const { return scaled * scale + offset; }
};

struct WindowSets {
  models::Dataset<float> train;
  models::Dataset<float> validation;
  Scaling scaling;
};

// Every window (stride `stride`) of input_len + horizon consecutive rows. Series whose position
// in name order is a multiple of `validation_every` (0: none) go to validation; windows that
// overlap an evaluation segment (its input or target rows) are left out of both sets, so the
// reported segment error is not measured on training windows.
WindowSets make_windows(const SohSeries& series, const std::vector<Segment>& held_out,
                        int64_t input_len, int64_t horizon, int64_t stride,
                        int64_t validation_every);

// Mean absolute error in SOH units over the segments, predicting with `model`.
double segment_mae(const models::Model<float>& model, const float* params, const SohSeries& series,
                   const std::vector<Segment>& segments, const Scaling& scaling);

// The data folder: $CYCLECAST_DATA_DIR, else ../shared/data relative to the source tree.
std::string data_dir();

}  // namespace cyclecast::bench
