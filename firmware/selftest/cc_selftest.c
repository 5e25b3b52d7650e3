#include "cc_selftest.h"

#include "cyclecast/cc_nn.h"
#include "cyclecast/cc_student.h"

#include <string.h>

enum {
  kRequantizeCases = 4096, /* seeded (value, multiplier, shift) triples over the full ranges */
  kTanhCases = INT16_MAX - INT16_MIN + 1, /* every int16 input of cc_tanh_q15 */
  kCases = kRequantizeCases + kTanhCases
};

/* xorshift32: the same sequence on every target, unlike rand(). */
static uint32_t next_random(uint32_t* state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

static int32_t random_in(uint32_t* state, int32_t lo, int32_t hi) {
  return lo + (int32_t)(next_random(state) % (uint32_t)(hi - lo + 1));
}

static uint32_t fnv1a(uint32_t hash, const uint8_t* bytes, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; ++i) {
    hash ^= bytes[i];
    hash *= 16777619u;
  }
  return hash;
}

uint32_t cc_selftest_cases(void) {
  return kCases;
}

/* The shipped kernels on their own: cc_requantize over its whole documented argument range
 * (where the 64-bit product and shifts are most likely to differ between compilers), and
 * cc_tanh_q15 with the runtime's table over every input. */
uint32_t cc_selftest_checksum(void) {
  uint32_t state = 0x9E3779B9u;
  uint32_t hash = 2166136261u;
  int32_t c;
  for (c = 0; c < kRequantizeCases; ++c) {
    /* Every int32 value; multiplier 0 in one case of 16, else in [2^30, 2^31 - 1]. */
    const int32_t value = (int32_t)next_random(&state);
    const int32_t multiplier =
        (next_random(&state) & 15u) == 0u ? 0 : random_in(&state, 1 << 30, 0x7FFFFFFF);
    const int32_t shift = random_in(&state, -31, 30);
    const int32_t out = cc_requantize(value, multiplier, shift);
    hash = fnv1a(hash, (const uint8_t*)&out, sizeof out);
  }
  for (c = INT16_MIN; c <= INT16_MAX; ++c) {
    const int16_t out = cc_tanh_q15((int16_t)c, cc_tanh_q15_table);
    hash = fnv1a(hash, (const uint8_t*)&out, sizeof out);
  }
  return hash;
}

/* ---- the student runtime --------------------------------------------------------------------- */

enum { kStudentForecasts = 16, kIn = 24, kFeatures = 4, kWidth = 8, kHorizon = 12, kSteps = 3 };

static void random_bytes(uint32_t* state, int8_t* out, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; ++i)
    out[i] = (int8_t)random_in(state, -127, 127);
}

static void random_words(uint32_t* state, int32_t* out, uint32_t n, int32_t lo, int32_t hi) {
  uint32_t i;
  for (i = 0; i < n; ++i)
    out[i] = random_in(state, lo, hi);
}

/* Multipliers in [2^30, 2^31 - 1] and one shift per layer, chosen so that typical accumulators
 * land inside the next format's range (and some saturate, which the checksum then covers). */
static void random_requant(uint32_t* state, int32_t* multiplier, int8_t* shift, uint32_t n,
                           int8_t layer_shift) {
  uint32_t i;
  for (i = 0; i < n; ++i) {
    multiplier[i] = random_in(state, 1 << 30, 0x7FFFFFFF);
    shift[i] = layer_shift;
  }
}

uint32_t cc_selftest_student_forecasts(void) {
  return kStudentForecasts;
}

uint32_t cc_selftest_student_checksum(void) {
  static int8_t encoder_w[kFeatures * kIn], lift_w[kWidth * kFeatures], liquid_w[kWidth * kWidth];
  static int8_t bypass_w[kHorizon * kFeatures], head_w[kHorizon * kWidth];
  static int32_t lift_b[kWidth], liquid_b[kWidth], head_b[kHorizon], alpha[kWidth], beta[kWidth];
  static int32_t encoder_m[kFeatures], lift_m[kWidth], liquid_m[kWidth], bypass_m[kHorizon],
      head_m[kHorizon];
  static int8_t encoder_s[kFeatures], lift_s[kWidth], liquid_s[kWidth], bypass_s[kHorizon],
      head_s[kHorizon];
  static int16_t input[kIn], scratch[kFeatures + 2 * kWidth];
  static int32_t output[kHorizon];
  cc_student_model m;
  uint32_t state = 0x2545F491u;
  uint32_t hash = 2166136261u;
  int c;
  memset(&m, 0, sizeof m);
  m.input_size = kIn;
  m.features = kFeatures;
  m.width = kWidth;
  m.horizon = kHorizon;
  m.euler_steps = kSteps;
  m.hidden_frac_bits = 13;
  m.dt_q30 = (1 << 30) / kSteps;
  random_bytes(&state, encoder_w, sizeof encoder_w);
  random_bytes(&state, lift_w, sizeof lift_w);
  random_bytes(&state, liquid_w, sizeof liquid_w);
  random_bytes(&state, bypass_w, sizeof bypass_w);
  random_bytes(&state, head_w, sizeof head_w);
  random_words(&state, lift_b, kWidth, -100000, 100000);
  random_words(&state, liquid_b, kWidth, -100000, 100000);
  random_words(&state, head_b, kHorizon, -100000, 100000);
  random_words(&state, alpha, kWidth, 0, 1 << 25);
  random_words(&state, beta, kWidth, -(1 << 25), 1 << 25);
  random_requant(&state, encoder_m, encoder_s, kFeatures, -9);
  random_requant(&state, lift_m, lift_s, kWidth, -9);
  random_requant(&state, liquid_m, liquid_s, kWidth, -8);
  random_requant(&state, bypass_m, bypass_s, kHorizon, 0);
  random_requant(&state, head_m, head_s, kHorizon, -2);
  m.encoder_weight = encoder_w;
  m.encoder_multiplier = encoder_m;
  m.encoder_shift = encoder_s;
  m.lift_weight = lift_w;
  m.lift_bias = lift_b;
  m.lift_multiplier = lift_m;
  m.lift_shift = lift_s;
  m.liquid_weight = liquid_w;
  m.liquid_bias = liquid_b;
  m.liquid_multiplier = liquid_m;
  m.liquid_shift = liquid_s;
  m.liquid_alpha_q24 = alpha;
  m.liquid_beta_q24 = beta;
  m.bypass_weight = bypass_w;
  m.head_bias = head_b;
  m.bypass_multiplier = bypass_m;
  m.bypass_shift = bypass_s;
  m.head_weight = head_w;
  m.head_multiplier = head_m;
  m.head_shift = head_s;
  m.tanh_table = cc_tanh_q15_table;
  m.input_scale_mantissa = 1 << 30;
  m.output_scale_mantissa = 1 << 30;
  if (cc_student_validate(&m) != CC_OK) return 0;
  for (c = 0; c < kStudentForecasts; ++c) {
    uint32_t i;
    for (i = 0; i < kIn; ++i)
      input[i] = (int16_t)random_in(&state, -32767, 32767);
    if (cc_student_forecast(&m, input, output, scratch, sizeof scratch) != CC_OK) return 0;
    hash = fnv1a(hash, (const uint8_t*)output, sizeof output);
  }
  return hash;
}
