#include "router.h"

#include <vector>

#include "cyclecast/ids.h"

namespace cyclecast::http {
namespace {

constexpr std::size_t kMaxRunIdDigits = 18;  // fits int64 without overflow checks

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  path.remove_prefix(1);  // the leading '/', checked by the caller
  while (true) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

RouteMatch not_found() {
  return RouteMatch{std::nullopt, 404, "no such path"};
}
RouteMatch bad_request(std::string why) {
  return RouteMatch{std::nullopt, 400, std::move(why)};
}
RouteMatch found(RouteId id, Method method) {
  return RouteMatch{Route{id, method, {}, 0, {}}, 0, {}};
}

// A decoded, validated cell id or model version in `raw`, or the 400 to answer.
RouteMatch named(RouteId id, Method method, std::string_view raw, const char* what) {
  auto decoded = percent_decode(raw);
  if (!decoded) return bad_request(decoded.error().message);
  if (!is_valid_name(*decoded)) {
    return bad_request(std::string("invalid ") + what +
                       ": expected 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'");
  }
  RouteMatch match = found(id, method);
  match.route->name = std::move(*decoded);
  return match;
}

RouteMatch numbered(RouteId id, std::string_view raw) {
  auto decoded = percent_decode(raw);
  if (!decoded) return bad_request(decoded.error().message);
  const auto run_id = parse_run_id(*decoded);
  if (!run_id) return bad_request("invalid run id: expected a positive integer");
  RouteMatch match = found(id, Method::kGet);
  match.route->run_id = *run_id;
  return match;
}

RouteMatch match_api(const std::vector<std::string_view>& s) {
  // s[0] == "api", s[1] == "v1"
  const std::size_t n = s.size();
  const std::string_view collection = s[2];
  if (collection == "cells") {
    if (n == 3) return found(RouteId::kCells, Method::kGet);
    if (n == 4) return named(RouteId::kCell, Method::kGet, s[3], "cell id");
    if (n == 5 && s[4] == "move") return named(RouteId::kCellMove, Method::kPost, s[3], "cell id");
  } else if (collection == "models") {
    if (n == 3) return found(RouteId::kModels, Method::kGet);
    if (n == 4) return named(RouteId::kModel, Method::kGet, s[3], "model version");
    if (n == 5 && s[4] == "bundle")
      return named(RouteId::kBundle, Method::kGet, s[3], "model version");
    if (n == 5 && s[4] == "promote") {
      return named(RouteId::kPromote, Method::kPost, s[3], "model version");
    }
  } else if (collection == "runs") {
    if (n == 3) return found(RouteId::kRuns, Method::kGet);
    if (n == 4) return numbered(RouteId::kRun, s[3]);
    if (n == 5 && s[4] == "report") return numbered(RouteId::kReport, s[3]);
  } else if (collection == "nodes" && n == 3) {
    return found(RouteId::kNodes, Method::kGet);
  } else if (collection == "retrain" && n == 3) {
    return found(RouteId::kRetrain, Method::kPost);
  } else if (collection == "rollback" && n == 3) {
    return found(RouteId::kRollback, Method::kPost);
  } else if (collection == "openapi.json" && n == 3) {
    return found(RouteId::kOpenApi, Method::kGet);
  }
  return not_found();
}

}  // namespace

Result<std::string> percent_decode(std::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  for (std::size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out.push_back(segment[i]);
      continue;
    }
    if (i + 2 >= segment.size()) {
      return make_error(ErrorCode::kInvalidArgument, "malformed percent escape in the path");
    }
    const int high = hex_value(segment[i + 1]);
    const int low = hex_value(segment[i + 2]);
    if (high < 0 || low < 0) {
      return make_error(ErrorCode::kInvalidArgument, "malformed percent escape in the path");
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool is_valid_name(std::string_view name) {
  return is_valid_id(name);
}

std::optional<std::int64_t> parse_run_id(std::string_view text) {
  if (text.empty() || text.size() > kMaxRunIdDigits) return std::nullopt;
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value <= 0) return std::nullopt;
  return value;
}

RouteMatch match_route(std::string_view target) {
  const std::size_t query = target.find('?');
  const std::string_view path = target.substr(0, query);
  if (path.empty() || path.front() != '/')
    return bad_request("the target must be an absolute path");
  const std::vector<std::string_view> s = split_path(path);
  if (s.size() == 1 && s[0] == "healthz") return found(RouteId::kHealth, Method::kGet);
  if (s.size() == 1 && s[0] == "metrics") return found(RouteId::kMetrics, Method::kGet);
  if (s.size() >= 3 && s.size() <= 5 && s[0] == "api" && s[1] == "v1") return match_api(s);
  return not_found();
}

const char* route_path(RouteId id) {
  switch (id) {
    case RouteId::kHealth:
      return "/healthz";
    case RouteId::kMetrics:
      return "/metrics";
    case RouteId::kCells:
      return "/api/v1/cells";
    case RouteId::kCell:
      return "/api/v1/cells/{cell}";
    case RouteId::kModels:
      return "/api/v1/models";
    case RouteId::kModel:
      return "/api/v1/models/{version}";
    case RouteId::kBundle:
      return "/api/v1/models/{version}/bundle";
    case RouteId::kPromote:
      return "/api/v1/models/{version}/promote";
    case RouteId::kRuns:
      return "/api/v1/runs";
    case RouteId::kRun:
      return "/api/v1/runs/{id}";
    case RouteId::kReport:
      return "/api/v1/runs/{id}/report";
    case RouteId::kRetrain:
      return "/api/v1/retrain";
    case RouteId::kRollback:
      return "/api/v1/rollback";
    case RouteId::kCellMove:
      return "/api/v1/cells/{cell}/move";
    case RouteId::kOpenApi:
      return "/api/v1/openapi.json";
    case RouteId::kNodes:
      return "/api/v1/nodes";
  }
  return nullptr;
}

}  // namespace cyclecast::http
