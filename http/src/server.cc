#include "cyclecast/http/server.h"

#include <sodium.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <string_view>
#include <tuple>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "connection_table.h"
#include "dispatch.h"
#include "handlers.h"
#include "http_date.h"
#include "router.h"
#include "token.h"

namespace cyclecast::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::State {
  State(asio::io_context& io_context, ApiBackend& api, ServerOptions server_options)
      : io(io_context),
        backend(api),
        options(std::move(server_options)),
        acceptor(asio::make_strand(io_context)) {}

  asio::io_context& io;
  ApiBackend& backend;
  const ServerOptions options;
  // On a strand of its own: accepting and stop()'s close never run at once, even when the
  // io_context runs on several threads.
  tcp::acceptor acceptor;
  std::atomic<std::uint16_t> port{0};
  // Made by start() before the first accept, then used (thread-safe) by every connection.
  std::unique_ptr<ConnectionTable> table;

  std::mutex mutex;  // guards the two below
  std::optional<TokenDigest> token;
  std::unique_ptr<asio::thread_pool> pool;  // null before start() and after stop()

  std::optional<TokenDigest> current_token() {
    std::lock_guard lock(mutex);
    return token;
  }
};

namespace {

using State = HttpServer::State;
constexpr std::size_t kMaxLoggedTarget = 256;
// After an error answered without reading the request to its end, the rest is drained for at
// most this long before closing: closing with unread data would reset the connection and the
// client could lose the answer.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

// "address:port", and the address alone (what the per-address limit counts).
std::pair<std::string, std::string> remote_of(const tcp::socket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return {"?", "?"};
  const std::string address = endpoint.address().to_string();
  return {address + ":" + std::to_string(endpoint.port()), address};
}

// At most half the file descriptors the process may open: the daemon's database, broker
// connection and bundle downloads need the rest.
std::size_t connection_limit(std::size_t configured) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return configured;
  }
  return std::min<std::size_t>(configured, std::max<rlim_t>(1, limit.rlim_cur / 2));
}

// Errors of the HTTP parser (malformed request line, bad header, bad chunk): answered with 400.
bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

bool expects_continue(const bhttp::request_parser<bhttp::string_body>& parser) {
  return beast::iequals(parser.get()[bhttp::field::expect], "100-continue");
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<State> state)
      : stream_(std::move(socket)), state_(std::move(state)) {
    std::tie(remote_, address_) = remote_of(stream_.socket());
  }
  ~Session() {
    if (slot_) state_->table->remove(*slot_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& address() const { return address_; }
  void start(ConnectionTable::Id slot) {
    slot_ = slot;
    read_header();
  }
  // A newer connection took this one's slot (from any thread): close it on its own strand.
  void shed() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }
  void refuse_busy() {
    keep_alive_ = false;
    send(error_reply(503, "too many connections; try again later"), true);
  }

 private:
  const ServerOptions& options() const { return state_->options; }

  // Waiting connections may be shed (connection_table.h); busy ones keep their slot.
  void set_waiting(bool waiting) {
    if (slot_) state_->table->set_waiting(*slot_, waiting);
  }

  // The header carries the valid token: only such a request may take read_timeout for its body.
  bool authenticated() const {
    const std::optional<TokenDigest> token = state_->current_token();
    const auto header = parser_->get()[bhttp::field::authorization];
    const std::string_view presented = bearer_token(std::string_view(header.data(), header.size()));
    return token && !presented.empty() && token_matches(*token, presented);
  }

  void read_header() {
    set_waiting(true);
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    method_.clear();
    target_.clear();
    stream_.expires_after(options().header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t /*bytes*/) {
    started_ = std::chrono::steady_clock::now();
    if (ec == bhttp::error::header_limit)
      return send(error_reply(431, "request header too large"), true);
    // Beast refuses a Content-Length over the body limit while parsing the header.
    if (ec == bhttp::error::body_limit) return send(body_too_large(), true);
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout) return close();
    if (ec && is_parse_error(ec)) {
      return send(error_reply(400, "malformed request: " + ec.message()), true);
    }
    if (ec) return close();
    const auto& request = parser_->get();
    method_ = std::string(request.method_string());
    target_ = std::string(request.target().substr(0, kMaxLoggedTarget));
    keep_alive_ = request.keep_alive();
    if (request.target().size() > options().max_target_bytes) {
      return send(error_reply(414, "request target longer than " +
                                       std::to_string(options().max_target_bytes) + " bytes"),
                  true);
    }
    const auto length = parser_->content_length();
    if (length && *length > options().max_body_bytes) return send(body_too_large(), true);
    if (parser_->is_done()) return on_request();
    if (authenticated()) {
      set_waiting(false);
      stream_.expires_after(options().read_timeout);
    }  // else the body must arrive before the header deadline, and the connection may be shed
    if (expects_continue(*parser_)) return send_continue();
    read_body();
  }

  Reply body_too_large() const {
    return error_reply(
        413, "request body larger than " + std::to_string(options().max_body_bytes) + " bytes");
  }

  void send_continue() {
    auto interim =
        std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
    bhttp::async_write(stream_, *interim,
                       [self = shared_from_this(), interim](beast::error_code ec, std::size_t) {
                         if (ec) return self->close();
                         self->read_body();
                       });
  }

  void read_body() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == bhttp::error::body_limit) return send(body_too_large(), true);
    if (ec == beast::error::timeout) return close();
    if (ec && is_parse_error(ec)) {
      return send(error_reply(400, "malformed request body: " + ec.message()), true);
    }
    if (ec) return close();
    on_request();
  }

  void on_request() {
    set_waiting(false);
    Dispatch dispatched = dispatch(parser_->get(), state_->current_token());
    if (dispatched.refusal) return send(std::move(*dispatched.refusal), false);
    if (dispatched.page) return send(std::move(*dispatched.page), false);
    call_backend(std::move(dispatched.route), std::move(dispatched.caller));
  }

  // Runs the backend call on the pool and the reply back on this connection's executor.
  void call_backend(Route route, Caller caller) {
    std::lock_guard lock(state_->mutex);
    if (!state_->pool) return close();  // stopping
    asio::post(*state_->pool, [self = shared_from_this(), route = std::move(route),
                               caller = std::move(caller)]() mutable {
      auto reply = std::make_shared<Reply>(handle(self->state_->backend, route, caller));
      asio::post(self->stream_.get_executor(),
                 [self, reply]() { self->send(std::move(*reply), false); });
    });
  }

  void send(Reply reply, bool close_after) {
    if (close_after) keep_alive_ = false;
    if (reply.file) return write(file_response(std::move(reply)));
    write(string_response(std::move(reply)));
  }

  template <class Body>
  void add_headers(bhttp::response<Body>& response, Reply& reply) const {
    response.set(bhttp::field::content_type, reply.content_type);
    response.set(bhttp::field::server, "cyclecastd");
    response.set(bhttp::field::date, imf_fixdate(std::chrono::system_clock::now()));
    response.set("X-Content-Type-Options", "nosniff");
    for (const auto& [name, value] : reply.headers)
      response.set(name, value);
    response.keep_alive(keep_alive_);
  }

  bhttp::response<bhttp::string_body> string_response(Reply reply) const {
    bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(reply.status), 11};
    add_headers(response, reply);
    response.body() = std::move(reply.body);
    response.prepare_payload();
    return response;
  }

  bhttp::response<bhttp::file_body> file_response(Reply reply) const {
    bhttp::response<bhttp::file_body> response{static_cast<bhttp::status>(reply.status), 11};
    add_headers(response, reply);
    response.body() = std::move(*reply.file);
    response.prepare_payload();  // Content-Length from the file's size
    return response;
  }

  template <class Body>
  void write(bhttp::response<Body> response) {
    auto message = std::make_shared<bhttp::response<Body>>(std::move(response));
    const unsigned status = message->result_int();
    stream_.expires_after(options().write_timeout);
    bhttp::async_write(
        stream_, *message,
        [self = shared_from_this(), message, status](beast::error_code ec, std::size_t bytes) {
          self->on_write(ec, bytes, status, message->need_eof());
        });
  }

  void on_write(beast::error_code ec, std::size_t bytes, unsigned status, bool need_eof) {
    // Answered: from now on it may give up its slot. Before the access log, which thereby tells
    // a test that the connection is waiting.
    if (!ec) set_waiting(true);
    log(status, bytes);
    if (ec) return close();
    if (need_eof || !keep_alive_) return linger_close();
    read_header();
  }

  void log(unsigned status, std::size_t bytes) const {
    if (!options().access_log) return;
    AccessLogEntry entry;
    entry.remote = remote_;
    entry.method = method_;
    entry.target = target_;
    entry.status = status;
    entry.bytes_sent = bytes;
    entry.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started_);
    options().access_log(entry);
  }

  // Half-closes, then reads and discards until the client closes or kLingerTime passes.
  void linger_close() {
    set_waiting(true);
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(kLingerTime);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) return self->close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<State> state_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string remote_;
  std::string address_;
  std::optional<ConnectionTable::Id> slot_;  // empty for a connection refused with 503
  std::string method_;
  std::string target_;
  bool keep_alive_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::array<char, 4096> discard_{};
};

void accept_next(const std::shared_ptr<State>& state);

void on_accept(const std::shared_ptr<State>& state, beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) return;
  if (ec) {
    // Out of file descriptors and the like: wait a little instead of spinning.
    auto timer =
        std::make_shared<asio::steady_timer>(state->acceptor.get_executor(), kAcceptRetryDelay);
    timer->async_wait([state, timer](beast::error_code) { accept_next(state); });
    return;
  }
  auto session = std::make_shared<Session>(std::move(socket), state);
  auto admission =
      state->table->admit(session->address(), [weak = std::weak_ptr<Session>(session)] {
        if (auto shed = weak.lock()) shed->shed();
      });
  if (admission.shed) admission.shed();
  if (admission.id) {
    session->start(*admission.id);
  } else {
    session->refuse_busy();
  }
  accept_next(state);
}

void accept_next(const std::shared_ptr<State>& state) {
  if (!state->acceptor.is_open()) return;
  state->acceptor.async_accept(asio::make_strand(state->io),
                               [state](beast::error_code ec, tcp::socket socket) {
                                 on_accept(state, ec, std::move(socket));
                               });
}

Result<void> listen(State& state) {
  beast::error_code ec;
  const auto address = asio::ip::make_address(state.options.address, ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument,
                      "invalid listen address '" + state.options.address + "': " + ec.message());
  }
  const tcp::endpoint endpoint(address, state.options.port);
  const std::string where = state.options.address + ":" + std::to_string(state.options.port);
  state.acceptor.open(endpoint.protocol(), ec);
  if (!ec) state.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state.acceptor.bind(endpoint, ec);
  if (!ec) state.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    state.acceptor.close(ignored);
    return make_error(ErrorCode::kIo, "cannot listen on " + where + ": " + ec.message());
  }
  state.port = state.acceptor.local_endpoint(ec).port();
  return {};
}

}  // namespace

bool is_loopback(const std::string& address) {
  beast::error_code ec;
  const auto parsed = asio::ip::make_address(address, ec);
  if (ec) return false;
  if (parsed.is_v4()) return parsed.to_v4().is_loopback();
  const auto v6 = parsed.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback();
  return v6.is_loopback();
}

HttpServer::HttpServer(asio::io_context& io, ApiBackend& backend, ServerOptions options)
    : state_(std::make_shared<State>(io, backend, std::move(options))) {}

HttpServer::~HttpServer() {
  stop();
}

Result<void> HttpServer::start() {
  {
    std::lock_guard lock(state_->mutex);
    if (state_->pool) return make_error(ErrorCode::kConflict, "the API server is already started");
  }
  if (sodium_init() < 0) return make_error(ErrorCode::kIo, "libsodium failed to initialise");
  if (!state_->options.token_file.empty()) {
    if (auto reloaded = reload_token(); !reloaded) return reloaded;
  }
  state_->table =
      std::make_unique<ConnectionTable>(connection_limit(state_->options.max_connections),
                                        state_->options.max_connections_per_address);
  if (auto listening = listen(*state_); !listening) return listening;
  {
    std::lock_guard lock(state_->mutex);
    state_->pool = std::make_unique<asio::thread_pool>(
        std::max<std::size_t>(1, state_->options.backend_threads));
  }
  asio::post(state_->acceptor.get_executor(), [state = state_]() { accept_next(state); });
  return {};
}

std::uint16_t HttpServer::port() const {
  return state_->port.load();
}

Result<void> HttpServer::reload_token() {
  if (state_->options.token_file.empty()) return {};
  auto token = read_token_file(state_->options.token_file);
  if (!token) return token.error();
  std::lock_guard lock(state_->mutex);
  state_->token = *token;
  return {};
}

void HttpServer::stop() {
  std::unique_ptr<asio::thread_pool> pool;
  {
    std::lock_guard lock(state_->mutex);
    pool = std::move(state_->pool);
  }
  if (!pool) return;
  asio::post(state_->acceptor.get_executor(), [state = state_]() {
    beast::error_code ignored;
    state->acceptor.close(ignored);
  });
  pool->stop();
  pool->join();
}

}  // namespace cyclecast::http
