// Building blocks with explicit forward and backward passes on batches (features x batch).
//
// Conventions shared by every block:
// - Parameters live in a flat vector (tensor.h); a block holds only offsets into it. `params` is
//   that vector's data, `grads` a vector of the same layout that backward *accumulates* into
//   (callers zero it once per step), so blocks used several times (time steps) just add up.
// - backward takes what forward kept (inputs, outputs or a cache) and dL/d(output), and returns
//   dL/d(input) in `dx` (overwritten).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "cyclecast/models/tensor.h"

namespace cyclecast::models {

// y = W x + b with W (out x in) and b (out). Initialized uniform(-1/sqrt(in), 1/sqrt(in)) for
// both, the PyTorch nn.Linear default, so the two implementations start from the same
// distribution.
struct Dense {
  int64_t in = 0;
  int64_t out = 0;
  int64_t w_offset = 0;
  int64_t b_offset = 0;

  static Dense create(ParameterLayout& layout, const std::string& name, int64_t in_features,
                      int64_t out_features) {
    Dense d;
    d.in = in_features;
    d.out = out_features;
    d.w_offset = layout.add(name + ".weight", out_features, in_features);
    d.b_offset = layout.add(name + ".bias", out_features, 1);
    return d;
  }

  template <typename S>
  void init(S* params, Rng& rng) const {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    for (int64_t i = 0; i < in * out; ++i)
      params[w_offset + i] = S(rng.uniform(-bound, bound));
    for (int64_t i = 0; i < out; ++i)
      params[b_offset + i] = S(rng.uniform(-bound, bound));
  }

  template <typename S>
  void forward(const S* params, const Matrix<S>& x, Matrix<S>& y) const {
    ConstMatrixMap<S> w(params + w_offset, out, in);
    ConstVectorMap<S> b(params + b_offset, out);
    y.resize(out, x.cols());
    y.noalias() = w * x;
    y.colwise() += b;
  }

  // dx may be null when the input needs no gradient (first layer on data).
  template <typename S>
  void backward(const S* params, S* grads, const Matrix<S>& x, const Matrix<S>& dy,
                Matrix<S>* dx) const {
    MatrixMap<S> dw(grads + w_offset, out, in);
    VectorMap<S> db(grads + b_offset, out);
    dw.noalias() += dy * x.transpose();
    db += dy.rowwise().sum();
    if (dx != nullptr) {
      ConstMatrixMap<S> w(params + w_offset, out, in);
      dx->resize(in, dy.cols());
      dx->noalias() = w.transpose() * dy;
    }
  }
};

// Per-sample normalization over the feature axis with learned gain and shift (gamma, beta; both
// counted as parameters). eps = 1e-5 as in torch.nn.LayerNorm.
struct LayerNorm {
  int64_t dim = 0;
  int64_t gamma_offset = 0;
  int64_t beta_offset = 0;
  double eps = 1e-5;

  template <typename S>
  struct Cache {
    Matrix<S> xhat;        // normalized input, dim x batch
    RowVector<S> inv_std;  // 1 / sqrt(var + eps) per sample
  };

  static LayerNorm create(ParameterLayout& layout, const std::string& name, int64_t features) {
    LayerNorm n;
    n.dim = features;
    n.gamma_offset = layout.add(name + ".weight", features, 1);
    n.beta_offset = layout.add(name + ".bias", features, 1);
    return n;
  }

  template <typename S>
  void init(S* params) const {
    for (int64_t i = 0; i < dim; ++i) {
      params[gamma_offset + i] = S(1);
      params[beta_offset + i] = S(0);
    }
  }

  template <typename S>
  void forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Cache<S>& cache) const {
    const S inv_n = S(1) / S(dim);
    RowVector<S> mean = x.colwise().sum() * inv_n;
    cache.xhat = x.rowwise() - mean;
    RowVector<S> var = cache.xhat.array().square().colwise().sum().matrix() * inv_n;
    cache.inv_std = (var.array() + S(eps)).rsqrt().matrix();
    cache.xhat.array().rowwise() *= cache.inv_std.array();
    ConstVectorMap<S> gamma(params + gamma_offset, dim);
    ConstVectorMap<S> beta(params + beta_offset, dim);
    y = (cache.xhat.array().colwise() * gamma.array()).colwise() + beta.array();
  }

  template <typename S>
  void backward(const S* params, S* grads, const Cache<S>& cache, const Matrix<S>& dy,
                Matrix<S>& dx) const {
    ConstVectorMap<S> gamma(params + gamma_offset, dim);
    VectorMap<S> dgamma(grads + gamma_offset, dim);
    VectorMap<S> dbeta(grads + beta_offset, dim);
    dgamma += (dy.array() * cache.xhat.array()).rowwise().sum().matrix();
    dbeta += dy.rowwise().sum();
    Matrix<S> dxhat = dy.array().colwise() * gamma.array();
    const S inv_n = S(1) / S(dim);
    RowVector<S> sum_dxhat = dxhat.colwise().sum();
    RowVector<S> sum_dxhat_xhat = (dxhat.array() * cache.xhat.array()).colwise().sum().matrix();
    // dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), per sample.
    dx = std::move(dxhat);
    dx.array().rowwise() -= sum_dxhat.array() * inv_n;
    dx.array() -= cache.xhat.array().rowwise() * (sum_dxhat_xhat.array() * inv_n);
    dx.array().rowwise() *= cache.inv_std.array();
  }
};

// Element-wise activations. Backward of relu, tanh and sigmoid is written from the *output* (all
// forward keeps); softplus needs the input.
template <typename S>
void relu_forward(const Matrix<S>& x, Matrix<S>& y) {
  y = x.cwiseMax(S(0));
}
template <typename S>
void relu_backward(const Matrix<S>& y, const Matrix<S>& dy, Matrix<S>& dx) {
  dx = (y.array() > S(0)).select(dy, S(0));
}

template <typename S>
void tanh_forward(const Matrix<S>& x, Matrix<S>& y) {
  y = x.array().tanh();
}
template <typename S>
void tanh_backward(const Matrix<S>& y, const Matrix<S>& dy, Matrix<S>& dx) {
  dx = dy.array() * (S(1) - y.array().square());
}

template <typename S>
void sigmoid_forward(const Matrix<S>& x, Matrix<S>& y) {
  y = x.array().logistic();
}
template <typename S>
void sigmoid_backward(const Matrix<S>& y, const Matrix<S>& dy, Matrix<S>& dx) {
  dx = dy.array() * y.array() * (S(1) - y.array());
}

// softplus(x) = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|) so large |x| neither
// overflows nor loses the small tail.
template <typename S>
S softplus(S x) {
  return std::max(x, S(0)) + std::log1p(std::exp(-std::abs(x)));
}
template <typename S>
S sigmoid(S x) {
  return S(1) / (S(1) + std::exp(-x));
}
template <typename S>
void softplus_forward(const Matrix<S>& x, Matrix<S>& y) {
  y = x.cwiseMax(S(0)).array() + (-x.array().abs()).exp().log1p();
}
template <typename S>
void softplus_backward(const Matrix<S>& x, const Matrix<S>& dy, Matrix<S>& dx) {
  dx = dy.array() * x.array().logistic();
}

// Inverted dropout: in training each element is kept with probability 1 - rate and scaled by
// 1 / (1 - rate), so inference (mask absent) is the identity. The mask is drawn from the given
// generator: the same seed gives the same mask, which gradient checks and the thread-count
// independent trainer rely on.
template <typename S>
struct Dropout {
  Matrix<S> mask;  // empty when inactive
  bool active() const { return mask.size() != 0; }

  void draw(int64_t rows, int64_t cols, double rate, Rng& rng) {
    if (rate <= 0.0) {
      mask.resize(0, 0);
      return;
    }
    const S keep_scale = S(1.0 / (1.0 - rate));
    mask.resize(rows, cols);
    for (int64_t i = 0; i < mask.size(); ++i) {
      mask.data()[i] = rng.uniform() < rate ? S(0) : keep_scale;
    }
  }
  void forward(Matrix<S>& x) const {
    if (active()) x.array() *= mask.array();
  }
  void backward(Matrix<S>& dy) const {
    if (active()) dy.array() *= mask.array();
  }
};

}  // namespace cyclecast::models
