/*
 * Host/target parity check of the int8 runtime: runs every shipped kernel (cc_requantize,
 * cc_tanh_q15, and cc_student_forecast on a seeded student) over a fixed, seeded set of inputs
 * and parameters and folds all outputs into checksums. The host test and the Cortex-M4 harness
 * under QEMU call the same code; equal checksums mean bit-identical kernels.
 */
#ifndef CYCLECAST_CC_SELFTEST_H
#define CYCLECAST_CC_SELFTEST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of kernel invocations folded into cc_selftest_checksum: 4,096 cc_requantize calls over
 * the whole documented argument range and cc_tanh_q15 on each of the 65,536 int16 inputs. */
uint32_t cc_selftest_cases(void);

/* FNV-1a over every output byte of every case (cc_selftest_cases of them). */
uint32_t cc_selftest_checksum(void);

/* Number of cc_student_forecast calls folded into the student checksum. */
uint32_t cc_selftest_student_forecasts(void);

/* FNV-1a over every output of seeded students of four shapes (24 inputs, 4 features, 8 units,
 * 3 Euler steps, 12 outputs; shapes off the DSP kernels' groups of four, with saturating output
 * shifts; the deployed student's 102/8/6/100; a 3/1/1/2 one), 16 forecasts each on seeded
 * inputs; 0 if validation or a forecast failed. */
uint32_t cc_selftest_student_checksum(void);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_SELFTEST_H */
