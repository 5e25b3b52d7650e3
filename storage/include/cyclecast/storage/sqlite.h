// The one way into SQLite for the project's SQLite files other than the cyclecast database
// itself (the rig's outbox): a connection that opens, reports errors and runs transactions as
// the storage module's own repositories do, and the prepared-statement helper they use
// (docs/storage.md, "Connection settings"). Only the storage module includes <sqlite3.h>.
//
// Thread safety: a connection, and the queries made from it, are used by one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "cyclecast/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cyclecast::storage {

// A prepared statement and its bindings, finalized on destruction. Text is copied by SQLite, so
// bound values need not outlive the call. Errors name the operation and the database file.
class Query {
 public:
  // Prepares `sql` on a connection of the storage module (a SqliteFile's, a Database's).
  static Result<Query> prepare(sqlite3* db, std::string_view sql);

  Query(Query&& other) noexcept;
  Query& operator=(Query&& other) noexcept;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  // Bindings are numbered from 1, as in the SQL (?1, ?2, ...).
  Query& text(int index, std::string_view value);
  Query& integer(int index, std::int64_t value);
  Query& null(int index);

  // true: a row is there to read; false: no more rows. Any other result is an error naming
  // `what`.
  Result<bool> step(std::string_view what);
  // Steps a statement that returns no rows the caller needs.
  Result<void> run(std::string_view what);
  // Ready to run again, keeping the bindings until they are replaced.
  void reset();

  std::int64_t column_int(int column) const;
  std::string column_text(int column) const;  // "" for NULL
  // The column's bytes without a copy, valid until the next step() or reset().
  std::string_view column_view(int column) const;

  sqlite3_stmt* get() const { return stmt_; }

 private:
  Query(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

namespace detail {

// The storage module's one transaction wrapper, for SqliteFile::transaction and the Database's
// own (database_impl.h), which begin and commit differently: runs `body` (returning a Result)
// between begin() and commit(), and calls rollback() when the body or the commit fails. Returns
// what `body` returns, or the error of begin() or commit().
template <typename Begin, typename Body, typename Commit, typename Rollback>
auto transaction(Begin&& begin, Body&& body, Commit&& commit, Rollback&& rollback)
    -> decltype(body()) {
  if (auto begun = begin(); !begun) return begun.error();
  auto outcome = std::forward<Body>(body)();
  if (!outcome) {
    rollback();
    return outcome;
  }
  if (auto committed = commit(); !committed) {
    rollback();
    return committed.error();
  }
  return outcome;
}

}  // namespace detail

struct SqliteOptions {
  bool create_if_missing = true;
  int busy_timeout_ms = 5000;
};

// A connection to an SQLite file of the project's own, in WAL mode with foreign keys on.
class SqliteFile {
 public:
  // kIo when the file cannot be opened or set up; kNotFound when it does not exist and
  // create_if_missing is false.
  static Result<SqliteFile> open(const std::filesystem::path& path,
                                 const SqliteOptions& options = {});

  SqliteFile(SqliteFile&& other) noexcept;
  SqliteFile& operator=(SqliteFile&& other) noexcept;
  SqliteFile(const SqliteFile&) = delete;
  SqliteFile& operator=(const SqliteFile&) = delete;
  ~SqliteFile();

  // Runs one or more SQL statements that return no rows the caller needs.
  Result<void> exec(std::string_view sql, std::string_view what);
  Result<Query> prepare(std::string_view sql) { return Query::prepare(db_, sql); }
  // A single-row, single-column integer query (0 when NULL or no row).
  Result<std::int64_t> query_int(std::string_view sql, std::string_view what);
  // Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t changes() const;

  // Runs `body` (returning a Result) inside BEGIN IMMEDIATE ... COMMIT; rolls back and returns
  // the error when the body or the commit fails, so a failed change leaves nothing behind.
  template <typename Body>
  auto transaction(Body&& body) -> decltype(body()) {
    return detail::transaction([this] { return exec("BEGIN IMMEDIATE", "starting a transaction"); },
                               std::forward<Body>(body),
                               [this] { return exec("COMMIT", "committing a transaction"); },
                               [this] { rollback(); });
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  SqliteFile(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  void rollback();

  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
};

}  // namespace cyclecast::storage
