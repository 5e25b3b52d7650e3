/*
 * Host/target parity check of the int8 kernels: runs every kernel over a fixed, seeded set of
 * inputs and parameters and folds all outputs into one checksum. The host test and the
 * Cortex-M4 harness under QEMU call the same code; equal checksums mean bit-identical kernels.
 */
#ifndef CYCLECAST_CC_SELFTEST_H
#define CYCLECAST_CC_SELFTEST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of kernel invocations folded into the checksum. */
uint32_t cc_selftest_cases(void);

/* FNV-1a over every output byte of every case; 0 if any kernel returned an error status. */
uint32_t cc_selftest_checksum(void);

/* Number of cc_student_forecast calls folded into the student checksum. */
uint32_t cc_selftest_student_forecasts(void);

/* FNV-1a over every output of a seeded small student (24 inputs, 4 features, 8 units, 3 Euler
 * steps, 12 outputs) run on seeded inputs; 0 if validation or a forecast failed. */
uint32_t cc_selftest_student_checksum(void);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_SELFTEST_H */
