#include "cyclecast/lifecycle/drift.h"

#include <algorithm>
#include <cmath>

namespace cyclecast::lifecycle {

bool page_hinkley_options_valid(const PageHinkleyOptions& o) {
  return std::isfinite(o.delta) && o.delta >= 0.0 && std::isfinite(o.threshold) &&
         o.threshold > 0.0 && o.min_samples >= 1 && std::isfinite(o.max_sample) &&
         o.max_sample > 0.0;
}

bool PageHinkley::add(double x) {
  if (!(x >= 0.0)) return false;  // NaN or negative: not an error magnitude
  x = std::min(x, options_.max_sample);
  ++samples_;
  mean_ += (x - mean_) / static_cast<double>(samples_);
  cumulative_ += x - mean_ - options_.delta;
  minimum_ = std::min(minimum_, cumulative_);
  if (drifted_ || samples_ < options_.min_samples) return false;
  if (statistic() <= options_.threshold) return false;
  drifted_ = true;
  drifted_at_sample_ = samples_;
  return true;
}

}  // namespace cyclecast::lifecycle
