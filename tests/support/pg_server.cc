#include "pg_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

namespace cyclecast::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The server's superuser; trust authentication on its private socket only.
constexpr const char* kUser = "cyclecast";

// The account the server runs as when the tests run as root: initdb and postgres refuse root.
struct RunAs {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

RunAs unprivileged_account() {
  RunAs as;
  if (geteuid() != 0) return as;
  const passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) throw std::runtime_error("PgServer: running as root and no user 'nobody'");
  as.drop = true;
  as.uid = nobody->pw_uid;
  as.gid = nobody->pw_gid;
  return as;
}

// Starts `argv` with stdout and stderr appended to `log`, as `as`. Returns the child's pid.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log,
            const RunAs& as) {
  std::vector<char*> args;
  for (const std::string& arg : argv)
    args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    if (as.drop && (setgroups(0, nullptr) != 0 || setgid(as.gid) != 0 || setuid(as.uid) != 0)) {
      _exit(126);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

}  // namespace

std::filesystem::path PgServer::bin_dir() {
  if (const char* dir = std::getenv("CYCLECAST_PG_BINDIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return "/usr/lib/postgresql/15/bin";
}

bool PgServer::available() {
  return access((bin_dir() / "initdb").c_str(), X_OK) == 0 &&
         access((bin_dir() / "postgres").c_str(), X_OK) == 0;
}

namespace {

// Prints the server's log tail after a failing test, so that a flake on a CI machine leaves the
// server's side of the story in the test's output (the log itself is removed at exit).
class LogOnFailure : public ::testing::EmptyTestEventListener {
 public:
  explicit LogOnFailure(const PgServer& server) : server_(server) {}
  void OnTestEnd(const ::testing::TestInfo& test) override {
    if (!test.result()->Failed()) return;
    std::fprintf(stderr,
                 "--- PostgreSQL server log, last 4000 bytes, after %s.%s failed ---\n%s\n---\n",
                 test.test_suite_name(), test.name(), server_.log_tail().c_str());
  }

 private:
  const PgServer& server_;
};

}  // namespace

PgServer& PgServer::shared() {
  static PgServer server;
  static const bool listening = [] {
    // The listener list owns it; it outlives every test, as the server does.
    ::testing::UnitTest::GetInstance()->listeners().Append(new LogOnFailure(server));
    return true;
  }();
  (void)listening;
  return server;
}

PgServer::PgServer() : owner_(getpid()) {
  std::string pattern = (std::filesystem::temp_directory_path() / "cyclecast-pg-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("PgServer: mkdtemp failed");
  root_ = pattern;
  try {
    init_data_directory();
    start();
    wait_until_ready();
  } catch (...) {
    stop();
    throw;
  }
}

PgServer::~PgServer() {
  stop();
}

void PgServer::init_data_directory() {
  const RunAs as = unprivileged_account();
  if (as.drop && chown(root_.c_str(), as.uid, as.gid) != 0) {
    throw std::system_error(errno, std::generic_category(), "PgServer: chown " + root_.string());
  }
  const std::string initdb = (bin_dir() / "initdb").string();
  const pid_t pid = spawn({initdb, "-D", (root_ / "data").string(), "-U", kUser, "--auth=trust",
                           "--no-sync", "--encoding=UTF8", "--locale=C"},
                          root_ / "initdb.log", as);
  const int status = wait_exit(pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("PgServer: initdb failed:\n" + [&] {
      std::ifstream in(root_ / "initdb.log");
      std::ostringstream text;
      text << in.rdbuf();
      return text.str();
    }());
  }
}

void PgServer::start() {
  // No TCP at all (listen_addresses empty): only the socket in root_. Durability is not what
  // these tests check, so fsync is off.
  const std::string postgres = (bin_dir() / "postgres").string();
  pid_ = spawn({postgres, "-D", (root_ / "data").string(), "-k", root_.string(), "-c",
                "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c",
                "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=50"},
               root_ / "server.log", unprivileged_account());
}

void PgServer::wait_until_ready() {
  // Generous: a loaded CI machine under sanitizers is slow to start anything.
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  const std::string conninfo = url_of("postgres");
  while (PQping(conninfo.c_str()) != PQPING_OK) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("PgServer: postgres exited while starting:\n" + log_tail());
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error("PgServer: not ready after 120 s:\n" + log_tail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the poll interval
  }
}

void PgServer::stop_process(int signal) {
  if (pid_ <= 0) return;
  kill(pid_, signal);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      kill(pid_, SIGKILL);
      wait_exit(pid_);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the poll interval
  }
  pid_ = -1;
}

void PgServer::stop() {
  if (getpid() != owner_) return;
  // Fast shutdown: ends the sessions, then the server. SIGKILL if it does not within 60 s.
  stop_process(SIGINT);
  std::error_code ignored;
  if (!root_.empty()) std::filesystem::remove_all(root_, ignored);
}

void PgServer::restart(Shutdown how) {
  // Fast: the sessions are ended and a checkpoint written; immediate: the server quits at once
  // and recovers from its WAL at the next start, as after a crash.
  stop_process(how == Shutdown::kFast ? SIGINT : SIGQUIT);
  start();
  wait_until_ready();
}

PgSession::PgSession(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(conn_);
    PQfinish(conn_);
    throw std::runtime_error("PgSession: connecting to " + url + ": " + message);
  }
}

PgSession::~PgSession() {
  PQfinish(conn_);
}

void PgSession::exec(const std::string& sql) {
  PGresult* result = PQexec(conn_, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  PQclear(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("PgSession: " + sql + ": " + PQerrorMessage(conn_));
  }
}

std::string PgServer::log_tail() const {
  std::ifstream in(root_ / "server.log");
  std::ostringstream text;
  text << in.rdbuf();
  std::string log = text.str();
  return log.size() > 4000 ? log.substr(log.size() - 4000) : log;
}

std::string PgServer::url_of(const std::string& database) const {
  return "postgresql:///" + database + "?host=" + root_.string() + "&user=" + kUser;
}

std::string PgServer::create_database() {
  try {
    if (next_database_ == 0) (void)exec(url_of("postgres"), "CREATE DATABASE cyclecast_tests");
    const std::string name = "test_" + std::to_string(++next_database_);
    (void)exec(url_of("cyclecast_tests"), "CREATE SCHEMA " + name);
    return url_of("cyclecast_tests") + "&options=-csearch_path%3D" + name;
  } catch (const std::runtime_error& error) {
    // The failing step is in the message; the server's view of it is in its log.
    throw std::runtime_error(std::string(error.what()) + "\nserver log:\n" + log_tail());
  }
}

std::string PgServer::exec(const std::string& url, const std::string& sql) const {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("PgServer: connecting to " + url + ": " + message);
  }
  PGresult* result = PQexec(conn, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  const std::string message = PQerrorMessage(conn);
  std::string value;
  if (status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0) {
    value = PQgetvalue(result, 0, 0);
  }
  PQclear(result);
  PQfinish(conn);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("PgServer: " + sql + ": " + message);
  }
  return value;
}

}  // namespace cyclecast::testing
