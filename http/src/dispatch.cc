#include "dispatch.h"

#include <string>
#include <string_view>
#include <utility>

#include <boost/beast/core/string.hpp>

#include "dashboard.h"

namespace cyclecast::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;

// The reply refusing a mutating request, or nothing when its token is right.
std::optional<Reply> check_token(const bhttp::request<bhttp::string_body>& request,
                                 const std::optional<TokenDigest>& token) {
  if (!token) {
    return error_reply(403,
                       "changes through the API are disabled: cyclecastd has no API token file "
                       "(http.token_file)");
  }
  const auto authorization = request[bhttp::field::authorization];
  const std::string_view presented =
      bearer_token(std::string_view(authorization.data(), authorization.size()));
  if (presented.empty()) {
    Reply reply = error_reply(401, "authentication required: send Authorization: Bearer <token>");
    reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cyclecast\"");
    return reply;
  }
  if (!token_matches(*token, presented)) return error_reply(403, "invalid API token");
  return std::nullopt;
}

Dispatch refuse(Reply reply) {
  Dispatch refused;
  refused.refusal = std::move(reply);
  return refused;
}

}  // namespace

Dispatch dispatch(const bhttp::request<bhttp::string_body>& request,
                  const std::optional<TokenDigest>& token) {
  if (auto page = dashboard_reply(request); page) {
    Dispatch served;
    (page->status >= 400 ? served.refusal : served.page) = std::move(page);
    return served;
  }
  RouteMatch match =
      match_route(std::string_view(request.target().data(), request.target().size()));
  if (!match.route) return refuse(error_reply(match.status, match.error));
  Dispatch accepted;
  accepted.route = std::move(*match.route);
  const bhttp::verb wanted =
      accepted.route.method == Method::kGet ? bhttp::verb::get : bhttp::verb::post;
  if (request.method() != wanted) {
    Reply reply =
        error_reply(405, "method not allowed; use " + std::string(bhttp::to_string(wanted)));
    reply.headers.emplace_back("Allow", std::string(bhttp::to_string(wanted)));
    return refuse(std::move(reply));
  }
  if (!accepted.route.mutating()) return accepted;
  if (auto refused = check_token(request, token); refused) return refuse(std::move(*refused));
  const bool is_move = accepted.route.id == RouteId::kCellMove;
  auto parsed = is_move ? parse_caller(request.body(), {"rig"}) : parse_caller(request.body());
  if (!parsed) return refuse(error_reply(400, parsed.error().message));
  accepted.caller = std::move(*parsed);
  if (is_move) {
    auto rig = parse_move_rig(request.body());
    if (!rig) return refuse(error_reply(400, rig.error().message));
    accepted.route.rig = std::move(*rig);
  }
  return accepted;
}

}  // namespace cyclecast::http
