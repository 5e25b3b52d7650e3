#include "cyclecast/models/student.h"

#include <cassert>
#include <cmath>
#include <utility>
#include <vector>

namespace cyclecast::models {

Result<void> check_student_config(const StudentConfig& c) {
  if (c.input_size < 1 || c.features < 1 || c.width < 1 || c.euler_steps < 1 || c.horizon < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "A student needs input_size, features, width, euler_steps and horizon of at "
                      "least 1 (got " +
                          std::to_string(c.input_size) + ", " + std::to_string(c.features) + ", " +
                          std::to_string(c.width) + ", " + std::to_string(c.euler_steps) + ", " +
                          std::to_string(c.horizon) + ").");
  }
  return {};
}

int64_t student_parameter_count(const StudentConfig& c) {
  const int64_t f = c.features;
  const int64_t w = c.width;
  const int64_t h = c.horizon;
  return f * c.input_size + (w * f + w) + 2 * w + (w * w + w) + h * f + (h * w + h);
}

template <typename S>
struct StudentModel<S>::Tape {
  Matrix<S> z;                    // E x
  std::vector<Matrix<S>> states;  // h_s, s = 0..steps
  std::vector<Matrix<S>> gates;   // tanh(Wr h_s + b), s < steps
};

template <typename S>
StudentModel<S>::StudentModel(StudentConfig config) : ConfiguredModel<S, StudentConfig>(config) {
  assert(check_student_config(config_).ok());
  tensors_.encoder = layout_.add("encoder.weight", config_.features, config_.input_size);
  lift_ = Dense::create(layout_, "lift", config_.features, config_.width);
  tensors_.lift = lift_.w_offset;
  tensors_.lift_bias = lift_.b_offset;
  tensors_.alpha = layout_.add("liquid.alpha", config_.width, 1);
  tensors_.beta = layout_.add("liquid.beta", config_.width, 1);
  liquid_ = Dense::create(layout_, "liquid", config_.width, config_.width);
  tensors_.recurrent = liquid_.w_offset;
  tensors_.liquid_bias = liquid_.b_offset;
  tensors_.bypass = layout_.add("bypass.weight", config_.horizon, config_.features);
  head_ = Dense::create(layout_, "head", config_.width, config_.horizon);
  tensors_.head = head_.w_offset;
  tensors_.head_bias = head_.b_offset;
}

template <typename S>
void StudentModel<S>::init(S* params, uint64_t seed) const {
  Rng rng(seed);
  const auto fill = [&](int64_t offset, int64_t count, int64_t fan_in) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (int64_t i = 0; i < count; ++i)
      params[offset + i] = S(rng.uniform(-bound, bound));
  };
  fill(tensors_.encoder, config_.features * config_.input_size, config_.input_size);
  lift_.init(params, rng);
  for (int64_t i = 0; i < config_.width; ++i) {
    params[tensors_.alpha + i] = S(1);
    params[tensors_.beta + i] = S(1);
  }
  liquid_.init(params, rng);
  fill(tensors_.bypass, config_.horizon * config_.features, config_.features);
  // A zero head makes the untrained student exactly its bypass D E x.
  for (int64_t i = 0; i < config_.horizon * (config_.width + 1); ++i)
    params[tensors_.head + i] = S(0);
}

template <typename S>
void StudentModel<S>::forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Tape& tape) const {
  ConstMatrixMap<S> encoder(params + tensors_.encoder, config_.features, config_.input_size);
  ConstMatrixMap<S> bypass(params + tensors_.bypass, config_.horizon, config_.features);
  ConstVectorMap<S> alpha(params + tensors_.alpha, config_.width);
  ConstVectorMap<S> beta(params + tensors_.beta, config_.width);
  const S dt = S(1) / S(config_.euler_steps);
  const Vector<S> keep = (S(1) - dt * alpha.array()).matrix();
  const Vector<S> gain = dt * beta;

  tape.z.resize(config_.features, x.cols());
  tape.z.noalias() = encoder * x.topRows(config_.input_size);
  Matrix<S> h;
  lift_.forward(params, tape.z, h);
  h = h.array().tanh();
  tape.states.assign(1, h);
  tape.gates.clear();
  Matrix<S> gate;
  for (int64_t s = 0; s < config_.euler_steps; ++s) {
    liquid_.forward(params, h, gate);
    gate = gate.array().tanh();
    h = (h.array().colwise() * keep.array() + gate.array().colwise() * gain.array()).matrix();
    tape.gates.push_back(gate);
    tape.states.push_back(h);
  }
  head_.forward(params, h, y);
  y.noalias() += bypass * tape.z;
  if (config_.output_gain) y.array().rowwise() *= x.row(config_.input_size).array();
}

template <typename S>
void StudentModel<S>::predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const {
  Tape tape;
  forward(params, x, y, tape);
}

template <typename S>
Matrix<S> StudentModel<S>::hidden(const S* params, const Matrix<S>& x) const {
  Tape tape;
  Matrix<S> y;
  forward(params, x, y, tape);
  return std::move(tape.states.back());
}

template <typename S>
S StudentModel<S>::loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                                     const LossSpec& loss, int64_t batch_total, uint64_t,
                                     S* grads) const {
  Tape tape;
  Matrix<S> y;
  forward(params, x, y, tape);
  Matrix<S> dy;
  const S value = combined_loss(loss, y, target, batch_total, &dy);
  if (config_.output_gain) dy.array().rowwise() *= x.row(config_.input_size).array();

  ConstMatrixMap<S> bypass(params + tensors_.bypass, config_.horizon, config_.features);
  MatrixMap<S> dencoder(grads + tensors_.encoder, config_.features, config_.input_size);
  MatrixMap<S> dbypass(grads + tensors_.bypass, config_.horizon, config_.features);
  ConstVectorMap<S> alpha(params + tensors_.alpha, config_.width);
  ConstVectorMap<S> beta(params + tensors_.beta, config_.width);
  VectorMap<S> dalpha(grads + tensors_.alpha, config_.width);
  VectorMap<S> dbeta(grads + tensors_.beta, config_.width);
  const S dt = S(1) / S(config_.euler_steps);
  const Vector<S> keep = (S(1) - dt * alpha.array()).matrix();
  const Vector<S> gain = dt * beta;

  dbypass.noalias() += dy * tape.z.transpose();
  Matrix<S> dz = bypass.transpose() * dy;
  Matrix<S> g;  // dL/dh_s, walking back from s = steps
  head_.backward(params, grads, tape.states.back(), dy, &g);
  Matrix<S> dh;
  for (int64_t s = config_.euler_steps; s-- > 0;) {
    const Matrix<S>& h = tape.states[static_cast<size_t>(s)];
    const Matrix<S>& gate = tape.gates[static_cast<size_t>(s)];
    dalpha -= dt * (g.array() * h.array()).rowwise().sum().matrix();
    dbeta += dt * (g.array() * gate.array()).rowwise().sum().matrix();
    const Matrix<S> dpre = (g.array().colwise() * gain.array()) * (S(1) - gate.array().square());
    liquid_.backward(params, grads, h, dpre, &dh);
    dh.array() += g.array().colwise() * keep.array();
    g = std::move(dh);
  }
  Matrix<S> dlift;
  tanh_backward(tape.states.front(), g, dlift);
  Matrix<S> dz_lift;
  lift_.backward(params, grads, tape.z, dlift, &dz_lift);
  dz += dz_lift;
  dencoder.noalias() += dz * x.topRows(config_.input_size).transpose();
  return value;
}

template <typename S>
Error StudentModel<S>::bypass_shape_error(int64_t e_rows, int64_t e_cols, int64_t d_rows,
                                          int64_t d_cols) const {
  return make_error(ErrorCode::kInvalidArgument,
                    "The bypass needs E of " + std::to_string(config_.features) + " x " +
                        std::to_string(config_.input_size) + " and D of " +
                        std::to_string(config_.horizon) + " x " + std::to_string(config_.features) +
                        "; got E of " + std::to_string(e_rows) + " x " + std::to_string(e_cols) +
                        " and D of " + std::to_string(d_rows) + " x " + std::to_string(d_cols) +
                        ".");
}

template class StudentModel<float>;
template class StudentModel<double>;

}  // namespace cyclecast::models
