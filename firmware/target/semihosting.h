/* Minimal ARM semihosting for the QEMU harness: text output and exit status, no libc. */
#ifndef CYCLECAST_SEMIHOSTING_H
#define CYCLECAST_SEMIHOSTING_H

#include <stdint.h>

void sh_write(const char* text);
void sh_write_hex32(uint32_t value);
void sh_write_u32(uint32_t value);
/* Host file I/O (SYS_OPEN/READ/WRITE/CLOSE/FLEN): mode 0 "r", 1 "rb", 4 "w", 5 "wb". open
 * returns a handle >= 0 or -1; read returns the bytes read, at most `length` (0 at end of file,
 * -1 on an error), write the bytes written. */
int32_t sh_open(const char* path, int32_t mode);
int32_t sh_read(int32_t handle, void* buffer, uint32_t length);
int32_t sh_write_file(int32_t handle, const void* bytes, uint32_t length);
void sh_close(int32_t handle);
/* Ends the emulation: QEMU exits 0 when passed is non-zero, 1 otherwise. */
void sh_exit(int passed);

#endif
