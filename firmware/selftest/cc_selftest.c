#include "cc_selftest.h"

#include "cyclecast/cc_nn.h"

enum { kCases = 64, kMaxIn = 96, kMaxOut = 48 };

/* xorshift32: the same sequence on every target, unlike rand(). */
static uint32_t next_random(uint32_t* state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}

static int32_t random_in(uint32_t* state, int32_t lo, int32_t hi) {
  return lo + (int32_t)(next_random(state) % (uint32_t)(hi - lo + 1));
}

static uint32_t fnv1a(uint32_t hash, const uint8_t* bytes, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; ++i) {
    hash ^= bytes[i];
    hash *= 16777619u;
  }
  return hash;
}

uint32_t cc_selftest_cases(void) {
  return kCases;
}

uint32_t cc_selftest_checksum(void) {
  static int8_t in[kMaxIn];
  static int8_t weights[kMaxIn * kMaxOut];
  static int32_t bias[kMaxOut];
  static int8_t out[kMaxOut];
  uint32_t state = 0x9E3779B9u;
  uint32_t hash = 2166136261u;
  int c;
  for (c = 0; c < kCases; ++c) {
    const uint16_t in_size = (uint16_t)random_in(&state, 1, kMaxIn);
    const uint16_t out_size = (uint16_t)random_in(&state, 1, kMaxOut);
    const int32_t input_offset = random_in(&state, -127, 128);
    const int32_t output_offset = random_in(&state, -128, 127);
    const int32_t multiplier = random_in(&state, 1 << 30, 0x7FFFFFFF);
    const int32_t shift = random_in(&state, -12, 2);
    const int32_t act_min = random_in(&state, -128, 0);
    const int32_t act_max = random_in(&state, 0, 127);
    uint32_t i;
    for (i = 0; i < in_size; ++i)
      in[i] = (int8_t)random_in(&state, -128, 127);
    for (i = 0; i < (uint32_t)in_size * out_size; ++i) {
      weights[i] = (int8_t)random_in(&state, -127, 127);
    }
    for (i = 0; i < out_size; ++i)
      bias[i] = random_in(&state, -100000, 100000);
    if (cc_fully_connected_s8(in, in_size, input_offset, weights, bias, out_size, multiplier, shift,
                              output_offset, act_min, act_max, out) != CC_OK) {
      return 0;
    }
    hash = fnv1a(hash, (const uint8_t*)out, out_size);
  }
  return hash;
}
