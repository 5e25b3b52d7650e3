// Opening and migrating the database: connection set-up, rigs and cells, the ingest batch and
// counts. Cycle and rejected-record writes are in cycles.cc, upkeep (check, WAL, backup) in
// maintenance.cc.
#include "cyclecast/storage/database.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "database_impl.h"
#include "ingest_checks.h"
#include "schema.h"
#include "sqlite_util.h"

namespace cyclecast::storage {

using detail::quoted;
using detail::ScopedReset;

namespace {

// Every table counted by counts() and check(), in TableCounts order.
constexpr const char* kCountsSql =
    "SELECT (SELECT count(*) FROM rigs), (SELECT count(*) FROM cells), "
    "(SELECT count(*) FROM cycles), (SELECT count(*) FROM rejected), "
    "(SELECT count(*) FROM forecasts), (SELECT count(*) FROM models), "
    "(SELECT count(*) FROM training_runs)";

// Columns of a cell as CellInfo wants them; find_cell and cells() share the prefix.
#define CYCLECAST_CELL_COLUMNS                                                             \
  "c.cell_id, coalesce(r.rig_id, ''), c.chemistry, c.rated_capacity_ah, c.charge_policy, " \
  "c.metadata_json"
// A cell with its cycle count and its first and last cycle numbers.
#define CYCLECAST_CELL_SUMMARY                                           \
  "SELECT " CYCLECAST_CELL_COLUMNS                                       \
  ", (SELECT count(*) FROM cycles y WHERE y.cell = c.id), "              \
  "coalesce((SELECT min(cycle) FROM cycles y WHERE y.cell = c.id), 0), " \
  "coalesce((SELECT max(cycle) FROM cycles y WHERE y.cell = c.id), 0) "  \
  "FROM cells c LEFT JOIN rigs r ON r.id = c.rig"

CellInfo read_cell(sqlite3_stmt* stmt) {
  CellInfo cell;
  cell.cell_id = detail::column_string(stmt, 0);
  cell.rig_id = detail::column_string(stmt, 1);
  cell.chemistry = detail::column_string(stmt, 2);
  cell.rated_capacity_ah = sqlite3_column_double(stmt, 3);
  cell.charge_policy = detail::column_string(stmt, 4);
  cell.metadata_json = detail::column_string(stmt, 5);
  return cell;
}

Result<void> set_connection_pragmas(sqlite3* db, const OpenOptions& options) {
  if (!options.read_only) {
    // WAL: readers never block the writer, and a commit is one append to the log.
    if (auto wal = detail::exec(db, "PRAGMA journal_mode = WAL", "switching to WAL"); !wal) {
      return wal;
    }
  }
  const char* sync =
      options.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
  if (auto set = detail::exec(db, sync, "setting synchronous"); !set) return set;
  // Foreign keys are per connection and off by default in SQLite.
  if (auto fk = detail::exec(db, "PRAGMA foreign_keys = ON", "enabling foreign keys"); !fk) {
    return fk;
  }
  // Whichever connection restarts the WAL cuts the file back to this size (docs/storage.md).
  const std::string wal_limit = "PRAGMA journal_size_limit = " + std::to_string(kWalSizeLimitBytes);
  if (auto set = detail::exec(db, wal_limit.c_str(), "limiting the WAL's size"); !set) return set;
  // 16 MiB of page cache: a large import keeps the right edge of the cycles B-tree in memory.
  return detail::exec(db, "PRAGMA cache_size = -16384", "setting the page cache size");
}

// PRAGMA max_page_count in bytes, rounded up to whole pages; 0 lifts the limit. SQLite never
// sets it below the file's current page count.
Result<void> limit_size(sqlite3* db, std::int64_t bytes) {
  if (bytes < 0) return make_error(ErrorCode::kInvalidArgument, "a negative size limit");
  Result<std::int64_t> page_size =
      detail::query_int(db, "PRAGMA page_size", "reading the page size");
  if (!page_size) return page_size.error();
  // SQLite's own maximum page count (2^32 - 2) stands for "no limit".
  constexpr std::int64_t kNoLimit = 4294967294;
  const std::int64_t pages =
      bytes == 0 ? kNoLimit : std::min(kNoLimit, (bytes + *page_size - 1) / *page_size);
  const std::string pragma = "PRAGMA max_page_count = " + std::to_string(pages);
  Result<std::int64_t> set = detail::query_int(db, pragma.c_str(), "setting the size limit");
  if (!set) return set.error();
  return {};
}

}  // namespace

std::int64_t now_ms() {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool CycleRecord::same_measurement(const CycleRecord& other) const {
  return cell_id == other.cell_id && cycle == other.cycle &&
         discharge_capacity_ah == other.discharge_capacity_ah &&
         charge_capacity_ah == other.charge_capacity_ah &&
         internal_resistance_ohm == other.internal_resistance_ohm &&
         temperature_min_c == other.temperature_min_c &&
         temperature_avg_c == other.temperature_avg_c &&
         temperature_max_c == other.temperature_max_c && charge_time_min == other.charge_time_min;
}

Database::Impl::~Impl() {
  // Statements must be finalized before the connection can close.
  statements = CachedStatements{};
  sqlite3_close(db);
}

Result<void> Database::Impl::prepare_statements() {
  struct Entry {
    detail::Statement* target;
    const char* sql;
  };
  CachedStatements& s = statements;
  const Entry entries[] = {
      {&s.begin, "BEGIN IMMEDIATE"},
      {&s.commit, "COMMIT"},
      {&s.rollback, "ROLLBACK"},
      {&s.upsert_rig,
       "INSERT INTO rigs(rig_id, description) VALUES (?1, ?2) "
       "ON CONFLICT(rig_id) DO UPDATE SET description = excluded.description"},
      {&s.ensure_rig, "INSERT INTO rigs(rig_id) VALUES (?1) ON CONFLICT(rig_id) DO NOTHING"},
      {&s.upsert_cell,
       "INSERT INTO cells(cell_id, rig, chemistry, rated_capacity_ah, charge_policy, "
       "metadata_json) VALUES (?1, (SELECT id FROM rigs WHERE rig_id = ?2), ?3, ?4, ?5, ?6) "
       "ON CONFLICT(cell_id) DO UPDATE SET rig = excluded.rig, chemistry = excluded.chemistry, "
       "rated_capacity_ah = excluded.rated_capacity_ah, "
       "charge_policy = excluded.charge_policy, metadata_json = excluded.metadata_json"},
      {&s.find_cell, "SELECT " CYCLECAST_CELL_COLUMNS
                     " FROM cells c LEFT JOIN rigs r ON r.id = c.rig WHERE c.cell_id = ?1"},
      {&s.cell_rowid, "SELECT id FROM cells WHERE cell_id = ?1"},
      {&s.source_id, "SELECT id FROM sources WHERE name = ?1"},
      {&s.insert_source, "INSERT INTO sources(name) VALUES (?1)"},
      {&s.insert_cycle,
       "INSERT INTO cycles(cell, cycle, discharge_capacity_ah, charge_capacity_ah, "
       "internal_resistance_ohm, temperature_min_c, temperature_avg_c, temperature_max_c, "
       "charge_time_min, measured_at_ms, received_at_ms, source) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
       "ON CONFLICT(cell, cycle) DO NOTHING"},
      {&s.select_cycle,
       "SELECT discharge_capacity_ah, charge_capacity_ah, internal_resistance_ohm, "
       "temperature_min_c, temperature_avg_c, temperature_max_c, charge_time_min "
       "FROM cycles WHERE cell = ?1 AND cycle = ?2"},
      {&s.insert_rejected,
       "INSERT INTO rejected(source, payload, reason, rejected_at_ms) VALUES (?1, ?2, ?3, ?4)"},
      // The record is kept as JSON so that an operator can read and re-submit it.
      {&s.insert_rejected_cycle,
       "INSERT INTO rejected(source, payload, reason, rejected_at_ms) VALUES (?1, "
       "json_object('cell_id', ?2, 'cycle', ?3, 'discharge_capacity_ah', ?4, "
       "'charge_capacity_ah', ?5, 'internal_resistance_ohm', ?6, 'temperature_min_c', ?7, "
       "'temperature_avg_c', ?8, 'temperature_max_c', ?9, 'charge_time_min', ?10, "
       "'measured_at_ms', ?11), ?12, ?13)"},
      {&s.cycles_of,
       "SELECT y.cycle, y.discharge_capacity_ah, y.charge_capacity_ah, "
       "y.internal_resistance_ohm, y.temperature_min_c, y.temperature_avg_c, "
       "y.temperature_max_c, y.charge_time_min, y.measured_at_ms, y.received_at_ms, s.name "
       "FROM cycles y JOIN sources s ON s.id = y.source WHERE y.cell = (SELECT id FROM cells WHERE "
       "cell_id = ?1) "
       "ORDER BY y.cycle"},
      // The newest ?3 cycles up to ?2, read backwards on the primary key (cell, cycle).
      {&s.recent_cycles,
       "SELECT * FROM (SELECT y.cycle, y.discharge_capacity_ah, y.charge_capacity_ah, "
       "y.internal_resistance_ohm, y.temperature_min_c, y.temperature_avg_c, "
       "y.temperature_max_c, y.charge_time_min, y.measured_at_ms, y.received_at_ms, s.name "
       "FROM cycles y JOIN sources s ON s.id = y.source WHERE y.cell = (SELECT id FROM cells WHERE "
       "cell_id = ?1) AND y.cycle <= ?2 ORDER BY y.cycle DESC LIMIT ?3) ORDER BY cycle"},
      {&s.cells, CYCLECAST_CELL_SUMMARY " ORDER BY c.cell_id"},
      {&s.cell_summary, CYCLECAST_CELL_SUMMARY " WHERE c.cell_id = ?1"},
      {&s.rejected,
       "SELECT source, payload, reason, rejected_at_ms FROM rejected ORDER BY id DESC LIMIT ?1"},
      {&s.counts, kCountsSql},
  };
  for (const Entry& entry : entries) {
    Result<detail::Statement> stmt = detail::prepare(db, entry.sql);
    if (!stmt) return stmt.error();
    *entry.target = std::move(*stmt);
  }
  return {};
}

Result<void> Database::Impl::step_done(sqlite3_stmt* stmt, std::string_view what) {
  ScopedReset reset(stmt);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return error(rc, what);
  return {};
}

Result<void> Database::Impl::begin() {
  last_cell_valid = false;
  last_source_valid = false;
  return step_done(statements.begin.get(), "starting a transaction");
}

Result<void> Database::Impl::commit() {
  return step_done(statements.commit.get(), "committing a transaction");
}

void Database::Impl::rollback() {
  // SQLite rolls some failures back by itself; only roll back what is still open.
  if (sqlite3_get_autocommit(db) == 0) {
    ScopedReset reset(statements.rollback.get());
    sqlite3_step(statements.rollback.get());
  }
  last_cell_valid = false;
  last_source_valid = false;
  source_ids.clear();
  cell_rowids.clear();  // a cell inserted by the rolled-back batch (write_batch) is gone again
}

Result<Database> Database::open(const std::filesystem::path& path, const OpenOptions& options) {
  std::error_code ignored;
  if (!options.create_if_missing && !std::filesystem::exists(path, ignored)) {
    return make_error(ErrorCode::kNotFound, "database " + quoted(path) + " does not exist");
  }
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE | (options.create_if_missing ? SQLITE_OPEN_CREATE : 0);
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  const int rc = sqlite3_open_v2(path.c_str(), &impl->db, flags,
                                 options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    Error error = detail::sqlite_error(impl->db, rc, "opening database " + quoted(path));
    return error;
  }
  sqlite3_busy_timeout(impl->db, options.busy_timeout_ms);
  impl->busy_timeout_ms = options.busy_timeout_ms;
  if (auto ours = detail::check_is_cyclecast_database(impl->db, path); !ours) return ours.error();
  if (auto set = set_connection_pragmas(impl->db, options); !set) return set.error();
  if (auto limited = limit_size(impl->db, options.max_size_bytes); !limited) {
    return limited.error();
  }
  Result<int> version = detail::migrate(impl->db, path, options.read_only);
  if (!version) return version.error();
  impl->schema_version = *version;
  if (auto prepared = impl->prepare_statements(); !prepared) return prepared.error();
  return Database(std::move(impl));
}

bool is_postgresql_url(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

Result<Database> Database::open_url(const std::string& location, const OpenOptions& options) {
  if (!is_postgresql_url(location)) return open(std::filesystem::path(location), options);
  if (options.max_size_bytes != 0) return detail::pg_unsupported("a size limit");
  if (!options.vfs.empty()) return detail::pg_unsupported("an SQLite VFS");
  auto backend = detail::PgBackend::open(location, options);
  if (!backend) return backend.error();
  auto impl = std::make_unique<Impl>();
  impl->path = (*backend)->display_url();
  impl->schema_version = (*backend)->schema_version();
  impl->pg = std::move(*backend);
  return Database(std::move(impl));
}

Database::Backend Database::backend() const {
  return impl_->pg ? Backend::kPostgresql : Backend::kSqlite;
}

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;
Database::~Database() = default;

int Database::schema_version() const {
  return impl_->schema_version;
}
const std::filesystem::path& Database::path() const {
  return impl_->path;
}

Result<void> Database::upsert_rig(const RigInfo& rig) {
  if (impl_->pg) return impl_->pg->upsert_rig(rig);
  if (rig.rig_id.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a rig needs a non-empty rig_id");
  }
  sqlite3_stmt* stmt = impl_->statements.upsert_rig.get();
  detail::bind_text_static(stmt, 1, rig.rig_id);
  detail::bind_text_static(stmt, 2, rig.description);
  return impl_->step_done(stmt, "upserting rig '" + rig.rig_id + "'");
}

Result<void> Database::upsert_cell(const CellInfo& cell) {
  return upsert_cells(std::span<const CellInfo>(&cell, 1));
}

Result<void> detail::check_cell(const CellInfo& cell) {
  if (cell.cell_id.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "a cell needs a non-empty cell_id");
  }
  if (!std::isfinite(cell.rated_capacity_ah) || cell.rated_capacity_ah <= 0.0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cell '" + cell.cell_id + "' needs a positive rated capacity, got " +
                          std::to_string(cell.rated_capacity_ah) + " Ah");
  }
  return {};
}

Result<void> Database::upsert_cells(std::span<const CellInfo> cells) {
  for (const CellInfo& cell : cells) {
    if (auto valid = detail::check_cell(cell); !valid) return valid;
  }
  if (impl_->pg) return impl_->pg->upsert_cells(cells);
  // One transaction for all: with synchronous FULL each commit costs an fsync.
  return impl_->in_transaction([&]() -> Result<void> {
    for (const CellInfo& cell : cells) {
      const std::string what = "upserting cell '" + cell.cell_id + "'";
      if (!cell.rig_id.empty()) {
        sqlite3_stmt* rig = impl_->statements.ensure_rig.get();
        detail::bind_text_static(rig, 1, cell.rig_id);
        if (auto made = impl_->step_done(rig, what); !made) return made;
      }
      sqlite3_stmt* stmt = impl_->statements.upsert_cell.get();
      detail::bind_text_static(stmt, 1, cell.cell_id);
      detail::bind_text_static(stmt, 2, cell.rig_id);
      detail::bind_text_static(stmt, 3, cell.chemistry);
      sqlite3_bind_double(stmt, 4, cell.rated_capacity_ah);
      detail::bind_text_static(stmt, 5, cell.charge_policy);
      detail::bind_text_static(stmt, 6, cell.metadata_json);
      if (auto done = impl_->step_done(stmt, what); !done) return done;
    }
    return {};
  });
}

namespace {

// One cell of an ingest batch, inside write_batch's transaction: kept out when another rig owns
// it, or under a savepoint when SQLite refuses its content (the refusal is returned); any other
// failure (full, I/O) is the batch's.
Result<std::optional<RefusedCell>> write_batch_cell(Database& db, sqlite3* connection,
                                                    const CellInfo& cell) {
  auto stored = db.find_cell(cell.cell_id);
  if (!stored) return stored.error();
  if (*stored && !(*stored)->rig_id.empty() && (*stored)->rig_id != cell.rig_id) {
    return std::optional<RefusedCell>{RefusedCell{
        0, cell.cell_id, "cell '" + cell.cell_id + "' belongs to rig '" + (*stored)->rig_id + "'",
        true}};
  }
  if (auto saved = detail::exec(connection, "SAVEPOINT cell", "saving before a cell"); !saved) {
    return saved.error();
  }
  auto done = db.upsert_cell(cell);
  const bool refused = !done && done.error().code == ErrorCode::kInvalidArgument;
  const char* end = refused ? "ROLLBACK TO cell; RELEASE cell" : "RELEASE cell";
  if (auto ended = detail::exec(connection, end, "ending a cell's savepoint"); !ended) {
    return ended.error();
  }
  if (refused) {
    return std::optional<RefusedCell>{RefusedCell{0, cell.cell_id, done.error().message, false}};
  }
  if (!done) return done.error();
  return std::optional<RefusedCell>{};
}

}  // namespace

Result<IngestResult> Database::write_batch(const IngestBatch& batch) {
  if (impl_->pg) return impl_->pg->write_batch(batch);
  // The store write_batch_parts expects: this database on its own connection.
  struct Store {
    Database& db;
    sqlite3* connection;
    auto write_batch_cell(const CellInfo& cell) {
      return storage::write_batch_cell(db, connection, cell);
    }
    auto write_rejected(std::span<const RejectedRecord> r) { return db.write_rejected(r); }
    auto write_cycles(std::span<const CycleRecord> c) { return db.write_cycles(c); }
    auto write_forecasts(std::span<const ForecastRecord> f) { return db.write_forecasts(f); }
    Result<void> exec(const char* sql, const char* what) {
      return detail::exec(connection, sql, what);
    }
  } store{*this, impl_->db};
  IngestResult result;
  auto written =
      impl_->in_transaction([&] { return detail::write_batch_parts(store, batch, result); });
  if (!written) return written.error();
  return result;
}

Result<std::optional<CellInfo>> Database::find_cell(const std::string& cell_id) {
  if (impl_->pg) return impl_->pg->find_cell(cell_id);
  sqlite3_stmt* stmt = impl_->statements.find_cell.get();
  ScopedReset reset(stmt);
  detail::bind_text_static(stmt, 1, cell_id);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<CellInfo>{};
  if (rc != SQLITE_ROW) return impl_->error(rc, "looking up cell '" + cell_id + "'");
  return std::optional<CellInfo>{read_cell(stmt)};
}

namespace {

CellSummary read_cell_summary(sqlite3_stmt* stmt) {
  CellSummary summary;
  summary.info = read_cell(stmt);
  summary.cycles = sqlite3_column_int64(stmt, 6);
  summary.first_cycle = sqlite3_column_int64(stmt, 7);
  summary.last_cycle = sqlite3_column_int64(stmt, 8);
  return summary;
}

}  // namespace

Result<std::vector<CellSummary>> Database::cells() {
  if (impl_->pg) return impl_->pg->cells();
  sqlite3_stmt* stmt = impl_->statements.cells.get();
  ScopedReset reset(stmt);
  std::vector<CellSummary> cells;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
    cells.push_back(read_cell_summary(stmt));
  if (rc != SQLITE_DONE) return impl_->error(rc, "listing cells");
  return cells;
}

Result<std::optional<CellSummary>> Database::cell_summary(const std::string& cell_id) {
  if (impl_->pg) return impl_->pg->cell_summary(cell_id);
  sqlite3_stmt* stmt = impl_->statements.cell_summary.get();
  ScopedReset reset(stmt);
  detail::bind_text_static(stmt, 1, cell_id);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<CellSummary>{};
  if (rc != SQLITE_ROW) return impl_->error(rc, "summarizing cell '" + cell_id + "'");
  return std::optional<CellSummary>{read_cell_summary(stmt)};
}

Result<TableCounts> Database::counts() {
  if (impl_->pg) return impl_->pg->counts();
  sqlite3_stmt* stmt = impl_->statements.counts.get();
  ScopedReset reset(stmt);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) return impl_->error(rc, "counting rows");
  TableCounts counts;
  std::int64_t* fields[] = {&counts.rigs,         &counts.cells,     &counts.cycles,
                            &counts.rejected,     &counts.forecasts, &counts.models,
                            &counts.training_runs};
  int column = 0;
  for (std::int64_t* field : fields)
    *field = sqlite3_column_int64(stmt, column++);
  return counts;
}

Result<void> Database::set_max_size(std::int64_t bytes) {
  if (impl_->pg) return detail::pg_unsupported("a size limit");
  return limit_size(impl_->db, bytes);
}

Result<CellInfo> Database::move_cell(const std::string& cell_id, const std::string& rig_id) {
  if (rig_id.empty()) return make_error(ErrorCode::kInvalidArgument, "a rig id is needed");
  if (impl_->pg) return impl_->pg->move_cell(cell_id, rig_id);
  return impl_->in_transaction([&]() -> Result<CellInfo> {
    auto found = find_cell(cell_id);
    if (!found) return found.error();
    if (!*found) return make_error(ErrorCode::kNotFound, "no cell '" + cell_id + "'");
    CellInfo cell = std::move(**found);
    cell.rig_id = rig_id;
    if (auto done = upsert_cell(cell); !done) return done.error();
    return cell;
  });
}

}  // namespace cyclecast::storage
