// Tests of the baselines: the extrapolations on series they must reproduce exactly, and the
// closed-form ridge regression against a known linear map.
#include "cyclecast/pipeline/baselines.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace cyclecast::pipeline {
namespace {

// W x 1 inputs from f(t), t = 0..W-1.
template <typename F>
Eigen::MatrixXd inputs_of(int w, F f) {
  Eigen::MatrixXd x(w, 1);
  for (int t = 0; t < w; ++t)
    x(t, 0) = f(static_cast<double>(t));
  return x;
}

TEST(Baselines, LastValueRepeatsTheLastInput) {
  Eigen::MatrixXd x(3, 2);
  x << 1.0, 0.5, 0.9, 0.4, 0.8, 0.3;
  const Eigen::MatrixXd f = forecast_last_value(x, 4);
  ASSERT_EQ(f.rows(), 4);
  EXPECT_TRUE((f.col(0).array() == 0.8).all());
  EXPECT_TRUE((f.col(1).array() == 0.3).all());
}

TEST(Baselines, LineExtendsALinearSeriesExactlyAndUsesOnlyTheLastPoints) {
  // Linear over the last 10 points; an earlier kink must not matter.
  const auto x = inputs_of(30, [](double t) { return t < 15 ? 5.0 : 1.0 - 0.002 * t; });
  const Eigen::MatrixXd f = forecast_polynomial(x, 5, 10, 1);
  for (int j = 0; j < 5; ++j)
    EXPECT_NEAR(f(j, 0), 1.0 - 0.002 * (29 + j + 1), 1e-12);
}

TEST(Baselines, QuadraticExtendsAQuadraticSeriesExactly) {
  const auto q = [](double t) { return 1.0 - 1e-4 * t - 3e-6 * t * t; };
  const auto x = inputs_of(100, q);
  const Eigen::MatrixXd f = forecast_polynomial(x, 100, 50, 2);
  for (int j = 0; j < 100; ++j)
    EXPECT_NEAR(f(j, 0), q(99.0 + j + 1), 1e-10);
}

TEST(Baselines, APolynomialFitIsLeastSquaresOnNoisyPoints) {
  // Alternating +-e around a constant: the least-squares line is flat at the mean.
  const auto x =
      inputs_of(10, [](double t) { return 0.9 + (static_cast<int>(t) % 2 ? 0.01 : -0.01); });
  const Eigen::MatrixXd f = forecast_polynomial(x, 3, 10, 0);
  EXPECT_NEAR(f(2, 0), 0.9, 1e-12);
}

Windows linear_windows(const Eigen::MatrixXd& w_true, const Eigen::VectorXd& b_true, int n) {
  Windows windows;
  models::Rng rng(5);
  windows.inputs.resize(w_true.cols(), n);
  for (int i = 0; i < n; ++i) {
    for (Eigen::Index k = 0; k < w_true.cols(); ++k) {
      windows.inputs(k, i) = static_cast<float>(rng.uniform(-1, 1));
    }
  }
  Eigen::MatrixXd y = w_true * windows.inputs.cast<double>();
  y.colwise() += b_true;
  windows.targets = y.cast<float>();
  windows.refs.resize(static_cast<std::size_t>(n));
  return windows;
}

TEST(Ridge, RecoversAnExactLinearMapWithTinyLambda) {
  Eigen::MatrixXd w_true(2, 3);
  w_true << 1.0, -2.0, 0.5, 0.0, 3.0, 1.0;
  const Eigen::VectorXd b_true = Eigen::Vector2d(0.25, -1.0);
  const Windows train = linear_windows(w_true, b_true, 200);
  auto ridge = fit_ridge(train.inputs, train.targets, 1e-9);
  ASSERT_TRUE(ridge.ok()) << ridge.error().message;
  EXPECT_LT((ridge->weights - w_true).cwiseAbs().maxCoeff(), 1e-4);
  EXPECT_LT((ridge->bias - b_true).cwiseAbs().maxCoeff(), 1e-4);
  const Eigen::MatrixXd predicted = ridge->predict(train.inputs);
  EXPECT_LT((predicted - train.targets.cast<double>()).cwiseAbs().maxCoeff(), 1e-4);
}

TEST(Ridge, LargerLambdaShrinksTheWeights) {
  Eigen::MatrixXd w_true(1, 2);
  w_true << 2.0, -1.0;
  const Windows train = linear_windows(w_true, Eigen::VectorXd::Zero(1), 100);
  auto light = fit_ridge(train.inputs, train.targets, 1e-6);
  auto heavy = fit_ridge(train.inputs, train.targets, 100.0);
  ASSERT_TRUE(light.ok());
  ASSERT_TRUE(heavy.ok());
  EXPECT_LT(heavy->weights.norm(), 0.8 * light->weights.norm());
  EXPECT_EQ(heavy->lambda, 100.0);
}

TEST(Ridge, RefusesNoWindowsNegativeLambdaAndASingularSystem) {
  EXPECT_FALSE(fit_ridge(Windows{}, FeatureSpec{}, 1.0).ok());
  EXPECT_FALSE(fit_ridge(models::Matrix<float>(3, 0), models::Matrix<float>(1, 0), 1.0).ok());
  Eigen::MatrixXd w_true(1, 2);
  w_true << 1.0, 1.0;
  Windows train = linear_windows(w_true, Eigen::VectorXd::Zero(1), 10);
  EXPECT_EQ(fit_ridge(train.inputs, train.targets, -1.0).error().code, ErrorCode::kInvalidArgument);
  train.inputs.row(1).setConstant(3.0f);  // a constant input: no information, singular at 0
  auto singular = fit_ridge(train.inputs, train.targets, 0.0);
  ASSERT_FALSE(singular.ok());
  EXPECT_EQ(singular.error().code, ErrorCode::kInvalidArgument);
}

// SOH falling at `rate` per cycle with a slow acceleration, no optional feature.
CellSeries fading_cell(const std::string& id, int64_t rows, double rate) {
  CellSeries cell{id, "", 1.1, {}, "", {}};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (int64_t r = 0; r < rows; ++r) {
    const double t = static_cast<double>(r);
    cell.rows.push_back(SeriesRow{r + 1, 1.0 - rate * t - 1e-6 * t * t, nan, nan, nan});
  }
  return cell;
}

TEST(Ridge, OnWindowsFitsTheLinearDesignNotTheModelInputVector) {
  const std::vector<CellSeries> cells{fading_cell("a", 60, 1e-3), fading_cell("b", 50, 3e-3),
                                      fading_cell("c", 40, 2e-3)};
  FeatureOptions options;
  options.input_len = 6;
  options.horizon = 3;
  auto spec = fit_feature_spec(cells, options);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  const Windows train = make_windows(cells, *spec, 1);
  auto on_windows = fit_ridge(train, *spec, 1e-3);
  auto on_design = fit_ridge(linear_inputs(train, *spec), train.targets, 1e-3);
  ASSERT_TRUE(on_windows.ok()) << on_windows.error().message;
  ASSERT_TRUE(on_design.ok());
  ASSERT_EQ(on_windows->weights.cols(), 6 + 1);
  EXPECT_EQ(on_windows->weights, on_design->weights);
  EXPECT_EQ(on_windows->bias, on_design->bias);
  EXPECT_EQ(on_windows->predict(train, *spec), on_design->predict(linear_inputs(train, *spec)));
  // Quadratic fades are linear in the deltas: the linear design forecasts them almost exactly.
  const Eigen::MatrixXd error = on_windows->predict(train, *spec) - train.targets.cast<double>();
  EXPECT_LT(error.cwiseAbs().maxCoeff(), 0.01);  // in delta units: 1e-4 SOH
}

}  // namespace
}  // namespace cyclecast::pipeline
