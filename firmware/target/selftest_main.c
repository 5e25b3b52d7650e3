/* Runs the kernel and student parity checks on the Cortex-M4 and prints their checksums for the
 * host test. */
#include "cc_selftest.h"
#include "semihosting.h"

int main(void) {
  const uint32_t checksum = cc_selftest_checksum();
  const uint32_t student = cc_selftest_student_checksum();
  sh_write("cases ");
  sh_write_u32(cc_selftest_cases());
  sh_write(" checksum ");
  sh_write_hex32(checksum);
  sh_write("\nstudent forecasts ");
  sh_write_u32(cc_selftest_student_forecasts());
  sh_write(" checksum ");
  sh_write_hex32(student);
  sh_write("\n");
  return checksum != 0u && student != 0u ? 0 : 1;
}
