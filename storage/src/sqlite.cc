// Query and SqliteFile (sqlite.h): the storage module's SQLite helpers, public for the project's
// other SQLite files. Errors come from detail::sqlite_error, as everywhere in the module.
#include "cyclecast/storage/sqlite.h"

#include <sqlite3.h>

#include <string>
#include <system_error>

#include "sqlite_util.h"

namespace cyclecast::storage {

Result<Query> Query::prepare(sqlite3* db, std::string_view sql) {
  auto stmt = detail::prepare(db, sql);
  if (!stmt) return stmt.error();
  return Query(db, stmt->release());
}

Query::Query(Query&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}

Query& Query::operator=(Query&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Query::~Query() {
  sqlite3_finalize(stmt_);
}

Query& Query::text(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Query& Query::integer(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Query& Query::null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Query::step(std::string_view what) {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return detail::sqlite_error(db_, rc, what);
}

Result<void> Query::run(std::string_view what) {
  auto stepped = step(what);
  sqlite3_reset(stmt_);
  if (!stepped) return stepped.error();
  return {};
}

void Query::reset() {
  sqlite3_reset(stmt_);
}

std::int64_t Query::column_int(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string Query::column_text(int column) const {
  return detail::column_string(stmt_, column);
}

std::string_view Query::column_view(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) return {};
  return {text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
}

Result<SqliteFile> SqliteFile::open(const std::filesystem::path& path,
                                    const SqliteOptions& options) {
  std::error_code ignored;
  if (!options.create_if_missing && !std::filesystem::exists(path, ignored)) {
    return make_error(ErrorCode::kNotFound, detail::quoted(path) + " does not exist");
  }
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                    (options.create_if_missing ? SQLITE_OPEN_CREATE : 0);
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  SqliteFile file(db, path);  // closes `db` on every return below
  if (rc != SQLITE_OK) return detail::sqlite_error(db, rc, "opening " + detail::quoted(path));
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  // WAL: readers never block the writer, and a commit is one append to the log. Foreign keys are
  // per connection and off by default in SQLite.
  if (auto set = file.exec("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON",
                           "setting up the connection");
      !set) {
    return set.error();
  }
  return file;
}

SqliteFile::SqliteFile(SqliteFile&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

SqliteFile& SqliteFile::operator=(SqliteFile&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

SqliteFile::~SqliteFile() {
  sqlite3_close_v2(db_);
}

Result<void> SqliteFile::exec(std::string_view sql, std::string_view what) {
  return detail::exec(db_, std::string(sql).c_str(), what);
}

Result<std::int64_t> SqliteFile::query_int(std::string_view sql, std::string_view what) {
  return detail::query_int(db_, std::string(sql).c_str(), what);
}

std::int64_t SqliteFile::changes() const {
  return sqlite3_changes64(db_);
}

void SqliteFile::rollback() {
  // SQLite rolls some failures back by itself; only roll back what is still open.
  if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace cyclecast::storage
