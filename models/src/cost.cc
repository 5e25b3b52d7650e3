#include "cyclecast/models/cost.h"

#include <cmath>

namespace cyclecast::models {

StudentCost student_cost(const StudentShape& s, const CostConstants& k) {
  const int64_t in = s.input_size, f = s.features, w = s.width, h = s.horizon,
                steps = s.euler_steps;
  StudentCost cost;
  const int64_t weights = f * in + w * f + w * w + h * f + h * w;
  cost.parameters = weights + w + 2 * w + w + h;  // + a, alpha, beta, b, c
  cost.weight_bytes = weights;
  // int32: lift/liquid biases, alpha, beta, c; multipliers of every requantized row.
  const int64_t int32_values = (2 * w + 2 * w + h) + (f + w + w + h + h);
  const int64_t shifts = f + w + w + h + h;
  cost.other_bytes = 4 * int32_values + shifts;
  cost.flash_bytes = cost.weight_bytes + cost.other_bytes + k.tanh_table_bytes +
                     k.descriptor_bytes + k.runtime_code_bytes;
  cost.scratch_bytes = 2 * (f + 2 * w);
  cost.ram_bytes = cost.scratch_bytes + 2 * in + 4 * h + k.stack_bytes;

  cost.macs = f * in + w * f + steps * w * w + h * f + h * w;
  const int64_t rows = f + w + steps * w + 2 * h;  // dot products, each with one requantization
  const int64_t tanhs = w * (1 + steps);
  const int64_t encoder_macs = f * in;
  cost.cycles = static_cast<int64_t>(std::llround(
                    k.cycles_per_encoder_mac * static_cast<double>(encoder_macs) +
                    k.cycles_per_mac * static_cast<double>(cost.macs - encoder_macs))) +
                k.cycles_per_row * rows + k.cycles_per_tanh * tanhs +
                k.cycles_per_euler_unit * steps * w + k.cycles_fixed;
  cost.milliseconds = static_cast<double>(cost.cycles) / k.clock_hz * 1e3;
  return cost;
}

}  // namespace cyclecast::models
