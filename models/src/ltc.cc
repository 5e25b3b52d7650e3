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
// set: num_j += sum_i a_ij erev_ij and den_j += sum_i a_ij. The loops run over (post j, sample b)
// with every Eigen expression on contiguous P-vectors: broadcasting expressions over a P x B
// block do not vectorize in Eigen and made this 6x slower.
template <typename S>
void synapse_forward(const S* params, const Synapses<S>& s, const Matrix<S>& spw,
                     const Matrix<S>& pre, Matrix<S>& num, Matrix<S>& den,
                     Eigen::Array<S, Eigen::Dynamic, 1>& a) {
  const int64_t p = spw.rows();
  const int64_t n = spw.cols();
  ConstMatrixMap<S> mu(params + s.mu, p, n);
  ConstMatrixMap<S> sigma(params + s.sigma, p, n);
  ConstMatrixMap<S> erev(params + s.erev, p, n);
  a.resize(p);
  for (int64_t j = 0; j < n; ++j) {
    const auto mu_j = mu.col(j).array();
    const auto sigma_j = sigma.col(j).array();
    const auto sp_j = spw.col(j).array();
    const auto erev_j = erev.col(j).array();
    for (int64_t b = 0; b < pre.cols(); ++b) {
      a = ((pre.col(b).array() - mu_j) * sigma_j).logistic() * sp_j;
      num(j, b) += (a * erev_j).sum();
      den(j, b) += a.sum();
    }
  }
}

// The element-wise part of one synapse column's backward pass for one sample, as a single loop
// over the P presynaptic entries. restrict-qualified parameters let GCC vectorize it (it does
// not for restrict locals), which made the LTC backward pass about 2x faster than ten separate
// Eigen passes.
template <typename S>
void fused_synapse_gradient(int64_t p, S dn, S dd, const S* __restrict g, const S* __restrict v,
                            const S* __restrict mu, const S* __restrict sigma,
                            const S* __restrict sp, const S* __restrict erev, S* __restrict derev,
                            S* __restrict dw, S* __restrict dsigma, S* __restrict dmu,
                            S* __restrict dv) {
  for (int64_t i = 0; i < p; ++i) {
    const S a = g[i] * sp[i];
    // dL/da_ij = dnum_j erev_ij + dden_j
    const S dact = erev[i] * dn + dd;
    derev[i] += a * dn;
    dw[i] += dact * g[i];
    // d/d(pre-activation) of softplus(w) * sigmoid(z) = dact * a * (1 - sigmoid(z))
    const S dz = dact * a * (S(1) - g[i]);
    dsigma[i] += dz * (v[i] - mu[i]);
    dmu[i] += dz;
    dv[i] += dz * sigma[i];
  }
}

// Given dnum, dden (N x B), adds the synapse parameter gradients to grads and dL/dpre to dpre.
// Recomputes the gates instead of storing P x N x B of them per unfold.
template <typename S>
void synapse_backward(const S* params, S* grads, const Synapses<S>& s, const Matrix<S>& spw,
                      const Matrix<S>& pre, const Matrix<S>& dnum, const Matrix<S>& dden,
                      Matrix<S>& dpre) {
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
  Array gate(p);
  Array dw_acc(p);
  Array dmu_acc(p);
  for (int64_t j = 0; j < n; ++j) {
    const S* mu_j = mu.data() + j * p;
    const S* sigma_j = sigma.data() + j * p;
    const S* sp_j = spw.data() + j * p;
    const S* erev_j = erev.data() + j * p;
    S* derev_j = &derev(0, j);
    S* dsigma_j = &dsigma(0, j);
    S* dw_j = dw_acc.data();
    S* dmu_j = dmu_acc.data();
    dw_acc.setZero();
    dmu_acc.setZero();
    for (int64_t b = 0; b < pre.cols(); ++b) {
      const S dn = dnum(j, b);
      const S dd = dden(j, b);
      // The logistic through Eigen (vectorized exp), the rest in one fused loop.
      gate = ((pre.col(b).array() - mu.col(j).array()) * sigma.col(j).array()).logistic();
      const S* g = gate.data();
      const S* v = pre.data() + b * p;
      S* dv = &dpre(0, b);
      fused_synapse_gradient(p, dn, dd, g, v, mu_j, sigma_j, sp_j, erev_j, derev_j, dw_j, dsigma_j,
                             dmu_j, dv);
    }
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
};

template <typename S>
LtcModel<S>::LtcModel(LtcConfig config) : config_(config) {
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
  ConstVectorMap<S> in_w(params + input_w_, f);
  ConstVectorMap<S> in_b(params + input_b_, f);

  Matrix<S> v = Matrix<S>::Zero(n, batch);
  Matrix<S> sens_num(n, batch);
  Matrix<S> sens_den(n, batch);
  Matrix<S> num(n, batch);
  Matrix<S> den(n, batch);
  Eigen::Array<S, Eigen::Dynamic, 1> gate;
  if (tape != nullptr) {
    tape->inputs.resize(static_cast<size_t>(config_.input_len));
    tape->states.clear();
    tape->dens.clear();
    tape->states.reserve(static_cast<size_t>(config_.input_len * config_.unfolds + 1));
    tape->dens.reserve(static_cast<size_t>(config_.input_len * config_.unfolds));
  }
  for (int64_t t = 0; t < config_.input_len; ++t) {
    Matrix<S> xin =
        (x.middleRows(t * f, f).array().colwise() * in_w.array()).colwise() + in_b.array();
    sens_num.setZero();
    sens_den.setZero();
    synapse_forward(params, sensory_, sp_sensory, xin, sens_num, sens_den, gate);
    sens_num.colwise() += leak_current;
    sens_den.colwise() += den_base;
    for (int64_t u = 0; u < config_.unfolds; ++u) {
      num = sens_num + (v.array().colwise() * cm_t.array()).matrix();
      den = sens_den;
      synapse_forward(params, synapses_, sp_synapse, v, num, den, gate);
      if (tape != nullptr) {
        tape->states.push_back(v);
        tape->dens.push_back(den);
      }
      v = num.cwiseQuotient(den);
    }
    if (tape != nullptr) tape->inputs[static_cast<size_t>(t)] = std::move(xin);
  }
  if (tape != nullptr) tape->states.push_back(v);
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
      synapse_backward(params, grads, synapses_, sp_synapse, v, dnum, dden, gnext);
      g.swap(gnext);
    }
    const Matrix<S>& xin = tape.inputs[static_cast<size_t>(t)];
    Matrix<S> dxin = Matrix<S>::Zero(f, batch);
    synapse_backward(params, grads, sensory_, sp_sensory, xin, gsens_num, gsens_den, dxin);
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
  Tape tape;
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
