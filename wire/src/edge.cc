#include "cyclecast/wire/edge.h"

#include <nlohmann/json.hpp>
#include <set>

namespace cyclecast::wire {
namespace {

using Json = nlohmann::ordered_json;

Error bad(const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument, "edge forecast: " + why);
}

}  // namespace

std::string node_forecasts_topic(std::string_view node_id) {
  return "cyclecast/v1/nodes/" + std::string(node_id) + "/forecasts";
}
std::string node_status_topic(std::string_view node_id) {
  return "cyclecast/v1/nodes/" + std::string(node_id) + "/status";
}
std::string node_forecasts_subscription() {
  return "cyclecast/v1/nodes/+/forecasts";
}

std::string serialize_edge_forecast(const EdgeForecast& f) {
  Json j{{"v", 1},
         {"node", f.node},
         {"cell", f.cell},
         {"cycle", f.cycle},
         {"model_version", f.model_version},
         {"model_sha256", f.model_sha256},
         {"horizon", f.horizon},
         {"soh_at_10", f.soh_at_10 ? Json(*f.soh_at_10) : Json(nullptr)},
         {"soh_at_h", f.soh_at_h},
         {"eol_cycle", f.eol_cycle ? Json(*f.eol_cycle) : Json(nullptr)},
         {"forecast_us", f.forecast_us},
         {"received_at_ms", f.received_at_ms}};
  return j.dump();
}

Result<EdgeForecast> parse_edge_forecast(std::string_view payload) {
  const Json j = Json::parse(payload.begin(), payload.end(), nullptr, false);
  if (!j.is_object()) return bad("not a JSON object");
  static const std::set<std::string> kKeys = {
      "v",       "node",      "cell",     "cycle",     "model_version", "model_sha256",
      "horizon", "soh_at_10", "soh_at_h", "eol_cycle", "forecast_us",   "received_at_ms"};
  for (const auto& [key, value] : j.items()) {
    if (kKeys.count(key) == 0) return bad("unknown field '" + key + "'");
  }
  for (const std::string& key : kKeys) {
    if (!j.contains(key)) return bad("missing field '" + key + "'");
  }
  const auto text = [&](const char* key) { return j[key].is_string(); };
  const auto integer = [&](const char* key) { return j[key].is_number_integer(); };
  const auto number_or_null = [&](const char* key) {
    return j[key].is_number() || j[key].is_null();
  };
  if (!integer("v") || j["v"] != 1) return bad("'v' must be 1");
  for (const char* key : {"node", "cell", "model_version", "model_sha256"}) {
    if (!text(key)) return bad("'" + std::string(key) + "' is not a string");
  }
  for (const char* key : {"cycle", "horizon", "forecast_us", "received_at_ms"}) {
    if (!integer(key)) return bad("'" + std::string(key) + "' is not an integer");
  }
  if (!j["soh_at_h"].is_number()) return bad("'soh_at_h' is not a number");
  if (!number_or_null("soh_at_10")) return bad("'soh_at_10' is not a number or null");
  if (!(j["eol_cycle"].is_number_integer() || j["eol_cycle"].is_null()))
    return bad("'eol_cycle' is not an integer or null");
  EdgeForecast f;
  f.node = j["node"];
  f.cell = j["cell"];
  f.cycle = j["cycle"];
  f.model_version = j["model_version"];
  f.model_sha256 = j["model_sha256"];
  f.horizon = j["horizon"];
  if (!j["soh_at_10"].is_null()) f.soh_at_10 = j["soh_at_10"].get<double>();
  f.soh_at_h = j["soh_at_h"];
  if (!j["eol_cycle"].is_null()) f.eol_cycle = j["eol_cycle"].get<int64_t>();
  f.forecast_us = j["forecast_us"];
  f.received_at_ms = j["received_at_ms"];
  if (f.cycle < 1 || f.horizon < 1) return bad("'cycle' and 'horizon' must be >= 1");
  return f;
}

std::string serialize_node_status(const NodeStatus& s) {
  Json j{{"v", 1},
         {"node", s.node},
         {"state", s.state},
         {"model_version", s.model_version},
         {"model_sha256", s.model_sha256},
         {"window", s.window},
         {"horizon", s.horizon},
         {"last_seen_ms", s.last_seen_ms},
         {"forecasts", s.forecasts},
         {"resets", s.resets},
         {"garbage_lines", s.garbage_lines},
         {"timeouts", s.timeouts},
         {"reopens", s.reopens},
         {"dropped_records", s.dropped_records},
         {"queued", s.queued}};
  return j.dump();
}

}  // namespace cyclecast::wire
