// The API under a flood of slow connections (docs/api.md, "Limits"): the connection table's
// policy on its own, then the real server with hundreds of raw sockets that send nothing or half
// a header, all from 127.0.0.1 like the operator, who must still be answered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "connection_table.h"
#include "http_fixture.h"

namespace cyclecast::http::testing {
namespace {

// ---- ConnectionTable ---------------------------------------------------------------------

// Admits a connection whose shedding is recorded in `shed`.
std::optional<ConnectionTable::Id> admit(ConnectionTable& table, const std::string& address,
                                         std::vector<std::string>& shed, const std::string& name) {
  auto admission = table.admit(address, [&shed, name] { shed.push_back(name); });
  if (admission.shed) admission.shed();
  return admission.id;
}

TEST(ConnectionTable, WhenFullANewConnectionTakesTheSlotOfTheLongestWaiting) {
  ConnectionTable table(3, 10);
  std::vector<std::string> shed;
  ASSERT_TRUE(admit(table, "10.0.0.1", shed, "a"));
  ASSERT_TRUE(admit(table, "10.0.0.2", shed, "b"));
  ASSERT_TRUE(admit(table, "10.0.0.3", shed, "c"));
  EXPECT_TRUE(shed.empty());
  ASSERT_TRUE(admit(table, "10.0.0.4", shed, "d"));
  ASSERT_TRUE(admit(table, "10.0.0.5", shed, "e"));
  EXPECT_EQ(shed, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(table.size(), 3u);
}

TEST(ConnectionTable, AnAddressAtItsLimitGivesUpOnlyItsOwnSlots) {
  ConnectionTable table(10, 2);
  std::vector<std::string> shed;
  ASSERT_TRUE(admit(table, "10.0.0.9", shed, "other"));  // waiting longest of all
  ASSERT_TRUE(admit(table, "10.0.0.1", shed, "a1"));
  ASSERT_TRUE(admit(table, "10.0.0.1", shed, "a2"));
  ASSERT_TRUE(admit(table, "10.0.0.1", shed, "a3"));
  EXPECT_EQ(shed, (std::vector<std::string>{"a1"}));
  EXPECT_EQ(table.size(), 3u);
}

TEST(ConnectionTable, BusyConnectionsKeepTheirSlotsAndWhenAllAreBusyANewOneIsRefused) {
  ConnectionTable table(2, 2);
  std::vector<std::string> shed;
  const auto a = admit(table, "10.0.0.1", shed, "a");
  const auto b = admit(table, "10.0.0.2", shed, "b");
  ASSERT_TRUE(a && b);
  table.set_waiting(*a, false);
  ASSERT_TRUE(admit(table, "10.0.0.3", shed, "c"));  // takes b's slot, not busy a's
  EXPECT_EQ(shed, (std::vector<std::string>{"b"}));
  ConnectionTable busy(1, 1);
  const auto only = admit(busy, "10.0.0.1", shed, "only");
  ASSERT_TRUE(only);
  busy.set_waiting(*only, false);
  EXPECT_FALSE(admit(busy, "10.0.0.1", shed, "refused"));
  EXPECT_FALSE(admit(busy, "10.0.0.2", shed, "refused"));
  EXPECT_EQ(shed, (std::vector<std::string>{"b"}));
  busy.remove(*only);
  EXPECT_TRUE(admit(busy, "10.0.0.2", shed, "after"));
}

TEST(ConnectionTable, WaitingAgainCountsFromThen) {
  ConnectionTable table(2, 2);
  std::vector<std::string> shed;
  const auto a = admit(table, "10.0.0.1", shed, "a");
  const auto b = admit(table, "10.0.0.1", shed, "b");
  ASSERT_TRUE(a && b);
  table.set_waiting(*a, false);  // a answers a request, then waits for the next (keep-alive)
  table.set_waiting(*a, true);
  ASSERT_TRUE(admit(table, "10.0.0.1", shed, "c"));
  EXPECT_EQ(shed, (std::vector<std::string>{"b"}));
}

TEST(ConnectionTable, AShedConnectionsEndFreesNothingTwice) {
  ConnectionTable table(1, 1);
  std::vector<std::string> shed;
  const auto a = admit(table, "10.0.0.1", shed, "a");
  const auto b = admit(table, "10.0.0.1", shed, "b");
  ASSERT_TRUE(a && b);
  table.remove(*a);  // a closes after it was shed: b keeps its slot
  table.set_waiting(*a, false);
  EXPECT_EQ(table.size(), 1u);
  table.set_waiting(*b, false);
  EXPECT_FALSE(admit(table, "10.0.0.1", shed, "c"));
}

// ---- The server under a flood ------------------------------------------------------------

// A plain socket connected to 127.0.0.1:port (no io_context: there are hundreds of them).
int connect_raw(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct SlowSockets {
  std::vector<int> fds;
  ~SlowSockets() {
    for (int fd : fds)
      ::close(fd);
  }
  // Every other one sends half a request header and then nothing; the others send nothing.
  void open(std::uint16_t port, std::size_t count) {
    const std::string half = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (std::size_t i = 0; i < count; ++i) {
      const int fd = connect_raw(port);
      ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
      fds.push_back(fd);
      if (i % 2 == 1) {
        ASSERT_EQ(::send(fd, half.data(), half.size(), MSG_NOSIGNAL), ssize_t(half.size()));
      }
    }
  }
  // Waits until at least `wanted` of them were closed by the server without an answer, and
  // returns how many were; answered ones count in `answered`. The 60 s limit is a safety net
  // against a hung test, not a timing assertion.
  std::size_t wait_closed(std::size_t wanted, std::size_t& answered) {
    std::vector<bool> closed(fds.size(), false);
    std::size_t count = 0;
    answered = 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (count < wanted && std::chrono::steady_clock::now() < give_up) {
      std::vector<pollfd> open;
      std::vector<std::size_t> index;
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (closed[i]) continue;
        open.push_back({fds[i], POLLIN, 0});
        index.push_back(i);
      }
      if (::poll(open.data(), open.size(), 1000) <= 0) continue;
      for (std::size_t k = 0; k < open.size(); ++k) {
        if (open[k].revents == 0) continue;
        char byte = 0;
        const ssize_t got = ::recv(open[k].fd, &byte, 1, MSG_DONTWAIT);
        if (got > 0) ++answered;
        if (got > 0 || got == 0 || errno == ECONNRESET) {
          closed[index[k]] = true;
          ++count;
        }
      }
    }
    return count;
  }
};

// Raises the soft limit on open files as far as the hard limit allows; returns the soft limit.
std::size_t raise_file_limit(std::size_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, wanted);
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<std::size_t>(limit.rlim_cur);
}

class Flood : public HttpTest {};

TEST_F(Flood, SlowHeadersAreClosedAfterTheHeaderTimeout) {
  ServerOptions options;
  options.header_timeout = std::chrono::milliseconds(200);
  start(options);
  SlowSockets slow;
  slow.open(port(), 20);
  std::size_t answered = 0;
  EXPECT_EQ(slow.wait_closed(20, answered), 20u);
  EXPECT_EQ(answered, 0u);
  RawConnection operator_connection(port());
  EXPECT_EQ(operator_connection.exchange(request_text("GET", "/healthz")).status, 200u);
}

TEST_F(Flood, AnOperatorIsAnsweredWhileManySlowConnectionsAreOpen) {
  // Both ends of every connection live in this process: the sockets, and the server's at most
  // max_connections (512) plus some slack for the rest.
  const std::size_t files = raise_file_limit(4096);
  const std::size_t count = std::min<std::size_t>(1000, files > 700 ? files - 700 : 0);
  ASSERT_GE(count, 200u) << "RLIMIT_NOFILE " << files << " leaves too few sockets";
  ServerOptions options;
  options.header_timeout = std::chrono::minutes(10);  // none times out: shedding makes the room
  start(options, "t");
  SlowSockets slow;
  slow.open(port(), count);
  RawConnection reader(port());
  EXPECT_EQ(reader.exchange(request_text("GET", "/healthz")).status, 200u);
  RawConnection writer(port());
  EXPECT_EQ(writer
                .exchange(request_text("POST", "/api/v1/rollback",
                                       "Authorization: Bearer t\r\nContent-Type: "
                                       "application/json\r\n",
                                       R"({"why":"flood"})"))
                .status,
            200u);
  // All from 127.0.0.1: at most max_connections_per_address (64) slots stay theirs.
  std::size_t answered = 0;
  EXPECT_GE(slow.wait_closed(count - 64, answered), count - 64);
  EXPECT_EQ(answered, 0u);
}

TEST_F(Flood, AKeptAliveConnectionGivesUpItsSlot) {
  // Shared with the server's access log, which may still log after the test body returns (the
  // fixture stops the server later): it must outlive the body's locals.
  struct Log {
    std::mutex mutex;
    std::condition_variable logged;
    int responses = 0;
  };
  const auto log = std::make_shared<Log>();
  ServerOptions options;
  options.max_connections = 1;
  options.access_log = [log](const AccessLogEntry&) {
    std::lock_guard lock(log->mutex);
    ++log->responses;
    log->logged.notify_all();
  };
  start(options);
  RawConnection first(port());
  ASSERT_EQ(first.exchange(request_text("GET", "/healthz")).status, 200u);  // kept open
  {
    std::unique_lock lock(log->mutex);  // the server logs once the connection is waiting again
    log->logged.wait(lock, [&] { return log->responses == 1; });
  }
  RawConnection second(port());
  EXPECT_EQ(second.exchange(request_text("GET", "/healthz")).status, 200u);
  EXPECT_EQ(first.exchange(request_text("GET", "/healthz")).status, 0u);  // it was closed
}

TEST_F(Flood, ConnectionsOverTheLimitGet503WhenEverySlotIsBusy) {
  ServerOptions options;
  options.max_connections = 1;
  start(options);
  backend_.hold_cells();
  RawConnection busy(port());
  busy.send(request_text("GET", "/api/v1/cells"));
  backend_.wait_until_blocked();
  RawConnection refused(port());
  EXPECT_EQ(refused.exchange(request_text("GET", "/healthz")).status, 503u);
  backend_.release_cells();
  EXPECT_EQ(busy.receive().status, 200u);
}

TEST_F(Flood, OnlyARequestWithTheTokenMayTakeLongerThanTheHeaderTimeoutForItsBody) {
  ServerOptions options;
  options.header_timeout = std::chrono::milliseconds(200);
  start(options, "t");
  const std::string body = R"({"why":"slow"})";
  const auto header = [&](const std::string& authorization) {
    return "POST /api/v1/rollback HTTP/1.1\r\nHost: x\r\n" + authorization +
           "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n";
  };
  RawConnection with_token(port());
  with_token.send(header("Authorization: Bearer t\r\n"));
  SlowSockets without_token;
  without_token.fds.push_back(connect_raw(port()));
  const std::string unauthenticated = header("Authorization: Bearer wrong\r\n");
  ASSERT_EQ(
      ::send(without_token.fds[0], unauthenticated.data(), unauthenticated.size(), MSG_NOSIGNAL),
      ssize_t(unauthenticated.size()));
  std::size_t answered = 0;
  EXPECT_EQ(without_token.wait_closed(1, answered), 1u);  // the header deadline passed
  EXPECT_EQ(answered, 0u);
  with_token.send(body);
  EXPECT_EQ(with_token.receive().status, 200u);
  EXPECT_EQ(backend_.calls(), (std::vector<std::string>{"rollback:api:slow"}));
}

}  // namespace
}  // namespace cyclecast::http::testing
