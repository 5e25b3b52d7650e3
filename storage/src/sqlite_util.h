// Thin RAII and error helpers over the SQLite C API, private to the storage module. They keep
// the repositories free of raw finalize/reset bookkeeping and turn SQLite result codes into
// cyclecast Errors with a message that names the operation and the database file.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cyclecast/result.h"

namespace cyclecast::storage::detail {

// Owns one prepared statement; finalizes it on destruction. Move-only.
class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  sqlite3_stmt* get() const { return stmt_; }
  // Hands the statement over; this object no longer finalizes it.
  sqlite3_stmt* release() {
    sqlite3_stmt* stmt = stmt_;
    stmt_ = nullptr;
    return stmt;
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a cached statement when the scope ends, so that an early return never leaves it
// holding a read transaction open (which would block WAL checkpoints) or stale bindings.
class ScopedReset {
 public:
  explicit ScopedReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ScopedReset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// The path in single quotes, as error messages name files.
std::string quoted(const std::filesystem::path& path);

// Maps an SQLite result code to the coarse cyclecast ErrorCode.
ErrorCode error_code_of(int sqlite_rc);

// "<what> failed on '<file>': <sqlite message> (<code name>)". Reads the connection's current
// error message, so call it before any other statement runs on `db`.
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

// Prepares `sql` for repeated use (the statement caches of Database::Impl).
Result<Statement> prepare(sqlite3* db, std::string_view sql);

// Runs one or more SQL statements that return no rows the caller needs.
Result<void> exec(sqlite3* db, const char* sql, std::string_view what);

// Runs a single-row, single-column query and returns its integer (0 when NULL or no row).
Result<std::int64_t> query_int(sqlite3* db, const char* sql, std::string_view what);

// Binding and reading of optional values: SQL NULL stands for "not measured".
void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<double>& value);
void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<std::int64_t>& value);
// Binds text that stays alive until the statement is reset (no copy by SQLite).
void bind_text_static(sqlite3_stmt* stmt, int index, std::string_view text);
std::optional<double> column_optional_double(sqlite3_stmt* stmt, int column);
std::optional<std::int64_t> column_optional_int(sqlite3_stmt* stmt, int column);
std::string column_string(sqlite3_stmt* stmt, int column);

}  // namespace cyclecast::storage::detail
