// The state behind a Database handle: the connection, its cached prepared statements and the
// cell-id -> rowid cache. Private to the storage module; shared by database.cc (open, cells,
// check, backup), cycles.cc (the cycle and rejected-record writers), forecasts.cc and
// registry.cc, so that every write goes through the one connection and its open options.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "cyclecast/storage/database.h"
#include "cyclecast/storage/sqlite.h"
#include "pg_backend.h"
#include "sqlite_util.h"

namespace cyclecast::storage {

// Every statement the Database runs more than once, prepared at open. SQLite re-prepares a
// cached statement by itself when the schema changes under it (e.g. a test adds a trigger).
struct CachedStatements {
  detail::Statement begin;
  detail::Statement commit;
  detail::Statement rollback;
  detail::Statement upsert_rig;
  detail::Statement ensure_rig;
  detail::Statement upsert_cell;
  detail::Statement find_cell;
  detail::Statement cell_rowid;
  detail::Statement source_id;
  detail::Statement insert_source;
  detail::Statement insert_cycle;
  detail::Statement select_cycle;
  detail::Statement insert_rejected;
  detail::Statement insert_rejected_cycle;
  detail::Statement cycles_of;
  detail::Statement recent_cycles;
  detail::Statement cells;
  detail::Statement cell_summary;
  detail::Statement rejected;
  detail::Statement counts;
};

struct Database::Impl {
  // Set when the handle was opened on a postgresql:// URL: every method forwards to it (or
  // answers detail::pg_unsupported), and the SQLite members below stay unused.
  std::unique_ptr<detail::PgBackend> pg;
  sqlite3* db = nullptr;
  std::filesystem::path path;
  int schema_version = 0;
  int busy_timeout_ms = 0;  // OpenOptions::busy_timeout_ms, restored after a checkpoint
  CachedStatements statements;

  // Cells are never deleted, so a committed cell's rowid never changes once seen: positive
  // lookups are cached for the life of the handle, and rollback() forgets them, since a cell
  // inserted by the batch that rolled back is gone. Negative answers are only valid inside one
  // write transaction (no other connection can add a cell while we hold the write lock).
  std::unordered_map<std::string, std::int64_t> cell_rowids;
  // Consecutive records of a batch are usually of the same cell: skip the hash lookup then.
  std::string last_cell_id;
  std::optional<std::int64_t> last_cell_rowid;
  bool last_cell_valid = false;

  // Source name -> sources.id. Entries added inside a transaction that rolls back may name
  // rows that no longer exist, so rollback() clears the map.
  std::unordered_map<std::string, std::int64_t> source_ids;
  std::string last_source;
  std::int64_t last_source_id = 0;
  bool last_source_valid = false;

  // Open transactions of in_transaction: above 1, a call runs inside a caller's transaction
  // (write_batch), whose commit is the caller's.
  int transaction_depth = 0;

  // Reused buffer for the stored row that a duplicate is compared against.
  CycleRecord stored_scratch;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();

  Result<void> prepare_statements();

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back and returns the error if the
  // body or the commit fails, so a failed batch leaves nothing behind. Returns what `body`
  // returns (a Result). Inside another in_transaction it only runs `body`.
  template <typename Body>
  auto in_transaction(Body&& body) -> decltype(body());

  Result<void> begin();
  Result<void> commit();
  void rollback();
  Error error(int rc, std::string_view what) const { return detail::sqlite_error(db, rc, what); }
  // Steps a statement that returns no rows; resets it afterwards.
  Result<void> step_done(sqlite3_stmt* stmt, std::string_view what);
};

template <typename Body>
auto Database::Impl::in_transaction(Body&& body) -> decltype(body()) {
  if (transaction_depth > 0) return body();  // the caller's transaction commits or rolls back
  return detail::transaction([this] { return begin(); },
                             [&] {
                               ++transaction_depth;
                               auto outcome = body();
                               --transaction_depth;
                               return outcome;
                             },
                             [this] { return commit(); }, [this] { rollback(); });
}

}  // namespace cyclecast::storage
