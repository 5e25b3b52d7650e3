/*
 * Model-only update over the serial line (node protocol 2, docs/node-protocol.md "Model update"):
 * two model slots A and B and a small "active slot" record in non-volatile memory, behind the
 * storage hooks below (the Nano's internal flash, a file for the virtual node, a RAM array under
 * QEMU). The gateway sends a CCNM blob in chunks into the inactive slot; at commit the node
 * checks the whole blob's SHA-256 against the announced one, reads the blob (cc_model_blob.h),
 * checks it fits this build, runs the self-test the blob carries, and only then writes the
 * record naming the new slot (the switch) and runs the new model. The record is written last
 * and kept twice (a sequence number and a CRC per copy), so a reset at any point leaves the old
 * model active. Every failure keeps the old model and answers a reason word.
 *
 * C99, no heap. Use: cc_update_init (picks the model to run), cc_node_init with it, then
 * cc_update_attach after every cc_node_init.
 */
#ifndef CYCLECAST_CC_UPDATE_H
#define CYCLECAST_CC_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "cc_model_blob.h"
#include "cc_node.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CC_UPDATE_SLOTS 2
#define CC_UPDATE_CHUNK_MAX 96 /* blob bytes per UC frame (192 hex digits: the line fits 255) */
#define CC_UPDATE_RECORD_BYTES 88

/* Storage regions: the two slots, then the two copies of the record. */
enum {
  CC_UPDATE_REGION_SLOT_A = 0,
  CC_UPDATE_REGION_SLOT_B = 1,
  CC_UPDATE_REGION_RECORD_0 = 2,
  CC_UPDATE_REGION_RECORD_1 = 3
};

/*
 * Non-volatile memory with flash semantics. Each hook returns 0 on success.
 *   slot_bytes: capacity of each slot region (record regions hold CC_UPDATE_RECORD_BYTES).
 *   erase:      sets every byte of a region to 0xFF.
 *   write:      programs bytes into an erased part of a region; offsets are multiples of 4 (the
 *               nRF52840 writes words: a backend pads a short last word with 0xFF).
 *   map:        the region's bytes, readable in place (flash is memory-mapped; the model runs
 *               from the slot). NULL on failure.
 * A reset may stop any erase or write part-way: the record copies make that safe.
 */
typedef struct {
  uint32_t slot_bytes;
  int (*erase)(void* context, unsigned region);
  int (*write)(void* context, unsigned region, uint32_t offset, const void* bytes, uint32_t length);
  const uint8_t* (*map)(void* context, unsigned region);
  void* context;
} cc_update_storage;

/* What one slot holds, as the record says and the bytes confirm. */
typedef struct {
  uint32_t length; /* 0: empty (or not confirmed by its hash) */
  uint8_t sha256[32];
} cc_update_slot;

typedef struct {
  uint32_t sequence;
  uint8_t active; /* 0 (A), 1 (B), or 0xFF: none (the built-in model runs) */
  cc_update_slot slots[CC_UPDATE_SLOTS];
} cc_update_record;

typedef struct {
  cc_update_storage storage;
  cc_update_record record;               /* the newest valid copy, slots confirmed at start */
  unsigned record_copy;                  /* region of that copy */
  const cc_node_model* builtin;          /* compiled in (Nano) or --model (virtual node) */
  const cc_node_model* running;          /* what the node runs now */
  cc_model_blob loaded[CC_UPDATE_SLOTS]; /* the slots' models, valid where slot length > 0 */
  char slot_version[CC_UPDATE_SLOTS][CC_NODE_MAX_VERSION + 1];
  /* The transfer in progress. */
  uint8_t receiving;
  uint8_t target; /* slot being written */
  uint32_t size, next;
  uint8_t sha256[32];
  char version[CC_NODE_MAX_VERSION + 1];
  const char* last; /* outcome of the last transfer: "none", "switched" or a reason word */
  char answer[CC_NODE_MAX_LINE + 1];
} cc_update;

/*
 * Reads the record and checks each slot it names against its SHA-256 and the blob reader; a
 * slot that fails is reported empty (a transfer cut by a reset, or worn flash). Returns the model
 * to run: the active slot's if it reads, else the built-in one (which must be non-NULL).
 * `last` becomes "interrupted" when the start finds a slot written but not recorded or not
 * matching its record (a reset during a transfer), "none" otherwise.
 */
const cc_node_model* cc_update_init(cc_update* update, cc_update_storage storage,
                                    const cc_node_model* builtin);

/* Hooks the update requests into an initialised node (after every cc_node_init). */
void cc_update_attach(cc_update* update, cc_node* node);

/* The active slot: 0 (A), 1 (B) or -1 (built-in). */
int cc_update_active(const cc_update* update);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_UPDATE_H */
