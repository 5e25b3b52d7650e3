// The paired bootstrap over cells the promotion gate decides by (paired_bootstrap.h) and the
// evidence a run gives it against the node's baselines (gate_evidence.h).
#include "cyclecast/pipeline/paired_bootstrap.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cyclecast/pipeline/gate_evidence.h"

namespace cyclecast::pipeline {
namespace {

// `cells` cells of `values` values each, cell i with error sum per_value(i) * values.
template <typename F>
std::vector<CellError> cells_with(int cells, int64_t values, F per_value) {
  std::vector<CellError> out;
  for (int i = 0; i < cells; ++i) {
    out.push_back({"c" + std::to_string(i), per_value(i) * static_cast<double>(values), values});
  }
  return out;
}

TEST(ErrorsByCell, SumsEveryStepOfEveryWindowPerCellInOrderOfFirstWindow) {
  Eigen::MatrixXd truth = Eigen::MatrixXd::Zero(2, 3);
  Eigen::MatrixXd prediction(2, 3);
  prediction << 1, -2, 4,  //
      3, 0.5, -1;
  const std::vector<std::string> cells = {"b", "a", "b"};
  const auto errors = errors_by_cell(truth, prediction, cells);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].cell, "b");
  EXPECT_DOUBLE_EQ(errors[0].abs_error_sum, 1 + 3 + 4 + 1);
  EXPECT_EQ(errors[0].values, 4);
  EXPECT_EQ(errors[1].cell, "a");
  EXPECT_DOUBLE_EQ(errors[1].abs_error_sum, 2.5);
  EXPECT_EQ(errors[1].values, 2);
  EXPECT_DOUBLE_EQ(pooled_mae(errors), 11.5 / 6.0);
}

TEST(PairedBootstrap, AConstantImprovementInEveryCellIsItsOwnBound) {
  // Every cell improves by 0.001 per value whatever its size: every resample says 0.001.
  const auto reference = cells_with(8, 40, [](int i) { return 0.003 + 0.001 * i; });
  auto candidate = reference;
  for (CellError& c : candidate)
    c.abs_error_sum -= 0.001 * static_cast<double>(c.values);
  auto b = paired_bootstrap(reference, candidate);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->cells, 8);
  EXPECT_NEAR(b->improvement, 0.001, 1e-12);
  EXPECT_NEAR(b->lower, 0.001, 1e-12);
  EXPECT_NEAR(b->reference_mae - b->candidate_mae, b->improvement, 1e-15);
}

TEST(PairedBootstrap, IdenticalErrorsBoundNothingAboveZero) {
  const auto errors = cells_with(12, 30, [](int i) { return 0.002 * (1 + i % 3); });
  auto b = paired_bootstrap(errors, errors);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->improvement, 0.0);
  EXPECT_EQ(b->lower, 0.0);
  EXPECT_FALSE(b->lower > 0.0);
}

TEST(PairedBootstrap, OneCellGivesTheFigureButNoBound) {
  const auto reference = cells_with(1, 50, [](int) { return 0.004; });
  const auto candidate = cells_with(1, 50, [](int) { return 0.001; });
  auto b = paired_bootstrap(reference, candidate);
  ASSERT_TRUE(b.ok());
  EXPECT_NEAR(b->improvement, 0.003, 1e-12);
  EXPECT_TRUE(std::isnan(b->lower));
}

TEST(PairedBootstrap, OneBadCellAmongTenKeepsTheBoundBelowZeroThoughTheMeanImproves) {
  // Nine cells improve by 1e-4 per value, one worsens by 5e-4: the pooled improvement is
  // 0.4e-4, but a resample holds the bad cell twice or more with odds 0.26 > 0.10.
  const auto reference = cells_with(10, 20, [](int) { return 0.002; });
  const auto candidate = cells_with(10, 20, [](int i) { return i == 3 ? 0.0025 : 0.0019; });
  auto b = paired_bootstrap(reference, candidate);
  ASSERT_TRUE(b.ok());
  EXPECT_NEAR(b->improvement, 0.4e-4, 1e-12);
  EXPECT_LE(b->lower, 0.0);
}

TEST(PairedBootstrap, SameInputsSameBoundAndAHigherLevelBoundsLower) {
  const auto reference = cells_with(9, 25, [](int i) { return 0.003 + 0.0004 * (i % 4); });
  const auto candidate = cells_with(9, 25, [](int i) { return 0.0028 + 0.0003 * (i % 5); });
  auto first = paired_bootstrap(reference, candidate);
  auto second = paired_bootstrap(reference, candidate);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->lower, second->lower);  // bit for bit: a fixed seed
  BootstrapOptions strict;
  strict.level = 0.99;
  auto stricter = paired_bootstrap(reference, candidate, strict);
  ASSERT_TRUE(stricter.ok());
  EXPECT_LE(stricter->lower, first->lower);
  EXPECT_LT(first->lower, first->improvement);
}

TEST(PairedBootstrap, RefusesErrorsThatDoNotPair) {
  const auto three = cells_with(3, 10, [](int) { return 0.001; });
  const auto two = cells_with(2, 10, [](int) { return 0.001; });
  EXPECT_EQ(paired_bootstrap(three, two).error().code, ErrorCode::kInvalidArgument);
  auto renamed = three;
  renamed[1].cell = "other";
  EXPECT_FALSE(paired_bootstrap(three, renamed).ok());
  auto fewer_windows = three;
  fewer_windows[2].values = 5;
  EXPECT_FALSE(paired_bootstrap(three, fewer_windows).ok());
  EXPECT_FALSE(paired_bootstrap({}, {}).ok());
  auto empty_cell = three;
  for (CellError& c : empty_cell)
    c.values = 0;
  EXPECT_FALSE(paired_bootstrap(empty_cell, empty_cell).ok());
  BootstrapOptions bad;
  bad.level = 1.0;
  EXPECT_FALSE(paired_bootstrap(three, three, bad).ok());
  bad = {};
  bad.resamples = 0;
  EXPECT_FALSE(paired_bootstrap(three, three, bad).ok());
}

TEST(GateEvidence, TheDecisiveBaselineIsTheMostAccurateAndTheReasonGivesBothMaesAndTheBound) {
  const auto candidate = cells_with(6, 10, [](int) { return 0.001; });
  const std::vector<std::pair<std::string, std::vector<CellError>>> references = {
      {"last value", cells_with(6, 10, [](int) { return 0.009; })},
      {"line-10", cells_with(6, 10, [](int i) { return 0.002 + 0.0001 * i; })},
      {"quadratic-50", cells_with(6, 10, [](int) { return 0.004; })}};
  auto e = judge_against_references("linear", candidate, references, "k-fold", 5);
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->best_reference, "line-10");
  EXPECT_EQ(e->weakest_reference, "line-10");
  EXPECT_EQ(e->comparisons.size(), 3u);
  EXPECT_TRUE(e->beats_references);
  EXPECT_GT(e->lower, 0.0);
  EXPECT_NEAR(e->candidate_mae, 0.001, 1e-12);
  EXPECT_NE(e->reason.find("0.001000"), std::string::npos) << e->reason;
  EXPECT_NE(e->reason.find("0.002250"), std::string::npos) << e->reason;
  EXPECT_NE(e->reason.find("lower 90 % bound"), std::string::npos) << e->reason;
  EXPECT_NE(e->reason.find("5-fold"), std::string::npos) << e->reason;
}

// Beating the most accurate baseline on average is not enough: the candidate must be told apart
// from every one of them.
TEST(GateEvidence, EveryBaselineMustBeBeatenNotOnlyTheMostAccurate) {
  const auto candidate = cells_with(10, 20, [](int) { return 0.0010; });
  const std::vector<std::pair<std::string, std::vector<CellError>>> references = {
      // Lowest MAE, but worse than the candidate in every cell.
      {"linear", cells_with(10, 20, [](int) { return 0.00105; })},
      // Higher MAE on average, but better than the candidate on three cells of ten.
      {"quadratic-50", cells_with(10, 20, [](int i) { return i < 3 ? 0.0006 : 0.0013; })}};
  auto e = judge_against_references("w8", candidate, references, "k-fold", 5);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->best_reference, "linear");
  EXPECT_GT(e->comparisons[0].result.lower, 0.0);
  EXPECT_EQ(e->weakest_reference, "quadratic-50");
  EXPECT_LE(e->lower, 0.0);
  EXPECT_FALSE(e->beats_references);
  EXPECT_NE(e->reason.find("does not beat the baselines the node could run"), std::string::npos)
      << e->reason;
  EXPECT_NE(e->reason.find("quadratic-50 MAE 0.001000 vs 0.001090"), std::string::npos)
      << e->reason;
}

TEST(GateEvidence, NoBeatingWithoutABoundAboveZero) {
  const auto candidate = cells_with(1, 10, [](int) { return 0.001; });
  const std::vector<std::pair<std::string, std::vector<CellError>>> one_cell = {
      {"line-10", cells_with(1, 10, [](int) { return 0.003; })}};
  auto e = judge_against_references("w8", candidate, one_cell, "held-out", 0);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->beats_references);
  EXPECT_NE(e->reason.find("does not beat"), std::string::npos) << e->reason;
  EXPECT_FALSE(judge_against_references("w8", candidate, {}, "held-out", 0).ok());
}

}  // namespace
}  // namespace cyclecast::pipeline
