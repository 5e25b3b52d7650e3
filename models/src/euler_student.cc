#include "cyclecast/models/euler_student.h"

#include <utility>
#include <vector>

namespace cyclecast::models {

template <typename S>
struct EulerStudentModel<S>::Tape {
  std::vector<Matrix<S>> states;  // h_t, t = 0..T
  std::vector<Matrix<S>> gates;   // tanh(W h_t + U x_t + b)
};

template <typename S>
EulerStudentModel<S>::EulerStudentModel(EulerStudentConfig config)
    : ConfiguredModel<S, EulerStudentConfig>(config) {
  input_ = Dense::create(layout_, "student.input", config_.input_features, config_.width);
  alpha_offset_ = layout_.add("student.alpha", config_.width, 1);
  beta_offset_ = layout_.add("student.beta", config_.width, 1);
  recurrent_ =
      RecurrentMatrix::create(layout_, "student.recurrent", config_.width, config_.recurrent_rank);
  head_ = Dense::create(layout_, "head", config_.width, config_.horizon);
}

template <typename S>
void EulerStudentModel<S>::init(S* params, uint64_t seed) const {
  Rng rng(seed);
  input_.init(params, rng);
  // alpha * dt = 0.5 at the default step: each step keeps half of the state, so early inputs
  // still reach the head at initialization.
  for (int64_t i = 0; i < config_.width; ++i) {
    params[alpha_offset_ + i] = S(0.5);
    params[beta_offset_ + i] = S(1);
  }
  recurrent_.init(params, rng);
  head_.init(params, rng);
}

template <typename S>
void EulerStudentModel<S>::forward(const S* params, const Matrix<S>& x, Matrix<S>& y,
                                   Tape* tape) const {
  const int64_t f = config_.input_features;
  const S dt = S(config_.step_size);
  ConstVectorMap<S> alpha(params + alpha_offset_, config_.width);
  ConstVectorMap<S> beta(params + beta_offset_, config_.width);
  // All input projections at once: one (width x F) * (F x T*B) product instead of T small ones.
  const int64_t batch = x.cols();
  Matrix<S> steps(f, config_.input_len * batch);
  for (int64_t t = 0; t < config_.input_len; ++t) {
    steps.middleCols(t * batch, batch) = x.middleRows(t * f, f);
  }
  Matrix<S> drive;
  input_.forward(params, steps, drive);
  const Vector<S> keep = (S(1) - dt * alpha.array()).matrix();
  const Vector<S> gain = dt * beta;
  Matrix<S> h = Matrix<S>::Zero(config_.width, batch);
  Matrix<S> z;
  if (tape != nullptr) {
    tape->states.assign(1, h);
    tape->gates.clear();
  }
  for (int64_t t = 0; t < config_.input_len; ++t) {
    recurrent_.apply(params, h, z);
    z += drive.middleCols(t * batch, batch);
    z = z.array().tanh();
    h = (h.array().colwise() * keep.array() + z.array().colwise() * gain.array()).matrix();
    if (tape != nullptr) {
      tape->gates.push_back(z);
      tape->states.push_back(h);
    }
  }
  head_.forward(params, h, y);
}

template <typename S>
void EulerStudentModel<S>::predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const {
  forward(params, x, y, nullptr);
}

template <typename S>
S EulerStudentModel<S>::loss_and_gradient(const S* params, const Matrix<S>& x,
                                          const Matrix<S>& target, const LossSpec& loss,
                                          int64_t batch_total, uint64_t, S* grads) const {
  Tape tape;
  Matrix<S> y;
  forward(params, x, y, &tape);
  Matrix<S> dy;
  const S value = combined_loss(loss, y, target, batch_total, &dy);

  const int64_t f = config_.input_features;
  const int64_t batch = x.cols();
  const S dt = S(config_.step_size);
  ConstVectorMap<S> alpha(params + alpha_offset_, config_.width);
  ConstVectorMap<S> beta(params + beta_offset_, config_.width);
  VectorMap<S> dalpha(grads + alpha_offset_, config_.width);
  VectorMap<S> dbeta(grads + beta_offset_, config_.width);
  const Vector<S> keep = (S(1) - dt * alpha.array()).matrix();
  Matrix<S> g;
  head_.backward(params, grads, tape.states.back(), dy, &g);
  Matrix<S> ddrive(config_.width, config_.input_len * batch);
  for (int64_t t = config_.input_len; t-- > 0;) {
    const Matrix<S>& h = tape.states[static_cast<size_t>(t)];
    const Matrix<S>& s = tape.gates[static_cast<size_t>(t)];
    dalpha -= dt * (g.array() * h.array()).rowwise().sum().matrix();
    dbeta += dt * (g.array() * s.array()).rowwise().sum().matrix();
    Matrix<S> dz = (g.array().colwise() * (dt * beta).array()) * (S(1) - s.array().square());
    ddrive.middleCols(t * batch, batch) = dz;
    Matrix<S> dh = g.array().colwise() * keep.array();
    recurrent_.backward(params, grads, h, dz, dh);
    g = std::move(dh);
  }
  Matrix<S> steps(f, config_.input_len * batch);
  for (int64_t t = 0; t < config_.input_len; ++t) {
    steps.middleCols(t * batch, batch) = x.middleRows(t * f, f);
  }
  input_.backward(params, grads, steps, ddrive, static_cast<Matrix<S>*>(nullptr));
  return value;
}

template class EulerStudentModel<float>;
template class EulerStudentModel<double>;

}  // namespace cyclecast::models
