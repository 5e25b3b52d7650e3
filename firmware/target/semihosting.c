#include "semihosting.h"

enum {
  kSysOpen = 0x01,
  kSysClose = 0x02,
  kSysWrite = 0x05,
  kSysRead = 0x06,
  kSysWrite0 = 0x04,                    /* write a NUL-terminated string to the debug console */
  kSysExit = 0x18,                      /* report an exception to the debugger: ends QEMU */
  kAdpStoppedApplicationExit = 0x20026, /* QEMU maps this reason to exit status 0 */
  kAdpStoppedRunTimeError = 0x20023     /* ... and any other reason to exit status 1 */
};

static uint32_t semihost_call(uint32_t op, const void* arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

static uint32_t length_of(const char* text) {
  uint32_t n = 0;
  while (text[n] != '\0')
    ++n;
  return n;
}

int32_t sh_open(const char* path, int32_t mode) {
  const uint32_t args[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, length_of(path)};
  return (int32_t)semihost_call(kSysOpen, args);
}

int32_t sh_read(int32_t handle, void* buffer, uint32_t length) {
  const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buffer, length};
  /* SYS_READ returns the number of bytes NOT read; anything above `length` (QEMU answers -1 for
   * an error) would make the caller read past its buffer, so it is an error here. */
  const uint32_t unread = semihost_call(kSysRead, args);
  if (unread > length || length > (uint32_t)INT32_MAX) return -1;
  return (int32_t)(length - unread);
}

int32_t sh_write_file(int32_t handle, const void* bytes, uint32_t length) {
  const uint32_t args[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)bytes, length};
  return (int32_t)(length - semihost_call(kSysWrite, args));
}

void sh_close(int32_t handle) {
  const uint32_t args[1] = {(uint32_t)handle};
  (void)semihost_call(kSysClose, args);
}

void sh_write(const char* text) {
  (void)semihost_call(kSysWrite0, text);
}

void sh_write_hex32(uint32_t value) {
  char text[9];
  int i;
  for (i = 7; i >= 0; --i) {
    text[i] = "0123456789abcdef"[value & 0xFu];
    value >>= 4;
  }
  text[8] = '\0';
  sh_write(text);
}

void sh_write_u32(uint32_t value) {
  char text[11];
  int i = 10;
  text[i] = '\0';
  do {
    text[--i] = (char)('0' + value % 10u);
    value /= 10u;
  } while (value != 0u);
  sh_write(text + i);
}

void sh_exit(int passed) {
  (void)semihost_call(kSysExit, (const void*)(uintptr_t)(passed ? kAdpStoppedApplicationExit
                                                                : kAdpStoppedRunTimeError));
  for (;;) {
  }
}
