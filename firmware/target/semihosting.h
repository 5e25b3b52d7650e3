/* Minimal ARM semihosting for the QEMU harness: text output and exit status, no libc. */
#ifndef CYCLECAST_SEMIHOSTING_H
#define CYCLECAST_SEMIHOSTING_H

#include <stdint.h>

void sh_write(const char* text);
void sh_write_hex32(uint32_t value);
void sh_write_u32(uint32_t value);
/* Ends the emulation: QEMU exits 0 when passed is non-zero, 1 otherwise. */
void sh_exit(int passed);

#endif
