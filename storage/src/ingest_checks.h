// Checks and tallies of the ingest path that both backends apply the same way (database.cc,
// cycles.cc; the PostgreSQL backend in pg_backend.cc).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>

#include "cyclecast/result.h"
#include "cyclecast/storage/database.h"

namespace cyclecast::storage::detail {

inline constexpr const char* kReasonUnknownCell = "unknown cell";
inline constexpr const char* kReasonConflict = "conflicting duplicate";

// kInvalidArgument naming the first record a cycle batch cannot store (write_cycles).
Result<void> check_cycle_batch(std::span<const CycleRecord> records);
// kInvalidArgument for a cell without an id or a positive, finite rated capacity.
Result<void> check_cell(const CellInfo& cell);
// Counts result.outcomes into its totals.
void tally(BatchResult& result);

// The parts of one ingest batch, in their order, inside the caller's transaction: cells, rejected
// records, cycles, then forecasts under a savepoint, so that refused forecasts cost only
// themselves. `store` gives write_batch_cell(CellInfo), write_rejected, write_cycles,
// write_forecasts and exec(sql, what) on the transaction's connection.
template <typename Store>
Result<void> write_batch_parts(Store& store, const IngestBatch& batch, IngestResult& result) {
  auto part_failed = [](const char* part, const Error& error) {
    return Error{error.code, std::string(part) + ": " + error.message};
  };
  for (std::size_t i = 0; i < batch.cells.size(); ++i) {
    auto done = store.write_batch_cell(batch.cells[i]);
    if (!done) return part_failed("cells", done.error());
    if (*done) {
      (*done)->index = i;
      result.refused_cells.push_back(std::move(**done));
    }
  }
  if (!batch.rejected.empty()) {
    if (auto done = store.write_rejected(batch.rejected); !done) {
      return part_failed("rejected records", done.error());
    }
  }
  if (!batch.cycles.empty()) {
    auto done = store.write_cycles(batch.cycles);
    if (!done) return part_failed("cycles", done.error());
    result.cycles = std::move(*done);
  }
  if (!batch.forecasts.empty()) {
    // SQLite and PostgreSQL both read these savepoint statements.
    if (auto saved = store.exec("SAVEPOINT forecasts", "saving before forecasts"); !saved) {
      return saved.error();
    }
    auto done = store.write_forecasts(batch.forecasts);
    const char* end = done ? "RELEASE SAVEPOINT forecasts"
                           : "ROLLBACK TO SAVEPOINT forecasts; RELEASE SAVEPOINT forecasts";
    if (auto ended = store.exec(end, "ending the forecasts' savepoint"); !ended) {
      return ended.error();
    }
    if (done) {
      result.forecasts = *done;
    } else {
      result.forecast_error = done.error();
    }
  }
  return {};
}

}  // namespace cyclecast::storage::detail
