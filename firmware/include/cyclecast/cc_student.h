/* clang-format off */
/*
 * cyclecast int8 StudentModel runtime: the Euler liquid student with a linear bypass, integer only.
 *
 * C99, no heap, no libc beyond <stdint.h>/<string.h>, no floating point in the forward pass, so
 * that the host (which scores int8 candidates with this very code) and the Cortex-M4 agree bit for
 * bit. The float model it implements (docs/firmware.md has the derivation):
 *
 *   z   = E x                                    encoder, no bias
 *   h_0 = tanh(A z + a)                          lift
 *   h_{s+1} = h_s + dt (-alpha .* h_s + beta .* tanh(Wr h_s + b)),  s = 0 .. euler_steps - 1
 *   y   = D z + G h_steps + c                    bypass + head
 *
 * Number formats (real value = scale * integer; the table is kept out of clang-format's reach):
 *
 *   value            type   format, range
 *   ---------------  -----  ----------------------------------------------------------------------
 *   x (input)        int16  any; S_x = input_scale_mantissa * 2^input_scale_exponent / 2^31
 *   weights          int8   [-127, 127], symmetric, one scale per output row (folded into the
 *                           row's multiplier: the runtime never sees the float scale)
 *   accumulators     int32  row scale * input scale; cc_student_validate proves, per row,
 *                           sum_i |w[o][i]| * 32768 + |bias[o]| <= INT32_MAX, so no
 *                           multiply-accumulate can overflow and none is checked
 *   biases           int32  the accumulator's scale; |bias[o]| <= INT32_MAX - 32768 sum_i |w[o][i]|
 *                           (the quantizer keeps them below 2^29)
 *   requantization   -      per output row: Q31 multiplier in [2^30, 2^31 - 1] (or 0 for an
 *                           all-zero row), shift in [-31, 30]; cc_requantize, then saturation
 *   z (encoder out)  int16  per tensor (only the multipliers know it)
 *   tanh input       int16  Q4.12: real = q / 4096, range [-8, 8)
 *   tanh output      int16  Q15: real = q / 32768
 *   h (hidden)       int16  Q(hidden_frac_bits): real = q / 2^hidden_frac_bits, bits in [0, 15]
 *   alpha, beta      int32  Q7.24 per hidden unit: real = q / 2^24; any int32 (int64 products)
 *   dt               int32  Q30: real = dt_q30 / 2^30, dt_q30 in [1, 2^30], so dt in (0, 1]
 *   y (output)       int32  S_y = output_scale_mantissa * 2^output_scale_exponent / 2^31
 *
 * Lifetimes: the model descriptor and every array it points to are owned by the caller and must
 * outlive every call that is given the descriptor; the runtime never writes to them.
 */
/* clang-format on */
#ifndef CYCLECAST_CC_STUDENT_H
#define CYCLECAST_CC_STUDENT_H

#include <stddef.h>
#include <stdint.h>

#include "cyclecast/cc_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tanh table: tanh(i / 32) in Q15 for i = 0 .. 256 (covering [0, 8]), capped at 32767. */
#define CC_TANH_TABLE_SIZE 257
extern const int16_t cc_tanh_q15_table[CC_TANH_TABLE_SIZE];

/*
 * tanh of a Q4.12 value as Q15, by linear interpolation in `table` (CC_TANH_TABLE_SIZE entries,
 * tanh at steps of 1/32 over [0, 8], as cc_tanh_q15_table), odd symmetry for negative inputs.
 * |x| >= 8 gives +-table[256]. With cc_tanh_q15_table the error against tanh is below 1.2e-4
 * (about 4 Q15 steps; tests/firmware measure it).
 * Ranges: x_q12 any int16 (real [-8, 8)); table non-NULL, table[0] == 0, non-decreasing, so every
 *         entry is in [0, 32767] (what cc_student_validate checks of a model's table; a
 *         decreasing table gives wrong, though bounded, values). Result in
 *         [-table[256], table[256]]. Reads table only; no status (it cannot fail).
 */
int16_t cc_tanh_q15(int16_t x_q12, const int16_t* table);

/*
 * Orders of encoder_weight's columns within each row (cc_student_model.weight_layout); every other
 * array is always in natural order. Either layout gives the same bits on every build.
 * NATURAL: w[o][0], w[o][1], ... (what the quantizer and the host keep).
 * ENCODER_PAIRED: each whole group of four columns stored as [w0, w2, w1, w3], a tail of I % 4
 *   columns in natural order: the lane order of the Cortex-M4 DSP kernels, so that they use the
 *   caller's input as loaded (docs/firmware.md, "DSP kernels"); the export writes it.
 */
#define CC_STUDENT_LAYOUT_NATURAL 0u
#define CC_STUDENT_LAYOUT_ENCODER_PAIRED 1u

/* clang-format off */
/*
 * One quantized student. Arrays are row-major [out][in]; "per row" arrays have one entry per
 * output channel of their layer. F = features, W = width, H = horizon, I = input_size.
 * Ranges (cc_student_validate checks every one; cc_student_forecast relies on them):
 *   dimensions   I, F, W, H, euler_steps in [1, 65535]; hidden_frac_bits in [0, 15]
 *   dt_q30       [1, 2^30]
 *   weight_layout CC_STUDENT_LAYOUT_NATURAL or CC_STUDENT_LAYOUT_ENCODER_PAIRED
 *   weights      every entry in [-127, 127] (INT8_MIN is refused: it would break symmetry)
 *   biases       per row o of a layer with weights w:
 *                |bias[o]| <= INT32_MAX - 32768 sum_i |w[o][i]| (the accumulator bound);
 *                lift_bias goes with lift_weight, liquid_bias with liquid_weight, head_bias
 *                with bypass_weight; encoder and head weights have no bias
 *   multipliers  every entry in [2^30, 2^31 - 1], or 0 (the row's output is then 0)
 *   shifts       every entry in [-31, 30]
 *   alpha, beta  any int32 (Q7.24; the Euler update multiplies them in int64)
 *   tanh_table   as cc_tanh_q15 requires
 *   scales       mantissa in [2^30, 2^31 - 1], exponent in [-126, 127]
 * Every pointer is non-NULL and points to at least the entries its comment gives.
 */
/* clang-format on */
typedef struct {
  uint16_t input_size;      /* I, >= 1 */
  uint16_t features;        /* F, >= 1 */
  uint16_t width;           /* W, >= 1 */
  uint16_t horizon;         /* H, >= 1 */
  uint16_t euler_steps;     /* >= 1 (0 steps is legal in float but never deployed) */
  uint8_t hidden_frac_bits; /* h format Q(hidden_frac_bits), in [0, 15] */
  uint8_t weight_layout;    /* CC_STUDENT_LAYOUT_*: the order of encoder_weight's columns */
  int32_t dt_q30;           /* in [1, 2^30] */

  const int8_t* encoder_weight;      /* [F][I] (E) */
  const int32_t* encoder_multiplier; /* [F]: accumulator -> z */
  const int8_t* encoder_shift;       /* [F] */

  const int8_t* lift_weight;      /* [W][F] (A) */
  const int32_t* lift_bias;       /* [W] (a), in the lift accumulator's scale */
  const int32_t* lift_multiplier; /* [W]: accumulator -> tanh input Q12 */
  const int8_t* lift_shift;       /* [W] */

  const int8_t* liquid_weight;      /* [W][W] (Wr) */
  const int32_t* liquid_bias;       /* [W] (b), in the liquid accumulator's scale */
  const int32_t* liquid_multiplier; /* [W]: accumulator -> tanh input Q12 */
  const int8_t* liquid_shift;       /* [W] */
  const int32_t* liquid_alpha_q24;  /* [W] */
  const int32_t* liquid_beta_q24;   /* [W] */

  const int8_t* bypass_weight;      /* [H][F] (D) */
  const int32_t* head_bias;         /* [H] (c), in the bypass accumulator's scale */
  const int32_t* bypass_multiplier; /* [H]: bypass accumulator + c -> y */
  const int8_t* bypass_shift;       /* [H] */
  const int8_t* head_weight;        /* [H][W] (G) */
  const int32_t* head_multiplier;   /* [H]: head accumulator -> y */
  const int8_t* head_shift;         /* [H] */

  const int16_t* tanh_table; /* CC_TANH_TABLE_SIZE entries, normally cc_tanh_q15_table */

  /* Scales for the caller's conversions (the runtime does not use them): real = m * 2^e / 2^31,
   * m in [2^30, 2^31 - 1], e in [-126, 127]. */
  int32_t input_scale_mantissa;
  int32_t input_scale_exponent;
  int32_t output_scale_mantissa;
  int32_t output_scale_exponent;
} cc_student_model;

/*
 * The descriptor's layout, pinned: model_data.c (pipeline's export) fills it with positional
 * initializers, and the cost model counts it in flash (models/cost.h, CC_STUDENT_MODEL_BYTES(4)
 * on the Cortex-M4). Five uint16 dimensions, the uint8 hidden_frac_bits and weight_layout,
 * dt_q30, then the array pointers in declaration order, then four int32 scales; no padding with 4-
 * or 8-byte pointers.
 */
#define CC_STUDENT_MODEL_DIMS_BYTES (5u * sizeof(uint16_t) + 2u * sizeof(uint8_t) + sizeof(int32_t))
#define CC_STUDENT_MODEL_ARRAYS 21u /* encoder_weight .. tanh_table */
#define CC_STUDENT_MODEL_SCALES_BYTES (4u * sizeof(int32_t))
#define CC_STUDENT_MODEL_BYTES(pointer_bytes)                                \
  (CC_STUDENT_MODEL_DIMS_BYTES + CC_STUDENT_MODEL_ARRAYS * (pointer_bytes) + \
   CC_STUDENT_MODEL_SCALES_BYTES)

#define CC_STUDENT_MODEL_PIN(field, offset) \
  CC_STATIC_ASSERT(offsetof(cc_student_model, field) == (offset), cc_student_model_##field)
#define CC_STUDENT_MODEL_ARRAY_AT(k) (CC_STUDENT_MODEL_DIMS_BYTES + (k) * sizeof(void*))
#define CC_STUDENT_MODEL_SCALE_AT(k) \
  (CC_STUDENT_MODEL_ARRAY_AT(CC_STUDENT_MODEL_ARRAYS) + (k) * sizeof(int32_t))

/* clang-format off */
CC_STUDENT_MODEL_PIN(input_size,            0u * sizeof(uint16_t));
CC_STUDENT_MODEL_PIN(features,              1u * sizeof(uint16_t));
CC_STUDENT_MODEL_PIN(width,                 2u * sizeof(uint16_t));
CC_STUDENT_MODEL_PIN(horizon,               3u * sizeof(uint16_t));
CC_STUDENT_MODEL_PIN(euler_steps,           4u * sizeof(uint16_t));
CC_STUDENT_MODEL_PIN(hidden_frac_bits,      5u * sizeof(uint16_t));
CC_STUDENT_MODEL_PIN(weight_layout,         5u * sizeof(uint16_t) + sizeof(uint8_t));
CC_STUDENT_MODEL_PIN(dt_q30,                6u * sizeof(uint16_t));
CC_STUDENT_MODEL_PIN(encoder_weight,        CC_STUDENT_MODEL_ARRAY_AT(0u));
CC_STUDENT_MODEL_PIN(encoder_multiplier,    CC_STUDENT_MODEL_ARRAY_AT(1u));
CC_STUDENT_MODEL_PIN(encoder_shift,         CC_STUDENT_MODEL_ARRAY_AT(2u));
CC_STUDENT_MODEL_PIN(lift_weight,           CC_STUDENT_MODEL_ARRAY_AT(3u));
CC_STUDENT_MODEL_PIN(lift_bias,             CC_STUDENT_MODEL_ARRAY_AT(4u));
CC_STUDENT_MODEL_PIN(lift_multiplier,       CC_STUDENT_MODEL_ARRAY_AT(5u));
CC_STUDENT_MODEL_PIN(lift_shift,            CC_STUDENT_MODEL_ARRAY_AT(6u));
CC_STUDENT_MODEL_PIN(liquid_weight,         CC_STUDENT_MODEL_ARRAY_AT(7u));
CC_STUDENT_MODEL_PIN(liquid_bias,           CC_STUDENT_MODEL_ARRAY_AT(8u));
CC_STUDENT_MODEL_PIN(liquid_multiplier,     CC_STUDENT_MODEL_ARRAY_AT(9u));
CC_STUDENT_MODEL_PIN(liquid_shift,          CC_STUDENT_MODEL_ARRAY_AT(10u));
CC_STUDENT_MODEL_PIN(liquid_alpha_q24,      CC_STUDENT_MODEL_ARRAY_AT(11u));
CC_STUDENT_MODEL_PIN(liquid_beta_q24,       CC_STUDENT_MODEL_ARRAY_AT(12u));
CC_STUDENT_MODEL_PIN(bypass_weight,         CC_STUDENT_MODEL_ARRAY_AT(13u));
CC_STUDENT_MODEL_PIN(head_bias,             CC_STUDENT_MODEL_ARRAY_AT(14u));
CC_STUDENT_MODEL_PIN(bypass_multiplier,     CC_STUDENT_MODEL_ARRAY_AT(15u));
CC_STUDENT_MODEL_PIN(bypass_shift,          CC_STUDENT_MODEL_ARRAY_AT(16u));
CC_STUDENT_MODEL_PIN(head_weight,           CC_STUDENT_MODEL_ARRAY_AT(17u));
CC_STUDENT_MODEL_PIN(head_multiplier,       CC_STUDENT_MODEL_ARRAY_AT(18u));
CC_STUDENT_MODEL_PIN(head_shift,            CC_STUDENT_MODEL_ARRAY_AT(19u));
CC_STUDENT_MODEL_PIN(tanh_table,            CC_STUDENT_MODEL_ARRAY_AT(20u));
CC_STUDENT_MODEL_PIN(input_scale_mantissa,  CC_STUDENT_MODEL_SCALE_AT(0u));
CC_STUDENT_MODEL_PIN(input_scale_exponent,  CC_STUDENT_MODEL_SCALE_AT(1u));
CC_STUDENT_MODEL_PIN(output_scale_mantissa, CC_STUDENT_MODEL_SCALE_AT(2u));
CC_STUDENT_MODEL_PIN(output_scale_exponent, CC_STUDENT_MODEL_SCALE_AT(3u));
CC_STATIC_ASSERT(sizeof(cc_student_model) == CC_STUDENT_MODEL_BYTES(sizeof(void*)),
                 cc_student_model_size);
/* clang-format on */
#undef CC_STUDENT_MODEL_PIN
#undef CC_STUDENT_MODEL_ARRAY_AT
#undef CC_STUDENT_MODEL_SCALE_AT

/*
 * Checks every range of cc_student_model's comment once (dimensions, pointers, multiplier and
 * shift ranges, weights in [-127, 127], the per-row accumulator bound, dt, the tanh table being
 * non-decreasing in [0, 32767] from 0, the scales). Returns CC_OK, or CC_ERROR_ARGUMENT if
 * model is NULL, or CC_ERROR_MODEL naming nothing more precise. Reads only; O(parameters).
 * Ranges: model NULL or a descriptor whose pointers each reach the entries the dimensions say
 *         (the arrays carry no length of their own; the caller vouches for them).
 */
cc_status cc_student_validate(const cc_student_model* model);

/* Bytes of scratch cc_student_forecast needs for this model: 2 * (F + 2 W), in [6, 393210] for
 * any dimensions a descriptor can hold; 0 if model is NULL. */
size_t cc_student_scratch_bytes(const cc_student_model* model);

/*
 * One forecast: input[I] (int16, scale S_x) -> output[H] (int32, scale S_y).
 * `model` must have passed cc_student_validate (not re-checked here: it costs as much as the
 * forecast). On the Cortex-M4 DSP kernels a 4-byte aligned input with ENCODER_PAIRED weights takes
 * the fastest encoder; any other input or layout gives the same bits, slower. scratch: at least
 * cc_student_scratch_bytes(model) bytes, 2-byte aligned, contents ignored and overwritten. Returns
 * CC_ERROR_ARGUMENT for a NULL pointer, CC_ERROR_SCRATCH for missing, misaligned or short scratch;
 * CC_OK otherwise. Writes output and scratch only. Ranges: input[i] any int16, INT16_MIN included
 * (the accumulator bound assumes |x| <= 32768); output[o] any int32 (bypass and head are each
 * requantized, then their sum saturated); scratch_bytes any (compared with
 * cc_student_scratch_bytes).
 */
cc_status cc_student_forecast(const cc_student_model* model, const int16_t* input, int32_t* output,
                              void* scratch, size_t scratch_bytes);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_STUDENT_H */
