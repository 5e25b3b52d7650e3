// What one int8 student costs on the Nano 33 BLE Sense (nRF52840, Cortex-M4F at 64 MHz) when run by
// firmware/cc_student: flash, RAM, multiply-accumulates and estimated cycles per forecast. The
// Pareto selection of issue 5 trades these against int8 error, so the numbers come from the
// runtime's real layout and the Cortex-M4 build (docs/firmware.md says where each constant comes
// from and how to re-measure it).
#pragma once

#include <cstdint>

namespace cyclecast::models {

// The dimensions that decide the cost (the fields of StudentConfig).
struct StudentShape {
  int64_t input_size = 101;
  int64_t features = 8;
  int64_t width = 16;
  int64_t euler_steps = 1;
  int64_t horizon = 100;
};

// Any config with StudentConfig's field names (StudentConfig itself) as a shape.
template <typename Config>
StudentShape student_shape(const Config& config) {
  return {config.input_size, config.features, config.width, config.euler_steps, config.horizon};
}

// Constants of the cost model. Defaults: arm-none-eabi-gcc 12 -Os (-mcpu=cortex-m4), counted from
// the disassembly of firmware/src/cc_student.c and sized with arm-none-eabi-size / -fstack-usage.
struct CostConstants {
  int64_t runtime_code_bytes = 1640;  // cc_student.o + cc_requantize.o + cc_tanh_q15's code
  int64_t tanh_table_bytes = 514;     // 257 int16 entries
  int64_t descriptor_bytes = 116;     // sizeof(cc_student_model) with 32-bit pointers
  int64_t stack_bytes = 96;           // forecast frame 64 + deepest callee 20, rounded up
  double cycles_per_mac = 6.5;        // 4-way unrolled int8 x int16 loop: 26 cycles per 4 MACs
  int64_t cycles_per_row = 45;   // dot product call and loop set-up plus one cc_requantize call
  int64_t cycles_per_tanh = 20;  // table index, interpolation, sign
  int64_t cycles_per_euler_unit = 40;  // three 64-bit products and rounded shifts
  int64_t cycles_fixed = 200;          // argument checks, pointer set-up, call and return
  double clock_hz = 64e6;
};

struct StudentCost {
  int64_t parameters = 0;     // float parameters of the student (= int8 weights + the rest)
  int64_t weight_bytes = 0;   // int8 weights
  int64_t other_bytes = 0;    // int32 biases, multipliers, alpha, beta; int8 shifts
  int64_t flash_bytes = 0;    // weights + other + table + descriptor + runtime code
  int64_t scratch_bytes = 0;  // cc_student_scratch_bytes
  int64_t ram_bytes = 0;      // scratch + int16 input + int32 output + stack
  int64_t macs = 0;           // multiply-accumulates per forecast
  int64_t cycles = 0;         // estimated Cortex-M4 cycles per forecast
  double milliseconds = 0.0;  // cycles at clock_hz
};

StudentCost student_cost(const StudentShape& shape, const CostConstants& constants = {});

}  // namespace cyclecast::models
