// The versioned schema of a cyclecast database and its forward-only migrations.
//
// A cyclecast database is recognised by PRAGMA application_id == kApplicationId. The table
// `schema_version` holds one row per applied migration; the schema version of a file is the
// highest version in it. Each migration runs in its own IMMEDIATE transaction that also records
// its row, so a crash mid-migration leaves the file at the previous version, never half-way.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>

#include "cyclecast/result.h"

namespace cyclecast::storage::detail {

// 'cycl' in ASCII: marks the file as cyclecast's in the SQLite header (offset 68).
inline constexpr std::int32_t kApplicationId = 0x6379636C;

// Refuses files that SQLite cannot read (kUnsupported: not an SQLite database) and SQLite
// databases that belong to another application (kUnsupported). An empty file, or one with no
// tables and no application id, is accepted as a new database.
Result<void> check_is_cyclecast_database(sqlite3* db, const std::filesystem::path& path);

// The schema version stored in the file; 0 for a database with no cyclecast tables yet.
Result<int> read_schema_version(sqlite3* db);

// Applies every migration above the file's version, each in its own transaction, and returns
// the resulting version. Refuses (kUnsupported) a file whose version is above kSchemaVersion.
// With `read_only`, refuses a file that would need a migration instead of migrating it.
Result<int> migrate(sqlite3* db, const std::filesystem::path& path, bool read_only);

}  // namespace cyclecast::storage::detail
