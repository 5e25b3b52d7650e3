// Split-conformal calibration, coverage and the int8 table of the prediction intervals
// (intervals.h).
#include "cyclecast/pipeline/intervals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace cyclecast::pipeline {
namespace {

// One row (H = 1) of scores, one window per cell.
Eigen::MatrixXd one_row(const std::vector<double>& values) {
  return Eigen::Map<const Eigen::RowVectorXd>(values.data(),
                                              static_cast<Eigen::Index>(values.size()));
}

std::vector<int64_t> one_cell_each(size_t n) {
  std::vector<int64_t> cells(n);
  for (size_t i = 0; i < n; ++i)
    cells[i] = static_cast<int64_t>(i);
  return cells;
}

TEST(WeightedQuantile, EqualWeightsGiveTheEmpiricalQuantileAndLevelOneTheMaximum) {
  const std::vector<double> values = {4, 1, 3, 2};
  const std::vector<double> weights(4, 0.25);
  EXPECT_EQ(weighted_quantile(values, weights, 0.5), 2);
  EXPECT_EQ(weighted_quantile(values, weights, 0.51), 3);
  EXPECT_EQ(weighted_quantile(values, weights, 1.0), 4);
}

TEST(ConformalQuantiles, OneWindowPerCellIsTheClassicFiniteSampleRank) {
  // 19 cells at 90 %: rank ceil(20 * 0.9) = 18 of 19, not the 90 % empirical quantile (17.1).
  std::vector<double> values;
  for (int i = 19; i >= 1; --i)
    values.push_back(i);
  auto q = conformal_quantiles(one_row(values), one_cell_each(values.size()), 0.9);
  ASSERT_TRUE(q) << q.error().message;
  EXPECT_EQ(q->half_width, std::vector<double>{18});
  EXPECT_FALSE(q->capped);
  EXPECT_FALSE(q->few_cells);
  EXPECT_EQ(q->cells, 19);
  EXPECT_NEAR(q->level, 18.0 / 19.0, 1e-12);
}

TEST(ConformalQuantiles, FewWindowsCapTheLevelAtTheLargestScoreAndSaySo) {
  // Four windows cannot support 90 %: (4 + 1) * 0.9 > 4.
  Eigen::MatrixXd scores(2, 4);
  scores << 0.1, 0.2, 0.3, 0.4,  //
      1.0, 5.0, 2.0, 3.0;
  const std::vector<int64_t> cells = {7, 7, 9, 9};
  auto q = conformal_quantiles(scores, cells, 0.9);
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->capped);
  EXPECT_TRUE(q->few_cells);
  EXPECT_EQ(q->level, 1.0);
  EXPECT_EQ(q->half_width, (std::vector<double>{0.4, 5.0}));
  EXPECT_EQ(q->cells, 2);
  EXPECT_EQ(q->windows, 4);
}

TEST(ConformalQuantiles, FewCellsWithManyWindowsAreNotCappedButFlagged) {
  // Three cells of 40 windows, scores 0.01 .. 1.20: the rank over 120 windows (level 109/120)
  // stays below the largest score; three cells are too few for a guarantee per new cell.
  Eigen::MatrixXd scores(1, 120);
  std::vector<int64_t> cells;
  for (Eigen::Index j = 0; j < 120; ++j) {
    scores(0, j) = 0.01 * static_cast<double>(j + 1);
    cells.push_back(j / 40);
  }
  auto q = conformal_quantiles(scores, cells, 0.9);
  ASSERT_TRUE(q);
  EXPECT_FALSE(q->capped);
  EXPECT_TRUE(q->few_cells);
  EXPECT_NEAR(q->level, 109.0 / 120.0, 1e-12);
  EXPECT_NEAR(q->half_width[0], 1.09, 1e-12);
}

TEST(ConformalQuantiles, EveryCellWeighsTheSameWhateverItsNumberOfWindows) {
  // Cell 0 has 100 windows of score 1, cells 1 and 2 one window each. At 50 % (rank
  // ceil(4 * 0.5) = 2 of 3 cells) the quantile is cell 1's score; counting windows it would be 1.
  std::vector<double> values(100, 1.0);
  std::vector<int64_t> cells(100, 0);
  values.push_back(2.0);
  cells.push_back(1);
  values.push_back(3.0);
  cells.push_back(2);
  auto q = conformal_quantiles(one_row(values), cells, 0.5);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->half_width, std::vector<double>{2.0});
}

TEST(ConformalQuantiles, RefusesWhatCannotBeCalibrated) {
  const Eigen::MatrixXd ok = Eigen::MatrixXd::Ones(2, 3);
  const std::vector<int64_t> cells = {0, 1, 2};
  EXPECT_EQ(conformal_quantiles(ok, cells, 0.0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(conformal_quantiles(ok, cells, 1.0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(conformal_quantiles(ok, std::vector<int64_t>{0, 1}, 0.9).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(conformal_quantiles(Eigen::MatrixXd(2, 0), {}, 0.9).error().code,
            ErrorCode::kInvalidArgument);
  Eigen::MatrixXd negative = ok;
  negative(1, 2) = -0.1;
  EXPECT_FALSE(conformal_quantiles(negative, cells, 0.9));
  Eigen::MatrixXd nan = ok;
  nan(0, 0) = std::nan("");
  EXPECT_FALSE(conformal_quantiles(nan, cells, 0.9));
}

TEST(ConformalQuantiles, CoverNewExchangeableCellsAtTheNominalRate) {
  // 40 calibration cells of 5 windows each, every window's score drawn from one distribution;
  // the half-width must cover about 90 % of 20,000 fresh draws (the guarantee: at least 90 % in
  // expectation over calibration sets, at most 90 % + 1/(m + 1)).
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> draw(1.0);
  Eigen::MatrixXd scores(1, 200);
  std::vector<int64_t> cells;
  for (Eigen::Index j = 0; j < scores.cols(); ++j) {
    scores(0, j) = draw(rng);
    cells.push_back(j / 5);
  }
  auto q = conformal_quantiles(scores, cells, 0.9);
  ASSERT_TRUE(q);
  int inside = 0;
  for (int i = 0; i < 20000; ++i)
    inside += draw(rng) <= q->half_width[0] ? 1 : 0;
  const double coverage = inside / 20000.0;
  EXPECT_GT(coverage, 0.85);
  EXPECT_LT(coverage, 0.96);
}

TEST(IntervalCoverage, CountsEveryStepOfEveryWindowBoundsIncluded) {
  Eigen::MatrixXd truth(2, 2), lower(2, 2), upper(2, 2);
  truth << 1, 5,  //
      2, 9;
  lower << 1, 4,  //
      0, 10;
  upper << 3, 6,  //
      1, 12;
  const IntervalCoverage all = interval_coverage(truth, lower, upper);
  EXPECT_EQ(all.windows, 2);
  EXPECT_DOUBLE_EQ(all.coverage, 0.5);  // (0,0) on the bound and (0,1) inside
  EXPECT_DOUBLE_EQ(all.mean_width, (2 + 2 + 1 + 2) / 4.0);
  const std::vector<int64_t> second = {1};
  EXPECT_DOUBLE_EQ(interval_coverage(truth, lower, upper, second).coverage, 0.5);
  EXPECT_EQ(coverage_by_step(truth, lower, upper), (std::vector<double>{1.0, 0.0}));
}

TEST(IntervalCoverage, NoWindowsGiveNaNAndGroupsKeepTheirFirstAppearanceOrder) {
  const Eigen::MatrixXd empty(3, 0);
  const IntervalCoverage none = interval_coverage(empty, empty, empty);
  EXPECT_EQ(none.windows, 0);
  EXPECT_TRUE(std::isnan(none.coverage));
  EXPECT_TRUE(std::isnan(none.mean_width));

  Eigen::MatrixXd truth = Eigen::MatrixXd::Zero(1, 3);
  Eigen::MatrixXd lower(1, 3), upper(1, 3);
  lower << -1, 1, -1;
  upper << 1, 2, 1;
  const std::vector<std::string> bands = {"low", "high", "low"};
  const auto groups = interval_coverage_by_group(truth, lower, upper, bands);
  ASSERT_EQ(groups.size(), 2U);
  EXPECT_EQ(groups[0].first, "low");
  EXPECT_EQ(groups[0].second.windows, 2);
  EXPECT_DOUBLE_EQ(groups[0].second.coverage, 1.0);
  EXPECT_EQ(groups[1].first, "high");
  EXPECT_DOUBLE_EQ(groups[1].second.coverage, 0.0);
}

TEST(HalfWidthTable, RoundsUpToTheOutputScaleSoTheIntegerIntervalIsNeverNarrower) {
  const std::vector<double> widths = {0.0, 0.25, 0.2500001, 1e300,
                                      std::numeric_limits<double>::infinity()};
  const std::vector<int32_t> table = half_width_table(widths, 0.125);
  EXPECT_EQ(table, (std::vector<int32_t>{0, 2, 3, 1 << 30, 1 << 30}));
  for (size_t k = 0; k < 3; ++k)
    EXPECT_GE(table[k] * 0.125, widths[k]);
}

TEST(IntervalMetadata, RoundTripsExactlyAndAFileWithoutItHasNoInterval) {
  IntervalReport report;
  report.calibration.coverage = 0.9;
  report.calibration.half_width = {0.1, 1.0 / 3.0, 2.5e-7};
  auto back = intervals_from_metadata(interval_metadata(report), 3);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ((*back)->coverage, 0.9);
  EXPECT_EQ((*back)->half_width, report.calibration.half_width);
  auto none = intervals_from_metadata({{"pipeline.horizon", "3"}}, 3);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(IntervalMetadata, RefusesHalfAPairBadNumbersAndTheWrongCount) {
  const auto refused = [](std::map<std::string, std::string> m) {
    auto r = intervals_from_metadata(m, 2);
    return !r.ok() && r.error().code == ErrorCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused({{"pipeline.interval.coverage", "0.9"}}));
  EXPECT_TRUE(refused({{"pipeline.interval.half_width", "1,2"}}));
  const std::string c = "pipeline.interval.coverage", w = "pipeline.interval.half_width";
  EXPECT_TRUE(refused({{c, "1.5"}, {w, "1,2"}}));
  EXPECT_TRUE(refused({{c, "x"}, {w, "1,2"}}));
  EXPECT_TRUE(refused({{c, "0.9"}, {w, "1"}}));
  EXPECT_TRUE(refused({{c, "0.9"}, {w, "1,2,3"}}));
  EXPECT_TRUE(refused({{c, "0.9"}, {w, "1,"}}));
  EXPECT_TRUE(refused({{c, "0.9"}, {w, ""}}));
  EXPECT_TRUE(refused({{c, "0.9"}, {w, "1,-2"}}));
  EXPECT_TRUE(refused({{c, "0.9"}, {w, "1,inf"}}));
  EXPECT_TRUE(refused({{c, "0.9"}, {w, "1,nan"}}));
  EXPECT_FALSE(refused({{c, "0.9"}, {w, "1,2"}}));
}

}  // namespace
}  // namespace cyclecast::pipeline
