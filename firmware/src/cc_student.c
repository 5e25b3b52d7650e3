/* The int8 StudentModel forward pass; formats and ranges are documented in cc_student.h. */
#include "cyclecast/cc_student.h"

enum { kMaxAbsInput = 32768 }; /* |int16| bound used by the accumulator proof */

static int16_t saturate_s16(int32_t value) {
  if (value > INT16_MAX) return INT16_MAX;
  if (value < INT16_MIN) return INT16_MIN;
  return (int16_t)value;
}

static int32_t saturate_s32(int64_t value) {
  if (value > INT32_MAX) return INT32_MAX;
  if (value < INT32_MIN) return INT32_MIN;
  return (int32_t)value;
}

/* Rounded arithmetic right shift (ties towards +infinity), shift in [1, 62]. */
static int64_t round_shift(int64_t value, int32_t shift) {
  return (value + ((int64_t)1 << (shift - 1))) >> shift;
}

/*
 * sum_i w[i] * x[i]; the caller's model passed the row bound, so int32 cannot overflow. Unrolled
 * by four because on the Cortex-M4 the loop branch (2-4 cycles) otherwise costs as much as the
 * loads and the multiply-accumulate together (docs/firmware.md counts the cycles).
 */
static int32_t dot_s8_s16(const int8_t* w, const int16_t* x, uint16_t n) {
  int32_t acc = 0;
  uint32_t left = n;
  for (; left >= 4u; left -= 4u, w += 4, x += 4) {
    acc += (int32_t)w[0] * x[0];
    acc += (int32_t)w[1] * x[1];
    acc += (int32_t)w[2] * x[2];
    acc += (int32_t)w[3] * x[3];
  }
  for (; left > 0u; --left)
    acc += (int32_t)*w++ * *x++;
  return acc;
}

/* ---- validation ---------------------------------------------------------------------------- */

static int requant_params_ok(const int32_t* multiplier, const int8_t* shift, uint16_t n) {
  uint16_t i;
  if (multiplier == 0 || shift == 0) return 0;
  for (i = 0; i < n; ++i) {
    if (multiplier[i] != 0 && multiplier[i] < (1 << 30)) return 0;
    if (shift[i] < -31 || shift[i] > 30) return 0;
  }
  return 1;
}

/* Weights in [-127, 127] and, per row, sum |w| * 32768 + |bias| <= INT32_MAX. */
static int weights_ok(const int8_t* w, const int32_t* bias, uint16_t rows, uint16_t cols) {
  uint16_t r, c;
  if (w == 0) return 0;
  for (r = 0; r < rows; ++r) {
    const int8_t* row = w + (size_t)r * cols;
    int64_t bound = 0;
    for (c = 0; c < cols; ++c) {
      if (row[c] == INT8_MIN) return 0;
      bound += (row[c] < 0 ? -row[c] : row[c]) * (int64_t)kMaxAbsInput;
    }
    if (bias != 0) bound += bias[r] < 0 ? -(int64_t)bias[r] : (int64_t)bias[r];
    if (bound > INT32_MAX) return 0;
  }
  return 1;
}

static int tanh_table_ok(const int16_t* table) {
  int i;
  if (table == 0 || table[0] != 0) return 0;
  for (i = 1; i < CC_TANH_TABLE_SIZE; ++i) {
    if (table[i] < table[i - 1]) return 0;
  }
  return 1;
}

static int scale_ok(int32_t mantissa, int32_t exponent) {
  return mantissa >= (1 << 30) && exponent >= -126 && exponent <= 127;
}

static int dims_ok(const cc_student_model* m) {
  return m->input_size >= 1 && m->features >= 1 && m->width >= 1 && m->horizon >= 1 &&
         m->euler_steps >= 1 && m->hidden_frac_bits <= 15 && m->dt_q30 >= 1 &&
         m->dt_q30 <= (1 << 30);
}

cc_status cc_student_validate(const cc_student_model* m) {
  if (m == 0) return CC_ERROR_ARGUMENT;
  if (!dims_ok(m) || !tanh_table_ok(m->tanh_table) || m->liquid_alpha_q24 == 0 ||
      m->liquid_beta_q24 == 0 || m->head_bias == 0 || m->lift_bias == 0 || m->liquid_bias == 0) {
    return CC_ERROR_MODEL;
  }
  if (!weights_ok(m->encoder_weight, 0, m->features, m->input_size) ||
      !weights_ok(m->lift_weight, m->lift_bias, m->width, m->features) ||
      !weights_ok(m->liquid_weight, m->liquid_bias, m->width, m->width) ||
      !weights_ok(m->bypass_weight, m->head_bias, m->horizon, m->features) ||
      !weights_ok(m->head_weight, 0, m->horizon, m->width)) {
    return CC_ERROR_MODEL;
  }
  if (!requant_params_ok(m->encoder_multiplier, m->encoder_shift, m->features) ||
      !requant_params_ok(m->lift_multiplier, m->lift_shift, m->width) ||
      !requant_params_ok(m->liquid_multiplier, m->liquid_shift, m->width) ||
      !requant_params_ok(m->bypass_multiplier, m->bypass_shift, m->horizon) ||
      !requant_params_ok(m->head_multiplier, m->head_shift, m->horizon)) {
    return CC_ERROR_MODEL;
  }
  if (!scale_ok(m->input_scale_mantissa, m->input_scale_exponent) ||
      !scale_ok(m->output_scale_mantissa, m->output_scale_exponent)) {
    return CC_ERROR_MODEL;
  }
  return CC_OK;
}

size_t cc_student_scratch_bytes(const cc_student_model* m) {
  if (m == 0) return 0;
  return sizeof(int16_t) * ((size_t)m->features + 2u * (size_t)m->width);
}

/* ---- forward pass -------------------------------------------------------------------------- */

/* tanh of a requantized accumulator (Q12 pre-activation), as h in Q(frac_bits). */
static int16_t tanh_to_hidden(const cc_student_model* m, int32_t acc, int32_t multiplier,
                              int32_t shift) {
  const int16_t pre_q12 = saturate_s16(cc_requantize(acc, multiplier, shift));
  const int16_t t_q15 = cc_tanh_q15(pre_q12, m->tanh_table);
  const int32_t drop = 15 - (int32_t)m->hidden_frac_bits;
  return drop == 0 ? t_q15 : (int16_t)round_shift(t_q15, drop);
}

static void encode(const cc_student_model* m, const int16_t* input, int16_t* z) {
  uint16_t f;
  for (f = 0; f < m->features; ++f) {
    const int32_t acc =
        dot_s8_s16(m->encoder_weight + (size_t)f * m->input_size, input, m->input_size);
    z[f] = saturate_s16(cc_requantize(acc, m->encoder_multiplier[f], m->encoder_shift[f]));
  }
}

static void lift(const cc_student_model* m, const int16_t* z, int16_t* h) {
  uint16_t w;
  for (w = 0; w < m->width; ++w) {
    const int32_t acc =
        m->lift_bias[w] + dot_s8_s16(m->lift_weight + (size_t)w * m->features, z, m->features);
    h[w] = tanh_to_hidden(m, acc, m->lift_multiplier[w], m->lift_shift[w]);
  }
}

/*
 * h += dt (-alpha h + beta tanh(Wr h + b)). All tanh values are computed from the old h first
 * (into t, Q15), then h is updated in place. Products are int64: |alpha h| < 2^46.
 */
static void euler_step(const cc_student_model* m, int16_t* h, int16_t* t) {
  const int32_t frac_drop = 15 - (int32_t)m->hidden_frac_bits;
  uint16_t w;
  for (w = 0; w < m->width; ++w) {
    const int32_t acc =
        m->liquid_bias[w] + dot_s8_s16(m->liquid_weight + (size_t)w * m->width, h, m->width);
    const int16_t pre_q12 =
        saturate_s16(cc_requantize(acc, m->liquid_multiplier[w], m->liquid_shift[w]));
    t[w] = cc_tanh_q15(pre_q12, m->tanh_table);
  }
  for (w = 0; w < m->width; ++w) {
    /* Both terms in Q(24 + hidden_frac_bits). */
    const int64_t decay = -(int64_t)m->liquid_alpha_q24[w] * h[w];
    int64_t drive = (int64_t)m->liquid_beta_q24[w] * t[w];
    int64_t drift_q;
    int64_t delta;
    if (frac_drop > 0) drive = round_shift(drive, frac_drop);
    drift_q = round_shift(decay + drive, 24);              /* Q(hidden_frac_bits), |.| < 2^24 */
    delta = round_shift(drift_q * (int64_t)m->dt_q30, 30); /* |drift_q * dt| < 2^54 */
    h[w] = saturate_s16((int32_t)saturate_s32((int64_t)h[w] + delta));
  }
}

static void head(const cc_student_model* m, const int16_t* z, const int16_t* h, int32_t* output) {
  uint16_t o;
  for (o = 0; o < m->horizon; ++o) {
    const int32_t bypass_acc =
        m->head_bias[o] + dot_s8_s16(m->bypass_weight + (size_t)o * m->features, z, m->features);
    const int32_t head_acc = dot_s8_s16(m->head_weight + (size_t)o * m->width, h, m->width);
    const int64_t sum =
        (int64_t)cc_requantize(bypass_acc, m->bypass_multiplier[o], m->bypass_shift[o]) +
        (int64_t)cc_requantize(head_acc, m->head_multiplier[o], m->head_shift[o]);
    output[o] = saturate_s32(sum);
  }
}

cc_status cc_student_forecast(const cc_student_model* m, const int16_t* input, int32_t* output,
                              void* scratch, size_t scratch_bytes) {
  int16_t* z;
  int16_t* h;
  uint16_t s;
  if (m == 0 || input == 0 || output == 0) return CC_ERROR_ARGUMENT;
  if (scratch == 0 || ((uintptr_t)scratch & 1u) != 0u ||
      scratch_bytes < cc_student_scratch_bytes(m)) {
    return CC_ERROR_SCRATCH;
  }
  z = (int16_t*)scratch;
  h = z + m->features;
  encode(m, input, z);
  lift(m, z, h);
  for (s = 0; s < m->euler_steps; ++s)
    euler_step(m, h, h + m->width);
  head(m, z, h, output);
  return CC_OK;
}
