// Private to the simulator: the per-cell aging model. Every constant is listed with its
// meaning in docs/simulator.md; keep the two in step.
#pragma once

#include <cstdint>

#include "cyclecast/pipeline/simulate.h"
#include "simulate_random.h"

namespace cyclecast::pipeline::sim {

// Everything that is fixed for one cell over its life, drawn once from its parameter stream.
struct CellModel {
  ChargePolicy policy;
  double charge_time_fresh_min = 0.0;  // 0 -> 80 % state of charge on a fresh cell
  double stress_c = 0.0;               // SOC-weighted mean C-rate: drives the life
  double rms_c = 0.0;                  // RMS C-rate over the charge: drives the heating

  // Capacity: q(n) = fresh + rise (1 - e^(-n/rise_tau)) - linear n - amplitude (e^(n/scale) - 1)
  double fresh_capacity_ah = 0.0;
  double rise_ah = 0.0;
  double rise_tau_cycles = 0.0;
  double life_cycles = 0.0;  // real-valued cycle where q reaches 0.88 Ah
  double linear_fade_ah_per_cycle = 0.0;
  double knee_amplitude_ah = 0.0;
  double knee_scale_cycles = 0.0;

  double resistance_fresh_ohm = 0.0;
  double resistance_growth = 0.0;  // relative rise at end of life (fade fraction 1)

  double temperature_offset_c = 0.0;    // where the cell sits in the chamber
  double heating_scale = 0.0;           // cell-to-cell spread of the heating
  double charge_time_growth_min = 0.0;  // extra charge time at end of life

  // Regime change: past this cycle the fade (the capacity lost since it) is multiplied by
  // regime_fade_factor. 0: none.
  double regime_change_cycle = 0.0;
  double regime_fade_factor = 1.0;
};

// Draws the model of a cell charged under `policy`.
CellModel draw_cell_model(const ChargePolicy& policy, Rng& rng);

// Noise-free discharge capacity of cycle n (n >= 1; real-valued for the knee search), with the
// regime change if the model has one.
double true_capacity_ah(const CellModel& model, double cycle);
// Fraction of the fresh-to-end-of-life capacity loss reached at capacity q (0 fresh, 1 at end of
// life, above 1 past it; never negative).
double fade_fraction(const CellModel& model, double capacity_ah);
// First integer cycle whose true capacity is below 0.88 Ah.
std::int64_t eol_cycle(const CellModel& model);
// Where the line of the early fade meets the tangent of the capacity curve at end of life (of the
// curve without a regime change: the knee the cell was drawn with).
std::int64_t knee_cycle(const CellModel& model);

// Mean cycle life of policies with this stress before cell-to-cell spread.
double mean_life_cycles(double stress_c);

}  // namespace cyclecast::pipeline::sim
