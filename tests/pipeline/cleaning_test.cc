// Tests of the causal cleaning rules: each rule on a hand-made series, and causality itself (a
// cleaned prefix never depends on the rows after it).
#include "cyclecast/pipeline/cleaning.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace cyclecast::pipeline {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

SeriesRow row(int64_t cycle, double soh, double ir = 0.02, double temp = 30.0,
              double charge = 10.0) {
  return SeriesRow{cycle, soh, ir, temp, charge};
}

// A cell fading by 0.001 per cycle, cycles 1..n.
CellSeries steady(int64_t n) {
  CellSeries cell{"c", "", 1.1, {}, "", {}};
  for (int64_t k = 1; k <= n; ++k)
    cell.rows.push_back(row(k, 1.0 - 0.001 * static_cast<double>(k)));
  return cell;
}

TEST(Cleaning, LeavesCleanDataUnchanged) {
  CellSeries cell = steady(50);
  const CellSeries before = cell;
  const CleaningReport r = clean_series(cell);
  ASSERT_EQ(cell.rows.size(), before.rows.size());
  for (std::size_t i = 0; i < cell.rows.size(); ++i) {
    EXPECT_EQ(cell.rows[i].cycle, before.rows[i].cycle);
    EXPECT_EQ(cell.rows[i].soh, before.rows[i].soh);
  }
  EXPECT_EQ(r.rows_in, 50);
  EXPECT_EQ(r.rows_out, 50);
  EXPECT_EQ(r.soh_spikes + r.non_finite + r.non_positive + r.fill_values + r.gap_cycles_filled, 0);
}

TEST(Cleaning, ChargeTimeFillValueBecomesMissingAndHoldsTheLastGoodValue) {
  CellSeries cell = steady(5);
  cell.rows[1].charge_time_min = 12.0;
  cell.rows[2].charge_time_min = 20.0;
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.fill_values, 1);
  EXPECT_DOUBLE_EQ(cell.rows[2].charge_time_min, 12.0);
}

TEST(Cleaning, ChargeTimeOfAnInterruptedTestIsAnOutlier) {
  CellSeries cell = steady(5);
  cell.rows[3].charge_time_min = 501.9;
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.charge_time_outliers, 1);
  EXPECT_DOUBLE_EQ(cell.rows[3].charge_time_min, 10.0);
}

TEST(Cleaning, ZeroOrNegativeValuesBecomeMissingButTemperatureMayBeZero) {
  CellSeries cell = steady(5);
  cell.rows[1].ir_ohm = 0.0;
  cell.rows[2].charge_time_min = -1.0;
  cell.rows[3].temperature_c = 0.0;
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.non_positive, 2);
  EXPECT_DOUBLE_EQ(cell.rows[1].ir_ohm, 0.02);
  EXPECT_DOUBLE_EQ(cell.rows[2].charge_time_min, 10.0);
  EXPECT_DOUBLE_EQ(cell.rows[3].temperature_c, 0.0);
}

TEST(Cleaning, NonFiniteValuesBecomeMissingWhileUnreportedFeaturesAreNotCounted) {
  CellSeries cell = steady(5);
  cell.rows[1].ir_ohm = kInf;
  cell.rows[2].soh = kNaN;
  for (auto& r : cell.rows)
    r.temperature_c = kNaN;  // a rig without a temperature sensor
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.non_finite, 2);
  EXPECT_EQ(r.soh_held, 1);
  EXPECT_DOUBLE_EQ(cell.rows[1].ir_ohm, 0.02);
  EXPECT_DOUBLE_EQ(cell.rows[2].soh, cell.rows[1].soh);
  EXPECT_TRUE(std::isnan(cell.rows[4].temperature_c));
}

TEST(Cleaning, AnIsolatedSohSpikeIsHeldAtTheLastGoodValue) {
  CellSeries cell = steady(20);
  cell.rows[10].soh = 1.54 / 1.1;  // the interruption spike of the reference data
  cell.rows[15].soh -= 0.1;        // and a dip
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.soh_spikes, 2);
  EXPECT_DOUBLE_EQ(cell.rows[10].soh, cell.rows[9].soh);
  EXPECT_DOUBLE_EQ(cell.rows[15].soh, cell.rows[14].soh);
  EXPECT_DOUBLE_EQ(cell.rows[16].soh, 1.0 - 0.017);
}

TEST(Cleaning, ALastingLevelChangeIsAcceptedAfterHalfTheMedianWindow) {
  CellSeries cell = steady(20);
  for (std::size_t i = 10; i < cell.rows.size(); ++i)
    cell.rows[i].soh -= 0.05;
  CleaningOptions options;
  options.spike_median_cycles = 5;
  const CleaningReport r = clean_series(cell, options);
  // The first 3 lowered values are judged against a median still at the old level.
  EXPECT_EQ(r.soh_spikes, 3);
  EXPECT_DOUBLE_EQ(cell.rows[13].soh, 1.0 - 0.014 - 0.05);
}

TEST(Cleaning, DuplicateAndOutOfOrderCyclesAreDropped) {
  CellSeries cell{
      "c", "", 1.1, {row(1, 1.0), row(2, 0.999), row(2, 0.5), row(1, 0.7), row(3, 0.998)}, "", {}};
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.duplicate_cycles, 1);
  EXPECT_EQ(r.out_of_order_cycles, 1);
  ASSERT_EQ(cell.rows.size(), 3u);
  EXPECT_DOUBLE_EQ(cell.rows[1].soh, 0.999);
  EXPECT_EQ(cell.rows[2].cycle, 3);
}

TEST(Cleaning, GapsAreFilledByHoldingTheLastValues) {
  CellSeries cell{"c", "", 1.1, {row(1, 1.0), row(2, 0.999), row(5, 0.996)}, "", {}};
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.gap_cycles_filled, 2);
  ASSERT_EQ(cell.rows.size(), 5u);
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_EQ(cell.rows[static_cast<std::size_t>(i)].cycle, i + 1);
  EXPECT_DOUBLE_EQ(cell.rows[2].soh, 0.999);
  EXPECT_DOUBLE_EQ(cell.rows[3].soh, 0.999);
  EXPECT_DOUBLE_EQ(cell.rows[4].soh, 0.996);
}

TEST(Cleaning, FilledGapsAreListedAndTheLongOnesCounted) {
  // Missing cycles 3-4 (2 rows) and 8-27 (20 rows, above the window limit of 10).
  CellSeries cell{"c", "", 1.1, {}, "", {}};
  for (const int64_t k : {1, 2, 5, 6, 7, 28, 29})
    cell.rows.push_back(row(k, 1.0 - 0.001 * static_cast<double>(k)));
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.gap_cycles_filled, 22);
  EXPECT_EQ(r.long_gaps, 1);
  ASSERT_EQ(cell.filled_gaps.size(), 2u);
  EXPECT_EQ(cell.filled_gaps[0].first_row, 2);
  EXPECT_EQ(cell.filled_gaps[0].rows, 2);
  EXPECT_EQ(cell.filled_gaps[1].first_row, 7);
  EXPECT_EQ(cell.filled_gaps[1].rows, 20);
  EXPECT_EQ(cell.rows[7].cycle, 8);
  EXPECT_EQ(cell.rows.back().cycle, 29);
}

TEST(Cleaning, ARestartedNumberingContinuesAfterTheLastCycle) {
  // A cycler restarted (or a continuation test) numbers from 1 again after cycle 40; the
  // second run also misses its cycle 3.
  CellSeries cell = steady(40);
  for (const int64_t k : {1, 2, 4, 5})
    cell.rows.push_back(row(k, 0.96 - 0.001 * static_cast<double>(k)));
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.cycle_restarts, 1);
  EXPECT_EQ(r.out_of_order_cycles, 0);
  EXPECT_EQ(r.gap_cycles_filled, 1);
  ASSERT_EQ(cell.rows.size(), 45u);
  for (std::size_t i = 0; i < cell.rows.size(); ++i)
    EXPECT_EQ(cell.rows[i].cycle, static_cast<int64_t>(i) + 1);
  EXPECT_DOUBLE_EQ(cell.rows[40].soh, 0.959);
  EXPECT_DOUBLE_EQ(cell.rows[44].soh, 0.955);
}

TEST(Cleaning, ACycleOneArrivingLateIsNotARestart) {
  CellSeries cell = steady(5);
  cell.rows.push_back(row(1, 0.5));  // 4 cycles back: a late record, under restart_min_drop
  cell.rows.push_back(row(6, 0.994));
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.cycle_restarts, 0);
  EXPECT_EQ(r.out_of_order_cycles, 1);
  ASSERT_EQ(cell.rows.size(), 6u);
  EXPECT_EQ(cell.rows.back().cycle, 6);
}

TEST(Cleaning, ApproximateNumbersWithAnOutlierAndAGapCleanToOneRowPerCycle) {
  // Capacity-only telemetry as cycles_qd_approx.csv has it: numbers starting at 3, a repeated
  // record, a missing cycle and one interruption spike.
  const double nan = kNaN;
  CellSeries cell{"c", "", 1.1, {}, "", {}};
  for (const int64_t k : {3, 4, 5, 6, 6, 7, 9, 10, 11, 12}) {
    const double soh = k == 10 ? 1.4 : 1.0 - 0.001 * static_cast<double>(k);
    cell.rows.push_back(SeriesRow{k, soh, nan, nan, nan});
  }
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.duplicate_cycles, 1);
  EXPECT_EQ(r.gap_cycles_filled, 1);
  EXPECT_EQ(r.soh_spikes, 1);
  ASSERT_EQ(cell.rows.size(), 10u);
  EXPECT_EQ(cell.rows.front().cycle, 3);
  EXPECT_EQ(cell.rows.back().cycle, 12);
  for (const SeriesRow& x : cell.rows)
    EXPECT_LT(x.soh, 1.0);
}

TEST(Cleaning, ARowJumpingFurtherThanTheGapLimitIsDroppedNotFilled) {
  CellSeries cell{"c", "", 1.1, {row(1, 1.0), row(1000000000, 0.999), row(2, 0.998)}, "", {}};
  CleaningOptions options;
  options.max_gap_cycles = 100;
  const CleaningReport r = clean_series(cell, options);
  EXPECT_EQ(r.cycle_jumps_dropped, 1);
  ASSERT_EQ(cell.rows.size(), 2u);
  EXPECT_EQ(cell.rows[1].cycle, 2);
}

TEST(Cleaning, RowsBeforeTheFirstUsableSohAreDropped) {
  CellSeries cell{"c", "", 1.1, {row(1, kNaN), row(2, 0.0), row(3, 0.99), row(4, 0.989)}, "", {}};
  const CleaningReport r = clean_series(cell);
  EXPECT_EQ(r.leading_rows_dropped, 2);
  ASSERT_EQ(cell.rows.size(), 2u);
  EXPECT_EQ(cell.rows[0].cycle, 3);
}

TEST(Cleaning, IsCausalAPrefixCleansTheSameWhateverFollows) {
  CellSeries full = steady(40);
  full.rows[12].soh = 1.4;
  full.rows[20].charge_time_min = 20.0;
  full.rows[25].ir_ohm = 0.0;
  full.rows[33].soh = 0.2;
  CellSeries cleaned_full = full;
  clean_series(cleaned_full);
  for (std::size_t prefix = 1; prefix <= full.rows.size(); ++prefix) {
    CellSeries part = full;
    part.rows.resize(prefix);
    clean_series(part);
    ASSERT_EQ(part.rows.size(), prefix);
    for (std::size_t i = 0; i < prefix; ++i) {
      EXPECT_EQ(part.rows[i].soh, cleaned_full.rows[i].soh) << prefix << " " << i;
      EXPECT_EQ(part.rows[i].ir_ohm, cleaned_full.rows[i].ir_ohm);
      EXPECT_EQ(part.rows[i].charge_time_min, cleaned_full.rows[i].charge_time_min);
    }
  }
}

TEST(Cleaning, CleanAllSumsTheReportsAndRemovesEmptyCells) {
  std::vector<CellSeries> cells{steady(10), CellSeries{"empty", "", 1.1, {row(1, kNaN)}, "", {}},
                                steady(5)};
  cells[2].rows[2].charge_time_min = 20.0;
  const CleaningReport r = clean_all(cells);
  EXPECT_EQ(r.cells, 3);
  EXPECT_EQ(r.rows_in, 16);
  EXPECT_EQ(r.rows_out, 15);
  EXPECT_EQ(r.fill_values, 1);
  EXPECT_EQ(r.non_finite, 1);
  ASSERT_EQ(cells.size(), 2u);
}

}  // namespace
}  // namespace cyclecast::pipeline
