// Losses on batches (horizon x batch), each with a weight, and their gradients.
//
// Every loss is a mean over samples of a per-sample loss, but divided by `batch_total` rather
// than by the number of columns passed in: the parallel trainer evaluates a mini-batch in shards
// and sums the shard losses, which then equals the loss of the whole batch.
// Gradients are *added* to `dpred` (sized like `pred`), so weighted losses compose.
#pragma once

#include <algorithm>
#include <cmath>

#include "cyclecast/models/tensor.h"

namespace cyclecast::models {

// Mean over the horizon of (pred - target)^2, averaged over samples.
template <typename S>
S mse_loss(const Matrix<S>& pred, const Matrix<S>& target, double weight, int64_t batch_total,
           Matrix<S>* dpred) {
  const S scale = S(weight / (static_cast<double>(batch_total) * static_cast<double>(pred.rows())));
  const auto diff = (pred - target).array();
  if (dpred != nullptr) dpred->array() += (S(2) * scale) * diff;
  return scale * diff.square().sum();
}

// Mean over the horizon of |pred - target|, averaged over samples. The subgradient at 0 is 0.
template <typename S>
S mae_loss(const Matrix<S>& pred, const Matrix<S>& target, double weight, int64_t batch_total,
           Matrix<S>* dpred) {
  const S scale = S(weight / (static_cast<double>(batch_total) * static_cast<double>(pred.rows())));
  const auto diff = (pred - target).array();
  if (dpred != nullptr) dpred->array() += scale * diff.sign();
  return scale * diff.abs().sum();
}

// 1 - cos(pred_b, target_b) per sample (the cosine-embedding loss for a pair meant to match),
// averaged over samples. Norms are floored at 1e-12 so a zero vector gives a finite loss.
// Only pred receives a gradient: the target is data or a frozen teacher.
template <typename S>
S cosine_loss(const Matrix<S>& pred, const Matrix<S>& target, double weight, int64_t batch_total,
              Matrix<S>* dpred) {
  const S scale = S(weight / static_cast<double>(batch_total));
  S total = S(0);
  for (int64_t b = 0; b < pred.cols(); ++b) {
    const auto p = pred.col(b);
    const auto t = target.col(b);
    const S pn = std::max(p.norm(), S(1e-12));
    const S tn = std::max(t.norm(), S(1e-12));
    const S cos = p.dot(t) / (pn * tn);
    total += S(1) - cos;
    if (dpred != nullptr) {
      // d cos / dp = t / (|p||t|) - cos * p / |p|^2
      dpred->col(b) -= scale * (t / (pn * tn) - (cos / (pn * pn)) * p);
    }
  }
  return scale * total;
}

// A weighted sum of the three losses; weights of 0 skip a term.
struct LossSpec {
  double mse_weight = 1.0;
  double mae_weight = 0.0;
  double cosine_weight = 0.0;
};

// Loss of `pred` against `target`; when dpred is given it is resized and set to the gradient.
template <typename S>
S combined_loss(const LossSpec& spec, const Matrix<S>& pred, const Matrix<S>& target,
                int64_t batch_total, Matrix<S>* dpred) {
  if (dpred != nullptr) dpred->setZero(pred.rows(), pred.cols());
  S loss = S(0);
  if (spec.mse_weight != 0.0) loss += mse_loss(pred, target, spec.mse_weight, batch_total, dpred);
  if (spec.mae_weight != 0.0) loss += mae_loss(pred, target, spec.mae_weight, batch_total, dpred);
  if (spec.cosine_weight != 0.0) {
    loss += cosine_loss(pred, target, spec.cosine_weight, batch_total, dpred);
  }
  return loss;
}

}  // namespace cyclecast::models
