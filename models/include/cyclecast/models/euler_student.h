// Recurrent Euler student: the liquid dynamics of dlnet.h driven by the input sequence, one
// explicit Euler step per input step, and a forecast head on the final state.
//
//   h_0 = 0
//   h_{t+1} = h_t + dt * (-alpha * h_t + beta * tanh(W h_t + U x_t + b))
//   y = head(h_T)                       head: dense, width -> horizon
//
// W is dense or diagonal + rank r (recurrent_matrix.h); U is width x input_features. Any width:
// these are the small models distilled from a teacher and run on the Nano.
#pragma once

#include <cstdint>

#include "cyclecast/models/layers.h"
#include "cyclecast/models/model.h"
#include "cyclecast/models/recurrent_matrix.h"

namespace cyclecast::models {

struct EulerStudentConfig {
  int64_t input_len = 100;
  int64_t input_features = 1;
  int64_t width = 16;
  int64_t recurrent_rank = 0;  // 0: dense W
  int64_t horizon = 100;
  double step_size = 1.0;  // dt of one Euler step per input step
};

template <typename S>
class EulerStudentModel final : public ConfiguredModel<S, EulerStudentConfig> {
 public:
  explicit EulerStudentModel(EulerStudentConfig config);

  int64_t input_size() const override { return config_.input_len * config_.input_features; }
  void init(S* params, uint64_t seed) const override;
  void predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const override;
  S loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                      const LossSpec& loss, int64_t batch_total, uint64_t dropout_seed,
                      S* grads) const override;

 private:
  struct Tape;
  void forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Tape* tape) const;

  using ConfiguredModel<S, EulerStudentConfig>::config_;
  using ConfiguredModel<S, EulerStudentConfig>::layout_;
  Dense input_;  // U x_t + b
  int64_t alpha_offset_ = 0;
  int64_t beta_offset_ = 0;
  RecurrentMatrix recurrent_;
  Dense head_;
};

extern template class EulerStudentModel<float>;
extern template class EulerStudentModel<double>;

}  // namespace cyclecast::models
