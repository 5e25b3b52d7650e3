/* The int8 StudentModel forward pass; formats and ranges are documented in cc_student.h. */
#include "cyclecast/cc_student.h"

/* The DSP kernels where the compiler targets the Cortex-M4's DSP extension (the Nano, QEMU's
 * mps2-an386), unless CC_STUDENT_PORTABLE asks for the reference kernels; the host builds the
 * portable ones. */
#if defined(__ARM_FEATURE_DSP) && !defined(CC_STUDENT_PORTABLE)
#define CC_STUDENT_DSP 1
#include <arm_acle.h>
#include <string.h>
#else
#define CC_STUDENT_DSP 0
#endif

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
 * Slot of element i of an n-vector in pair order: bits 0 and 1 swapped within whole groups of
 * four, a tail of n % 4 in place. Its own inverse. The DSP kernels keep z and h in this order, and
 * CC_STUDENT_LAYOUT_ENCODER_PAIRED stores each encoder row's columns so.
 */
#if defined(__GNUC__)
__attribute__((always_inline)) /* in the DSP kernels' loops; a call would cost more */
#endif
static inline uint32_t
pair_slot(uint32_t i, uint32_t n) {
  if (i >= (n & ~3u)) return i;
  return (i & ~3u) | ((i & 1u) << 1) | ((i >> 1) & 1u);
}

/*
 * sum_i w[i] * x[i] for a row stored in pair order (weight i of the row at w[pair_slot(i, n)]),
 * x in natural order: an encoder row of CC_STUDENT_LAYOUT_ENCODER_PAIRED. The portable
 * encoder's kernel for that layout, and the DSP one's for an input that is not 4-byte aligned.
 */
static int32_t dot_paired_s8_s16(const int8_t* w, const int16_t* x, uint32_t n) {
  int32_t acc = 0;
  uint32_t left = n;
  for (; left >= 4u; left -= 4u, w += 4, x += 4) {
    acc += (int32_t)w[0] * x[0];
    acc += (int32_t)w[1] * x[2];
    acc += (int32_t)w[2] * x[1];
    acc += (int32_t)w[3] * x[3];
  }
  for (; left > 0u; --left)
    acc += (int32_t)*w++ * *x++;
  return acc;
}

/*
 * sum_i w[i] * x[i]; the caller's model passed the row bound, so int32 cannot overflow. Unrolled
 * by four because on the Cortex-M4 the loop branch (2-4 cycles) otherwise costs as much as the
 * loads and the multiply-accumulate together (docs/firmware.md counts the cycles). The portable
 * kernel: the host's, and the reference every DSP kernel below is tested against bit for bit.
 */
#if !CC_STUDENT_DSP
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
#endif

#if CC_STUDENT_DSP
/*
 * Cortex-M4 DSP kernels (docs/firmware.md, "DSP kernels"). SXTB16 widens bytes 0 and 2 of a
 * weight word into two int16 lanes ([w0, w2]; rotated by 8: [w1, w3]) and SMLAD multiplies two
 * lane pairs and adds both products to the accumulator in one instruction. The activations must
 * then come in the same lane order: the runtime's own vectors (z, h) are stored in "pair order",
 * each group of four [a0, a2, a1, a3] (pair_slot), a tail of n % 4 in natural order. The caller's
 * input is in natural order, so for it the weights move instead: the export stores each encoder
 * row in pair order (CC_STUDENT_LAYOUT_ENCODER_PAIRED), and SXTB16 then gives the input words'
 * pairs as loaded (dot4_paired); a model in natural layout has its input paired on the fly
 * (PKHBT/PKHTB) once for three weight rows (dot3_natural). Every
 * product and sum is the portable kernel's, so results are bit-identical (exact int32 sums, the
 * row bound holds for any order). The requantization and the head's saturated sum are the
 * portable ones rewritten for the Cortex-M4 (requantize, QADD), also bit-identical. Loops that
 * -Os compiled with spills are written in assembly (dot3_natural, dot4_paired, dots_short,
 * dots8_quads).
 */
/* The kernels are inlined into their loops: a call costs more than a short row's MACs. */
#define CC_KERNEL static inline __attribute__((always_inline))
/* A loop of its own: inlined into its caller, -Os spills the caller's values inside it. */
#define CC_NOINLINE static __attribute__((noinline))

CC_KERNEL uint32_t load_u32(const void* p) {
  uint32_t word;
  memcpy(&word, p, sizeof word); /* one LDR: the Cortex-M4 loads unaligned words */
  return word;
}

/* SXTB16 of the word rotated by 8 ([w1, w3]) in one instruction (GCC keeps the rotation apart). */
CC_KERNEL int32_t sxtb16_ror8(uint32_t w) {
  int32_t lanes;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(lanes) : "r"(w));
  return lanes;
}

/* Four products of one weight word with one pair-ordered group ([x0, x2], [x1, x3]). */
CC_KERNEL int32_t mac4(uint32_t w, uint32_t x02, uint32_t x13, int32_t acc) {
  acc = __smlad(__sxtb16((int32_t)w), (int32_t)x02, acc);
  return __smlad(sxtb16_ror8(w), (int32_t)x13, acc);
}

/*
 * acc + sum_i w[i] * x[i] with x in pair order, x_end = x + n; *w is advanced past the row, so
 * that consecutive rows need no stride arithmetic. One group of four per iteration: -Os keeps
 * this loop in registers where a wider unroll spilled them in the head's loop.
 */
CC_KERNEL int32_t dot_pair(const int8_t** w, const int16_t* x, const int16_t* x_end, int32_t acc) {
  const int8_t* row = *w;
  const int16_t* groups_end = x + ((uint32_t)(x_end - x) & ~3u);
  for (; x != groups_end; x += 4, row += 4)
    acc = mac4(load_u32(row), load_u32(x), load_u32(x + 2), acc);
  for (; x != x_end; ++x)
    acc += (int32_t)*row++ * *x;
  *w = row;
  return acc;
}

/*
 * acc[r] = w_r . x for three rows of n weights (w_r = rows[r]), x in natural order (the caller's
 * input). Each group of four inputs is paired once (PKHBT/PKHTB) for the three rows:
 * 19 instructions per 12 MACs plus the loop's 2 (1.75 per MAC). Written in assembly: -Os spills
 * this loop's twelve live values.
 */
CC_NOINLINE void dot3_natural(const int8_t* const* rows, const int16_t* x, uint32_t n,
                              int32_t* acc) {
  const int8_t* w0 = rows[0];
  const int8_t* w1 = rows[1];
  const int8_t* w2 = rows[2];
  const int16_t* const x_end = x + (n & ~3u);
  int32_t a0 = 0, a1 = 0, a2 = 0;
  if (x != x_end) {
    uint32_t x02, x13, word, t;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[word], [%[x]], #4\n\t" /* [x0, x1] */
        "ldr %[x13], [%[x]], #4\n\t"  /* [x2, x3] */
        "pkhbt %[x02], %[word], %[x13], lsl #16\n\t"
        "pkhtb %[x13], %[x13], %[word], asr #16\n\t"
        "ldr %[word], [%[w0]], #4\n\t"
        "sxtb16 %[t], %[word]\n\t"
        "smlad %[a0], %[t], %[x02], %[a0]\n\t"
        "sxtb16 %[t], %[word], ror #8\n\t"
        "smlad %[a0], %[t], %[x13], %[a0]\n\t"
        "ldr %[word], [%[w1]], #4\n\t"
        "sxtb16 %[t], %[word]\n\t"
        "smlad %[a1], %[t], %[x02], %[a1]\n\t"
        "sxtb16 %[t], %[word], ror #8\n\t"
        "smlad %[a1], %[t], %[x13], %[a1]\n\t"
        "ldr %[word], [%[w2]], #4\n\t"
        "sxtb16 %[t], %[word]\n\t"
        "smlad %[a2], %[t], %[x02], %[a2]\n\t"
        "sxtb16 %[t], %[word], ror #8\n\t"
        "smlad %[a2], %[t], %[x13], %[a2]\n\t"
        "cmp %[x], %[x_end]\n\t"
        "bne 1b"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2),
          [x] "+r"(x), [x02] "=&r"(x02), [x13] "=&r"(x13), [word] "=&r"(word), [t] "=&r"(t)
        : [x_end] "r"(x_end)
        : "cc", "memory");
  }
  for (n &= 3u; n > 0u; --n, ++x) {
    a0 += (int32_t)*w0++ * *x;
    a1 += (int32_t)*w1++ * *x;
    a2 += (int32_t)*w2++ * *x;
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2;
}

/* One group of four columns for four rows (dot4_paired): the input's two words, then per row one
 * weight word whose SXTB16 lanes are [w0, w1] and, rotated by 8, [w2, w3] (the paired layout). */
/* clang-format off */
#define CC_ROW_PAIRED(load, acc)                      \
  load "\n\t"                                         \
  "sxtb16 %[t], %[w]\n\t"                             \
  "smlad %[" acc "], %[t], %[xa], %[" acc "]\n\t"      \
  "sxtb16 %[t], %[w], ror #8\n\t"                     \
  "smlad %[" acc "], %[t], %[xb], %[" acc "]\n\t"
#define CC_GROUP_PAIRED                               \
  "ldrd %[xa], %[xb], [%[x]], #8\n\t"                 \
  CC_ROW_PAIRED("ldr %[w], [%[p0], %[stride]]", "a1") \
  CC_ROW_PAIRED("ldr %[w], [%[p0]], #4", "a0")        \
  CC_ROW_PAIRED("ldr %[w], [%[p2], %[stride]]", "a3") \
  CC_ROW_PAIRED("ldr %[w], [%[p2]], #4", "a2")
/* clang-format on */

/*
 * acc[] = the dots of the rows at p0, p0 + stride, p2, p2 + stride (n columns each, stored in
 * pair order: CC_STUDENT_LAYOUT_ENCODER_PAIRED) with x (natural order, 4-byte aligned: LDRD).
 * Each group of four inputs is loaded once (one LDRD) for the four rows, and used as loaded:
 * 21 instructions per 16 MACs; four groups per pass of the loop, 86 per 64 MACs (1.34), entered
 * at the group that leaves a whole number of passes. Assembly: -Os spills these 13 live values.
 */
CC_NOINLINE void dot4_paired(const int8_t* p0, const int8_t* p2, uint32_t stride, const int16_t* x,
                             uint32_t n, int32_t* acc) {
  const int16_t* const x_end = x + (n & ~3u);
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  uint32_t tail;
  if (x != x_end) {
    uint32_t xa, xb, w, t;
    __asm__ volatile(
        "sub %[t], %[x_end], %[x]\n\t" /* 8 bytes per group */
        "and %[t], %[t], #24\n\t"      /* (groups % 4) * 8: where to enter the loop */
        "cmp %[t], #16\n\t"
        "beq 3f\n\t"
        "bhi 2f\n\t"
        "cmp %[t], #8\n\t"
        "beq 4f\n"
        "1:\n\t" CC_GROUP_PAIRED "2:\n\t" CC_GROUP_PAIRED "3:\n\t" CC_GROUP_PAIRED
        "4:\n\t" CC_GROUP_PAIRED
        "cmp %[x], %[x_end]\n\t"
        "bne 1b"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p0] "+r"(p0), [p2] "+r"(p2),
          [x] "+r"(x), [xa] "=&r"(xa), [xb] "=&r"(xb), [w] "=&r"(w), [t] "=&r"(t)
        : [x_end] "r"(x_end), [stride] "r"(stride)
        : "cc", "memory");
  }
  for (tail = n & 3u; tail > 0u; --tail, ++x) { /* the tail is in natural order */
    const int32_t v = *x;
    a1 += (int32_t)p0[stride] * v;
    a0 += (int32_t)*p0++ * v;
    a3 += (int32_t)p2[stride] * v;
    a2 += (int32_t)*p2++ * v;
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}
#undef CC_GROUP_PAIRED
#undef CC_ROW_PAIRED

/*
 * cc_requantize, bit for bit, for validated parameters (multiplier in [0, 2^31 - 1], shift in
 * [-31, 30]) without its int64 rounding and variable int64 shift. With P = value * multiplier and
 * right = 31 - shift, cc_requantize is sat32(floor((P + 2^(right - 1)) / 2^right)).
 * - shift <= -2 (right >= 33): the rounding constant only reaches P's high word, so the result is
 *   that word rounded by 2^(right - 33), and it cannot leave int32.
 * - shift >= -1 (right <= 32): with left = 32 - right = shift + 1 in [0, 31], the result is the
 *   high word of P * 2^left + 2^31, saturated; when P * 2^left leaves int64, the result is beyond
 *   int32 too (|P * 2^left| >= 2^63), so it saturates towards P's sign. Where value * 2^left
 *   itself fits in int32 (the common case) that high word is one SMMULR.
 */
CC_KERNEL int32_t requantize(int32_t value, int32_t multiplier, int32_t shift) {
  const int64_t product = (int64_t)value * multiplier;
  const int32_t high = (int32_t)(product >> 32);
  if (shift <= -2) {
    const int32_t drop = -1 - shift; /* in [1, 30]; |high| < 2^30 */
    return (high + ((int32_t)1 << (drop - 1))) >> drop;
  } else {
    const uint32_t left = (uint32_t)(shift + 1);
    const int32_t scaled = (int32_t)((uint32_t)value << left);
    if ((scaled >> left) == value) {
      /* value * 2^left fits: SMMULR gives high(scaled * multiplier + 2^31) in one instruction. */
      int32_t rounded;
      __asm__("smmulr %0, %1, %2" : "=r"(rounded) : "r"(scaled), "r"(multiplier));
      return rounded;
    } else {
      const uint32_t low = (uint32_t)product;
      const int32_t top = (int32_t)((uint32_t)high << left);
      if ((top >> left) != high) return high < 0 ? INT32_MIN : INT32_MAX;
      /* (low >> 1) >> (31 - left) is low >> (32 - left), and 0 for left 0, without a shift by
       * 32; the last bit shifted out of low is the carry of + 2^31. */
      return __qadd(top | (int32_t)((low >> 1) >> (31u - left)), (int32_t)((low << left) >> 31));
    }
  }
}
#else
#define requantize cc_requantize
#endif

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
         m->dt_q30 <= (1 << 30) &&
         (m->weight_layout == CC_STUDENT_LAYOUT_NATURAL ||
          m->weight_layout == CC_STUDENT_LAYOUT_ENCODER_PAIRED);
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

#if CC_STUDENT_DSP
/* The forward pass on the DSP kernels: the same arithmetic as the portable one below; z and h
 * are kept in pair order (pair_slot), t in natural order. */
/*
 * The encoder over paired weights and a 4-byte aligned input: rows four at a time (dot4_paired
 * takes rows p0, p0 + n, p2, p2 + n); where fewer than four are left, rows are read twice and
 * their extra sums dropped: three as [f, f+1, f+1, f+2], two as [f, f+1, f, f+1], one as four
 * times f.
 */
static void encode_paired(const cc_student_model* m, const int16_t* input, int16_t* z) {
  const uint32_t n = m->input_size, rows = m->features;
  uint32_t f, r;
  for (f = 0; f < rows; f += 4u) {
    const uint32_t count = rows - f < 4u ? rows - f : 4u;
    const int8_t* const first = m->encoder_weight + (size_t)f * n;
    int32_t acc[4];
    dot4_paired(first, first + (count > 2u ? (size_t)(count - 2u) * n : 0u), count > 1u ? n : 0u,
                input, n, acc);
    for (r = 0; r < count; ++r)
      z[pair_slot(f + r, rows)] =
          saturate_s16(requantize(acc[count == 3u && r == 2u ? 3u : r],
                                  m->encoder_multiplier[f + r], m->encoder_shift[f + r]));
  }
}

/* Natural weights: rows three at a time; where fewer than three are left, the last row stands in
 * for the missing ones (read again, its extra sums dropped). Paired weights with an input that is
 * not 4-byte aligned (LDRD would fault): row by row in C. */
static void encode(const cc_student_model* m, const int16_t* input, int16_t* z) {
  const uint32_t n = m->input_size, rows = m->features;
  uint32_t f, r;
  if (m->weight_layout == CC_STUDENT_LAYOUT_ENCODER_PAIRED) {
    if (((uintptr_t)input & 3u) == 0u) {
      encode_paired(m, input, z);
    } else {
      for (f = 0; f < rows; ++f)
        z[pair_slot(f, rows)] =
            saturate_s16(requantize(dot_paired_s8_s16(m->encoder_weight + (size_t)f * n, input, n),
                                    m->encoder_multiplier[f], m->encoder_shift[f]));
    }
    return;
  }
  for (f = 0; f < rows; f += 3u) {
    const int8_t* triple[3];
    int32_t acc[3];
    const uint32_t count = rows - f < 3u ? rows - f : 3u;
    for (r = 0; r < 3u; ++r)
      triple[r] = m->encoder_weight + (size_t)(f + (r < count ? r : count - 1u)) * n;
    dot3_natural(triple, input, n, acc);
    for (r = 0; r < count; ++r)
      z[pair_slot(f + r, rows)] =
          saturate_s16(requantize(acc[r], m->encoder_multiplier[f + r], m->encoder_shift[f + r]));
  }
}

static int16_t hidden_of_tanh(const cc_student_model* m, int16_t t_q15) {
  const int32_t drop = 15 - (int32_t)m->hidden_frac_bits;
  return drop == 0 ? t_q15 : (int16_t)round_shift(t_q15, drop);
}

static void lift(const cc_student_model* m, const int16_t* z, int16_t* h) {
  const uint32_t width = m->width;
  const int16_t* z_end = z + m->features;
  const int8_t* row = m->lift_weight;
  uint32_t w;
  for (w = 0; w < width; ++w) {
    const int32_t acc = dot_pair(&row, z, z_end, m->lift_bias[w]);
    const int16_t pre_q12 = saturate_s16(requantize(acc, m->lift_multiplier[w], m->lift_shift[w]));
    h[pair_slot(w, width)] = hidden_of_tanh(m, cc_tanh_q15(pre_q12, m->tanh_table));
  }
}

static void euler_step(const cc_student_model* m, int16_t* h, int16_t* t) {
  const int32_t frac_drop = 15 - (int32_t)m->hidden_frac_bits;
  const uint32_t width = m->width;
  const int8_t* row = m->liquid_weight;
  uint32_t w;
  for (w = 0; w < width; ++w) {
    const int32_t acc = dot_pair(&row, h, h + width, m->liquid_bias[w]);
    const int16_t pre_q12 =
        saturate_s16(requantize(acc, m->liquid_multiplier[w], m->liquid_shift[w]));
    t[w] = cc_tanh_q15(pre_q12, m->tanh_table);
  }
  for (w = 0; w < width; ++w) {
    int16_t* hw = &h[pair_slot(w, width)];
    const int64_t decay = -(int64_t)m->liquid_alpha_q24[w] * *hw;
    int64_t drive = (int64_t)m->liquid_beta_q24[w] * t[w];
    int64_t drift_q;
    int64_t delta;
    if (frac_drop > 0) drive = round_shift(drive, frac_drop);
    drift_q = round_shift(decay + drive, 24);
    delta = round_shift(drift_q * (int64_t)m->dt_q30, 30);
    *hw = saturate_s16((int32_t)saturate_s32((int64_t)*hw + delta));
  }
}

/*
 * out[o] = requantize(bias[o] + row_o . x) for every output o, or, with `accumulate`, out[o]
 * saturating-plus (QADD) that term; rows of n consecutive weights from `row`, x in pair order.
 * The head runs it twice (bypass over z, then head over h) so that each pass keeps its pointers
 * in registers.
 */
/*
 * The head (H outputs, 100 for the deployed students) over short rows: the bypass (n = F, 8) and
 * the head proper (n = W after pruning, 6). Per output the work is a few MACs and a
 * requantization, so the loop itself is the cost; these loops are written in assembly because
 * -Os spills their dozen live values. x (n <= 8, pair order) is held as four lane words, zero
 * past n; each row is read as two words (8 bytes) whatever n is: lanes past n meet those zeros.
 * short_rows gives how many leading rows can be read so without leaving the weight array; the
 * rest go through dot_pair.
 */
typedef struct {
  uint32_t x02a, x13a, x02b, x13b;
} short_x;

CC_KERNEL short_x short_x_of(const int16_t* x, uint32_t n) {
  int16_t padded[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  short_x out;
  uint32_t i;
  for (i = 0; i < n; ++i)
    padded[pair_slot(i, 8u)] = x[pair_slot(i, n)];
  out.x02a = load_u32(padded), out.x13a = load_u32(padded + 2);
  out.x02b = load_u32(padded + 4), out.x13b = load_u32(padded + 6);
  return out;
}

/* Rows o < result have o * n + 8 <= rows * n: their 8-byte reads stay in the array. */
CC_KERNEL uint32_t short_rows(uint32_t n, uint32_t rows) {
  const uint32_t total = n * rows;
  return total < 8u ? 0u : (total - 8u) / n + 1u;
}

/* out[o] = bias[o] + row_o . x for o < count (count >= 1); rows of n bytes from row. */
CC_NOINLINE void dots_short(const int8_t* row, uint32_t n, const short_x* x, const int32_t* bias,
                            int32_t* out, uint32_t count) {
  const int32_t* const end = out + count;
  const uint32_t x02a = x->x02a, x13a = x->x13a, x02b = x->x02b, x13b = x->x13b;
  int32_t acc, t;
  uint32_t w;
  __asm__ volatile(
      "1:\n\t"
      "ldr %[acc], [%[bias]], #4\n\t"
      "ldr %[w], [%[row]]\n\t"
      "sxtb16 %[t], %[w]\n\t"
      "smlad %[acc], %[t], %[x02a], %[acc]\n\t"
      "sxtb16 %[t], %[w], ror #8\n\t"
      "smlad %[acc], %[t], %[x13a], %[acc]\n\t"
      "ldr %[w], [%[row], #4]\n\t"
      "add %[row], %[row], %[n]\n\t"
      "sxtb16 %[t], %[w]\n\t"
      "smlad %[acc], %[t], %[x02b], %[acc]\n\t"
      "sxtb16 %[t], %[w], ror #8\n\t"
      "smlad %[acc], %[t], %[x13b], %[acc]\n\t"
      "str %[acc], [%[out]], #4\n\t"
      "cmp %[out], %[end]\n\t"
      "bne 1b"
      : [acc] "=&r"(acc), [t] "=&r"(t), [w] "=&r"(w), [row] "+r"(row), [bias] "+r"(bias),
        [out] "+r"(out)
      : [n] "r"(n), [end] "r"(end), [x02a] "r"(x02a), [x13a] "r"(x13a), [x02b] "r"(x02b),
        [x13b] "r"(x13b)
      : "cc", "memory");
}

/* Work for dots8_quads, in the order one LDM takes it: x's lanes (r4-r7), row, bias, out, end. */
typedef struct {
  short_x x;
  const int8_t* row;   /* rows of 8 weights */
  const int32_t* bias; /* 4-byte aligned (LDM) */
  int32_t* out;        /* 4-byte aligned (STM) */
  int32_t* end;        /* out + 4 * quads, quads >= 1 */
} quad_job;
CC_STATIC_ASSERT(sizeof(quad_job) == 8u * sizeof(uint32_t), quad_job_is_the_eight_loaded_words);

/* One row of 8 weights against x's four lane words (r4-r7) into `acc`; r8 walks the rows, r12 and
 * lr are scratch. */
/* clang-format off */
#define CC_ROW8(acc)                        \
  "ldr r12, [r8], #4\n\t"                   \
  "sxtb16 lr, r12\n\t"                      \
  "smlad " acc ", lr, r4, " acc "\n\t"       \
  "sxtb16 r12, r12, ror #8\n\t"             \
  "smlad " acc ", r12, r5, " acc "\n\t"      \
  "ldr r12, [r8], #4\n\t"                   \
  "sxtb16 lr, r12\n\t"                      \
  "smlad " acc ", lr, r6, " acc "\n\t"       \
  "sxtb16 r12, r12, ror #8\n\t"             \
  "smlad " acc ", r12, r7, " acc "\n\t"
/* clang-format on */

/*
 * out[o] = bias[o] + row_o . x for rows of exactly 8 weights (the bypass of an 8-feature
 * student), four rows per pass: their biases in one LDM, their sums out in one STM, so a row is
 * its two weight loads, four SXTB16 and four SMLAD: 44 instructions per 32 MACs (1.375). Naked,
 * in assembly: the LDM/STM need the four accumulators in r0-r3, and the loop's 14 live values
 * fill every register but sp and pc.
 */
__attribute__((naked, noinline)) static void dots8_quads(const quad_job* job
                                                         __attribute__((unused))) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "ldm r0, {r4-r11}\n"
      "1:\n\t"
      "ldm r9!, {r0-r3}\n\t" CC_ROW8("r0") CC_ROW8("r1") CC_ROW8("r2") CC_ROW8("r3")
      "stm r10!, {r0-r3}\n\t"
      "cmp r10, r11\n\t"
      "bne 1b\n\t"
      "pop {r4-r11, pc}");
}
#undef CC_ROW8

CC_NOINLINE void requantize_all(int32_t* values, const int32_t* multiplier, const int8_t* shift,
                                uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; ++i)
    values[i] = requantize(values[i], multiplier[i], shift[i]);
}

/* out[i] = QADD(out[i], requantize(acc[i], multiplier[i], shift[i])) for i < n. */
CC_NOINLINE void add_requantized(int32_t* out, const int32_t* acc, const int32_t* multiplier,
                                 const int8_t* shift, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; ++i)
    out[i] = __qadd(out[i], requantize(acc[i], multiplier[i], shift[i]));
}

/* The head terms go through a small stack buffer of accumulators, kHeadChunk at a time. */
enum { kHeadChunk = 16 };
static const int32_t kZeroBias[kHeadChunk] = {0};

/*
 * y = D z + c + G h, each product requantized, their sum saturated (QADD: both terms are int32):
 * the bypass accumulators into output, their requantization in place, then the head terms added.
 */
static void head(const cc_student_model* m, const int16_t* z, const int16_t* h, int32_t* output) {
  const uint32_t features = m->features, width = m->width, horizon = m->horizon;
  const int8_t* row = m->bypass_weight;
  uint32_t o = 0;
  if (features <= 8u) {
    const short_x zs = short_x_of(z, features);
    const uint32_t fast = short_rows(features, horizon);
    if (features == 8u && horizon >= 4u &&
        (((uintptr_t)m->head_bias | (uintptr_t)output) & 3u) == 0u) {
      quad_job job;
      job.x = zs, job.row = row, job.bias = m->head_bias, job.out = output;
      job.end = output + (horizon & ~3u);
      dots8_quads(&job);
      o = horizon & ~3u;
    }
    if (o < fast) {
      dots_short(row + (size_t)o * features, features, &zs, m->head_bias + o, output + o, fast - o);
      o = fast;
    }
    row += (size_t)o * features;
  }
  for (; o < horizon; ++o)
    output[o] = dot_pair(&row, z, z + features, m->head_bias[o]);
  requantize_all(output, m->bypass_multiplier, m->bypass_shift, horizon);

  row = m->head_weight;
  o = 0;
  if (width <= 8u) {
    const short_x hs = short_x_of(h, width);
    const uint32_t fast = short_rows(width, horizon);
    int32_t acc[kHeadChunk];
    while (o < fast) {
      const uint32_t n = fast - o < (uint32_t)kHeadChunk ? fast - o : (uint32_t)kHeadChunk;
      dots_short(row, width, &hs, kZeroBias, acc, n);
      add_requantized(output + o, acc, m->head_multiplier + o, m->head_shift + o, n);
      row += (size_t)n * width;
      o += n;
    }
  }
  for (; o < horizon; ++o) {
    const int32_t acc = dot_pair(&row, h, h + width, 0);
    output[o] = __qadd(output[o], requantize(acc, m->head_multiplier[o], m->head_shift[o]));
  }
}
#else
/* tanh of a requantized accumulator (Q12 pre-activation), as h in Q(frac_bits). */
static int16_t tanh_to_hidden(const cc_student_model* m, int32_t acc, int32_t multiplier,
                              int32_t shift) {
  const int16_t pre_q12 = saturate_s16(cc_requantize(acc, multiplier, shift));
  const int16_t t_q15 = cc_tanh_q15(pre_q12, m->tanh_table);
  const int32_t drop = 15 - (int32_t)m->hidden_frac_bits;
  return drop == 0 ? t_q15 : (int16_t)round_shift(t_q15, drop);
}

static void encode(const cc_student_model* m, const int16_t* input, int16_t* z) {
  const int paired = m->weight_layout == CC_STUDENT_LAYOUT_ENCODER_PAIRED;
  uint16_t f;
  for (f = 0; f < m->features; ++f) {
    const int8_t* row = m->encoder_weight + (size_t)f * m->input_size;
    const int32_t acc = paired ? dot_paired_s8_s16(row, input, m->input_size)
                               : dot_s8_s16(row, input, m->input_size);
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

#endif

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
