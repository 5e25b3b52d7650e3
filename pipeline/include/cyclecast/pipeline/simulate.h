// The rig simulator: per-cycle telemetry of LFP/graphite 18650 cells (modelled on the A123
// APR18650M1A of the reference data: 1.1 Ah rated, about 1.07 Ah fresh) cycled under fast-charge
// policies until they pass end of life (80 % of rated capacity). Each cell fades slowly, then
// past a knee ever faster; resistance, temperatures and charge time follow the fade and the
// charge policy; measurements carry noise and, rarely, the glitches real rigs produce. The model,
// every parameter and the glitch rates are described in docs/simulator.md.
//
// Deterministic: the same options give bit-identical records and byte-identical CSV on any
// IEEE-754 machine built without floating-point contraction (the simulator uses its own random
// generator, normal sampling and exp/log, never the platform's). Cell `i` depends only on the
// seed, `i` and the options, not on how many cells are simulated, so cells can be produced one
// at a time (simulate_cell) without holding a whole run in memory.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::pipeline {

// Rated capacity of the simulated cells and the end-of-life threshold (80 % of rated).
inline constexpr double kSimRatedCapacityAh = 1.1;
inline constexpr double kSimEndOfLifeCapacityAh = 0.88;

// Bounds that validate_simulation_options enforces.
inline constexpr std::int64_t kSimMaxCells = 100000;
inline constexpr std::int64_t kSimMaxCyclesCap = 100000;
inline constexpr std::int64_t kSimMaxRigs = 1000;
inline constexpr std::int64_t kSimMaxCyclesAfterEol = 10000;
inline constexpr double kSimMinRegimeFadeFactor = 0.1;
inline constexpr double kSimMaxRegimeFadeFactor = 100.0;

// 2026-01-01T00:00:00Z: the default start of the first cycle, in Unix epoch milliseconds.
inline constexpr std::int64_t kSimDefaultStartMs = 1767225600000;

// Probabilities of each glitch kind. Defaults are the rates seen in the reference data (see
// docs/simulator.md); every value must lie in [0, 1].
struct GlitchRates {
  // A test interruption: the cycle's charge time reads 490..510 min. Per cycle.
  double interruption_per_cycle = 3e-4;
  // Given an interruption, the cycle's capacities also read about 40 % too high.
  double capacity_spike_given_interruption = 0.3;
  // Charge time reads exactly 20.0 (a rig fill value meaning "missing"). Per cycle, before and
  // after the cell's true end of life: the reference rigs fill almost every cycle past it.
  double charge_time_fill_before_eol = 1e-4;
  double charge_time_fill_after_eol = 0.95;
  // Internal resistance reads exactly 0. Per cycle.
  double zero_resistance_per_cycle = 1.2e-4;
};

struct SimulationOptions {
  std::uint64_t seed = 1;
  std::int64_t cells = 10;  // 1..kSimMaxCells
  // Hard cap on cycles per cell, 1..kSimMaxCyclesCap; cells otherwise run until their true end
  // of life plus cycles_after_eol.
  std::int64_t max_cycles = 5000;
  std::int64_t cycles_after_eol = 20;  // 0..kSimMaxCyclesAfterEol
  std::int64_t rigs = 4;               // cells are spread round-robin over rig-sim-0..rigs-1
  // Charge policies such as "5.4C(40%)-3.6C": C-rate C1 from 0 to P % state of charge, then C2 to
  // 80 %. Cell i gets policies[i % size]; empty means the built-in list (default_policies()).
  std::vector<std::string> policies;
  GlitchRates glitches;
  std::int64_t start_ms = kSimDefaultStartMs;  // all cells start their first cycle here
  std::string batch;                           // CSV batch column; empty means "sim-<seed>"
  // A regime change (docs/simulator.md, "Regime change"), for testing drift detection: past
  // cycle regime_change_cycle the capacity of the changed cells fades regime_fade_factor times
  // as fast as their model says. 0: no change. Only cells whose index is a multiple of
  // regime_every change (1: all). Noise, glitches and the other cells are unaffected.
  std::int64_t regime_change_cycle = 0;  // 0..kSimMaxCyclesCap
  double regime_fade_factor = 1.0;       // kSimMinRegimeFadeFactor..kSimMaxRegimeFadeFactor
  std::int64_t regime_every = 1;         // 1..kSimMaxCells
};

// What a glitch did to one record: bit flags, OR-ed. The CSV carries the glitched values
// without the flags; the flags are the ground truth a cleaning step is checked against.
enum SimGlitch : std::uint8_t {
  kSimGlitchNone = 0,
  kSimGlitchInterruption = 1 << 0,    // charge_time_min 490..510
  kSimGlitchCapacitySpike = 1 << 1,   // discharge and charge capacity ~1.4x (with an interruption)
  kSimGlitchChargeTimeFill = 1 << 2,  // charge_time_min exactly 20.0
  kSimGlitchZeroResistance = 1 << 3,  // internal_resistance_ohm exactly 0
};

// Ground truth of one simulated cycle, parallel to SimulatedCell::cycles.
struct SimCycleTruth {
  double capacity_ah = 0.0;                // noise-free discharge capacity of the cycle
  std::uint8_t glitches = kSimGlitchNone;  // SimGlitch flags
};

struct SimulatedCell {
  storage::CellInfo info;                    // metadata_json also carries the ground truth below
  std::vector<storage::CycleRecord> cycles;  // cycle numbers 1, 2, ... consecutive
  std::vector<SimCycleTruth> truth;          // same length and order as cycles
  std::int64_t knee_cycle = 0;     // where the early fade line meets the tangent at end of life
  std::int64_t eol_cycle = 0;      // first cycle whose true capacity is below 0.88 Ah; may lie past
                                   // the last simulated cycle when max_cycles cut the run short
  std::int64_t last_cycle = 0;     // number of the last record (kept when cycles is cleared)
  double fresh_capacity_ah = 0.0;  // true capacity before the first cycle
  double initial_resistance_ohm = 0.0;  // true resistance of the fresh cell
  std::int64_t glitch_rows = 0;         // records with any glitch flag
  bool regime_changed = false;          // the options' regime change applies to this cell
};

// The built-in policy list, chosen to spread end of life over about 150..2300 cycles.
const std::vector<std::string>& default_policies();

// A parsed charge policy "C1C(P%)-C2C".
struct ChargePolicy {
  double c1_rate = 0.0;         // C-rate of the first step, (0, 10]
  double switch_soc_pct = 0.0;  // state of charge where the second step starts, [0, 80]
  double c2_rate = 0.0;         // C-rate of the second step, (0, 10]
};
Result<ChargePolicy> parse_charge_policy(std::string_view text);
// Minutes to charge from 0 to 80 % state of charge under `policy` (what the rig reports as
// charge time on a fresh cell), including the rig's fixed 0.1 min step overhead.
double policy_charge_time_min(const ChargePolicy& policy);

// Checks every field; kInvalidArgument with a sentence naming the field otherwise.
Result<void> validate_simulation_options(const SimulationOptions& options);

// Simulates every cell of the run, in cell-index order. Holds all records in memory (about
// 250 bytes per record); for large runs use simulate_cell and write as you go.
Result<std::vector<SimulatedCell>> simulate(const SimulationOptions& options);
// Simulates cell `index` (0-based, < options.cells) of the run alone; identical to
// simulate(options)[index].
Result<SimulatedCell> simulate_cell(const SimulationOptions& options, std::int64_t index);

// The batch column options give (options.batch, or "sim-<seed>" when empty).
std::string simulation_batch_name(const SimulationOptions& options);

// The per-cycle CSV: header line, then one line per record. Numbers have fixed decimals
// (qd/qc 6, ir 7, temperatures 3, charge time 4), written locale-independently; the
// simulator rounds its records to those decimals, so parsing the CSV gives the records back
// exactly. Returns kIo when the stream fails.
inline constexpr std::string_view kSimCyclesCsvHeader =
    "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min,measured_at";
Result<void> write_cycles_csv_header(std::ostream& out);
Result<void> write_cycles_csv_rows(std::ostream& out, const SimulatedCell& cell,
                                   std::string_view batch);
Result<void> write_cycles_csv(std::ostream& out, std::span<const SimulatedCell> cells,
                              std::string_view batch);

// The companion cells CSV: the CellInfo fields a registry needs plus the ground truth.
inline constexpr std::string_view kSimCellsCsvHeader =
    "cell_id,rig_id,chemistry,rated_capacity_ah,policy,knee_cycle,eol_cycle,last_cycle,"
    "fresh_capacity_ah,initial_ir_ohm,glitch_rows";
Result<void> write_cells_csv_header(std::ostream& out);
Result<void> write_cells_csv_row(std::ostream& out, const SimulatedCell& cell);
Result<void> write_cells_csv(std::ostream& out, std::span<const SimulatedCell> cells);

// "2026-01-01T00:00:00Z" for a Unix time in milliseconds (sub-second part dropped).
std::string format_utc_iso8601(std::int64_t unix_ms);

}  // namespace cyclecast::pipeline
