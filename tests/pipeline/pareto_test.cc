#include "cyclecast/pipeline/pareto.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace cyclecast::pipeline {
namespace {

Candidate point(const std::string& name, int64_t flash_bytes, double int8_mae) {
  Candidate c;
  c.name = name;
  c.stage = "stage1";
  c.flash_bytes = flash_bytes;
  c.int8_mae = int8_mae;
  c.float_mae = int8_mae;
  c.ram_bytes = 1024;
  c.ms_at_64mhz = 0.5;
  return c;
}

// A convex front, 1 kB to 16 kB doubling each step. In normalized (ln flash, MAE) space the
// distances below the chord are 0, 0.536, 0.455, 0.239, 0: the knee is the 2 kB point.
std::vector<Candidate> convex_front() {
  return {point("w4", 1024, 0.010), point("w8", 2048, 0.003), point("w16", 4096, 0.0015),
          point("w32", 8192, 0.0012), point("w64", 16384, 0.0011)};
}

TEST(ParetoFront, ExcludesPointsWorseInBothObjectives) {
  const std::vector<Candidate> c = {point("a", 1000, 0.002), point("b", 2000, 0.003),
                                    point("c", 3000, 0.001)};
  EXPECT_EQ(pareto_front(c), (std::vector<size_t>{0, 2}));
}

TEST(ParetoFront, ExcludesPointEqualInOneObjectiveAndWorseInTheOther) {
  const std::vector<Candidate> c = {point("a", 1000, 0.002), point("same-flash", 1000, 0.003),
                                    point("same-mae", 1500, 0.002)};
  EXPECT_EQ(pareto_front(c), (std::vector<size_t>{0}));
}

TEST(ParetoFront, KeepsBothOfExactDuplicates) {
  const std::vector<Candidate> c = {point("a", 1000, 0.002), point("b", 2000, 0.001),
                                    point("a-again", 1000, 0.002)};
  EXPECT_EQ(pareto_front(c), (std::vector<size_t>{0, 2, 1}));
}

TEST(ParetoFront, NeverContainsUnmeasuredCandidates) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Candidate> c = {point("nan", 100, nan), point("no-flash", 0, 0.0001),
                                    point("real", 5000, 0.004)};
  EXPECT_EQ(pareto_front(c), (std::vector<size_t>{2}));
}

TEST(ParetoFront, SinglePointIsTheWholeFront) {
  EXPECT_EQ(pareto_front({point("only", 4096, 0.001)}), (std::vector<size_t>{0}));
  EXPECT_TRUE(pareto_front({}).empty());
}

TEST(ParetoFront, OrdersFrontFromCheapestToMostAccurate) {
  std::vector<Candidate> c = convex_front();
  std::swap(c[0], c[4]);
  std::swap(c[1], c[3]);
  // indices now hold flash 16k, 8k, 4k, 2k, 1k
  EXPECT_EQ(pareto_front(c), (std::vector<size_t>{4, 3, 2, 1, 0}));
}

TEST(ChooseKnee, PicksTheKneeOfAConvexFront) {
  const auto choice = choose_knee(convex_front(), Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 1u);
  EXPECT_NE(choice->reason.find("knee of 5 front points within budget"), std::string::npos)
      << choice->reason;
  EXPECT_NE(choice->reason.find("w8 (stage1), 2.0 kB flash"), std::string::npos) << choice->reason;
  // cheaper neighbour: (0.010 - 0.003) / 0.003 = 233 % higher; dearer: 50 % lower for 2x flash.
  EXPECT_NE(choice->reason.find("w4 (1.0 kB), has 233 % higher MAE"), std::string::npos)
      << choice->reason;
  EXPECT_NE(choice->reason.find("w16, has 50 % lower MAE for 2.00x the flash"), std::string::npos)
      << choice->reason;
}

TEST(ChooseKnee, IgnoresDominatedCandidates) {
  std::vector<Candidate> c = convex_front();
  c.push_back(point("dominated", 1500, 0.02));
  c.push_back(point("dominated-too", 3000, 0.004));
  const auto choice = choose_knee(c, Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 1u);
}

TEST(ChooseKnee, FailsNamingTheSmallestWhenEveryCandidateExceedsTheBudget) {
  std::vector<Candidate> c = {point("big", 40000, 0.001), point("bigger", 80000, 0.0005)};
  const auto choice = choose_knee(c, Budget{});
  ASSERT_FALSE(choice.ok());
  EXPECT_EQ(choice.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(choice.error().message.find("the smallest, big, needs 39.1 kB flash"),
            std::string::npos)
      << choice.error().message;
}

TEST(ChooseKnee, FailsWhenNoCandidateIsMeasured) {
  const auto choice =
      choose_knee({point("nan", 1000, std::numeric_limits<double>::quiet_NaN())}, Budget{});
  ASSERT_FALSE(choice.ok());
  EXPECT_EQ(choice.error().code, ErrorCode::kInvalidArgument);
}

TEST(ChooseKnee, TreatsEachBudgetLimitAsInclusive) {
  Candidate c = point("edge", 16384, 0.001);
  c.ram_bytes = 32768;
  c.ms_at_64mhz = 5.0;
  EXPECT_TRUE(within_budget(c, Budget{}));
  c.ram_bytes = 32769;
  EXPECT_FALSE(within_budget(c, Budget{}));
  c.ram_bytes = 32768;
  c.ms_at_64mhz = 5.01;
  EXPECT_FALSE(within_budget(c, Budget{}));
  c.ms_at_64mhz = 5.0;
  c.flash_bytes = 16385;
  EXPECT_FALSE(within_budget(c, Budget{}));
}

TEST(ChooseKnee, SkipsTheKneeWhenItNeedsTooMuchRam) {
  std::vector<Candidate> c = convex_front();
  c[1].ram_bytes = 40000;
  // Front without w8: distances below the chord 0, 0.455, 0.239, 0 -> w16.
  const auto choice = choose_knee(c, Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 2u);
  EXPECT_NE(choice->reason.find("knee of 4 front points"), std::string::npos) << choice->reason;
  EXPECT_NE(choice->reason.find("1 of 5 measured candidates exceed the budget"), std::string::npos)
      << choice->reason;
}

TEST(ChooseKnee, SkipsCandidatesTooSlowForTheBudget) {
  std::vector<Candidate> c = convex_front();
  c[1].ms_at_64mhz = 7.5;
  const auto choice = choose_knee(c, Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 2u);
}

TEST(ChooseKnee, ConsidersPointsDominatedOnlyByCandidatesOverBudget) {
  Candidate fast_but_huge_ram = point("huge-ram", 4000, 0.001);
  fast_but_huge_ram.ram_bytes = 100000;
  const std::vector<Candidate> c = {fast_but_huge_ram, point("fits", 5000, 0.0012)};
  EXPECT_EQ(pareto_front(c), (std::vector<size_t>{0}));
  const auto choice = choose_knee(c, Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 1u);
}

TEST(ChooseKnee, ChoosesTheOnlyCandidateThatFits) {
  const auto choice = choose_knee({point("only", 4096, 0.001)}, Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 0u);
  EXPECT_NE(choice->reason.find("most accurate of 1 front points"), std::string::npos)
      << choice->reason;
}

TEST(ChooseKnee, ChoosesTheMostAccurateOfTwoPoints) {
  const auto choice = choose_knee({point("cheap", 1000, 0.004), point("good", 8000, 0.001)}, {});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 1u);
}

TEST(ChooseKnee, ChoosesTheMostAccurateOfAConcaveFront) {
  // MAE falls slowly, then fast: every middle point lies above the chord.
  const std::vector<Candidate> c = {point("a", 1024, 0.010), point("b", 4096, 0.0095),
                                    point("c", 16384, 0.001)};
  const auto choice = choose_knee(c, Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 2u);
  EXPECT_NE(choice->reason.find("no knee"), std::string::npos) << choice->reason;
}

TEST(ChooseKnee, ChoosesTheLowerIndexOfDuplicateKnees) {
  std::vector<Candidate> c = convex_front();
  c.insert(c.begin(), c[1]);  // index 0 and index 2 are now both the 2 kB knee
  c[0].name = "w8-first";
  const auto choice = choose_knee(c, Budget{});
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->index, 0u);

  const std::vector<Candidate> two = {point("x", 1000, 0.001), point("x-again", 1000, 0.001)};
  const auto choice_two = choose_knee(two, Budget{});
  ASSERT_TRUE(choice_two.ok());
  EXPECT_EQ(choice_two->index, 0u);
}

}  // namespace
}  // namespace cyclecast::pipeline
