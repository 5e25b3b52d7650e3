// The int8 student runtime: the tanh table against std::tanh, a forward pass worked out by hand
// and a plain reference written from the formulas in cc_student.h, descriptor validation and
// scratch checks.
#include "cyclecast/cc_student.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
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
  EXPECT_TRUE(refuses([](TinyModel& t) { t.m.weight_layout = 2; }));
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

// ---- a plain reference of the integer forward pass, from the header's formulas ----------------

__extension__ typedef __int128 Int128;

// round(value * multiplier * 2^shift / 2^31), ties up, saturated: in 128 bits, by floor division.
int64_t ref_requantize(int64_t value, int64_t multiplier, int shift) {
  const Int128 product = static_cast<Int128>(value) * multiplier;
  const Int128 divisor = static_cast<Int128>(1) << (31 - shift);
  Int128 quotient = product / divisor, remainder = product % divisor;
  if (remainder < 0) {
    quotient -= 1;
    remainder += divisor;
  }
  if (2 * remainder >= divisor) quotient += 1;
  return static_cast<int64_t>(std::clamp<Int128>(quotient, INT32_MIN, INT32_MAX));
}

int64_t ref_round_shift(int64_t value, int shift) {  // round(value / 2^shift), ties up
  return static_cast<int64_t>(std::floor((static_cast<long double>(value) + (1LL << (shift - 1))) /
                                         static_cast<long double>(1LL << shift)));
}

int64_t sat16(int64_t v) {
  return std::clamp<int64_t>(v, INT16_MIN, INT16_MAX);
}

int64_t ref_tanh(int64_t x_q12) {
  const int64_t magnitude = std::abs(x_q12), index = magnitude / 128, frac = magnitude % 128;
  int64_t value = cc_tanh_q15_table[CC_TANH_TABLE_SIZE - 1];
  if (index < CC_TANH_TABLE_SIZE - 1) {
    const int64_t low = cc_tanh_q15_table[index], high = cc_tanh_q15_table[index + 1];
    value = low + ref_round_shift((high - low) * frac, 7);
  }
  return x_q12 < 0 ? -value : value;
}

std::vector<int64_t> ref_dense(const int8_t* w, const int32_t* bias, const std::vector<int64_t>& x,
                               size_t rows) {
  std::vector<int64_t> out(rows);
  for (size_t r = 0; r < rows; ++r) {
    int64_t acc = bias != nullptr ? bias[r] : 0;
    for (size_t i = 0; i < x.size(); ++i)
      acc += w[r * x.size() + i] * x[i];
    out[r] = acc;
  }
  return out;
}

std::vector<int64_t> reference_forecast(const cc_student_model& m, const std::vector<int16_t>& in) {
  const int bits = m.hidden_frac_bits;
  const std::vector<int64_t> x(in.begin(), in.end());
  std::vector<int64_t> z = ref_dense(m.encoder_weight, nullptr, x, m.features);
  for (size_t f = 0; f < z.size(); ++f)
    z[f] = sat16(ref_requantize(z[f], m.encoder_multiplier[f], m.encoder_shift[f]));
  std::vector<int64_t> h = ref_dense(m.lift_weight, m.lift_bias, z, m.width);
  for (size_t w = 0; w < h.size(); ++w) {
    const int64_t t = ref_tanh(sat16(ref_requantize(h[w], m.lift_multiplier[w], m.lift_shift[w])));
    h[w] = bits == 15 ? t : ref_round_shift(t, 15 - bits);
  }
  for (int s = 0; s < m.euler_steps; ++s) {
    const std::vector<int64_t> acc = ref_dense(m.liquid_weight, m.liquid_bias, h, m.width);
    for (size_t w = 0; w < h.size(); ++w) {
      const int64_t t =
          ref_tanh(sat16(ref_requantize(acc[w], m.liquid_multiplier[w], m.liquid_shift[w])));
      int64_t drive = m.liquid_beta_q24[w] * t;
      if (bits < 15) drive = ref_round_shift(drive, 15 - bits);
      const int64_t drift = ref_round_shift(-m.liquid_alpha_q24[w] * h[w] + drive, 24);
      h[w] = sat16(h[w] + ref_round_shift(drift * m.dt_q30, 30));
    }
  }
  const std::vector<int64_t> bypass = ref_dense(m.bypass_weight, m.head_bias, z, m.horizon);
  const std::vector<int64_t> head = ref_dense(m.head_weight, nullptr, h, m.horizon);
  std::vector<int64_t> y(m.horizon);
  for (size_t o = 0; o < y.size(); ++o) {
    y[o] =
        std::clamp<int64_t>(ref_requantize(bypass[o], m.bypass_multiplier[o], m.bypass_shift[o]) +
                                ref_requantize(head[o], m.head_multiplier[o], m.head_shift[o]),
                            INT32_MIN, INT32_MAX);
  }
  return y;
}

// A random valid model: dimensions not multiples of the 4-way unroll, shifts chosen so that some
// values saturate and most do not.
struct RandomModel {
  std::vector<int8_t> ew, lw, rw, dw, gw, es, ls, rs, ds, gs;
  std::vector<int32_t> em, lb, lm, rb, rm, alpha, beta, c, dm, gm;
  cc_student_model m{};

  explicit RandomModel(std::mt19937& rng) {
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    m.input_size = static_cast<uint16_t>(pick(1, 45));
    m.features = static_cast<uint16_t>(pick(1, 9));
    m.width = static_cast<uint16_t>(pick(1, 13));
    m.horizon = static_cast<uint16_t>(pick(1, 11));
    m.euler_steps = static_cast<uint16_t>(pick(1, 4));
    m.hidden_frac_bits = static_cast<uint8_t>(pick(9, 15));
    m.dt_q30 = (1 << 30) / m.euler_steps;
    const size_t in = m.input_size, f = m.features, w = m.width, h = m.horizon;
    auto weights = [&](size_t n) {
      std::vector<int8_t> v(n);
      for (auto& x : v)
        x = static_cast<int8_t>(pick(-127, 127));
      return v;
    };
    auto words = [&](size_t n, int lo, int hi) {
      std::vector<int32_t> v(n);
      for (auto& x : v)
        x = pick(lo, hi);
      return v;
    };
    auto shifts = [&](size_t n, int lo, int hi) {
      std::vector<int8_t> v(n);
      for (auto& x : v)
        x = static_cast<int8_t>(pick(lo, hi));
      return v;
    };
    ew = weights(f * in), lw = weights(w * f), rw = weights(w * w), dw = weights(h * f);
    gw = weights(h * w);
    lb = words(w, -50000, 50000), rb = words(w, -50000, 50000), c = words(h, -50000, 50000);
    alpha = words(w, 0, 1 << 25), beta = words(w, -(1 << 25), 1 << 25);
    em = words(f, 1 << 30, INT32_MAX), lm = words(w, 1 << 30, INT32_MAX);
    rm = words(w, 1 << 30, INT32_MAX), dm = words(h, 1 << 30, INT32_MAX);
    gm = words(h, 1 << 30, INT32_MAX);
    es = shifts(f, -12, -6), ls = shifts(w, -12, -6), rs = shifts(w, -10, -4);
    ds = shifts(h, -2, 2), gs = shifts(h, -4, 0);
    m.encoder_weight = ew.data(), m.encoder_multiplier = em.data(), m.encoder_shift = es.data();
    m.lift_weight = lw.data(), m.lift_bias = lb.data(), m.lift_multiplier = lm.data();
    m.lift_shift = ls.data();
    m.liquid_weight = rw.data(), m.liquid_bias = rb.data(), m.liquid_multiplier = rm.data();
    m.liquid_shift = rs.data(), m.liquid_alpha_q24 = alpha.data(), m.liquid_beta_q24 = beta.data();
    m.bypass_weight = dw.data(), m.head_bias = c.data(), m.bypass_multiplier = dm.data();
    m.bypass_shift = ds.data();
    m.head_weight = gw.data(), m.head_multiplier = gm.data(), m.head_shift = gs.data();
    m.tanh_table = cc_tanh_q15_table;
    m.input_scale_mantissa = m.output_scale_mantissa = 1 << 30;
  }
};

TEST(CcStudentForecast, MatchesPlainReferenceBitForBitOnRandomModels) {
  std::mt19937 rng(21);
  for (int trial = 0; trial < 300; ++trial) {
    const RandomModel random(rng);
    ASSERT_EQ(cc_student_validate(&random.m), CC_OK) << trial;
    std::vector<int16_t> input(random.m.input_size);
    for (auto& v : input)
      v = static_cast<int16_t>(std::uniform_int_distribution<int>(INT16_MIN, INT16_MAX)(rng));
    std::vector<int32_t> output(random.m.horizon);
    std::vector<int16_t> scratch(cc_student_scratch_bytes(&random.m) / 2);
    ASSERT_EQ(cc_student_forecast(&random.m, input.data(), output.data(), scratch.data(),
                                  scratch.size() * 2),
              CC_OK);
    const std::vector<int64_t> expected = reference_forecast(random.m, input);
    ASSERT_EQ(std::vector<int64_t>(output.begin(), output.end()), expected) << "trial " << trial;
  }
}

// CC_STUDENT_LAYOUT_ENCODER_PAIRED (what the export writes): each encoder row's columns in pair
// order give the natural layout's bits, for any input size (whole groups and tails), at any input
// alignment (the DSP kernels take another path for an input that is not 4-byte aligned).
TEST(CcStudentForecast, ThePairedEncoderLayoutGivesTheNaturalLayoutsBits) {
  std::mt19937 rng(22);
  for (int trial = 0; trial < 200; ++trial) {
    RandomModel random(rng);
    const size_t in = random.m.input_size;
    std::vector<int8_t> paired(random.ew.size());
    for (size_t i = 0; i < paired.size(); ++i) {
      const size_t c = i % in, whole = in & ~size_t{3};
      const size_t slot = c >= whole ? c : (c & ~size_t{3}) | ((c & 1) << 1) | ((c >> 1) & 1);
      paired[i - c + slot] = random.ew[i];
    }
    cc_student_model pm = random.m;
    pm.encoder_weight = paired.data();
    pm.weight_layout = CC_STUDENT_LAYOUT_ENCODER_PAIRED;
    ASSERT_EQ(cc_student_validate(&pm), CC_OK) << trial;
    std::vector<int16_t> buffer(in + 2);
    for (auto& v : buffer)
      v = static_cast<int16_t>(std::uniform_int_distribution<int>(INT16_MIN, INT16_MAX)(rng));
    std::vector<int16_t> scratch(cc_student_scratch_bytes(&pm) / 2);
    for (size_t offset : {size_t{0}, size_t{1}}) {
      const int16_t* input = buffer.data() + offset;
      std::vector<int32_t> natural(random.m.horizon), out(random.m.horizon);
      ASSERT_EQ(
          cc_student_forecast(&random.m, input, natural.data(), scratch.data(), scratch.size() * 2),
          CC_OK);
      ASSERT_EQ(cc_student_forecast(&pm, input, out.data(), scratch.data(), scratch.size() * 2),
                CC_OK);
      ASSERT_EQ(out, natural) << "trial " << trial << " offset " << offset;
    }
  }
}

}  // namespace
