// Maintaining the database while it serves: the integrity check, WAL checkpoints and their
// bound (docs/storage.md, "The WAL and its bound"), and the online backup.
#include "cyclecast/storage/database.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include "database_impl.h"
#include "schema.h"
#include "sqlite_util.h"

namespace cyclecast::storage {

using detail::quoted;

namespace {

// Makes a rename durable: the new directory entry survives power loss only once the directory
// itself is synced.
void sync_directory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Runs a PRAGMA that lists problems one per row; appends them to `problems`. A damaged page
// may stop the PRAGMA half-way: that is a finding too, recorded as one more problem.
Result<void> collect_problems(sqlite3* db, const char* pragma,
                              const std::function<std::string(sqlite3_stmt*)>& describe,
                              std::vector<std::string>& problems) {
  Result<detail::Statement> stmt = detail::prepare(db, pragma);
  if (!stmt) return stmt.error();
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW)
    problems.push_back(describe(stmt->get()));
  if (rc == SQLITE_DONE) return {};
  Error error = detail::sqlite_error(db, rc, pragma);
  if (error.code != ErrorCode::kCorrupt) return error;
  problems.push_back(std::move(error.message));
  return {};
}

}  // namespace

Result<CheckReport> Database::check() {
  if (impl_->pg) return detail::pg_unsupported("check");
  CheckReport report;
  auto first_column = [](sqlite3_stmt* stmt) { return detail::column_string(stmt, 0); };
  if (auto ran = collect_problems(impl_->db, "PRAGMA integrity_check", first_column,
                                  report.integrity_messages);
      !ran) {
    return ran.error();
  }
  report.integrity_ok =
      report.integrity_messages.size() == 1 && report.integrity_messages.front() == "ok";
  if (report.integrity_ok) {
    // integrity_check does not look at foreign keys; a dangling reference is a problem too.
    auto describe = [](sqlite3_stmt* stmt) {
      return "foreign key violation: a row of " + detail::column_string(stmt, 0) +
             " references a missing row of " + detail::column_string(stmt, 2);
    };
    if (auto ran = collect_problems(impl_->db, "PRAGMA foreign_key_check", describe,
                                    report.integrity_messages);
        !ran) {
      return ran.error();
    }
    report.integrity_ok = report.integrity_messages.size() == 1;
  }
  Result<int> version = detail::read_schema_version(impl_->db);
  report.schema_version = version ? *version : impl_->schema_version;
  Result<TableCounts> counts = this->counts();
  if (counts) {
    report.counts = *counts;
    report.counts_valid = true;
  } else if (counts.error().code == ErrorCode::kCorrupt) {
    report.integrity_ok = false;
    report.integrity_messages.push_back(counts.error().message);
  } else {
    return counts.error();
  }
  return report;
}

Result<std::vector<std::string>> Database::quick_check() {
  if (impl_->pg) return detail::pg_unsupported("quick_check");
  std::vector<std::string> problems;
  auto first_column = [](sqlite3_stmt* stmt) { return detail::column_string(stmt, 0); };
  if (auto ran = collect_problems(impl_->db, "PRAGMA quick_check", first_column, problems); !ran) {
    return ran.error();
  }
  if (problems.size() == 1 && problems.front() == "ok") problems.clear();
  return problems;
}

Result<CheckpointStats> Database::checkpoint(CheckpointMode mode) {
  if (impl_->pg) return detail::pg_unsupported("a WAL checkpoint");
  CheckpointStats stats;
  int log = -1, backfilled = -1;
  int rc =
      sqlite3_wal_checkpoint_v2(impl_->db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &backfilled);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) return impl_->error(rc, "checkpointing the WAL");
  // -1: the checkpoint could not run (another one was running): nothing is known to block it.
  stats.wal_frames = std::max(log, 0);
  stats.backfilled = backfilled < 0 ? stats.wal_frames : backfilled;
  if (mode != CheckpointMode::kTruncate || rc != SQLITE_OK || stats.blocked() || log <= 0) {
    return stats;
  }
  // Everything is in the database already, so TRUNCATE only has to empty the file; without a
  // busy handler it gives up at once instead of stalling the writer behind a reader.
  sqlite3_busy_timeout(impl_->db, 0);
  rc = sqlite3_wal_checkpoint_v2(impl_->db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &backfilled);
  sqlite3_busy_timeout(impl_->db, impl_->busy_timeout_ms);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) return impl_->error(rc, "truncating the WAL");
  if (rc == SQLITE_OK) stats = CheckpointStats{0, 0, true};
  return stats;
}

std::int64_t Database::wal_bytes() const {
  if (impl_->pg) return 0;  // PostgreSQL's WAL is the server's
  std::error_code ec;
  const auto size = std::filesystem::file_size(impl_->path.string() + "-wal", ec);
  return ec ? 0 : static_cast<std::int64_t>(size);
}

Result<void> Database::backup_to(const std::filesystem::path& destination) {
  if (impl_->pg) return detail::pg_unsupported("backup_to");
  std::error_code ec;
  if (std::filesystem::exists(destination, ec)) {
    return make_error(ErrorCode::kConflict, "backup destination " + quoted(destination) +
                                                " already exists; "
                                                "refusing to overwrite it");
  }
  // Copy into a side file and rename it into place, so that a crash or failure mid-backup
  // never leaves a truncated file under the destination name.
  std::filesystem::path partial = destination;
  partial += ".partial";
  std::filesystem::remove(partial, ec);
  sqlite3* target = nullptr;
  int rc =
      sqlite3_open_v2(partial.c_str(), &target,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Result<void> outcome;
  if (rc != SQLITE_OK) {
    outcome = detail::sqlite_error(target, rc, "creating backup " + quoted(destination));
  } else {
    sqlite3_backup* backup = sqlite3_backup_init(target, "main", impl_->db, "main");
    if (backup == nullptr) {
      outcome = detail::sqlite_error(target, sqlite3_errcode(target), "starting the backup");
    } else {
      // One step copies every page under a single read transaction: a consistent snapshot,
      // while WAL lets other connections keep writing.
      rc = sqlite3_backup_step(backup, -1);
      sqlite3_backup_finish(backup);
      if (rc != SQLITE_DONE) {
        outcome = detail::sqlite_error(target, rc, "backup to " + quoted(destination));
      }
    }
  }
  rc = sqlite3_close(target);
  if (outcome && rc != SQLITE_OK) {
    outcome = make_error(ErrorCode::kIo, "closing backup " + quoted(partial) + " failed");
  }
  if (outcome) {
    std::filesystem::rename(partial, destination, ec);
    if (ec) {
      outcome = make_error(ErrorCode::kIo, "renaming " + quoted(partial) + " to " +
                                               quoted(destination) + " failed: " + ec.message());
    } else {
      sync_directory(destination.has_parent_path() ? destination.parent_path() : ".");
    }
  }
  if (!outcome) std::filesystem::remove(partial, ec);
  return outcome;
}

}  // namespace cyclecast::storage
