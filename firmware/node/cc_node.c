/* The edge node's protocol, cell histories and forecast (cc_node.h, docs/node-protocol.md).
 * One file over 600 lines on purpose: the Arduino sketch (firmware/arduino/prepare_sketch.sh) and
 * the footprint measured under QEMU (lifecycle/src/measure.cc) take the node program as this one
 * translation unit. */
#include "cc_node.h"

#include <string.h>

/* Float results must be bit-identical on every target, so no multiply-add may be fused into an
 * FMA (one rounding instead of two), whatever the build's flags: the CMake builds pass
 * -ffp-contract=off, the Arduino build (gnu11, contraction on by default) cannot. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- small helpers --------------------------------------------------------------------------- */

typedef struct {
  const char* text;
  size_t length;
} cc_token;

#define CC_NODE_MAX_TOKENS 10

static int token_is(cc_token token, const char* text) {
  const size_t n = strlen(text);
  return token.length == n && memcmp(token.text, text, n) == 0;
}

static int is_hex_lower(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static uint32_t hex_value(char c) {
  return c <= '9' ? (uint32_t)(c - '0') : (uint32_t)(c - 'a' + 10);
}

/* Characters of cell ids and model versions: [A-Za-z0-9_.-]. */
static int is_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

static int parse_u32(cc_token token, uint32_t* out) {
  uint32_t value = 0;
  size_t i;
  if (token.length == 0 || token.length > 10) return 0;
  for (i = 0; i < token.length; ++i) {
    const char c = token.text[i];
    uint32_t digit;
    if (c < '0' || c > '9') return 0;
    digit = (uint32_t)(c - '0');
    if (value > (0xFFFFFFFFu - digit) / 10u) return 0;
    value = value * 10u + digit;
  }
  *out = value;
  return 1;
}

/* 10^0 .. 10^10 are exact in single precision (5^10 < 2^24). */
static const float kPow10[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

/* Decimal number of docs/node-protocol.md: [sign] digits [. digits] [e [sign] d[d]], at most 9
 * significant digits. Converted with at most two roundings (the mantissa to float, one scaling
 * by an exact power of ten when the exponent is within 10), the same on every IEEE target. */
static int parse_number(cc_token token, float* out) {
  size_t i = 0;
  int negative = 0, digits = 0, significant = 0, seen_point = 0;
  int32_t exponent = 0;
  uint32_t mantissa = 0;
  float value;
  if (i < token.length && (token.text[i] == '+' || token.text[i] == '-')) {
    negative = token.text[i] == '-';
    ++i;
  }
  for (; i < token.length; ++i) {
    const char c = token.text[i];
    if (c == '.') {
      if (seen_point) return 0;
      seen_point = 1;
    } else if (c >= '0' && c <= '9') {
      ++digits;
      if (mantissa == 0u && c == '0') {
        if (seen_point) --exponent; /* leading zeros after the point only move the exponent */
        continue;
      }
      if (++significant > 9) return 0;
      mantissa = mantissa * 10u + (uint32_t)(c - '0');
      if (seen_point) --exponent;
    } else {
      break;
    }
  }
  if (digits == 0) return 0;
  if (i < token.length) {
    int32_t e = 0;
    int e_negative = 0, e_digits = 0;
    if (token.text[i] != 'e' && token.text[i] != 'E') return 0;
    ++i;
    if (i < token.length && (token.text[i] == '+' || token.text[i] == '-')) {
      e_negative = token.text[i] == '-';
      ++i;
    }
    for (; i < token.length; ++i) {
      const char c = token.text[i];
      if (c < '0' || c > '9' || ++e_digits > 2) return 0;
      e = e * 10 + (int32_t)(c - '0');
    }
    if (e_digits == 0) return 0;
    exponent += e_negative ? -e : e;
  }
  value = (float)mantissa;
  if (mantissa != 0u) {
    /* Values beyond 1e30 or below 1e-30 are refused rather than overflowing to infinity. */
    const int32_t magnitude = exponent + significant;
    if (magnitude > 30 || magnitude < -30) return 0;
    while (exponent > 10) {
      value *= kPow10[10];
      exponent -= 10;
    }
    while (exponent < -10) {
      value /= kPow10[10];
      exponent += 10;
    }
    value = exponent >= 0 ? value * kPow10[exponent] : value / kPow10[-exponent];
  }
  *out = negative ? -value : value;
  return 1;
}

/* An output line under construction. */
typedef struct {
  char* text;
  size_t length;
  size_t capacity;
} cc_writer;

static void put_bytes(cc_writer* w, const char* bytes, size_t n) {
  if (w->length + n > w->capacity) n = w->capacity - w->length; /* cannot happen: bounded fields */
  memcpy(w->text + w->length, bytes, n);
  w->length += n;
}

static void put_text(cc_writer* w, const char* text) {
  put_bytes(w, text, strlen(text));
}

static void put_u32(cc_writer* w, uint32_t value) {
  char digits[10];
  size_t n = 0;
  do {
    digits[sizeof digits - 1 - n++] = (char)('0' + value % 10u);
    value /= 10u;
  } while (value != 0u);
  put_bytes(w, digits + sizeof digits - n, n);
}

/* Fixed point with 6 decimals, rounded half away from zero; magnitudes are clamped to 2000. */
static void put_fixed6(cc_writer* w, float value) {
  float scaled;
  uint32_t units, fraction;
  char digits[6];
  int i;
  if (value < 0.0f) {
    put_bytes(w, "-", 1);
    value = -value;
  }
  if (!(value < 2000.0f)) value = 2000.0f; /* also catches NaN */
  scaled = value * 1e6f + 0.5f;
  units = (uint32_t)scaled;
  fraction = units % 1000000u;
  put_u32(w, units / 1000000u);
  put_bytes(w, ".", 1);
  for (i = 5; i >= 0; --i) {
    digits[i] = (char)('0' + fraction % 10u);
    fraction /= 10u;
  }
  put_bytes(w, digits, 6);
}

static void put_token(cc_writer* w, cc_token token) {
  put_bytes(w, token.text, token.length);
}

/* ---- framing ----------------------------------------------------------------------------------
 */

uint32_t cc_node_crc32(uint32_t crc, const void* bytes, size_t length) {
  const uint8_t* p = (const uint8_t*)bytes;
  size_t i;
  int bit;
  crc = ~crc;
  for (i = 0; i < length; ++i) {
    crc ^= p[i];
    for (bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/* What send_answer appends to a body: "*", the CRC-32 in 8 hex digits, "\n". */
#define CC_NODE_FRAME_TAIL_BYTES (1u + 8u + 1u)
/* The answer buffer holds the longest line the protocol allows plus its '\n'. */
CC_STATIC_ASSERT(sizeof(((cc_node*)0)->answer) == CC_NODE_MAX_LINE + 1u, cc_node_answer_bytes);

/* Starts an answer in the version of the request it answers: "ccV TYPE SEQ". */
static cc_writer begin_answer(cc_node* node, const char* type, uint32_t seq) {
  cc_writer w;
  w.text = node->answer;
  w.length = 0;
  w.capacity = sizeof node->answer - CC_NODE_FRAME_TAIL_BYTES;
  put_text(&w, node->answer_version >= 2u ? "cc2 " : "cc1 ");
  put_text(&w, type);
  put_bytes(&w, " ", 1);
  put_u32(&w, seq);
  return w;
}

/* Appends "*CRC\n" and sends the line. */
static void send_answer(cc_node* node, cc_writer* w) {
  const uint32_t crc = cc_node_crc32(0u, w->text, w->length);
  int i;
  w->text[w->length++] = '*';
  for (i = 7; i >= 0; --i)
    w->text[w->length++] = "0123456789abcdef"[(crc >> (4 * i)) & 0xFu];
  w->text[w->length++] = '\n';
  node->io.write(node->io.context, w->text, w->length);
}

static void send_error(cc_node* node, uint32_t seq, const char* code) {
  cc_writer w = begin_answer(node, "ER", seq);
  put_bytes(&w, " ", 1);
  put_text(&w, code);
  ++node->stats.errors;
  send_answer(node, &w);
}

/* ---- model ------------------------------------------------------------------------------------
 */

/* m * 2^e / 2^31 in float, or 0 when it is not a normal float (then the model is refused). */
static float scale_of(int32_t mantissa, int32_t exponent) {
  float value = (float)mantissa;
  int32_t e = exponent - 31;
  if (mantissa <= 0 || exponent < -126 || exponent > 127) return 0.0f;
  for (; e > 0; --e)
    value *= 2.0f;
  for (; e < 0; ++e)
    value *= 0.5f;
  return value >= 1.17549435e-38f ? value : 0.0f;
}

static int version_ok(const char* text, size_t max_length) {
  size_t n = 0;
  if (text == NULL) return 0;
  while (text[n] != '\0') {
    if (n >= max_length || !is_id_char(text[n])) return 0;
    ++n;
  }
  return n >= 1;
}

static int hash_ok(const char* text) {
  size_t n = 0;
  if (text == NULL) return 0;
  while (text[n] != '\0') {
    if (n >= 64 || !is_hex_lower(text[n])) return 0;
    ++n;
  }
  return n == 64;
}

/* No table, or one of 1..3 rows of H half-widths in [0, 2^30] with ordered band limits. */
static int interval_ok(const cc_node_interval* interval, uint16_t horizon) {
  uint32_t i, n;
  if (interval == NULL) return 1;
  if (interval->half_width == NULL || interval->bands < 1u || interval->bands > CC_NODE_MAX_BANDS)
    return 0;
  if (!(interval->band_soh[1] > 0.0f && interval->band_soh[0] > interval->band_soh[1] &&
        interval->band_soh[0] <= 2.0f))
    return 0;
  n = (uint32_t)interval->bands * horizon;
  for (i = 0; i < n; ++i) {
    if (interval->half_width[i] < 0 || interval->half_width[i] > CC_NODE_MAX_HALF_WIDTH) return 0;
  }
  return 1;
}

static cc_node_status check_model(const cc_node_model* m) {
  const cc_student_model* s = m->student;
  uint16_t f, g;
  if (s == NULL || cc_student_validate(s) != CC_OK) return CC_NODE_ERROR_MODEL;
  if (!version_ok(m->version, CC_NODE_MAX_VERSION) || !hash_ok(m->sha256_hex))
    return CC_NODE_ERROR_MODEL;
  if (m->input_len < 1 || m->horizon < 1 || m->feature_count > 3) return CC_NODE_ERROR_MODEL;
  if ((uint32_t)s->input_size != (uint32_t)m->input_len * (1u + m->feature_count) + 2u ||
      s->horizon != m->horizon)
    return CC_NODE_ERROR_MODEL;
  for (f = 0; f < m->feature_count; ++f) {
    if (m->feature_ids[f] > CC_NODE_FEATURE_CHARGE_MIN || !(m->feature_std[f] > 0.0f))
      return CC_NODE_ERROR_MODEL;
    for (g = 0; g < f; ++g)
      if (m->feature_ids[g] == m->feature_ids[f]) return CC_NODE_ERROR_MODEL;
  }
  if (!(m->level_scale > 0.0f) || !(m->amp_floor > 0.0f) || !(m->log_amp_std > 0.0f) ||
      !(m->delta_scale > 0.0f))
    return CC_NODE_ERROR_MODEL;
  /* Scales the node cannot hold as normal floats (validate allows a subnormal input scale). */
  if (scale_of(s->input_scale_mantissa, s->input_scale_exponent) == 0.0f ||
      scale_of(s->output_scale_mantissa, s->output_scale_exponent) == 0.0f)
    return CC_NODE_ERROR_MODEL;
  if (!interval_ok(m->interval, m->horizon)) return CC_NODE_ERROR_MODEL;
  if (m->input_len > CC_NODE_MAX_INPUT_LEN || m->horizon > CC_NODE_MAX_HORIZON ||
      m->feature_count > CC_NODE_MAX_FEATURES ||
      cc_student_scratch_bytes(s) > CC_NODE_MAX_SCRATCH_BYTES)
    return CC_NODE_ERROR_CAPACITY;
  return CC_NODE_OK;
}

/* ---- logarithm --------------------------------------------------------------------------------
 */

float cc_node_logf(float x) {
  /* x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <=
   * 0.1716, whose odd series to s^9 is below 1e-9 off: well under float precision. */
  uint32_t bits;
  int32_t e;
  float m, s, s2, series;
  memcpy(&bits, &x, sizeof bits);
  e = (int32_t)((bits >> 23) & 0xFFu) - 127;
  bits = (bits & 0x007FFFFFu) | 0x3F800000u;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.41421356f) {
    m *= 0.5f;
    ++e;
  }
  s = (m - 1.0f) / (m + 1.0f);
  s2 = s * s;
  series = s2 * (1.0f / 3.0f + s2 * (1.0f / 5.0f + s2 * (1.0f / 7.0f + s2 * (1.0f / 9.0f))));
  /* ln 2 split so that e * ln2_hi is exact for |e| < 2^8. */
  return (float)e * 0.693145752f + (2.0f * s + 2.0f * s * series + (float)e * 1.42860677e-6f);
}

/* ---- cells ------------------------------------------------------------------------------------
 */

static uint16_t cells_held(const cc_node* node) {
  uint16_t n = 0, i;
  for (i = 0; i < CC_NODE_MAX_CELLS; ++i)
    n = (uint16_t)(n + (node->cells[i].id[0] != '\0'));
  return n;
}

/* The cell's slot, or a fresh one: a free slot, else the least recently used (evicted). */
static cc_node_cell* cell_slot(cc_node* node, cc_token id) {
  cc_node_cell* victim = NULL;
  size_t i;
  for (i = 0; i < CC_NODE_MAX_CELLS; ++i) {
    cc_node_cell* c = &node->cells[i];
    if (c->id[0] != '\0' && strlen(c->id) == id.length && memcmp(c->id, id.text, id.length) == 0)
      return c;
  }
  for (i = 0; i < CC_NODE_MAX_CELLS; ++i) {
    cc_node_cell* c = &node->cells[i];
    if (c->id[0] == '\0') {
      victim = c;
      break;
    }
    if (victim == NULL || node->tick - c->last_used > node->tick - victim->last_used) victim = c;
  }
  if (victim->id[0] != '\0') ++node->stats.evictions;
  memset(victim, 0, sizeof *victim);
  memcpy(victim->id, id.text, id.length);
  victim->id[id.length] = '\0';
  return victim;
}

/* ---- forecast ---------------------------------------------------------------------------------
 */

static int16_t quantize(float x, float scale) {
  float q = x / scale;
  int32_t whole;
  if (!(q < 32767.0f)) return 32767; /* also NaN, which validated inputs never give */
  if (q <= -32767.0f) return -32767;
  whole = (int32_t)q; /* truncates towards zero; then round half away from zero, as std::round */
  if (q - (float)whole >= 0.5f) ++whole;
  if (q - (float)whole <= -0.5f) --whole;
  return (int16_t)whole;
}

/* The interval row of a window whose last SOH is soh_last (cc_node_interval's band rule). */
static const int32_t* band_row(const cc_node_interval* interval, uint16_t horizon, float soh_last) {
  uint16_t row = 0;
  if (!(soh_last >= interval->band_soh[0])) row = 1;
  if (!(soh_last >= interval->band_soh[1])) row = 2;
  if (row >= interval->bands) row = (uint16_t)(interval->bands - 1u);
  return interval->half_width + (size_t)row * horizon;
}

/* Encodes the cell's window, runs the student and keeps what decoding needs: soh_last, amp and
 * the window's interval row. */
static cc_status run_forecast(cc_node* node, const cc_node_cell* cell) {
  const cc_node_model* m = node->model;
  const uint16_t w = m->input_len;
  const float* soh = cell->values[0];
  /* The ring is full: the oldest value is at head. */
  const uint16_t oldest = cell->head;
  const float last = soh[(uint16_t)((oldest + w - 1u) % w)];
  float a = soh[oldest] - last;
  uint16_t t, f;
  size_t row = 0;
  if (a < 0.0f) a = -a;
  if (a < m->amp_floor) a = m->amp_floor;
  for (t = 0; t < w; ++t)
    node->input[row++] =
        quantize((soh[(uint16_t)((oldest + t) % w)] - last) / a, node->input_scale);
  node->input[row++] = quantize((last - m->level_offset) / m->level_scale, node->input_scale);
  node->input[row++] =
      quantize((cc_node_logf(a) - m->log_amp_mean) / m->log_amp_std, node->input_scale);
  for (f = 0; f < m->feature_count && f < CC_NODE_MAX_FEATURES; ++f) {
    const float* v = cell->values[1u + f];
    for (t = 0; t < w; ++t)
      node->input[row++] = quantize(v[(uint16_t)((oldest + t) % w)], node->input_scale);
  }
  node->forecast_last = last;
  node->forecast_amp = a;
  node->forecast_band = m->interval != NULL ? band_row(m->interval, m->horizon, last) : NULL;
  return cc_student_forecast(m->student, node->input, node->output, node->scratch,
                             sizeof node->scratch);
}

/* One CY line's fields, checked: the cell id, cycle number, SOH and normalized features. */
typedef struct {
  cc_token id;
  uint32_t cycle;
  float soh;
  float feature[CC_NODE_MAX_FEATURES];
} cc_cycle_fields;

/* Reads tok[3..8] into `out`; 0 (and the answer "field" sent) when one is malformed. */
static int parse_cycle(cc_node* node, uint32_t seq, const cc_token* tok, cc_cycle_fields* out) {
  const cc_node_model* m = node->model;
  float raw[3] = {0.0f, 0.0f, 0.0f};
  size_t i;
  uint16_t f;
  int have[3] = {0, 0, 0};
  int ok = tok[3].length >= 1 && tok[3].length <= CC_NODE_MAX_CELL_ID;
  for (i = 0; ok && i < tok[3].length; ++i)
    ok = is_id_char(tok[3].text[i]);
  ok = ok && parse_u32(tok[4], &out->cycle) && out->cycle >= 1u && out->cycle <= 1000000u &&
       parse_number(tok[5], &out->soh) && out->soh > 0.0f && out->soh <= 2.0f;
  for (i = 0; ok && i < 3; ++i) {
    have[i] = !token_is(tok[6 + i], "-");
    ok = !have[i] || (parse_number(tok[6 + i], &raw[i]) && raw[i] < 1e6f && raw[i] > -1e6f);
  }
  if (!ok) {
    send_error(node, seq, "field");
    return 0;
  }
  out->id = tok[3];
  for (f = 0; f < CC_NODE_MAX_FEATURES; ++f)
    out->feature[f] = 0.0f;
  for (f = 0; f < m->feature_count && f < CC_NODE_MAX_FEATURES; ++f) {
    const uint8_t id = m->feature_ids[f];
    out->feature[f] = have[id] ? (raw[id] - m->feature_mean[f]) / m->feature_std[f] : 0.0f;
  }
  return 1;
}

/* Stores the cycle in its cell's ring (a retransmission of the last cycle replaces it); NULL
 * (and the answer "order" sent) when it goes backwards. */
static cc_node_cell* store_cycle(cc_node* node, uint32_t seq, const cc_cycle_fields* in) {
  const cc_node_model* m = node->model;
  cc_node_cell* cell = cell_slot(node, in->id);
  uint16_t f, slot;
  cell->last_used = ++node->tick;
  if (cell->count > 0 && in->cycle < cell->last_cycle) {
    send_error(node, seq, "order");
    return NULL;
  }
  if (cell->count > 0 && in->cycle == cell->last_cycle) {
    slot = (uint16_t)((cell->head + m->input_len - 1u) % m->input_len); /* retransmission */
  } else {
    slot = cell->head;
    cell->head = (uint16_t)((cell->head + 1u) % m->input_len);
    if (cell->count < m->input_len) ++cell->count;
  }
  cell->values[0][slot] = in->soh;
  for (f = 0; f < m->feature_count && f < CC_NODE_MAX_FEATURES; ++f)
    cell->values[1u + f][slot] = in->feature[f];
  cell->last_cycle = in->cycle;
  return cell;
}

/* SOH of the last forecast's int32 output y: soh_last + amp * y * S_y. */
static float decode(const cc_node* node, int32_t y) {
  return node->forecast_last + node->forecast_amp * ((float)y * node->output_scale);
}

/* The last forecast's interval bounds at step j: y -/+ the row's half-width (in [0, 2^30]),
 * saturated to int32, decoded. */
static float lower_at(const cc_node* node, uint16_t j) {
  const int32_t y = node->output[j], half = node->forecast_band[j];
  return decode(node, y < INT32_MIN + half ? INT32_MIN : y - half);
}

static float upper_at(const cc_node* node, uint16_t j) {
  const int32_t y = node->output[j], half = node->forecast_band[j];
  return decode(node, y > INT32_MAX - half ? INT32_MAX : y + half);
}

/* A forecast value at one step, or "-" when there is none. */
static void put_fixed6_or_dash(cc_writer* w, int have, float value) {
  put_bytes(w, " ", 1);
  if (have)
    put_fixed6(w, value);
  else
    put_bytes(w, "-", 1);
}

static void put_cycle_or_dash(cc_writer* w, uint32_t cycle) {
  put_bytes(w, " ", 1);
  if (cycle != 0u)
    put_u32(w, cycle);
  else
    put_bytes(w, "-", 1);
}

/* The first cycle (CYCLE + j) at which the last forecast's lower (upper > 0: upper) bound is
 * below the end-of-life SOH; 0 when none within the horizon. */
static uint32_t eol_of_bound(const cc_node* node, uint32_t cycle, int upper) {
  uint16_t j;
  for (j = 0; j < node->model->horizon; ++j) {
    const float bound = upper ? upper_at(node, j) : lower_at(node, j);
    if (bound < CC_NODE_EOL_SOH) return cycle + j + 1u;
  }
  return 0u;
}

/* The interval fields of a v2 FC answer (cc_fc_interval.have 0: the model has no table). */
typedef struct {
  int have;
  float lower10, upper10, lower_h, upper_h;
  uint32_t eol_earliest, eol_latest; /* 0: not within the horizon */
} cc_fc_interval;

static cc_fc_interval interval_of_last(const cc_node* node, uint32_t cycle) {
  const uint16_t h = node->model->horizon;
  cc_fc_interval out;
  memset(&out, 0, sizeof out);
  out.have = node->forecast_band != NULL;
  if (!out.have) return out;
  if (h >= 10u) {
    out.lower10 = lower_at(node, 9);
    out.upper10 = upper_at(node, 9);
  }
  out.lower_h = lower_at(node, (uint16_t)(h - 1u));
  out.upper_h = upper_at(node, (uint16_t)(h - 1u));
  out.eol_earliest = eol_of_bound(node, cycle, 0);
  out.eol_latest = eol_of_bound(node, cycle, 1);
  return out;
}

/* LO10 HI10 LOH HIH EOLLO EOLHI, each "-" where there is none. */
static void put_interval(cc_writer* w, const cc_fc_interval* in, uint16_t horizon) {
  put_fixed6_or_dash(w, in->have && horizon >= 10u, in->lower10);
  put_fixed6_or_dash(w, in->have && horizon >= 10u, in->upper10);
  put_fixed6_or_dash(w, in->have, in->lower_h);
  put_fixed6_or_dash(w, in->have, in->upper_h);
  put_cycle_or_dash(w, in->eol_earliest);
  put_cycle_or_dash(w, in->eol_latest);
}

/* FC: the forecast's SOH at step 10 and H, the end-of-life cycle, in v2 the interval, and the
 * time it took. */
static void answer_forecast(cc_node* node, uint32_t seq, const cc_cycle_fields* in,
                            const cc_node_cell* cell) {
  const cc_node_model* m = node->model;
  const uint32_t start = node->io.micros(node->io.context);
  float at10 = 0.0f, at_h = 0.0f;
  uint32_t eol = 0, elapsed;
  uint16_t j;
  cc_fc_interval interval;
  cc_writer w;
  if (run_forecast(node, cell) != CC_OK) {
    send_error(node, seq, "model"); /* unreachable with a validated model and sized buffers */
    return;
  }
  for (j = 0; j < m->horizon; ++j) {
    const float value = decode(node, node->output[j]);
    if (j == 9) at10 = value;
    if (j + 1u == m->horizon) at_h = value;
    if (eol == 0u && value < CC_NODE_EOL_SOH) eol = in->cycle + j + 1u;
  }
  /* v1 answers carry no interval: it is not computed for them. */
  memset(&interval, 0, sizeof interval);
  if (node->answer_version >= 2u) interval = interval_of_last(node, in->cycle);
  elapsed = node->io.micros(node->io.context) - start;
  ++node->stats.forecasts;
  w = begin_answer(node, "FC", seq);
  put_bytes(&w, " ", 1);
  put_token(&w, in->id);
  put_bytes(&w, " ", 1);
  put_u32(&w, in->cycle);
  put_bytes(&w, " ", 1);
  put_text(&w, m->version);
  put_fixed6_or_dash(&w, m->horizon >= 10, at10);
  put_fixed6_or_dash(&w, 1, at_h);
  put_cycle_or_dash(&w, eol);
  if (node->answer_version >= 2u) put_interval(&w, &interval, m->horizon);
  put_bytes(&w, " ", 1);
  put_u32(&w, elapsed);
  send_answer(node, &w);
}

/* Stores one cycle and answers OK (fewer than W cycles) or FC. */
static void handle_cycle(cc_node* node, uint32_t seq, const cc_token* tok) {
  cc_cycle_fields fields;
  const cc_node_cell* cell;
  cc_writer w;
  if (!parse_cycle(node, seq, tok, &fields)) return;
  cell = store_cycle(node, seq, &fields);
  if (cell == NULL) return;
  if (cell->count >= node->model->input_len) {
    answer_forecast(node, seq, &fields, cell);
    return;
  }
  w = begin_answer(node, "OK", seq);
  put_bytes(&w, " ", 1);
  put_token(&w, fields.id);
  put_bytes(&w, " ", 1);
  put_u32(&w, fields.cycle);
  put_bytes(&w, " ", 1);
  put_u32(&w, cell->count);
  send_answer(node, &w);
}

static void handle_identify(cc_node* node, uint32_t seq) {
  static const char* const kNames[3] = {"ir_ohm", "temperature_c", "charge_time_min"};
  const cc_node_model* m = node->model;
  cc_writer w = begin_answer(node, "ID", seq);
  uint16_t f;
  put_text(&w, node->answer_version >= 2u ? " 2 " : " 1 ");
  put_text(&w, m->version);
  put_bytes(&w, " ", 1);
  put_text(&w, m->sha256_hex);
  put_bytes(&w, " ", 1);
  put_u32(&w, m->input_len);
  put_bytes(&w, " ", 1);
  put_u32(&w, m->horizon);
  put_bytes(&w, " ", 1);
  if (m->feature_count == 0) put_bytes(&w, "-", 1);
  for (f = 0; f < m->feature_count; ++f) {
    if (f > 0) put_bytes(&w, ",", 1);
    put_text(&w, kNames[m->feature_ids[f]]);
  }
  put_bytes(&w, " ", 1);
  put_u32(&w, CC_NODE_MAX_CELLS);
  /* v2: the interval table's rows (0: the forecasts carry no interval), then what an extension
   * (the update module: the active slot and the last update's outcome) appends. */
  if (node->answer_version >= 2u) {
    put_bytes(&w, " ", 1);
    put_u32(&w, m->interval != NULL ? m->interval->bands : 0u);
    if (node->extension.identify != NULL && w.length + 1u < w.capacity) {
      put_bytes(&w, " ", 1);
      w.length += node->extension.identify(node->extension.context, w.text + w.length,
                                           w.capacity - w.length);
    }
  }
  send_answer(node, &w);
}

static void put_counter(cc_writer* w, const char* name, uint32_t value) {
  put_text(w, name);
  put_u32(w, value);
}

static void handle_stats(cc_node* node, uint32_t seq) {
  const cc_node_stats* s = &node->stats;
  cc_writer w = begin_answer(node, "ST", seq);
  put_counter(&w, " rx=", s->rx);
  put_counter(&w, " crc=", s->crc);
  put_counter(&w, " bad=", s->bad);
  put_counter(&w, " long=", s->longs);
  put_counter(&w, " fc=", s->forecasts);
  put_counter(&w, " err=", s->errors);
  put_counter(&w, " evict=", s->evictions);
  put_counter(&w, " cells=", cells_held(node));
  send_answer(node, &w);
}

/* ---- lines ------------------------------------------------------------------------------------
 */

/* Splits the body at single spaces; 0 when a field is empty or there are too many. */
static size_t split(const char* body, size_t length, cc_token* tokens) {
  size_t n = 0, start = 0, i;
  for (i = 0; i <= length; ++i) {
    if (i == length || body[i] == ' ') {
      if (i == start || n == CC_NODE_MAX_TOKENS) return 0;
      tokens[n].text = body + start;
      tokens[n].length = i - start;
      ++n;
      start = i + 1;
    }
  }
  return n;
}

static void handle_body(cc_node* node, const char* body, size_t length) {
  cc_token tok[CC_NODE_MAX_TOKENS];
  const size_t n = split(body, length, tok);
  uint32_t seq = 0;
  const int seq_ok = n >= 3 && parse_u32(tok[2], &seq);
  int known;
  if (!seq_ok) seq = 0;
  /* Answers are in the request's version; one the node does not speak is refused in v1, which
   * every gateway reads. */
  node->answer_version = n > 0 && token_is(tok[0], "cc2") ? 2u : 1u;
  known = n >= 2 && (token_is(tok[1], "ID") || token_is(tok[1], "CY") || token_is(tok[1], "ST"));
  if (n == 0) {
    send_error(node, 0, "field"); /* an empty field (two spaces, an edge space) or too many */
  } else if (!token_is(tok[0], "cc1") && !token_is(tok[0], "cc2")) {
    send_error(node, seq, "version");
  } else if (!known && token_is(tok[0], "cc2") && n >= 2 && node->extension.request != NULL &&
             node->extension.request(node->extension.context, node, body, length)) {
    /* answered by the extension (cc_update.c: model update) */
  } else if (!known) {
    send_error(node, seq, "type");
  } else if (!seq_ok) {
    send_error(node, 0, "field");
  } else if (token_is(tok[1], "ID")) {
    if (n == 3)
      handle_identify(node, seq);
    else
      send_error(node, seq, "field");
  } else if (token_is(tok[1], "ST")) {
    if (n == 3)
      handle_stats(node, seq);
    else
      send_error(node, seq, "field");
  } else if (n == 9) {
    handle_cycle(node, seq, tok);
  } else {
    send_error(node, seq, "field");
  }
}

/* One complete line (without '\n'): checks the frame, then handles its body. */
static void handle_line(cc_node* node, const char* line, size_t length) {
  uint32_t crc = 0;
  size_t i, body;
  if (length > 0 && line[length - 1] == '\r') --length;
  if (length == 0) return;
  for (i = 0; i < length; ++i) {
    if (line[i] < 0x20 || line[i] > 0x7E) {
      ++node->stats.bad;
      return;
    }
  }
  if (length < 10 || line[length - 9] != '*') {
    ++node->stats.bad;
    return;
  }
  body = length - 9;
  for (i = body + 1; i < length; ++i) {
    if (!is_hex_lower(line[i])) {
      ++node->stats.bad;
      return;
    }
    crc = (crc << 4) | hex_value(line[i]);
  }
  if (memchr(line, '*', body) != NULL) {
    ++node->stats.bad;
    return;
  }
  if (cc_node_crc32(0u, line, body) != crc) {
    ++node->stats.crc;
    return;
  }
  ++node->stats.rx;
  handle_body(node, line, body);
}

void cc_node_feed(cc_node* node, const char* bytes, size_t length) {
  size_t i;
  if (node == NULL || node->model == NULL || (bytes == NULL && length > 0)) return;
  for (i = 0; i < length; ++i) {
    const char c = bytes[i];
    if (c == '\n') {
      if (node->skipping)
        ++node->stats.longs;
      else
        handle_line(node, node->line, node->line_length);
      node->line_length = 0;
      node->skipping = 0;
    } else if (node->skipping) {
      continue;
    } else if (node->line_length == CC_NODE_MAX_LINE) {
      node->skipping = 1;
    } else {
      node->line[node->line_length++] = c;
    }
  }
}

/* ---- API --------------------------------------------------------------------------------------
 */

/* The start-up frame "cc1 HI 0 1 VERSION SHA256". Always in v1 form: the node cannot know which
 * protocol the gateway at the other end speaks, and a v1 gateway refuses any other HI. */
static void send_hello(cc_node* node) {
  cc_writer w;
  node->answer_version = 1u; /* HI is the same frame in every version */
  w = begin_answer(node, "HI", 0u);
  put_text(&w, " 1 ");
  put_text(&w, node->model->version);
  put_bytes(&w, " ", 1);
  put_text(&w, node->model->sha256_hex);
  send_answer(node, &w);
}

cc_node_status cc_node_init(cc_node* node, const cc_node_model* model, cc_node_io io) {
  cc_node_status status;
  if (node == NULL || model == NULL || io.write == NULL || io.micros == NULL)
    return CC_NODE_ERROR_ARGUMENT;
  memset(node, 0, sizeof *node);
  status = check_model(model);
  if (status != CC_NODE_OK) return status;
  node->input_scale =
      scale_of(model->student->input_scale_mantissa, model->student->input_scale_exponent);
  node->output_scale =
      scale_of(model->student->output_scale_mantissa, model->student->output_scale_exponent);
  if (node->input_scale == 0.0f || node->output_scale == 0.0f) return CC_NODE_ERROR_MODEL;
  node->model = model;
  node->io = io;
  send_hello(node);
  return CC_NODE_OK;
}

void cc_node_set_extension(cc_node* node, cc_node_extension extension) {
  if (node != NULL) node->extension = extension;
}

void cc_node_send_body(cc_node* node, const char* body, size_t length) {
  cc_writer w;
  if (node == NULL || node->model == NULL || body == NULL) return;
  w.text = node->answer;
  w.length = 0;
  w.capacity = sizeof node->answer - CC_NODE_FRAME_TAIL_BYTES;
  put_bytes(&w, body, length);
  send_answer(node, &w);
}

cc_node_status cc_node_check_model(const cc_node_model* model) {
  return model == NULL ? CC_NODE_ERROR_ARGUMENT : check_model(model);
}

cc_node_status cc_node_use_model(cc_node* node, const cc_node_model* model) {
  cc_node_status status;
  float input_scale, output_scale;
  if (node == NULL || node->model == NULL || model == NULL) return CC_NODE_ERROR_ARGUMENT;
  status = check_model(model);
  if (status != CC_NODE_OK) return status;
  input_scale =
      scale_of(model->student->input_scale_mantissa, model->student->input_scale_exponent);
  output_scale =
      scale_of(model->student->output_scale_mantissa, model->student->output_scale_exponent);
  if (input_scale == 0.0f || output_scale == 0.0f) return CC_NODE_ERROR_MODEL;
  node->model = model;
  node->input_scale = input_scale;
  node->output_scale = output_scale;
  memset(node->cells, 0, sizeof node->cells);
  node->forecast_band = NULL; /* a row of the old model's table: no last interval any more */
  send_hello(node);
  return CC_NODE_OK;
}

cc_status cc_node_forecast_cell(cc_node* node, const cc_node_cell* cell, float* soh_out) {
  uint16_t j;
  cc_status status;
  if (node == NULL || node->model == NULL || cell == NULL || soh_out == NULL)
    return CC_ERROR_ARGUMENT;
  /* The cell comes from the caller, not from handle_cycle: its ring position is checked against
   * the window it claims to hold before any value is read through it. */
  if (cell->count != node->model->input_len || cell->head >= cell->count) return CC_ERROR_ARGUMENT;
  status = run_forecast(node, cell);
  if (status != CC_OK) return status;
  for (j = 0; j < node->model->horizon; ++j)
    soh_out[j] = decode(node, node->output[j]);
  return CC_OK;
}

cc_status cc_node_last_interval(const cc_node* node, float* lower_out, float* upper_out) {
  uint16_t j;
  if (node == NULL || node->model == NULL || node->forecast_band == NULL || lower_out == NULL ||
      upper_out == NULL)
    return CC_ERROR_ARGUMENT;
  for (j = 0; j < node->model->horizon; ++j) {
    lower_out[j] = lower_at(node, j);
    upper_out[j] = upper_at(node, j);
  }
  return CC_OK;
}

const int32_t* cc_node_last_output(const cc_node* node) {
  return node == NULL ? NULL : node->output;
}
