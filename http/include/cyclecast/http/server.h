// The operators' HTTP API server (docs/api.md): HTTP/1.1 on Boost.Beast, JSON, loopback by
// default. Requests are parsed and validated on the caller's io_context; backend calls run on a
// small pool of threads owned by the server, so a slow call never stalls other connections.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "cyclecast/http/backend.h"
#include "cyclecast/result.h"

namespace cyclecast::http {

// One line of access log, handed to ServerOptions::access_log after each response.
struct AccessLogEntry {
  std::string remote;   // "127.0.0.1:53412"
  std::string method;   // as sent ("GET", "POST", ...); empty when the request did not parse
  std::string target;   // as sent, not decoded; truncated to 256 bytes
  unsigned status = 0;  // HTTP status sent
  std::uint64_t bytes_sent = 0;           // status line, headers and body
  std::chrono::milliseconds duration{0};  // from the end of the request header to the response
};

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal to bind
  std::uint16_t port = 8080;          // 0 picks a free port (see HttpServer::port())
  // File holding the bearer token for the mutating endpoints (one line; surrounding whitespace
  // ignored). Empty: those endpoints answer 403. Must not be readable or writable by others.
  std::filesystem::path token_file;
  std::size_t max_body_bytes = 64 * 1024;    // larger request bodies: 413
  std::size_t max_header_bytes = 16 * 1024;  // request line + headers; larger: 431
  std::size_t max_target_bytes = 2048;       // request target (URL); longer: 414
  // Time allowed from a connection's start (or the end of its previous response) until its
  // request header is complete; a request without the valid token must also be complete by then.
  // Slower connections are closed, so that idle or slow clients do not hold slots.
  std::chrono::milliseconds header_timeout{5000};
  // Time allowed to read the body of a request whose header carried the valid token.
  std::chrono::milliseconds read_timeout{30000};
  // Time allowed to send one response (a bundle download included).
  std::chrono::milliseconds write_timeout{120000};
  // Connection slots, in all (at most half the process's RLIMIT_NOFILE soft limit, so that the
  // rest of the daemon keeps file descriptors) and per client address. A new connection beyond
  // either takes the slot of the connection that has waited longest for a request (from the same
  // address when the address is at its limit), which is closed; only when all those slots are
  // busy with requests does it get 503 and is closed. docs/api.md, "Limits".
  std::size_t max_connections = 512;
  std::size_t max_connections_per_address = 64;
  std::size_t backend_threads = 4;  // concurrent backend calls; more requests queue
  // Called on a thread running the io_context after every response; must not throw. The library
  // never logs: this is how the daemon sees requests.
  std::function<void(const AccessLogEntry&)> access_log;
};

// True for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z. False for anything else, including a string
// that is not an IP literal (so the daemon warns rather than trusts).
bool is_loopback(const std::string& address);

class HttpServer {
 public:
  // Nothing happens until start(). `io` and `backend` must outlive the server; the server must
  // be stopped or destroyed before the backend is (no backend call runs after stop() returns).
  HttpServer(boost::asio::io_context& io, ApiBackend& backend, ServerOptions options);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Reads the token file (when set), binds and listens, and starts accepting on `io` (which the
  // caller runs, on one thread or several). Errors: kInvalidArgument (bad address, token file
  // readable by others or empty), kNotFound (token file missing), kIo (cannot bind),
  // kConflict (already started).
  Result<void> start();
  // The bound port (useful with port 0); 0 before start().
  std::uint16_t port() const;
  // Re-reads the token file (SIGHUP). On error the previous token stays in force.
  Result<void> reload_token();
  // Stops accepting, waits for running backend calls and drops queued ones (their requests get
  // no answer); open connections close as their next operation fails. Safe to call twice.
  void stop();

  struct State;  // shared with the connections; defined in server.cc

 private:
  std::shared_ptr<State> state_;
};

}  // namespace cyclecast::http
