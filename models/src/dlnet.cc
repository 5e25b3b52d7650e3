#include "cyclecast/models/dlnet.h"

#include <string>
#include <utility>

namespace cyclecast::models {

DlnetConfig DlnetConfig::teacher(int64_t hidden_size) {
  DlnetConfig c;
  c.hidden = hidden_size;
  return c;
}

DlnetConfig DlnetConfig::student(int64_t hidden_size, int64_t rank) {
  DlnetConfig c;
  c.encoder_widths.clear();
  c.decoder_widths.clear();
  c.hidden = hidden_size;
  c.euler_steps = 1;
  c.dropout = 0.0;
  c.recurrent_rank = rank;
  return c;
}

template <typename S>
void NormBlock::forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Cache<S>& cache,
                        bool training, Rng& rng) const {
  cache.input = x;
  Matrix<S> pre;
  dense.forward(params, x, pre);
  Matrix<S> normed;
  norm.forward(params, pre, normed, cache.norm);
  if (activation == Activation::kRelu) {
    relu_forward(normed, cache.activated);
  } else {
    tanh_forward(normed, cache.activated);
  }
  y = cache.activated;
  if (training) {
    cache.drop.draw(y.rows(), y.cols(), dropout, rng);
    cache.drop.forward(y);
  }
}

template <typename S>
void NormBlock::backward(const S* params, S* grads, const Cache<S>& cache, Matrix<S> dy,
                         Matrix<S>* dx) const {
  cache.drop.backward(dy);
  Matrix<S> dnormed;
  if (activation == Activation::kRelu) {
    relu_backward(cache.activated, dy, dnormed);
  } else {
    tanh_backward(cache.activated, dy, dnormed);
  }
  Matrix<S> dpre;
  norm.backward(params, grads, cache.norm, dnormed, dpre);
  dense.backward(params, grads, cache.input, dpre, dx);
}

template <typename S>
struct DlnetModel<S>::Tape {
  std::vector<NormBlock::Cache<S>> encoder;
  Matrix<S> h0;
  std::vector<Matrix<S>> states;  // h_k, k = 0..steps-1
  std::vector<Matrix<S>> gates;   // tanh(W h_k + u_bar)
  std::vector<NormBlock::Cache<S>> decoder;
  Matrix<S> head_input;
};

template <typename S>
DlnetModel<S>::DlnetModel(DlnetConfig config) : ConfiguredModel<S, DlnetConfig>(std::move(config)) {
  int64_t width = config_.input_len;
  for (size_t i = 0; i < config_.encoder_widths.size(); ++i) {
    const std::string name = "encoder." + std::to_string(i);
    NormBlock block;
    block.dense = Dense::create(layout_, name + ".dense", width, config_.encoder_widths[i]);
    block.norm = LayerNorm::create(layout_, name + ".norm", config_.encoder_widths[i]);
    block.dropout = config_.dropout;
    encoder_.push_back(block);
    width = config_.encoder_widths[i];
  }
  NormBlock to_hidden;
  const std::string name = "encoder." + std::to_string(config_.encoder_widths.size());
  to_hidden.dense = Dense::create(layout_, name + ".dense", width, config_.hidden);
  to_hidden.norm = LayerNorm::create(layout_, name + ".norm", config_.hidden);
  to_hidden.activation = NormBlock::Activation::kTanh;
  encoder_.push_back(to_hidden);

  alpha_offset_ = layout_.add("liquid.alpha", config_.hidden, 1);
  beta_offset_ = layout_.add("liquid.beta", config_.hidden, 1);
  recurrent_ =
      RecurrentMatrix::create(layout_, "liquid.recurrent", config_.hidden, config_.recurrent_rank);
  residual_offset_ = layout_.add("liquid.residual", 1, 1);

  width = config_.hidden;
  for (size_t i = 0; i < config_.decoder_widths.size(); ++i) {
    const std::string dname = "decoder." + std::to_string(i);
    NormBlock block;
    block.dense = Dense::create(layout_, dname + ".dense", width, config_.decoder_widths[i]);
    block.norm = LayerNorm::create(layout_, dname + ".norm", config_.decoder_widths[i]);
    block.dropout = config_.dropout;
    decoder_.push_back(block);
    width = config_.decoder_widths[i];
  }
  head_ = Dense::create(layout_, "decoder.head", width, config_.horizon);
}

template <typename S>
void DlnetModel<S>::init(S* params, uint64_t seed) const {
  Rng rng(seed);
  for (const NormBlock& b : encoder_) {
    b.dense.init(params, rng);
    b.norm.init(params);
  }
  // Decay and drive start at 1 (a unit time constant over the unit horizon) and the skip at 0.5,
  // so that h(1) and h0 both reach the decoder from the first step.
  for (int64_t i = 0; i < config_.hidden; ++i) {
    params[alpha_offset_ + i] = S(1);
    params[beta_offset_ + i] = S(1);
  }
  recurrent_.init(params, rng);
  params[residual_offset_] = S(0.5);
  for (const NormBlock& b : decoder_) {
    b.dense.init(params, rng);
    b.norm.init(params);
  }
  head_.init(params, rng);
}

template <typename S>
void DlnetModel<S>::forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Tape* tape,
                            Rng& rng) const {
  const bool training = tape != nullptr;
  Tape scratch;
  Tape& t = training ? *tape : scratch;
  t.encoder.resize(encoder_.size());
  Matrix<S> a = x;
  for (size_t i = 0; i < encoder_.size(); ++i) {
    Matrix<S> next;
    encoder_[i].forward(params, a, next, t.encoder[i], training, rng);
    a = std::move(next);
  }
  t.h0 = a;

  const RowVector<S> u_bar = x.colwise().mean();
  ConstVectorMap<S> alpha(params + alpha_offset_, config_.hidden);
  ConstVectorMap<S> beta(params + beta_offset_, config_.hidden);
  const S dt = S(1) / S(config_.euler_steps);
  t.states.resize(static_cast<size_t>(config_.euler_steps));
  t.gates.resize(static_cast<size_t>(config_.euler_steps));
  Matrix<S> h = t.h0;
  Matrix<S> z;
  for (size_t k = 0; k < t.states.size(); ++k) {
    recurrent_.apply(params, h, z);
    z.rowwise() += u_bar;
    t.gates[k] = z.array().tanh();
    t.states[k] = h;
    h.array() += dt * (beta.asDiagonal() * t.gates[k] - alpha.asDiagonal() * h).array();
  }
  const S r = params[residual_offset_];
  a = h + r * t.h0;

  t.decoder.resize(decoder_.size());
  for (size_t i = 0; i < decoder_.size(); ++i) {
    Matrix<S> next;
    decoder_[i].forward(params, a, next, t.decoder[i], training, rng);
    a = std::move(next);
  }
  head_.forward(params, a, y);
  t.head_input = std::move(a);
}

template <typename S>
void DlnetModel<S>::backward(const S* params, S* grads, const Tape& t, const Matrix<S>& dy) const {
  Matrix<S> g;
  head_.backward(params, grads, t.head_input, dy, &g);
  for (size_t i = decoder_.size(); i-- > 0;) {
    Matrix<S> dx;
    decoder_[i].backward(params, grads, t.decoder[i], std::move(g), &dx);
    g = std::move(dx);
  }
  // g = dL/d(h(1) + r h0).
  grads[residual_offset_] += (g.array() * t.h0.array()).sum();
  Matrix<S> dh0 = params[residual_offset_] * g;

  ConstVectorMap<S> alpha(params + alpha_offset_, config_.hidden);
  ConstVectorMap<S> beta(params + beta_offset_, config_.hidden);
  VectorMap<S> dalpha(grads + alpha_offset_, config_.hidden);
  VectorMap<S> dbeta(grads + beta_offset_, config_.hidden);
  const S dt = S(1) / S(config_.euler_steps);
  for (size_t k = t.states.size(); k-- > 0;) {
    // h_{k+1} = h_k + dt (-alpha h_k + beta s_k), s_k = tanh(W h_k + u_bar)
    const Matrix<S>& h = t.states[k];
    const Matrix<S>& s = t.gates[k];
    dalpha -= dt * (g.array() * h.array()).rowwise().sum().matrix();
    dbeta += dt * (g.array() * s.array()).rowwise().sum().matrix();
    Matrix<S> dz = (dt * (g.array().colwise() * beta.array())) * (S(1) - s.array().square());
    Matrix<S> dh = g.array() * (S(1) - dt * alpha.array()).replicate(1, g.cols());
    recurrent_.backward(params, grads, h, dz, dh);
    g = std::move(dh);
  }
  g += dh0;
  for (size_t i = encoder_.size(); i-- > 0;) {
    Matrix<S> dx;
    encoder_[i].backward(params, grads, t.encoder[i], std::move(g), i == 0 ? nullptr : &dx);
    g = std::move(dx);
  }
}

template <typename S>
void DlnetModel<S>::predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const {
  Rng unused(0);
  forward(params, x, y, nullptr, unused);
}

template <typename S>
S DlnetModel<S>::loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                                   const LossSpec& loss, int64_t batch_total, uint64_t dropout_seed,
                                   S* grads) const {
  Rng rng(dropout_seed);
  Tape tape;
  Matrix<S> y;
  forward(params, x, y, &tape, rng);
  Matrix<S> dy;
  const S value = combined_loss(loss, y, target, batch_total, &dy);
  backward(params, grads, tape, dy);
  return value;
}

template class DlnetModel<float>;
template class DlnetModel<double>;

}  // namespace cyclecast::models
