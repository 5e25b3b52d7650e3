// should_retrain and the promotion gate: pure decisions, every branch driven both ways; and
// retrain_state read from a real registry.
#include "cyclecast/lifecycle/policy.h"

#include <gtest/gtest.h>

#include <cmath>

#include "cyclecast/lifecycle/gate.h"
#include "cyclecast/pipeline/paired_bootstrap.h"
#include "cyclecast/storage/registry.h"
#include "lifecycle_fixture.h"
#include "temp_dir.h"

namespace cyclecast::lifecycle {
namespace {

constexpr std::int64_t kHourMs = 3'600'000;

RetrainPolicy policy(std::int64_t interval_ms, std::int64_t new_cycles) {
  RetrainPolicy p;
  p.interval_ms = interval_ms;
  p.new_cycles = new_cycles;
  p.min_gap_ms = 60'000;
  return p;
}

RetrainState state(std::int64_t now_ms, std::optional<std::int64_t> last, std::int64_t cycles) {
  RetrainState s;
  s.now_ms = now_ms;
  s.last_run_started_ms = last;
  s.cycles_since_last_snapshot = cycles;
  return s;
}

TEST(ShouldRetrain, NothingAutomaticBeforeMinCyclesAreStored) {
  RetrainPolicy p = policy(24 * kHourMs, 100);
  p.min_cycles = 1000;
  RetrainState s = state(25 * kHourMs, std::nullopt, 999);
  s.cycles_stored = 999;
  const auto waiting = should_retrain(p, s);
  EXPECT_FALSE(waiting.retrain);
  EXPECT_EQ(waiting.reason, "waiting for data: 999 cycles stored, automatic runs start at 1000");
  s.cycles_stored = 1000;
  EXPECT_EQ(should_retrain(p, s).trigger, "interval");
}

TEST(ShouldRetrain, IntervalElapsedTriggersInterval) {
  const auto d = should_retrain(policy(24 * kHourMs, 0), state(25 * kHourMs, 0, 0));
  EXPECT_TRUE(d.retrain);
  EXPECT_EQ(d.trigger, "interval");
  EXPECT_FALSE(should_retrain(policy(24 * kHourMs, 0), state(23 * kHourMs, 0, 0)).retrain);
}

TEST(ShouldRetrain, FirstRunIsDueWhenTheIntervalTriggerIsOn) {
  const auto d = should_retrain(policy(24 * kHourMs, 0), state(5, std::nullopt, 0));
  EXPECT_TRUE(d.retrain);
  EXPECT_EQ(d.trigger, "interval");
}

TEST(ShouldRetrain, NewCyclesOverThresholdTriggerCycles) {
  const auto d = should_retrain(policy(0, 1000), state(2 * kHourMs, 0, 1000));
  EXPECT_TRUE(d.retrain);
  EXPECT_EQ(d.trigger, "cycles");
  EXPECT_NE(d.reason.find("1000"), std::string::npos);
  EXPECT_FALSE(should_retrain(policy(0, 1000), state(2 * kHourMs, 0, 999)).retrain);
  // With no run yet every stored cycle counts.
  EXPECT_TRUE(should_retrain(policy(0, 1000), state(2 * kHourMs, std::nullopt, 5000)).retrain);
}

TEST(ShouldRetrain, ZeroDisablesATrigger) {
  const auto d = should_retrain(policy(0, 0), state(100 * kHourMs, 0, 1'000'000));
  EXPECT_FALSE(d.retrain);
  EXPECT_NE(d.reason.find("off"), std::string::npos);
  EXPECT_FALSE(should_retrain(policy(0, 0), state(1, std::nullopt, 1'000'000)).retrain);
}

TEST(ShouldRetrain, NeverWhileARunIsInProgress) {
  RetrainState s = state(100 * kHourMs, 0, 1'000'000);
  s.run_in_progress = true;
  const auto d = should_retrain(policy(kHourMs, 10), s);
  EXPECT_FALSE(d.retrain);
  EXPECT_EQ(d.reason, "a run is in progress");
}

TEST(ShouldRetrain, NeverWithinTheMinimumGapOfTheLastStart) {
  // A run that failed at once must not be restarted in a loop by the cycles trigger.
  EXPECT_FALSE(should_retrain(policy(0, 10), state(30'000, 0, 1'000'000)).retrain);
  EXPECT_TRUE(should_retrain(policy(0, 10), state(61'000, 0, 1'000'000)).retrain);
}

TEST(RetrainState, ComesFromTheNewestRunAndItsSnapshot) {
  cyclecast::testing::TempDir tmp;
  testing::write_fading_cells(tmp / "db", 2, 50);  // 100 cycles
  auto db = storage::Database::open(tmp / "db");
  ASSERT_TRUE(db.ok());
  auto none = retrain_state(*db, 1000);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->last_run_started_ms.has_value());
  EXPECT_EQ(none->cycles_since_last_snapshot, 100);

  auto first = storage::create_run(*db, {"manual", "t", "{}", 500});
  ASSERT_TRUE(first.ok());
  storage::RunUpdate update;
  update.snapshot = storage::DataSnapshot{"x", std::string(64, 'c'), 2, 60};
  ASSERT_TRUE(storage::update_run(*db, *first, update).ok());
  ASSERT_TRUE(storage::finish_run(*db, *first, storage::RunStatus::kSucceeded, "").ok());
  // A later run that failed before its snapshot still counts for the start time.
  auto second = storage::create_run(*db, {"cycles", "scheduler", "{}", 700});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(
      storage::finish_run(*db, *second, storage::RunStatus::kFailed, "read: no cells").ok());
  auto s = retrain_state(*db, 1000);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->last_run_started_ms, 700);
  EXPECT_EQ(s->cycles_since_last_snapshot, 40);
}

GateCandidate candidate(double mae) {
  GateCandidate c;
  c.version = "r2-20261130";
  c.mae = mae;
  c.footprint.kind = "estimate";
  c.footprint.flash_bytes = 6000;
  c.footprint.ram_bytes = 700;
  c.footprint.cycles = 30000;
  c.beats_baselines = true;
  c.baseline_reason = "linear beats every baseline the node could run on ...";
  return c;
}

// The champion measured on the run's test cells, with the bootstrap's bound on the improvement.
GateChampion champion_with(double mae, double lower, std::int64_t cells) {
  return GateChampion{"r1-20261129", mae, "", lower, cells};
}

// The candidate's and the champion's errors on the same cells, through the real bootstrap.
pipeline::PairedBootstrap compare_cells(const std::vector<double>& champion,
                                        const std::vector<double>& candidate) {
  std::vector<pipeline::CellError> a, b;
  for (size_t i = 0; i < champion.size(); ++i) {
    a.push_back({"c" + std::to_string(i), champion[i] * 100, 100});
    b.push_back({"c" + std::to_string(i), candidate[i] * 100, 100});
  }
  auto compared = pipeline::paired_bootstrap(a, b);
  EXPECT_TRUE(compared.ok());
  return compared.ok() ? *compared : pipeline::PairedBootstrap{};
}

TEST(Gate, WithoutAChampionTheBudgetDecides) {
  const auto yes = gate(candidate(0.01), std::nullopt, 0.02, {});
  EXPECT_TRUE(yes.promote) << yes.reason;
  const auto no = gate(candidate(0.01), std::nullopt, 0.02, DeploymentBudget{4096, 0, 0});
  EXPECT_FALSE(no.promote);
  EXPECT_NE(no.reason.find("flash bytes 6000 over the limit 4096"), std::string::npos) << no.reason;
}

TEST(Gate, CandidateMustBeatTheChampionByMoreThanTheNoiseAndTheMargin) {
  const auto better = gate(candidate(0.0097), champion_with(0.010, 0.0002, 6), 0.0, {});
  EXPECT_TRUE(better.promote) << better.reason;
  EXPECT_NE(better.reason.find("0.009700"), std::string::npos) << better.reason;
  EXPECT_NE(better.reason.find("0.010000"), std::string::npos) << better.reason;
  EXPECT_NE(better.reason.find("lower 90 % bound 0.000200"), std::string::npos) << better.reason;
  EXPECT_NE(better.reason.find("same 6 test cells"), std::string::npos) << better.reason;
  // The same bound under a 3 % margin: it must exceed 0.0003.
  const auto margin = gate(candidate(0.0097), champion_with(0.010, 0.0002, 6), 0.03, {});
  EXPECT_FALSE(margin.promote);
  EXPECT_NE(margin.reason.find("needs > 0.000300"), std::string::npos) << margin.reason;
  EXPECT_NE(margin.reason.find("r1-20261129"), std::string::npos) << margin.reason;
}

// Too few cells for a held-out set: the run judged its student by k-fold over cells, and the
// champion faced the same test on every cell's windows; the reason gives those figures, not the
// candidate's held-out MAE on its one or two test cells.
TEST(Gate, AChampionComparedByKFoldIsJudgedOnTheKFoldFigures) {
  GateChampion champion = champion_with(0.000278, 0.000041, 12);
  champion.scoring = "k-fold";
  champion.candidate_mae = 0.000171;
  const auto d = gate(candidate(0.0009), champion, 0.0, {});
  EXPECT_TRUE(d.promote) << d.reason;
  EXPECT_NE(d.reason.find("k-fold MAE 0.000171 vs champion r1-20261129 0.000278 on the same 12 "
                          "cells (each tested once)"),
            std::string::npos)
      << d.reason;
  EXPECT_NE(d.reason.find("improvement 0.000107"), std::string::npos) << d.reason;
  EXPECT_EQ(d.reason.find("0.000900"), std::string::npos) << d.reason;
}

TEST(Gate, AnImprovementWithinTheNoiseKeepsTheChampion) {
  // Lower on average (0.00095 against 0.00100) but worse on two of eight cells.
  const std::vector<double> champion = {0.0010, 0.0010, 0.0010, 0.0010,
                                        0.0010, 0.0010, 0.0010, 0.0010};
  const std::vector<double> noisy = {0.0008, 0.0012, 0.0007, 0.0009,
                                     0.0013, 0.0008, 0.0009, 0.0010};
  const pipeline::PairedBootstrap compared = compare_cells(champion, noisy);
  ASSERT_LT(compared.candidate_mae, compared.reference_mae);
  const auto d =
      gate(candidate(compared.candidate_mae),
           champion_with(compared.reference_mae, compared.lower, compared.cells), 0.0, {});
  EXPECT_FALSE(d.promote) << d.reason;
  EXPECT_NE(d.reason.find("is not shown better than the champion"), std::string::npos) << d.reason;
  // The same figures with one test cell: no bound, the champion stays.
  const auto one = gate(candidate(0.0009), champion_with(0.0010, std::nan(""), 1), 0.0, {});
  EXPECT_FALSE(one.promote);
  EXPECT_NE(one.reason.find("unknown from one cell"), std::string::npos) << one.reason;
  // Better on every cell: promoted.
  const std::vector<double> clearly = {0.0008, 0.0009, 0.0007, 0.0008,
                                       0.0009, 0.0008, 0.0009, 0.0008};
  const pipeline::PairedBootstrap better = compare_cells(champion, clearly);
  EXPECT_TRUE(gate(candidate(better.candidate_mae),
                   champion_with(better.reference_mae, better.lower, better.cells), 0.0, {})
                  .promote);
}

TEST(Gate, ACandidateThatDoesNotBeatTheNodesBaselinesIsNeverPromoted) {
  GateCandidate c = candidate(0.0005);
  c.beats_baselines = false;
  c.baseline_reason = "w8 does not beat the baselines the node could run on ...";
  const auto alone = gate(c, std::nullopt, 0.0, {});
  EXPECT_FALSE(alone.promote);
  EXPECT_EQ(alone.reason, "r2-20261130 is not promoted: " + c.baseline_reason);
  EXPECT_FALSE(gate(c, champion_with(0.010, 0.009, 20), 0.0, {}).promote);
  c.baseline_reason.clear();
  EXPECT_NE(gate(c, std::nullopt, 0.0, {}).reason.find("no evidence against the baselines"),
            std::string::npos);
}

TEST(Gate, InstructionsLimitUsesMeasuredInstructionsElseEstimatedCycles) {
  DeploymentBudget budget{0, 0, 25000};
  EXPECT_FALSE(gate(candidate(0.01), std::nullopt, 0.02, budget).promote);  // 30000 cycles
  GateCandidate measured = candidate(0.01);
  measured.footprint.instructions = 24000;
  EXPECT_TRUE(gate(measured, std::nullopt, 0.02, budget).promote);
  GateCandidate unknown = candidate(0.01);
  unknown.footprint.ram_bytes.reset();
  const auto d = gate(unknown, std::nullopt, 0.02, DeploymentBudget{0, 1024, 0});
  EXPECT_FALSE(d.promote);
  EXPECT_NE(d.reason.find("RAM bytes unknown"), std::string::npos) << d.reason;
}

TEST(Gate, NanNeverPromotes) {
  EXPECT_FALSE(gate(candidate(std::nan("")), std::nullopt, 0.02, {}).promote);
  EXPECT_FALSE(gate(candidate(0.001), GateChampion{"c", std::nan(""), ""}, 0.02, {}).promote);
  EXPECT_FALSE(gate(candidate(0.001), champion_with(0.002, std::nan(""), 1), 0.0, {}).promote);
}

// A retraining run evaluates the champion of its start; one promoted during the run has no MAE
// on the run's windows, and the reason says why.
TEST(Gate, AChampionWithoutAMaeIsNotComparedSayingWhy) {
  const GateDecision d =
      gate(candidate(0.001),
           GateChampion{"r3-20261201", std::nan(""), "became champion during the run"}, 0.02, {});
  EXPECT_FALSE(d.promote);
  EXPECT_EQ(d.reason,
            "r2-20261130 cannot be compared: champion r3-20261201 became champion during the run");
}

TEST(ModelVersion, IsRunIdAndUtcDate) {
  EXPECT_EQ(model_version_for(12, 1'796'083'200'000), "r12-20261201");
}

}  // namespace
}  // namespace cyclecast::lifecycle
