/* SHA-256 of FIPS 180-4, section 6.2 (cc_sha256.h). */
#include "cc_sha256.h"

#include <string.h>

/* The first 32 bits of the fractional parts of the cube roots of the first 64 primes (4.2.2). */
static const uint32_t kRound[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

static uint32_t rotr(uint32_t x, unsigned n) {
  return (x >> n) | (x << (32u - n));
}

/* One 512-bit block (6.2.2). */
static void compress(uint32_t state[8], const uint8_t block[64]) {
  uint32_t w[64];
  uint32_t a, b, c, d, e, f, g, h;
  unsigned t;
  for (t = 0; t < 16; ++t)
    w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
           (uint32_t)block[4 * t + 2] << 8 | (uint32_t)block[4 * t + 3];
  for (t = 16; t < 64; ++t) {
    const uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  a = state[0];
  b = state[1];
  c = state[2];
  d = state[3];
  e = state[4];
  f = state[5];
  g = state[6];
  h = state[7];
  for (t = 0; t < 64; ++t) {
    const uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    const uint32_t choose = (e & f) ^ (~e & g);
    const uint32_t t1 = h + big_s1 + choose + kRound[t] + w[t];
    const uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    const uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = big_s0 + majority;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

void cc_sha256_init(cc_sha256* sha) {
  /* The first 32 bits of the fractional parts of the square roots of the first 8 primes. */
  static const uint32_t kInitial[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                       0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
  memcpy(sha->state, kInitial, sizeof kInitial);
  sha->length = 0;
  sha->buffered = 0;
}

void cc_sha256_update(cc_sha256* sha, const void* bytes, size_t length) {
  const uint8_t* in = (const uint8_t*)bytes;
  sha->length += length;
  while (length > 0) {
    size_t take = 64u - sha->buffered;
    if (take > length) take = length;
    memcpy(sha->block + sha->buffered, in, take);
    sha->buffered += (uint32_t)take;
    in += take;
    length -= take;
    if (sha->buffered == 64u) {
      compress(sha->state, sha->block);
      sha->buffered = 0;
    }
  }
}

void cc_sha256_final(cc_sha256* sha, uint8_t digest[CC_SHA256_BYTES]) {
  /* Padding (5.1.1): a 1 bit, zeros up to 56 bytes mod 64, the length in bits big-endian. */
  const uint64_t bits = sha->length * 8u;
  unsigned i;
  sha->block[sha->buffered++] = 0x80u;
  if (sha->buffered > 56u) {
    memset(sha->block + sha->buffered, 0, 64u - sha->buffered);
    compress(sha->state, sha->block);
    sha->buffered = 0;
  }
  memset(sha->block + sha->buffered, 0, 56u - sha->buffered);
  for (i = 0; i < 8; ++i)
    sha->block[56u + i] = (uint8_t)(bits >> (56u - 8u * i));
  compress(sha->state, sha->block);
  for (i = 0; i < 8; ++i) {
    digest[4 * i] = (uint8_t)(sha->state[i] >> 24);
    digest[4 * i + 1] = (uint8_t)(sha->state[i] >> 16);
    digest[4 * i + 2] = (uint8_t)(sha->state[i] >> 8);
    digest[4 * i + 3] = (uint8_t)sha->state[i];
  }
}

void cc_sha256_bytes(const void* bytes, size_t length, uint8_t digest[CC_SHA256_BYTES]) {
  cc_sha256 sha;
  cc_sha256_init(&sha);
  cc_sha256_update(&sha, bytes, length);
  cc_sha256_final(&sha, digest);
}
