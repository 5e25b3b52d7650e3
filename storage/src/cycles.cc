// The write path for per-cycle telemetry and rejected records, and their readers.
//
// write_cycles is the hot path of an import or of a burst of MQTT messages: it runs cached
// statements only, resolves cell ids through an in-memory cache, inserts with
// ON CONFLICT DO NOTHING and reads the stored row back only when the insert changed nothing.
#include <cmath>
#include <string>

#include "cyclecast/storage/database.h"
#include "database_impl.h"
#include "ingest_checks.h"
#include "sqlite_util.h"

namespace cyclecast::storage {

using detail::ScopedReset;

namespace {

using detail::kReasonConflict;
using detail::kReasonUnknownCell;

bool finite(const std::optional<double>& value) {
  return !value || std::isfinite(*value);
}

// Empty when the record can be stored; otherwise what is wrong with it.
std::string structural_problem(const CycleRecord& record) {
  if (record.cell_id.empty()) return "has an empty cell_id";
  if (record.cycle < 1) return "has cycle number " + std::to_string(record.cycle) + " (below 1)";
  const bool all_finite = std::isfinite(record.discharge_capacity_ah) &&
                          finite(record.charge_capacity_ah) &&
                          finite(record.internal_resistance_ohm) &&
                          finite(record.temperature_min_c) && finite(record.temperature_avg_c) &&
                          finite(record.temperature_max_c) && finite(record.charge_time_min);
  if (!all_finite) return "has a value that is not a finite number";
  return {};
}

// Binds the measured fields at `first`..`first`+6 in CycleRecord order.
void bind_measurements(sqlite3_stmt* stmt, int first, const CycleRecord& record) {
  sqlite3_bind_double(stmt, first, record.discharge_capacity_ah);
  detail::bind_optional(stmt, first + 1, record.charge_capacity_ah);
  detail::bind_optional(stmt, first + 2, record.internal_resistance_ohm);
  detail::bind_optional(stmt, first + 3, record.temperature_min_c);
  detail::bind_optional(stmt, first + 4, record.temperature_avg_c);
  detail::bind_optional(stmt, first + 5, record.temperature_max_c);
  detail::bind_optional(stmt, first + 6, record.charge_time_min);
}

// Reads the measured fields from `first`..`first`+6, the inverse of bind_measurements.
void read_measurements(sqlite3_stmt* stmt, int first, CycleRecord& record) {
  record.discharge_capacity_ah = sqlite3_column_double(stmt, first);
  record.charge_capacity_ah = detail::column_optional_double(stmt, first + 1);
  record.internal_resistance_ohm = detail::column_optional_double(stmt, first + 2);
  record.temperature_min_c = detail::column_optional_double(stmt, first + 3);
  record.temperature_avg_c = detail::column_optional_double(stmt, first + 4);
  record.temperature_max_c = detail::column_optional_double(stmt, first + 5);
  record.charge_time_min = detail::column_optional_double(stmt, first + 6);
}

// The parts of one write_cycles call that need the Impl's statements and caches.
class CycleWriter {
 public:
  CycleWriter(Database::Impl& impl, std::int64_t now) : impl_(impl), now_ms_(now) {}

  Result<CycleOutcome> write(const CycleRecord& record);

 private:
  Result<std::optional<std::int64_t>> cell_rowid(const std::string& cell_id);
  Result<std::optional<std::int64_t>> query_cell_rowid(const std::string& cell_id);
  Result<std::int64_t> source_id(const std::string& source);
  Result<std::int64_t> query_or_insert_source(const std::string& source);
  Result<bool> stored_is_same(std::int64_t cell, const CycleRecord& record);
  Result<void> reject(const CycleRecord& record, const char* reason);

  Database::Impl& impl_;
  std::int64_t now_ms_;
};

Result<std::optional<std::int64_t>> CycleWriter::query_cell_rowid(const std::string& cell_id) {
  sqlite3_stmt* stmt = impl_.statements.cell_rowid.get();
  ScopedReset reset(stmt);
  detail::bind_text_static(stmt, 1, cell_id);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<std::int64_t>{};
  if (rc != SQLITE_ROW) return impl_.error(rc, "looking up cell '" + cell_id + "'");
  return std::optional<std::int64_t>{sqlite3_column_int64(stmt, 0)};
}

Result<std::optional<std::int64_t>> CycleWriter::cell_rowid(const std::string& cell_id) {
  if (impl_.last_cell_valid && impl_.last_cell_id == cell_id) return impl_.last_cell_rowid;
  std::optional<std::int64_t> rowid;
  if (auto cached = impl_.cell_rowids.find(cell_id); cached != impl_.cell_rowids.end()) {
    rowid = cached->second;
  } else {
    Result<std::optional<std::int64_t>> queried = query_cell_rowid(cell_id);
    if (!queried) return queried;
    rowid = *queried;
    if (rowid) impl_.cell_rowids.emplace(cell_id, *rowid);
  }
  impl_.last_cell_id = cell_id;
  impl_.last_cell_rowid = rowid;
  impl_.last_cell_valid = true;
  return rowid;
}

Result<std::int64_t> CycleWriter::query_or_insert_source(const std::string& source) {
  {
    sqlite3_stmt* stmt = impl_.statements.source_id.get();
    ScopedReset reset(stmt);
    detail::bind_text_static(stmt, 1, source);
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) return static_cast<std::int64_t>(sqlite3_column_int64(stmt, 0));
    if (rc != SQLITE_DONE) return impl_.error(rc, "looking up source '" + source + "'");
  }
  sqlite3_stmt* stmt = impl_.statements.insert_source.get();
  detail::bind_text_static(stmt, 1, source);
  if (auto inserted = impl_.step_done(stmt, "recording source '" + source + "'"); !inserted) {
    return inserted.error();
  }
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(impl_.db));
}

Result<std::int64_t> CycleWriter::source_id(const std::string& source) {
  if (impl_.last_source_valid && impl_.last_source == source) return impl_.last_source_id;
  std::int64_t id = 0;
  if (auto cached = impl_.source_ids.find(source); cached != impl_.source_ids.end()) {
    id = cached->second;
  } else {
    Result<std::int64_t> found = query_or_insert_source(source);
    if (!found) return found;
    id = *found;
    impl_.source_ids.emplace(source, id);
  }
  impl_.last_source = source;
  impl_.last_source_id = id;
  impl_.last_source_valid = true;
  return id;
}

Result<bool> CycleWriter::stored_is_same(std::int64_t cell, const CycleRecord& record) {
  sqlite3_stmt* stmt = impl_.statements.select_cycle.get();
  ScopedReset reset(stmt);
  sqlite3_bind_int64(stmt, 1, cell);
  sqlite3_bind_int64(stmt, 2, record.cycle);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) return impl_.error(rc, "reading back a stored cycle");
  CycleRecord& stored = impl_.stored_scratch;
  read_measurements(stmt, 0, stored);
  // Compare as the same cell and cycle: the key already matched.
  stored.cycle = record.cycle;
  stored.cell_id.assign(record.cell_id);
  return stored.same_measurement(record);
}

Result<void> CycleWriter::reject(const CycleRecord& record, const char* reason) {
  sqlite3_stmt* stmt = impl_.statements.insert_rejected_cycle.get();
  detail::bind_text_static(stmt, 1, record.source);
  detail::bind_text_static(stmt, 2, record.cell_id);
  sqlite3_bind_int64(stmt, 3, record.cycle);
  bind_measurements(stmt, 4, record);
  detail::bind_optional(stmt, 11, record.measured_at_ms);
  sqlite3_bind_text(stmt, 12, reason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 13, now_ms_);
  return impl_.step_done(stmt, "recording a rejected cycle");
}

Result<CycleOutcome> CycleWriter::write(const CycleRecord& record) {
  Result<std::optional<std::int64_t>> cell = cell_rowid(record.cell_id);
  if (!cell) return cell.error();
  if (!*cell) {
    if (auto rejected = reject(record, kReasonUnknownCell); !rejected) return rejected.error();
    return CycleOutcome::kUnknownCell;
  }
  Result<std::int64_t> source = source_id(record.source);
  if (!source) return source.error();
  sqlite3_stmt* stmt = impl_.statements.insert_cycle.get();
  sqlite3_bind_int64(stmt, 1, **cell);
  sqlite3_bind_int64(stmt, 2, record.cycle);
  bind_measurements(stmt, 3, record);
  detail::bind_optional(stmt, 10, record.measured_at_ms);
  sqlite3_bind_int64(stmt, 11, record.received_at_ms != 0 ? record.received_at_ms : now_ms_);
  sqlite3_bind_int64(stmt, 12, *source);
  if (auto inserted = impl_.step_done(stmt, "inserting a cycle"); !inserted) {
    return inserted.error();
  }
  if (sqlite3_changes(impl_.db) == 1) return CycleOutcome::kInserted;

  Result<bool> same = stored_is_same(**cell, record);
  if (!same) return same.error();
  if (*same) return CycleOutcome::kDuplicate;
  if (auto rejected = reject(record, kReasonConflict); !rejected) return rejected.error();
  return CycleOutcome::kConflict;
}

CycleRecord read_cycle(sqlite3_stmt* stmt, const std::string& cell_id) {
  CycleRecord record;
  record.cell_id = cell_id;
  record.cycle = sqlite3_column_int64(stmt, 0);
  read_measurements(stmt, 1, record);
  record.measured_at_ms = detail::column_optional_int(stmt, 8);
  record.received_at_ms = sqlite3_column_int64(stmt, 9);
  record.source = detail::column_string(stmt, 10);
  return record;
}

// Steps a bound statement of cycle rows (the columns read_cycle reads) to its end.
Result<std::vector<CycleRecord>> read_cycles(Database::Impl& impl, sqlite3_stmt* stmt,
                                             const std::string& cell_id) {
  std::vector<CycleRecord> cycles;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    cycles.push_back(read_cycle(stmt, cell_id));
  if (rc != SQLITE_DONE) return impl.error(rc, "reading the cycles of cell '" + cell_id + "'");
  return cycles;
}

}  // namespace

namespace detail {

Result<void> check_cycle_batch(std::span<const CycleRecord> records) {
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::string problem = structural_problem(records[i]);
    if (!problem.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "cycle batch refused: record " + std::to_string(i) + " (cell '" +
                            records[i].cell_id + "', cycle " + std::to_string(records[i].cycle) +
                            ") " + problem);
    }
  }
  return {};
}

void tally(BatchResult& result) {
  for (const CycleOutcome outcome : result.outcomes) {
    switch (outcome) {
      case CycleOutcome::kInserted:
        ++result.inserted;
        break;
      case CycleOutcome::kDuplicate:
        ++result.duplicates;
        break;
      case CycleOutcome::kConflict:
        ++result.conflicts;
        break;
      case CycleOutcome::kUnknownCell:
        ++result.unknown_cells;
        break;
    }
  }
}

}  // namespace detail

Result<BatchResult> Database::write_cycles(std::span<const CycleRecord> records) {
  if (impl_->pg) return impl_->pg->write_cycles(records);
  if (auto valid = detail::check_cycle_batch(records); !valid) return valid.error();
  BatchResult result;
  result.outcomes.reserve(records.size());
  CycleWriter writer(*impl_, now_ms());
  Result<void> written = impl_->in_transaction([&]() -> Result<void> {
    for (const CycleRecord& record : records) {
      Result<CycleOutcome> outcome = writer.write(record);
      if (!outcome) return outcome.error();
      result.outcomes.push_back(*outcome);
    }
    return {};
  });
  if (!written) return written.error();
  detail::tally(result);
  return result;
}

Result<void> Database::write_rejected(std::span<const RejectedRecord> records) {
  if (impl_->pg) return impl_->pg->write_rejected(records);
  const std::int64_t now = now_ms();
  return impl_->in_transaction([&]() -> Result<void> {
    sqlite3_stmt* stmt = impl_->statements.insert_rejected.get();
    for (const RejectedRecord& record : records) {
      const std::string_view payload =
          std::string_view(record.payload).substr(0, kMaxRejectedPayloadBytes);
      detail::bind_text_static(stmt, 1, record.source);
      // A blob keeps the raw bytes exactly, whether or not they are valid UTF-8.
      sqlite3_bind_blob(stmt, 2, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
      detail::bind_text_static(stmt, 3, record.reason);
      sqlite3_bind_int64(stmt, 4, record.rejected_at_ms != 0 ? record.rejected_at_ms : now);
      if (auto written = impl_->step_done(stmt, "recording a rejected record"); !written) {
        return written;
      }
    }
    return {};
  });
}

Result<std::vector<CycleRecord>> Database::cycles_of(const std::string& cell_id) {
  if (impl_->pg) return impl_->pg->cycles_of(cell_id);
  sqlite3_stmt* stmt = impl_->statements.cycles_of.get();
  ScopedReset reset(stmt);
  detail::bind_text_static(stmt, 1, cell_id);
  return read_cycles(*impl_, stmt, cell_id);
}

Result<std::vector<CycleRecord>> Database::recent_cycles(const std::string& cell_id,
                                                         std::int64_t up_to_cycle,
                                                         std::int64_t limit) {
  if (impl_->pg) return impl_->pg->recent_cycles(cell_id, up_to_cycle, limit);
  sqlite3_stmt* stmt = impl_->statements.recent_cycles.get();
  ScopedReset reset(stmt);
  detail::bind_text_static(stmt, 1, cell_id);
  sqlite3_bind_int64(stmt, 2, up_to_cycle);
  sqlite3_bind_int64(stmt, 3, limit);
  return read_cycles(*impl_, stmt, cell_id);
}

Result<std::vector<RejectedRecord>> Database::rejected(std::int64_t limit) {
  if (impl_->pg) return impl_->pg->rejected(limit);
  sqlite3_stmt* stmt = impl_->statements.rejected.get();
  ScopedReset reset(stmt);
  sqlite3_bind_int64(stmt, 1, limit);
  std::vector<RejectedRecord> records;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    RejectedRecord record;
    record.source = detail::column_string(stmt, 0);
    record.payload = detail::column_string(stmt, 1);
    record.reason = detail::column_string(stmt, 2);
    record.rejected_at_ms = sqlite3_column_int64(stmt, 3);
    records.push_back(std::move(record));
  }
  if (rc != SQLITE_DONE) return impl_->error(rc, "reading rejected records");
  return records;
}

}  // namespace cyclecast::storage
