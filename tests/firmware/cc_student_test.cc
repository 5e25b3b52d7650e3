// The int8 student runtime: the tanh table against std::tanh, a forward pass worked out by hand
// from the formulas in cc_student.h, descriptor validation and scratch checks.
#include "cyclecast/cc_student.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

TEST(CcTanhQ15, StaysWithinBoundOfTanhOverEveryInput) {
  double worst = 0.0;
  for (int32_t x = INT16_MIN; x <= INT16_MAX; ++x) {
    const double got = cc_tanh_q15(static_cast<int16_t>(x), cc_tanh_q15_table) / 32768.0;
    worst = std::max(worst, std::abs(got - std::tanh(x / 4096.0)));
  }
  RecordProperty("max_abs_error", std::to_string(worst));
  // Interpolation error h^2/8 * max|tanh''| = (1/32)^2 / 8 * 0.77 = 9.4e-5, plus half a Q15
  // step of table rounding and half of output rounding: 1.2e-4 bounds both.
  EXPECT_LT(worst, 1.2e-4);
}

TEST(CcTanhQ15, IsOddAndNonDecreasing) {
  int16_t previous = cc_tanh_q15(INT16_MIN + 1, cc_tanh_q15_table);
  for (int32_t x = INT16_MIN + 1; x <= INT16_MAX; ++x) {
    const int16_t y = cc_tanh_q15(static_cast<int16_t>(x), cc_tanh_q15_table);
    ASSERT_GE(y, previous) << x;
    ASSERT_EQ(y, -cc_tanh_q15(static_cast<int16_t>(-x), cc_tanh_q15_table)) << x;
    previous = y;
  }
  EXPECT_EQ(cc_tanh_q15(0, cc_tanh_q15_table), 0);
  EXPECT_EQ(cc_tanh_q15(INT16_MAX, cc_tanh_q15_table), 32767);
}

// A 2-input, 1-feature, 1-unit, 1-step, 1-output model small enough to follow by hand.
struct TinyModel {
  std::vector<int8_t> encoder_weight{64, -32}, lift_weight{10}, liquid_weight{0};
  std::vector<int8_t> bypass_weight{1}, head_weight{2};
  std::vector<int32_t> lift_bias{0}, liquid_bias{0}, head_bias{100};
  std::vector<int32_t> half{1 << 30}, alpha_q24{1 << 23}, beta_q24{1 << 24};
  std::vector<int8_t> shift0{0}, shift1{1}, shift_lift{-10};
  cc_student_model m{};

  TinyModel() {
    m.input_size = 2;
    m.features = 1;
    m.width = 1;
    m.horizon = 1;
    m.euler_steps = 1;
    m.hidden_frac_bits = 15;
    m.dt_q30 = 1 << 30;
    m.encoder_weight = encoder_weight.data();
    m.encoder_multiplier = half.data();  // x 0.5
    m.encoder_shift = shift0.data();
    m.lift_weight = lift_weight.data();
    m.lift_bias = lift_bias.data();
    m.lift_multiplier = half.data();  // x 0.5 / 1024
    m.lift_shift = shift_lift.data();
    m.liquid_weight = liquid_weight.data();
    m.liquid_bias = liquid_bias.data();
    m.liquid_multiplier = half.data();
    m.liquid_shift = shift0.data();
    m.liquid_alpha_q24 = alpha_q24.data();  // 0.5
    m.liquid_beta_q24 = beta_q24.data();    // 1.0
    m.bypass_weight = bypass_weight.data();
    m.head_bias = head_bias.data();
    m.bypass_multiplier = half.data();  // x 0.5 * 2 = 1
    m.bypass_shift = shift1.data();
    m.head_weight = head_weight.data();
    m.head_multiplier = half.data();  // x 0.5
    m.head_shift = shift0.data();
    m.tanh_table = cc_tanh_q15_table;
    m.input_scale_mantissa = 1 << 30;
    m.input_scale_exponent = 0;
    m.output_scale_mantissa = 1 << 30;
    m.output_scale_exponent = 0;
  }
};

TEST(CcStudentForecast, ComputesTheDocumentedIntegerFormulas) {
  TinyModel tiny;
  ASSERT_EQ(cc_student_validate(&tiny.m), CC_OK);
  const int16_t input[2] = {100, 50};
  int32_t output = 0;
  int16_t scratch[8];
  ASSERT_EQ(cc_student_forecast(&tiny.m, input, &output, scratch, sizeof scratch), CC_OK);
  // z = rq(64*100 - 32*50 = 4800, 0.5) = 2400
  // lift: rq(10 * 2400, 0.5 / 1024) = round(11.72) = 12 (Q12); tanh: (1024 * 12 + 64) >> 7 = 96
  // liquid: tanh(0) = 0, h = 96 + round(-0.5 * 96) = 48
  // head: rq(1 * 2400 + 100, 1.0) + rq(2 * 48, 0.5) = 2500 + 48
  EXPECT_EQ(scratch[0], 2400);
  EXPECT_EQ(scratch[1], 48);
  EXPECT_EQ(output, 2548);
}

TEST(CcStudentForecast, NeedsAlignedScratchOfTheAdvertisedSize) {
  TinyModel tiny;
  const int16_t input[2] = {1, 2};
  int32_t output = 0;
  int16_t scratch[8];
  const size_t needed = cc_student_scratch_bytes(&tiny.m);
  EXPECT_EQ(needed, 2u * (1 + 2 * 1));
  EXPECT_EQ(cc_student_forecast(&tiny.m, input, &output, scratch, needed - 1), CC_ERROR_SCRATCH);
  EXPECT_EQ(cc_student_forecast(&tiny.m, input, &output, nullptr, needed), CC_ERROR_SCRATCH);
  EXPECT_EQ(
      cc_student_forecast(&tiny.m, input, &output, reinterpret_cast<char*>(scratch) + 1, needed),
      CC_ERROR_SCRATCH);
  EXPECT_EQ(cc_student_forecast(&tiny.m, nullptr, &output, scratch, needed), CC_ERROR_ARGUMENT);
  EXPECT_EQ(cc_student_forecast(&tiny.m, input, &output, scratch, needed), CC_OK);
  EXPECT_EQ(cc_student_scratch_bytes(nullptr), 0u);
}

TEST(CcStudentValidate, RefusesEachBrokenParameter) {
  EXPECT_EQ(cc_student_validate(nullptr), CC_ERROR_ARGUMENT);
  const auto refuses = [](auto&& breaker) {
    TinyModel tiny;
    breaker(tiny);
    return cc_student_validate(&tiny.m) == CC_ERROR_MODEL;
  };
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.features = 0; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.euler_steps = 0; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.hidden_frac_bits = 16; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.dt_q30 = 0; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.dt_q30 = (1 << 30) + 1; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.liquid_weight = nullptr; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.head_bias = nullptr; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.encoder_weight[1] = INT8_MIN; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.half[0] = (1 << 30) - 1; }));  // not normalized
  EXPECT_TRUE(refuses([](TinyModel& t) { t.shift1[0] = 31; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.shift_lift[0] = -32; }));
  // 1 * 32768 + bias must fit int32: the accumulator bound.
  EXPECT_TRUE(refuses([](TinyModel& t) { t.head_bias[0] = INT32_MAX - 32767; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.tanh_table = nullptr; }));
  EXPECT_TRUE(refuses([](TinyModel& t) {
    static int16_t decreasing[CC_TANH_TABLE_SIZE];
    for (int i = 0; i < CC_TANH_TABLE_SIZE; ++i)
      decreasing[i] = static_cast<int16_t>(i == 0 ? 0 : 1000 - i);
    t.m.tanh_table = decreasing;
  }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.output_scale_mantissa = 5; }));
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.input_scale_exponent = 128; }));
  // The boundary itself is accepted: a zero multiplier (an all-zero row) and bias at the limit.
  EXPECT_FALSE(refuses([](TinyModel& t) { t.half[0] = 0; }));
  EXPECT_FALSE(refuses([](TinyModel& t) { t.head_bias[0] = INT32_MAX - 32768; }));
}

}  // namespace
