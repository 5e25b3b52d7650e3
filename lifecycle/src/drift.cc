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

namespace {

// The band index of an origin SOH, as pipeline::soh_band names them.
std::size_t band_of(double origin_soh) {
  if (origin_soh >= 0.95) return 0;
  if (origin_soh >= 0.9) return 1;
  return 2;  // below, or NaN
}

}  // namespace

BandedDrift::BandedDrift(PageHinkleyOptions options)
    : options_(options), bands_{PageHinkley(options), PageHinkley(options), PageHinkley(options)} {}

bool BandedDrift::add(double x, double origin_soh) {
  if (!(x >= 0.0)) return false;
  ++samples_;
  mean_ += (std::min(x, options_.max_sample) - mean_) / static_cast<double>(samples_);
  const std::size_t band = band_of(origin_soh);
  const double capped = std::min(x, options_.max_sample);
  // In units of the band's own level when that is above the held-out one (drift.h says why).
  const double scale = std::max(1.0, levels_[band]);
  const auto seen = static_cast<double>(bands_[band].samples());
  levels_[band] += (capped - levels_[band]) / (seen + 1.0);
  if (!bands_[band].add(capped / scale) || drifted()) return false;
  drifted_band_ = static_cast<int>(band);
  drifted_at_sample_ = samples_;
  return true;
}

std::string BandedDrift::drifted_band() const {
  return drifted() ? kBandNames[static_cast<std::size_t>(drifted_band_)] : "";
}

double BandedDrift::statistic() const {
  if (drifted()) return bands_[static_cast<std::size_t>(drifted_band_)].statistic();
  double highest = 0.0;
  for (const PageHinkley& b : bands_)
    highest = std::max(highest, b.statistic());
  return highest;
}

}  // namespace cyclecast::lifecycle
