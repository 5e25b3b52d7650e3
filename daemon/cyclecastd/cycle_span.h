// What a commit tells the stream forecaster: per cell, the cycles it stored.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

namespace cyclecast::daemon {

// The oldest and newest cycle number stored; 0 and 0 for a cell that only got an edge forecast
// (its forecasts are scored, nothing is forecast).
struct CycleSpan {
  std::int64_t oldest = 0;
  std::int64_t newest = 0;
};
using NewCycles = std::unordered_map<std::string, CycleSpan>;

}  // namespace cyclecast::daemon
