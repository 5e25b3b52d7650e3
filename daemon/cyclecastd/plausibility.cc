#include "plausibility.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "cyclecast/bounded_json.h"

namespace cyclecast::daemon {
namespace {

std::string out_of_range(double soh, const std::string& where) {
  char text[160];
  std::snprintf(text, sizeof text, "SOH %g at %s outside [%g, %g]", soh, where.c_str(),
                kMinPlausibleSoh, kMaxPlausibleSoh);
  return text;
}

}  // namespace

bool soh_plausible(double soh) {
  return std::isfinite(soh) && soh >= kMinPlausibleSoh && soh <= kMaxPlausibleSoh;
}

std::string implausible_host_forecast(std::span<const float> soh) {
  if (soh.empty()) return "an empty forecast";
  // Compared as floats, so that the float nearest 1.2 counts as 1.2 (it is a little above).
  constexpr auto kMin = static_cast<float>(kMinPlausibleSoh);
  constexpr auto kMax = static_cast<float>(kMaxPlausibleSoh);
  for (std::size_t j = 0; j < soh.size(); ++j) {
    if (!(std::isfinite(soh[j]) && soh[j] >= kMin && soh[j] <= kMax)) {
      return out_of_range(soh[j], "+" + std::to_string(j + 1));
    }
  }
  return {};
}

std::string implausible_edge_forecast(std::optional<double> soh_at_10, double soh_at_h) {
  if (soh_at_10 && !soh_plausible(*soh_at_10)) return out_of_range(*soh_at_10, "+10");
  if (!soh_plausible(soh_at_h)) return out_of_range(soh_at_h, "+H");
  return {};
}

double eol_soh_of(const storage::CellInfo& cell) {
  // Stored metadata passed the protocol's limits when it arrived; a bad value means the default.
  const auto parsed = parse_bounded_json(cell.metadata_json, cell.metadata_json.size());
  if (!parsed || !parsed->is_object()) return kDefaultEolSoh;
  const auto found = parsed->find("eol_soh");
  if (found == parsed->end() || !found->is_number()) return kDefaultEolSoh;
  const double value = found->get<double>();
  return value > 0.0 && value < 1.0 ? value : kDefaultEolSoh;
}

EndOfLife end_of_life(std::span<const double> soh, double eol_soh) {
  EndOfLife result;
  result.eol_soh = eol_soh;
  std::vector<double> last;
  for (auto it = soh.rbegin(); it != soh.rend() && last.size() < kEolMedianCycles; ++it) {
    if (!std::isnan(*it)) last.push_back(*it);
  }
  if (last.size() < kEolMedianCycles) {
    result.median_soh = std::nan("");
    return result;
  }
  std::nth_element(last.begin(), last.begin() + kEolMedianCycles / 2, last.end());
  result.median_soh = last[kEolMedianCycles / 2];
  result.past = result.median_soh < eol_soh;
  return result;
}

}  // namespace cyclecast::daemon
