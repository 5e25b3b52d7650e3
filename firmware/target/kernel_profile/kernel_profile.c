/*
 * Instructions per stage and per kernel of cc_student_forecast on the Cortex-M4 under QEMU
 * (`-icount shift=0`: SysTick counts instructions, calibrated against a loop of known length).
 * The student has the deployed paper-protocol shape (I 102, F 8, W 6, S 1, H 100) and seeded
 * weights; the shifts are those the quantizer gives such a student (negative up to the hidden
 * state, positive for the output). Built twice: with the DSP kernels and with
 * CC_STUDENT_PORTABLE (the host's reference kernels); docs/benchmarks.md, "Edge", quotes both.
 * The runtime's source is included to reach its static stages. The DSP build also checks its
 * requantization against cc_requantize over every shift, edge values and seeded triples.
 */
#include "../../src/cc_student.c"
#include "semihosting.h"

#include <string.h>

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)

enum { kIn = 102, kFeatures = 8, kWidth = 6, kHorizon = 100, kRuns = 64, kSpin = 1000000 };

static int8_t encoder_w[kFeatures * kIn], encoder_paired_w[kFeatures * kIn],
    lift_w[kWidth * kFeatures], liquid_w[kWidth * kWidth];
static int8_t bypass_w[kHorizon * kFeatures], head_w[kHorizon * kWidth];
static int32_t encoder_m[kFeatures], lift_b[kWidth], lift_m[kWidth], liquid_b[kWidth],
    liquid_m[kWidth], alpha[kWidth], beta[kWidth], head_b[kHorizon], bypass_m[kHorizon],
    head_m[kHorizon];
static int8_t encoder_s[kFeatures], lift_s[kWidth], liquid_s[kWidth], bypass_s[kHorizon],
    head_s[kHorizon];
/* Word-aligned, as the node's input buffer: the DSP encoder's fast path loads it with LDRD. */
static int16_t input[kIn] __attribute__((aligned(4)));
static int16_t scratch[kFeatures + 2 * kWidth];
static int32_t output[kHorizon], natural_output[kHorizon];
static uint32_t seed = 12345u;
static uint32_t start_ticks, milli_instructions_per_tick;

static uint32_t next_random(void) {
  seed = seed * 1664525u + 1013904223u;
  return seed >> 8;
}

static void random_weights(int8_t* w, uint32_t n) {
  uint32_t i;
  for (i = 0; i < n; ++i)
    w[i] = (int8_t)((int32_t)(next_random() % 255u) - 127);
}

static void random_requant(int32_t* multiplier, int8_t* shift, uint32_t n, int32_t layer_shift) {
  uint32_t i;
  for (i = 0; i < n; ++i) {
    multiplier[i] = (int32_t)((1u << 30) + (next_random() & 0x3FFFFFFFu));
    shift[i] = (int8_t)(layer_shift - (int32_t)(next_random() % 3u));
  }
}

__attribute__((noinline)) static void spin(uint32_t iterations) {
  __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(iterations) : : "cc");
}

static uint32_t ticks_since(uint32_t start) {
  return (start - SYST_CVR) & 0x00FFFFFFu;
}

static void start(void) {
  start_ticks = SYST_CVR;
}

/* Prints "name instructions MACs" for one run of what ran kRuns times since start(). */
static void stop(const char* name, uint32_t macs) {
  const uint64_t ticks = ticks_since(start_ticks);
  sh_write(name);
  sh_write(" ");
  sh_write_u32((uint32_t)(ticks * milli_instructions_per_tick / 1000u / kRuns));
  sh_write(" macs ");
  sh_write_u32(macs);
  sh_write("\n");
}

#if CC_STUDENT_DSP
/*
 * The DSP build's requantize against cc_requantize (the reference, on this same target) over
 * every shift with edge values (0, +-1, int32 limits, the multiplier range's ends, values at
 * the saturation boundaries) and seeded triples. Returns the number of differences.
 */
static uint32_t requantize_mismatches(void) {
  static const int32_t values[] = {0,
                                   1,
                                   -1,
                                   2,
                                   -2,
                                   3,
                                   46341,
                                   -46341,
                                   65535,
                                   -65536,
                                   (int32_t)0x3FFFFFFF,
                                   (int32_t)-0x40000000,
                                   INT32_MAX,
                                   INT32_MIN,
                                   INT32_MAX - 1,
                                   INT32_MIN + 1};
  static const int32_t multipliers[] = {0, 1 << 30, (1 << 30) + 1, 0x7FFFFFFF, 0x5A827999};
  uint32_t mismatches = 0, i, v, k;
  int32_t shift;
  for (shift = -31; shift <= 30; ++shift) {
    for (v = 0; v < sizeof values / sizeof values[0]; ++v) {
      for (k = 0; k < sizeof multipliers / sizeof multipliers[0]; ++k) {
        /* Around the value where value * 2^(shift + 1) stops fitting in int32, too. */
        const int32_t edge = shift >= 0 && shift < 30 ? (int32_t)(0x3FFFFFFF >> shift) : 0;
        const int32_t probes[3] = {values[v], edge + values[v] % 3, -edge - values[v] % 3};
        uint32_t p;
        for (p = 0; p < 3u; ++p) {
          if (requantize(probes[p], multipliers[k], shift) !=
              cc_requantize(probes[p], multipliers[k], shift))
            ++mismatches;
        }
      }
    }
  }
  for (i = 0; i < 200000u; ++i) {
    const int32_t value = (int32_t)(next_random() << 8 ^ next_random()) >> (next_random() % 32u);
    const int32_t multiplier =
        (int32_t)((1u << 30) + (next_random() << 6 ^ next_random()) % (1u << 30));
    shift = (int32_t)(next_random() % 62u) - 31;
    if (requantize(value, multiplier, shift) != cc_requantize(value, multiplier, shift))
      ++mismatches;
  }
  return mismatches;
}
#endif

int main(void) {
  cc_student_model m;
  int16_t* const z = scratch;
  int16_t* const h = scratch + kFeatures;
  uint32_t i, checksum = 0;
  memset(&m, 0, sizeof m);
  m.input_size = kIn, m.features = kFeatures, m.width = kWidth, m.horizon = kHorizon;
  m.euler_steps = 1, m.hidden_frac_bits = 12, m.dt_q30 = 1 << 28;
  random_weights(encoder_w, sizeof encoder_w);
  random_weights(lift_w, sizeof lift_w);
  random_weights(liquid_w, sizeof liquid_w);
  random_weights(bypass_w, sizeof bypass_w);
  random_weights(head_w, sizeof head_w);
  random_requant(encoder_m, encoder_s, kFeatures, -6);
  random_requant(lift_m, lift_s, kWidth, -6);
  random_requant(liquid_m, liquid_s, kWidth, -6);
  random_requant(bypass_m, bypass_s, kHorizon, 3);
  random_requant(head_m, head_s, kHorizon, 3);
  for (i = 0; i < kWidth; ++i) {
    lift_b[i] = (int32_t)(next_random() % 20000u) - 10000;
    liquid_b[i] = lift_b[i], alpha[i] = 1 << 22, beta[i] = 1 << 23;
  }
  for (i = 0; i < kHorizon; ++i)
    head_b[i] = (int32_t)(next_random() % 20000u) - 10000;
  for (i = 0; i < kIn; ++i)
    input[i] = (int16_t)(next_random() & 0xFFFFu);
  m.encoder_weight = encoder_w, m.encoder_multiplier = encoder_m, m.encoder_shift = encoder_s;
  m.lift_weight = lift_w, m.lift_bias = lift_b, m.lift_multiplier = lift_m, m.lift_shift = lift_s;
  m.liquid_weight = liquid_w, m.liquid_bias = liquid_b, m.liquid_multiplier = liquid_m;
  m.liquid_shift = liquid_s, m.liquid_alpha_q24 = alpha, m.liquid_beta_q24 = beta;
  m.bypass_weight = bypass_w, m.head_bias = head_b, m.bypass_multiplier = bypass_m;
  m.bypass_shift = bypass_s, m.head_weight = head_w, m.head_multiplier = head_m;
  m.head_shift = head_s, m.tanh_table = cc_tanh_q15_table;
  m.input_scale_mantissa = 1 << 30, m.output_scale_mantissa = 1 << 30;
  if (cc_student_validate(&m) != CC_OK) {
    sh_write("model refused\n");
    return 1;
  }
  /* The natural layout's output, then the layout the export writes (each encoder row's columns
   * in pair order), which the figures below run: both must give the same bits. */
  (void)cc_student_forecast(&m, input, natural_output, scratch, sizeof scratch);
  SYST_RVR = 0x00FFFFFFu;
  SYST_CVR = 0u;
  SYST_CSR = 0x5u; /* enable, processor clock, no interrupt */
  start();
  spin(kSpin);
  /* Without -icount the ticks are wall time and may be 0: the figures are then meaningless, the
   * checks below still hold. */
  milli_instructions_per_tick = (uint32_t)(2000ull * kSpin / (ticks_since(start_ticks) | 1u));
  sh_write(CC_STUDENT_DSP ? "kernels dsp\n" : "kernels portable\n");
  start();
  for (i = 0; i < kRuns; ++i)
    (void)cc_student_forecast(&m, input, natural_output, scratch, sizeof scratch);
  stop("forecast natural-layout",
       kFeatures * kIn + kWidth * kFeatures + kWidth * kWidth + kHorizon * (kFeatures + kWidth));
  for (i = 0; i < kFeatures * kIn; ++i)
    encoder_paired_w[(i / kIn) * kIn + pair_slot(i % kIn, kIn)] = encoder_w[i];
  m.encoder_weight = encoder_paired_w, m.weight_layout = CC_STUDENT_LAYOUT_ENCODER_PAIRED;
  if (cc_student_validate(&m) != CC_OK) {
    sh_write("paired model refused\n");
    return 1;
  }
  (void)cc_student_forecast(&m, input, output, scratch, sizeof scratch);
  sh_write("layout mismatches ");
  sh_write_u32((uint32_t)(memcmp(output, natural_output, sizeof output) != 0));
  sh_write("\n");

  start();
  for (i = 0; i < kRuns; ++i)
    (void)cc_student_forecast(&m, input, output, scratch, sizeof scratch);
  stop("forecast",
       kFeatures * kIn + kWidth * kFeatures + kWidth * kWidth + kHorizon * (kFeatures + kWidth));
  start();
  for (i = 0; i < kRuns; ++i)
    encode(&m, input, z);
  stop("encode", kFeatures * kIn);
  start();
  for (i = 0; i < kRuns; ++i)
    lift(&m, z, h);
  stop("lift", kWidth * kFeatures);
  start();
  for (i = 0; i < kRuns; ++i)
    euler_step(&m, h, h + kWidth);
  stop("euler", kWidth * kWidth);
  start();
  for (i = 0; i < kRuns; ++i)
    head(&m, z, h, output);
  stop("head", kHorizon * (kFeatures + kWidth));
#if CC_STUDENT_DSP
  sh_write("requantize mismatches ");
  sh_write_u32(requantize_mismatches());
  sh_write("\n");
  {
    /* The MAC loops alone, each call as the forward pass makes it: four encoder rows against the
     * input (paired weights), the bypass's 100 rows of 8, the head's short rows of 6; and the
     * kernel natural weights take (three encoder rows, the input paired on the fly). */
    const int8_t* rows[3] = {encoder_w, encoder_w + kIn, encoder_w + 2 * kIn};
    const short_x zs = short_x_of(z, kFeatures);
    const short_x hs = short_x_of(h, kWidth);
    quad_job job;
    int32_t acc[4];
    job.x = zs, job.row = bypass_w, job.bias = head_b, job.out = output;
    job.end = output + kHorizon;
    start();
    for (i = 0; i < kRuns; ++i)
      dot4_paired(encoder_paired_w, encoder_paired_w + 2 * kIn, kIn, input, kIn, acc);
    stop("kernel dot4_paired", 4 * kIn);
    start();
    for (i = 0; i < kRuns; ++i)
      dots8_quads(&job);
    stop("kernel dots8_quads", kHorizon * kFeatures);
    start();
    for (i = 0; i < kRuns; ++i)
      dots_short(head_w, kWidth, &hs, head_b, output, short_rows(kWidth, kHorizon));
    stop("kernel dots_short", short_rows(kWidth, kHorizon) * kWidth);
    start();
    for (i = 0; i < kRuns; ++i)
      dot3_natural(rows, input, kIn, acc);
    stop("kernel dot3_natural", 3 * kIn);
  }
#endif
  (void)cc_student_forecast(&m, input, output, scratch, sizeof scratch);
  for (i = 0; i < kHorizon; ++i)
    checksum = checksum * 31u + (uint32_t)output[i];
  sh_write("checksum ");
  sh_write_hex32(checksum);
  sh_write("\n");
  return 0;
}
