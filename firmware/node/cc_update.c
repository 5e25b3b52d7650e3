/* Model-only update over the serial line (cc_update.h, docs/node-protocol.md "Model update"). */
#include "cc_update.h"

#include <string.h>

#include "cc_sha256.h"

#define CC_UPDATE_NONE 0xFFu
#define CC_UPDATE_MAX_FIELDS 6

/* ---- text ------------------------------------------------------------------------------------ */

typedef struct {
  const char* text;
  size_t length;
} cc_field;

/* Splits at single spaces (cc_node.c has already refused empty fields). */
static size_t split_fields(const char* body, size_t length, cc_field* fields) {
  size_t n = 0, start = 0, i;
  for (i = 0; i <= length; ++i) {
    if (i == length || body[i] == ' ') {
      if (i == start || n == CC_UPDATE_MAX_FIELDS) return 0;
      fields[n].text = body + start;
      fields[n].length = i - start;
      ++n;
      start = i + 1;
    }
  }
  return n;
}

static int field_is(cc_field f, const char* text) {
  return f.length == strlen(text) && memcmp(f.text, text, f.length) == 0;
}

static int parse_u32(cc_field f, uint32_t* out) {
  uint32_t value = 0;
  size_t i;
  if (f.length == 0 || f.length > 10) return 0;
  for (i = 0; i < f.length; ++i) {
    const uint32_t digit = (uint32_t)(f.text[i] - '0');
    if (f.text[i] < '0' || f.text[i] > '9' || value > (0xFFFFFFFFu - digit) / 10u) return 0;
    value = value * 10u + digit;
  }
  *out = value;
  return 1;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Lowercase hex of exactly 2 * n digits into n bytes. */
static int parse_hex(cc_field f, uint8_t* out, size_t n) {
  size_t i;
  if (f.length != 2u * n) return 0;
  for (i = 0; i < n; ++i) {
    const int hi = hex_digit(f.text[2 * i]), lo = hex_digit(f.text[2 * i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 1;
}

static int parse_version(cc_field f, char* out) {
  size_t i;
  if (f.length < 1 || f.length > CC_NODE_MAX_VERSION) return 0;
  for (i = 0; i < f.length; ++i) {
    const char c = f.text[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return 0;
  }
  memcpy(out, f.text, f.length);
  out[f.length] = '\0';
  return 1;
}

typedef struct {
  char* text;
  size_t length, capacity;
} cc_text;

static void put(cc_text* t, const char* s) {
  size_t n = strlen(s);
  if (n > t->capacity - t->length) n = t->capacity - t->length;
  memcpy(t->text + t->length, s, n);
  t->length += n;
}

static void put_u32(cc_text* t, uint32_t v) {
  char digits[11];
  size_t n = sizeof digits - 1;
  digits[n] = '\0';
  do {
    digits[--n] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0u);
  put(t, digits + n);
}

static void put_hex(cc_text* t, const uint8_t* bytes, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n && t->length + 2 <= t->capacity; ++i) {
    t->text[t->length++] = kHex[bytes[i] >> 4];
    t->text[t->length++] = kHex[bytes[i] & 0xFu];
  }
}

/* ---- record ---------------------------------------------------------------------------------- */

static uint32_t le32(const uint8_t* p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* "CCUR", u32 sequence, u8 active, 3 zero bytes, per slot u32 length and 32 bytes of SHA-256,
 * u32 CRC-32 of the 84 bytes before it. */
static void encode_record(const cc_update_record* r, uint8_t out[CC_UPDATE_RECORD_BYTES]) {
  unsigned s;
  memset(out, 0, CC_UPDATE_RECORD_BYTES);
  memcpy(out, "CCUR", 4);
  put_le32(out + 4, r->sequence);
  out[8] = r->active;
  for (s = 0; s < CC_UPDATE_SLOTS; ++s) {
    put_le32(out + 12 + 36 * s, r->slots[s].length);
    memcpy(out + 16 + 36 * s, r->slots[s].sha256, 32);
  }
  put_le32(out + 84, cc_node_crc32(0u, out, 84));
}

static int decode_record(const uint8_t* in, cc_update_record* r) {
  unsigned s;
  if (in == NULL || memcmp(in, "CCUR", 4) != 0 || le32(in + 84) != cc_node_crc32(0u, in, 84))
    return 0;
  r->sequence = le32(in + 4);
  r->active = in[8];
  if (r->active != 0u && r->active != 1u && r->active != CC_UPDATE_NONE) return 0;
  for (s = 0; s < CC_UPDATE_SLOTS; ++s) {
    r->slots[s].length = le32(in + 12 + 36 * s);
    memcpy(r->slots[s].sha256, in + 16 + 36 * s, 32);
  }
  return 1;
}

/* Writes `next` into the copy that does not hold the current record: a reset during the erase
 * or the write leaves that copy invalid and the current one in force. */
static int write_record(cc_update* u, const cc_update_record* next) {
  const unsigned copy = u->record_copy == CC_UPDATE_REGION_RECORD_0 ? CC_UPDATE_REGION_RECORD_1
                                                                    : CC_UPDATE_REGION_RECORD_0;
  uint8_t bytes[CC_UPDATE_RECORD_BYTES];
  encode_record(next, bytes);
  if (u->storage.erase(u->storage.context, copy) != 0 ||
      u->storage.write(u->storage.context, copy, 0u, bytes, sizeof bytes) != 0)
    return 0;
  u->record = *next;
  u->record_copy = copy;
  return 1;
}

/* ---- slots ----------------------------------------------------------------------------------- */

static int erased(const uint8_t* bytes, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; ++i)
    if (bytes[i] != 0xFFu) return 0;
  return 1;
}

/* The slot holds the recorded blob: its hash matches and it reads as a model this build runs. */
static int confirm_slot(cc_update* u, unsigned slot) {
  const cc_update_slot* s = &u->record.slots[slot];
  const uint8_t* bytes = u->storage.map(u->storage.context, slot);
  uint8_t digest[CC_SHA256_BYTES];
  if (bytes == NULL || s->length == 0u || s->length > u->storage.slot_bytes) return 0;
  cc_sha256_bytes(bytes, s->length, digest);
  return memcmp(digest, s->sha256, sizeof digest) == 0 &&
         cc_model_blob_read(&u->loaded[slot], bytes, s->length) == CC_MODEL_BLOB_OK &&
         cc_node_check_model(&u->loaded[slot].node) == CC_NODE_OK;
}

const cc_node_model* cc_update_init(cc_update* u, cc_update_storage storage,
                                    const cc_node_model* builtin) {
  cc_update_record copies[2];
  int valid[2];
  unsigned s;
  memset(u, 0, sizeof *u);
  u->storage = storage;
  u->builtin = builtin;
  u->running = builtin;
  u->last = "none";
  u->record.active = CC_UPDATE_NONE;
  u->record_copy = CC_UPDATE_REGION_RECORD_1; /* the first record goes to copy 0 */
  for (s = 0; s < 2; ++s)
    valid[s] =
        decode_record(storage.map(storage.context, CC_UPDATE_REGION_RECORD_0 + s), &copies[s]);
  if (valid[0] || valid[1]) {
    /* Both valid: the newer (sequence numbers compared modulo 2^32). */
    const unsigned newest =
        !valid[1] ? 0u
                  : (!valid[0] ? 1u : ((int32_t)(copies[1].sequence - copies[0].sequence) > 0));
    u->record = copies[newest];
    u->record_copy = CC_UPDATE_REGION_RECORD_0 + newest;
  }
  for (s = 0; s < CC_UPDATE_SLOTS; ++s) {
    const uint8_t* bytes = storage.map(storage.context, s);
    if (u->record.slots[s].length > 0u && !confirm_slot(u, s)) {
      u->record.slots[s].length = 0u;
      u->last = "interrupted";
    } else if (u->record.slots[s].length == 0u && bytes != NULL && !erased(bytes, 4u)) {
      u->last = "interrupted"; /* written but never recorded */
    }
  }
  if (u->record.active < CC_UPDATE_SLOTS) {
    if (u->record.slots[u->record.active].length > 0u)
      u->running = &u->loaded[u->record.active].node;
    else
      u->record.active = CC_UPDATE_NONE; /* its slot no longer reads: the built-in model runs */
  }
  return u->running;
}

int cc_update_active(const cc_update* u) {
  return u->record.active < CC_UPDATE_SLOTS ? (int)u->record.active : -1;
}

/* ---- requests -------------------------------------------------------------------------------- */

static const char* slot_name(int slot) {
  return slot == 0 ? "A" : (slot == 1 ? "B" : "-");
}

/* "cc2 UP SEQ STATE NEXT WORD" */
static void answer_state(cc_update* u, cc_node* node, uint32_t seq, const char* word) {
  cc_text t;
  t.text = u->answer;
  t.length = 0;
  t.capacity = sizeof u->answer;
  put(&t, "cc2 UP ");
  put_u32(&t, seq);
  put(&t, u->receiving ? " receiving " : " idle ");
  put_u32(&t, u->receiving ? u->next : 0u);
  put(&t, " ");
  put(&t, word);
  cc_node_send_body(node, t.text, t.length);
}

/* Ends the transfer with a reason (kept for US and ID) and answers it. */
static void fail(cc_update* u, cc_node* node, uint32_t seq, const char* reason) {
  u->receiving = 0;
  u->last = reason;
  answer_state(u, node, seq, reason);
}

static void answer_field_error(cc_node* node, uint32_t seq) {
  char body[32];
  cc_text t;
  t.text = body;
  t.length = 0;
  t.capacity = sizeof body;
  put(&t, "cc2 ER ");
  put_u32(&t, seq);
  put(&t, " field");
  ++node->stats.errors;
  cc_node_send_body(node, t.text, t.length);
}

/* UB SEQ SIZE SHA256 VERSION: erase the inactive slot and start receiving into it. */
static void begin(cc_update* u, cc_node* node, uint32_t seq, const cc_field* f, size_t n) {
  uint32_t size;
  uint8_t sha[32];
  char version[CC_NODE_MAX_VERSION + 1];
  if (n != 6 || !parse_u32(f[3], &size) || !parse_hex(f[4], sha, sizeof sha) ||
      !parse_version(f[5], version)) {
    answer_field_error(node, seq);
    return;
  }
  if (size == 0u || size > u->storage.slot_bytes) {
    fail(u, node, seq, "size");
    return;
  }
  u->receiving = 0;
  u->target = u->record.active == 0u ? 1u : 0u;
  /* From here the target slot's old contents are gone: no longer offered. */
  u->record.slots[u->target].length = 0u;
  if (u->storage.erase(u->storage.context, u->target) != 0) {
    fail(u, node, seq, "storage");
    return;
  }
  u->receiving = 1;
  u->size = size;
  u->next = 0;
  memcpy(u->sha256, sha, sizeof sha);
  memcpy(u->version, version, sizeof version);
  answer_state(u, node, seq, "ok");
}

/* UC SEQ OFFSET HEX CRC: one chunk at the next offset; a resent earlier one is acknowledged. */
static void chunk(cc_update* u, cc_node* node, uint32_t seq, const cc_field* f, size_t n) {
  uint8_t data[CC_UPDATE_CHUNK_MAX];
  uint8_t crc_bytes[4];
  uint32_t offset, length;
  if (n != 6 || !parse_u32(f[3], &offset) || f[4].length % 2u != 0u || f[4].length == 0u ||
      f[4].length > 2u * CC_UPDATE_CHUNK_MAX || !parse_hex(f[4], data, f[4].length / 2u) ||
      !parse_hex(f[5], crc_bytes, 4)) {
    answer_field_error(node, seq);
    return;
  }
  length = (uint32_t)(f[4].length / 2u);
  if (!u->receiving) {
    answer_state(u, node, seq, "idle");
    return;
  }
  if (cc_node_crc32(0u, data, length) !=
      ((uint32_t)crc_bytes[0] << 24 | (uint32_t)crc_bytes[1] << 16 | (uint32_t)crc_bytes[2] << 8 |
       crc_bytes[3])) {
    answer_state(u, node, seq, "chunk"); /* the transfer goes on: the gateway resends it */
    return;
  }
  if (offset < u->next && length <= u->next - offset) {
    answer_state(u, node, seq, "ok"); /* a resend of a chunk already written */
    return;
  }
  if (offset != u->next || offset % 4u != 0u || length > u->size - offset ||
      (length % 4u != 0u && offset + length != u->size)) {
    answer_state(u, node, seq, "offset");
    return;
  }
  if (u->storage.write(u->storage.context, u->target, offset, data, length) != 0) {
    fail(u, node, seq, "storage");
    return;
  }
  u->next += length;
  answer_state(u, node, seq, "ok");
}

/* Runs the blob's self-test with the node's own buffers (no forecast is running meanwhile). */
static int self_test(cc_node* node, const cc_model_blob* blob) {
  const cc_student_model* s = &blob->student;
  uint16_t i;
  for (i = 0; i < s->input_size; ++i) {
    const uint8_t* p = blob->selftest_input + 2u * i;
    node->input[i] = (int16_t)(uint16_t)(p[0] | p[1] << 8);
  }
  if (cc_student_forecast(s, node->input, node->output, node->scratch, sizeof node->scratch) !=
      CC_OK)
    return 0;
  for (i = 0; i < s->horizon; ++i)
    if ((uint32_t)node->output[i] != le32(blob->selftest_output + 4u * i)) return 0;
  return 1;
}

/* UE SEQ: verify, self-test, record, switch. */
static void commit(cc_update* u, cc_node* node, uint32_t seq) {
  const uint8_t* bytes;
  cc_model_blob* blob;
  cc_update_record next;
  cc_model_blob_status read;
  cc_node_status fits;
  uint8_t digest[CC_SHA256_BYTES];
  if (!u->receiving) {
    answer_state(u, node, seq, "idle");
    return;
  }
  if (u->next != u->size) {
    answer_state(u, node, seq, "incomplete");
    return;
  }
  bytes = u->storage.map(u->storage.context, u->target);
  if (bytes == NULL) {
    fail(u, node, seq, "storage");
    return;
  }
  /* The hash of what the slot holds, read back: this also catches a write that did not stick. */
  cc_sha256_bytes(bytes, u->size, digest);
  if (memcmp(digest, u->sha256, sizeof digest) != 0) {
    fail(u, node, seq, "hash");
    return;
  }
  blob = &u->loaded[u->target];
  read = cc_model_blob_read(blob, bytes, u->size);
  if (read != CC_MODEL_BLOB_OK) {
    fail(u, node, seq, read == CC_MODEL_BLOB_CAPACITY ? "capacity" : "blob");
    return;
  }
  if (strcmp(blob->version, u->version) != 0) {
    fail(u, node, seq, "version");
    return;
  }
  fits = cc_node_check_model(&blob->node);
  if (fits != CC_NODE_OK) {
    fail(u, node, seq, fits == CC_NODE_ERROR_CAPACITY ? "capacity" : "blob");
    return;
  }
  if (blob->selftest_input == NULL) {
    fail(u, node, seq, "noselftest");
    return;
  }
  if (!self_test(node, blob)) {
    fail(u, node, seq, "selftest");
    return;
  }
  next = u->record;
  ++next.sequence;
  next.active = u->target;
  next.slots[u->target].length = u->size;
  memcpy(next.slots[u->target].sha256, digest, sizeof digest);
  if (!write_record(u, &next)) {
    fail(u, node, seq, "storage");
    return;
  }
  u->receiving = 0;
  u->last = "switched";
  u->running = &blob->node;
  answer_state(u, node, seq, "switched");
  (void)cc_node_use_model(node, u->running); /* cannot fail: checked above; sends HI */
}

/* "cc2 SL SEQ ACTIVE A VERSION SHA256 B VERSION SHA256", "-" for an empty slot. */
static void answer_slots(cc_update* u, cc_node* node, uint32_t seq) {
  cc_text t;
  unsigned s;
  t.text = u->answer;
  t.length = 0;
  t.capacity = sizeof u->answer;
  put(&t, "cc2 SL ");
  put_u32(&t, seq);
  put(&t, " ");
  put(&t, slot_name(cc_update_active(u)));
  for (s = 0; s < CC_UPDATE_SLOTS; ++s) {
    put(&t, s == 0 ? " A " : " B ");
    if (u->record.slots[s].length == 0u) {
      put(&t, "- -");
    } else {
      put(&t, u->loaded[s].version);
      put(&t, " ");
      put_hex(&t, u->record.slots[s].sha256, 32);
    }
  }
  cc_node_send_body(node, t.text, t.length);
}

static int handle(void* context, cc_node* node, const char* body, size_t length) {
  cc_update* u = (cc_update*)context;
  cc_field f[CC_UPDATE_MAX_FIELDS];
  const size_t n = split_fields(body, length, f);
  uint32_t seq = 0;
  int ub, uc, ue, ua, us, sl;
  if (n < 2) return 0;
  ub = field_is(f[1], "UB");
  uc = field_is(f[1], "UC");
  ue = field_is(f[1], "UE");
  ua = field_is(f[1], "UA");
  us = field_is(f[1], "US");
  sl = field_is(f[1], "SL");
  if (!(ub || uc || ue || ua || us || sl)) return 0; /* the node answers ER type */
  if (n < 3 || !parse_u32(f[2], &seq) || ((ue || ua || us || sl) && n != 3)) {
    answer_field_error(node, n >= 3 && parse_u32(f[2], &seq) ? seq : 0u);
    return 1;
  }
  if (ub) {
    begin(u, node, seq, f, n);
  } else if (uc) {
    chunk(u, node, seq, f, n);
  } else if (ue) {
    commit(u, node, seq);
  } else if (ua) {
    if (u->receiving) u->last = "aborted";
    u->receiving = 0;
    answer_state(u, node, seq, u->last);
  } else if (us) {
    answer_state(u, node, seq, u->last);
  } else {
    answer_slots(u, node, seq);
  }
  return 1;
}

/* Appended to `cc2 ID`: the active slot and the last transfer's outcome. */
static size_t identify(void* context, char* text, size_t capacity) {
  const cc_update* u = (const cc_update*)context;
  cc_text t;
  t.text = text;
  t.length = 0;
  t.capacity = capacity;
  put(&t, slot_name(cc_update_active(u)));
  put(&t, " ");
  put(&t, u->last);
  return t.length;
}

void cc_update_attach(cc_update* u, cc_node* node) {
  cc_node_extension e;
  e.request = handle;
  e.identify = identify;
  e.context = u;
  cc_node_set_extension(node, e);
}
