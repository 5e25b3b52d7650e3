// Private to the simulator: a random generator and the few transcendental functions it needs,
// written with IEEE-754 basic operations only (+ - * / sqrt, ldexp, frexp are all exactly
// specified), so that the simulator's output does not depend on the platform's libm or on the
// standard library's distribution algorithms (std::normal_distribution is not portable).
#pragma once

#include <array>
#include <cstdint>

namespace cyclecast::pipeline::sim {

// e^x, within a few ulp of the exact value for |x| <= 700; 0 below -745, +inf above 709.8.
double portable_exp(double x);
// ln(x) for x > 0, within a few ulp; -inf for 0, NaN for negative x.
double portable_log(double x);

// One step of splitmix64 (Steele, Lea, Flood 2014): a bijective mixer used to derive seeds.
std::uint64_t splitmix64_next(std::uint64_t& state);

// Seed of the stream `purpose` of cell `index` under the run seed: independent streams per
// cell and per purpose, so that a cell never depends on how many cells are simulated and the
// glitch draws never shift the noise draws.
std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t index, std::uint64_t purpose);

// xoshiro256** (Blackman, Vigna 2018), seeded through splitmix64, with uniform and normal
// sampling on top. Normal variates use Marsaglia's polar method, which needs only log and sqrt.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);

  std::uint64_t next_u64();
  // Uniform in [0, 1), 53 random bits.
  double uniform();
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Standard normal variate.
  double normal();
  double normal(double mean, double sd) { return mean + sd * normal(); }

 private:
  std::array<std::uint64_t, 4> s_{};
  double spare_normal_ = 0.0;
  bool has_spare_normal_ = false;
};

}  // namespace cyclecast::pipeline::sim
