// The DLNet paper's liquid model (arXiv 2601.06227), and its single-step students.
//
//   h0   = encoder(x)                     x: the scaled input window (input_len values)
//   dh/dt = -alpha * h + beta * tanh(W h + u_bar)    u_bar: mean of x, added to every neuron
//   h(1) = euler_steps explicit Euler steps of size 1 / euler_steps from h(0) = h0
//   y    = decoder(h(1) + r * h0)         r: one learned scalar
//
// encoder: for each width w of encoder_widths: dense -> layer norm -> ReLU -> dropout, then
//          dense -> hidden -> layer norm -> tanh.
// decoder: for each width w of decoder_widths: dense -> layer norm -> ReLU -> dropout, then
//          dense -> horizon (no norm, no activation).
// Every dense layer has a bias and every layer norm a gain and a shift. The paper's teacher
// (DlnetConfig::teacher(): 100 -> 256 -> 128, 9 steps, 128 -> 256 -> 128 -> 100) then has exactly
// 155,749 parameters; docs/models.md has the tally.
//
// A DLNet-style student (DlnetConfig::student) drops the hidden MLP layers and takes one Euler
// step: dense -> LN -> tanh, one step, dense head; its recurrent matrix may be diagonal + low rank.
#pragma once

#include <cstdint>
#include <vector>

#include "cyclecast/models/layers.h"
#include "cyclecast/models/model.h"
#include "cyclecast/models/recurrent_matrix.h"

namespace cyclecast::models {

struct DlnetConfig {
  int64_t input_len = 100;
  int64_t horizon = 100;
  std::vector<int64_t> encoder_widths{256};
  int64_t hidden = 128;
  int64_t euler_steps = 9;
  std::vector<int64_t> decoder_widths{256, 128};
  double dropout = 0.1;
  int64_t recurrent_rank = 0;  // 0: dense W; r > 0: diag + rank r

  // The paper's teacher at the given width (128 in the paper).
  static DlnetConfig teacher(int64_t hidden_size = 128);
  // Single-step student: no hidden MLP layers, no dropout.
  static DlnetConfig student(int64_t hidden_size, int64_t rank);
};

// A dense -> layer norm -> activation -> dropout stage, the unit both MLPs are made of.
struct NormBlock {
  enum class Activation { kRelu, kTanh };
  Dense dense;
  LayerNorm norm;
  Activation activation = Activation::kRelu;
  double dropout = 0.0;

  template <typename S>
  struct Cache {
    Matrix<S> input;
    LayerNorm::Cache<S> norm;
    Matrix<S> activated;  // before dropout
    Dropout<S> drop;
  };

  // training: draw a dropout mask from rng; otherwise dropout is off and rng unused.
  template <typename S>
  void forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Cache<S>& cache, bool training,
               Rng& rng) const;
  // dx may be null for the first block (no gradient into the data).
  template <typename S>
  void backward(const S* params, S* grads, const Cache<S>& cache, Matrix<S> dy,
                Matrix<S>* dx) const;
};

template <typename S>
class DlnetModel final : public ConfiguredModel<S, DlnetConfig> {
 public:
  explicit DlnetModel(DlnetConfig config);

  int64_t input_size() const override { return config_.input_len; }
  void init(S* params, uint64_t seed) const override;
  void predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const override;
  S loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                      const LossSpec& loss, int64_t batch_total, uint64_t dropout_seed,
                      S* grads) const override;

 private:
  struct Tape;
  void forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Tape* tape, Rng& rng) const;
  void backward(const S* params, S* grads, const Tape& tape, const Matrix<S>& dy) const;

  using ConfiguredModel<S, DlnetConfig>::config_;
  using ConfiguredModel<S, DlnetConfig>::layout_;
  std::vector<NormBlock> encoder_;  // last one is the tanh block giving h0
  int64_t alpha_offset_ = 0;
  int64_t beta_offset_ = 0;
  RecurrentMatrix recurrent_;
  int64_t residual_offset_ = 0;
  std::vector<NormBlock> decoder_;
  Dense head_;
};

extern template class DlnetModel<float>;
extern template class DlnetModel<double>;

}  // namespace cyclecast::models
