/* The CCNM node-model blob read in C (cc_model_blob.h; the layout is docs/firmware.md's). */
#include "cc_model_blob.h"

#include <string.h>

#include "cc_sha256.h"

/* A bounds-checked little-endian reader: once a read would pass the end, `ok` stays 0 and every
 * later read gives 0, so a parser checks once at the end of a group of reads. */
typedef struct {
  const uint8_t* at;
  uint32_t left;
  int ok;
} cc_reader;

static const uint8_t* take(cc_reader* r, uint32_t n) {
  const uint8_t* p = r->at;
  if (!r->ok || n > r->left) {
    r->ok = 0;
    return NULL;
  }
  r->at += n;
  r->left -= n;
  return p;
}

static uint32_t le32(const uint8_t* p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t read_u8(cc_reader* r) {
  const uint8_t* p = take(r, 1);
  return p == NULL ? 0u : p[0];
}

static uint16_t read_u16(cc_reader* r) {
  const uint8_t* p = take(r, 2);
  return p == NULL ? 0u : (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t read_u32(cc_reader* r) {
  const uint8_t* p = take(r, 4);
  return p == NULL ? 0u : le32(p);
}

static float read_f32(cc_reader* r) {
  const uint32_t bits = read_u32(r);
  float v;
  memcpy(&v, &bits, sizeof v);
  return v;
}

/* An int8 array used where it lies (int8 has no alignment). */
static const int8_t* read_i8s(cc_reader* r, uint32_t n) {
  return (const int8_t*)take(r, n);
}

/* An int32 array copied into the reader's aligned words. */
static const int32_t* read_i32s(cc_reader* r, uint32_t n, int32_t* words, uint32_t* used) {
  const uint8_t* p = take(r, 4u * n);
  int32_t* out = words + *used;
  uint32_t i;
  if (p == NULL) return NULL;
  for (i = 0; i < n; ++i)
    out[i] = (int32_t)le32(p + 4u * i);
  *used += n;
  return out;
}

static int is_id_char(uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

/* Positive and finite (NaN fails both comparisons). */
static int positive_finite(float v) {
  return v > 0.0f && v <= 3.40282347e38f;
}

static int finite(float v) {
  return v >= -3.40282347e38f && v <= 3.40282347e38f;
}

/* The embedded CCQ8 student (version 1, or 2 with the student's own interval table). Its version
 * field's high byte holds layout flags (docs/firmware.md, "The CCQ8 blob"): bit 0, the encoder's
 * rows in pair order, which the export writes for the Cortex-M4's DSP kernels. */
static cc_model_blob_status read_student(cc_model_blob* out, const uint8_t* bytes,
                                         uint32_t length) {
  cc_student_model* s = &out->student;
  cc_reader r;
  uint32_t in, f, w, h, words = 0;
  uint64_t payload;
  uint16_t version, flags, frac_bits;
  r.at = bytes;
  r.left = length;
  r.ok = 1;
  if (length < 4u || memcmp(bytes, "CCQ8", 4) != 0) return CC_MODEL_BLOB_CORRUPT;
  take(&r, 4);
  version = read_u16(&r);
  flags = (uint16_t)(version >> 8);
  version &= 0xFFu;
  if ((version != 1u && version != 2u) || (flags & ~1u) != 0u) return CC_MODEL_BLOB_CORRUPT;
  s->weight_layout =
      (flags & 1u) != 0u ? CC_STUDENT_LAYOUT_ENCODER_PAIRED : CC_STUDENT_LAYOUT_NATURAL;
  s->input_size = read_u16(&r);
  s->features = read_u16(&r);
  s->width = read_u16(&r);
  s->horizon = read_u16(&r);
  s->euler_steps = read_u16(&r);
  frac_bits = read_u16(&r);
  if (frac_bits > 255u) return CC_MODEL_BLOB_CORRUPT; /* cc_student_validate bounds it further */
  s->hidden_frac_bits = (uint8_t)frac_bits;
  s->dt_q30 = (int32_t)read_u32(&r);
  s->input_scale_mantissa = (int32_t)read_u32(&r);
  s->input_scale_exponent = (int32_t)read_u32(&r);
  s->output_scale_mantissa = (int32_t)read_u32(&r);
  s->output_scale_exponent = (int32_t)read_u32(&r);
  if (!r.ok) return CC_MODEL_BLOB_CORRUPT;
  in = s->input_size;
  f = s->features;
  w = s->width;
  h = s->horizon;
  /* In 64 bits: five products of 16-bit dimensions overflow 32. */
  payload = (uint64_t)f * in + (uint64_t)w * f + (uint64_t)w * w + (uint64_t)h * f +
            (uint64_t)h * w + 4u * (f + 6u * w + 3u * h) + (f + 2u * w + 2u * h) +
            (version == 2u ? 4u * h : 0u);
  if ((uint64_t)r.left != payload + 4u) return CC_MODEL_BLOB_CORRUPT;
  if (cc_node_crc32(0u, bytes, length - 4u) != le32(bytes + length - 4u))
    return CC_MODEL_BLOB_CORRUPT;
  if (f + 6u * w + 3u * h > CC_MODEL_BLOB_MAX_WORDS) return CC_MODEL_BLOB_CAPACITY;
  s->encoder_weight = read_i8s(&r, f * in);
  s->encoder_multiplier = read_i32s(&r, f, out->words, &words);
  s->encoder_shift = read_i8s(&r, f);
  s->lift_weight = read_i8s(&r, w * f);
  s->lift_bias = read_i32s(&r, w, out->words, &words);
  s->lift_multiplier = read_i32s(&r, w, out->words, &words);
  s->lift_shift = read_i8s(&r, w);
  s->liquid_weight = read_i8s(&r, w * w);
  s->liquid_bias = read_i32s(&r, w, out->words, &words);
  s->liquid_multiplier = read_i32s(&r, w, out->words, &words);
  s->liquid_shift = read_i8s(&r, w);
  s->liquid_alpha_q24 = read_i32s(&r, w, out->words, &words);
  s->liquid_beta_q24 = read_i32s(&r, w, out->words, &words);
  s->bypass_weight = read_i8s(&r, h * f);
  s->head_bias = read_i32s(&r, h, out->words, &words);
  s->bypass_multiplier = read_i32s(&r, h, out->words, &words);
  s->bypass_shift = read_i8s(&r, h);
  s->head_weight = read_i8s(&r, h * w);
  s->head_multiplier = read_i32s(&r, h, out->words, &words);
  s->head_shift = read_i8s(&r, h);
  s->tanh_table = cc_tanh_q15_table;
  if (!r.ok || cc_student_validate(s) != CC_OK) return CC_MODEL_BLOB_CORRUPT;
  if (version == 2u) { /* the student's own table: kept as a one-row interval table */
    const uint8_t* table = take(&r, 4u * h);
    uint32_t j;
    if (table == NULL || h > CC_MODEL_BLOB_MAX_INTERVAL_WORDS) return CC_MODEL_BLOB_CORRUPT;
    for (j = 0; j < h; ++j)
      out->interval_words[j] = (int32_t)le32(table + 4u * j);
    out->interval.half_width = out->interval_words;
    out->interval.bands = 1u;
    out->interval.band_soh[0] = 0.95f; /* a one-row table serves every band */
    out->interval.band_soh[1] = 0.90f;
  }
  return CC_MODEL_BLOB_OK;
}

/* The self-test section: u16 I, I int16 inputs, u16 H, H int32 expected outputs. */
static int read_selftest(cc_model_blob* out, const uint8_t* bytes, uint32_t length) {
  cc_reader r;
  r.at = bytes;
  r.left = length;
  r.ok = 1;
  if (read_u16(&r) != out->student.input_size) return 0;
  out->selftest_input = take(&r, 2u * out->student.input_size);
  if (read_u16(&r) != out->student.horizon) return 0;
  out->selftest_output = take(&r, 4u * out->student.horizon);
  return r.ok && r.left == 0;
}

/* The interval section: u8 b (1..CC_NODE_MAX_BANDS), f32 band_soh[0], band_soh[1], b x H int32
 * half-widths (their ranges and the limits' order: cc_node_check_model, as for every model).
 * CAPACITY when the table has more values than this build holds (a horizon beyond its own). */
static cc_model_blob_status read_interval(cc_model_blob* out, const uint8_t* bytes,
                                          uint32_t length) {
  cc_node_interval* in = &out->interval;
  cc_reader r;
  uint32_t n, j;
  const uint8_t* table;
  r.at = bytes;
  r.left = length;
  r.ok = 1;
  in->bands = read_u8(&r);
  in->band_soh[0] = read_f32(&r);
  in->band_soh[1] = read_f32(&r);
  if (!r.ok || in->bands < 1u || in->bands > CC_NODE_MAX_BANDS) return CC_MODEL_BLOB_CORRUPT;
  n = (uint32_t)in->bands * out->node.horizon;
  table = take(&r, 4u * n);
  if (table == NULL || r.left != 0) return CC_MODEL_BLOB_CORRUPT;
  if (n > CC_MODEL_BLOB_MAX_INTERVAL_WORDS) return CC_MODEL_BLOB_CAPACITY;
  for (j = 0; j < n; ++j)
    out->interval_words[j] = (int32_t)le32(table + 4u * j);
  in->half_width = out->interval_words;
  return CC_MODEL_BLOB_OK;
}

/* Format 2's sections: u8 count, then per section u8 tag, u32 length and its bytes. Unknown
 * tags are skipped (a later format may add sections an older node can ignore); each known tag
 * at most once, and a tag 2 table with a student that carries its own is refused (two tables). */
static cc_model_blob_status read_sections(cc_model_blob* out, cc_reader* r) {
  const uint8_t count = read_u8(r);
  int interval_seen = 0;
  uint8_t i;
  for (i = 0; i < count; ++i) {
    const uint8_t tag = read_u8(r);
    const uint32_t length = read_u32(r);
    const uint8_t* body = take(r, length);
    if (body == NULL) return CC_MODEL_BLOB_CORRUPT;
    if (tag == CC_MODEL_BLOB_SECTION_SELFTEST &&
        (out->selftest_input != NULL || !read_selftest(out, body, length)))
      return CC_MODEL_BLOB_CORRUPT;
    if (tag == CC_MODEL_BLOB_SECTION_INTERVAL) {
      cc_model_blob_status status;
      if (interval_seen || out->interval.half_width != NULL) return CC_MODEL_BLOB_CORRUPT;
      status = read_interval(out, body, length);
      if (status != CC_MODEL_BLOB_OK) return status;
      interval_seen = 1;
    }
  }
  return r->ok ? CC_MODEL_BLOB_OK : CC_MODEL_BLOB_CORRUPT;
}

static void to_hex(const uint8_t* bytes, size_t n, char* out) {
  static const char kHex[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xFu];
  }
  out[2 * n] = '\0';
}

cc_model_blob_status cc_model_blob_read(cc_model_blob* out, const uint8_t* bytes, uint32_t length) {
  cc_node_model* m;
  cc_reader r;
  uint8_t n, k, g;
  const uint8_t* text;
  uint32_t student_bytes;
  const uint8_t* student;
  cc_model_blob_status status;
  if (out == NULL || bytes == NULL) return CC_MODEL_BLOB_CORRUPT;
  memset(out, 0, sizeof *out - sizeof out->words);
  m = &out->node;
  r.at = bytes;
  r.left = length;
  r.ok = 1;
  if (length < 6u || memcmp(bytes, "CCNM", 4) != 0) return CC_MODEL_BLOB_FORMAT;
  take(&r, 4);
  out->format = read_u16(&r);
  if (out->format != 1u && out->format != 2u) return CC_MODEL_BLOB_FORMAT;
  if (length < 10u || cc_node_crc32(0u, bytes, length - 4u) != le32(bytes + length - 4u))
    return CC_MODEL_BLOB_CORRUPT;
  r.left -= 4; /* the CRC */
  n = read_u8(&r);
  text = take(&r, n);
  if (text == NULL || n < 1u || n > CC_NODE_MAX_VERSION) return CC_MODEL_BLOB_CORRUPT;
  for (g = 0; g < n; ++g)
    if (!is_id_char(text[g])) return CC_MODEL_BLOB_CORRUPT;
  memcpy(out->version, text, n);
  out->version[n] = '\0';
  m->input_len = read_u16(&r);
  m->horizon = read_u16(&r);
  k = read_u8(&r);
  if (!r.ok || k > 3u || m->input_len < 1u || m->horizon < 1u) return CC_MODEL_BLOB_CORRUPT;
  m->feature_count = k;
  for (g = 0; g < k; ++g)
    m->feature_ids[g] = read_u8(&r);
  m->delta_scale = read_f32(&r);
  m->level_offset = read_f32(&r);
  m->level_scale = read_f32(&r);
  m->amp_floor = read_f32(&r);
  m->log_amp_mean = read_f32(&r);
  m->log_amp_std = read_f32(&r);
  for (g = 0; g < k; ++g) {
    m->feature_mean[g] = read_f32(&r);
    m->feature_std[g] = read_f32(&r);
  }
  student_bytes = read_u32(&r);
  student = take(&r, student_bytes);
  if (student == NULL) return CC_MODEL_BLOB_CORRUPT;
  if (!positive_finite(m->delta_scale) || !positive_finite(m->level_scale) ||
      !positive_finite(m->amp_floor) || !positive_finite(m->log_amp_std) ||
      !finite(m->level_offset) || !finite(m->log_amp_mean))
    return CC_MODEL_BLOB_CORRUPT;
  for (g = 0; g < k; ++g) {
    uint8_t h;
    if (m->feature_ids[g] > 2u || !finite(m->feature_mean[g]) ||
        !positive_finite(m->feature_std[g]))
      return CC_MODEL_BLOB_CORRUPT;
    for (h = 0; h < g; ++h)
      if (m->feature_ids[h] == m->feature_ids[g]) return CC_MODEL_BLOB_CORRUPT;
  }
  status = read_student(out, student, student_bytes);
  if (status != CC_MODEL_BLOB_OK) return status;
  if ((uint32_t)out->student.input_size != (uint32_t)m->input_len * (1u + k) + 2u ||
      out->student.horizon != m->horizon)
    return CC_MODEL_BLOB_CORRUPT;
  if (out->format == 2u) {
    status = read_sections(out, &r);
    if (status != CC_MODEL_BLOB_OK) return status;
  }
  if (r.left != 0u) return CC_MODEL_BLOB_CORRUPT; /* trailing bytes */
  cc_sha256_bytes(bytes, length, out->sha256);
  to_hex(out->sha256, sizeof out->sha256, out->sha256_hex);
  m->student = &out->student;
  m->version = out->version;
  m->sha256_hex = out->sha256_hex;
  m->interval = out->interval.half_width != NULL ? &out->interval : NULL;
  return CC_MODEL_BLOB_OK;
}
