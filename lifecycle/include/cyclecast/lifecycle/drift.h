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
// A cell's error grows with its age: forecasts from near the knee of its fade are harder than
// those of a young cell. One test over all forecasts reads a replay that starts on young cells
// and ages them as drift (scripts/demo did); BandedDrift below runs one test per SOH band of the
// forecast's origin, so that the reference of each forecast is the model's errors on cells in
// the same state.
//
// Not thread-safe; plain value types (the daemon holds one per champion under its own lock).
#pragma once

#include <array>
#include <cstdint>
#include <string>

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

// One PageHinkley per SOH band of the forecast's origin (the last input cycle's SOH), the bands
// of the training report (pipeline::soh_band: high >= 0.95 > medium >= 0.9 > low). Drift when
// any band's test raises it: a rise of the error among cells in the same state. Cells that age
// into a harder band start that band's test at its own level instead of raising the others'.
// In a band whose errors run above the held-out level, each sample is divided by the band's
// mean level so far (capped samples, before this one): its errors there are several held-out
// errors wide, and delta and threshold in held-out errors would read their spread as a rise.
// Where the band's level is at or below the held-out one samples go in as they are.
class BandedDrift {
 public:
  static constexpr std::size_t kBands = 3;
  static constexpr std::array<const char*, kBands> kBandNames = {"high", "medium", "low"};

  explicit BandedDrift(PageHinkleyOptions options = {});

  // Adds one normalized sample of a forecast whose origin had SOH `origin_soh`; a NaN
  // origin_soh (the origin cycle is not stored) counts in "low", where errors are largest, so
  // that it cannot raise the other bands' statistics. Returns true for the sample that raises
  // the alarm, once; NaN or negative samples are ignored.
  bool add(double x, double origin_soh);
  void reset() { *this = BandedDrift(options_); }

  bool drifted() const { return drifted_band_ >= 0; }
  // The band whose test raised the alarm; empty while none did.
  std::string drifted_band() const;
  // Samples over all bands, and the count at which the alarm was raised (0 while none).
  std::int64_t samples() const { return samples_; }
  std::int64_t drifted_at_sample() const { return drifted_at_sample_; }
  // The mean normalized error over all bands.
  double mean() const { return mean_; }
  // The highest band statistic now (the alarm's band once raised).
  double statistic() const;
  const PageHinkley& band(std::size_t i) const { return bands_[i]; }
  const PageHinkleyOptions& options() const { return options_; }

 private:
  PageHinkleyOptions options_;
  std::array<PageHinkley, kBands> bands_;
  std::array<double, kBands> levels_{};  // each band's mean capped sample so far
  std::int64_t samples_ = 0;
  double mean_ = 0.0;
  int drifted_band_ = -1;
  std::int64_t drifted_at_sample_ = 0;
};

}  // namespace cyclecast::lifecycle
