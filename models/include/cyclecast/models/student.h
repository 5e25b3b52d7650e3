// The forecasting student (architecture id 4 in model files, docs/models.md): an Euler-discretized
// liquid network beside a linear low-rank bypass.
//
//   z   = E x                        E: features x input_size, no bias       "encoder.weight"
//   h_0 = tanh(A z + a)              A: width x features, a: width            "lift.weight/bias"
//   h_{s+1} = h_s + dt (-alpha .* h_s + beta .* tanh(Wr h_s + b)),  s < steps,  dt = 1 / steps
//                                    alpha, beta, b: width, Wr: width x width "liquid.*"
//   y   = D z + G h_steps + c        D: horizon x features                    "bypass.weight"
//                                    G: horizon x width, c: horizon           "head.weight/bias"
//   with output_gain: y = g .* (D z + G h_steps + c), g the extra last input row (one per sample)
//
// Why a bypass: a ridge regression from the input window to the horizon is already a strong
// forecaster, and its rank-`features` factorization D E carries it with few parameters. The
// pipeline sets E and D from a closed-form ridge fit (set_bypass); G and c start at zero, so an
// untrained student *is* its bypass and training only has to learn the nonlinear correction.
//
// The same class serves the small deployed students (width 16, one step) and teacher-size
// instances (e.g. features 16, width 256, 6 steps). firmware/cc_student runs the int8 version.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>

#include "cyclecast/models/layers.h"
#include "cyclecast/models/model.h"
#include "cyclecast/result.h"

namespace cyclecast::models {

struct StudentConfig {
  int64_t input_size = 101;
  int64_t features = 8;
  int64_t width = 16;
  int64_t euler_steps = 1;
  int64_t horizon = 100;
  // The model takes one more input row than input_size, a per-sample gain g that E does not see,
  // and scales its whole output by it. The pipeline feeds the window's SOH amplitude there
  // (windows.h, representation v2): the network forecasts the curve's shape in amplitude units
  // and the gain turns it back into SOH units, which also weights each window's loss by its
  // amplitude. The int8 runtime computes the unscaled output; its caller multiplies by g.
  bool output_gain = false;
};

// kInvalidArgument unless every dimension is at least 1.
Result<void> check_student_config(const StudentConfig& config);

// Offsets of the student's tensors in its flat parameter vector (all matrices column-major).
struct StudentTensors {
  int64_t encoder = 0;      // E, features x input_size
  int64_t lift = 0;         // A, width x features
  int64_t lift_bias = 0;    // a, width
  int64_t alpha = 0;        // width
  int64_t beta = 0;         // width
  int64_t recurrent = 0;    // Wr, width x width
  int64_t liquid_bias = 0;  // b, width
  int64_t bypass = 0;       // D, horizon x features
  int64_t head = 0;         // G, horizon x width
  int64_t head_bias = 0;    // c, horizon
};

// Parameter count of a configuration without building the model:
//   F I + (W F + W) + 2 W + (W^2 + W) + H F + (H W + H).
int64_t student_parameter_count(const StudentConfig& config);

template <typename S>
class StudentModel : public ConfiguredModel<S, StudentConfig> {
 public:
  // The configuration must pass check_student_config (asserted).
  explicit StudentModel(StudentConfig config);

  const StudentTensors& tensors() const { return tensors_; }
  int64_t input_size() const override { return config_.input_size + (config_.output_gain ? 1 : 0); }

  // E and A, Wr (with their biases) uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) as nn.Linear; D the
  // same with fan_in = features; alpha = beta = 1; G and c zero.
  void init(S* params, uint64_t seed) const override;
  void predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const override;
  // No dropout: dropout_seed is unused.
  S loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                      const LossSpec& loss, int64_t batch_total, uint64_t dropout_seed,
                      S* grads) const override;

  // The final liquid state h_steps per sample (width x batch), for hidden-state matching.
  Matrix<S> hidden(const S* params, const Matrix<S>& x) const;

  // Writes E (features x input_size) and D (horizon x features), e.g. from a ridge fit.
  template <typename DerivedE, typename DerivedD>
  Result<void> set_bypass(S* params, const Eigen::MatrixBase<DerivedE>& encoder,
                          const Eigen::MatrixBase<DerivedD>& bypass) const {
    if (encoder.rows() != config_.features || encoder.cols() != config_.input_size ||
        bypass.rows() != config_.horizon || bypass.cols() != config_.features) {
      return bypass_shape_error(encoder.rows(), encoder.cols(), bypass.rows(), bypass.cols());
    }
    MatrixMap<S>(params + tensors_.encoder, config_.features, config_.input_size) =
        encoder.template cast<S>();
    MatrixMap<S>(params + tensors_.bypass, config_.horizon, config_.features) =
        bypass.template cast<S>();
    return {};
  }

 private:
  struct Tape;
  void forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Tape& tape) const;
  Error bypass_shape_error(int64_t e_rows, int64_t e_cols, int64_t d_rows, int64_t d_cols) const;

  using ConfiguredModel<S, StudentConfig>::config_;
  using ConfiguredModel<S, StudentConfig>::layout_;
  StudentTensors tensors_;
  Dense lift_;
  Dense liquid_;
  Dense head_;
};

extern template class StudentModel<float>;
extern template class StudentModel<double>;

}  // namespace cyclecast::models
