// The StudentModel as the pipeline's later training stages (distillation, fine-tuning around an
// int8 encoder) train it: the same network, predictions and parameters, with two changes to the
// training pass only.
//
// - Input jitter. Every input row but the last (the gain, with StudentConfig::output_gain)
//   gets uniform noise in [-jitter, jitter], redrawn at every step from the step's dropout seed.
//   The int8 runtime rounds its inputs to int16; without the noise a student trained on smoothed
//   SOH series learns differences between neighbouring cycles finer than that rounding, which
//   int8 then turns into error (the wider test windows moved by 15 % of the float MAE).
// - A frozen encoder. With freeze_encoder, E's gradient is dropped, so that training adapts the
//   rest of the network to an encoder already rounded to int8 (pipeline/train.cc, quantize()).
#pragma once

#include <cstdint>

#include "cyclecast/models/student.h"

namespace cyclecast::models {

template <typename S>
class TuningStudent final : public StudentModel<S> {
 public:
  // jitter >= 0, in the units of the (scaled) inputs.
  TuningStudent(const StudentConfig& config, double jitter, bool freeze_encoder)
      : StudentModel<S>(config), jitter_(jitter), freeze_encoder_(freeze_encoder) {}

  double jitter() const { return jitter_; }
  bool freeze_encoder() const { return freeze_encoder_; }

  // StudentModel's loss and gradient at the jittered inputs (the noise is drawn from
  // dropout_seed, so both passes of a distillation step see the same inputs); with
  // freeze_encoder nothing is added to E's slice of grads.
  S loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                      const LossSpec& loss, int64_t batch_total, uint64_t dropout_seed,
                      S* grads) const override;

 private:
  double jitter_;
  bool freeze_encoder_;
};

extern template class TuningStudent<float>;
extern template class TuningStudent<double>;

}  // namespace cyclecast::models
