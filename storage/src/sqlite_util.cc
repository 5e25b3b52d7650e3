#include "sqlite_util.h"

#include <limits>

namespace cyclecast::storage::detail {

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

std::string quoted(const std::filesystem::path& path) {
  // Appends rather than operator+: GCC 12 at -O3 misreports the latter (-Wrestrict).
  std::string text;
  text.reserve(path.native().size() + 2);
  text += '\'';
  text += path.native();
  text += '\'';
  return text;
}

ErrorCode error_code_of(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
    case SQLITE_CORRUPT:
      return ErrorCode::kCorrupt;
    case SQLITE_NOTADB:
      return ErrorCode::kUnsupported;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return ErrorCode::kInvalidArgument;
    case SQLITE_CANTOPEN:
      return ErrorCode::kNotFound;
    case SQLITE_FULL:
      return ErrorCode::kFull;
    default:
      return ErrorCode::kIo;
  }
}

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string message(what);
  message += " failed";
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  if (file != nullptr && *file != '\0') {
    message += " on '";
    message += file;
    message += "'";
  }
  message += ": ";
  const std::string_view detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  message += detail;
  // The generic text of the code adds nothing when SQLite had no more specific message.
  if (detail != sqlite3_errstr(rc)) {
    message += " (";
    message += sqlite3_errstr(rc);
    message += ")";
  }
  return make_error(error_code_of(rc), std::move(message));
}

Result<Statement> prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    std::string what = "preparing \"";
    what += sql;
    what += "\"";
    return sqlite_error(db, rc, what);
  }
  return Statement(stmt);
}

Result<void> exec(sqlite3* db, const char* sql, std::string_view what) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, what);
  return {};
}

Result<std::int64_t> query_int(sqlite3* db, const char* sql, std::string_view what) {
  Result<Statement> stmt = prepare(db, sql);
  if (!stmt) return stmt.error();
  const int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_ROW) return static_cast<std::int64_t>(sqlite3_column_int64(stmt->get(), 0));
  if (rc == SQLITE_DONE) return std::int64_t{0};
  return sqlite_error(db, rc, what);
}

void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<double>& value) {
  if (value) {
    sqlite3_bind_double(stmt, index, *value);
  } else {
    sqlite3_bind_null(stmt, index);
  }
}

void bind_optional(sqlite3_stmt* stmt, int index, const std::optional<std::int64_t>& value) {
  if (value) {
    sqlite3_bind_int64(stmt, index, *value);
  } else {
    sqlite3_bind_null(stmt, index);
  }
}

void bind_text_static(sqlite3_stmt* stmt, int index, std::string_view text) {
  // Texts over 2 GiB cannot be bound; the callers cap payload sizes far below that.
  const auto size = text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())
                        ? std::numeric_limits<int>::max()
                        : static_cast<int>(text.size());
  sqlite3_bind_text(stmt, index, text.data(), size, SQLITE_STATIC);
}

std::optional<double> column_optional_double(sqlite3_stmt* stmt, int column) {
  if (sqlite3_column_type(stmt, column) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(stmt, column);
}

std::optional<std::int64_t> column_optional_int(sqlite3_stmt* stmt, int column) {
  if (sqlite3_column_type(stmt, column) == SQLITE_NULL) return std::nullopt;
  return static_cast<std::int64_t>(sqlite3_column_int64(stmt, column));
}

std::string column_string(sqlite3_stmt* stmt, int column) {
  // Blob access reads the stored bytes as they are, whether the value is TEXT or BLOB.
  const void* data = sqlite3_column_blob(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0) return {};
  return std::string(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

}  // namespace cyclecast::storage::detail
