// The square recurrent matrix of the liquid models, dense or diagonal plus low rank.
//
// rank == 0: W is a full n x n matrix (n^2 parameters).
// rank == r > 0: W = diag(d) + U V^T with U, V of n x r (n + 2 n r parameters), so that a wide
// student can keep a cheap recurrence; W h = d * h + U (V^T h) costs O(n r) per sample.
#pragma once

#include <cmath>
#include <string>

#include "cyclecast/models/tensor.h"

namespace cyclecast::models {

struct RecurrentMatrix {
  int64_t n = 0;
  int64_t rank = 0;
  int64_t w_offset = 0;  // rank == 0
  int64_t d_offset = 0;  // rank > 0
  int64_t u_offset = 0;
  int64_t v_offset = 0;

  static RecurrentMatrix create(ParameterLayout& layout, const std::string& name, int64_t size,
                                int64_t low_rank) {
    RecurrentMatrix m;
    m.n = size;
    m.rank = low_rank;
    if (low_rank == 0) {
      m.w_offset = layout.add(name + ".weight", size, size);
    } else {
      m.d_offset = layout.add(name + ".diag", size, 1);
      m.u_offset = layout.add(name + ".u", size, low_rank);
      m.v_offset = layout.add(name + ".v", size, low_rank);
    }
    return m;
  }

  // Uniform(-1/sqrt(n), 1/sqrt(n)) for every entry; for the low-rank factors the bound is
  // chosen so that U V^T has entries of the same scale as the dense case.
  template <typename S>
  void init(S* params, Rng& rng) const {
    const double bound = 1.0 / std::sqrt(static_cast<double>(n));
    if (rank == 0) {
      for (int64_t i = 0; i < n * n; ++i)
        params[w_offset + i] = S(rng.uniform(-bound, bound));
      return;
    }
    const double factor_bound = std::sqrt(bound * std::sqrt(3.0 / static_cast<double>(rank)));
    for (int64_t i = 0; i < n; ++i)
      params[d_offset + i] = S(rng.uniform(-bound, bound));
    for (int64_t i = 0; i < n * rank; ++i) {
      params[u_offset + i] = S(rng.uniform(-factor_bound, factor_bound));
    }
    for (int64_t i = 0; i < n * rank; ++i) {
      params[v_offset + i] = S(rng.uniform(-factor_bound, factor_bound));
    }
  }

  // z = W h.
  template <typename S>
  void apply(const S* params, const Matrix<S>& h, Matrix<S>& z) const {
    z.resize(n, h.cols());
    if (rank == 0) {
      z.noalias() = ConstMatrixMap<S>(params + w_offset, n, n) * h;
      return;
    }
    ConstVectorMap<S> d(params + d_offset, n);
    ConstMatrixMap<S> u(params + u_offset, n, rank);
    ConstMatrixMap<S> v(params + v_offset, n, rank);
    Matrix<S> vh = v.transpose() * h;
    z.noalias() = u * vh;
    z.array() += h.array().colwise() * d.array();
  }

  // Given dz = dL/dz for z = W h: adds dL/dW to grads and dL/dh to dh (sized like h).
  template <typename S>
  void backward(const S* params, S* grads, const Matrix<S>& h, const Matrix<S>& dz,
                Matrix<S>& dh) const {
    if (rank == 0) {
      ConstMatrixMap<S> w(params + w_offset, n, n);
      MatrixMap<S>(grads + w_offset, n, n).noalias() += dz * h.transpose();
      dh.noalias() += w.transpose() * dz;
      return;
    }
    ConstVectorMap<S> d(params + d_offset, n);
    ConstMatrixMap<S> u(params + u_offset, n, rank);
    ConstMatrixMap<S> v(params + v_offset, n, rank);
    VectorMap<S>(grads + d_offset, n) += (dz.array() * h.array()).rowwise().sum().matrix();
    Matrix<S> vh = v.transpose() * h;     // rank x batch
    Matrix<S> utdz = u.transpose() * dz;  // rank x batch
    MatrixMap<S>(grads + u_offset, n, rank).noalias() += dz * vh.transpose();
    MatrixMap<S>(grads + v_offset, n, rank).noalias() += h * utdz.transpose();
    dh.noalias() += v * utdz;
    dh.array() += dz.array().colwise() * d.array();
  }
};

}  // namespace cyclecast::models
