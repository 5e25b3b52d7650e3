// The soak's verdict on the database it leaves: every published record stored exactly once with
// its value, the file's integrity, no host forecast skipped after a cell's first one, and a
// consistent model registry. Read-only; run after cyclecastd stopped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace cyclecast::soak {

// What the rigs published: cells by id with their number of cycles (1..n) and the value each
// cycle's discharge capacity must have.
struct PublishedCell {
  int index = 0;  // over all rigs; the value of its cycles depends on it
  std::string cell_id;
  std::int64_t cycles = 0;
};
// The discharge capacity the soak publishes for cycle `cycle` of cell `index`, in Ah, as written
// to the rigs' CSV (6 decimals).
double soak_qd_ah(int index, std::int64_t cycle);

struct ForecastExpectation {
  bool check = false;       // a champion was forecasting during the soak
  std::int64_t window = 0;  // W: a cycle needs W cycles up to it to be forecast
  // Count late and stranded cycles without a forecast (below) as missing. Off by default: the
  // forecaster does not go back for them today (docs/reliability.md, "Fault-injection soak").
  bool strict = false;
};

struct SoakVerdict {
  std::int64_t published = 0;
  std::int64_t stored = 0;       // rows in the cycles table
  std::int64_t lost = 0;         // published (cell, cycle) not stored
  std::int64_t duplicated = 0;   // rows beyond one per (cell, cycle)
  std::int64_t wrong_value = 0;  // stored with another capacity than published
  std::int64_t unexpected = 0;   // stored but never published
  std::int64_t rejected_rows = 0;
  std::string integrity;  // "ok" or what the check said
  std::int64_t host_forecasts = 0;
  std::int64_t edge_forecasts = 0;
  // Cycles stored after the champion's promotion, past the cell's first host forecast and with W
  // cycles up to them, that have no host forecast.
  std::int64_t forecasts_missing = 0;
  // Late cycles (stored after a higher cycle of the cell) without a host forecast; missing too
  // when ForecastExpectation::strict_late.
  std::int64_t late_without_forecast = 0;
  // Cycles stored after the last cycle of the cell the forecaster forecast, without one: it was
  // not woken for the cell again. Missing too when ForecastExpectation::strict.
  std::int64_t stranded_without_forecast = 0;
  std::int64_t runs = 0;
  std::vector<std::string> problems;  // one sentence each; empty: the soak passed
};

SoakVerdict check_database(const std::filesystem::path& state_dir,
                           const std::vector<PublishedCell>& published,
                           const ForecastExpectation& forecasts);

}  // namespace cyclecast::soak
