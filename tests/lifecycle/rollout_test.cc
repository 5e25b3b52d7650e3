#include "cyclecast/lifecycle/rollout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace cyclecast::lifecycle {
namespace {

// `cells` cells of `per_cell` scored forecasts each, errors spread around `mae` (each cell with
// its own level, as live cells have), all with origin SOH `soh`.
std::vector<LiveSample> live_errors(const std::string& prefix, int cells, int per_cell, double mae,
                                    double soh, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> cell_level(0.7, 1.3), noise(0.5, 1.5);
  std::vector<LiveSample> out;
  for (int c = 0; c < cells; ++c) {
    const double level = mae * cell_level(rng);
    for (int i = 0; i < per_cell; ++i)
      out.push_back({prefix + std::to_string(c), level * noise(rng), soh});
  }
  return out;
}

RolloutPolicy rollout_test_policy() {
  RolloutPolicy p;
  p.min_scored = 50;
  p.max_scored = 500;
  p.tolerance = 0.10;
  return p;
}

TEST(RolloutPolicyCheck, AcceptsTheDefaultsAndNamesTheFirstBadOption) {
  EXPECT_TRUE(check_rollout_policy(RolloutPolicy{}));
  RolloutPolicy p;
  p.canary_share = 1.0;
  auto r = check_rollout_policy(p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("canary_share"), std::string::npos);
  p = {};
  p.max_scored = p.min_scored - 1;
  r = check_rollout_policy(p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("max_scored"), std::string::npos);
  p = {};
  p.tolerance = std::nan("");
  EXPECT_FALSE(check_rollout_policy(p));
  p = {};
  p.level = 0.5;
  EXPECT_FALSE(check_rollout_policy(p));
}

TEST(ChooseCanaries, TakesTheFirstNodesInIdOrderOnceEach) {
  RolloutPolicy p;
  p.canary_count = 2;
  EXPECT_EQ(choose_canaries({"node-c", "node-a", "node-b", "node-a"}, p),
            (std::vector<std::string>{"node-a", "node-b"}));
}

TEST(ChooseCanaries, AShareRoundsUpAndLeavesAtLeastOneNodeOnThePreviousModel) {
  RolloutPolicy p;
  p.canary_share = 0.25;
  EXPECT_EQ(choose_canaries({"a", "b", "c", "d", "e"}, p).size(), 2u);  // ceil(1.25)
  p.canary_share = 0.99;
  EXPECT_EQ(choose_canaries({"a", "b", "c"}, p).size(), 2u);
  p = {};
  p.canary_count = 10;
  EXPECT_EQ(choose_canaries({"a", "b"}, p), std::vector<std::string>{"a"});
  EXPECT_EQ(choose_canaries({"only"}, p), std::vector<std::string>{"only"});
  EXPECT_TRUE(choose_canaries({}, p).empty());
}

TEST(DecideRollout, WaitsUntilBothSidesHaveTheScoredForecastsThePolicyAsksFor) {
  const auto candidate = live_errors("new", 4, 10, 0.01, 0.97, 1);  // 40 < 50
  const auto reference = live_errors("old", 10, 20, 0.01, 0.97, 2);
  const RolloutDecision d = decide_rollout(candidate, reference, rollout_test_policy());
  EXPECT_EQ(d.verdict, RolloutVerdict::kWait);
  EXPECT_EQ(d.candidate_scored, 40);
  EXPECT_EQ(d.reference_scored, 200);
  EXPECT_NE(d.reason.find("waiting for scored forecasts"), std::string::npos) << d.reason;
}

// Cells differ from one another by +/-30 %, so telling 10 % apart takes dozens of cells a side.
TEST(DecideRollout, AModelAsGoodAsThePreviousOneProceeds) {
  const auto candidate = live_errors("new", 60, 10, 0.010, 0.97, 3);
  const auto reference = live_errors("old", 80, 10, 0.010, 0.97, 4);
  const RolloutDecision d = decide_rollout(candidate, reference, rollout_test_policy());
  EXPECT_EQ(d.verdict, RolloutVerdict::kProceed) << d.reason;
  EXPECT_LE(d.upper, 0.10);
  EXPECT_LT(d.lower, d.upper);
  EXPECT_EQ(d.reason.rfind("proceed: ", 0), 0u) << d.reason;
}

TEST(DecideRollout, AModelTwiceAsWrongIsRolledBackWithBothFiguresInTheReason) {
  const auto candidate = live_errors("new", 20, 20, 0.020, 0.97, 5);
  const auto reference = live_errors("old", 30, 20, 0.010, 0.97, 6);
  const RolloutDecision d = decide_rollout(candidate, reference, rollout_test_policy());
  EXPECT_EQ(d.verdict, RolloutVerdict::kRollBack) << d.reason;
  EXPECT_GT(d.lower, 0.10);
  EXPECT_NEAR(d.candidate_mae / d.reference_mae, 2.0, 0.3);
  EXPECT_NE(d.reason.find("20 cells"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("30 cells"), std::string::npos) << d.reason;
}

// The canaries' cells are older (low band, where every model errs more) than the other nodes'
// cells. Compared band by band the new model is as good; a plain comparison would blame it.
TEST(DecideRollout, ComparesOnTheSameSohBandsSoOlderCanaryCellsAreNotBlamedOnTheModel) {
  std::vector<LiveSample> candidate = live_errors("new-old-cell", 20, 20, 0.030, 0.85, 7);
  const auto young = live_errors("new-young-cell", 5, 20, 0.010, 0.97, 8);
  candidate.insert(candidate.end(), young.begin(), young.end());
  std::vector<LiveSample> reference = live_errors("old-young-cell", 30, 20, 0.010, 0.97, 9);
  const auto old = live_errors("old-old-cell", 10, 20, 0.030, 0.85, 10);
  reference.insert(reference.end(), old.begin(), old.end());
  const RolloutDecision d = decide_rollout(candidate, reference, rollout_test_policy());
  EXPECT_EQ(d.verdict, RolloutVerdict::kProceed) << d.reason;
  EXPECT_NEAR(d.candidate_mae, d.reference_mae, 0.15 * d.reference_mae);
}

TEST(DecideRollout, LeavesOutAndCountsForecastsInABandThePreviousModelHasNotForecast) {
  std::vector<LiveSample> candidate = live_errors("new", 20, 20, 0.010, 0.97, 11);
  const auto low = live_errors("new-low", 3, 10, 0.5, 0.85, 12);  // would dominate
  candidate.insert(candidate.end(), low.begin(), low.end());
  const auto reference = live_errors("old", 30, 20, 0.010, 0.97, 13);
  const RolloutDecision d = decide_rollout(candidate, reference, rollout_test_policy());
  EXPECT_EQ(d.verdict, RolloutVerdict::kProceed) << d.reason;
  EXPECT_EQ(d.candidate_scored, 400);
  EXPECT_NE(d.reason.find("30 of its forecasts left out"), std::string::npos) << d.reason;
}

TEST(DecideRollout, WithinNoiseItWaitsThenThePointEstimateDecidesAtMaxScored) {
  // 15 % worse on four cells that disagree a lot: the bounds straddle the tolerance.
  RolloutPolicy p = rollout_test_policy();
  p.min_scored = 20;
  p.max_scored = 1000;
  std::vector<LiveSample> candidate, reference;
  const double levels[] = {0.002, 0.03, 0.008, 0.016};
  for (int c = 0; c < 4; ++c) {
    for (int i = 0; i < 10; ++i) {
      candidate.push_back({"new" + std::to_string(c), 1.15 * levels[c], 0.97});
      reference.push_back({"old" + std::to_string(c), levels[(c + 1) % 4], 0.97});
    }
  }
  RolloutDecision d = decide_rollout(candidate, reference, p);
  ASSERT_EQ(d.verdict, RolloutVerdict::kWait) << d.reason;
  EXPECT_LT(d.lower, 0.10);
  EXPECT_GT(d.upper, 0.10);
  p.max_scored = 40;
  d = decide_rollout(candidate, reference, p);
  EXPECT_EQ(d.verdict, RolloutVerdict::kRollBack) << d.reason;
  EXPECT_NE(d.reason.find("point estimate"), std::string::npos) << d.reason;
}

TEST(DecideRollout, IgnoresUnusableErrorsAndDoesNotDependOnTheSamplesOrder) {
  std::vector<LiveSample> candidate = live_errors("new", 20, 20, 0.010, 0.97, 14);
  const auto reference = live_errors("old", 30, 20, 0.010, 0.97, 15);
  const RolloutDecision before = decide_rollout(candidate, reference, rollout_test_policy());
  candidate.push_back({"new0", std::nan(""), 0.97});
  candidate.push_back({"new0", -1.0, 0.97});
  candidate.push_back({"new0", INFINITY, 0.97});
  std::reverse(candidate.begin(), candidate.end());
  const RolloutDecision after = decide_rollout(candidate, reference, rollout_test_policy());
  EXPECT_EQ(after.candidate_scored, before.candidate_scored);
  EXPECT_NEAR(after.lower, before.lower, 1e-12);  // sums in another order: rounding only
  EXPECT_NEAR(after.upper, before.upper, 1e-12);
  EXPECT_EQ(after.reason, before.reason);
}

TEST(DecideRollout, BoundsNeedTwoCellsOnEachSide) {
  RolloutPolicy p = rollout_test_policy();
  p.max_scored = 10000;
  const auto candidate = live_errors("new", 1, 100, 0.010, 0.97, 16);
  const auto reference = live_errors("old", 30, 20, 0.010, 0.97, 17);
  const RolloutDecision d = decide_rollout(candidate, reference, p);
  EXPECT_EQ(d.verdict, RolloutVerdict::kWait) << d.reason;
  EXPECT_TRUE(std::isnan(d.lower));
  EXPECT_NE(d.reason.find("unknown"), std::string::npos) << d.reason;
}

}  // namespace
}  // namespace cyclecast::lifecycle
