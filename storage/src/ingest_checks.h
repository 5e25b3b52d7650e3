// Checks and tallies of the ingest path that both backends apply the same way (database.cc,
// cycles.cc; the PostgreSQL backend in pg_backend.cc).
#pragma once

#include <span>

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

}  // namespace cyclecast::storage::detail
