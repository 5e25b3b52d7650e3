// cc_requantize against an exact reference written from the formula in cc_nn.h, and the
// host/Cortex-M4 parity check of the shipped kernels under QEMU.
#include <array>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "cc_selftest.h"
#include "cyclecast/cc_nn.h"

namespace {

// A 128-bit integer (a GCC/Clang extension) so the reference cannot overflow where the kernel
// might.
__extension__ typedef __int128 Int128;

// Exact reference: round(value * multiplier * 2^shift / 2^31), ties towards +infinity, in
// 128-bit arithmetic so that it cannot share an overflow bug with the kernel.
int32_t reference_requantize(int32_t value, int32_t multiplier, int32_t shift) {
  const Int128 product = static_cast<Int128>(value) * multiplier;
  const int right = 31 - shift;
  const Int128 divisor = static_cast<Int128>(1) << right;
  Int128 quotient = product / divisor;
  Int128 remainder = product % divisor;
  if (remainder < 0) {  // floor division
    quotient -= 1;
    remainder += divisor;
  }
  if (2 * remainder >= divisor) quotient += 1;
  if (quotient > std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
  if (quotient < std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(quotient);
}

TEST(CcRequantize, MatchesExactReferenceOnRandomValues) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> value(std::numeric_limits<int32_t>::min(),
                                               std::numeric_limits<int32_t>::max());
  std::uniform_int_distribution<int32_t> multiplier(1 << 30, std::numeric_limits<int32_t>::max());
  std::uniform_int_distribution<int32_t> shift(-31, 30);
  for (int i = 0; i < 100000; ++i) {
    const int32_t v = value(rng), m = multiplier(rng), s = shift(rng);
    ASSERT_EQ(cc_requantize(v, m, s), reference_requantize(v, m, s)) << v << " " << m << " " << s;
  }
}

TEST(CcRequantize, RoundsTiesTowardsPositiveInfinity) {
  // multiplier 2^30 is one half: 3 * 0.5 = 1.5 -> 2 and -3 * 0.5 = -1.5 -> -1.
  EXPECT_EQ(cc_requantize(3, 1 << 30, 0), 2);
  EXPECT_EQ(cc_requantize(-3, 1 << 30, 0), -1);
}

TEST(CcRequantize, SaturatesInsteadOfWrapping) {
  EXPECT_EQ(cc_requantize(std::numeric_limits<int32_t>::max(), 0x7FFFFFFF, 30),
            std::numeric_limits<int32_t>::max());
  EXPECT_EQ(cc_requantize(std::numeric_limits<int32_t>::min(), 0x7FFFFFFF, 30),
            std::numeric_limits<int32_t>::min());
}

TEST(CcRequantize, ReturnsZeroForOutOfRangeParameters) {
  EXPECT_EQ(cc_requantize(1000, -5, 0), 0);
  EXPECT_EQ(cc_requantize(1000, 1 << 30, 31), 0);
  EXPECT_EQ(cc_requantize(1000, 1 << 30, -32), 0);
}

#ifdef CYCLECAST_M4_SELFTEST_ELF
// Runs the cross-built harness under QEMU and returns what it printed.
std::string run_under_qemu(const std::string& elf) {
  const std::string command = std::string(CYCLECAST_QEMU_ARM) +
                              " -M mps2-an386 -nographic -monitor none -serial none"
                              " -semihosting-config enable=on,target=native -kernel " +
                              elf + " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  std::array<char, 256> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr)
    output += buffer.data();
  const int status = pclose(pipe);
  if (status != 0) output += "\n[qemu exit status " + std::to_string(status) + "]";
  return output;
}

TEST(CcSelftest, CortexM4UnderQemuMatchesHostBitForBit) {
  const uint32_t host = cc_selftest_checksum();
  const uint32_t student = cc_selftest_student_checksum();
  ASSERT_NE(host, 0u) << "a kernel returned an error on the host";
  ASSERT_NE(student, 0u) << "the student runtime refused its selftest model on the host";
  char expected[128];
  std::snprintf(expected, sizeof expected,
                "cases %u checksum %08x\nstudent forecasts %u checksum %08x\n", cc_selftest_cases(),
                host, cc_selftest_student_forecasts(), student);
  EXPECT_EQ(run_under_qemu(CYCLECAST_M4_SELFTEST_ELF), std::string(expected));
}

// The Cortex-M4 DSP kernels (firmware/target/kernel_profile): the same forecast as the portable
// kernels on the target, with either encoder layout, and the DSP requantization equal to
// cc_requantize over every shift.
TEST(CcKernelProfile, DspKernelsMatchThePortableOnesOnTheCortexM4) {
  const std::string dir = std::string(CYCLECAST_M4_SELFTEST_ELF)
                              .substr(0, std::string(CYCLECAST_M4_SELFTEST_ELF).rfind('/') + 1);
  const std::string dsp = run_under_qemu(dir + "cc_kernel_profile.elf");
  const std::string portable = run_under_qemu(dir + "cc_kernel_profile_portable.elf");
  ASSERT_NE(dsp.find("kernels dsp\n"), std::string::npos) << dsp;
  ASSERT_NE(portable.find("kernels portable\n"), std::string::npos) << portable;
  EXPECT_NE(dsp.find("requantize mismatches 0\n"), std::string::npos) << dsp;
  // The export's paired encoder layout and the natural one give the same bits on both kernels.
  EXPECT_NE(dsp.find("layout mismatches 0\n"), std::string::npos) << dsp;
  EXPECT_NE(portable.find("layout mismatches 0\n"), std::string::npos) << portable;
  const auto checksum = [](const std::string& out) {
    const size_t at = out.find("checksum ");
    return at == std::string::npos ? std::string("none") : out.substr(at, 17);
  };
  EXPECT_NE(checksum(dsp), "none") << dsp;
  EXPECT_EQ(checksum(dsp), checksum(portable));
}
#endif

}  // namespace
