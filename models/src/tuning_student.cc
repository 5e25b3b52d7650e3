#include "cyclecast/models/tuning_student.h"

#include <algorithm>
#include <vector>

namespace cyclecast::models {

template <typename S>
S TuningStudent<S>::loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                                      const LossSpec& loss, int64_t batch_total,
                                      uint64_t dropout_seed, S* grads) const {
  Matrix<S> jittered = x;
  Rng rng(dropout_seed);
  for (Eigen::Index c = 0; c < x.cols(); ++c) {
    for (Eigen::Index r = 0; r + 1 < x.rows(); ++r) {
      jittered(r, c) += static_cast<S>(rng.uniform(-jitter_, jitter_));
    }
  }
  // Gradients are added to `grads`: a frozen E's slice is put back as it was.
  S* encoder = grads + this->tensors().encoder;
  const int64_t encoder_size = this->config().features * this->config().input_size;
  std::vector<S> kept;
  if (freeze_encoder_) kept.assign(encoder, encoder + encoder_size);
  const S value = StudentModel<S>::loss_and_gradient(params, jittered, target, loss, batch_total,
                                                     dropout_seed, grads);
  if (freeze_encoder_) std::copy(kept.begin(), kept.end(), encoder);
  return value;
}

template class TuningStudent<float>;
template class TuningStudent<double>;

}  // namespace cyclecast::models
