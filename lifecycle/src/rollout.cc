#include "cyclecast/lifecycle/rollout.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>

#include "cyclecast/pipeline/protocols.h"

namespace cyclecast::lifecycle {
namespace {

// The bands of pipeline::soh_band, and one for an origin whose SOH is unknown.
constexpr std::size_t kBands = 4;
constexpr std::size_t kUnknownBand = 3;

std::size_t band_of(double origin_soh) {
  if (std::isnan(origin_soh)) return kUnknownBand;
  const char* band = pipeline::soh_band(origin_soh);
  if (std::strcmp(band, "high") == 0) return 0;
  if (std::strcmp(band, "medium") == 0) return 1;
  return 2;
}

struct Tally {
  double sum = 0.0;
  std::int64_t count = 0;
  void add(const Tally& other) {
    sum += other.sum;
    count += other.count;
  }
};
using BandTallies = std::array<Tally, kBands>;

// One side's usable samples, summed by cell and band (cells in id order, so that the bootstrap's
// draws do not depend on the order the samples came in).
std::vector<BandTallies> tally_by_cell(std::span<const LiveSample> samples) {
  std::map<std::string, BandTallies> cells;
  for (const LiveSample& s : samples) {
    if (!(s.abs_error >= 0.0) || !std::isfinite(s.abs_error)) continue;
    Tally& t = cells[s.cell][band_of(s.origin_soh)];
    t.sum += s.abs_error;
    ++t.count;
  }
  std::vector<BandTallies> out;
  out.reserve(cells.size());
  for (auto& [cell, tallies] : cells)
    out.push_back(tallies);
  return out;
}

BandTallies total(const std::vector<BandTallies>& cells) {
  BandTallies sum{};
  for (const BandTallies& cell : cells)
    for (std::size_t b = 0; b < kBands; ++b)
      sum[b].add(cell[b]);
  return sum;
}

// Both sides' MAEs standardized to `weights` (the new model's band mix): the sum over bands of
// weight x that band's MAE. A band a resample happens to lack takes the full sample's MAE.
struct Pair {
  double candidate = 0.0, reference = 0.0;
  double relative() const {
    if (reference > 0.0) return (candidate - reference) / reference;
    return candidate > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
  }
};

double weighted_mae(const BandTallies& side, const BandTallies& fallback,
                    const std::array<double, kBands>& weights) {
  double mae = 0.0;
  for (std::size_t b = 0; b < kBands; ++b) {
    if (weights[b] == 0.0) continue;
    const Tally& t = side[b].count > 0 ? side[b] : fallback[b];
    mae += weights[b] * t.sum / static_cast<double>(t.count);
  }
  return mae;
}

BandTallies resample(const std::vector<BandTallies>& cells, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::size_t> pick(0, cells.size() - 1);
  BandTallies sum{};
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const BandTallies& cell = cells[pick(rng)];
    for (std::size_t b = 0; b < kBands; ++b)
      sum[b].add(cell[b]);
  }
  return sum;
}

// The (q)-quantile of sorted values, by the nearest rank below.
double quantile(const std::vector<double>& sorted, double q) {
  const auto last = static_cast<double>(sorted.size() - 1);
  return sorted[static_cast<std::size_t>(std::floor(q * last))];
}

std::string percent(double relative) {
  if (std::isnan(relative)) return "unknown";
  if (std::isinf(relative)) return relative > 0 ? "+inf %" : "-inf %";
  char text[32];
  std::snprintf(text, sizeof text, "%+.1f %%", 100.0 * relative);
  return text;
}

std::string figure(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", value);
  return text;
}

// Bootstrap bounds of the relative difference, resampling cells of each side independently.
void bootstrap(const std::vector<BandTallies>& candidate, const std::vector<BandTallies>& reference,
               const std::array<double, kBands>& weights, const RolloutPolicy& policy,
               RolloutDecision& out) {
  if (candidate.size() < 2 || reference.size() < 2) return;
  const BandTallies all_candidate = total(candidate), all_reference = total(reference);
  std::mt19937_64 rng(policy.seed);
  std::vector<double> relative;
  relative.reserve(static_cast<std::size_t>(policy.resamples));
  for (std::int64_t r = 0; r < policy.resamples; ++r) {
    const Pair pair{weighted_mae(resample(candidate, rng), all_candidate, weights),
                    weighted_mae(resample(reference, rng), all_reference, weights)};
    relative.push_back(pair.relative());
  }
  std::sort(relative.begin(), relative.end());
  out.lower = quantile(relative, 1.0 - policy.level);
  out.upper = quantile(relative, policy.level);
}

}  // namespace

Result<void> check_rollout_policy(const RolloutPolicy& p) {
  const auto bad = [](const std::string& what) {
    return make_error(ErrorCode::kInvalidArgument, "rollout policy: " + what);
  };
  if (p.canary_count < 1) return bad("canary_count must be at least 1");
  if (!(p.canary_share >= 0.0 && p.canary_share < 1.0))
    return bad("canary_share must be in [0, 1) (0: use canary_count)");
  if (p.min_scored < 1) return bad("min_scored must be at least 1");
  if (p.max_scored < p.min_scored) return bad("max_scored must be at least min_scored");
  if (!(p.tolerance >= 0.0 && std::isfinite(p.tolerance)))
    return bad("tolerance must be a finite figure >= 0");
  if (p.resamples < 1) return bad("resamples must be at least 1");
  if (!(p.level > 0.5 && p.level < 1.0)) return bad("level must be in (0.5, 1)");
  return {};
}

std::vector<std::string> choose_canaries(std::vector<std::string> nodes,
                                         const RolloutPolicy& policy) {
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  if (nodes.empty()) return nodes;
  auto count = static_cast<std::size_t>(std::max<std::int64_t>(policy.canary_count, 1));
  if (policy.canary_share > 0.0) {
    count = static_cast<std::size_t>(
        std::ceil(policy.canary_share * static_cast<double>(nodes.size())));
  }
  // At least one canary; and a fleet of two or more keeps one node on the previous model, or
  // there would be nothing to compare the canaries with.
  const std::size_t most = nodes.size() == 1 ? 1 : nodes.size() - 1;
  nodes.resize(std::clamp<std::size_t>(count, 1, most));
  return nodes;
}

const char* to_string(RolloutVerdict verdict) {
  switch (verdict) {
    case RolloutVerdict::kWait:
      return "wait";
    case RolloutVerdict::kProceed:
      return "proceed";
    case RolloutVerdict::kRollBack:
      return "roll back";
  }
  return "?";
}

RolloutDecision decide_rollout(std::span<const LiveSample> candidate_samples,
                               std::span<const LiveSample> reference_samples,
                               const RolloutPolicy& policy) {
  RolloutDecision out;
  std::vector<BandTallies> candidate = tally_by_cell(candidate_samples);
  const std::vector<BandTallies> reference = tally_by_cell(reference_samples);
  const BandTallies all_reference = total(reference);
  // Leave out the new model's samples in bands the previous model has none of.
  std::int64_t incomparable = 0;
  for (BandTallies& cell : candidate) {
    for (std::size_t b = 0; b < kBands; ++b) {
      if (all_reference[b].count > 0) continue;
      incomparable += cell[b].count;
      cell[b] = {};
    }
  }
  std::erase_if(candidate, [](const BandTallies& cell) {
    return std::all_of(cell.begin(), cell.end(), [](const Tally& t) { return t.count == 0; });
  });
  const BandTallies all_candidate = total(candidate);
  std::array<double, kBands> weights{};
  for (std::size_t b = 0; b < kBands; ++b) {
    out.candidate_scored += all_candidate[b].count;
    out.reference_scored += all_reference[b].count;
  }
  for (std::size_t b = 0; b < kBands; ++b) {
    if (out.candidate_scored > 0)
      weights[b] = static_cast<double>(all_candidate[b].count) / out.candidate_scored;
  }
  const std::string left_out =
      incomparable > 0 ? " (" + std::to_string(incomparable) +
                             " of its forecasts left out: no previous-model forecast in their "
                             "SOH band)"
                       : "";
  if (out.candidate_scored < policy.min_scored || out.reference_scored < policy.min_scored) {
    out.reason = "waiting for scored forecasts: the new model has " +
                 std::to_string(out.candidate_scored) + ", the previous one " +
                 std::to_string(out.reference_scored) + ", each needs " +
                 std::to_string(policy.min_scored) + left_out;
    return out;
  }
  const Pair point{weighted_mae(all_candidate, all_candidate, weights),
                   weighted_mae(all_reference, all_reference, weights)};
  out.candidate_mae = point.candidate;
  out.reference_mae = point.reference;
  bootstrap(candidate, reference, weights, policy, out);
  const double relative = point.relative();
  char level[16];
  std::snprintf(level, sizeof level, "%.0f %%", 100.0 * policy.level);
  const std::string figures =
      "the new model's live MAE " + figure(point.candidate) + " over " +
      std::to_string(out.candidate_scored) + " forecasts of " + std::to_string(candidate.size()) +
      " cells against the previous model's " + figure(point.reference) + " over " +
      std::to_string(out.reference_scored) + " of " + std::to_string(reference.size()) +
      " cells, weighted to the same SOH bands: " + percent(relative) + " (" + level + " bounds " +
      percent(out.lower) + " and " + percent(out.upper) + "), tolerance " +
      percent(policy.tolerance) + left_out;
  if (out.upper <= policy.tolerance) {
    out.verdict = RolloutVerdict::kProceed;
    out.reason = "proceed: " + figures;
  } else if (out.lower > policy.tolerance) {
    out.verdict = RolloutVerdict::kRollBack;
    out.reason = "roll back: " + figures;
  } else if (out.candidate_scored >= policy.max_scored) {
    out.verdict =
        relative <= policy.tolerance ? RolloutVerdict::kProceed : RolloutVerdict::kRollBack;
    out.reason = std::string(to_string(out.verdict)) + " on the point estimate after " +
                 std::to_string(policy.max_scored) + " forecasts still within noise: " + figures;
  } else {
    out.reason = "waiting: within noise so far; " + figures;
  }
  return out;
}

}  // namespace cyclecast::lifecycle
