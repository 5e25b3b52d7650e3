/*
 * cyclecast int8 neural-network kernels for Cortex-M4 (and the host, bit for bit).
 *
 * C99, no heap, no libc beyond <stdint.h>/<string.h>. Every function returns a cc_status;
 * none aborts. Quantization follows the affine int8 scheme real = scale * (q - zero_point);
 * integer rescaling uses a Q31 multiplier and a power-of-two shift, as described per function.
 */
#ifndef CYCLECAST_CC_NN_H
#define CYCLECAST_CC_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CC_OK = 0,
  CC_ERROR_ARGUMENT = 1, /* a pointer is NULL, a size is zero or a parameter is out of range */
  CC_ERROR_SCRATCH = 2,  /* caller-provided scratch is NULL, misaligned or too small */
  CC_ERROR_MODEL = 3,    /* a model descriptor failed validation (cc_student_validate) */
} cc_status;

/*
 * Rescales an int32 accumulator: returns round(value * multiplier * 2^shift / 2^31), with ties
 * rounded towards +infinity, saturated to int32.
 * Ranges: multiplier in [2^30, 2^31 - 1] (a normalized Q31 fraction in [0.5, 1)) or 0;
 *         shift in [-31, 30].
 * Arguments outside those ranges give 0 (callers validate parameters once, at model load).
 */
int32_t cc_requantize(int32_t value, int32_t multiplier, int32_t shift);

/*
 * Fully connected layer, int8 in / int8 weights / int32 bias / int8 out:
 *   out[o] = clamp(cc_requantize(bias[o] + sum_i (in[i] + input_offset) * w[o * in_size + i],
 *                                multiplier, shift) + output_offset, act_min, act_max)
 * Ranges: input_offset in [-127, 128] (the negated input zero point); output_offset in
 *         [-128, 127]; act_min <= act_max, both in [-128, 127]; in_size, out_size >= 1;
 *         multiplier/shift as for cc_requantize. bias may be NULL (treated as zeros).
 * Weights are row-major [out_size][in_size] with zero point 0 (symmetric).
 * Memory: reads in, weights, bias; writes out only. No scratch needed.
 */
cc_status cc_fully_connected_s8(const int8_t* in, uint16_t in_size, int32_t input_offset,
                                const int8_t* weights, const int32_t* bias, uint16_t out_size,
                                int32_t multiplier, int32_t shift, int32_t output_offset,
                                int32_t act_min, int32_t act_max, int8_t* out);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_NN_H */
