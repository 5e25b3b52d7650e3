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

/*
 * The seeded students: the original shape, and shapes whose dimensions are not multiples of the
 * DSP kernels' groups of four (docs/firmware.md, "DSP kernels") with output shifts at and above
 * -1 (cc_requantize's saturating range): bypass rows of 5, head rows of 11 (longer than the
 * short-row loop's 8) and of 1, a last row the short-row loop leaves to the general one, a
 * shape too small for the short-row loop at all, and input sizes that enter the paired encoder's
 * loop at each of its four groups.
 */
typedef struct {
  uint16_t in, features, width, horizon, steps;
  int8_t encoder_shift, lift_shift, liquid_shift, bypass_shift, head_shift;
  uint8_t shift_spread; /* shifts of a layer: its shift + (row % spread) */
} student_shape;

static const student_shape kShapes[] = {
    {24, 4, 8, 12, 3, -9, -9, -8, 0, -2, 1},
    {23, 5, 11, 13, 2, -9, -9, -8, 2, 1, 4},
    {102, 8, 6, 100, 1, -10, -9, -8, -1, 3, 5},
    {3, 1, 1, 2, 1, -8, -9, -8, 5, 6, 2},
    /* The paired encoder's loop entered at each of its four groups: 7 groups and a tail of 3
     * over three rows, 4 groups over two. */
    {31, 3, 5, 9, 1, -9, -9, -8, 0, -2, 3},
    {16, 2, 4, 6, 2, -9, -9, -8, 1, 0, 2},
};
enum {
  kShapeCount = sizeof kShapes / sizeof kShapes[0],
  kStudentForecastsPerShape = 16,
  kMaxIn = 102,
  kMaxFeatures = 8,
  kMaxWidth = 11,
  kMaxHorizon = 100
};

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

/* Multipliers in [2^30, 2^31 - 1] and shifts from the layer's, chosen so that typical
 * accumulators land inside the next format's range (and some saturate, which the checksum then
 * covers). */
static void random_requant(uint32_t* state, int32_t* multiplier, int8_t* shift, uint32_t n,
                           int8_t layer_shift, uint8_t spread) {
  uint32_t i;
  for (i = 0; i < n; ++i) {
    multiplier[i] = random_in(state, 1 << 30, 0x7FFFFFFF);
    shift[i] = (int8_t)(layer_shift + (int8_t)(i % spread));
  }
}

/* Column c of an n-column row in the paired encoder layout (cc_student.h): bits 0 and 1 swapped
 * within whole groups of four. */
static uint32_t paired_column(uint32_t c, uint32_t n) {
  if (c >= (n & ~3u)) return c;
  return (c & ~3u) | ((c & 1u) << 1) | ((c >> 1) & 1u);
}

/* 1 if the student's output for `input` is `expected` with the encoder's rows in the paired layout
 * too (the caller alternates 4-byte aligned and misaligned inputs: the DSP kernels' two paths). */
static int paired_layout_agrees(cc_student_model* m, const int16_t* input, const int32_t* expected,
                                void* scratch, size_t scratch_bytes) {
  static int8_t paired_w[kMaxFeatures * kMaxIn];
  static int32_t output[kMaxHorizon];
  const int8_t* const natural_w = m->encoder_weight;
  const uint32_t in = m->input_size, n = m->features * in;
  int agrees = 1;
  uint32_t i;
  for (i = 0; i < n; ++i)
    paired_w[i - i % in + paired_column(i % in, in)] = natural_w[i];
  /* The caller's descriptor, switched to the paired copy and back (a struct copy would call
   * memcpy, which the target's selftest does not link). */
  m->encoder_weight = paired_w;
  m->weight_layout = CC_STUDENT_LAYOUT_ENCODER_PAIRED;
  if (cc_student_validate(m) != CC_OK ||
      cc_student_forecast(m, input, output, scratch, scratch_bytes) != CC_OK)
    agrees = 0;
  for (i = 0; agrees && i < m->horizon; ++i)
    agrees = output[i] == expected[i];
  m->encoder_weight = natural_w;
  m->weight_layout = CC_STUDENT_LAYOUT_NATURAL;
  return agrees;
}

uint32_t cc_selftest_student_forecasts(void) {
  return kShapeCount * kStudentForecastsPerShape;
}

/* Folds kStudentForecastsPerShape forecasts of a seeded student of `shape` into hash; 0 if the
 * student was refused or a forecast failed. */
static uint32_t student_hash(const student_shape* shape, uint32_t* state, uint32_t hash) {
  static int8_t encoder_w[kMaxFeatures * kMaxIn], lift_w[kMaxWidth * kMaxFeatures],
      liquid_w[kMaxWidth * kMaxWidth];
  static int8_t bypass_w[kMaxHorizon * kMaxFeatures], head_w[kMaxHorizon * kMaxWidth];
  static int32_t lift_b[kMaxWidth], liquid_b[kMaxWidth], head_b[kMaxHorizon], alpha[kMaxWidth],
      beta[kMaxWidth];
  static int32_t encoder_m[kMaxFeatures], lift_m[kMaxWidth], liquid_m[kMaxWidth],
      bypass_m[kMaxHorizon], head_m[kMaxHorizon];
  static int8_t encoder_s[kMaxFeatures], lift_s[kMaxWidth], liquid_s[kMaxWidth],
      bypass_s[kMaxHorizon], head_s[kMaxHorizon];
  static int16_t inputs[kMaxIn + 2], scratch[kMaxFeatures + 2 * kMaxWidth];
  static int32_t output[kMaxHorizon];
  const uint32_t in = shape->in, features = shape->features, width = shape->width,
                 horizon = shape->horizon;
  cc_student_model m;
  int c;
  memset(&m, 0, sizeof m);
  m.input_size = shape->in;
  m.features = shape->features;
  m.width = shape->width;
  m.horizon = shape->horizon;
  m.euler_steps = shape->steps;
  m.hidden_frac_bits = 13;
  m.dt_q30 = (1 << 30) / shape->steps;
  random_bytes(state, encoder_w, features * in);
  random_bytes(state, lift_w, width * features);
  random_bytes(state, liquid_w, width * width);
  random_bytes(state, bypass_w, horizon * features);
  random_bytes(state, head_w, horizon * width);
  random_words(state, lift_b, width, -100000, 100000);
  random_words(state, liquid_b, width, -100000, 100000);
  random_words(state, head_b, horizon, -100000, 100000);
  random_words(state, alpha, width, 0, 1 << 25);
  random_words(state, beta, width, -(1 << 25), 1 << 25);
  random_requant(state, encoder_m, encoder_s, features, shape->encoder_shift, 1);
  random_requant(state, lift_m, lift_s, width, shape->lift_shift, 1);
  random_requant(state, liquid_m, liquid_s, width, shape->liquid_shift, 1);
  random_requant(state, bypass_m, bypass_s, horizon, shape->bypass_shift, shape->shift_spread);
  random_requant(state, head_m, head_s, horizon, shape->head_shift, shape->shift_spread);
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
  for (c = 0; c < kStudentForecastsPerShape; ++c) {
    /* Alternately 4-byte aligned and not. */
    int16_t* const input = (((uintptr_t)inputs & 2u) != 0u ? inputs + 1 : inputs) + (c & 1);
    uint32_t i;
    for (i = 0; i < in; ++i)
      input[i] = (int16_t)random_in(state, c == 0 ? INT16_MIN : -32767, 32767);
    if (cc_student_forecast(&m, input, output, scratch, sizeof scratch) != CC_OK) return 0;
    if (!paired_layout_agrees(&m, input, output, scratch, sizeof scratch)) return 0;
    hash = fnv1a(hash, (const uint8_t*)output, horizon * sizeof output[0]);
  }
  return hash;
}

uint32_t cc_selftest_student_checksum(void) {
  uint32_t state = 0x2545F491u;
  uint32_t hash = 2166136261u;
  uint32_t k;
  for (k = 0; k < kShapeCount; ++k) {
    hash = student_hash(&kShapes[k], &state, hash);
    if (hash == 0u) return 0;
  }
  return hash;
}
