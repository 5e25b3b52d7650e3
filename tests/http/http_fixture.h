// Shared by the HTTP API tests: an in-memory ApiBackend that records every call, the real
// HttpServer on 127.0.0.1:0 running on its own io_context thread, and a raw HTTP/1.1 connection
// for requests a well-behaved client would not send.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

#include "cyclecast/http/backend.h"
#include "cyclecast/http/server.h"
#include "temp_dir.h"

namespace cyclecast::http::testing {

using nlohmann::json;

// Two cells, three models (m-bad's registry sha256 does not match its bundle), two runs.
class TestBackend : public ApiBackend {
 public:
  explicit TestBackend(const std::filesystem::path& dir);

  json health() override;
  std::string metrics() override;
  Result<json> cells() override;
  Result<json> cell(const std::string& cell_id) override;
  Result<json> models() override;
  Result<json> model(const std::string& version) override;
  Result<std::filesystem::path> bundle_file(const std::string& version) override;
  Result<json> runs() override;
  Result<json> run(std::int64_t id) override;
  Result<std::filesystem::path> run_report(std::int64_t id) override;
  Result<json> nodes() override;
  Result<json> retrain(const Caller& caller) override;
  Result<json> promote(const std::string& version, const Caller& caller) override;
  Result<json> rollback(const Caller& caller) override;
  Result<json> move_cell(const std::string& cell_id, const std::string& rig_id,
                         const Caller& caller) override;

  // Every call so far, as "name" or "name:argument[:who:why]".
  std::vector<std::string> calls() const;

  // While held, cells() blocks; wait_until_blocked() returns once a cells() call is waiting.
  void hold_cells();
  void wait_until_blocked();
  void release_cells();

  json cells_json;
  json models_json;
  json runs_json;
  json nodes_json = json::array(
      {{{"node", "nano-1"}, {"state", "active"}, {"model_version", "m-1"}, {"forecasts", 3}}});
  std::string bundle_bytes;
  std::string report_html;
  std::filesystem::path bundle_path;
  std::filesystem::path report_path;
  std::string health_status = "ok";
  bool run_in_progress = false;
  // Run 3, which retrain() starts: running (train, then gate) at the first two looks, then
  // succeeded with model m-2, or failed when this is set.
  bool started_run_fails = false;
  int cell_forecasts = 1;  // forecasts of a cell, newest (at cycle 150) first

 private:
  void record(std::string call);
  json started_run();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> calls_;
  bool holding_ = false;
  bool blocked_ = false;
  int started_run_looks_ = 0;
};

// The real server with a TestBackend, on 127.0.0.1 and a free port.
class HttpTest : public ::testing::Test {
 protected:
  void TearDown() override;

  // Starts the server (token file, when `token` is set, made 0600 with that token).
  // `loop_threads` threads run the io_context, as a daemon may.
  void start(ServerOptions options = {}, const std::optional<std::string>& token = std::nullopt,
             int loop_threads = 1);
  std::string base_url() const;
  std::uint16_t port() const { return server_->port(); }

  cyclecast::testing::TempDir dir_;
  TestBackend backend_{dir_.path()};
  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;

 private:
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
};

struct RawResponse {
  unsigned status = 0;
  std::string body;
  std::string header(const std::string& name) const;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(const std::string& bytes);

// One TCP connection to 127.0.0.1:port; sends bytes as given and reads HTTP responses.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  void send(const std::string& bytes);
  // Reads one response; status 0 when the connection ended first.
  RawResponse receive();
  RawResponse exchange(const std::string& bytes) {
    send(bytes);
    return receive();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string buffer_;
};

// "GET <target> HTTP/1.1" with Host and the given extra header lines (each ending in \r\n).
std::string request_text(const std::string& method, const std::string& target,
                         const std::string& extra_headers = "", const std::string& body = "");

}  // namespace cyclecast::http::testing
