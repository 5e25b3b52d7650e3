// A real PostgreSQL 15 server for tests (Debian's postgresql-15, which scripts/setup installs):
// initdb into a temporary directory, listening on a Unix socket in that directory only, run as
// `nobody` when the tests run as root (initdb and postgres refuse root). One server per test
// executable (PgServer::shared()); each test gets a database of its own (create_database: a
// fresh schema of the server's one test database, made the connection's search_path, which
// costs a millisecond where CREATE DATABASE costs half a second), so tests stay independent
// while the server's start is paid once. Stopped and removed at exit.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

struct pg_conn;

namespace cyclecast::testing {

// A connection of the test's own, held open: a session-level lock, a transaction left open.
class PgSession {
 public:
  explicit PgSession(const std::string& url);  // throws std::runtime_error
  ~PgSession();
  PgSession(const PgSession&) = delete;
  PgSession& operator=(const PgSession&) = delete;
  void exec(const std::string& sql);  // throws std::runtime_error

 private:
  pg_conn* conn_;
};

class PgServer {
 public:
  // The server shared by this process's tests, started on first use. Throws
  // std::runtime_error (with the server's log) when it cannot start.
  static PgServer& shared();

  // Where the binaries are looked for: $CYCLECAST_PG_BINDIR, else Debian's path.
  static std::filesystem::path bin_dir();
  // True when initdb and postgres are installed (a test may skip without them).
  static bool available();

  PgServer();
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Creates a fresh, empty schema and returns the URL of a database whose connections work in
  // it ("postgresql:///cyclecast_tests?host=SOCKDIR&user=…&options=-csearch_path%3DNAME"). Names
  // are unique within the server.
  std::string create_database();
  // Runs SQL on a database of the server (a connection of its own, behind the API's back);
  // throws on error. Returns the first value of the last statement's first row ("" if none).
  std::string exec(const std::string& url, const std::string& sql) const;
  // The URL of a database of the server.
  std::string url_of(const std::string& database) const;
  // The last 4000 bytes of the server's log (printed after a failing test, see shared()).
  std::string log_tail() const;

  // Stops the server and starts it again on the same data and socket; returns once it accepts
  // connections. Every open connection is lost.
  enum class Shutdown { kFast, kImmediate };
  void restart(Shutdown how);

 private:
  void init_data_directory();
  void start();
  void wait_until_ready();
  void stop();
  void stop_process(int signal);

  std::filesystem::path root_;  // data/, the socket and the log live under it
  pid_t pid_ = -1;
  // The process that started the server: a forked child (a death test) must not stop it.
  pid_t owner_ = -1;
  int next_database_ = 0;
};

}  // namespace cyclecast::testing
