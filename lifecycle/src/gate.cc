#include "cyclecast/lifecycle/gate.h"

#include <cmath>
#include <cstdio>

namespace cyclecast::lifecycle {
namespace {

std::string figure(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", value);
  return text;
}

// Empty when the figure fits the limit; otherwise why not.
std::string over_limit(const char* name, const std::optional<std::int64_t>& value,
                       std::int64_t limit) {
  if (limit <= 0) return "";
  if (!value) return std::string(name) + " unknown (limit " + std::to_string(limit) + ")";
  if (*value > limit) {
    return std::string(name) + " " + std::to_string(*value) + " over the limit " +
           std::to_string(limit);
  }
  return "";
}

std::string budget_misses(const GateFootprint& f, const DeploymentBudget& budget) {
  std::string misses;
  const auto add = [&misses](const std::string& miss) {
    if (miss.empty()) return;
    if (!misses.empty()) misses += ", ";
    misses += miss;
  };
  add(over_limit("flash bytes", f.flash_bytes, budget.max_flash_bytes));
  add(over_limit("RAM bytes", f.ram_bytes, budget.max_ram_bytes));
  if (f.instructions) {
    add(over_limit("instructions", f.instructions, budget.max_instructions));
  } else {
    add(over_limit("estimated cycles", f.cycles, budget.max_instructions));
  }
  return misses;
}

}  // namespace

GateDecision gate(const GateCandidate& candidate, const std::optional<GateChampion>& champion,
                  double margin, const DeploymentBudget& budget) {
  const std::string misses = budget_misses(candidate.footprint, budget);
  if (!misses.empty()) {
    return {false, candidate.version + " does not fit the deployment budget: " + misses};
  }
  if (!std::isfinite(candidate.mae)) {
    return {false, candidate.version + " has no held-out MAE to judge it by"};
  }
  if (!candidate.beats_baselines) {
    return {false, candidate.version + " is not promoted: " +
                       (candidate.baseline_reason.empty()
                            ? std::string("its run gave no evidence against the baselines")
                            : candidate.baseline_reason)};
  }
  if (!champion) {
    return {true, candidate.version + " fits the budget and there is no champion; " +
                      candidate.baseline_reason};
  }
  if (!std::isfinite(champion->mae)) {
    return {false, candidate.version + " cannot be compared: champion " + champion->version + " " +
                       (champion->why_no_mae.empty() ? "has no held-out MAE on these windows"
                                                     : champion->why_no_mae)};
  }
  const double needed = margin * champion->mae;
  const bool kfold = champion->scoring == "k-fold";
  const double candidate_mae = kfold ? champion->candidate_mae : candidate.mae;
  const std::string figures = champion->scoring + " MAE " + figure(candidate_mae) +
                              " vs champion " + champion->version + " " + figure(champion->mae) +
                              " on the same " + std::to_string(champion->cells) +
                              (kfold ? " cells (each tested once)" : " test cells") +
                              "; paired bootstrap over cells: improvement " +
                              figure(champion->mae - candidate_mae) + ", lower 90 % bound " +
                              (std::isnan(champion->lower) ? std::string("unknown from one cell")
                                                           : figure(champion->lower));
  char needed_text[96];
  std::snprintf(needed_text, sizeof needed_text,
                "needs > %s (margin %.1f %% of the champion's MAE)", figure(needed).c_str(),
                100.0 * margin);
  if (champion->lower > needed) {
    return {true, candidate.version + " beats the champion: " + figures + ", " + needed_text +
                      "; " + candidate.baseline_reason};
  }
  return {false, candidate.version + " is not shown better than the champion: " + figures + ", " +
                     needed_text};
}

}  // namespace cyclecast::lifecycle
