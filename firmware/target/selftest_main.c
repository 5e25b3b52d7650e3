/* Runs the kernel parity check on the Cortex-M4 and prints its checksum for the host test. */
#include "cc_selftest.h"
#include "semihosting.h"

int main(void) {
  const uint32_t checksum = cc_selftest_checksum();
  sh_write("cases ");
  sh_write_u32(cc_selftest_cases());
  sh_write(" checksum ");
  sh_write_hex32(checksum);
  sh_write("\n");
  return checksum != 0u ? 0 : 1;
}
