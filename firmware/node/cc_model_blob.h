/*
 * The CCNM node-model blob (docs/firmware.md) read on the node itself: C99, no heap. The model
 * update (cc_update.h) receives a blob into a flash slot and runs it from there, so the node
 * needs what pipeline::read_node_model does on the host, in C. The student's int8 arrays are
 * used where they lie (the slot's memory: flash on the Nano); its int32 arrays sit at unaligned
 * offsets in the blob and are copied, little-endian, into `words`.
 */
#ifndef CYCLECAST_CC_MODEL_BLOB_H
#define CYCLECAST_CC_MODEL_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "cc_node.h"
#include "cyclecast/cc_student.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The student's int32 values (F + 6 W + 3 H) a reader holds. The default covers every model the
 * build's CC_NODE_MAX_* accept: F + 2 W <= CC_NODE_MAX_SCRATCH_BYTES / 2, H <= MAX_HORIZON. */
#ifndef CC_MODEL_BLOB_MAX_WORDS
#define CC_MODEL_BLOB_MAX_WORDS (3u * (CC_NODE_MAX_SCRATCH_BYTES / 2u) + 3u * CC_NODE_MAX_HORIZON)
#endif
/* The interval table's int32 half-widths a reader holds: bands x H. */
#define CC_MODEL_BLOB_MAX_INTERVAL_WORDS (CC_NODE_MAX_BANDS * CC_NODE_MAX_HORIZON)

#define CC_MODEL_BLOB_VERSION 2 /* the newest format read; 1 has no sections */
#define CC_MODEL_BLOB_SECTION_SELFTEST 1
#define CC_MODEL_BLOB_SECTION_INTERVAL 2

typedef enum {
  CC_MODEL_BLOB_OK = 0,
  CC_MODEL_BLOB_FORMAT = 1,  /* not CCNM/CCQ8, or a format version this build does not read */
  CC_MODEL_BLOB_CORRUPT = 2, /* sizes, CRC, version string, normalization or the student */
  CC_MODEL_BLOB_CAPACITY = 3 /* more int32 values than CC_MODEL_BLOB_MAX_WORDS */
} cc_model_blob_status;

/* A read blob. node.student points to student, node.version and node.sha256_hex into this
 * struct, node.interval to interval (or is NULL: the model has no interval table); the int8
 * arrays and the self-test point into the blob's bytes: both must outlive it. The interval table
 * is the blob's tag 2 section or, in a blob without one, the embedded CCQ8 student's own table
 * (a one-row table, as pipeline::read_node_model reads it). */
typedef struct {
  cc_node_model node;
  cc_student_model student;
  char version[CC_NODE_MAX_VERSION + 1];
  char sha256_hex[65];
  uint8_t sha256[32];
  uint16_t format;               /* CCNM format version */
  const uint8_t* selftest_input; /* I little-endian int16, or NULL when the blob has no self-test */
  const uint8_t* selftest_output; /* H little-endian int32: cc_student_forecast of the input */
  cc_node_interval interval;
  int32_t interval_words[CC_MODEL_BLOB_MAX_INTERVAL_WORDS];
  int32_t words[CC_MODEL_BLOB_MAX_WORDS]; /* last: cc_model_blob_read does not clear it */
} cc_model_blob;

/* Reads and checks `length` bytes (the checks of read_node_model, cc_student_validate included,
 * and the SHA-256 of the whole blob). On anything but CC_MODEL_BLOB_OK, `out` is unusable. */
cc_model_blob_status cc_model_blob_read(cc_model_blob* out, const uint8_t* bytes, uint32_t length);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_MODEL_BLOB_H */
