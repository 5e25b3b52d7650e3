/*
 * cyclecast edge node: the serial line protocol of docs/node-protocol.md around the int8 student.
 *
 * C99, no heap, no libc beyond <stdint.h>/<string.h>. Floating point is single precision only
 * (the Cortex-M4F's FPU); build with -ffp-contract=off so that the host (virtual node, tests) and
 * the target compute bit-identical results. The node keeps the last W cycles of up to
 * CC_NODE_MAX_CELLS cells in the caller-owned cc_node struct, encodes the window as the host's
 * encode_input does (representation 2, docs/pipeline.md), runs cc_student_forecast and decodes
 * SOH = soh_last + amp * y.
 *
 * Lifetimes: the model (and everything it points to) and the io hooks' context must outlive the
 * cc_node; the node writes to nothing but itself and the hooks.
 */
#ifndef CYCLECAST_CC_NODE_H
#define CYCLECAST_CC_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "cyclecast/cc_student.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Capacity, fixed at compile time (override with -D to size a build for one model). */
#ifndef CC_NODE_MAX_CELLS
#define CC_NODE_MAX_CELLS 8
#endif
#ifndef CC_NODE_MAX_INPUT_LEN
#define CC_NODE_MAX_INPUT_LEN 128 /* W */
#endif
#ifndef CC_NODE_MAX_FEATURES
#define CC_NODE_MAX_FEATURES 3 /* optional features: every one the pipeline knows */
#endif
#ifndef CC_NODE_MAX_HORIZON
#define CC_NODE_MAX_HORIZON 128 /* H */
#endif
#ifndef CC_NODE_MAX_SCRATCH_BYTES
#define CC_NODE_MAX_SCRATCH_BYTES 1024 /* cc_student_scratch_bytes: 2 (F + 2 width) */
#endif

/* The highest protocol version the node speaks; it answers each request in the request's own
 * version (docs/node-protocol.md, "Versions"), so a v1 gateway still gets v1 answers. */
#define CC_NODE_PROTOCOL_VERSION 2
#define CC_NODE_MAX_LINE 255   /* bytes before '\n' */
#define CC_NODE_MAX_CELL_ID 64 /* characters of a cell id */
#define CC_NODE_MAX_VERSION 32 /* characters of a model version */
#define CC_NODE_EOL_SOH 0.8f   /* end of life: first forecast SOH below this */
#define CC_NODE_MAX_BANDS 3    /* rows of an interval table: SOH bands high, medium, low */
#define CC_NODE_MAX_HALF_WIDTH 1073741824 /* 2^30, as the CCQ8 blob's interval table */
#define CC_NODE_CHANNELS (1 + CC_NODE_MAX_FEATURES)
#define CC_NODE_MAX_INPUT_SIZE (CC_NODE_MAX_INPUT_LEN * (1 + CC_NODE_MAX_FEATURES) + 2)

/* Optional feature ids (the order of the host's kFeature* names). */
enum {
  CC_NODE_FEATURE_IR_OHM = 0,
  CC_NODE_FEATURE_TEMPERATURE_C = 1,
  CC_NODE_FEATURE_CHARGE_MIN = 2
};

typedef enum {
  CC_NODE_OK = 0,
  CC_NODE_ERROR_ARGUMENT = 1, /* a NULL pointer */
  CC_NODE_ERROR_MODEL = 2,    /* the model fails cc_student_validate or does not match its
                                 normalization (sizes, scales, version, hash) */
  CC_NODE_ERROR_CAPACITY = 3  /* the model needs more than the CC_NODE_MAX_* this build has */
} cc_node_status;

/*
 * A prediction-interval table (docs/firmware.md, "The CCNM node-model blob"): one row of H
 * half-widths per SOH band of the window's origin, in integers of the student's output scale;
 * the interval of step j is output[j] -/+ half_width[row][j] (saturated to int32), decoded as
 * the forecast is. The row is chosen by soh_last, the window's last SOH: row 0 (high) when
 * soh_last >= band_soh[0], row 1 (medium) when >= band_soh[1], row 2 (low) otherwise; a table
 * with fewer rows uses its last row for the bands beyond it (one row: every window).
 */
typedef struct {
  const int32_t* half_width; /* bands x H, row-major, each in [0, CC_NODE_MAX_HALF_WIDTH] */
  uint16_t bands;            /* 1..CC_NODE_MAX_BANDS */
  float band_soh[2];         /* 2 >= band_soh[0] > band_soh[1] > 0 */
} cc_node_interval;

/*
 * Everything the node needs about its model: the int8 student and the normalization, in float.
 * Input vector (encoded rows, the gain is applied after the forward pass):
 *   [0, W) (soh[t] - soh_last) / amp;  W (soh_last - level_offset) / level_scale;
 *   W + 1 (ln amp - log_amp_mean) / log_amp_std;  W per feature (v - mean) / std, missing 0.
 */
typedef struct {
  const cc_student_model* student;       /* input_size == W + 2 + W * feature_count, horizon == H */
  const char* version;                   /* 1..32 chars of [A-Za-z0-9_.-], NUL-terminated */
  const char* sha256_hex;                /* 64 lowercase hex digits of the node-model blob */
  uint16_t input_len;                    /* W */
  uint16_t horizon;                      /* H */
  uint16_t feature_count;                /* 0..3 */
  uint8_t feature_ids[3];                /* CC_NODE_FEATURE_* in input order, no repeats */
  float delta_scale;                     /* > 0 (gain = amp * delta_scale; only the doc uses it) */
  float level_offset, level_scale;       /* level_scale > 0 */
  float amp_floor;                       /* > 0 */
  float log_amp_mean, log_amp_std;       /* log_amp_std > 0 */
  float feature_mean[3], feature_std[3]; /* std > 0 */
  const cc_node_interval* interval;      /* NULL: the model has no interval table */
} cc_node_model;

/*
 * cc_node_model's layout, pinned: model_data.c (pipeline's export) fills it with positional
 * initializers, so a reordered field (six floats in a row) would silently swap values. Three
 * pointers; three uint16 and three uint8 (feature_ids), padded to float alignment; then 12 floats;
 * then the interval pointer at pointer alignment (76 bytes with the Cortex-M4's 4-byte pointers).
 * cc_node_interval likewise: a pointer, a uint16, two floats (16 bytes on the Cortex-M4).
 */
/* clang-format off */
#define CC_NODE_MODEL_ALIGN(n, a) (((n) + (a) - 1u) / (a) * (a))
#define CC_NODE_MODEL_SMALL_AT (3u * sizeof(void*))
#define CC_NODE_MODEL_FLOATS_AT \
  CC_NODE_MODEL_ALIGN(CC_NODE_MODEL_SMALL_AT + 3u * sizeof(uint16_t) + 3u * sizeof(uint8_t), \
                      sizeof(float))
#define CC_NODE_MODEL_PIN(field, offset) \
  CC_STATIC_ASSERT(offsetof(cc_node_model, field) == (offset), cc_node_model_##field)
CC_NODE_MODEL_PIN(student,       0u * sizeof(void*));
CC_NODE_MODEL_PIN(version,       1u * sizeof(void*));
CC_NODE_MODEL_PIN(sha256_hex,    2u * sizeof(void*));
CC_NODE_MODEL_PIN(input_len,     CC_NODE_MODEL_SMALL_AT + 0u * sizeof(uint16_t));
CC_NODE_MODEL_PIN(horizon,       CC_NODE_MODEL_SMALL_AT + 1u * sizeof(uint16_t));
CC_NODE_MODEL_PIN(feature_count, CC_NODE_MODEL_SMALL_AT + 2u * sizeof(uint16_t));
CC_NODE_MODEL_PIN(feature_ids,   CC_NODE_MODEL_SMALL_AT + 3u * sizeof(uint16_t));
CC_NODE_MODEL_PIN(delta_scale,   CC_NODE_MODEL_FLOATS_AT + 0u * sizeof(float));
CC_NODE_MODEL_PIN(level_offset,  CC_NODE_MODEL_FLOATS_AT + 1u * sizeof(float));
CC_NODE_MODEL_PIN(level_scale,   CC_NODE_MODEL_FLOATS_AT + 2u * sizeof(float));
CC_NODE_MODEL_PIN(amp_floor,     CC_NODE_MODEL_FLOATS_AT + 3u * sizeof(float));
CC_NODE_MODEL_PIN(log_amp_mean,  CC_NODE_MODEL_FLOATS_AT + 4u * sizeof(float));
CC_NODE_MODEL_PIN(log_amp_std,   CC_NODE_MODEL_FLOATS_AT + 5u * sizeof(float));
CC_NODE_MODEL_PIN(feature_mean,  CC_NODE_MODEL_FLOATS_AT + 6u * sizeof(float));
CC_NODE_MODEL_PIN(feature_std,   CC_NODE_MODEL_FLOATS_AT + 9u * sizeof(float));
#define CC_NODE_MODEL_INTERVAL_AT \
  CC_NODE_MODEL_ALIGN(CC_NODE_MODEL_FLOATS_AT + 12u * sizeof(float), sizeof(void*))
CC_NODE_MODEL_PIN(interval,      CC_NODE_MODEL_INTERVAL_AT);
CC_STATIC_ASSERT(sizeof(cc_node_model) == CC_NODE_MODEL_INTERVAL_AT + sizeof(void*),
                 cc_node_model_size);
CC_STATIC_ASSERT(offsetof(cc_node_interval, half_width) == 0u, cc_node_interval_half_width);
CC_STATIC_ASSERT(offsetof(cc_node_interval, bands) == sizeof(void*), cc_node_interval_bands);
CC_STATIC_ASSERT(offsetof(cc_node_interval, band_soh) ==
                 CC_NODE_MODEL_ALIGN(sizeof(void*) + sizeof(uint16_t), sizeof(float)),
                 cc_node_interval_band_soh);
CC_STATIC_ASSERT(sizeof(cc_node_interval) ==
                 CC_NODE_MODEL_ALIGN(CC_NODE_MODEL_ALIGN(sizeof(void*) + sizeof(uint16_t),
                                                         sizeof(float)) + 2u * sizeof(float),
                                     sizeof(void*)),
                 cc_node_interval_size);
#undef CC_NODE_MODEL_INTERVAL_AT
#undef CC_NODE_MODEL_PIN
#undef CC_NODE_MODEL_FLOATS_AT
#undef CC_NODE_MODEL_SMALL_AT
#undef CC_NODE_MODEL_ALIGN
/* clang-format on */

/* Platform hooks. write: one whole answer line including '\n'. micros: a free-running
 * microsecond clock (wraps at 2^32; only differences are used). */
typedef struct {
  void (*write)(void* context, const char* bytes, size_t length);
  uint32_t (*micros)(void* context);
  void* context;
} cc_node_io;

/* Counters of docs/node-protocol.md (ST answer). */
typedef struct {
  uint32_t rx, crc, bad, longs, forecasts, errors, evictions;
} cc_node_stats;

typedef struct {
  char id[CC_NODE_MAX_CELL_ID + 1]; /* "" when the slot is free */
  uint32_t last_cycle;
  uint32_t last_used; /* node tick when last touched, for least-recently-used eviction */
  uint16_t count;     /* cycles held, <= W */
  uint16_t head;      /* ring position of the next write */
  /* [0] SOH as received; [1 + f] feature f already normalized ((v - mean) / std, 0 when the
   * value was missing), so the window is encoded without re-deciding what was missing. */
  float values[CC_NODE_CHANNELS][CC_NODE_MAX_INPUT_LEN];
} cc_node_cell;

struct cc_node;

/*
 * Requests the node program itself does not know, for a module linked beside it (cc_update.h,
 * the model update of protocol 2). The node stays independent of such modules: without an
 * extension it answers them ER type.
 *   request:  a `cc2` frame of a type the node does not handle; body is the frame body without
 *             "*CRC". Returns 1 when it sent exactly one answer (cc_node_send_body), 0 to let
 *             the node answer ER type.
 *   identify: fields appended to the answer to `cc2 ID` (after a space): writes at most
 *             `capacity` bytes to `text` and returns how many.
 */
typedef struct {
  int (*request)(void* context, struct cc_node* node, const char* body, size_t length);
  size_t (*identify)(void* context, char* text, size_t capacity);
  void* context;
} cc_node_extension;

typedef struct cc_node {
  const cc_node_model* model;
  cc_node_io io;
  cc_node_extension extension;     /* all NULL: none */
  float input_scale, output_scale; /* S_x, S_y of the student, in float */
  char line[CC_NODE_MAX_LINE + 1];
  uint16_t line_length;
  uint8_t skipping;       /* an oversized line is being skipped up to its '\n' */
  uint8_t answer_version; /* protocol version of the request being answered (HI: 1) */
  uint32_t tick;
  cc_node_stats stats;
  cc_node_cell cells[CC_NODE_MAX_CELLS];
  int16_t input[CC_NODE_MAX_INPUT_SIZE];
  int32_t output[CC_NODE_MAX_HORIZON];
  /* The last forecast's decoding: soh = last + amp * y * S_y, and its interval row (NULL: the
   * model has none, or no forecast yet). */
  float forecast_last, forecast_amp;
  const int32_t* forecast_band;
  int16_t scratch[CC_NODE_MAX_SCRATCH_BYTES / 2];
  char answer[CC_NODE_MAX_LINE + 1]; /* kept here rather than on the stack: the node's stack
                                        budget is the forward pass's */
} cc_node;

/*
 * Checks `model` (cc_student_validate and the match with its normalization) and the build's
 * capacity, resets `node`, and sends the start-up frame `cc1 HI 0 1 VERSION SHA256` (a v1 frame
 * whatever the gateway speaks, so that every gateway sees the reset). The node is usable only
 * after CC_NODE_OK.
 */
cc_node_status cc_node_init(cc_node* node, const cc_node_model* model, cc_node_io io);

/* Consumes received bytes (any split: a line may arrive in pieces); every complete line is
 * handled and answered through io.write before this returns. Never blocks or fails. */
void cc_node_feed(cc_node* node, const char* bytes, size_t length);

/* Installs an extension (cc_node_extension). cc_node_init clears it: set it after every init. */
void cc_node_set_extension(cc_node* node, cc_node_extension extension);

/* Sends one answer line: `body` (printable, at most CC_NODE_MAX_LINE - 9 bytes; longer is cut)
 * followed by "*CRC\n". For extensions answering their requests. */
void cc_node_send_body(cc_node* node, const char* body, size_t length);

/* The checks cc_node_init makes of a model, without a node: CC_NODE_OK, CC_NODE_ERROR_MODEL or
 * CC_NODE_ERROR_CAPACITY. */
cc_node_status cc_node_check_model(const cc_node_model* model);

/* Switches an initialised node to another model (a model update): checks it as cc_node_init
 * does, and on CC_NODE_OK drops every cell history (they were encoded for the old model) and
 * sends the start-up frame HI with the new model, so a gateway resends its cells' windows as
 * after a reset. Counters and the extension are kept. On an error nothing changes. */
cc_node_status cc_node_use_model(cc_node* node, const cc_node_model* model);

/* The node's forecast outside the line protocol, for the service's own forecaster: `cell` holds
 * a full window (count == W; values as cc_node_cell describes, oldest at head, head in [0, W)).
 * Writes the H forecast SOH values, at cycles last + 1 .. last + H, to soh_out. The node must
 * have been initialised with cc_node_init; its line state and cells are left as they were.
 * Returns CC_ERROR_ARGUMENT for a NULL pointer, an uninitialised node, or a cell whose count is
 * not W or whose head is outside the window (nothing is read through it then); CC_OK otherwise. */
cc_status cc_node_forecast_cell(cc_node* node, const cc_node_cell* cell, float* soh_out);

/* The last forecast's raw int32 outputs (H of them, scale S_y), for parity checks. */
const int32_t* cc_node_last_output(const cc_node* node);

/* The prediction interval of the last forecast (FC answer or cc_node_forecast_cell): H lower and
 * H upper SOH bounds, from the interval table's row of that window's band. CC_ERROR_ARGUMENT for a
 * NULL pointer, a model without an interval table, or no forecast yet (nothing written then). */
cc_status cc_node_last_interval(const cc_node* node, float* lower_out, float* upper_out);

/* CRC-32 (IEEE 802.3, reflected, as zlib) of `length` bytes, continuing from `crc` (start: 0). */
uint32_t cc_node_crc32(uint32_t crc, const void* bytes, size_t length);

/* Natural logarithm of a positive, finite, normal float (absolute error below 1e-6 over
 * [1e-4, 1e3], tests/firmware); the node has no libm. */
float cc_node_logf(float x);

#ifdef __cplusplus
}
#endif

#endif /* CYCLECAST_CC_NODE_H */
