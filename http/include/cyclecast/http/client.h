// A small synchronous HTTP/1.1 client for the operators' API (used by the `cyclecast` CLI):
// one connection per request, every step under a timeout, plain http only (the API listens on
// loopback; reach a remote one through an SSH tunnel).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cyclecast/result.h"

namespace cyclecast::http {

struct ClientOptions {
  std::string base_url = "http://127.0.0.1:8080";  // http://HOST[:PORT][/PREFIX]
  std::string token;                               // sent as "Authorization: Bearer" when set
  std::chrono::milliseconds timeout{30000};        // per request, connect included
  std::size_t max_response_bytes = 64u << 20;      // JSON responses
  std::uint64_t max_download_bytes = 512u << 20;   // downloads
};

struct Response {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  bool ok() const { return status >= 200 && status < 300; }
  // The API's {"error": ...} message, else the body itself (truncated), else the status.
  std::string error_message() const;
};

struct Download {
  std::uint64_t bytes = 0;
  std::string sha256_hex;  // of what was written
};

// Errors of every call:
//   kIo              the server could not be reached, or the connection failed or timed out
//                    (message names the URL);
//   kInvalidArgument a bad base URL, or the output file of download() cannot be written;
//   kCorrupt         download() got bytes whose SHA-256 is not the expected one, or fewer than
//                    announced.
// An HTTP error status is not an error of the call: it is in Response::status.
class ApiClient {
 public:
  static Result<ApiClient> create(ClientOptions options);

  Result<Response> get(const std::string& path) const;
  // POSTs `body` as JSON with the token.
  Result<Response> post(const std::string& path, const nlohmann::json& body) const;
  // GETs `path` into `out`: written to `out` + ".partial", checked against `expected_sha256_hex`
  // when given (lowercase hex), then renamed to `out`. On a non-2xx status nothing is left
  // behind and the status and message come back in `response` (Download untouched).
  Result<Download> download(const std::string& path, const std::filesystem::path& out,
                            const std::optional<std::string>& expected_sha256_hex,
                            Response& response) const;

  const std::string& base_url() const { return options_.base_url; }

 private:
  ApiClient(ClientOptions options, std::string host, std::string port, std::string prefix);

  ClientOptions options_;
  std::string host_;
  std::string port_;
  std::string prefix_;  // path prefix from the base URL, without a trailing '/'
};

}  // namespace cyclecast::http
