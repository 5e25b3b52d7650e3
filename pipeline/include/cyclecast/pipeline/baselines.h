// The baselines every evaluation reports next to the models (docs/pipeline.md, "Baselines"):
// what a spreadsheet would do (last value, a line through the last 10 values, a quadratic
// through the last 50) and a linear autoregressive model (ridge regression from the window's
// linear design, linear_inputs(), to the model output vector, closed form, fitted on the training
// windows). The ridge never sees the representation-2 input vector: a linear map of the
// amplitude-normalized shape is not a linear model of the window.
#pragma once

#include <Eigen/Core>
#include <cstdint>

#include "cyclecast/models/tensor.h"
#include "cyclecast/pipeline/windows.h"
#include "cyclecast/result.h"

namespace cyclecast::pipeline {

// Each takes absolute input SOH (W x n) and returns absolute forecasts (horizon x n).
Eigen::MatrixXd forecast_last_value(const Eigen::MatrixXd& input_soh, int64_t horizon);
// Least-squares polynomial of `degree` through the last `fit_len` inputs, extended over the
// horizon (fit_len is clamped to W). Degree 1 with 10 points and degree 2 with 50 are the
// standard baselines.
Eigen::MatrixXd forecast_polynomial(const Eigen::MatrixXd& input_soh, int64_t horizon,
                                    int64_t fit_len, int degree);

// y = weights * x + bias, from the inputs it was fitted on to normalized outputs.
struct RidgeModel {
  Eigen::MatrixXd weights;  // H x the number of input rows it was fitted on
  Eigen::VectorXd bias;     // H
  double lambda = 0.0;

  // Normalized outputs (H x n) for inputs of the kind it was fitted on (rows x n).
  Eigen::MatrixXd predict(const models::Matrix<float>& inputs) const;
  // Normalized outputs (H x n) for windows, from their linear design: for a model fitted by
  // fit_ridge(const Windows&, const FeatureSpec&, double) with the same spec.
  Eigen::MatrixXd predict(const Windows& windows, const FeatureSpec& spec) const;
};

// Minimizes the sum over windows of |W x + b - y|^2, plus lambda |W|^2 (bias not penalized),
// in closed form from the centred normal equations (Xc Xc^T + lambda I) W^T = Xc Yc^T. lambda is
// not divided by the number of windows: on the paper protocol (~37k windows) 1e-3 is light
// regularisation (test MAE 0.0008 there). kInvalidArgument when there are no windows, lambda < 0,
// or the system is singular (lambda 0 with constant inputs or too few windows).
// Fitted on linear_inputs(train, spec), the linear autoregressive baseline.
Result<RidgeModel> fit_ridge(const Windows& train, const FeatureSpec& spec, double lambda);
// The same from matrices: inputs (rows x n) to targets (H x n), in whatever space the inputs are
// (the training pipeline initializes models from a fit on representation-2 inputs).
Result<RidgeModel> fit_ridge(const models::Matrix<float>& inputs,
                             const models::Matrix<float>& targets, double lambda);

}  // namespace cyclecast::pipeline
