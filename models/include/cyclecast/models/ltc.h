// The liquid time-constant (LTC) network of Hasani et al. (AAAI 2021) with a forecast head.
//
// Each neuron j has a membrane potential v_j, capacitance cm_j, leak conductance gl_j and leak
// potential vl_j. Every neuron i and every input feature f drive j through a synapse with a
// sigmoid-gated conductance and a reversal potential:
//   a_ij(v_i) = softplus(w_ij) * sigmoid(sigma_ij * (v_i - mu_ij))
//   C_j dv_j/dt = gl_j (vl_j - v_j) + sum_i a_ij(v_i) (erev_ij - v_j) + sensory terms
// so each neuron's effective time constant depends on its input (the "liquid" part). One input
// step of length elapsed_time is solved with the fused semi-implicit (hybrid Euler) step repeated
// `unfolds` times, with cm_t = cm / (elapsed_time / unfolds):
//   v_j <- (cm_t_j v_j + gl_j vl_j + sum_i a_ij erev_ij) / (cm_t_j + gl_j + sum_i a_ij + 1e-8)
// where the sums include the sensory synapses of the current input. Capacitance, leak and every
// synaptic weight go through softplus, so they stay positive whatever the optimizer does.
// The input is first mapped per feature by x * input_w + input_b; all neurons are connected (no
// wiring mask). After the last input step the head (dense, units -> horizon) reads the state.
// Backpropagation through time goes through every unfold of every step.
#pragma once

#include <cstdint>

#include "cyclecast/models/layers.h"
#include "cyclecast/models/model.h"

namespace cyclecast::models {

struct LtcConfig {
  int64_t input_len = 100;     // time steps per window
  int64_t input_features = 1;  // values per time step (rows t*F .. t*F+F-1 of the input)
  int64_t units = 64;
  int64_t unfolds = 6;
  int64_t horizon = 100;
  double elapsed_time = 1.0;  // length of one input step
  // Training keeps the gates of every unfold for the backward pass when they fit in this many
  // bytes per shard (units * (units + features) * batch * unfolds * input_len * sizeof(S)) and
  // recomputes them otherwise. A memory/speed knob only: results are identical either way.
  double gate_cache_bytes = 256.0 * 1024 * 1024;
};

template <typename S>
class LtcModel final : public ConfiguredModel<S, LtcConfig> {
 public:
  explicit LtcModel(LtcConfig config);

  int64_t input_size() const override { return config_.input_len * config_.input_features; }
  void init(S* params, uint64_t seed) const override;
  void predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const override;
  S loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                      const LossSpec& loss, int64_t batch_total, uint64_t dropout_seed,
                      S* grads) const override;

  // Synapse tensors: mu, sigma, w (pre-softplus) and erev, each pre x post.
  struct Synapses {
    int64_t mu = 0;
    int64_t sigma = 0;
    int64_t w = 0;
    int64_t erev = 0;
  };

 private:
  struct Tape;
  void forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Tape* tape) const;
  void backward(const S* params, S* grads, const Matrix<S>& x, const Tape& tape,
                const Matrix<S>& dy) const;

  using ConfiguredModel<S, LtcConfig>::config_;
  using ConfiguredModel<S, LtcConfig>::layout_;
  int64_t input_w_ = 0;
  int64_t input_b_ = 0;
  Synapses sensory_;
  Synapses synapses_;
  int64_t gleak_ = 0;
  int64_t vleak_ = 0;
  int64_t cm_ = 0;
  Dense head_;
};

extern template class LtcModel<float>;
extern template class LtcModel<double>;

}  // namespace cyclecast::models
