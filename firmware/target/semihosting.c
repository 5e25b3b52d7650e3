#include "semihosting.h"

enum {
  kSysWrite0 = 0x04,                    /* write a NUL-terminated string to the debug console */
  kSysExit = 0x18,                      /* report an exception to the debugger: ends QEMU */
  kAdpStoppedApplicationExit = 0x20026, /* QEMU maps this reason to exit status 0 */
  kAdpStoppedRunTimeError = 0x20023     /* ... and any other reason to exit status 1 */
};

static void semihost_call(uint32_t op, const void* arg) {
  register uint32_t r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

void sh_write(const char* text) {
  semihost_call(kSysWrite0, text);
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
  semihost_call(kSysExit, (const void*)(uintptr_t)(passed ? kAdpStoppedApplicationExit
                                                          : kAdpStoppedRunTimeError));
  for (;;) {
  }
}
