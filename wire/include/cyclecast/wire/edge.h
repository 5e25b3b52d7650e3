// MQTT protocol v1, edge part (docs/protocol.md, "Edge nodes"): the forecasts a node computed,
// published by its gateway, and the node's retained status. Pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cyclecast/result.h"

namespace cyclecast::wire {

// cyclecast/v1/nodes/{node}/forecasts (QoS 1, not retained) and .../status (QoS 1, retained).
std::string node_forecasts_topic(std::string_view node_id);
std::string node_status_topic(std::string_view node_id);
// What the daemon subscribes to: cyclecast/v1/nodes/+/forecasts and .../status.
std::string node_forecasts_subscription();
std::string node_status_subscription();

// A forecast's prediction interval where the node gives values (steps 10 and H) and the
// end-of-life interval: the first cycle at which the lower and the upper bound fall below 0.8
// (none: not within the horizon). From a node protocol v2 FC answer (node_frames.h).
struct ForecastInterval {
  std::optional<double> lower_at_10, upper_at_10;  // none when H < 10
  double lower_at_h = 0.0, upper_at_h = 0.0;
  std::optional<int64_t> eol_earliest, eol_latest;
};

// Whether `interval` can be the interval of a forecast with these values: bounds exactly where
// the forecast has values, lower <= SOH <= upper there, and, the lower bound crossing 0.8 first,
// eol_earliest <= eol_cycle <= eol_latest (an end of life implies an earliest one, a latest one
// implies an end of life).
bool interval_consistent(const ForecastInterval& interval, std::optional<double> soh_at_10,
                         double soh_at_h, std::optional<int64_t> eol_cycle);

struct EdgeForecast {
  std::string node;
  std::string cell;
  int64_t cycle = 0;  // the last input cycle; the forecast is for cycle + 1 .. cycle + horizon
  std::string model_version;
  std::string model_sha256;
  int64_t horizon = 0;
  std::optional<double> soh_at_10;  // SOH at cycle + 10 (none when horizon < 10)
  double soh_at_h = 0.0;            // SOH at cycle + horizon
  std::optional<int64_t> eol_cycle;
  int64_t forecast_us = 0;     // by the node's clock
  int64_t received_at_ms = 0;  // when the gateway read the answer (ms since 1970)
  // The node's interval (a v2 node whose model has a table). In JSON the host forecast
  // payload's fields (protocol.h serialize_forecast): "lower" and "upper" with `horizon` entries
  // each, null but at steps 10 and H, and "eol_interval" {"earliest", "latest"}.
  std::optional<ForecastInterval> interval;
};

// Limits of an edge forecast (docs/protocol.md, "Edge forecast"): one is about 300 bytes; its
// strings follow protocol v1's rules (ids, kMaxTextFieldLength) and its cycle the cycle records'.
inline constexpr size_t kMaxEdgeForecastBytes = 4096;
inline constexpr int64_t kMaxEdgeHorizon = 10000;  // a stored row holds `horizon` floats
inline constexpr double kMaxEdgeSoh = 10.0;        // |SOH| at most 10 x rated capacity

std::string serialize_edge_forecast(const EdgeForecast& forecast);
// Strict: a payload over kMaxEdgeForecastBytes, JSON refused by parse_bounded_json, unknown,
// missing or mistyped fields and values outside the limits above are kInvalidArgument naming
// the field; `cycle + horizon` cannot overflow. The interval's three fields come together or not
// at all, with bounds exactly where the forecast has values, on their sides of it, and an
// end-of-life interval around eol_cycle. (With an interval a payload grows by about 10 bytes
// per horizon step: the 4 KiB limit holds horizons up to about 350.)
Result<EdgeForecast> parse_edge_forecast(std::string_view payload);

struct NodeStatus {
  std::string node;
  // "online" (answering), "unresponsive" (stopped answering; reopening), "disconnected" (the
  // serial device failed or is gone; reopening), "offline" (gateway stopped, or its last will)
  std::string state;
  std::string model_version, model_sha256;  // empty until the node identified itself
  int64_t window = 0, horizon = 0;
  int64_t last_seen_ms = 0;  // last valid frame from the node; 0: never
  int64_t forecasts = 0, resets = 0, garbage_lines = 0, timeouts = 0, reopens = 0;
  int64_t dropped_records = 0;  // refused by the node, or pushed out of the full queue
  int64_t queued = 0;
  // Model update (docs/gateway.md "Model update"), both empty unless the gateway updates its
  // node, and then optional in the payload so that older readers are not handed them:
  // active_slot "A", "B" or "-" (the built-in model); update "current" (the node runs the
  // bundle's model), "sending", "switched", or "failed:REASON" (the node's reason word).
  std::string active_slot, update;
};

std::string serialize_node_status(const NodeStatus& status);
// Strict, as parse_edge_forecast: at most kMaxEdgeForecastBytes, every field of
// serialize_node_status and no other, `node` an id, `state` one of the four, counters >= 0;
// kInvalidArgument naming the field otherwise.
Result<NodeStatus> parse_node_status(std::string_view payload);

// ---- gateway liveness ---------------------------------------------------------------------------
// A gateway's own MQTT status (docs/protocol.md, "Gateway liveness"): cyclecast-gateway --node N
// connects as client cyclecast-gateway-N, keeps a retained "online <start id>" on
// cyclecast/v1/daemons/cyclecast-gateway-N/status and leaves "offline" there as its last will.
inline constexpr std::string_view kGatewayClientPrefix = "cyclecast-gateway-";
// "online " and a start id of at most 64 characters fit; anything longer is not a status.
inline constexpr size_t kMaxGatewayStatusBytes = 128;

// cyclecast/v1/daemons/+/status: the daemons' and the gateways' statuses.
std::string daemon_status_subscription();
// Whether `topic` is a daemons/{client id}/status topic whose client id starts with
// kGatewayClientPrefix (valid node id or not: parse_gateway_status says what is wrong).
bool is_gateway_status_topic(std::string_view topic);

struct GatewayStatus {
  std::string client_id;  // cyclecast-gateway-{node}
  std::string node;       // the node the gateway serves
  std::string state;      // "online" or "offline"
  std::string start_id;   // the gateway's run; empty for "offline" or a bare "online"
};

// Strict: the topic must be a gateway's status topic with a valid node id, the payload at most
// kMaxGatewayStatusBytes and exactly "offline", "online" or "online <start id>" (the id rule of
// protocol v1); kInvalidArgument naming what is wrong otherwise.
Result<GatewayStatus> parse_gateway_status(std::string_view topic, std::string_view payload);

}  // namespace cyclecast::wire
