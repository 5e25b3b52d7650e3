// The Page-Hinkley drift test (lifecycle/drift.h) on synthetic streams shaped like a champion's
// live errors: each cycle brings one normalized error per cell, and the errors of one cell are
// correlated from one forecast to the next (consecutive forecasts share most of their inputs).
// The figures asserted here are the ones docs/lifecycle.md ("Drift") states.
#include "cyclecast/lifecycle/drift.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace cyclecast::lifecycle {
namespace {

// |e| / held-out MAE for a Gaussian e whose MAE is the held-out one: |N(0, sigma)| has mean
// sigma * sqrt(2 / pi), so sigma = sqrt(pi / 2) gives a mean of 1.
constexpr double kSigmaForMeanOne = 1.2533141373155003;
constexpr int kCells = 10;
// Correlation of a cell's error from one forecast to the next.
constexpr double kPersistence = 0.9;

// A stream of per-cycle errors of kCells cells, each an AR(1) series with unit MAE, plus a bias
// that grows by `growth_per_cycle` held-out errors per cycle from `change_cycle` on (a fade rate
// that changed: the model's +H forecasts miss by more every cycle past the change).
class ErrorStream {
 public:
  ErrorStream(std::uint64_t seed, std::int64_t change_cycle, double growth_per_cycle)
      : rng_(seed), change_cycle_(change_cycle), growth_(growth_per_cycle), state_(kCells, 0.0) {
    for (double& s : state_)
      s = kSigmaForMeanOne * normal_(rng_);
  }

  // The errors of cycle `cycle`, one per cell.
  std::vector<double> cycle(std::int64_t cycle) {
    const double innovation = kSigmaForMeanOne * std::sqrt(1.0 - kPersistence * kPersistence);
    const double bias =
        cycle >= change_cycle_ ? growth_ * static_cast<double>(cycle - change_cycle_ + 1) : 0.0;
    std::vector<double> out;
    for (double& s : state_) {
      s = kPersistence * s + innovation * normal_(rng_);
      out.push_back(std::abs(s + bias));
    }
    return out;
  }

 private:
  std::mt19937_64 rng_;
  std::normal_distribution<double> normal_;
  std::int64_t change_cycle_;
  double growth_;
  std::vector<double> state_;
};

// Feeds cycles 1..last; returns the cycle whose errors raised the alarm, 0 when none did.
std::int64_t alarm_cycle(PageHinkley& ph, ErrorStream& stream, std::int64_t last) {
  for (std::int64_t c = 1; c <= last; ++c) {
    for (double x : stream.cycle(c)) {
      if (ph.add(x)) return c;
    }
  }
  return 0;
}

constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

TEST(PageHinkley, NoAlarmOnStationaryCorrelatedErrorsOverManySeeds) {
  // 50 seeds x 2000 cycles x 10 cells: a million samples at the default options.
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    PageHinkley ph;
    ErrorStream stream(seed, kNever, 0.0);
    EXPECT_EQ(alarm_cycle(ph, stream, 2000), 0) << "seed " << seed;
    EXPECT_FALSE(ph.drifted());
    EXPECT_NEAR(ph.mean(), 1.0, 0.1) << "seed " << seed;
  }
}

TEST(PageHinkley, NoAlarmWhenTheLiveErrorIsHigherThanHeldOutFromTheStart) {
  // A model twice as bad live as on its test cells, but steadily so: not drift (the live-error
  // alert watches the level). Still the design with BandedDrift: within one SOH band a steady
  // level is the band's reference; what ages cells across bands is BandedDrift's business.
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    PageHinkley ph;
    ErrorStream stream(seed, 1, 0.0);
    std::int64_t alarm = 0;
    for (std::int64_t c = 1; c <= 1000 && alarm == 0; ++c) {
      for (double x : stream.cycle(c)) {
        if (ph.add(2.0 * x)) alarm = c;
      }
    }
    EXPECT_EQ(alarm, 0) << "seed " << seed;
  }
}

// Cells that age through the SOH bands as scripts/demo's do: kCells cells whose origin SOH falls
// from `start` by 0.0001 per cycle (0.1 over 1000 cycles), staggered by 0.005 per cell, with the
// live error level of each band that the demo's replay measured relative to the held-out MAE
// (docs/lifecycle.md, "Drift"): 0.13 in high, 1.2 in medium, 4.9 in low.
struct AgingCell {
  double origin_soh;
  double error;
};
std::vector<AgingCell> aging_cycle(ErrorStream& stream, std::int64_t cycle, double start) {
  std::vector<AgingCell> out;
  const std::vector<double> errors = stream.cycle(cycle);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    const double soh = start - 0.005 * static_cast<double>(i) - 0.0001 * static_cast<double>(cycle);
    const double level = soh >= 0.95 ? 0.13 : soh >= 0.9 ? 1.2 : 4.9;
    out.push_back({soh, level * errors[i]});
  }
  return out;
}

TEST(BandedDrift, NoAlarmWhenCellsAgeIntoHarderBands) {
  // 20 seeds x 2000 cycles x 10 cells, from SOH 0.99 to below 0.8. One test over all bands (the
  // first design) raises a false alarm on every seed; one test per band raises none.
  int single_alarms = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    BandedDrift banded;
    PageHinkley single;
    ErrorStream stream(seed, kNever, 0.0);
    for (std::int64_t c = 1; c <= 2000; ++c) {
      for (const AgingCell& cell : aging_cycle(stream, c, 0.99)) {
        EXPECT_FALSE(banded.add(cell.error, cell.origin_soh))
            << "seed " << seed << ", cycle " << c << ", band " << banded.drifted_band();
        single.add(cell.error);
      }
    }
    if (single.drifted()) ++single_alarms;
    EXPECT_LT(banded.statistic(), banded.options().threshold);
    EXPECT_EQ(banded.samples(), 2000 * kCells);
  }
  EXPECT_EQ(single_alarms, 20) << "the stream is one the first design took for drift";
}

TEST(BandedDrift, DetectsAFadeRateChangeWithinItsBandWithinEightCycles) {
  // Cells in the medium band, the error growing by one held-out error per cycle from cycle 201
  // on: the same bound as one test over all forecasts.
  std::int64_t worst = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    BandedDrift banded;
    ErrorStream stream(seed, 201, 1.0);
    std::int64_t at = 0;
    for (std::int64_t c = 1; c <= 400 && at == 0; ++c) {
      for (double x : stream.cycle(c)) {
        if (banded.add(x, 0.93)) at = c;
      }
    }
    ASSERT_GE(at, 201) << "seed " << seed << ": alarm before the change";
    EXPECT_EQ(banded.drifted_band(), "medium");
    EXPECT_EQ(banded.statistic(), banded.band(1).statistic());
    worst = std::max(worst, at - 200);
  }
  EXPECT_LE(worst, 8) << "cycles from the change to the alarm, worst of 50 seeds";
}

TEST(BandedDrift, BandsFollowTheTrainingReportAndAnUnknownOriginCountsAsLow) {
  PageHinkleyOptions options;
  options.min_samples = 1;
  options.threshold = 5.0;
  BandedDrift banded(options);
  EXPECT_FALSE(banded.add(3.0, 0.95));          // high: 3 - 3 - 1 < 0
  EXPECT_FALSE(banded.add(1.0, 0.9499));        // medium
  EXPECT_FALSE(banded.add(std::nan(""), 0.5));  // ignored
  EXPECT_FALSE(banded.add(0.5, std::nan("")));  // low
  EXPECT_EQ(banded.band(0).samples(), 1);
  EXPECT_EQ(banded.band(1).samples(), 1);
  EXPECT_EQ(banded.band(2).samples(), 1);
  EXPECT_EQ(banded.samples(), 3);
  EXPECT_DOUBLE_EQ(banded.mean(), 4.5 / 3.0);
  EXPECT_FALSE(banded.drifted());
  EXPECT_EQ(banded.drifted_band(), "");
  for (int i = 0; i < 39; ++i)
    EXPECT_FALSE(banded.add(0.5, 0.7));
  // The low band rises from half the held-out error to ten: 10 - 0.73 - 1 > 5 at once.
  EXPECT_TRUE(banded.add(10.0, 0.7));
  EXPECT_EQ(banded.drifted_band(), "low");
  EXPECT_EQ(banded.drifted_at_sample(), 43);
  EXPECT_GT(banded.statistic(), 5.0);
  EXPECT_EQ(banded.statistic(), banded.band(2).statistic());
  EXPECT_FALSE(banded.add(10.0, 0.99)) << "raised once";
  banded.reset();
  EXPECT_FALSE(banded.drifted());
  EXPECT_EQ(banded.samples(), 0);
  EXPECT_EQ(banded.options().threshold, 5.0);
}

TEST(BandedDrift, ABandAboveTheHeldOutLevelIsMeasuredInItsOwnLevel) {
  // A band steadily at five held-out errors, then two samples at ten: twice its level, within the
  // tolerance (delta 1: up to twice), so no alarm; in held-out errors (one test, unscaled) the same
  // samples add 3.9 each and cross a threshold of 5.
  PageHinkleyOptions options;
  options.min_samples = 1;
  options.threshold = 5.0;
  BandedDrift banded(options);
  PageHinkley single(options);
  for (int i = 0; i < 40; ++i) {
    EXPECT_FALSE(banded.add(5.0, 0.85));
    single.add(5.0);
  }
  EXPECT_FALSE(banded.add(10.0, 0.85));
  EXPECT_FALSE(banded.add(10.0, 0.85));
  single.add(10.0);
  EXPECT_TRUE(single.add(10.0));
  EXPECT_FALSE(banded.drifted());
}

TEST(PageHinkley, DetectsAFadeRateChangeWithinEightCycles) {
  // 200 quiet cycles, then the error grows by one held-out error per cycle (a fade rate change
  // the model does not follow). Over 50 seeds of 10 cells the alarm comes at most 8 cycles after
  // the change.
  std::int64_t worst = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    PageHinkley ph;
    ErrorStream stream(seed, 201, 1.0);
    const std::int64_t at = alarm_cycle(ph, stream, 400);
    ASSERT_GE(at, 201) << "seed " << seed << ": alarm before the change";
    worst = std::max(worst, at - 200);
  }
  EXPECT_LE(worst, 8) << "cycles from the change to the alarm, worst of 50 seeds";
}

TEST(PageHinkley, DetectsAStepShiftWithinABoundedNumberOfSamples) {
  // A step from 1 to 4 held-out errors (a model suddenly four times worse): at the defaults each
  // sample then adds about 4 - 1 - 1 = 2, so the threshold of 100 is crossed after about 50
  // samples (the running mean creeps up meanwhile, the samples are noisy); 100 bounds all 50
  // seeds.
  std::int64_t worst = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    PageHinkley ph;
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    for (int i = 0; i < 2000; ++i)
      ASSERT_FALSE(ph.add(std::abs(kSigmaForMeanOne * normal(rng))));
    std::int64_t samples = 0;
    while (!ph.drifted() && samples < 1000) {
      ph.add(4.0 * std::abs(kSigmaForMeanOne * normal(rng)));
      ++samples;
    }
    ASSERT_TRUE(ph.drifted()) << "seed " << seed;
    EXPECT_EQ(ph.drifted_at_sample(), 2000 + samples);
    worst = std::max(worst, samples);
  }
  EXPECT_LE(worst, 100) << "samples from the step to the alarm, worst of 50 seeds";
}

TEST(PageHinkley, OneHugeOutlierIsCappedAndRaisesNoAlarm) {
  PageHinkley ph;
  for (int i = 0; i < 100; ++i)
    ph.add(1.0);
  EXPECT_FALSE(ph.add(1e6)) << "capped at max_sample = 10";
  EXPECT_LT(ph.statistic(), ph.options().threshold);
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(ph.add(1.0));
}

TEST(PageHinkley, NoAlarmBeforeMinSamplesAndNaNIsIgnored) {
  PageHinkleyOptions options;
  options.min_samples = 20;
  options.threshold = 5.0;
  PageHinkley ph(options);
  EXPECT_FALSE(ph.add(std::nan("")));
  EXPECT_FALSE(ph.add(-1.0));
  EXPECT_EQ(ph.samples(), 0);
  ph.add(0.0);
  for (int i = 1; i < 19; ++i)
    EXPECT_FALSE(ph.add(10.0)) << "sample " << i + 1 << " is before min_samples";
  EXPECT_GT(ph.statistic(), options.threshold);
  EXPECT_TRUE(ph.add(10.0)) << "the 20th sample may raise it";
  EXPECT_EQ(ph.drifted_at_sample(), 20);
  EXPECT_FALSE(ph.add(10.0)) << "raised once";
  EXPECT_TRUE(ph.drifted());
  ph.reset();
  EXPECT_FALSE(ph.drifted());
  EXPECT_EQ(ph.samples(), 0);
  EXPECT_EQ(ph.statistic(), 0.0);
  EXPECT_EQ(ph.options().min_samples, 20) << "reset keeps the options";
}

TEST(PageHinkley, OptionsAreChecked) {
  EXPECT_TRUE(page_hinkley_options_valid({}));
  EXPECT_FALSE(page_hinkley_options_valid({.delta = -0.1}));
  EXPECT_FALSE(page_hinkley_options_valid({.delta = 0.5, .threshold = 0.0}));
  EXPECT_FALSE(page_hinkley_options_valid({.delta = 0.5, .threshold = std::nan("")}));
  EXPECT_FALSE(page_hinkley_options_valid({.delta = 0.5, .threshold = 50, .min_samples = 0}));
  EXPECT_FALSE(page_hinkley_options_valid(
      {.delta = 0.5, .threshold = 50, .min_samples = 1, .max_sample = 0.0}));
}

}  // namespace
}  // namespace cyclecast::lifecycle
