// Tests of the training aids (augment.h): augmented copies of training windows (their fade and
// gain, the encoding, NaN and flat windows, determinism per seed) and the running median of the
// training series.
#include "cyclecast/pipeline/augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace cyclecast::pipeline {
namespace {

constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

// A cell whose SOH falls by `fade` per row from 1, with IR 0.02 + 0.001 * row.
CellSeries linear_fade_cell(const std::string& id, int64_t rows, double fade) {
  CellSeries cell{id, "", 1.1, {}, "", {}};
  for (int64_t r = 0; r < rows; ++r) {
    const double x = static_cast<double>(r);
    cell.rows.push_back(SeriesRow{r + 1, 1.0 - fade * x, 0.02 + 0.001 * x, kNoValue, kNoValue});
  }
  return cell;
}

struct AugmentFixture {
  std::vector<CellSeries> cells;
  FeatureSpec spec;
  Windows windows;
};

// Windows W 4, H 3 at stride 1 over the given cells, the spec fitted on them.
AugmentFixture windows_over(std::vector<CellSeries> cells, bool features = false) {
  FeatureOptions options;
  options.input_len = 4;
  options.horizon = 3;
  options.use_optional_features = features;
  AugmentFixture f{std::move(cells), {}, {}};
  auto spec = fit_feature_spec(f.cells, options);
  EXPECT_TRUE(spec.ok());
  f.spec = *spec;
  f.windows = make_windows(f.cells, f.spec, 1);
  return f;
}

AugmentOptions copies(int64_t n, uint64_t seed = 7) {
  AugmentOptions options;
  options.copies = n;
  options.seed = seed;
  return options;
}

TEST(AugmentWindows, KeepsTheOriginalsFirstAndAddsTheCopiesAfterThem) {
  const AugmentFixture f = windows_over({linear_fade_cell("a", 12, 0.01)});
  const Windows out = augment_windows(f.windows, f.spec, copies(2));
  ASSERT_EQ(out.size(), 3 * f.windows.size());
  EXPECT_EQ(out.inputs.leftCols(f.windows.size()), f.windows.inputs);
  EXPECT_EQ(out.targets.leftCols(f.windows.size()), f.windows.targets);
  for (int64_t i = 0; i < f.windows.size(); ++i) {
    // Copies come in window order, two per window, and keep the window's place.
    EXPECT_EQ(out.refs[static_cast<size_t>(f.windows.size() + 2 * i)].first_row,
              f.windows.refs[static_cast<size_t>(i)].first_row);
    EXPECT_EQ(out.refs[static_cast<size_t>(f.windows.size() + 2 * i + 1)].first_row,
              f.windows.refs[static_cast<size_t>(i)].first_row);
  }
}

TEST(AugmentWindows, ZeroCopiesReturnsTheWindowsUnchanged) {
  const AugmentFixture f = windows_over({linear_fade_cell("a", 12, 0.01)});
  const Windows out = augment_windows(f.windows, f.spec, copies(0));
  EXPECT_EQ(out.inputs, f.windows.inputs);
  EXPECT_EQ(out.targets, f.windows.targets);
  EXPECT_EQ(out.last_soh, f.windows.last_soh);
}

TEST(AugmentWindows, ACopyIsTheWindowWithItsFadeScaledAndItsGainAppliedEncodedLikeAnyWindow) {
  const AugmentFixture f = windows_over({linear_fade_cell("a", 12, 0.01)});
  const Windows out = augment_windows(f.windows, f.spec, copies(1));
  const int64_t n = f.windows.size();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = n + i;
    const double last = f.windows.last_soh[static_cast<size_t>(i)];
    const double copy_last = out.last_soh[static_cast<size_t>(c)];
    // The copy's inputs and targets are g * (last + s * (soh - last)) for one (s, g) per copy:
    // recover them from the first input and the last input.
    const double gain = copy_last / last;
    const double fade = (out.input_soh(0, c) / gain - last) / (f.windows.input_soh(0, i) - last);
    EXPECT_GE(fade, std::exp(-0.3) - 1e-9);
    EXPECT_LE(fade, std::exp(0.3) + 1e-9);
    EXPECT_GE(gain, 0.98 - 1e-12);
    EXPECT_LE(gain, 1.02 + 1e-12);
    for (int64_t j = 0; j < f.spec.horizon; ++j) {
      const double truth = gain * (last + fade * (f.windows.truth_soh(j, i) - last));
      EXPECT_NEAR(out.truth_soh(j, c), truth, 1e-12);
      EXPECT_NEAR(out.targets(j, c), (truth - copy_last) * f.spec.delta_scale, 1e-5);
    }
    // Encoded as the window of those SOH values would be, so the models see a plausible input.
    std::vector<SeriesRow> rows(4);
    for (int64_t t = 0; t < 4; ++t)
      rows[static_cast<size_t>(t)].soh = out.input_soh(t, c);
    EXPECT_EQ(out.inputs.col(c), encode_input(rows, f.spec));
  }
}

TEST(AugmentWindows, KeepsTheOptionalFeatureRowsOfTheOriginal) {
  const AugmentFixture f = windows_over({linear_fade_cell("a", 12, 0.01)}, true);
  ASSERT_EQ(f.spec.features.size(), 1u);
  const Windows out = augment_windows(f.windows, f.spec, copies(1));
  const int64_t n = f.windows.size();
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(out.inputs.col(n + i).segment(6, 4), f.windows.inputs.col(i).segment(6, 4));
  }
}

TEST(AugmentWindows, TheSameSeedGivesTheSameCopiesAndAnotherSeedOthers) {
  const AugmentFixture f = windows_over({linear_fade_cell("a", 12, 0.01)});
  const Windows a = augment_windows(f.windows, f.spec, copies(2, 5));
  const Windows b = augment_windows(f.windows, f.spec, copies(2, 5));
  const Windows c = augment_windows(f.windows, f.spec, copies(2, 6));
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.targets, b.targets);
  EXPECT_NE(a.targets, c.targets);
}

TEST(AugmentWindows, AWindowWithANonFiniteSohGetsNoCopyAndTheOthersKeepTheirs) {
  AugmentFixture f = windows_over({linear_fade_cell("a", 12, 0.01)});
  const Windows clean = augment_windows(f.windows, f.spec, copies(1));
  // Window 2 with a NaN input and window 4 with an infinite target.
  f.windows.input_soh(1, 2) = kNoValue;
  f.windows.truth_soh(0, 4) = std::numeric_limits<double>::infinity();
  const Windows out = augment_windows(f.windows, f.spec, copies(1));
  const int64_t n = f.windows.size();
  ASSERT_EQ(out.size(), 2 * n - 2);
  for (int64_t c = n; c < out.size(); ++c) {
    EXPECT_TRUE(out.inputs.col(c).allFinite());
    EXPECT_TRUE(out.targets.col(c).allFinite());
  }
  // The windows after the bad ones are copied exactly as without them (a stream per window).
  EXPECT_EQ(out.targets.col(out.size() - 1), clean.targets.col(clean.size() - 1));
}

TEST(AugmentWindows, AFlatWindowStaysFlatAtItsShiftedLevel) {
  const AugmentFixture f = windows_over({linear_fade_cell("flat", 12, 0.0)});
  const Windows out = augment_windows(f.windows, f.spec, copies(3));
  const int64_t w = f.spec.input_len;
  for (int64_t c = f.windows.size(); c < out.size(); ++c) {
    for (int64_t t = 0; t < w; ++t)
      EXPECT_EQ(out.inputs(t, c), 0.0f);  // no shape: nothing to scale
    EXPECT_TRUE(out.targets.col(c).isZero());
    // The amplitude floor sets the gain row, as for the original.
    EXPECT_FLOAT_EQ(out.inputs(f.spec.gain_index(), c),
                    static_cast<float>(f.spec.amp_floor * f.spec.delta_scale));
    EXPECT_NEAR(out.last_soh[static_cast<size_t>(c)], 1.0, 0.02 + 1e-12);
  }
}

TEST(AugmentWindows, NoCopyLeavesThePlausibleSohRange) {
  // A cell falling to 0.05: a large fade scale would take some copies below 0.
  const AugmentFixture f = windows_over({linear_fade_cell("steep", 12, 0.08)});
  AugmentOptions options = copies(8);
  options.fade_scale = 2.0;
  const Windows out = augment_windows(f.windows, f.spec, options);
  EXPECT_LT(out.size(), 9 * f.windows.size());
  for (int64_t c = 0; c < out.size(); ++c) {
    EXPECT_GT(out.truth_soh.col(c).minCoeff(), 0.0);
    EXPECT_GT(out.input_soh.col(c).minCoeff(), 0.0);
  }
}

TEST(AugmentWindows, OptionsOutOfRangeAreRefused) {
  EXPECT_TRUE(check_augment_options(copies(1)).ok());
  AugmentOptions bad = copies(-1);
  EXPECT_FALSE(check_augment_options(bad).ok());
  bad = copies(1);
  bad.fade_scale = kNoValue;
  EXPECT_FALSE(check_augment_options(bad).ok());
  bad = copies(1);
  bad.gain = 0.5;
  EXPECT_FALSE(check_augment_options(bad).ok());
}

TEST(MedianSmoothed, RemovesASingleCycleSpikeAndKeepsALinearFade) {
  std::vector<CellSeries> cells{linear_fade_cell("a", 20, 0.01)};
  cells[0].rows[10].soh = 1.4;  // a rig's interruption spike
  const std::vector<CellSeries> out = median_smoothed(cells, 2);
  ASSERT_EQ(out[0].rows.size(), 20u);
  for (size_t r = 2; r + 2 < 20; ++r) {
    const double fade = 1.0 - 0.01 * static_cast<double>(r);
    // The spike is gone; on a falling series it moves its neighbours' medians by one row.
    const bool near_spike = r + 2 >= 10 && r <= 12;
    EXPECT_NEAR(out[0].rows[r].soh, fade, near_spike ? 0.01 + 1e-12 : 1e-12) << r;
  }
  // Everything but SOH is as it was.
  EXPECT_EQ(out[0].rows[10].ir_ohm, cells[0].rows[10].ir_ohm);
  EXPECT_EQ(out[0].rows[10].cycle, 11);
}

TEST(MedianSmoothed, LeavesNonFiniteValuesOutAndRadiusZeroChangesNothing) {
  std::vector<CellSeries> cells{linear_fade_cell("a", 9, 0.01)};
  cells[0].rows[4].soh = kNoValue;
  const std::vector<CellSeries> same = median_smoothed(cells, 0);
  EXPECT_TRUE(std::isnan(same[0].rows[4].soh));
  EXPECT_EQ(same[0].rows[3].soh, cells[0].rows[3].soh);
  const std::vector<CellSeries> out = median_smoothed(cells, 1);
  // Row 4's neighbours 0.97 and 0.95: their mean, the median of an even count.
  EXPECT_NEAR(out[0].rows[4].soh, 0.96, 1e-12);
  // At the ends the window is shorter: row 0 is the median of rows 0 and 1.
  EXPECT_NEAR(out[0].rows[0].soh, 0.995, 1e-12);
  // A cell of nothing but missing values is kept as it is.
  std::vector<CellSeries> empty{linear_fade_cell("b", 3, 0.01)};
  for (SeriesRow& row : empty[0].rows)
    row.soh = kNoValue;
  EXPECT_TRUE(std::isnan(median_smoothed(empty, 2)[0].rows[1].soh));
}

}  // namespace
}  // namespace cyclecast::pipeline
