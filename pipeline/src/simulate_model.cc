#include "simulate_model.h"

#include <algorithm>
#include <cmath>

namespace cyclecast::pipeline::sim {
namespace {

// Fresh capacity: the reference cells give 1.06..1.09 Ah on their first cycles.
constexpr double kFreshCapacityMeanAh = 1.068;
constexpr double kFreshCapacitySdAh = 0.006;
// Early rise: capacity climbs by about 0.01 Ah over the first tens of cycles.
constexpr double kRiseMeanAh = 0.008;
constexpr double kRiseSdAh = 0.003;
constexpr double kRiseTauCycles = 12.0;
// Life law: mean cycles to 0.88 Ah = kLifeAtRefStress e^(-kLifePerStress (stress - kRefStress)),
// fitted by eye to the reference policies (3.6C constant: ~2000, ten-minute policies: 350..900).
constexpr double kLifeAtRefStressCycles = 2000.0;
constexpr double kRefStressC = 3.6;
constexpr double kLifePerStress = 1.2;
constexpr double kLifeLogSd = 0.12;  // same-policy pairs differ by ~10 % in the reference data
constexpr double kLifeMinCycles = 100.0;
constexpr double kLifeMaxCycles = 3000.0;
// Share of the fresh-to-end-of-life loss that the linear term takes (the rest is the knee).
constexpr double kLinearShareMin = 0.05;
constexpr double kLinearShareMax = 0.25;
// Knee sharpness life / knee_scale: long-lived cells have sharper knees than short-lived ones.
constexpr double kSharpnessBase = 1.0;
constexpr double kSharpnessGain = 4.0;
constexpr double kSharpnessLifeCycles = 350.0;
constexpr double kSharpnessSpread = 0.15;
// Resistance: ~17.5 mOhm fresh, flat until the knee, ~20 % higher at end of life.
constexpr double kResistanceMeanOhm = 0.0175;
constexpr double kResistanceSdOhm = 0.0005;
constexpr double kResistanceGrowthMean = 0.20;
constexpr double kResistanceGrowthSd = 0.03;
// Chamber position and heating spread.
constexpr double kTemperatureOffsetSdC = 0.4;
constexpr double kHeatingScaleSd = 0.08;
// Charge time grows with the cube of the fade fraction: +6 min at end of life on average.
constexpr double kChargeTimeGrowthMeanMin = 6.0;
constexpr double kChargeTimeGrowthSdMin = 1.0;
// State of charge where the fast-charge policy ends (the rest is a 1C CC-CV top-off).
constexpr double kPolicyEndSoc = 0.8;

double clamp_normal(Rng& rng, double mean, double sd, double low, double high) {
  return std::clamp(rng.normal(mean, sd), low, high);
}

// Integral over state of charge of the weight 1 + 2 soc, from 0 to `soc`: plating risk grows
// with state of charge, so current late in the charge counts more.
double soc_weight_integral(double soc) {
  return soc + soc * soc;
}

double policy_stress_c(const ChargePolicy& policy) {
  const double p = policy.switch_soc_pct / 100.0;
  const double step1 = policy.c1_rate * soc_weight_integral(p);
  const double step2 =
      policy.c2_rate * (soc_weight_integral(kPolicyEndSoc) - soc_weight_integral(p));
  return (step1 + step2) / soc_weight_integral(kPolicyEndSoc);
}

// Heating power goes with current squared: the time-weighted mean of C^2, as an RMS C-rate.
double policy_rms_c(const ChargePolicy& policy) {
  const double p = policy.switch_soc_pct / 100.0;
  const double time_h = p / policy.c1_rate + (kPolicyEndSoc - p) / policy.c2_rate;
  const double c2_time = p * policy.c1_rate + (kPolicyEndSoc - p) * policy.c2_rate;
  return std::sqrt(c2_time / time_h);
}

}  // namespace

double mean_life_cycles(double stress_c) {
  return kLifeAtRefStressCycles * portable_exp(-kLifePerStress * (stress_c - kRefStressC));
}

CellModel draw_cell_model(const ChargePolicy& policy, Rng& rng) {
  CellModel m;
  m.policy = policy;
  m.charge_time_fresh_min = policy_charge_time_min(policy);
  m.stress_c = policy_stress_c(policy);
  m.rms_c = policy_rms_c(policy);

  m.fresh_capacity_ah = clamp_normal(rng, kFreshCapacityMeanAh, kFreshCapacitySdAh, 1.045, 1.09);
  m.rise_ah = clamp_normal(rng, kRiseMeanAh, kRiseSdAh, 0.0, 0.02);
  m.rise_tau_cycles = kRiseTauCycles;
  const double life = mean_life_cycles(m.stress_c) * portable_exp(rng.normal(0.0, kLifeLogSd));
  m.life_cycles = std::clamp(life, kLifeMinCycles, kLifeMaxCycles);
  const double linear_share = rng.uniform(kLinearShareMin, kLinearShareMax);
  const double sharpness =
      rng.uniform(1.0 - kSharpnessSpread, 1.0 + kSharpnessSpread) *
      (kSharpnessBase +
       kSharpnessGain * (1.0 - portable_exp(-m.life_cycles / kSharpnessLifeCycles)));
  m.knee_scale_cycles = m.life_cycles / sharpness;
  // Solve the two fade terms so that the curve meets 0.88 Ah exactly at life_cycles.
  const double loss_ah = m.fresh_capacity_ah +
                         m.rise_ah * (1.0 - portable_exp(-m.life_cycles / m.rise_tau_cycles)) -
                         kSimEndOfLifeCapacityAh;
  m.linear_fade_ah_per_cycle = linear_share * loss_ah / m.life_cycles;
  m.knee_amplitude_ah = (1.0 - linear_share) * loss_ah / (portable_exp(sharpness) - 1.0);

  m.resistance_fresh_ohm = clamp_normal(rng, kResistanceMeanOhm, kResistanceSdOhm, 0.0155, 0.0195);
  m.resistance_growth = clamp_normal(rng, kResistanceGrowthMean, kResistanceGrowthSd, 0.10, 0.30);
  m.temperature_offset_c = rng.normal(0.0, kTemperatureOffsetSdC);
  m.heating_scale = clamp_normal(rng, 1.0, kHeatingScaleSd, 0.7, 1.3);
  m.charge_time_growth_min =
      clamp_normal(rng, kChargeTimeGrowthMeanMin, kChargeTimeGrowthSdMin, 3.0, 9.0);
  return m;
}

namespace {

double drawn_capacity_ah(const CellModel& m, double cycle) {
  return m.fresh_capacity_ah + m.rise_ah * (1.0 - portable_exp(-cycle / m.rise_tau_cycles)) -
         m.linear_fade_ah_per_cycle * cycle -
         m.knee_amplitude_ah * (portable_exp(cycle / m.knee_scale_cycles) - 1.0);
}

}  // namespace

double true_capacity_ah(const CellModel& m, double cycle) {
  if (m.regime_change_cycle <= 0.0 || cycle <= m.regime_change_cycle) {
    return drawn_capacity_ah(m, cycle);
  }
  const double at_change_ah = drawn_capacity_ah(m, m.regime_change_cycle);
  return at_change_ah - m.regime_fade_factor * (at_change_ah - drawn_capacity_ah(m, cycle));
}

double fade_fraction(const CellModel& m, double capacity_ah) {
  const double top_ah = m.fresh_capacity_ah + m.rise_ah;
  return std::max(0.0, (top_ah - capacity_ah) / (top_ah - kSimEndOfLifeCapacityAh));
}

std::int64_t eol_cycle(const CellModel& m) {
  // The curve is concave and equals 0.88 Ah at life_cycles, so it is above before, below after.
  auto n = static_cast<std::int64_t>(std::floor(m.life_cycles));
  if (n < 1) n = 1;
  while (n > 1 && true_capacity_ah(m, static_cast<double>(n - 1)) < kSimEndOfLifeCapacityAh)
    --n;
  while (true_capacity_ah(m, static_cast<double>(n)) >= kSimEndOfLifeCapacityAh)
    ++n;
  return n;
}

std::int64_t knee_cycle(const CellModel& m) {
  const double exp_rate = m.knee_amplitude_ah / m.knee_scale_cycles;
  const double early_rate = m.linear_fade_ah_per_cycle + exp_rate;
  const double late_rate =
      m.linear_fade_ah_per_cycle + exp_rate * portable_exp(m.life_cycles / m.knee_scale_cycles);
  const double loss_ah = m.fresh_capacity_ah + m.rise_ah - kSimEndOfLifeCapacityAh;
  // early line: top - early_rate n; tangent: 0.88 - late_rate (n - life). They meet at:
  const double n = (late_rate * m.life_cycles - loss_ah) / (late_rate - early_rate);
  const double clamped = std::clamp(n, 1.0, m.life_cycles);
  return static_cast<std::int64_t>(std::floor(clamped + 0.5));
}

}  // namespace cyclecast::pipeline::sim
