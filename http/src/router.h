// Request targets -> routes, with every path segment percent-decoded once and validated before
// anything reaches the backend. Pure functions (no I/O), private to the server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cyclecast/result.h"

namespace cyclecast::http {

enum class RouteId {
  kHealth,
  kMetrics,
  kCells,
  kCell,
  kModels,
  kModel,
  kBundle,
  kPromote,
  kRuns,
  kRun,
  kReport,
  kRetrain,
  kRollback,
  kCellMove,
  kNodes,
  kOpenApi,
};

enum class Method { kGet, kPost };

struct Route {
  RouteId id;
  Method method;            // the one method the route accepts
  std::string name;         // cell id or model version, decoded and validated
  std::int64_t run_id = 0;  // for kRun and kReport
  std::string rig;          // for kCellMove: the rig to move the cell to, from the body
  bool mutating() const { return method == Method::kPost; }
};

// The outcome of matching a target: a route, or the HTTP status to answer with (400 bad
// segment, 404 no such path) and why.
struct RouteMatch {
  std::optional<Route> route;
  unsigned status = 0;
  std::string error;
};

// Matches the path of `target` (the query, if any, is ignored). The method is checked by the
// caller against route->method (405 otherwise).
RouteMatch match_route(std::string_view target);

// The route's path as docs/openapi.json writes it ("/api/v1/cells/{cell}"), for the test that
// holds the description and the router to each other; nullptr for a value that names no route.
// A switch over every RouteId: a route added without its path does not compile (-Wswitch).
const char* route_path(RouteId id);

// Decodes %XX escapes once ('+' stays '+'). kInvalidArgument on a malformed escape.
Result<std::string> percent_decode(std::string_view segment);
// Cell ids, rig ids and model versions: cyclecast::is_valid_id (cyclecast/ids.h), the definition
// that MQTT topics and CSV import share: [A-Za-z0-9._-]{1,64}, not starting with '.'.
bool is_valid_name(std::string_view name);
// Run ids: decimal digits only, 1..18 of them, value > 0.
std::optional<std::int64_t> parse_run_id(std::string_view text);

}  // namespace cyclecast::http
