// Central finite differences against analytic gradients, in double precision.
//
// The error measure is the norm-wise relative error ||g_a - g_n|| / (||g_a|| + ||g_n||): unlike a
// per-element ratio it does not blow up on coordinates whose gradient is ~0, and it still fails
// when any sizeable coordinate is wrong. With h = 1e-6 in double the truncation error (O(h^2))
// and the rounding error (O(eps / h)) are both far below the 1e-5 bound.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <functional>
#include <vector>

#include "cyclecast/models/model.h"
#include "cyclecast/models/tensor.h"

namespace cyclecast::models::testing {

inline constexpr double kGradientTolerance = 1e-5;
inline constexpr double kFiniteDifferenceStep = 1e-6;

// A rows x cols matrix of values drawn uniformly from [lo, hi).
inline Matrix<double> random_matrix(int64_t rows, int64_t cols, Rng& rng, double lo = -1.0,
                                    double hi = 1.0) {
  Matrix<double> m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i)
    m.data()[i] = rng.uniform(lo, hi);
  return m;
}

// The model's seeded initial parameters, each moved by uniform noise in [-spread, spread] drawn
// from the same seed, so that no tensor is left at zero (init may zero one, e.g. the student's
// head, which would hide gradient errors behind it).
inline Eigen::VectorXd perturbed_init(const Model<double>& model, uint64_t seed,
                                      double spread = 0.3) {
  Rng rng(seed);
  Eigen::VectorXd p(model.layout().size());
  model.init(p.data(), seed);
  for (Eigen::Index i = 0; i < p.size(); ++i)
    p[i] += rng.uniform(-spread, spread);
  return p;
}

// d f / d x_i for the listed coordinates (all when `indices` is empty).
inline Eigen::VectorXd numeric_gradient(const std::function<double(const Eigen::VectorXd&)>& f,
                                        Eigen::VectorXd x,
                                        const std::vector<Eigen::Index>& indices = {}) {
  std::vector<Eigen::Index> all = indices;
  if (all.empty()) {
    for (Eigen::Index i = 0; i < x.size(); ++i)
      all.push_back(i);
  }
  Eigen::VectorXd g = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(all.size()));
  for (size_t k = 0; k < all.size(); ++k) {
    const Eigen::Index i = all[k];
    const double saved = x[i];
    x[i] = saved + kFiniteDifferenceStep;
    const double up = f(x);
    x[i] = saved - kFiniteDifferenceStep;
    const double down = f(x);
    x[i] = saved;
    g[static_cast<Eigen::Index>(k)] = (up - down) / (2 * kFiniteDifferenceStep);
  }
  return g;
}

inline double relative_error(const Eigen::VectorXd& analytic, const Eigen::VectorXd& numeric) {
  const double scale = analytic.norm() + numeric.norm();
  return scale == 0.0 ? 0.0 : (analytic - numeric).norm() / scale;
}

inline Eigen::VectorXd pick(const Eigen::VectorXd& v, const std::vector<Eigen::Index>& indices) {
  if (indices.empty()) return v;
  Eigen::VectorXd out(static_cast<Eigen::Index>(indices.size()));
  for (size_t k = 0; k < indices.size(); ++k)
    out[static_cast<Eigen::Index>(k)] = v[indices[k]];
  return out;
}

}  // namespace cyclecast::models::testing
