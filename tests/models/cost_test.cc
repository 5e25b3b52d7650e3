// The cost model against the quantizer's real arrays and the runtime's own scratch size.
#include "cyclecast/models/cost.h"

#include <gtest/gtest.h>

#include "cyclecast/models/quantize.h"
#include "cyclecast/models/tensor.h"

namespace cyclecast::models {
namespace {

QuantizedStudent quantized(const StudentShape& s) {
  Rng rng(9);
  auto random = [&](int64_t rows, int64_t cols) {
    Eigen::MatrixXf m(rows, cols);
    for (int64_t i = 0; i < m.size(); ++i)
      m.data()[i] = static_cast<float>(rng.uniform(-0.3, 0.3));
    return m;
  };
  StudentWeights w;
  w.E = random(s.features, s.input_size);
  w.A = random(s.width, s.features);
  w.Wr = random(s.width, s.width);
  w.D = random(s.horizon, s.features);
  w.G = random(s.horizon, s.width);
  w.a = random(s.width, 1);
  w.b = random(s.width, 1);
  w.alpha = random(s.width, 1).array() + 1.0f;
  w.beta = random(s.width, 1).array() + 1.0f;
  w.c = random(s.horizon, 1);
  w.steps = static_cast<int>(s.euler_steps);
  auto q = quantize_student(w, random(s.input_size, 30));
  EXPECT_TRUE(q.ok()) << q.error().message;
  return q.ok() ? std::move(*q) : QuantizedStudent{};
}

template <typename T>
int64_t bytes(const std::vector<T>& v) {
  return static_cast<int64_t>(v.size() * sizeof(T));
}

TEST(StudentCost, CountsExactlyTheQuantizerArrays) {
  const StudentShape shape{37, 5, 9, 2, 11};
  const QuantizedStudent q = quantized(shape);
  const int64_t weights = bytes(q.encoder_weight) + bytes(q.lift_weight) + bytes(q.liquid_weight) +
                          bytes(q.bypass_weight) + bytes(q.head_weight);
  const int64_t others = bytes(q.encoder_multiplier) + bytes(q.encoder_shift) + bytes(q.lift_bias) +
                         bytes(q.lift_multiplier) + bytes(q.lift_shift) + bytes(q.liquid_bias) +
                         bytes(q.liquid_multiplier) + bytes(q.liquid_shift) +
                         bytes(q.liquid_alpha_q24) + bytes(q.liquid_beta_q24) + bytes(q.head_bias) +
                         bytes(q.bypass_multiplier) + bytes(q.bypass_shift) +
                         bytes(q.head_multiplier) + bytes(q.head_shift);
  const StudentCost cost = student_cost(shape);
  EXPECT_EQ(cost.weight_bytes, weights);
  EXPECT_EQ(cost.other_bytes, others);
  // The blob is the same arrays plus a 38-byte header and a 4-byte CRC.
  EXPECT_EQ(static_cast<int64_t>(serialize_quantized_student(q).size()), weights + others + 38 + 4);
  EXPECT_EQ(cost.scratch_bytes, static_cast<int64_t>(q.scratch_bytes()));
  const CostConstants k;
  EXPECT_EQ(cost.flash_bytes,
            weights + others + k.tanh_table_bytes + k.descriptor_bytes + k.runtime_code_bytes);
}

TEST(StudentCost, DefaultStudentMacsAndTimeByHand) {
  const StudentCost cost = student_cost(StudentShape{});
  // 8*101 + 16*8 + 1*16*16 + 100*8 + 100*16
  EXPECT_EQ(cost.macs, 808 + 128 + 256 + 800 + 1600);
  // F I + (W F + W) + 2 W + (W^2 + W) + H F + (H W + H), as student_parameter_count.
  EXPECT_EQ(cost.parameters, 808 + (128 + 16) + 32 + (256 + 16) + 800 + (1600 + 100));
  EXPECT_DOUBLE_EQ(cost.milliseconds, static_cast<double>(cost.cycles) / 64e3);
  EXPECT_EQ(cost.ram_bytes, 2 * (8 + 32) + 2 * 101 + 4 * 100 + CostConstants{}.stack_bytes);
}

TEST(StudentCost, GrowsWithWidthAndEulerSteps) {
  const StudentCost base = student_cost(StudentShape{});
  StudentShape wider;
  wider.width = 32;
  StudentShape deeper;
  deeper.euler_steps = 4;
  EXPECT_GT(student_cost(wider).flash_bytes, base.flash_bytes);
  EXPECT_GT(student_cost(wider).cycles, base.cycles);
  EXPECT_EQ(student_cost(deeper).flash_bytes, base.flash_bytes);  // steps reuse the weights
  EXPECT_EQ(student_cost(deeper).macs, base.macs + int64_t{3} * 16 * 16);
  EXPECT_GT(student_cost(deeper).cycles, base.cycles);
}

TEST(StudentCost, ShapeFromAnyConfigWithStudentConfigFields) {
  struct Config {
    int64_t input_size = 3, features = 4, width = 5, euler_steps = 6, horizon = 7;
  };
  const StudentShape s = student_shape(Config{});
  EXPECT_EQ(s.input_size, 3);
  EXPECT_EQ(s.features, 4);
  EXPECT_EQ(s.width, 5);
  EXPECT_EQ(s.euler_steps, 6);
  EXPECT_EQ(s.horizon, 7);
}

}  // namespace
}  // namespace cyclecast::models
