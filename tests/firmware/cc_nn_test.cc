// The int8 kernels against a plain reference written from the formulas in cc_nn.h, and the
// host/Cortex-M4 parity check under QEMU.
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

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

struct FcCase {
  std::vector<int8_t> in, weights;
  std::vector<int32_t> bias;
  int32_t input_offset, output_offset, multiplier, shift, act_min, act_max;
};

std::vector<int8_t> reference_fully_connected(const FcCase& c) {
  const size_t out_size = c.bias.size(), in_size = c.in.size();
  std::vector<int8_t> out(out_size);
  for (size_t o = 0; o < out_size; ++o) {
    int64_t acc = c.bias[o];
    for (size_t i = 0; i < in_size; ++i) {
      acc += (int64_t{c.in[i]} + c.input_offset) * c.weights[o * in_size + i];
    }
    int32_t q =
        reference_requantize(static_cast<int32_t>(acc), c.multiplier, c.shift) + c.output_offset;
    q = std::min(std::max(q, c.act_min), c.act_max);
    out[o] = static_cast<int8_t>(q);
  }
  return out;
}

TEST(CcFullyConnectedS8, MatchesReferenceOnRandomLayers) {
  std::mt19937 rng(11);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 500; ++trial) {
    FcCase c;
    c.in.resize(static_cast<size_t>(uniform(1, 130)));
    c.bias.resize(static_cast<size_t>(uniform(1, 70)));
    c.weights.resize(c.in.size() * c.bias.size());
    for (auto& v : c.in)
      v = static_cast<int8_t>(uniform(-128, 127));
    for (auto& v : c.weights)
      v = static_cast<int8_t>(uniform(-127, 127));
    for (auto& v : c.bias)
      v = uniform(-50000, 50000);
    c.input_offset = uniform(-127, 128);
    c.output_offset = uniform(-128, 127);
    c.multiplier = uniform(1 << 30, std::numeric_limits<int32_t>::max());
    c.shift = uniform(-14, 1);
    c.act_min = uniform(-128, 0);
    c.act_max = uniform(0, 127);
    std::vector<int8_t> out(c.bias.size());
    ASSERT_EQ(cc_fully_connected_s8(c.in.data(), static_cast<uint16_t>(c.in.size()), c.input_offset,
                                    c.weights.data(), c.bias.data(),
                                    static_cast<uint16_t>(c.bias.size()), c.multiplier, c.shift,
                                    c.output_offset, c.act_min, c.act_max, out.data()),
              CC_OK);
    ASSERT_EQ(out, reference_fully_connected(c)) << "trial " << trial;
  }
}

TEST(CcFullyConnectedS8, TreatsNullBiasAsZeros) {
  const std::array<int8_t, 2> in{10, -20};
  const std::array<int8_t, 2> weights{3, 1};
  std::array<int8_t, 1> out{};
  // (10*3 + -20*1) = 10, multiplier 2^30 (one half), shift 1: 10 * 0.5 * 2 = 10.
  ASSERT_EQ(cc_fully_connected_s8(in.data(), 2, 0, weights.data(), nullptr, 1, 1 << 30, 1, 0, -128,
                                  127, out.data()),
            CC_OK);
  EXPECT_EQ(out[0], 10);
}

TEST(CcFullyConnectedS8, RejectsBadArguments) {
  const std::array<int8_t, 1> in{1}, weights{1};
  std::array<int8_t, 1> out{};
  EXPECT_EQ(cc_fully_connected_s8(nullptr, 1, 0, weights.data(), nullptr, 1, 1 << 30, 0, 0, -128,
                                  127, out.data()),
            CC_ERROR_ARGUMENT);
  EXPECT_EQ(cc_fully_connected_s8(in.data(), 0, 0, weights.data(), nullptr, 1, 1 << 30, 0, 0, -128,
                                  127, out.data()),
            CC_ERROR_ARGUMENT);
  EXPECT_EQ(cc_fully_connected_s8(in.data(), 1, 200, weights.data(), nullptr, 1, 1 << 30, 0, 0,
                                  -128, 127, out.data()),
            CC_ERROR_ARGUMENT);
  EXPECT_EQ(cc_fully_connected_s8(in.data(), 1, 0, weights.data(), nullptr, 1, 1 << 30, 0, 0, 5, 4,
                                  out.data()),
            CC_ERROR_ARGUMENT);
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
#endif

}  // namespace
