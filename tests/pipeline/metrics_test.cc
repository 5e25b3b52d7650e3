// Tests of the forecast metrics on hand-made truth/prediction matrices.
#include "cyclecast/pipeline/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace cyclecast::pipeline {
namespace {

TEST(Metrics, MaeRmseAndPerStepErrorsOfAKnownError) {
  // H = 12, 2 windows; errors: window 0 all +0.01, window 1 all -0.03 except step 12 = 0.
  Eigen::MatrixXd truth = Eigen::MatrixXd::Constant(12, 2, 0.95);
  Eigen::MatrixXd pred = truth;
  pred.col(0).array() += 0.01;
  pred.col(1).array() -= 0.03;
  pred(11, 1) = truth(11, 1);
  const ForecastMetrics m = compute_metrics(truth, pred);
  EXPECT_EQ(m.windows, 2);
  EXPECT_NEAR(m.mae, (12 * 0.01 + 11 * 0.03) / 24.0, 1e-12);
  EXPECT_NEAR(m.rmse, std::sqrt((12 * 1e-4 + 11 * 9e-4) / 24.0), 1e-12);
  ASSERT_EQ(m.mae_by_step.size(), 12u);
  EXPECT_NEAR(m.mae_by_step[0], 0.02, 1e-12);
  EXPECT_NEAR(m.mae_10, 0.02, 1e-12);    // step 10
  EXPECT_NEAR(m.mae_100, 0.005, 1e-12);  // step H = 12
  EXPECT_EQ(m.eol_windows, 0);
  EXPECT_TRUE(std::isnan(m.eol_error_cycles));
}

TEST(Metrics, MaeAtTenIsTheLastStepWhenTheHorizonIsShorter) {
  Eigen::MatrixXd truth = Eigen::MatrixXd::Zero(4, 1);
  Eigen::MatrixXd pred = truth;
  pred(3, 0) = 0.5;
  const ForecastMetrics m = compute_metrics(truth, pred);
  EXPECT_DOUBLE_EQ(m.mae_10, 0.5);
  EXPECT_DOUBLE_EQ(m.mae_100, 0.5);
}

TEST(Metrics, EndOfLifeErrorIsTheCrossingStepDifferenceOverWindowsWhoseTruthCrosses) {
  // H = 10. Window 0: truth crosses 0.8 at step 4, prediction at step 6 (error 2).
  // Window 1: truth crosses at step 3, prediction never (counts as step 11: error 8).
  // Window 2: truth never crosses: not counted, whatever the prediction does.
  // Window 3: already below before the window: not counted.
  Eigen::MatrixXd truth(10, 4), pred(10, 4);
  for (int j = 0; j < 10; ++j) {
    const double step = j + 1;
    truth(j, 0) = 0.835 - 0.01 * step;  // 0.795 at step 4
    pred(j, 0) = 0.855 - 0.01 * step;   // 0.795 at step 6
    truth(j, 1) = 0.825 - 0.01 * step;  // 0.795 at step 3
    pred(j, 1) = 0.9;
    truth(j, 2) = 0.9;
    pred(j, 2) = 0.7;
    truth(j, 3) = 0.7;
    pred(j, 3) = 0.9;
  }
  const std::vector<double> last_soh{0.835, 0.825, 0.9, 0.79};
  const ForecastMetrics m = compute_metrics(truth, pred, last_soh);
  EXPECT_EQ(m.eol_windows, 2);
  EXPECT_DOUBLE_EQ(m.eol_error_cycles, (2.0 + 8.0) / 2.0);
  EXPECT_EQ(first_crossing_step(truth.col(0), 0.8), 4);
  EXPECT_EQ(first_crossing_step(pred.col(1), 0.8), 11);
}

TEST(Metrics, NoWindowsGiveNaNFigures) {
  const ForecastMetrics m = compute_metrics(Eigen::MatrixXd(5, 0), Eigen::MatrixXd(5, 0));
  EXPECT_EQ(m.windows, 0);
  EXPECT_TRUE(std::isnan(m.mae));
  EXPECT_TRUE(std::isnan(m.rmse));
}

}  // namespace
}  // namespace cyclecast::pipeline
