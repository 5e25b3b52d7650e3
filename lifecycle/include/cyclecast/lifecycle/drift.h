// Drift of a deployed model (docs/lifecycle.md, "Drift"): a one-sided Page-Hinkley test on the
// champion's live errors, each normalized by the model's held-out error (so that the parameters
// mean the same for every model and every data set). It answers one question: has the mean of
// the normalized error risen since the monitor started? A level that was high from the start is
// the live-error alert's business, not this test's.
//
// Page-Hinkley, for an increase of the mean: with x̄_t the running mean of x_1..x_t,
//   m_t = sum over i <= t of (x_i - x̄_i - delta),   M_t = min over i <= t of m_i,
//   PH_t = m_t - M_t;   drift when PH_t > threshold (and t >= min_samples).
// Under a stationary stream m_t drifts down by about delta per sample, so PH_t stays small;
// after a rise of the mean by more than delta it grows by about (rise - delta) per sample.
//
// Not thread-safe; a plain value type (the daemon holds one per champion under its own lock).
#pragma once

#include <cstdint>

namespace cyclecast::lifecycle {

struct PageHinkleyOptions {
  // The rise of the mean tolerated without alarm, in units of the held-out error: 1 lets the
  // live error rise to twice the held-out one before the statistic grows.
  double delta = 1.0;
  // Alarm threshold (lambda) on PH_t, in the same units: twenty samples five held-out errors
  // above the mean, or a hundred at one above it past the tolerance. A cell's errors are
  // correlated from one forecast to the next, so a stationary stream wanders far more than
  // independent samples would; 100 keeps it quiet even when the live error is steadily twice the
  // held-out one (docs/lifecycle.md, "Drift", has the measurements).
  double threshold = 100.0;
  // No alarm before this many samples: the running mean must settle first.
  std::int64_t min_samples = 30;
  // Each sample is capped at this many held-out errors, so that one glitched cycle (a capacity
  // spike reads 40 % high, hundreds of held-out errors) cannot raise an alarm on its own.
  double max_sample = 10.0;
};

// Each option must be finite, delta >= 0, threshold > 0, min_samples >= 1, max_sample > 0.
bool page_hinkley_options_valid(const PageHinkleyOptions& options);

class PageHinkley {
 public:
  explicit PageHinkley(PageHinkleyOptions options = {}) : options_(options) {}

  // Adds one normalized sample (|live error| / held-out error). A NaN or negative sample is
  // ignored (returns false). Returns true for the sample that raises the alarm, once; after
  // that the alarm stays raised (drifted()) until reset().
  bool add(double x);
  void reset() { *this = PageHinkley(options_); }

  bool drifted() const { return drifted_; }
  std::int64_t samples() const { return samples_; }
  // The sample count at which the alarm was raised (1-based); 0 while none.
  std::int64_t drifted_at_sample() const { return drifted_at_sample_; }
  double mean() const { return mean_; }
  // PH_t now: how far the cumulative excess is above its minimum.
  double statistic() const { return cumulative_ - minimum_; }
  const PageHinkleyOptions& options() const { return options_; }

 private:
  PageHinkleyOptions options_;
  std::int64_t samples_ = 0;
  double mean_ = 0.0;
  double cumulative_ = 0.0;  // m_t
  double minimum_ = 0.0;     // M_t
  bool drifted_ = false;
  std::int64_t drifted_at_sample_ = 0;
};

}  // namespace cyclecast::lifecycle
