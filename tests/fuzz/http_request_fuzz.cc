// libFuzzer target for the operators' HTTP API: arbitrary bytes as one request, through the same
// Beast parser settings as the server's connections (header and body limits), then dispatch()
// (routing, method, bearer token, caller body) and handle() against a small in-memory backend.
// The first byte picks whether a token is configured. Invariants beyond "does not crash": every
// reply has a status the API documents (docs/api.md), a name reaching the backend is valid, and
// a mutating call reaches it only with the right token.
#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include "cyclecast/http/server.h"
#include "dispatch.h"
#include "handlers.h"
#include "router.h"
#include "token.h"

namespace http = cyclecast::http;
namespace bhttp = boost::beast::http;
using nlohmann::json;

namespace {

constexpr std::string_view kToken = "fuzz-token";

void check(bool condition) {
  if (!condition) std::abort();
}

// Answers from memory; one known cell, model and run, everything else not found.
class MemoryBackend final : public http::ApiBackend {
 public:
  bool mutated = false;

  json health() override { return {{"status", "ok"}, {"problems", json::array()}}; }
  std::string metrics() override { return "cyclecast_up 1\n"; }
  cyclecast::Result<json> cells() override { return json::array({"c1"}); }
  cyclecast::Result<json> cell(const std::string& id) override {
    check(http::is_valid_name(id));
    if (id != "c1") return missing();
    return json{{"cell_id", id}};
  }
  cyclecast::Result<json> models() override { return json::array(); }
  cyclecast::Result<json> model(const std::string& version) override {
    check(http::is_valid_name(version));
    return missing();
  }
  cyclecast::Result<std::filesystem::path> bundle_file(const std::string& version) override {
    check(http::is_valid_name(version));
    return missing();
  }
  cyclecast::Result<json> runs() override { return json::array(); }
  cyclecast::Result<json> run(std::int64_t id) override {
    check(id > 0);
    return missing();
  }
  cyclecast::Result<std::filesystem::path> run_report(std::int64_t id) override {
    check(id > 0);
    return missing();
  }
  cyclecast::Result<json> nodes() override { return json::array(); }
  cyclecast::Result<json> retrain(const http::Caller&) override { return mutate(); }
  cyclecast::Result<json> promote(const std::string& version, const http::Caller&) override {
    check(http::is_valid_name(version));
    return mutate();
  }
  cyclecast::Result<json> rollback(const http::Caller&) override { return mutate(); }
  cyclecast::Result<json> move_cell(const std::string& cell, const std::string& rig,
                                    const http::Caller&) override {
    check(http::is_valid_name(cell) && http::is_valid_name(rig));
    return mutate();
  }

 private:
  static cyclecast::Error missing() {
    return cyclecast::make_error(cyclecast::ErrorCode::kNotFound, "no such thing");
  }
  cyclecast::Result<json> mutate() {
    mutated = true;
    return json{{"ok", true}};
  }
};

http::TokenDigest digest_of(std::string_view text) {
  http::TokenDigest digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(text.data()),
                     text.size());
  return digest;
}

bool documented(unsigned status) {
  static const std::set<unsigned> kStatuses = {200, 400, 401, 403, 404, 405,
                                               409, 413, 414, 431, 500, 503};
  return kStatuses.count(status) == 1;
}

// The parsed request, or nothing when the server would answer 4xx or close before dispatching.
std::optional<bhttp::request<bhttp::string_body>> parse(std::string_view bytes) {
  const http::ServerOptions options;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
  parser.body_limit(options.max_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  while (!bytes.empty() && !parser.is_done()) {
    const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == bhttp::error::need_more) return std::nullopt;  // truncated: the server waits
    if (ec) return std::nullopt;                             // 400, 413 or 431
    if (used == 0) return std::nullopt;
    bytes.remove_prefix(used);
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return std::nullopt;
  }
  if (parser.get().target().size() > options.max_target_bytes) return std::nullopt;  // 414
  return parser.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const bool sodium_ready = sodium_init() >= 0;
  check(sodium_ready);
  std::optional<http::TokenDigest> token;
  if (data[0] % 2 == 0) token = digest_of(kToken);
  auto request = parse(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  if (!request) return 0;

  http::Dispatch dispatched = http::dispatch(*request, token);
  if (dispatched.refusal) {
    check(documented(dispatched.refusal->status) && dispatched.refusal->status >= 400);
    return 0;
  }
  if (dispatched.page) {  // a dashboard file: 200, or 304 for a matching If-None-Match
    check(dispatched.page->status == 200 || dispatched.page->status == 304);
    check(request->method() == bhttp::verb::get);
    return 0;
  }
  MemoryBackend backend;
  const http::Reply reply = http::handle(backend, dispatched.route, dispatched.caller);
  check(documented(reply.status));
  if (backend.mutated) {
    check(token.has_value() && dispatched.route.mutating());
    const auto authorization = (*request)[bhttp::field::authorization];
    check(authorization.size() > kToken.size());
  }
  return 0;
}
