// Training-set aids for generalization across batches (issue 17, docs/pipeline.md, "Training
// aids"): augmentation of the windows' fade and gain, and a robust smoother of the training
// series. Both change only what the models learn from; the node's arithmetic, the validation and
// test windows and the baselines are untouched.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cyclecast/pipeline/soh_data.h"
#include "cyclecast/pipeline/windows.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

struct AugmentOptions {
  // Augmented copies of every training window, besides the window itself; 0 turns it off.
  int64_t copies = 0;
  // Each copy's fade (every SOH of the window, inputs and targets, minus the last input SOH) is
  // multiplied by exp(u), u uniform in [-fade_scale, fade_scale]: a cell that fades faster or
  // slower along the same curve.
  double fade_scale = 0.3;
  // Then every SOH is multiplied by 1 + v, v uniform in [-gain, gain]: a capacity measured
  // against a slightly different reference (another rig's calibration, another nominal).
  double gain = 0.02;
  uint64_t seed = 1;
};

// kInvalidArgument unless copies >= 0, fade_scale in [0, 2] and gain in [0, 0.5).
Result<void> check_augment_options(const AugmentOptions& options);

// The windows followed by `copies` augmented copies of each, encoded with the same spec (the
// spec is not refitted: the test windows are encoded with it too). The optional feature rows of
// a copy are the original's. A window with a non-finite SOH among its inputs or targets gets no
// copies, and neither does one whose copy would leave (0, 2) (a copy is never made up from bad
// data). The same windows, options and seed give the same copies.
Windows augment_windows(const Windows& windows, const FeatureSpec& spec,
                        const AugmentOptions& options);

// The cells with their SOH smoothed by a running median of 2 * radius + 1 cycles (shorter at the
// ends, centred otherwise), non-finite values left out of each median and kept where nothing
// finite is near. radius 0 returns the cells unchanged. Used on the training cells only: the
// training windows are made again from the smoothed series, so the models learn the fade without
// the single-cycle spikes a rig reports; the node still forecasts from the raw window.
std::vector<CellSeries> median_smoothed(std::span<const CellSeries> cells, int64_t radius);

}  // namespace cyclecast::pipeline
