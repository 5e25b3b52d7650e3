/*
 * Cortex-M4 harness of the node program with an exported model (model_data.c), run under
 * `qemu-system-arm -M mps2-an386 -icount shift=0` with semihosting:
 *   1. feeds vectors.txt (node protocol frames) to the node and writes every answer line to
 *      out.txt, each FC answer (v1 or v2) followed by "Y <CRC-32 of the H int32 outputs>" and,
 *      when the model has an interval table, "L <CRC-32 of the H lower then H upper float
 *      bounds>", so the host can check bit-identical outputs and intervals
 *      (tests/firmware/node_qemu.h does the same on the host);
 *   2. measures, with SysTick on QEMU's instruction-counted virtual clock: the instructions of
 *      one cc_student_forecast and of one whole forecast frame (probe.txt: parse, encode,
 *      forward pass, decode, answer), calibrated against a loop of known length; and the stack
 *      high-water mark of each (stack painting).
 * Prints "key value" lines; the host turns ticks into instructions.
 */
#include <stdint.h>
#include <string.h>

#include "cc_node.h"
#include "model_data.h"
#include "semihosting.h"

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define STACK_PAINT 0xC5C5C5C5u

extern uint32_t __stack_limit;

static cc_node node;
static int32_t out_handle = -1;
static int discard_output = 0;
static uint32_t clock_last = 0, clock_ticks = 0, ns_per_tick = 1;

static void systick_start(void) {
  SYST_RVR = 0x00FFFFFFu;
  SYST_CVR = 0u;
  SYST_CSR = 0x5u; /* enable, processor clock, no interrupt */
}

/* Ticks since `start` (SysTick counts down, 24 bits). */
static uint32_t ticks_since(uint32_t start) {
  return (start - SYST_CVR) & 0x00FFFFFFu;
}

/* Writes "<tag> <crc in 8 hex digits>\n" to out.txt. */
static void write_crc_line(char tag, uint32_t crc) {
  char line[12];
  int i;
  line[0] = tag;
  line[1] = ' ';
  for (i = 0; i < 8; ++i)
    line[2 + i] = "0123456789abcdef"[(crc >> (28 - 4 * i)) & 0xFu];
  line[10] = '\n';
  (void)sh_write_file(out_handle, line, 11u);
}

static void write_hook(void* context, const char* bytes, size_t length) {
  static float bounds[2 * CC_NODE_MAX_HORIZON];
  const size_t h = cc_model.horizon;
  (void)context;
  if (discard_output || out_handle < 0) return;
  (void)sh_write_file(out_handle, bytes, (uint32_t)length);
  if (length > 7 && bytes[0] == 'c' && bytes[1] == 'c' && memcmp(bytes + 3, " FC ", 4) == 0) {
    write_crc_line('Y', cc_node_crc32(0u, cc_node_last_output(&node), h * sizeof(int32_t)));
    if (cc_node_last_interval(&node, bounds, bounds + h) == CC_OK)
      write_crc_line('L', cc_node_crc32(0u, bounds, 2u * h * sizeof(float)));
  }
}

static uint32_t micros_hook(void* context) {
  const uint32_t now = SYST_CVR;
  (void)context;
  clock_ticks += (clock_last - now) & 0x00FFFFFFu;
  clock_last = now;
  return (uint32_t)(((uint64_t)clock_ticks * ns_per_tick) / 1000u);
}

/* 2 instructions per iteration (subs, bne). */
__attribute__((noinline)) static void spin(uint32_t iterations) {
  __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(iterations) : : "cc");
}

static uint32_t current_sp(void) {
  uint32_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

/* Paints the free stack below this function's frame. */
__attribute__((noinline)) static void paint_stack(void) {
  uint32_t* p = &__stack_limit;
  uint32_t* const end = (uint32_t*)(current_sp() - 64u);
  for (; p < end; ++p)
    *p = STACK_PAINT;
}

/* Bytes of stack used below `sp` since paint_stack. */
static uint32_t stack_used_below(uint32_t sp) {
  const uint32_t* p = &__stack_limit;
  while (*p == STACK_PAINT)
    ++p;
  return sp - (uint32_t)(uintptr_t)p;
}

static void print(const char* key, uint32_t value) {
  sh_write(key);
  sh_write(" ");
  sh_write_u32(value);
  sh_write("\n");
}

static int feed_file(const char* path) {
  static char chunk[512];
  int32_t n;
  const int32_t in = sh_open(path, 1);
  if (in < 0) return 0;
  while ((n = sh_read(in, chunk, sizeof chunk)) > 0)
    cc_node_feed(&node, chunk, (size_t)n);
  sh_close(in);
  return 1;
}

static void measure_forecast(void) {
  enum { kRuns = 50 };
  const cc_student_model* s = cc_model.student;
  uint32_t sp, start, ticks;
  int i;
  paint_stack();
  sp = current_sp();
  (void)cc_student_forecast(s, node.input, node.output, node.scratch, sizeof node.scratch);
  print("stack_forecast_bytes", stack_used_below(sp));
  start = SYST_CVR;
  for (i = 0; i < kRuns; ++i)
    (void)cc_student_forecast(s, node.input, node.output, node.scratch, sizeof node.scratch);
  ticks = ticks_since(start);
  print("forecast_runs", kRuns);
  print("forecast_ticks", ticks);
}

static void measure_frame(void) {
  enum { kRuns = 20 };
  static char probe[CC_NODE_MAX_LINE + 2];
  uint32_t sp, start, ticks, forecasts;
  int32_t length;
  int i;
  const int32_t in = sh_open("probe.txt", 1);
  if (in < 0) return;
  length = sh_read(in, probe, sizeof probe);
  sh_close(in);
  if (length <= 0) return;
  discard_output = 1;
  forecasts = node.stats.forecasts;
  paint_stack();
  sp = current_sp();
  cc_node_feed(&node, probe, (size_t)length);
  print("stack_frame_bytes", stack_used_below(sp));
  start = SYST_CVR;
  for (i = 0; i < kRuns; ++i)
    cc_node_feed(&node, probe, (size_t)length);
  ticks = ticks_since(start);
  print("frame_runs", kRuns);
  print("frame_forecasts", node.stats.forecasts - forecasts - 1u);
  print("frame_ticks", ticks);
}

int main(void) {
  enum { kSpin = 100000 };
  uint32_t start;
  cc_node_io io;
  systick_start();
  start = SYST_CVR;
  spin(kSpin);
  print("calibration_instructions", 2u * kSpin);
  print("calibration_ticks", ticks_since(start));
  ns_per_tick = (2u * kSpin + ticks_since(start) / 2u) / (ticks_since(start) | 1u);
  clock_last = SYST_CVR;

  io.write = write_hook;
  io.micros = micros_hook;
  io.context = NULL;
  out_handle = sh_open("out.txt", 5);
  if (out_handle < 0 || cc_node_init(&node, &cc_model, io) != CC_NODE_OK) {
    sh_write("node init failed\n");
    return 1;
  }
  if (!feed_file("vectors.txt")) {
    sh_write("vectors.txt missing\n");
    return 1;
  }
  sh_close(out_handle);
  out_handle = -1;
  print("forecasts", node.stats.forecasts);
  print("frames", node.stats.rx);
  measure_forecast();
  measure_frame();
  return 0;
}
