// What both backends share of forecasts (forecasts.cc, pg_forecasts.cc): the validation of a
// forecast before it is written, and the arithmetic of scoring, so that a forecast is refused
// and scored the same whichever database holds it. The backends only read and write rows.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::storage::detail {

// A stored forecast still waiting for its +H error.
struct Unscored {
  std::int64_t id = 0, at_cycle = 0;
  std::vector<float> soh;
  double error_10 = 0.0;
  std::string model_version, origin;
};

// The errors a scoring pass sets on one forecast.
struct ScoreUpdate {
  std::int64_t id = 0;
  double error_10 = 0.0, error_h = 0.0;  // NaN: not known
  std::size_t new_errors = 0;
  ScoredForecast scored;  // filled when error_h is set (it is set once: rows with it are done)
};

// kInvalidArgument for a forecast neither backend stores.
inline Result<void> check_forecast(const ForecastRecord& f) {
  if (f.at_cycle < 1 || f.model_version.empty() || f.origin.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forecast of cell '" + f.cell_id + "' at cycle " +
                          std::to_string(f.at_cycle) +
                          ": needs at_cycle >= 1, a model version and an origin");
  }
  const bool no_interval = f.lower.empty() && f.upper.empty();
  if (!no_interval && (f.lower.size() != f.soh.size() || f.upper.size() != f.soh.size())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forecast of cell '" + f.cell_id + "' at cycle " +
                          std::to_string(f.at_cycle) +
                          ": an interval needs a lower and an upper bound for every step");
  }
  return {};
}

// The errors newly known for a cell's pending forecasts (by at_cycle), given the actual SOH
// (discharge capacity / rated capacity) of the cycles stored from the first one's at_cycle to
// the last target.
inline std::vector<ScoreUpdate> score_updates(
    const std::string& cell_id, const std::vector<Unscored>& pending,
    const std::unordered_map<std::int64_t, double>& actual) {
  // The error at `step` (1-based), or NaN when the cycle or the forecast's value is missing.
  auto error_at = [&](const Unscored& u, std::int64_t step) {
    if (step > std::ssize(u.soh)) return std::nan("");
    const auto found = actual.find(u.at_cycle + step);
    const float predicted = u.soh[static_cast<size_t>(step - 1)];
    if (found == actual.end() || std::isnan(predicted)) return std::nan("");
    return found->second - static_cast<double>(predicted);
  };
  std::vector<ScoreUpdate> updates;
  for (const Unscored& u : pending) {
    const bool had_10 = !std::isnan(u.error_10);
    ScoreUpdate update;
    update.id = u.id;
    update.error_10 = had_10 ? u.error_10 : error_at(u, 10);
    update.error_h = error_at(u, std::ssize(u.soh));
    const std::size_t new_errors = (!had_10 && !std::isnan(update.error_10) ? 1u : 0u) +
                                   (!std::isnan(update.error_h) ? 1u : 0u);
    if (new_errors == 0) continue;
    update.new_errors = new_errors;
    if (!std::isnan(update.error_h)) {
      update.scored = {cell_id,         u.at_cycle, u.at_cycle + std::ssize(u.soh),
                       u.model_version, u.origin,   update.error_h};
      if (const auto origin = actual.find(u.at_cycle); origin != actual.end()) {
        update.scored.origin_soh = origin->second;
      }
    }
    updates.push_back(std::move(update));
  }
  return updates;
}

}  // namespace cyclecast::storage::detail
