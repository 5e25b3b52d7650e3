#include "cyclecast/models/ltc.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace cyclecast::models {
namespace {

// Keeps the fused step's division finite when every conductance is ~0.
constexpr double kDenominatorEps = 1e-8;

template <typename S>
Matrix<S> softplus_of(const S* raw, int64_t rows, int64_t cols) {
  return ConstMatrixMap<S>(raw, rows, cols).unaryExpr([](S v) { return softplus(v); });
}

double inverse_softplus(double y) {
  return std::log(std::expm1(y));
}

template <typename S>
using Synapses = typename LtcModel<S>::Synapses;

// Adds the currents of `pre` (P x B presynaptic potentials or inputs) through a P x N synapse
// set: num_j += sum_i a_ij erev_ij and den_j += sum_i a_ij, with a_ij = sp_ij gate_ij. For each
// post neuron j the gates are computed one sample at a time on contiguous P-vectors
// (broadcasting expressions over a P x B block do not vectorize in Eigen and were 6x slower),
// then both sums are two row-vector x matrix products: num_j = (sp .* erev)_j^T G_j and
// den_j = sp_j^T G_j. The gates land in `gates` (P x N*B, column j*B + b), which the backward
// pass reuses when the caller keeps them.
template <typename S>
void synapse_forward(const S* params, const Synapses<S>& s, const Matrix<S>& spw,
                     const Matrix<S>& sp_erev, const Matrix<S>& pre, Matrix<S>& num, Matrix<S>& den,
                     Matrix<S>& gates) {
  const int64_t p = spw.rows();
  const int64_t n = spw.cols();
  ConstMatrixMap<S> mu(params + s.mu, p, n);
  ConstMatrixMap<S> sigma(params + s.sigma, p, n);
  const int64_t batch = pre.cols();
  gates.resize(p, n * batch);
  for (int64_t j = 0; j < n; ++j) {
    const auto mu_j = mu.col(j).array();
    const auto sigma_j = sigma.col(j).array();
    for (int64_t b = 0; b < batch; ++b) {
      gates.col(j * batch + b).array() = ((pre.col(b).array() - mu_j) * sigma_j).logistic();
    }
    const auto g_j = gates.middleCols(j * batch, batch);
    num.row(j).noalias() += sp_erev.col(j).transpose() * g_j;
    den.row(j).noalias() += spw.col(j).transpose() * g_j;
  }
}

// The element-wise part of one synapse column j's backward pass over all samples. g holds the
// gates of column j for every sample (P x B); for each block of 4 presynaptic entries the
// parameter gradients are summed over the samples in registers (fixed-size Eigen arrays map to
// SIMD registers) and written once, instead of a read-modify-write per sample: this loop is
// most of the LTC training time.
template <typename S, int kLanes>
void synapse_column_gradient_block(int64_t i0, int64_t p, int64_t batch, const S* g, const S* pre,
                                   const S* dn, const S* dd, const S* mu, const S* sigma,
                                   const S* sp, const S* erev, S* derev, S* dw, S* dsigma, S* dmu,
                                   S* dpre) {
  using Lanes = Eigen::Array<S, kLanes, 1>;
  using In = Eigen::Map<const Lanes>;
  using Out = Eigen::Map<Lanes>;
  const Lanes mu4 = In(mu + i0);
  const Lanes sigma4 = In(sigma + i0);
  const Lanes sp4 = In(sp + i0);
  const Lanes erev4 = In(erev + i0);
  Lanes acc_derev = Lanes::Zero();
  Lanes acc_dw = Lanes::Zero();
  Lanes acc_dsigma = Lanes::Zero();
  Lanes acc_dmu = Lanes::Zero();
  for (int64_t b = 0; b < batch; ++b) {
    const Lanes g4 = In(g + b * p + i0);
    const Lanes a = g4 * sp4;
    // dL/da_ij = dnum_j erev_ij + dden_j
    const Lanes dact = erev4 * dn[b] + dd[b];
    acc_derev += a * dn[b];
    acc_dw += dact * g4;
    // d/d(pre-activation) of softplus(w) * sigmoid(z) = dact * a * (1 - sigmoid(z))
    const Lanes dz = dact * a * (S(1) - g4);
    acc_dsigma += dz * (In(pre + b * p + i0) - mu4);
    acc_dmu += dz;
    Out(dpre + b * p + i0) += dz * sigma4;
  }
  Out(derev + i0) += acc_derev;
  Out(dw + i0) += acc_dw;
  Out(dsigma + i0) += acc_dsigma;
  Out(dmu + i0) += acc_dmu;
}

template <typename S>
void synapse_column_gradient(int64_t p, int64_t batch, const S* g, const S* pre, const S* dn,
                             const S* dd, const S* mu, const S* sigma, const S* sp, const S* erev,
                             S* derev, S* dw, S* dsigma, S* dmu, S* dpre) {
  int64_t i0 = 0;
  for (; i0 + 4 <= p; i0 += 4) {
    synapse_column_gradient_block<S, 4>(i0, p, batch, g, pre, dn, dd, mu, sigma, sp, erev, derev,
                                        dw, dsigma, dmu, dpre);
  }
  for (; i0 < p; ++i0) {
    synapse_column_gradient_block<S, 1>(i0, p, batch, g, pre, dn, dd, mu, sigma, sp, erev, derev,
                                        dw, dsigma, dmu, dpre);
  }
}

// Given dnum, dden (N x B), adds the synapse parameter gradients to grads and dL/dpre to dpre.
// Uses the gates saved by the forward pass, or recomputes them when `saved` is null.
template <typename S>
void synapse_backward(const S* params, S* grads, const Synapses<S>& s, const Matrix<S>& spw,
                      const Matrix<S>& pre, const Matrix<S>& dnum, const Matrix<S>& dden,
                      Matrix<S>& dpre, const Matrix<S>* saved) {
  using Array = Eigen::Array<S, Eigen::Dynamic, 1>;
  const int64_t p = spw.rows();
  const int64_t n = spw.cols();
  ConstMatrixMap<S> mu(params + s.mu, p, n);
  ConstMatrixMap<S> sigma(params + s.sigma, p, n);
  ConstMatrixMap<S> w(params + s.w, p, n);
  ConstMatrixMap<S> erev(params + s.erev, p, n);
  MatrixMap<S> dmu(grads + s.mu, p, n);
  MatrixMap<S> dsigma(grads + s.sigma, p, n);
  MatrixMap<S> dw(grads + s.w, p, n);
  MatrixMap<S> derev(grads + s.erev, p, n);
  Matrix<S> gates(saved != nullptr ? 0 : p, saved != nullptr ? 0 : pre.cols());
  Array dw_acc(p);
  Array dmu_acc(p);
  RowVector<S> dn_j;
  RowVector<S> dd_j;
  const int64_t batch = pre.cols();
  for (int64_t j = 0; j < n; ++j) {
    const S* gate_data = gates.data();
    if (saved != nullptr) {
      gate_data = saved->data() + j * batch * p;
    } else {
      for (int64_t b = 0; b < batch; ++b) {
        gates.col(b) = ((pre.col(b).array() - mu.col(j).array()) * sigma.col(j).array()).logistic();
      }
    }
    dn_j = dnum.row(j);
    dd_j = dden.row(j);
    dw_acc.setZero();
    dmu_acc.setZero();
    synapse_column_gradient(p, batch, gate_data, pre.data(), dn_j.data(), dd_j.data(),
                            mu.data() + j * p, sigma.data() + j * p, spw.data() + j * p,
                            erev.data() + j * p, &derev(0, j), dw_acc.data(), &dsigma(0, j),
                            dmu_acc.data(), dpre.data());
    dw.col(j).array() += dw_acc * w.col(j).array().unaryExpr([](S x) { return sigmoid(x); });
    dmu.col(j).array() -= dmu_acc * sigma.col(j).array();
  }
}

}  // namespace

template <typename S>
struct LtcModel<S>::Tape {
  std::vector<Matrix<S>> inputs;  // mapped input per step, F x B
  std::vector<Matrix<S>> states;  // potential before each unfold, and the final one
  std::vector<Matrix<S>> dens;    // denominator (with eps) of each unfold
  // Gates of every unfold and of every step's sensory synapses, when they fit
  // LtcConfig::gate_cache_bytes; empty otherwise (backward then recomputes them).
  std::vector<Matrix<S>> synapse_gates;
  std::vector<Matrix<S>> sensory_gates;
};

template <typename S>
LtcModel<S>::LtcModel(LtcConfig config) : ConfiguredModel<S, LtcConfig>(config) {
  const int64_t f = config_.input_features;
  const int64_t n = config_.units;
  input_w_ = layout_.add("ltc.input.weight", f, 1);
  input_b_ = layout_.add("ltc.input.bias", f, 1);
  auto add_synapses = [&](const std::string& name, int64_t pre) {
    Synapses s;
    s.mu = layout_.add(name + ".mu", pre, n);
    s.sigma = layout_.add(name + ".sigma", pre, n);
    s.w = layout_.add(name + ".w", pre, n);
    s.erev = layout_.add(name + ".erev", pre, n);
    return s;
  };
  sensory_ = add_synapses("ltc.sensory", f);
  synapses_ = add_synapses("ltc.synapse", n);
  gleak_ = layout_.add("ltc.gleak", n, 1);
  vleak_ = layout_.add("ltc.vleak", n, 1);
  cm_ = layout_.add("ltc.cm", n, 1);
  head_ = Dense::create(layout_, "head", n, config_.horizon);
}

template <typename S>
void LtcModel<S>::init(S* params, uint64_t seed) const {
  // Ranges of the reference LTC implementation: positive weights in (0.001, 1), steep gates
  // (sigma in 3..8) centred in 0.3..0.8, excitatory or inhibitory reversal potentials.
  Rng rng(seed);
  const int64_t f = config_.input_features;
  const int64_t n = config_.units;
  for (int64_t i = 0; i < f; ++i) {
    params[input_w_ + i] = S(1);
    params[input_b_ + i] = S(0);
  }
  auto init_synapses = [&](const Synapses& s, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      params[s.mu + i] = S(rng.uniform(0.3, 0.8));
      params[s.sigma + i] = S(rng.uniform(3.0, 8.0));
      params[s.w + i] = S(inverse_softplus(rng.uniform(0.001, 1.0)));
      params[s.erev + i] = rng.uniform() < 0.5 ? S(-1) : S(1);
    }
  };
  init_synapses(sensory_, f * n);
  init_synapses(synapses_, n * n);
  for (int64_t i = 0; i < n; ++i) {
    params[gleak_ + i] = S(inverse_softplus(1.0));
    params[vleak_ + i] = S(rng.uniform(-0.2, 0.2));
    params[cm_ + i] = S(inverse_softplus(rng.uniform(0.4, 0.6)));
  }
  head_.init(params, rng);
}

template <typename S>
void LtcModel<S>::forward(const S* params, const Matrix<S>& x, Matrix<S>& y, Tape* tape) const {
  const int64_t f = config_.input_features;
  const int64_t n = config_.units;
  const int64_t batch = x.cols();
  const S unfold_rate = S(static_cast<double>(config_.unfolds) / config_.elapsed_time);
  const Vector<S> cm_t = softplus_of(params + cm_, n, 1) * unfold_rate;
  const Vector<S> gl = softplus_of(params + gleak_, n, 1);
  ConstVectorMap<S> vl(params + vleak_, n);
  const Vector<S> leak_current = gl.cwiseProduct(vl);
  const Vector<S> den_base = (cm_t + gl).array() + S(kDenominatorEps);
  const Matrix<S> sp_sensory = softplus_of(params + sensory_.w, f, n);
  const Matrix<S> sp_synapse = softplus_of(params + synapses_.w, n, n);
  const Matrix<S> sp_erev_sensory =
      sp_sensory.cwiseProduct(ConstMatrixMap<S>(params + sensory_.erev, f, n));
  const Matrix<S> sp_erev_synapse =
      sp_synapse.cwiseProduct(ConstMatrixMap<S>(params + synapses_.erev, n, n));
  ConstVectorMap<S> in_w(params + input_w_, f);
  ConstVectorMap<S> in_b(params + input_b_, f);

  Matrix<S> v = Matrix<S>::Zero(n, batch);
  Matrix<S> sens_num(n, batch);
  Matrix<S> sens_den(n, batch);
  Matrix<S> num(n, batch);
  Matrix<S> den(n, batch);
  Matrix<S> scratch_gates;
  const auto steps = static_cast<size_t>(config_.input_len * config_.unfolds);
  if (tape != nullptr) {
    // resize keeps the matrices already there, so a tape reused for same-sized batches
    // allocates nothing (fresh ~100 MB tapes per shard spent ~15 % of the time in page faults).
    tape->inputs.resize(static_cast<size_t>(config_.input_len));
    tape->states.resize(steps + 1);
    tape->dens.resize(steps);
    const double gate_bytes =
        static_cast<double>(n * (n + f) * batch) * static_cast<double>(steps) * sizeof(S);
    const bool keep = gate_bytes <= config_.gate_cache_bytes;
    tape->synapse_gates.resize(keep ? steps : 0);
    tape->sensory_gates.resize(keep ? static_cast<size_t>(config_.input_len) : 0);
  }
  const bool keep_gates = tape != nullptr && !tape->synapse_gates.empty();
  for (int64_t t = 0; t < config_.input_len; ++t) {
    Matrix<S> xin =
        (x.middleRows(t * f, f).array().colwise() * in_w.array()).colwise() + in_b.array();
    sens_num.setZero();
    sens_den.setZero();
    synapse_forward(params, sensory_, sp_sensory, sp_erev_sensory, xin, sens_num, sens_den,
                    keep_gates ? tape->sensory_gates[static_cast<size_t>(t)] : scratch_gates);
    sens_num.colwise() += leak_current;
    sens_den.colwise() += den_base;
    for (int64_t u = 0; u < config_.unfolds; ++u) {
      const auto k = static_cast<size_t>(t * config_.unfolds + u);
      num = sens_num + (v.array().colwise() * cm_t.array()).matrix();
      den = sens_den;
      synapse_forward(params, synapses_, sp_synapse, sp_erev_synapse, v, num, den,
                      keep_gates ? tape->synapse_gates[k] : scratch_gates);
      if (tape != nullptr) {
        tape->states[k] = v;
        tape->dens[k] = den;
      }
      v = num.cwiseQuotient(den);
    }
    if (tape != nullptr) tape->inputs[static_cast<size_t>(t)] = std::move(xin);
  }
  if (tape != nullptr) tape->states[steps] = v;
  head_.forward(params, v, y);
}

template <typename S>
void LtcModel<S>::backward(const S* params, S* grads, const Matrix<S>& x, const Tape& tape,
                           const Matrix<S>& dy) const {
  const int64_t f = config_.input_features;
  const int64_t n = config_.units;
  const int64_t batch = x.cols();
  const S unfold_rate = S(static_cast<double>(config_.unfolds) / config_.elapsed_time);
  const Vector<S> cm_t = softplus_of(params + cm_, n, 1) * unfold_rate;
  const Vector<S> gl = softplus_of(params + gleak_, n, 1);
  ConstVectorMap<S> vl(params + vleak_, n);
  const Matrix<S> sp_sensory = softplus_of(params + sensory_.w, f, n);
  const Matrix<S> sp_synapse = softplus_of(params + synapses_.w, n, n);

  Matrix<S> g;
  head_.backward(params, grads, tape.states.back(), dy, &g);
  Vector<S> dcm_t = Vector<S>::Zero(n);
  Vector<S> dgl = Vector<S>::Zero(n);
  VectorMap<S> dvl(grads + vleak_, n);
  VectorMap<S> din_w(grads + input_w_, f);
  VectorMap<S> din_b(grads + input_b_, f);
  Matrix<S> dnum(n, batch);
  Matrix<S> dden(n, batch);
  Matrix<S> gsens_num(n, batch);
  Matrix<S> gsens_den(n, batch);
  Matrix<S> gnext;
  for (int64_t t = config_.input_len; t-- > 0;) {
    gsens_num.setZero();
    gsens_den.setZero();
    for (int64_t u = config_.unfolds; u-- > 0;) {
      const auto k = static_cast<size_t>(t * config_.unfolds + u);
      const Matrix<S>& v = tape.states[k];
      // v_next = num / den: dnum = g / den, dden = -g num / den^2 = -dnum * v_next
      dnum = g.cwiseQuotient(tape.dens[k]);
      dden = -dnum.cwiseProduct(tape.states[k + 1]);
      dcm_t += (dnum.array() * v.array() + dden.array()).rowwise().sum().matrix();
      const Vector<S> dnum_sum = dnum.rowwise().sum();
      const Vector<S> dden_sum = dden.rowwise().sum();
      dgl += dnum_sum.cwiseProduct(vl) + dden_sum;
      dvl += gl.cwiseProduct(dnum_sum);
      gsens_num += dnum;
      gsens_den += dden;
      gnext = dnum.array().colwise() * cm_t.array();
      synapse_backward(params, grads, synapses_, sp_synapse, v, dnum, dden, gnext,
                       tape.synapse_gates.empty() ? nullptr : &tape.synapse_gates[k]);
      g.swap(gnext);
    }
    const Matrix<S>& xin = tape.inputs[static_cast<size_t>(t)];
    Matrix<S> dxin = Matrix<S>::Zero(f, batch);
    synapse_backward(
        params, grads, sensory_, sp_sensory, xin, gsens_num, gsens_den, dxin,
        tape.sensory_gates.empty() ? nullptr : &tape.sensory_gates[static_cast<size_t>(t)]);
    din_w += (dxin.array() * x.middleRows(t * f, f).array()).rowwise().sum().matrix();
    din_b += dxin.rowwise().sum();
  }
  ConstVectorMap<S> cm_raw(params + cm_, n);
  ConstVectorMap<S> gleak_raw(params + gleak_, n);
  VectorMap<S>(grads + cm_, n).array() +=
      dcm_t.array() * unfold_rate * cm_raw.unaryExpr([](S v) { return sigmoid(v); }).array();
  VectorMap<S>(grads + gleak_, n).array() +=
      dgl.array() * gleak_raw.unaryExpr([](S v) { return sigmoid(v); }).array();
}

template <typename S>
void LtcModel<S>::predict(const S* params, const Matrix<S>& x, Matrix<S>& y) const {
  forward(params, x, y, nullptr);
}

template <typename S>
S LtcModel<S>::loss_and_gradient(const S* params, const Matrix<S>& x, const Matrix<S>& target,
                                 const LossSpec& loss, int64_t batch_total, uint64_t,
                                 S* grads) const {
  // One tape per thread, kept between calls so that its buffers are reused (see forward); it
  // holds the activations of the last batch of this thread until the thread ends.
  thread_local Tape tape;
  Matrix<S> y;
  forward(params, x, y, &tape);
  Matrix<S> dy;
  const S value = combined_loss(loss, y, target, batch_total, &dy);
  backward(params, grads, x, tape, dy);
  return value;
}

template class LtcModel<float>;
template class LtcModel<double>;

}  // namespace cyclecast::models
