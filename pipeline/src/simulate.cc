// The rig simulator: option checks, the per-cycle measurement loop and the CSV writers. The
// aging model itself is in simulate_model.cc; the random generator in simulate_random.cc.
#include "cyclecast/pipeline/simulate.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <system_error>

#include "simulate_model.h"
#include "simulate_random.h"

namespace cyclecast::pipeline {
namespace {

using sim::CellModel;
using sim::Rng;

// Bump when a change alters the output for a given seed; it is written into every cell's
// metadata so that stored simulated data says which model made it.
constexpr int kModelVersion = 1;

// Independent random streams of one cell.
constexpr std::uint64_t kStreamParameters = 1;
constexpr std::uint64_t kStreamNoise = 2;
constexpr std::uint64_t kStreamGlitches = 3;

// Measurement noise (standard deviations), as seen cycle to cycle in the reference data.
constexpr double kCapacityNoiseAh = 0.00015;
constexpr double kChargeExcessNoiseAh = 0.0004;
constexpr double kChargeExcessAtEolAh = 0.0025;  // qc - qd grows with the square of the fade
constexpr double kResistanceNoiseOhm = 0.00008;
constexpr double kTminNoiseC = 0.3;
constexpr double kTavgNoiseC = 0.18;
constexpr double kTmaxNoiseC = 0.3;
constexpr double kChargeTimeNoiseMin = 0.05;
// Temperatures: 30 C chamber, a slow AR(1) drift shared by the three readings of a cell, and
// heating proportional to the RMS charge C-rate times (R / R0)^2.
constexpr double kChamberC = 30.0;
constexpr double kDriftPersistence = 0.98;
constexpr double kDriftInnovationC = 0.1;  // stationary sd 0.1 / sqrt(1 - 0.98^2) ~ 0.5 C
constexpr double kTminBelowChamberC = 0.3;
constexpr double kTavgRisePerC = 0.5;
constexpr double kTmaxRisePerC = 1.4;
// Rig timing: a cycle lasts its charge time plus top-off, 4C discharge and rests.
constexpr double kCycleOverheadMin = 45.0;
// Glitch values.
constexpr double kInterruptionChargeTimeMinMin = 490.0;
constexpr double kInterruptionChargeTimeSpanMin = 20.0;
constexpr double kSpikeFactorMin = 1.38;
constexpr double kSpikeFactorSpan = 0.08;
constexpr double kSpikeChargeToDischargeRatio = 0.93;
constexpr double kChargeTimeFillMin = 20.0;
constexpr double kChargeTimeAboveFillMin = 20.0001;  // one output step above the fill value

// Largest start time whose cycles still format as a four-digit year.
constexpr std::int64_t kMaxStartMs = 250000000000000;

const char* kChemistry = "LFP/graphite";

Error invalid(std::string message) {
  return make_error(ErrorCode::kInvalidArgument, std::move(message));
}

bool is_probability(double p) {
  return std::isfinite(p) && p >= 0.0 && p <= 1.0;
}

Result<void> check_range(std::int64_t value, std::int64_t low, std::int64_t high,
                         const char* name) {
  if (value >= low && value <= high) return {};
  return invalid(std::string("simulation option ") + name + " is " + std::to_string(value) +
                 "; expected " + std::to_string(low) + ".." + std::to_string(high) + ".");
}

Result<void> check_glitch_rates(const GlitchRates& g) {
  const struct {
    double value;
    const char* name;
  } rates[] = {
      {g.interruption_per_cycle, "interruption_per_cycle"},
      {g.capacity_spike_given_interruption, "capacity_spike_given_interruption"},
      {g.charge_time_fill_before_eol, "charge_time_fill_before_eol"},
      {g.charge_time_fill_after_eol, "charge_time_fill_after_eol"},
      {g.zero_resistance_per_cycle, "zero_resistance_per_cycle"},
  };
  for (const auto& rate : rates) {
    if (!is_probability(rate.value)) {
      return invalid(std::string("glitch rate ") + rate.name + " must be a probability in [0, 1].");
    }
  }
  return {};
}

Result<std::vector<ChargePolicy>> parse_policies(const SimulationOptions& options) {
  const auto& texts = options.policies.empty() ? default_policies() : options.policies;
  std::vector<ChargePolicy> parsed;
  parsed.reserve(texts.size());
  for (const auto& text : texts) {
    auto policy = parse_charge_policy(text);
    if (!policy) return policy.error();
    parsed.push_back(*policy);
  }
  return parsed;
}

// Reads a decimal number at `pos`, advancing it; nullopt-like false when there is none.
bool read_number(std::string_view text, std::size_t& pos, double& value) {
  const char* begin = text.data() + pos;
  const char* end = text.data() + text.size();
  if (begin == end || !((*begin >= '0' && *begin <= '9') || *begin == '.')) return false;
  const auto [next, ec] = std::from_chars(begin, end, value, std::chars_format::fixed);
  if (ec != std::errc{}) return false;
  pos += static_cast<std::size_t>(next - begin);
  return true;
}

bool read_char(std::string_view text, std::size_t& pos, char expected) {
  if (pos >= text.size() || text[pos] != expected) return false;
  ++pos;
  return true;
}

double round_to(double value, double scale) {
  return std::round(value * scale) / scale;
}

void append_fixed(std::string& out, double value, int decimals) {
  char buffer[64];
  const auto [end, ec] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, decimals);
  if (ec == std::errc{}) out.append(buffer, end);
}

void append_int(std::string& out, std::int64_t value) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec == std::errc{}) out.append(buffer, end);
}

void append_padded(std::string& out, long value, int width) {
  std::string digits = std::to_string(value);
  if (static_cast<int>(digits.size()) < width) {
    out.append(static_cast<std::size_t>(width) - digits.size(), '0');
  }
  out += digits;
}

std::string cell_metadata_json(const SimulationOptions& options, const SimulatedCell& cell) {
  std::string json = "{\"simulator_model\":";
  append_int(json, kModelVersion);
  json += ",\"seed\":\"" + std::to_string(options.seed) + "\",\"knee_cycle\":";
  append_int(json, cell.knee_cycle);
  json += ",\"eol_cycle\":";
  append_int(json, cell.eol_cycle);
  if (cell.regime_changed) {
    json += ",\"regime_change_cycle\":";
    append_int(json, options.regime_change_cycle);
    json += ",\"regime_fade_factor\":";
    append_fixed(json, options.regime_fade_factor, 3);
  }
  json += "}";
  return json;
}

// Measured values of one cycle before glitches.
struct Reading {
  double qd_ah, qc_ah, ir_ohm, tmin_c, tavg_c, tmax_c, charge_time_min;
  double true_charge_time_min;
};

// Per-cycle state carried from one cycle to the next.
struct CycleState {
  double drift_c = 0.0;
};

Reading measure(const CellModel& m, double capacity_ah, Rng& noise, CycleState& state) {
  // Always draw the same eight normals per cycle, in this order, so streams stay aligned.
  const double z_qd = noise.normal();
  const double z_qc = noise.normal();
  const double z_ir = noise.normal();
  const double z_tmin = noise.normal();
  const double z_tavg = noise.normal();
  const double z_tmax = noise.normal();
  const double z_ct = noise.normal();
  const double z_drift = noise.normal();

  const double fade = sim::fade_fraction(m, capacity_ah);
  const double resistance_ohm = m.resistance_fresh_ohm * (1.0 + m.resistance_growth * fade * fade);
  const double resistance_ratio = resistance_ohm / m.resistance_fresh_ohm;
  const double heat_c = m.rms_c * resistance_ratio * resistance_ratio * m.heating_scale;
  state.drift_c = kDriftPersistence * state.drift_c + kDriftInnovationC * z_drift;
  const double base_c = kChamberC + m.temperature_offset_c + state.drift_c;

  Reading r{};
  r.qd_ah = capacity_ah + kCapacityNoiseAh * z_qd;
  r.qc_ah = r.qd_ah + kChargeExcessAtEolAh * fade * fade + kChargeExcessNoiseAh * z_qc;
  r.ir_ohm = resistance_ohm + kResistanceNoiseOhm * z_ir;
  r.tavg_c = base_c + kTavgRisePerC * heat_c + kTavgNoiseC * z_tavg;
  r.tmin_c = std::min(base_c - kTminBelowChamberC + kTminNoiseC * z_tmin, r.tavg_c);
  r.tmax_c = std::max(base_c + kTmaxRisePerC * heat_c + kTmaxNoiseC * z_tmax, r.tavg_c);
  r.true_charge_time_min = m.charge_time_fresh_min + m.charge_time_growth_min * fade * fade * fade;
  r.charge_time_min = r.true_charge_time_min + kChargeTimeNoiseMin * z_ct;
  return r;
}

// Applies this cycle's glitches to `r`; returns their flags.
std::uint8_t apply_glitches(const GlitchRates& rates, bool past_eol, Rng& draws, Reading& r) {
  // Always draw the same six uniforms per cycle so that rates change outcomes, not alignment.
  const double u_interruption = draws.uniform();
  const double u_spike = draws.uniform();
  const double u_fill = draws.uniform();
  const double u_zero = draws.uniform();
  const double u_time = draws.uniform();
  const double u_factor = draws.uniform();

  std::uint8_t flags = kSimGlitchNone;
  if (u_interruption < rates.interruption_per_cycle) {
    flags |= kSimGlitchInterruption;
    r.charge_time_min = kInterruptionChargeTimeMinMin + kInterruptionChargeTimeSpanMin * u_time;
    if (u_spike < rates.capacity_spike_given_interruption) {
      flags |= kSimGlitchCapacitySpike;
      const double factor = kSpikeFactorMin + kSpikeFactorSpan * u_factor;
      r.qd_ah *= factor;
      r.qc_ah = r.qd_ah * kSpikeChargeToDischargeRatio;
    }
  } else {
    const double fill_rate =
        past_eol ? rates.charge_time_fill_after_eol : rates.charge_time_fill_before_eol;
    if (u_fill < fill_rate) {
      flags |= kSimGlitchChargeTimeFill;
      r.charge_time_min = kChargeTimeFillMin;
    }
  }
  if (u_zero < rates.zero_resistance_per_cycle) {
    flags |= kSimGlitchZeroResistance;
    r.ir_ohm = 0.0;
  }
  return flags;
}

// Rounds to the CSV's decimals so that records and their CSV text are the same numbers.
storage::CycleRecord make_record(const std::string& cell_id, std::int64_t cycle, const Reading& r,
                                 std::uint8_t glitches, std::int64_t measured_at_ms,
                                 const std::string& source) {
  storage::CycleRecord record;
  record.cell_id = cell_id;
  record.cycle = cycle;
  record.discharge_capacity_ah = round_to(r.qd_ah, 1e6);
  record.charge_capacity_ah = round_to(r.qc_ah, 1e6);
  record.internal_resistance_ohm = round_to(r.ir_ohm, 1e7);
  record.temperature_max_c = round_to(r.tmax_c, 1e3);
  record.temperature_avg_c = round_to(r.tavg_c, 1e3);
  record.temperature_min_c = round_to(r.tmin_c, 1e3);
  record.charge_time_min = round_to(r.charge_time_min, 1e4);
  // 20.0 is the rig's fill value: a real reading that rounds onto it moves one step up, so
  // that every 20.0 in the output is a flagged glitch.
  if ((glitches & kSimGlitchChargeTimeFill) == 0 && record.charge_time_min == kChargeTimeFillMin) {
    record.charge_time_min = kChargeTimeAboveFillMin;
  }
  record.measured_at_ms = measured_at_ms;
  record.source = source;
  return record;
}

SimulatedCell simulate_checked(const SimulationOptions& options,
                               const std::vector<ChargePolicy>& policies, std::int64_t index) {
  const auto uindex = static_cast<std::uint64_t>(index);
  const std::size_t policy_index = static_cast<std::size_t>(uindex % policies.size());
  Rng parameters(sim::stream_seed(options.seed, uindex, kStreamParameters));
  Rng noise(sim::stream_seed(options.seed, uindex, kStreamNoise));
  Rng draws(sim::stream_seed(options.seed, uindex, kStreamGlitches));
  CellModel model = sim::draw_cell_model(policies[policy_index], parameters);
  const bool regime_changed = options.regime_change_cycle > 0 && index % options.regime_every == 0;
  if (regime_changed) {
    model.regime_change_cycle = static_cast<double>(options.regime_change_cycle);
    model.regime_fade_factor = options.regime_fade_factor;
  }

  SimulatedCell cell;
  cell.info.cell_id = "sim" + std::to_string(options.seed) + "c" + std::to_string(index);
  cell.info.rig_id = "rig-sim-" + std::to_string(index % options.rigs);
  cell.info.chemistry = kChemistry;
  cell.info.rated_capacity_ah = kSimRatedCapacityAh;
  cell.info.charge_policy =
      (options.policies.empty() ? default_policies() : options.policies)[policy_index];
  cell.knee_cycle = sim::knee_cycle(model);
  cell.eol_cycle = sim::eol_cycle(model);
  cell.fresh_capacity_ah = model.fresh_capacity_ah;
  cell.initial_resistance_ohm = model.resistance_fresh_ohm;
  cell.regime_changed = regime_changed;
  cell.info.metadata_json = cell_metadata_json(options, cell);

  const std::int64_t last = std::min(options.max_cycles, cell.eol_cycle + options.cycles_after_eol);
  cell.cycles.reserve(static_cast<std::size_t>(last));
  cell.truth.reserve(static_cast<std::size_t>(last));
  const std::string source = "simulate:seed=" + std::to_string(options.seed);
  CycleState state;
  state.drift_c =
      noise.normal(0.0, kDriftInnovationC / std::sqrt(1.0 - kDriftPersistence * kDriftPersistence));
  double clock_min = 0.0;
  for (std::int64_t n = 1; n <= last; ++n) {
    const double capacity_ah = sim::true_capacity_ah(model, static_cast<double>(n));
    Reading reading = measure(model, capacity_ah, noise, state);
    const std::uint8_t flags =
        apply_glitches(options.glitches, n >= cell.eol_cycle, draws, reading);
    const bool interrupted = (flags & kSimGlitchInterruption) != 0;
    clock_min +=
        (interrupted ? reading.charge_time_min : reading.true_charge_time_min) + kCycleOverheadMin;
    const std::int64_t at_ms = options.start_ms + 1000 * std::llround(clock_min * 60.0);
    cell.cycles.push_back(make_record(cell.info.cell_id, n, reading, flags, at_ms, source));
    cell.truth.push_back(SimCycleTruth{capacity_ah, flags});
    if (flags != kSimGlitchNone) ++cell.glitch_rows;
  }
  cell.last_cycle = last;
  return cell;
}

void append_cycle_row(std::string& out, const storage::CycleRecord& r, std::string_view batch) {
  out += r.cell_id;
  out += ',';
  out += batch;
  out += ',';
  append_int(out, r.cycle);
  out += ',';
  append_fixed(out, r.discharge_capacity_ah, 6);
  out += ',';
  append_fixed(out, r.charge_capacity_ah.value_or(0.0), 6);
  out += ',';
  append_fixed(out, r.internal_resistance_ohm.value_or(0.0), 7);
  out += ',';
  append_fixed(out, r.temperature_max_c.value_or(0.0), 3);
  out += ',';
  append_fixed(out, r.temperature_avg_c.value_or(0.0), 3);
  out += ',';
  append_fixed(out, r.temperature_min_c.value_or(0.0), 3);
  out += ',';
  append_fixed(out, r.charge_time_min.value_or(0.0), 4);
  out += ',';
  out += format_utc_iso8601(r.measured_at_ms.value_or(0));
  out += '\n';
}

Result<void> write_text(std::ostream& out, const std::string& text) {
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) return make_error(ErrorCode::kIo, "Writing simulated CSV failed.");
  return {};
}

}  // namespace

const std::vector<std::string>& default_policies() {
  // From gentle (~2000 cycles) to harsh (~160 cycles); see docs/simulator.md for each life.
  static const std::vector<std::string> policies = {
      "3.6C(80%)-3.6C",  "4C(80%)-4C",     "8C(15%)-3.6C", "5.4C(40%)-3.6C", "6C(40%)-3.6C",
      "5.2C(50%)-4.25C", "4.8C(80%)-4.8C", "8C(35%)-3.6C", "3.6C(30%)-6C",   "2C(10%)-6C",
  };
  return policies;
}

Result<ChargePolicy> parse_charge_policy(std::string_view text) {
  ChargePolicy policy;
  std::size_t pos = 0;
  const bool shape_ok =
      read_number(text, pos, policy.c1_rate) && read_char(text, pos, 'C') &&
      read_char(text, pos, '(') && read_number(text, pos, policy.switch_soc_pct) &&
      read_char(text, pos, '%') && read_char(text, pos, ')') && read_char(text, pos, '-') &&
      read_number(text, pos, policy.c2_rate) && read_char(text, pos, 'C') && pos == text.size();
  if (!shape_ok) {
    return invalid("charge policy '" + std::string(text) +
                   "' is not of the form C1C(P%)-C2C, e.g. 5.4C(40%)-3.6C.");
  }
  const auto rate_ok = [](double c) { return c > 0.0 && c <= 10.0; };
  if (!rate_ok(policy.c1_rate) || !rate_ok(policy.c2_rate)) {
    return invalid("charge policy '" + std::string(text) + "' has a C-rate outside (0, 10].");
  }
  if (policy.switch_soc_pct < 0.0 || policy.switch_soc_pct > 80.0) {
    return invalid("charge policy '" + std::string(text) +
                   "' switches outside 0..80 % state of charge.");
  }
  return policy;
}

double policy_charge_time_min(const ChargePolicy& policy) {
  const double p = policy.switch_soc_pct / 100.0;
  return 60.0 * (p / policy.c1_rate + (0.8 - p) / policy.c2_rate) + 0.1;
}

Result<void> validate_simulation_options(const SimulationOptions& options) {
  if (auto r = check_range(options.cells, 1, kSimMaxCells, "cells"); !r) return r;
  if (auto r = check_range(options.max_cycles, 1, kSimMaxCyclesCap, "max_cycles"); !r) return r;
  if (auto r = check_range(options.cycles_after_eol, 0, kSimMaxCyclesAfterEol, "cycles_after_eol");
      !r) {
    return r;
  }
  if (auto r = check_range(options.rigs, 1, kSimMaxRigs, "rigs"); !r) return r;
  if (auto r = check_range(options.start_ms, 0, kMaxStartMs, "start_ms"); !r) return r;
  if (auto r = check_glitch_rates(options.glitches); !r) return r;
  if (auto r = check_range(options.regime_change_cycle, 0, kSimMaxCyclesCap, "regime_change_cycle");
      !r) {
    return r;
  }
  if (auto r = check_range(options.regime_every, 1, kSimMaxCells, "regime_every"); !r) return r;
  if (!(options.regime_fade_factor >= kSimMinRegimeFadeFactor &&
        options.regime_fade_factor <= kSimMaxRegimeFadeFactor)) {
    return invalid("simulation option regime_fade_factor must lie in [0.1, 100].");
  }
  for (char c : options.batch) {
    if (c == ',' || c == '"' || c == '\n' || c == '\r') {
      return invalid("simulation batch name must not contain commas, quotes or line breaks.");
    }
  }
  auto policies = parse_policies(options);
  if (!policies) return policies.error();
  return {};
}

Result<std::vector<SimulatedCell>> simulate(const SimulationOptions& options) {
  if (auto valid = validate_simulation_options(options); !valid) return valid.error();
  auto policies = parse_policies(options);
  if (!policies) return policies.error();
  std::vector<SimulatedCell> cells;
  cells.reserve(static_cast<std::size_t>(options.cells));
  for (std::int64_t i = 0; i < options.cells; ++i) {
    cells.push_back(simulate_checked(options, *policies, i));
  }
  return cells;
}

Result<SimulatedCell> simulate_cell(const SimulationOptions& options, std::int64_t index) {
  if (auto valid = validate_simulation_options(options); !valid) return valid.error();
  if (index < 0 || index >= options.cells) {
    return invalid("cell index " + std::to_string(index) + " is outside 0.." +
                   std::to_string(options.cells - 1) + ".");
  }
  auto policies = parse_policies(options);
  if (!policies) return policies.error();
  return simulate_checked(options, *policies, index);
}

std::string simulation_batch_name(const SimulationOptions& options) {
  if (!options.batch.empty()) return options.batch;
  return "sim-" + std::to_string(options.seed);
}

std::string format_utc_iso8601(std::int64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> time{milliseconds{unix_ms}};
  const auto day = floor<days>(time);
  const year_month_day date{day};
  const hh_mm_ss clock{floor<seconds>(time - day)};
  std::string out;
  out.reserve(20);
  append_padded(out, static_cast<int>(date.year()), 4);
  out += '-';
  append_padded(out, static_cast<long>(static_cast<unsigned>(date.month())), 2);
  out += '-';
  append_padded(out, static_cast<long>(static_cast<unsigned>(date.day())), 2);
  out += 'T';
  append_padded(out, clock.hours().count(), 2);
  out += ':';
  append_padded(out, clock.minutes().count(), 2);
  out += ':';
  append_padded(out, static_cast<long>(clock.seconds().count()), 2);
  out += 'Z';
  return out;
}

Result<void> write_cycles_csv_header(std::ostream& out) {
  return write_text(out, std::string(kSimCyclesCsvHeader) + "\n");
}

Result<void> write_cycles_csv_rows(std::ostream& out, const SimulatedCell& cell,
                                   std::string_view batch) {
  std::string text;
  text.reserve(cell.cycles.size() * 112);
  for (const auto& record : cell.cycles)
    append_cycle_row(text, record, batch);
  return write_text(out, text);
}

Result<void> write_cycles_csv(std::ostream& out, std::span<const SimulatedCell> cells,
                              std::string_view batch) {
  if (auto r = write_cycles_csv_header(out); !r) return r;
  for (const auto& cell : cells) {
    if (auto r = write_cycles_csv_rows(out, cell, batch); !r) return r;
  }
  return {};
}

Result<void> write_cells_csv_header(std::ostream& out) {
  return write_text(out, std::string(kSimCellsCsvHeader) + "\n");
}

Result<void> write_cells_csv_row(std::ostream& out, const SimulatedCell& cell) {
  std::string text = cell.info.cell_id + ',' + cell.info.rig_id + ',' + cell.info.chemistry + ',';
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, cell.info.rated_capacity_ah);
  if (ec == std::errc{}) text.append(buffer, end);
  text += ',' + cell.info.charge_policy + ',';
  append_int(text, cell.knee_cycle);
  text += ',';
  append_int(text, cell.eol_cycle);
  text += ',';
  append_int(text, cell.last_cycle);
  text += ',';
  append_fixed(text, cell.fresh_capacity_ah, 6);
  text += ',';
  append_fixed(text, cell.initial_resistance_ohm, 7);
  text += ',';
  append_int(text, cell.glitch_rows);
  text += '\n';
  return write_text(out, text);
}

Result<void> write_cells_csv(std::ostream& out, std::span<const SimulatedCell> cells) {
  if (auto r = write_cells_csv_header(out); !r) return r;
  for (const auto& cell : cells) {
    if (auto r = write_cells_csv_row(out, cell); !r) return r;
  }
  return {};
}

}  // namespace cyclecast::pipeline
