/*
 * cyclecast int8 neural-network kernels for Cortex-M4 (and the host, bit for bit).
 *
 * C99, no heap, no libc beyond <stdint.h>/<string.h>. Functions that can fail return a
 * cc_status; none aborts. Quantization is symmetric (real = scale * q, zero point 0); integer
 * rescaling uses a Q31 multiplier and a power-of-two shift (cc_requantize). The kernels built on
 * these are in cc_student.h.
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

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_NN_H */
