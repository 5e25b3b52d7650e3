// int8 post-training quantization of the StudentModel for firmware/cc_student (one integer
// implementation, shared by the host's scoring and the node).
//
// quantize_student() turns float weights plus calibration inputs into a QuantizedStudent: int8
// weights with one scale per output row, quantized column by column with error compensation
// (GPTQ / Optimal Brain Quantization: after rounding column i, the columns not yet quantized absorb
// the error through the inverse of the layer's damped calibration Hessian X X^T), int16
// activations with per-tensor scales from calibration ranges, int32 biases, Q31 requantization.
// run_quantized() scores it by calling cc_student_forecast, the same C code the node runs.
// docs/firmware.md documents the formats and the blob.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <span>
#include <vector>

#include "cyclecast/cc_student.h"
#include "cyclecast/models/student.h"
#include "cyclecast/result.h"

namespace cyclecast::models {

// Float weights of one student (architecture id 4, student.h):
//   z = E x;  h0 = tanh(A z + a);  h += dt (-alpha .* h + beta .* tanh(Wr h + b)) `steps` times,
//   dt = 1 / steps;  y = D z + G h + c.
// Shapes: E features x input, A width x features, Wr width x width, D horizon x features,
// G horizon x width; a, alpha, beta, b: width; c: horizon.
struct StudentWeights {
  Eigen::MatrixXf E, A, Wr, D, G;
  Eigen::VectorXf a, alpha, beta, b, c;
  int steps = 1;
};

// Copies the tensors of a StudentModel out of its flat parameter vector (layout().size() values).
template <typename S>
StudentWeights student_weights(const StudentModel<S>& model, const S* params) {
  const StudentConfig& c = model.config();
  const StudentTensors& t = model.tensors();
  const auto matrix = [&](int64_t offset, int64_t rows, int64_t cols) -> Eigen::MatrixXf {
    return ConstMatrixMap<S>(params + offset, rows, cols).template cast<float>();
  };
  const auto vector = [&](int64_t offset, int64_t size) -> Eigen::VectorXf {
    return ConstVectorMap<S>(params + offset, size).template cast<float>();
  };
  StudentWeights w;
  w.E = matrix(t.encoder, c.features, c.input_size);
  w.A = matrix(t.lift, c.width, c.features);
  w.Wr = matrix(t.recurrent, c.width, c.width);
  w.D = matrix(t.bypass, c.horizon, c.features);
  w.G = matrix(t.head, c.horizon, c.width);
  w.a = vector(t.lift_bias, c.width);
  w.alpha = vector(t.alpha, c.width);
  w.beta = vector(t.beta, c.width);
  w.b = vector(t.liquid_bias, c.width);
  w.c = vector(t.head_bias, c.horizon);
  w.steps = static_cast<int>(c.euler_steps);
  return w;
}

// Checks the shapes above (and steps >= 1, every dimension <= 65535, finite values).
Result<void> check_student_weights(const StudentWeights& weights);

// The float forward pass: inputs input_size x n -> outputs horizon x n (the reference the int8
// model approximates; weights must have passed check_student_weights).
Eigen::MatrixXf student_forward_float(const StudentWeights& weights, const Eigen::MatrixXf& inputs);

struct QuantizeOptions {
  // true: GPTQ/OBQ error compensation; false: round each weight to nearest (a baseline for tests
  // and reports: on the bypass encoder it is several times worse).
  bool error_compensation = true;
  // Added to the Hessian's diagonal as a fraction of its mean diagonal, so that the inverse exists
  // for the strongly correlated inputs of SOH windows. Less damping compensates more exactly but
  // can overshoot the int8 range; every candidate is tried and the one whose int8 forecasts are
  // closest to float on the calibration inputs (mean absolute error) is kept.
  std::vector<double> dampings = {1e-2, 1e-3, 1e-4, 1e-5};
  // Activation ranges are the calibration max |value| times this margin, so that inputs slightly
  // beyond the calibration set do not saturate.
  double range_margin = 1.25;
};

// Owns every array of one quantized student. model() returns a view whose pointers stay valid
// while this object lives and is not modified (moving it keeps them valid; copying gives a copy
// whose model() points at the copy).
class QuantizedStudent {
 public:
  uint16_t input_size = 0, features = 0, width = 0, horizon = 0, euler_steps = 0;
  uint16_t hidden_frac_bits = 0;
  int32_t dt_q30 = 0;
  std::vector<int8_t> encoder_weight, encoder_shift;
  std::vector<int32_t> encoder_multiplier;
  std::vector<int8_t> lift_weight, lift_shift;
  std::vector<int32_t> lift_bias, lift_multiplier;
  std::vector<int8_t> liquid_weight, liquid_shift;
  std::vector<int32_t> liquid_bias, liquid_multiplier, liquid_alpha_q24, liquid_beta_q24;
  std::vector<int8_t> bypass_weight, bypass_shift, head_weight, head_shift;
  std::vector<int32_t> head_bias, bypass_multiplier, head_multiplier;
  int32_t input_scale_mantissa = 0, input_scale_exponent = 0;
  int32_t output_scale_mantissa = 0, output_scale_exponent = 0;
  // Half-width of the prediction interval at each horizon step, in integers of the output scale:
  // the interval is forecast[k] -/+ interval_half_width[k] (saturated to int32). Empty: the model
  // has no interval (a blob of version 1); otherwise `horizon` entries in [0, 2^30].
  std::vector<int32_t> interval_half_width;

  cc_student_model model() const;
  // real = scale * integer, exactly the value the firmware's mantissa/exponent pair denotes.
  double input_scale() const;
  double output_scale() const;
  size_t scratch_bytes() const;
};

// The encoder's weights in one of cc_student.h's weight layouts (CC_STUDENT_LAYOUT_*): natural, as
// QuantizedStudent holds them, or each row's columns in pair order (whole groups of four stored
// [w0, w2, w1, w3]), the order the Cortex-M4 DSP kernels use as loaded. Any other layout value is
// a programming error (asserted).
std::vector<int8_t> encoder_weight_in_layout(const QuantizedStudent& student, uint32_t layout);

// Compact little-endian blob for shipping a quantized student (bundles carry it, docs/bundles.md):
//   "CCQ8" magic, u16 version, u16 dims..., i32 parameters, every array in the order of
//   QuantizedStudent's fields, [version 2: the interval table, H i32], u32 CRC-32 (IEEE) of
//   everything before it. docs/firmware.md. A student without an interval table is written as
//   version 1, byte for byte what builds before intervals wrote and read. The version field's low
//   byte is that version, its high byte layout flags: with encoder_layout
//   CC_STUDENT_LAYOUT_ENCODER_PAIRED (what the export writes into the node's blob) the encoder's
//   rows are stored in pair order and flag 0x01 is set; CC_STUDENT_LAYOUT_NATURAL (the default)
//   writes the bytes builds before the flag wrote.
std::vector<uint8_t> serialize_quantized_student(
    const QuantizedStudent& student, uint32_t encoder_layout = CC_STUDENT_LAYOUT_NATURAL);
// Reads versions 1 and 2, with or without the paired-encoder flag; the result is always in natural
// layout. Refuses wrong magic (kParse), another version or an unknown flag (kUnsupported),
// truncation, trailing bytes, a bad CRC, an interval entry outside [0, 2^30] or a model
// cc_student_validate refuses (kCorrupt).
Result<QuantizedStudent> deserialize_quantized_student(std::span<const uint8_t> bytes);

// calibration: input_size x n float inputs (training windows), n >= 1. The result has passed
// cc_student_validate.
Result<QuantizedStudent> quantize_student(const StudentWeights& weights,
                                          const Eigen::MatrixXf& calibration,
                                          const QuantizeOptions& options = {});

// Runs the int8 model on float inputs (input_size x n): quantizes them with the input scale
// (saturating), calls cc_student_forecast per column, dequantizes -> horizon x n.
Result<Eigen::MatrixXf> run_quantized(const QuantizedStudent& student,
                                      const Eigen::MatrixXf& inputs);

}  // namespace cyclecast::models
