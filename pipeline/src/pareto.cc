#include "cyclecast/pipeline/pareto.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "printf_string.h"

namespace cyclecast::pipeline {
namespace {

// A chord distance below this counts as "on the chord": normalized coordinates are in [0, 1], so
// it only absorbs rounding of collinear points, which must not decide the choice.
constexpr double kKneeEpsilon = 1e-9;

double kib(int64_t bytes) {
  return static_cast<double>(bytes) / 1024.0;
}

bool measured(const Candidate& c) {
  return !std::isnan(c.int8_mae) && c.flash_bytes > 0;
}

// a dominates b: no worse in both objectives, strictly better in one.
bool dominates(const Candidate& a, const Candidate& b) {
  const bool no_worse = a.int8_mae <= b.int8_mae && a.flash_bytes <= b.flash_bytes;
  const bool better = a.int8_mae < b.int8_mae || a.flash_bytes < b.flash_bytes;
  return no_worse && better;
}

// The front of the candidates listed in `pool`, ordered as pareto_front() documents.
std::vector<size_t> front_of(const std::vector<Candidate>& candidates,
                             const std::vector<size_t>& pool) {
  std::vector<size_t> front;
  for (size_t i : pool) {
    const bool dominated = std::any_of(pool.begin(), pool.end(), [&](size_t j) {
      return j != i && dominates(candidates[j], candidates[i]);
    });
    if (!dominated) front.push_back(i);
  }
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    const Candidate& ca = candidates[a];
    const Candidate& cb = candidates[b];
    if (ca.flash_bytes != cb.flash_bytes) return ca.flash_bytes < cb.flash_bytes;
    if (ca.int8_mae != cb.int8_mae) return ca.int8_mae < cb.int8_mae;
    return a < b;
  });
  return front;
}

std::string budget_text(const Budget& budget) {
  return printf_string("flash <= %.1f kB, RAM <= %.1f kB, <= %.2f ms at 64 MHz",
                       kib(budget.max_flash_bytes), kib(budget.max_ram_bytes), budget.max_ms);
}

std::string cost_text(const Candidate& c) {
  return printf_string("%.1f kB flash, %.1f kB RAM, %.2f ms", kib(c.flash_bytes), kib(c.ram_bytes),
                       c.ms_at_64mhz);
}

// "18 % higher" / "3 % lower": relative to `base`, or absolute when base is 0.
std::string relative_mae(double mae, double base) {
  if (base <= 0) return printf_string("MAE %.5f", mae);
  const double percent = (mae - base) / base * 100.0;
  return printf_string("%.0f %% %s MAE", std::fabs(percent), percent >= 0 ? "higher" : "lower");
}

// Position in `front` of the knee (see choose_knee), and whether a point lay below the chord.
struct Knee {
  size_t position = 0;
  bool below_chord = false;
};

Knee find_knee(const std::vector<Candidate>& candidates, const std::vector<size_t>& front) {
  // front runs from cheapest (highest error) to most accurate (lowest error).
  const Candidate& cheapest = candidates[front.front()];
  const Candidate& accurate = candidates[front.back()];
  const double log_min = std::log(static_cast<double>(cheapest.flash_bytes));
  const double log_span = std::log(static_cast<double>(accurate.flash_bytes)) - log_min;
  const double mae_span = cheapest.int8_mae - accurate.int8_mae;
  // Without a knee: the most accurate point, the first (lowest index) of exact duplicates.
  Knee knee{front.size() - 1, false};
  while (knee.position > 0 &&
         candidates[front[knee.position - 1]].flash_bytes == accurate.flash_bytes &&
         candidates[front[knee.position - 1]].int8_mae == accurate.int8_mae) {
    --knee.position;
  }
  if (log_span <= 0 || mae_span <= 0) return knee;
  double best = kKneeEpsilon;
  for (size_t k = 0; k < front.size(); ++k) {
    const Candidate& c = candidates[front[k]];
    const double u = (std::log(static_cast<double>(c.flash_bytes)) - log_min) / log_span;
    const double v = (c.int8_mae - accurate.int8_mae) / mae_span;
    const double below = 1.0 - u - v;  // sqrt(2) times the distance below the chord
    if (below > best) {                // strict: on a tie the earlier (cheaper) point stays
      best = below;
      knee = Knee{k, true};
    }
  }
  return knee;
}

std::string neighbour_text(const std::vector<Candidate>& candidates,
                           const std::vector<size_t>& front, size_t position) {
  const Candidate& chosen = candidates[front[position]];
  std::string text;
  if (position > 0) {
    const Candidate& cheaper = candidates[front[position - 1]];
    text += printf_string("; the next cheaper front point, %s (%.1f kB), has ",
                          cheaper.name.c_str(), kib(cheaper.flash_bytes)) +
            relative_mae(cheaper.int8_mae, chosen.int8_mae);
  }
  if (position + 1 < front.size()) {
    const Candidate& dearer = candidates[front[position + 1]];
    text += printf_string("; the next more accurate, %s, has ", dearer.name.c_str()) +
            relative_mae(dearer.int8_mae, chosen.int8_mae) +
            printf_string(" for %.2fx the flash", static_cast<double>(dearer.flash_bytes) /
                                                      static_cast<double>(chosen.flash_bytes));
  }
  return text;
}

std::string reason_text(const std::vector<Candidate>& candidates, const std::vector<size_t>& front,
                        const Knee& knee, const Budget& budget, size_t measured_count,
                        size_t fitting_count) {
  const Candidate& chosen = candidates[front[knee.position]];
  std::string rule = knee.below_chord
                         ? printf_string("knee of %zu front points", front.size())
                         : printf_string(
                               "most accurate of %zu front points (none lies below the "
                               "chord, so there is no knee)",
                               front.size());
  std::string text =
      rule + " within budget (" + budget_text(budget) + "): " + chosen.name + " (" + chosen.stage +
      "), " + cost_text(chosen) +
      printf_string(", int8 MAE %.5f (float %.5f)", chosen.int8_mae, chosen.float_mae) +
      neighbour_text(candidates, front, knee.position) + ".";
  if (fitting_count < measured_count) {
    text += printf_string(" %zu of %zu measured candidates exceed the budget.",
                          measured_count - fitting_count, measured_count);
  }
  return text;
}

Error nothing_fits(const std::vector<Candidate>& candidates,
                   const std::vector<size_t>& measured_ids, const Budget& budget) {
  std::string message = "no candidate fits the deployment budget (" + budget_text(budget) + ")";
  if (measured_ids.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      message + ": none of the " + std::to_string(candidates.size()) +
                          " candidates has a measured int8 MAE and flash size.");
  }
  const size_t cheapest = *std::min_element(
      measured_ids.begin(), measured_ids.end(),
      [&](size_t a, size_t b) { return candidates[a].flash_bytes < candidates[b].flash_bytes; });
  return make_error(
      ErrorCode::kInvalidArgument,
      message +
          printf_string(" among %zu measured candidates; the smallest, ", measured_ids.size()) +
          candidates[cheapest].name + ", needs " + cost_text(candidates[cheapest]) + ".");
}

}  // namespace

bool within_budget(const Candidate& c, const Budget& budget) {
  return c.flash_bytes <= budget.max_flash_bytes && c.ram_bytes <= budget.max_ram_bytes &&
         c.ms_at_64mhz <= budget.max_ms;
}

std::vector<size_t> pareto_front(const std::vector<Candidate>& candidates) {
  std::vector<size_t> pool;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (measured(candidates[i])) pool.push_back(i);
  }
  return front_of(candidates, pool);
}

Result<Choice> choose_knee(const std::vector<Candidate>& candidates, const Budget& budget) {
  std::vector<size_t> measured_ids;
  std::vector<size_t> fitting;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!measured(candidates[i])) continue;
    measured_ids.push_back(i);
    if (within_budget(candidates[i], budget)) fitting.push_back(i);
  }
  if (fitting.empty()) return nothing_fits(candidates, measured_ids, budget);
  // The front of the fitting candidates, not the global front cut to the budget: a point
  // dominated only by one that does not fit is still a valid trade-off to deploy.
  const std::vector<size_t> front = front_of(candidates, fitting);
  const Knee knee = find_knee(candidates, front);
  return Choice{front[knee.position],
                reason_text(candidates, front, knee, budget, measured_ids.size(), fitting.size())};
}

}  // namespace cyclecast::pipeline
