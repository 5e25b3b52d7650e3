// Tests of the rig simulator: determinism, the shapes of the aging curves, policy effects,
// glitch rates and the CSV writers.
#include "cyclecast/pipeline/simulate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

// The simulator's portable math is private; its accuracy is checked here against the platform.
#include "../../pipeline/src/simulate_random.h"

namespace cyclecast::pipeline {
namespace {

SimulationOptions options_for(std::uint64_t seed, std::int64_t cells) {
  SimulationOptions options;
  options.seed = seed;
  options.cells = cells;
  return options;
}

std::vector<SimulatedCell> run(const SimulationOptions& options) {
  auto cells = simulate(options);
  EXPECT_TRUE(cells.ok()) << (cells.ok() ? "" : cells.error().message);
  return cells.ok() ? std::move(cells).value() : std::vector<SimulatedCell>{};
}

std::string cycles_csv(const std::vector<SimulatedCell>& cells, const SimulationOptions& options) {
  std::ostringstream out;
  EXPECT_TRUE(write_cycles_csv(out, cells, simulation_batch_name(options)).ok());
  return out.str();
}

std::string cells_csv(const std::vector<SimulatedCell>& cells) {
  std::ostringstream out;
  EXPECT_TRUE(write_cells_csv(out, cells).ok());
  return out.str();
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator))
    parts.push_back(part);
  if (!text.empty() && text.back() == separator) parts.emplace_back();
  return parts;
}

std::vector<std::string> lines_of(const std::string& text) {
  auto lines = split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

double mean_qd(const SimulatedCell& cell, std::int64_t first_cycle, std::int64_t last_cycle) {
  double sum = 0.0;
  for (std::int64_t n = first_cycle; n <= last_cycle; ++n) {
    sum += cell.cycles[static_cast<std::size_t>(n - 1)].discharge_capacity_ah;
  }
  return sum / static_cast<double>(last_cycle - first_cycle + 1);
}

// Mean of a measured field over cycles [first, last] that carry no glitch.
template <typename Field>
double mean_clean(const SimulatedCell& cell, std::int64_t first, std::int64_t last, Field field) {
  double sum = 0.0;
  int count = 0;
  for (std::int64_t n = first; n <= last; ++n) {
    const auto i = static_cast<std::size_t>(n - 1);
    if (cell.truth[i].glitches != kSimGlitchNone) continue;
    sum += field(cell.cycles[i]);
    ++count;
  }
  return count > 0 ? sum / count : std::numeric_limits<double>::quiet_NaN();
}

double charge_time(const storage::CycleRecord& r) {
  return r.charge_time_min.value();
}
double tmax(const storage::CycleRecord& r) {
  return r.temperature_max_c.value();
}
double tavg(const storage::CycleRecord& r) {
  return r.temperature_avg_c.value();
}
double resistance(const storage::CycleRecord& r) {
  return r.internal_resistance_ohm.value();
}

TEST(Simulate, SameSeedGivesByteIdenticalCsv) {
  const auto options = options_for(7, 12);
  const auto first = run(options);
  const auto second = run(options);
  EXPECT_EQ(cycles_csv(first, options), cycles_csv(second, options));
  EXPECT_EQ(cells_csv(first), cells_csv(second));
}

TEST(Simulate, DifferentSeedGivesDifferentMeasurements) {
  const auto a = run(options_for(7, 3));
  const auto b = run(options_for(8, 3));
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  int different_lives = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_NE(a[i].cycles[0].discharge_capacity_ah, b[i].cycles[0].discharge_capacity_ah);
    if (a[i].eol_cycle != b[i].eol_cycle) ++different_lives;
  }
  EXPECT_GE(different_lives, 2);  // two cells may share a life by chance, not three
}

TEST(Simulate, CellDoesNotDependOnHowManyCellsAreSimulated) {
  const auto few = run(options_for(3, 3));
  auto alone = simulate_cell(options_for(3, 50), 2);
  ASSERT_TRUE(alone.ok());
  ASSERT_EQ(few.size(), 3u);
  EXPECT_EQ(alone->info.cell_id, few[2].info.cell_id);
  EXPECT_EQ(alone->eol_cycle, few[2].eol_cycle);
  ASSERT_EQ(alone->cycles.size(), few[2].cycles.size());
  for (std::size_t i = 0; i < alone->cycles.size(); ++i) {
    EXPECT_TRUE(alone->cycles[i].same_measurement(few[2].cycles[i])) << "cycle " << i + 1;
  }
}

// Pinned output: a change here means the model changed (bump kModelVersion in simulate.cc and
// update these lines), or the build is not reproducing the reference arithmetic (see
// docs/simulator.md, "Determinism").
TEST(Simulate, FirstRowsOfSeed42MatchTheReference) {
  auto options = options_for(42, 1);
  const auto cells = run(options);
  const auto lines = lines_of(cycles_csv(cells, options));
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[1],
            "sim42c0,sim-42,1,1.066141,1.065309,0.0173497,35.675,31.961,29.925,13.4138,"
            "2026-01-01T00:58:26Z");
  EXPECT_EQ(lines[2],
            "sim42c0,sim-42,2,1.067142,1.066862,0.0173070,35.343,31.846,29.433,13.4110,"
            "2026-01-01T01:56:52Z");
  EXPECT_EQ(lines[3],
            "sim42c0,sim-42,3,1.067839,1.067594,0.0174261,35.716,32.016,29.423,13.4014,"
            "2026-01-01T02:55:18Z");
  ASSERT_GE(lines.size(), 1500u);  // deep into the knee: exercises the whole model
  EXPECT_EQ(lines[1499],
            "sim42c0,sim-42,1499,0.978038,0.979563,0.0180308,35.738,32.396,29.293,"
            "14.1561,2026-03-02T21:26:19Z");
  EXPECT_EQ(
      lines_of(cells_csv(cells))[1],
      "sim42c0,rig-sim-0,LFP/graphite,1.1,3.6C(80%)-3.6C,1427,1759,1779,1.065354,0.0173715,20");
}

TEST(Simulate, SohStartsNearFreshAndEndsBelowEightyPercent) {
  const auto cells = run(options_for(11, 20));
  ASSERT_EQ(cells.size(), 20u);
  for (const auto& cell : cells) {
    const double first_soh = mean_qd(cell, 1, 5) / kSimRatedCapacityAh;
    EXPECT_GT(first_soh, 0.95) << cell.info.cell_id;
    EXPECT_LT(first_soh, 0.99) << cell.info.cell_id;
    const auto last = static_cast<std::int64_t>(cell.cycles.size());
    EXPECT_LT(mean_qd(cell, last - 4, last) / kSimRatedCapacityAh, 0.8) << cell.info.cell_id;
    // The ground-truth end of life is where the noise-free capacity crosses 0.88 Ah.
    const auto eol = static_cast<std::size_t>(cell.eol_cycle);
    EXPECT_LT(cell.truth[eol - 1].capacity_ah, kSimEndOfLifeCapacityAh);
    EXPECT_GE(cell.truth[eol - 2].capacity_ah, kSimEndOfLifeCapacityAh);
  }
}

TEST(Simulate, FadeIsFarFasterPastTheKnee) {
  auto options = options_for(5, 10);
  options.policies = {"5.2C(50%)-4.25C"};
  for (const auto& cell : run(options)) {
    const std::int64_t eol = cell.eol_cycle;
    const std::int64_t e1 = eol / 5, e2 = eol / 2;
    const std::int64_t l1 = eol * 85 / 100, l2 = eol - 1;
    const double early_ah_per_cycle =
        (mean_qd(cell, e1 - 5, e1 + 5) - mean_qd(cell, e2 - 5, e2 + 5)) /
        static_cast<double>(e2 - e1);
    const double late_ah_per_cycle = (mean_qd(cell, l1 - 5, l1 + 5) - mean_qd(cell, l2 - 10, l2)) /
                                     static_cast<double>(l2 - 5 - l1);
    EXPECT_GT(early_ah_per_cycle, 0.0) << cell.info.cell_id;
    EXPECT_GT(late_ah_per_cycle, 4.0 * early_ah_per_cycle) << cell.info.cell_id;
    EXPECT_GT(cell.knee_cycle, eol / 2) << cell.info.cell_id;
    EXPECT_LT(cell.knee_cycle, eol) << cell.info.cell_id;
  }
}

TEST(Simulate, EndOfLifeAndKneeVaryBetweenCellsOfOnePolicy) {
  auto options = options_for(9, 16);
  options.policies = {"5.4C(40%)-3.6C"};
  const auto cells = run(options);
  ASSERT_EQ(cells.size(), 16u);
  std::vector<double> eol, knee;
  for (const auto& cell : cells) {
    eol.push_back(static_cast<double>(cell.eol_cycle));
    knee.push_back(static_cast<double>(cell.knee_cycle));
  }
  const auto spread = [](const std::vector<double>& v) {
    const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    double sq = 0.0;
    for (double x : v)
      sq += (x - mean) * (x - mean);
    return std::sqrt(sq / static_cast<double>(v.size() - 1)) / mean;
  };
  EXPECT_GT(spread(eol), 0.05);
  EXPECT_LT(spread(eol), 0.30);
  EXPECT_GT(spread(knee), 0.05);
}

TEST(Simulate, HarsherPolicyReachesKneeAndEndOfLifeEarlier) {
  auto options = options_for(13, 16);
  options.policies = {"3.6C(80%)-3.6C", "8C(35%)-3.6C"};
  const auto cells = run(options);
  double gentle_eol = 0, harsh_eol = 0, gentle_knee = 0, harsh_knee = 0;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const bool gentle = i % 2 == 0;
    (gentle ? gentle_eol : harsh_eol) += static_cast<double>(cells[i].eol_cycle);
    (gentle ? gentle_knee : harsh_knee) += static_cast<double>(cells[i].knee_cycle);
  }
  EXPECT_GT(gentle_eol, 3.0 * harsh_eol);
  EXPECT_GT(gentle_knee, 3.0 * harsh_knee);
}

TEST(Simulate, ResistanceRisesWithFade) {
  for (const auto& cell : run(options_for(17, 10))) {
    const double fresh_ohm = mean_clean(cell, 20, 40, resistance);
    const double worn_ohm = mean_clean(cell, cell.eol_cycle - 10, cell.eol_cycle - 1, resistance);
    EXPECT_GT(worn_ohm, 1.1 * fresh_ohm) << cell.info.cell_id;
    EXPECT_LT(worn_ohm, 1.4 * fresh_ohm) << cell.info.cell_id;
  }
}

TEST(Simulate, FasterPolicyChargesSoonerAndRunsHotter) {
  auto options = options_for(21, 16);
  options.policies = {"4C(80%)-4C", "8C(35%)-3.6C"};
  options.max_cycles = 120;
  const auto cells = run(options);
  ASSERT_EQ(cells.size(), 16u);
  double slowest_fast_min = 0.0, fastest_slow_min = 1e9;
  double slow_tmax = 0, fast_tmax = 0, slow_tavg = 0, fast_tavg = 0;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const double ct = mean_clean(cells[i], 10, 100, charge_time);
    if (i % 2 == 0) {
      fastest_slow_min = std::min(fastest_slow_min, ct);
      slow_tmax += mean_clean(cells[i], 10, 100, tmax);
      slow_tavg += mean_clean(cells[i], 10, 100, tavg);
    } else {
      slowest_fast_min = std::max(slowest_fast_min, ct);
      fast_tmax += mean_clean(cells[i], 10, 100, tmax);
      fast_tavg += mean_clean(cells[i], 10, 100, tavg);
    }
  }
  EXPECT_LT(slowest_fast_min + 1.5, fastest_slow_min);  // 10.2 vs 12.1 min
  EXPECT_GT(fast_tmax / 8 - slow_tmax / 8, 1.0);
  EXPECT_GT(fast_tavg / 8 - slow_tavg / 8, 0.3);
}

TEST(Simulate, ChargeTimeGrowsNearEndOfLife) {
  for (const auto& cell : run(options_for(23, 6))) {
    const double fresh_min = mean_clean(cell, 10, 30, charge_time);
    const double late_min = mean_clean(cell, cell.eol_cycle - 10, cell.eol_cycle - 1, charge_time);
    EXPECT_GT(late_min, fresh_min + 2.0) << cell.info.cell_id;
  }
}

struct GlitchCounts {
  std::int64_t rows = 0, rows_past_eol = 0;
  std::int64_t interruptions = 0, spikes = 0, fills_before = 0, fills_after = 0, zero_ir = 0;
};

GlitchCounts count_glitches(const std::vector<SimulatedCell>& cells) {
  GlitchCounts c;
  for (const auto& cell : cells) {
    for (std::size_t i = 0; i < cell.cycles.size(); ++i) {
      const std::uint8_t g = cell.truth[i].glitches;
      const bool past_eol = cell.cycles[i].cycle >= cell.eol_cycle;
      ++c.rows;
      if (past_eol) ++c.rows_past_eol;
      if (g & kSimGlitchInterruption) ++c.interruptions;
      if (g & kSimGlitchCapacitySpike) ++c.spikes;
      if ((g & kSimGlitchChargeTimeFill) && !past_eol) ++c.fills_before;
      if ((g & kSimGlitchChargeTimeFill) && past_eol) ++c.fills_after;
      if (g & kSimGlitchZeroResistance) ++c.zero_ir;
    }
  }
  return c;
}

// Observed count over expected count, for a Bernoulli rate.
double ratio(std::int64_t observed, double rate, std::int64_t trials) {
  return static_cast<double>(observed) / (rate * static_cast<double>(trials));
}

TEST(Simulate, GlitchesAppearAtTheirDocumentedDefaultRates) {
  const auto options = options_for(31, 300);
  const GlitchRates rates;
  const auto c = count_glitches(run(options));
  ASSERT_GT(c.rows, 200000);
  // Expected counts are ~20..70, so these bands are several standard deviations wide.
  EXPECT_NEAR(ratio(c.interruptions, rates.interruption_per_cycle, c.rows), 1.0, 0.5);
  EXPECT_NEAR(ratio(c.spikes, rates.capacity_spike_given_interruption, c.interruptions), 1.0, 0.6);
  EXPECT_NEAR(ratio(c.fills_before, rates.charge_time_fill_before_eol, c.rows - c.rows_past_eol),
              1.0, 0.6);
  EXPECT_NEAR(
      ratio(c.fills_after, rates.charge_time_fill_after_eol, c.rows_past_eol - c.interruptions),
      1.0, 0.05);
  EXPECT_NEAR(ratio(c.zero_ir, rates.zero_resistance_per_cycle, c.rows), 1.0, 0.5);
}

TEST(Simulate, RaisedGlitchRatesAreMetClosely) {
  auto options = options_for(37, 40);
  options.glitches = GlitchRates{0.02, 0.5, 0.03, 0.5, 0.04};
  const auto c = count_glitches(run(options));
  const std::int64_t before_eol = c.rows - c.rows_past_eol;
  EXPECT_NEAR(ratio(c.interruptions, 0.02, c.rows), 1.0, 0.1);
  EXPECT_NEAR(ratio(c.spikes, 0.5, c.interruptions), 1.0, 0.15);
  // A fill is only drawn on cycles without an interruption.
  EXPECT_NEAR(ratio(c.fills_before, 0.03 * 0.98, before_eol), 1.0, 0.1);
  EXPECT_NEAR(ratio(c.fills_after, 0.5 * 0.98, c.rows_past_eol), 1.0, 0.15);
  EXPECT_NEAR(ratio(c.zero_ir, 0.04, c.rows), 1.0, 0.1);
}

TEST(Simulate, GlitchedValuesLookLikeTheRigDefectsAndCleanValuesNever) {
  auto options = options_for(41, 30);
  options.glitches = GlitchRates{0.02, 0.5, 0.03, 0.5, 0.04};
  for (const auto& cell : run(options)) {
    for (std::size_t i = 0; i < cell.cycles.size(); ++i) {
      const auto& r = cell.cycles[i];
      const std::uint8_t g = cell.truth[i].glitches;
      const double ct = r.charge_time_min.value();
      if (g & kSimGlitchInterruption) {
        EXPECT_GE(ct, 490.0);
        EXPECT_LE(ct, 510.0);
      } else if (g & kSimGlitchChargeTimeFill) {
        EXPECT_EQ(ct, 20.0);
      } else {
        EXPECT_NE(ct, 20.0);
        EXPECT_LT(ct, 60.0);
      }
      if (g & kSimGlitchCapacitySpike) {
        EXPECT_GT(r.discharge_capacity_ah, 1.3 * cell.truth[i].capacity_ah);
        EXPECT_LT(r.charge_capacity_ah.value(), r.discharge_capacity_ah);
      } else {
        EXPECT_LT(r.discharge_capacity_ah, 1.12);
      }
      if (g & kSimGlitchZeroResistance) {
        EXPECT_EQ(r.internal_resistance_ohm.value(), 0.0);
      } else {
        EXPECT_GT(r.internal_resistance_ohm.value(), 0.01);
      }
    }
  }
}

TEST(Simulate, ZeroRatesGiveNoGlitches) {
  auto options = options_for(43, 10);
  options.glitches = GlitchRates{0.0, 0.0, 0.0, 0.0, 0.0};
  for (const auto& cell : run(options)) {
    EXPECT_EQ(cell.glitch_rows, 0);
    for (const auto& t : cell.truth)
      EXPECT_EQ(t.glitches, kSimGlitchNone);
  }
}

TEST(Simulate, EveryRecordIsWellFormed) {
  auto options = options_for(47, 30);
  const auto cells = run(options);
  for (const auto& cell : cells) {
    ASSERT_EQ(cell.cycles.size(), cell.truth.size());
    ASSERT_FALSE(cell.cycles.empty());
    EXPECT_EQ(cell.last_cycle, static_cast<std::int64_t>(cell.cycles.size()));
    EXPECT_EQ(cell.last_cycle,
              std::min(options.max_cycles, cell.eol_cycle + options.cycles_after_eol));
    std::int64_t glitch_rows = 0;
    std::int64_t previous_ms = options.start_ms;
    for (std::size_t i = 0; i < cell.cycles.size(); ++i) {
      const auto& r = cell.cycles[i];
      EXPECT_EQ(r.cell_id, cell.info.cell_id);
      EXPECT_EQ(r.cycle, static_cast<std::int64_t>(i) + 1);
      const double values[] = {r.discharge_capacity_ah,    *r.charge_capacity_ah,
                               *r.internal_resistance_ohm, *r.temperature_min_c,
                               *r.temperature_avg_c,       *r.temperature_max_c,
                               *r.charge_time_min};
      for (double v : values)
        EXPECT_TRUE(std::isfinite(v) && v >= 0.0) << r.cycle;
      EXPECT_GT(r.discharge_capacity_ah, 0.5);
      EXPECT_LE(*r.temperature_min_c, *r.temperature_avg_c);
      EXPECT_LE(*r.temperature_avg_c, *r.temperature_max_c);
      ASSERT_TRUE(r.measured_at_ms.has_value());
      EXPECT_GT(*r.measured_at_ms, previous_ms);
      EXPECT_EQ(*r.measured_at_ms % 1000, 0);
      previous_ms = *r.measured_at_ms;
      if (cell.truth[i].glitches != kSimGlitchNone) ++glitch_rows;
    }
    EXPECT_EQ(glitch_rows, cell.glitch_rows);
  }
}

TEST(Simulate, CellsGetIdsRigsAndPoliciesInTurn) {
  auto options = options_for(12345, 6);
  options.rigs = 4;
  options.policies = {"4C(80%)-4C", "6C(40%)-3.6C"};
  const auto cells = run(options);
  ASSERT_EQ(cells.size(), 6u);
  EXPECT_EQ(cells[5].info.cell_id, "sim12345c5");
  EXPECT_EQ(cells[5].info.rig_id, "rig-sim-1");
  EXPECT_EQ(cells[5].info.charge_policy, "6C(40%)-3.6C");
  EXPECT_EQ(cells[4].info.charge_policy, "4C(80%)-4C");
  EXPECT_EQ(cells[0].info.chemistry, "LFP/graphite");
  EXPECT_EQ(cells[0].info.rated_capacity_ah, 1.1);
  EXPECT_NE(cells[0].info.metadata_json.find("\"eol_cycle\":" + std::to_string(cells[0].eol_cycle)),
            std::string::npos);
}

TEST(Simulate, MaxCyclesCapsEveryCell) {
  auto options = options_for(53, 8);
  options.max_cycles = 50;
  for (const auto& cell : run(options)) {
    EXPECT_EQ(cell.cycles.size(), 50u);
    EXPECT_GT(cell.eol_cycle, 50);  // still reported though not reached
  }
}

TEST(Simulate, CyclesAfterEndOfLifeSetTheRunLength) {
  auto options = options_for(59, 5);
  options.cycles_after_eol = 0;
  for (const auto& cell : run(options))
    EXPECT_EQ(cell.last_cycle, cell.eol_cycle);
}

// Regime change: the cells it applies to fade `factor` times as fast past the change cycle, and
// are identical to the unchanged run up to it; the others are untouched.
TEST(SimulateRegime, ChangedCellsFadeFactorTimesAsFastPastTheChange) {
  auto plain = options_for(9, 4);
  plain.policies = {"5.4C(40%)-3.6C"};
  plain.glitches = GlitchRates{0.0, 0.0, 0.0, 0.0, 0.0};
  auto changed = plain;
  changed.regime_change_cycle = 200;
  changed.regime_fade_factor = 5.0;
  changed.regime_every = 2;
  const auto before = run(plain);
  const auto after = run(changed);
  ASSERT_EQ(before.size(), 4u);
  ASSERT_EQ(after.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    const bool is_changed = i % 2 == 0;
    EXPECT_EQ(after[i].regime_changed, is_changed) << i;
    for (std::int64_t n = 1; n <= 200; ++n) {
      const auto k = static_cast<std::size_t>(n - 1);
      ASSERT_EQ(after[i].cycles[k].discharge_capacity_ah, before[i].cycles[k].discharge_capacity_ah)
          << "cell " << i << " cycle " << n << ": before the change nothing differs";
    }
    const double at_change = before[i].truth[199].capacity_ah;
    for (std::int64_t n : {201, 250, 300}) {
      const auto k = static_cast<std::size_t>(n - 1);
      if (k >= after[i].truth.size()) continue;
      const double loss_before = at_change - before[i].truth[k].capacity_ah;
      const double loss_after = at_change - after[i].truth[k].capacity_ah;
      EXPECT_NEAR(loss_after, (is_changed ? 5.0 : 1.0) * loss_before, 1e-12)
          << "cell " << i << " cycle " << n;
    }
    if (is_changed) {
      EXPECT_LT(after[i].eol_cycle, before[i].eol_cycle) << "faster fade, earlier end of life";
      EXPECT_EQ(after[i].knee_cycle, before[i].knee_cycle) << "the drawn knee stays";
      EXPECT_NE(after[i].info.metadata_json.find("\"regime_change_cycle\":200"), std::string::npos)
          << after[i].info.metadata_json;
      EXPECT_NE(after[i].info.metadata_json.find("\"regime_fade_factor\":5.000"),
                std::string::npos);
    } else {
      EXPECT_EQ(after[i].eol_cycle, before[i].eol_cycle);
      EXPECT_EQ(after[i].info.metadata_json, before[i].info.metadata_json);
      EXPECT_EQ(after[i].cycles.size(), before[i].cycles.size());
    }
  }
}

TEST(SimulateRegime, ASlowerFadeMovesEndOfLifeLater) {
  auto plain = options_for(4, 1);
  plain.policies = {"2C(10%)-6C"};
  auto slower = plain;
  slower.regime_change_cycle = 50;
  slower.regime_fade_factor = 0.5;
  const auto before = run(plain);
  const auto after = run(slower);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_GT(after[0].eol_cycle, before[0].eol_cycle);
  EXPECT_EQ(after[0].last_cycle, after[0].eol_cycle + plain.cycles_after_eol);
  EXPECT_LT(after[0].truth.back().capacity_ah, kSimEndOfLifeCapacityAh);
}

TEST(SimulateCsv, HasTheHeaderAndOneLinePerRecord) {
  auto options = options_for(61, 4);
  const auto cells = run(options);
  const auto lines = lines_of(cycles_csv(cells, options));
  std::size_t records = 0;
  for (const auto& cell : cells)
    records += cell.cycles.size();
  ASSERT_EQ(lines.size(), records + 1);
  EXPECT_EQ(lines[0],
            "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,"
            "chargetime_min,measured_at");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    ASSERT_EQ(split(lines[i], ',').size(), 11u) << lines[i];
  }
  EXPECT_EQ(split(lines[1], ',')[1], "sim-61");
  EXPECT_EQ(split(lines[1], ',')[0], "sim61c0");
}

double parse_double(const std::string& text) {
  double value = std::numeric_limits<double>::quiet_NaN();
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

TEST(SimulateCsv, NumbersParseBackToExactlyTheRecords) {
  auto options = options_for(67, 3);
  options.glitches = GlitchRates{0.02, 0.5, 0.03, 0.5, 0.04};  // include glitched values
  const auto cells = run(options);
  const auto lines = lines_of(cycles_csv(cells, options));
  std::size_t line = 1;
  for (const auto& cell : cells) {
    for (const auto& r : cell.cycles) {
      ASSERT_LT(line, lines.size());
      const auto f = split(lines[line++], ',');
      EXPECT_EQ(f[2], std::to_string(r.cycle));
      EXPECT_EQ(parse_double(f[3]), r.discharge_capacity_ah) << f[3];
      EXPECT_EQ(parse_double(f[4]), *r.charge_capacity_ah) << f[4];
      EXPECT_EQ(parse_double(f[5]), *r.internal_resistance_ohm) << f[5];
      EXPECT_EQ(parse_double(f[6]), *r.temperature_max_c) << f[6];
      EXPECT_EQ(parse_double(f[7]), *r.temperature_avg_c) << f[7];
      EXPECT_EQ(parse_double(f[8]), *r.temperature_min_c) << f[8];
      EXPECT_EQ(parse_double(f[9]), *r.charge_time_min) << f[9];
      EXPECT_EQ(f[10], format_utc_iso8601(*r.measured_at_ms));
    }
  }
}

TEST(SimulateCsv, CellsCsvListsEveryCellWithItsGroundTruth) {
  auto options = options_for(71, 5);
  options.rigs = 2;
  const auto cells = run(options);
  const auto lines = lines_of(cells_csv(cells));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0],
            "cell_id,rig_id,chemistry,rated_capacity_ah,policy,knee_cycle,eol_cycle,"
            "last_cycle,fresh_capacity_ah,initial_ir_ohm,glitch_rows");
  const auto f = split(lines[3], ',');
  ASSERT_EQ(f.size(), 11u);
  EXPECT_EQ(f[0], "sim71c2");
  EXPECT_EQ(f[1], "rig-sim-0");
  EXPECT_EQ(f[2], "LFP/graphite");
  EXPECT_EQ(f[3], "1.1");
  EXPECT_EQ(f[4], default_policies()[2]);
  EXPECT_EQ(f[5], std::to_string(cells[2].knee_cycle));
  EXPECT_EQ(f[6], std::to_string(cells[2].eol_cycle));
  EXPECT_EQ(f[7], std::to_string(cells[2].last_cycle));
  EXPECT_EQ(f[10], std::to_string(cells[2].glitch_rows));
}

TEST(SimulateCsv, FormatsUtcTimestamps) {
  EXPECT_EQ(format_utc_iso8601(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_utc_iso8601(kSimDefaultStartMs), "2026-01-01T00:00:00Z");
  EXPECT_EQ(format_utc_iso8601(951782400000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(format_utc_iso8601(kSimDefaultStartMs - 1), "2025-12-31T23:59:59Z");
  EXPECT_EQ(format_utc_iso8601(kSimDefaultStartMs + 3723000), "2026-01-01T01:02:03Z");
}

void expect_invalid(const SimulationOptions& options, const std::string& mentions) {
  const auto result = validate_simulation_options(options);
  ASSERT_FALSE(result.ok()) << mentions;
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(result.error().message.find(mentions), std::string::npos) << result.error().message;
  EXPECT_FALSE(simulate(options).ok());
}

TEST(SimulateOptions, RefusesOutOfRangeCountsAndRates) {
  auto o = options_for(1, 0);
  expect_invalid(o, "cells");
  o.cells = kSimMaxCells + 1;
  expect_invalid(o, "cells");
  o = options_for(1, 1);
  o.max_cycles = 0;
  expect_invalid(o, "max_cycles");
  o = options_for(1, 1);
  o.rigs = 0;
  expect_invalid(o, "rigs");
  o = options_for(1, 1);
  o.cycles_after_eol = -1;
  expect_invalid(o, "cycles_after_eol");
  o = options_for(1, 1);
  o.glitches.zero_resistance_per_cycle = -0.1;
  expect_invalid(o, "zero_resistance_per_cycle");
  o = options_for(1, 1);
  o.glitches.interruption_per_cycle = 1.5;
  expect_invalid(o, "interruption_per_cycle");
  o = options_for(1, 1);
  o.glitches.charge_time_fill_after_eol = std::numeric_limits<double>::quiet_NaN();
  expect_invalid(o, "charge_time_fill_after_eol");
  o = options_for(1, 1);
  o.batch = "a,b";
  expect_invalid(o, "batch");
  o = options_for(1, 1);
  o.regime_change_cycle = -1;
  expect_invalid(o, "regime_change_cycle");
  o = options_for(1, 1);
  o.regime_every = 0;
  expect_invalid(o, "regime_every");
  for (double factor : {0.0, 0.09, 101.0, std::numeric_limits<double>::quiet_NaN()}) {
    o = options_for(1, 1);
    o.regime_change_cycle = 10;
    o.regime_fade_factor = factor;
    expect_invalid(o, "regime_fade_factor");
  }
}

TEST(SimulateOptions, RefusesMalformedPolicies) {
  for (const char* bad : {"", "4C", "4C(90%)-4C", "0C(50%)-4C", "4C(50%)-4Cx", "4C(50%)4C",
                          "4C(50%)-11C", "-4C(50%)-4C", "4C(50)-4C", "4c(50%)-4c"}) {
    auto o = options_for(1, 1);
    o.policies = {"4C(80%)-4C", bad};
    expect_invalid(o, "charge policy");
  }
}

TEST(SimulateOptions, AcceptsTheDefaults) {
  EXPECT_TRUE(validate_simulation_options(SimulationOptions{}).ok());
}

TEST(SimulateOptions, RefusesACellIndexOutsideTheRun) {
  const auto o = options_for(1, 3);
  EXPECT_FALSE(simulate_cell(o, 3).ok());
  EXPECT_FALSE(simulate_cell(o, -1).ok());
  EXPECT_TRUE(simulate_cell(o, 2).ok());
}

TEST(SimulatePolicy, ParsesRatesAndComputesChargeTime) {
  auto policy = parse_charge_policy("5.4C(40%)-3.6C");
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->c1_rate, 5.4);
  EXPECT_EQ(policy->switch_soc_pct, 40.0);
  EXPECT_EQ(policy->c2_rate, 3.6);
  // 40 % at 5.4C, then 40 % at 3.6C, plus the 0.1 min step overhead.
  EXPECT_NEAR(policy_charge_time_min(*policy), 60.0 * (0.4 / 5.4 + 0.4 / 3.6) + 0.1, 1e-12);
  auto constant = parse_charge_policy("3.6C(80%)-3.6C");
  ASSERT_TRUE(constant.ok());
  EXPECT_NEAR(policy_charge_time_min(*constant), 13.4333333333, 1e-9);
}

TEST(SimulateMath, PortableExpAndLogMatchThePlatformClosely) {
  // Few-ulp accuracy: the simulator's values must not drift from the model by more than noise.
  constexpr double kRelativeTolerance = 4e-16;
  for (double x = -30.0; x <= 30.0; x += 0.0137) {
    EXPECT_NEAR(sim::portable_exp(x), std::exp(x), kRelativeTolerance * 4 * std::exp(x)) << x;
  }
  for (double x = 1e-6; x < 1e4; x *= 1.37) {
    EXPECT_NEAR(sim::portable_log(x), std::log(x),
                kRelativeTolerance * 4 * std::max(1.0, std::fabs(std::log(x))))
        << x;
  }
  EXPECT_EQ(sim::portable_exp(0.0), 1.0);
  EXPECT_EQ(sim::portable_log(1.0), 0.0);
  EXPECT_EQ(sim::portable_exp(-800.0), 0.0);
  EXPECT_TRUE(std::isinf(sim::portable_exp(800.0)));
}

TEST(SimulateMath, NormalSamplesHaveUnitVarianceAndZeroMean) {
  sim::Rng rng(99);
  constexpr int kSamples = 200000;
  double sum = 0.0, sum_sq = 0.0;
  int beyond_two_sd = 0;
  for (int i = 0; i < kSamples; ++i) {
    const double z = rng.normal();
    sum += z;
    sum_sq += z * z;
    if (std::fabs(z) > 2.0) ++beyond_two_sd;
  }
  const double mean = sum / kSamples;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / kSamples - mean * mean, 1.0, 0.01);
  EXPECT_NEAR(static_cast<double>(beyond_two_sd) / kSamples, 0.0455, 0.003);
}

TEST(SimulateMath, UniformStaysInTheUnitInterval) {
  sim::Rng rng(5);
  double low = 1.0, high = 0.0;
  for (int i = 0; i < 100000; ++i) {
    const double u = rng.uniform();
    low = std::min(low, u);
    high = std::max(high, u);
  }
  EXPECT_GE(low, 0.0);
  EXPECT_LT(low, 0.001);
  EXPECT_LT(high, 1.0);
  EXPECT_GT(high, 0.999);
}

}  // namespace
}  // namespace cyclecast::pipeline
