/*
 * SHA-256 (FIPS 180-4) for the edge node: C99, no heap, no libc beyond <string.h>. The node checks
 * a received model blob against the hash the gateway announced with it (cc_update.h), so the
 * hash it computes must be the one libsodium computes on the host (the blob's identity,
 * docs/firmware.md). Written from the standard's section 6.2; tests/firmware/cc_sha256_test.cc
 * holds it to the published test vectors and to libsodium.
 */
#ifndef CYCLECAST_CC_SHA256_H
#define CYCLECAST_CC_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CC_SHA256_BYTES 32

typedef struct {
  uint32_t state[8];
  uint64_t length;   /* bytes hashed so far */
  uint8_t block[64]; /* a partial block */
  uint32_t buffered; /* bytes in `block` */
} cc_sha256;

void cc_sha256_init(cc_sha256* sha);
void cc_sha256_update(cc_sha256* sha, const void* bytes, size_t length);
void cc_sha256_final(cc_sha256* sha, uint8_t digest[CC_SHA256_BYTES]);

/* The hash of `length` bytes in one call. */
void cc_sha256_bytes(const void* bytes, size_t length, uint8_t digest[CC_SHA256_BYTES]);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_SHA256_H */
