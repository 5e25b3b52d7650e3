#include "cyclecast/models/quantize.h"

#include <Eigen/Cholesky>
#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <string>

namespace cyclecast::models {
namespace {

using Eigen::MatrixXd;
using Eigen::MatrixXf;
using Eigen::VectorXd;

constexpr double kInt32Max = 2147483647.0;
constexpr double kAccumulatorInputBound = 32768.0;  // |int16|, as in cc_student_validate
constexpr double kBiasBound = 536870912.0;          // 2^29: room left for the weights' sum
constexpr double kOutputHeadroom = 16777216.0;      // y's calibration range maps to +-2^24
constexpr int kTanhInputFracBits = 12;

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

std::string shape(const MatrixXf& m) {
  return std::to_string(m.rows()) + "x" + std::to_string(m.cols());
}

double max_abs(const MatrixXd& m) {
  return m.size() == 0 ? 0.0 : m.cwiseAbs().maxCoeff();
}

// A positive scale as the firmware's pair: scale = mantissa * 2^exponent / 2^31.
struct ScalePair {
  int32_t mantissa = 0, exponent = 0;
  double value() const { return std::ldexp(static_cast<double>(mantissa), exponent - 31); }
};

Result<ScalePair> to_scale_pair(double scale) {
  if (!(scale > 0.0) || !std::isfinite(scale)) return invalid("a scale is not a positive number");
  int exponent = 0;
  const double fraction = std::frexp(scale, &exponent);  // in [0.5, 1)
  auto mantissa = static_cast<int64_t>(std::llround(std::ldexp(fraction, 31)));
  if (mantissa == (int64_t{1} << 31)) {
    mantissa >>= 1;
    ++exponent;
  }
  if (exponent < -126 || exponent > 127) return invalid("a scale is outside 2^-127 .. 2^127");
  return ScalePair{static_cast<int32_t>(mantissa), exponent};
}

// Q31 multiplier and shift for cc_requantize: value * real ~= requantize(value, m, s).
struct Requant {
  int32_t multiplier = 0;
  int8_t shift = 0;
};

Result<Requant> to_requant(double real) {
  if (!(real >= 0.0) || !std::isfinite(real)) return invalid("a requantization factor is invalid");
  if (real == 0.0) return Requant{};
  int exponent = 0;
  const double fraction = std::frexp(real, &exponent);
  auto multiplier = static_cast<int64_t>(std::llround(std::ldexp(fraction, 31)));
  if (multiplier == (int64_t{1} << 31)) {
    multiplier >>= 1;
    ++exponent;
  }
  if (exponent < -31) return Requant{};  // below 2^-32: every accumulator rounds to 0 anyway
  if (exponent > 30) return invalid("a requantization factor exceeds 2^30 (degenerate ranges)");
  return Requant{static_cast<int32_t>(multiplier), static_cast<int8_t>(exponent)};
}

// Largest weight magnitude that keeps sum |w| * 32768 (+ bias) inside int32 for `cols` inputs.
int weight_qmax(int64_t cols, bool has_bias) {
  const double room = kInt32Max - (has_bias ? kBiasBound : 0.0);
  const double qmax = std::floor(room / (kAccumulatorInputBound * static_cast<double>(cols)));
  return static_cast<int>(std::min(127.0, qmax));
}

struct LayerOptions {
  bool error_compensation = true;
  double damping = 0.0;
};

// One layer's weights quantized: integer values and one scale per (row, column block).
struct QuantizedLayer {
  Eigen::MatrixXi q;
  MatrixXd scale;  // rows x blocks
};

// Round-to-nearest or GPTQ/OBQ over columns in order; input_hessian is X X^T / n of the layer's
// calibration inputs (unused without error compensation). `blocks` are column boundaries
// (0 = b0 < b1 < ... = cols); each (row, block) gets scale max|w| / qmax, at least
// scale_floor(row).
Result<QuantizedLayer> quantize_layer(const MatrixXd& weights, const MatrixXd& input_hessian,
                                      const std::vector<int64_t>& blocks, int qmax,
                                      const VectorXd& scale_floor, const LayerOptions& options) {
  const int64_t rows = weights.rows(), cols = weights.cols();
  const auto block_count = static_cast<int64_t>(blocks.size()) - 1;
  if (qmax < 1) return invalid("a layer has too many inputs for an int32 accumulator");
  QuantizedLayer out{Eigen::MatrixXi::Zero(rows, cols), MatrixXd::Zero(rows, block_count)};
  std::vector<int64_t> block_of(static_cast<size_t>(cols));
  for (int64_t k = 0; k < block_count; ++k) {
    const auto kk = static_cast<size_t>(k);
    for (int64_t c = blocks[kk]; c < blocks[kk + 1]; ++c)
      block_of[static_cast<size_t>(c)] = k;
    for (int64_t r = 0; r < rows; ++r) {
      const double range =
          weights.row(r).segment(blocks[kk], blocks[kk + 1] - blocks[kk]).cwiseAbs().maxCoeff();
      out.scale(r, k) = std::max({range / qmax, scale_floor(r), 1e-30});
    }
  }

  MatrixXd work = weights;
  MatrixXd inverse_factor;  // upper Cholesky factor U of H^-1 = U^T U
  if (options.error_compensation) {
    MatrixXd hessian = input_hessian;
    for (int64_t c = 0; c < cols; ++c) {
      if (hessian(c, c) == 0.0) hessian(c, c) = 1.0;  // an input never seen: nothing to protect
    }
    hessian.diagonal().array() += options.damping * hessian.diagonal().mean();
    const Eigen::LLT<MatrixXd> llt(hessian);
    if (llt.info() != Eigen::Success) return invalid("the calibration Hessian is not definite");
    const MatrixXd inverse = llt.solve(MatrixXd::Identity(cols, cols));
    const Eigen::LLT<MatrixXd> inverse_llt(inverse);
    if (inverse_llt.info() != Eigen::Success) return invalid("the inverse Hessian is not definite");
    inverse_factor = inverse_llt.matrixU();
  }

  for (int64_t c = 0; c < cols; ++c) {
    VectorXd error(rows);
    for (int64_t r = 0; r < rows; ++r) {
      const double s = out.scale(r, block_of[static_cast<size_t>(c)]);
      const double q = std::clamp(std::round(work(r, c) / s), -1.0 * qmax, 1.0 * qmax);
      out.q(r, c) = static_cast<int>(q);
      error(r) = work(r, c) - q * s;
    }
    if (options.error_compensation && c + 1 < cols) {
      // The columns still to quantize absorb this column's error (OBQ update).
      error /= inverse_factor(c, c);
      work.rightCols(cols - c - 1).noalias() -= error * inverse_factor.row(c).tail(cols - c - 1);
    }
  }
  return out;
}

template <typename T>
std::vector<T> row_major(const Eigen::MatrixXi& q, int64_t first_col, int64_t cols) {
  std::vector<T> out;
  out.reserve(static_cast<size_t>(q.rows() * cols));
  for (int64_t r = 0; r < q.rows(); ++r) {
    for (int64_t c = first_col; c < first_col + cols; ++c)
      out.push_back(static_cast<T>(q(r, c)));
  }
  return out;
}

int32_t to_int32_saturated(double value) {
  return static_cast<int32_t>(std::clamp(std::round(value), -kInt32Max, kInt32Max));
}

// Per-row requantization arrays from the real factors.
Result<void> fill_requant(const VectorXd& factors, std::vector<int32_t>& multipliers,
                          std::vector<int8_t>& shifts) {
  multipliers.clear();
  shifts.clear();
  for (int64_t i = 0; i < factors.size(); ++i) {
    auto r = to_requant(factors(i));
    if (!r) return r.error();
    multipliers.push_back(r->multiplier);
    shifts.push_back(r->shift);
  }
  return {};
}

// Float activations of the calibration pass.
struct Activations {
  MatrixXd z;
  std::vector<MatrixXd> hidden;  // h_0 .. h_steps
  MatrixXd y;
};

// X X^T / n of each layer's calibration inputs, computed once for every damping tried.
struct Hessians {
  MatrixXd encoder, lift, liquid, head;
};

MatrixXd gram(const MatrixXd& inputs) {
  MatrixXd g = MatrixXd::Zero(inputs.rows(), inputs.rows());
  g.selfadjointView<Eigen::Lower>().rankUpdate(inputs, 1.0 / static_cast<double>(inputs.cols()));
  return g.selfadjointView<Eigen::Lower>();
}

// Calibration inputs of the liquid layer (every h_s it is applied to, s < steps) and of the
// head ([z; h_steps]).
MatrixXd liquid_inputs(const Activations& act, int steps) {
  const int64_t n = act.z.cols();
  MatrixXd out(act.hidden.front().rows(), n * steps);
  for (int s = 0; s < steps; ++s)
    out.middleCols(s * n, n) = act.hidden[static_cast<size_t>(s)];
  return out;
}

MatrixXd head_inputs(const Activations& act) {
  MatrixXd out(act.z.rows() + act.hidden.back().rows(), act.z.cols());
  out << act.z, act.hidden.back();
  return out;
}

Hessians hessians(const MatrixXd& x, const Activations& act, int steps) {
  return {gram(x), gram(act.z), gram(liquid_inputs(act, steps)), gram(head_inputs(act))};
}

Activations forward_recording(const StudentWeights& w, const MatrixXd& x) {
  Activations act;
  act.z = w.E.cast<double>() * x;
  MatrixXd h = ((w.A.cast<double>() * act.z).colwise() + w.a.cast<double>()).array().tanh();
  act.hidden.push_back(h);
  const double dt = 1.0 / w.steps;
  const Eigen::ArrayXd alpha = w.alpha.cast<double>(), beta = w.beta.cast<double>();
  for (int s = 0; s < w.steps; ++s) {
    const Eigen::ArrayXXd drive =
        ((w.Wr.cast<double>() * h).colwise() + w.b.cast<double>()).array().tanh();
    const Eigen::ArrayXXd drift = (-h.array()).colwise() * alpha + drive.colwise() * beta;
    h = h + dt * drift.matrix();
    act.hidden.push_back(h);
  }
  act.y = ((w.D.cast<double>() * act.z + w.G.cast<double>() * h).colwise() + w.c.cast<double>());
  return act;
}

int hidden_frac_bits_for(double max_abs_hidden) {
  int bits = 15;
  while (bits > 0 && max_abs_hidden >= std::ldexp(32767.0 / 32768.0, 15 - bits))
    --bits;
  return bits;
}

}  // namespace

Result<void> check_student_weights(const StudentWeights& w) {
  const int64_t features = w.E.rows(), input = w.E.cols(), width = w.A.rows(), horizon = w.D.rows();
  if (features < 1 || input < 1 || width < 1 || horizon < 1)
    return invalid("student weights have an empty dimension");
  if (std::max({features, input, width, horizon}) > 65535)
    return invalid("a student dimension exceeds 65535, the firmware's uint16 limit");
  if (w.A.cols() != features || w.Wr.rows() != width || w.Wr.cols() != width ||
      w.D.cols() != features || w.G.rows() != horizon || w.G.cols() != width ||
      w.a.size() != width || w.alpha.size() != width || w.beta.size() != width ||
      w.b.size() != width || w.c.size() != horizon) {
    return invalid("student weight shapes disagree: E " + shape(w.E) + ", A " + shape(w.A) +
                   ", Wr " + shape(w.Wr) + ", D " + shape(w.D) + ", G " + shape(w.G));
  }
  if (w.steps < 1 || w.steps > 65535) return invalid("euler steps must be in [1, 65535]");
  const bool finite = w.E.allFinite() && w.A.allFinite() && w.Wr.allFinite() && w.D.allFinite() &&
                      w.G.allFinite() && w.a.allFinite() && w.alpha.allFinite() &&
                      w.beta.allFinite() && w.b.allFinite() && w.c.allFinite();
  if (!finite) return invalid("student weights contain NaN or infinity");
  return {};
}

MatrixXf student_forward_float(const StudentWeights& weights, const MatrixXf& inputs) {
  return forward_recording(weights, inputs.cast<double>()).y.cast<float>();
}

cc_student_model QuantizedStudent::model() const {
  cc_student_model m{};
  m.input_size = input_size;
  m.features = features;
  m.width = width;
  m.horizon = horizon;
  m.euler_steps = euler_steps;
  m.hidden_frac_bits = static_cast<uint8_t>(hidden_frac_bits);
  m.dt_q30 = dt_q30;
  m.encoder_weight = encoder_weight.data();
  m.encoder_multiplier = encoder_multiplier.data();
  m.encoder_shift = encoder_shift.data();
  m.lift_weight = lift_weight.data();
  m.lift_bias = lift_bias.data();
  m.lift_multiplier = lift_multiplier.data();
  m.lift_shift = lift_shift.data();
  m.liquid_weight = liquid_weight.data();
  m.liquid_bias = liquid_bias.data();
  m.liquid_multiplier = liquid_multiplier.data();
  m.liquid_shift = liquid_shift.data();
  m.liquid_alpha_q24 = liquid_alpha_q24.data();
  m.liquid_beta_q24 = liquid_beta_q24.data();
  m.bypass_weight = bypass_weight.data();
  m.head_bias = head_bias.data();
  m.bypass_multiplier = bypass_multiplier.data();
  m.bypass_shift = bypass_shift.data();
  m.head_weight = head_weight.data();
  m.head_multiplier = head_multiplier.data();
  m.head_shift = head_shift.data();
  m.tanh_table = cc_tanh_q15_table;
  m.input_scale_mantissa = input_scale_mantissa;
  m.input_scale_exponent = input_scale_exponent;
  m.output_scale_mantissa = output_scale_mantissa;
  m.output_scale_exponent = output_scale_exponent;
  return m;
}

double QuantizedStudent::input_scale() const {
  return ScalePair{input_scale_mantissa, input_scale_exponent}.value();
}

double QuantizedStudent::output_scale() const {
  return ScalePair{output_scale_mantissa, output_scale_exponent}.value();
}

size_t QuantizedStudent::scratch_bytes() const {
  const cc_student_model m = model();
  return cc_student_scratch_bytes(&m);
}

namespace {

// Long on purpose: the four layers share the activation scales set at the top, and each block
// quantizes one layer in the order the runtime applies them (cc_student.h).
Result<QuantizedStudent> quantize_with(const StudentWeights& w, const MatrixXd& x,
                                       const Activations& act, const Hessians& hessian,
                                       double margin, const LayerOptions& options) {
  const int64_t features = w.E.rows(), width = w.A.rows(), horizon = w.D.rows();
  QuantizedStudent q;
  q.input_size = static_cast<uint16_t>(w.E.cols());
  q.features = static_cast<uint16_t>(features);
  q.width = static_cast<uint16_t>(width);
  q.horizon = static_cast<uint16_t>(horizon);
  q.euler_steps = static_cast<uint16_t>(w.steps);
  q.dt_q30 = static_cast<int32_t>(std::llround(std::ldexp(1.0, 30) / w.steps));

  // Activation scales. A zero range (a constant-zero tensor) gets scale 1/32767 of 1.
  auto range = [&](double value) { return value > 0.0 ? value * margin : 1.0; };
  auto input_pair = to_scale_pair(range(max_abs(x)) / 32767.0);
  double max_hidden = 0.0;
  for (const auto& h : act.hidden)
    max_hidden = std::max(max_hidden, max_abs(h));
  auto output_pair = to_scale_pair(range(max_abs(act.y)) / kOutputHeadroom);
  if (!input_pair) return input_pair.error();
  if (!output_pair) return output_pair.error();
  const double s_x = input_pair->value(), s_y = output_pair->value();
  const double s_z = range(max_abs(act.z)) / 32767.0;
  q.hidden_frac_bits = static_cast<uint16_t>(hidden_frac_bits_for(max_hidden * margin));
  const double s_h = std::ldexp(1.0, -q.hidden_frac_bits);
  const double q12 = std::ldexp(1.0, kTanhInputFracBits);
  q.input_scale_mantissa = input_pair->mantissa;
  q.input_scale_exponent = input_pair->exponent;
  q.output_scale_mantissa = output_pair->mantissa;
  q.output_scale_exponent = output_pair->exponent;

  // Encoder: no bias, the widest layer, and the one error compensation matters most for.
  const int64_t inputs = w.E.cols();
  auto encoder = quantize_layer(w.E.cast<double>(), hessian.encoder, {0, inputs},
                                weight_qmax(inputs, false), VectorXd::Zero(features), options);
  if (!encoder) return encoder.error();
  q.encoder_weight = row_major<int8_t>(encoder->q, 0, inputs);
  if (auto r =
          fill_requant(encoder->scale.col(0) * (s_x / s_z), q.encoder_multiplier, q.encoder_shift);
      !r) {
    return r.error();
  }

  // Lift: bias scale floor keeps |bias| <= 2^29 in accumulator units.
  const VectorXd a = w.a.cast<double>();
  auto lift =
      quantize_layer(w.A.cast<double>(), hessian.lift, {0, features}, weight_qmax(features, true),
                     a.cwiseAbs() / (s_z * kBiasBound), options);
  if (!lift) return lift.error();
  q.lift_weight = row_major<int8_t>(lift->q, 0, features);
  for (int64_t i = 0; i < width; ++i)
    q.lift_bias.push_back(to_int32_saturated(a(i) / (lift->scale(i, 0) * s_z)));
  if (auto r = fill_requant(lift->scale.col(0) * (s_z * q12), q.lift_multiplier, q.lift_shift); !r)
    return r.error();

  // Liquid recurrence: calibrated on every h_s it is applied to (s = 0 .. steps - 1).
  const VectorXd b = w.b.cast<double>();
  auto liquid =
      quantize_layer(w.Wr.cast<double>(), hessian.liquid, {0, width}, weight_qmax(width, true),
                     b.cwiseAbs() / (s_h * kBiasBound), options);
  if (!liquid) return liquid.error();
  q.liquid_weight = row_major<int8_t>(liquid->q, 0, width);
  for (int64_t i = 0; i < width; ++i) {
    q.liquid_bias.push_back(to_int32_saturated(b(i) / (liquid->scale(i, 0) * s_h)));
    q.liquid_alpha_q24.push_back(to_int32_saturated(std::ldexp(w.alpha(i), 24)));
    q.liquid_beta_q24.push_back(to_int32_saturated(std::ldexp(w.beta(i), 24)));
  }
  if (auto r =
          fill_requant(liquid->scale.col(0) * (s_h * q12), q.liquid_multiplier, q.liquid_shift);
      !r) {
    return r.error();
  }

  // Bypass and head as one layer over [z; h_steps], so the head's columns can absorb the
  // bypass's rounding error; each part keeps its own row scales (z and h differ in range).
  MatrixXd head_weights(horizon, features + width);
  head_weights << w.D.cast<double>(), w.G.cast<double>();
  const VectorXd c = w.c.cast<double>();
  const int head_qmax = std::min(weight_qmax(features, true), weight_qmax(width, false));
  auto head = quantize_layer(head_weights, hessian.head, {0, features, features + width}, head_qmax,
                             c.cwiseAbs() / (s_z * kBiasBound), options);
  if (!head) return head.error();
  q.bypass_weight = row_major<int8_t>(head->q, 0, features);
  q.head_weight = row_major<int8_t>(head->q, features, width);
  for (int64_t o = 0; o < horizon; ++o)
    q.head_bias.push_back(to_int32_saturated(c(o) / (head->scale(o, 0) * s_z)));
  if (auto r = fill_requant(head->scale.col(0) * (s_z / s_y), q.bypass_multiplier, q.bypass_shift);
      !r) {
    return r.error();
  }
  if (auto r = fill_requant(head->scale.col(1) * (s_h / s_y), q.head_multiplier, q.head_shift); !r)
    return r.error();

  const cc_student_model view = q.model();
  if (cc_student_validate(&view) != CC_OK)
    return invalid("the quantized student fails cc_student_validate (degenerate weights)");
  return q;
}

}  // namespace

Result<QuantizedStudent> quantize_student(const StudentWeights& w, const MatrixXf& calibration,
                                          const QuantizeOptions& options) {
  if (auto checked = check_student_weights(w); !checked) return checked.error();
  if (calibration.rows() != w.E.cols() || calibration.cols() < 1)
    return invalid("calibration inputs are " + shape(calibration) + ", expected " +
                   std::to_string(w.E.cols()) + " rows and at least one column");
  if (!calibration.allFinite()) return invalid("calibration inputs contain NaN or infinity");
  if (!(options.range_margin >= 1.0)) return invalid("quantize options need range_margin >= 1");
  std::vector<double> dampings =
      options.error_compensation ? options.dampings : std::vector<double>{0.0};
  if (dampings.empty()) return invalid("quantize options need at least one damping");
  for (const double d : dampings) {
    if (options.error_compensation && !(d > 0.0)) return invalid("dampings must be positive");
  }

  const MatrixXd x = calibration.cast<double>();
  const Activations act = forward_recording(w, x);
  const MatrixXf reference = act.y.cast<float>();
  const Hessians hessian = options.error_compensation ? hessians(x, act, w.steps) : Hessians{};
  Result<QuantizedStudent> best = invalid("no damping candidate quantized");
  double best_error = std::numeric_limits<double>::infinity();
  for (const double damping : dampings) {
    auto candidate = quantize_with(w, x, act, hessian, options.range_margin,
                                   {options.error_compensation, damping});
    if (!candidate) {
      if (!best) best = candidate;
      continue;
    }
    auto output = run_quantized(*candidate, calibration);
    if (!output) return output.error();
    const double error = (*output - reference).cwiseAbs().mean();
    if (error < best_error) {
      best_error = error;
      best = std::move(candidate);
    }
  }
  return best;
}

Result<MatrixXf> run_quantized(const QuantizedStudent& student, const MatrixXf& inputs) {
  const cc_student_model model = student.model();
  if (inputs.rows() != student.input_size)
    return invalid("inputs have " + std::to_string(inputs.rows()) + " rows, the model takes " +
                   std::to_string(student.input_size));
  if (!inputs.allFinite()) return invalid("inputs contain NaN or infinity");
  std::vector<int16_t> input(student.input_size);
  std::vector<int32_t> output(student.horizon);
  std::vector<int16_t> scratch(student.scratch_bytes() / sizeof(int16_t) + 1);
  const double s_x = student.input_scale(), s_y = student.output_scale();
  MatrixXf out(student.horizon, inputs.cols());
  for (int64_t col = 0; col < inputs.cols(); ++col) {
    for (int64_t i = 0; i < inputs.rows(); ++i) {
      const double v = std::round(static_cast<double>(inputs(i, col)) / s_x);
      input[static_cast<size_t>(i)] = static_cast<int16_t>(std::clamp(v, -32767.0, 32767.0));
    }
    if (cc_student_forecast(&model, input.data(), output.data(), scratch.data(),
                            scratch.size() * sizeof(int16_t)) != CC_OK) {
      return invalid("cc_student_forecast refused the quantized student");
    }
    for (int64_t o = 0; o < out.rows(); ++o)
      out(o, col) = static_cast<float>(output[static_cast<size_t>(o)] * s_y);
  }
  return out;
}

}  // namespace cyclecast::models
