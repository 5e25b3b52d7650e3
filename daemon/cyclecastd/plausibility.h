// What a forecast may say about a cell (docs/reliability.md, "Plausible forecasts"): SOH within
// the physical range, and no extrapolation of a cell already past its end of life. The stream
// forecaster refuses host forecasts that break either rule, the loop refuses edge forecasts out
// of range, and the API marks cells past end of life; all count what they refused.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "cyclecast/storage/database.h"

namespace cyclecast::daemon {

// SOH as a fraction of rated capacity. A fresh cell reads up to about 1.1 (cells are sold above
// their rating); 1.2 leaves room for that and for noise. Below 0 is no capacity at all.
inline constexpr double kMinPlausibleSoh = 0.0;
inline constexpr double kMaxPlausibleSoh = 1.2;
// End of life: SOH under 0.8 unless the cell's metadata says otherwise ("eol_soh").
inline constexpr double kDefaultEolSoh = 0.8;
// A cell is past end of life when the median of its last this-many SOH values is under its
// threshold: one low reading (a glitch) is not enough, five in a row are.
inline constexpr std::size_t kEolMedianCycles = 5;

// Finite and within [kMinPlausibleSoh, kMaxPlausibleSoh].
bool soh_plausible(double soh);
// Why a host forecast is implausible ("SOH 1.73 at +12 outside [0, 1.2]"); empty when every
// step is plausible. NaN is implausible: the host forecasts every step.
std::string implausible_host_forecast(std::span<const float> soh);
// The same for an edge forecast's reported points (+10 when present, +H).
std::string implausible_edge_forecast(std::optional<double> soh_at_10, double soh_at_h);

// The cell's end-of-life SOH: a number in (0, 1) under "eol_soh" in its metadata, else 0.8.
double eol_soh_of(const storage::CellInfo& cell);

struct EndOfLife {
  bool past = false;
  double median_soh = 0.0;  // of the last kEolMedianCycles values (NaN when too few)
  double eol_soh = kDefaultEolSoh;
};
// From the cell's SOH values, oldest first (NaN values are skipped); never past with fewer
// than kEolMedianCycles values.
EndOfLife end_of_life(std::span<const double> soh, double eol_soh);

}  // namespace cyclecast::daemon
