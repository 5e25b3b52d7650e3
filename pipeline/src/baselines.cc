#include "cyclecast/pipeline/baselines.h"

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <algorithm>

namespace cyclecast::pipeline {

Eigen::MatrixXd forecast_last_value(const Eigen::MatrixXd& input_soh, int64_t horizon) {
  Eigen::MatrixXd out(horizon, input_soh.cols());
  for (Eigen::Index i = 0; i < input_soh.cols(); ++i) {
    out.col(i).setConstant(input_soh(input_soh.rows() - 1, i));
  }
  return out;
}

Eigen::MatrixXd forecast_polynomial(const Eigen::MatrixXd& input_soh, int64_t horizon,
                                    int64_t fit_len, int degree) {
  const Eigen::Index w = input_soh.rows();
  const Eigen::Index m = std::clamp<Eigen::Index>(fit_len, 1, w);
  const Eigen::Index terms = std::min<Eigen::Index>(degree + 1, m);
  // Positions relative to the last input (0) keep the design well conditioned: the last input
  // is at x = 0, the first forecast at x = 1.
  Eigen::MatrixXd design(m, terms);
  Eigen::MatrixXd ahead(horizon, terms);
  for (Eigen::Index r = 0; r < m; ++r) {
    const double x = static_cast<double>(r - (m - 1));
    for (Eigen::Index k = 0; k < terms; ++k)
      design(r, k) = std::pow(x, static_cast<double>(k));
  }
  for (Eigen::Index j = 0; j < horizon; ++j) {
    for (Eigen::Index k = 0; k < terms; ++k) {
      ahead(j, k) = std::pow(static_cast<double>(j + 1), static_cast<double>(k));
    }
  }
  // One factorization serves every window: the design is the same for all of them.
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(design);
  const Eigen::MatrixXd coefficients = qr.solve(input_soh.bottomRows(m));
  return ahead * coefficients;
}

Eigen::MatrixXd RidgeModel::predict(const models::Matrix<float>& inputs) const {
  Eigen::MatrixXd out = weights * inputs.cast<double>();
  out.colwise() += bias;
  return out;
}

Eigen::MatrixXd RidgeModel::predict(const Windows& windows, const FeatureSpec& spec) const {
  return predict(linear_inputs(windows, spec));
}

Result<RidgeModel> fit_ridge(const Windows& train, const FeatureSpec& spec, double lambda) {
  if (train.size() == 0) {
    return make_error(ErrorCode::kInvalidArgument, "ridge regression needs training windows");
  }
  return fit_ridge(linear_inputs(train, spec), train.targets, lambda);
}

Result<RidgeModel> fit_ridge(const models::Matrix<float>& inputs,
                             const models::Matrix<float>& targets, double lambda) {
  if (inputs.cols() == 0 || inputs.cols() != targets.cols()) {
    return make_error(ErrorCode::kInvalidArgument, "ridge regression needs training windows");
  }
  if (!(lambda >= 0.0)) {
    return make_error(ErrorCode::kInvalidArgument, "ridge lambda must be >= 0");
  }
  const Eigen::MatrixXd x = inputs.cast<double>();
  const Eigen::MatrixXd y = targets.cast<double>();
  const Eigen::VectorXd x_mean = x.rowwise().mean();
  const Eigen::VectorXd y_mean = y.rowwise().mean();
  const Eigen::MatrixXd xc = x.colwise() - x_mean;
  const Eigen::MatrixXd yc = y.colwise() - y_mean;
  // Normal equations of the summed loss: (Xc Xc^T + lambda I) W^T = Xc Yc^T.
  Eigen::MatrixXd gram = xc * xc.transpose();
  gram.diagonal().array() += lambda;
  const Eigen::LDLT<Eigen::MatrixXd> ldlt(gram);
  if (ldlt.info() != Eigen::Success || !ldlt.isPositive() || ldlt.vectorD().minCoeff() <= 0.0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "ridge normal equations are singular: use lambda > 0 or more windows");
  }
  RidgeModel model;
  model.lambda = lambda;
  model.weights = ldlt.solve(xc * yc.transpose()).transpose();
  model.bias = y_mean - model.weights * x_mean;
  return model;
}

}  // namespace cyclecast::pipeline
