#include "cyclecast/http/client.h"

#include <sodium.h>

#include <array>
#include <fstream>
#include <system_error>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "cyclecast/bounded_json.h"

namespace cyclecast::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;
constexpr std::size_t kMaxShownBodyBytes = 200;

using Deadline = std::chrono::steady_clock::time_point;

// Runs `io` until the operation started by `initiate` completes or `deadline` passes; on the
// deadline `cancel` is called and the operation is let finish (with operation_aborted).
template <class Initiate, class Cancel>
beast::error_code run_step(asio::io_context& io, Deadline deadline, Initiate&& initiate,
                           Cancel&& cancel) {
  bool done = false;
  beast::error_code result;
  initiate([&](beast::error_code ec, auto&&...) {
    done = true;
    result = ec;
  });
  io.restart();
  io.run_until(deadline);
  if (done) return result;
  cancel();
  io.restart();
  io.run();
  return beast::error::timeout;
}

// The connection of one request: resolve, connect, write, read, each before the deadline.
class Exchange {
 public:
  Exchange(const std::string& url, std::chrono::milliseconds timeout)
      : url_(url), deadline_(std::chrono::steady_clock::now() + timeout), stream_(io_) {}

  Result<void> connect(const std::string& host, const std::string& port) {
    tcp::resolver resolver(io_);
    tcp::resolver::results_type endpoints;
    auto ec = run_step(
        io_, deadline_,
        [&](auto handler) {
          resolver.async_resolve(
              host, port,
              [&endpoints, handler](beast::error_code e, tcp::resolver::results_type r) mutable {
                endpoints = std::move(r);
                handler(e);
              });
        },
        [&] { resolver.cancel(); });
    if (!ec) {
      ec = run_step(
          io_, deadline_,
          [&](auto handler) {
            stream_.async_connect(
                endpoints,
                [handler](beast::error_code e, const tcp::endpoint&) mutable { handler(e); });
          },
          [&] { stream_.cancel(); });
    }
    if (ec) return unreachable("cannot connect to ", ec);
    return {};
  }

  template <class Body>
  Result<void> write(bhttp::request<Body>& request) {
    const auto ec = run_step(
        io_, deadline_, [&](auto handler) { bhttp::async_write(stream_, request, handler); },
        [&] { stream_.cancel(); });
    if (ec) return unreachable("cannot send the request to ", ec);
    return {};
  }

  template <class Parser>
  Result<void> read(Parser& parser) {
    const auto ec = run_step(
        io_, deadline_, [&](auto handler) { bhttp::async_read(stream_, buffer_, parser, handler); },
        [&] { stream_.cancel(); });
    if (ec) return unreachable("no complete answer from ", ec);
    return {};
  }

 private:
  Error unreachable(const std::string& what, const beast::error_code& ec) const {
    return make_error(ErrorCode::kIo, what + url_ + ": " + ec.message() +
                                          " (is cyclecastd running, with its API enabled?)");
  }

  std::string url_;
  Deadline deadline_;
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

std::string hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    text.push_back(kDigits[bytes[i] >> 4]);
    text.push_back(kDigits[bytes[i] & 15]);
  }
  return text;
}

Result<std::string> sha256_of_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kInvalidArgument, "cannot read " + path.string());
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::array<char, 64 * 1024> chunk{};
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto got = static_cast<unsigned long long>(in.gcount());
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(chunk.data()), got);
  }
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256_final(&state, digest.data());
  return hex(digest.data(), digest.size());
}

std::string read_prefix(const fs::path& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string text(max_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(max_bytes));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

}  // namespace

std::string Response::error_message() const {
  // The body is bounded by the client's limits already (ClientOptions::max_response_bytes).
  const auto parsed = parse_bounded_json(body, body.size());
  if (parsed && parsed->is_object() && parsed->contains("error") &&
      (*parsed)["error"].is_string()) {
    return (*parsed)["error"].get<std::string>();
  }
  if (!body.empty()) return body.substr(0, kMaxShownBodyBytes);
  return "HTTP status " + std::to_string(status);
}

ApiClient::ApiClient(ClientOptions options, std::string host, std::string port, std::string prefix)
    : options_(std::move(options)),
      host_(std::move(host)),
      port_(std::move(port)),
      prefix_(std::move(prefix)) {}

Result<ApiClient> ApiClient::create(ClientOptions options) {
  const std::string& url = options.base_url;
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "API URL '" + url +
                          "' must start with http:// (https is not supported; "
                          "reach a remote API through an SSH tunnel)");
  }
  std::string rest = url.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  std::string prefix = slash == std::string::npos ? std::string() : rest.substr(slash);
  std::string authority = rest.substr(0, slash);
  while (!prefix.empty() && prefix.back() == '/')
    prefix.pop_back();
  std::string host = authority;
  std::string port = "80";
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) {
      return make_error(ErrorCode::kInvalidArgument, "API URL '" + url + "': unclosed '['");
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "API URL '" + url + "' must look like http://HOST[:PORT][/PREFIX]");
  }
  if (sodium_init() < 0) return make_error(ErrorCode::kIo, "libsodium failed to initialise");
  return ApiClient(std::move(options), std::move(host), std::move(port), std::move(prefix));
}

namespace {

bhttp::request<bhttp::string_body> make_request(bhttp::verb verb, const std::string& target,
                                                const std::string& host, const std::string& token) {
  bhttp::request<bhttp::string_body> request{verb, target, 11};
  request.set(bhttp::field::host, host);
  request.set(bhttp::field::user_agent, "cyclecast-cli");
  request.set(bhttp::field::accept, "application/json");
  if (!token.empty()) request.set(bhttp::field::authorization, "Bearer " + token);
  request.keep_alive(false);
  return request;
}

template <class Body>
Response response_of(const bhttp::response<Body>& message) {
  Response response;
  response.status = message.result_int();
  response.content_type = std::string(message[bhttp::field::content_type]);
  return response;
}

}  // namespace

Result<Response> ApiClient::get(const std::string& path) const {
  Exchange exchange(options_.base_url + path, options_.timeout);
  if (auto connected = exchange.connect(host_, port_); !connected) return connected.error();
  auto request = make_request(bhttp::verb::get, prefix_ + path, host_, options_.token);
  if (auto written = exchange.write(request); !written) return written.error();
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  if (auto read = exchange.read(parser); !read) return read.error();
  Response response = response_of(parser.get());
  response.body = std::move(parser.get().body());
  return response;
}

Result<Response> ApiClient::post(const std::string& path, const nlohmann::json& body) const {
  Exchange exchange(options_.base_url + path, options_.timeout);
  if (auto connected = exchange.connect(host_, port_); !connected) return connected.error();
  auto request = make_request(bhttp::verb::post, prefix_ + path, host_, options_.token);
  request.set(bhttp::field::content_type, "application/json");
  request.body() = body.dump();
  request.prepare_payload();
  if (auto written = exchange.write(request); !written) return written.error();
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  if (auto read = exchange.read(parser); !read) return read.error();
  Response response = response_of(parser.get());
  response.body = std::move(parser.get().body());
  return response;
}

Result<Download> ApiClient::download(const std::string& path, const fs::path& out,
                                     const std::optional<std::string>& expected_sha256_hex,
                                     Response& response) const {
  const fs::path partial = fs::path(out.string() + ".partial");
  std::error_code ignored;
  Exchange exchange(options_.base_url + path, options_.timeout);
  if (auto connected = exchange.connect(host_, port_); !connected) return connected.error();
  auto request = make_request(bhttp::verb::get, prefix_ + path, host_, options_.token);
  request.set(bhttp::field::accept, "application/octet-stream, application/json");
  if (auto written = exchange.write(request); !written) return written.error();

  bhttp::response_parser<bhttp::file_body> parser;
  parser.body_limit(options_.max_download_bytes);
  beast::error_code ec;
  parser.get().body().open(partial.c_str(), beast::file_mode::write, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot write " + partial.string() + ": " + ec.message());
  }
  auto read = exchange.read(parser);
  parser.get().body().close();
  if (!read) {
    fs::remove(partial, ignored);
    return read.error();
  }
  response = response_of(parser.get());
  if (!response.ok()) {
    response.body = read_prefix(partial, kMaxErrorBodyBytes);
    fs::remove(partial, ignored);
    return Download{};
  }
  auto digest = sha256_of_file(partial);
  if (!digest) {
    fs::remove(partial, ignored);
    return digest.error();
  }
  if (expected_sha256_hex && *digest != *expected_sha256_hex) {
    fs::remove(partial, ignored);
    return make_error(ErrorCode::kCorrupt, "the download of " + path + " has SHA-256 " + *digest +
                                               ", expected " + *expected_sha256_hex +
                                               "; nothing was written");
  }
  Download download;
  download.bytes = fs::file_size(partial, ignored);
  download.sha256_hex = std::move(*digest);
  std::error_code renamed;
  fs::rename(partial, out, renamed);
  if (renamed) {
    fs::remove(partial, ignored);
    return make_error(ErrorCode::kInvalidArgument, "cannot rename " + partial.string() + " to " +
                                                       out.string() + ": " + renamed.message());
  }
  return download;
}

}  // namespace cyclecast::http
