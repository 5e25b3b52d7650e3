// What one int8 student costs on the Nano 33 BLE Sense (nRF52840, Cortex-M4F at 64 MHz) when run by
// firmware/cc_student: flash, RAM, multiply-accumulates and estimated cycles per forecast. The
// Pareto selection (docs/pipeline-report.md) trades these against int8 error, so the numbers come
// from the runtime's real layout and the Cortex-M4 build (docs/firmware.md says where each constant
// comes from and how to re-measure it).
#pragma once

#include <cstdint>

#include "cyclecast/cc_student.h"

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

// Constants of the cost model, measured (docs/firmware.md): code and table sizes from the linker
// map of arm-none-eabi-gcc 12 -Os (-mcpu=cortex-m4), the stack by painting, and the per-operation
// figures fitted by non-negative least squares to QEMU's instruction counts (mps2-an386, -icount)
// of cc_student_forecast with the DSP kernels over 8 student shapes
// (tests/firmware/node_qemu_test.cc; the fit predicts each within 3 %;
// firmware/target/measured_cost.json, docs/firmware.md). They are *instructions* per operation:
// on the Cortex-M4 most of these take one cycle, loads and 64-bit multiplies more, so `cycles`
// and `milliseconds` are lower bounds until measured on a Nano. With the DSP kernels the
// per-Euler-unit work is not separable from the tanh's (the fit puts it at 0). The encoder's MACs
// have their own figure since its weights are stored in pair order (1.55 against 2.41 for the other
// layers'); before that the DSP fit was 2.37 per MAC, 22 per row, 126 per tanh, 0 fixed. The
// portable kernels' fit was 4.44 per MAC, 72 per row, 25 per tanh, 72 per Euler unit, 219 fixed;
// the hand-counted estimates before it 6.5, 45, 20, 40, 200.
struct CostConstants {
  int64_t runtime_code_bytes = 4590;  // cc_student.o + cc_requantize.o + cc_tanh_q15's code
  // The runtime's table, CC_TANH_TABLE_SIZE (257) int16 entries: 514 bytes.
  int64_t tanh_table_bytes = static_cast<int64_t>(sizeof(cc_tanh_q15_table));
  // sizeof(cc_student_model) with the Cortex-M4's 4-byte pointers (116); the firmware header pins
  // the struct to that formula with static_asserts, so this cannot drift from the runtime.
  int64_t descriptor_bytes = static_cast<int64_t>(CC_STUDENT_MODEL_BYTES(4));
  int64_t stack_bytes = 216;     // cc_student_forecast's painted stack high-water mark
  double cycles_per_mac = 2.41;  // SMLAD loops of every layer but the encoder, padded lanes
  // The encoder's MACs (F I): paired weights, four rows per pass (docs/firmware.md, "DSP kernels").
  double cycles_per_encoder_mac = 1.55;
  int64_t cycles_per_row = 19;        // a short row's loop pass plus its requantization
  int64_t cycles_per_tanh = 127;      // tanh, its row's requantization and the Euler update
  int64_t cycles_per_euler_unit = 0;  // in cycles_per_tanh (not separable in the fit)
  int64_t cycles_fixed = 249;         // argument checks, set-up, the head's lane words
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
