// Storage tests that run on both backends: a fixture parameterised by backend, giving each test
// a fresh database (an SQLite file in a temporary directory, or a database of its own on the
// test executable's one PostgreSQL server) and raw SQL access behind the API's back.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cyclecast/storage/database.h"
#include "pg_server.h"
#include "storage_test_util.h"
#include "temp_dir.h"

namespace cyclecast::storage::testing {

enum class TestBackend { kSqlite, kPostgresql };

inline std::string backend_name(const ::testing::TestParamInfo<TestBackend>& info) {
  return info.param == TestBackend::kSqlite ? "sqlite" : "postgresql";
}

class BackendTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  bool on_postgresql() const { return GetParam() == TestBackend::kPostgresql; }

  // The test's database location, made on first use.
  const std::string& location() {
    if (location_.empty()) {
      location_ = on_postgresql() ? cyclecast::testing::PgServer::shared().create_database()
                                  : (dir_ / "test.db").string();
    }
    return location_;
  }

  Result<Database> open_database(const OpenOptions& options = {}) {
    return Database::open_url(location(), options);
  }

  // Runs SQL through a connection of its own: `sqlite_sql` or `postgresql_sql` by backend.
  void raw_sql(const std::string& sqlite_sql, const std::string& postgresql_sql) {
    if (on_postgresql()) {
      (void)cyclecast::testing::PgServer::shared().exec(location(), postgresql_sql);
    } else {
      raw_exec(location(), sqlite_sql);
    }
  }

  // The integer a single-value query (the same SQL on both) returns, through its own connection.
  std::int64_t raw_count(const std::string& sql) {
    if (!on_postgresql()) return raw_int(location(), sql);
    return std::stoll(cyclecast::testing::PgServer::shared().exec(location(), sql));
  }

  // SQL for a trigger that fails every insert into `table` WHEN `condition` (on NEW), named
  // `name`, with `message`, and the SQL that drops it again, in the backend's dialect. Both fail
  // as a constraint would (SQLite's RAISE(ABORT); check_violation on PostgreSQL).
  std::string failing_trigger(const std::string& name, const std::string& table,
                              const std::string& condition,
                              const std::string& message = "injected failure") const {
    if (!on_postgresql()) {
      return "CREATE TRIGGER " + name + " BEFORE INSERT ON " + table + " WHEN " + condition +
             " BEGIN SELECT RAISE(ABORT, '" + message + "'); END";
    }
    return "CREATE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF " +
           condition + " THEN RAISE EXCEPTION '" + message +
           "' USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$; " + "CREATE TRIGGER " +
           name + " BEFORE INSERT ON " + table + " FOR EACH ROW EXECUTE " + "FUNCTION " + name +
           "()";
  }
  std::string dropping_trigger(const std::string& name, const std::string& table) const {
    if (!on_postgresql()) return "DROP TRIGGER " + name;
    return "DROP TRIGGER " + name + " ON " + table + "; DROP FUNCTION " + name + "()";
  }
  void add_failing_trigger(const std::string& name, const std::string& table,
                           const std::string& condition,
                           const std::string& message = "injected failure") {
    const std::string sql = failing_trigger(name, table, condition, message);
    raw_sql(sql, sql);
  }
  void drop_trigger(const std::string& name, const std::string& table) {
    const std::string sql = dropping_trigger(name, table);
    raw_sql(sql, sql);
  }

  cyclecast::testing::TempDir dir_;
  std::string location_;
};

#define CYCLECAST_ON_BOTH_BACKENDS(suite)                                         \
  INSTANTIATE_TEST_SUITE_P(                                                       \
      Backends, suite,                                                            \
      ::testing::Values(::cyclecast::storage::testing::TestBackend::kSqlite,      \
                        ::cyclecast::storage::testing::TestBackend::kPostgresql), \
      ::cyclecast::storage::testing::backend_name)

}  // namespace cyclecast::storage::testing
