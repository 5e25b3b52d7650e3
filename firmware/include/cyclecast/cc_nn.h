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

/*
 * Compile-time check of a layout (sizes, offsets) that a wire format, the flash image or a
 * host-side constant depends on. C99 has no _Static_assert, so there it declares an array type
 * whose size is negative (a compile error naming `name`) when `condition` is false; C11 and C++
 * get the real thing. Every build of these sources (host, Cortex-M4, Arduino) checks them.
 */
#if defined(__cplusplus)
#define CC_STATIC_ASSERT(condition, name) static_assert(condition, #name)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define CC_STATIC_ASSERT(condition, name) _Static_assert(condition, #name)
#else
#define CC_STATIC_ASSERT(condition, name) typedef char cc_static_assert_##name[(condition) ? 1 : -1]
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
 * Ranges: value any int32;
 *         multiplier in [2^30, 2^31 - 1] (a normalized Q31 fraction in [0.5, 1)) or 0;
 *         shift in [-31, 30] (a right shift of 31 - shift in [1, 62] of the int64 product).
 *         Result: any int32 (saturated), 0 when multiplier is 0.
 * A negative multiplier or a shift outside [-31, 30] gives 0; a multiplier in [1, 2^30) is
 * applied as given (it only loses precision, which is why cc_student_validate refuses it).
 * Callers validate parameters once, at model load; this function checks nothing else.
 */
int32_t cc_requantize(int32_t value, int32_t multiplier, int32_t shift);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_NN_H */
