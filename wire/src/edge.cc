#include "cyclecast/wire/edge.h"

#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "cyclecast/bounded_json.h"
#include "cyclecast/wire/protocol.h"

namespace cyclecast::wire {
namespace {

using Json = nlohmann::ordered_json;  // written in a fixed field order

Error bad(const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument, "edge forecast: " + why);
}

// A payload within the edge size limit that parses as one JSON object; the error says why not,
// for the caller to prefix with what the payload was meant to be.
// The first check of every edge payload, before anything looks inside it.
Result<void> check_edge_size(std::string_view payload, size_t limit) {
  if (payload.size() > limit) {
    return make_error(ErrorCode::kInvalidArgument, "payload of " + std::to_string(payload.size()) +
                                                       " bytes exceeds the limit of " +
                                                       std::to_string(limit) + " bytes");
  }
  return {};
}

Result<nlohmann::json> parse_edge_object(std::string_view payload) {
  if (auto sized = check_edge_size(payload, kMaxEdgeForecastBytes); !sized) return sized.error();
  auto parsed = parse_bounded_json(payload, kMaxEdgeForecastBytes);
  if (!parsed) return parsed.error();
  if (!parsed->is_object()) return make_error(ErrorCode::kInvalidArgument, "not a JSON object");
  return std::move(*parsed);
}

bool is_sha256(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The limits of docs/protocol.md, "Edge forecast": what a gateway forwards from its node, checked
// as strictly as a rig's cycle records, since any broker client can publish on a node's topic.
std::string check_ranges(const EdgeForecast& f) {
  using protocol::kMaxCycle;
  for (const auto& [name, id] : {std::pair{"node", &f.node}, std::pair{"cell", &f.cell}}) {
    if (auto reason = protocol::check_id(*id); !reason.empty()) {
      return "'" + std::string(name) + "': " + reason;
    }
  }
  if (f.model_version.empty() || f.model_version.size() > protocol::kMaxTextFieldLength) {
    return "'model_version' must be 1 to " + std::to_string(protocol::kMaxTextFieldLength) +
           " bytes";
  }
  if (!f.model_sha256.empty() && !is_sha256(f.model_sha256)) {
    return "'model_sha256' must be empty or 64 lower-case hex digits";
  }
  if (f.cycle < 1 || f.cycle > kMaxCycle) {
    return "'cycle' must be in [1, " + std::to_string(kMaxCycle) + "]";
  }
  if (f.horizon < 1 || f.horizon > kMaxEdgeHorizon) {
    return "'horizon' must be in [1, " + std::to_string(kMaxEdgeHorizon) + "]";
  }
  if (f.eol_cycle && (*f.eol_cycle <= f.cycle || *f.eol_cycle > f.cycle + f.horizon)) {
    return "'eol_cycle' must be null or in [cycle + 1, cycle + horizon]";
  }
  const auto soh_ok = [](double soh) {
    return std::isfinite(soh) && std::fabs(soh) <= kMaxEdgeSoh;
  };
  if ((f.soh_at_10 && !soh_ok(*f.soh_at_10)) || !soh_ok(f.soh_at_h)) {
    return "'soh_at_10' and 'soh_at_h' must be in [-" + std::to_string(int(kMaxEdgeSoh)) + ", " +
           std::to_string(int(kMaxEdgeSoh)) + "]";
  }
  if (f.interval) {
    const ForecastInterval& in = *f.interval;
    for (const auto cycle : {in.eol_earliest, in.eol_latest}) {
      if (cycle && (*cycle <= f.cycle || *cycle > f.cycle + f.horizon))
        return "'eol_interval' cycles must be null or in [cycle + 1, cycle + horizon]";
    }
    for (const auto bound : {in.lower_at_10, in.upper_at_10, std::optional(in.lower_at_h),
                             std::optional(in.upper_at_h)}) {
      if (bound && !soh_ok(*bound)) return "'lower' and 'upper' must be in [-10, 10]";
    }
    if (!interval_consistent(in, f.soh_at_10, f.soh_at_h, f.eol_cycle)) {
      return "'lower', 'upper' and 'eol_interval' do not bound the forecast (bounds exactly at "
             "steps 10 and H, lower <= SOH <= upper, earliest <= eol_cycle <= latest)";
    }
  }
  if (f.forecast_us < 0) return "'forecast_us' must be >= 0";
  if (f.received_at_ms < protocol::kMinMeasuredAtMs ||
      f.received_at_ms > protocol::kMaxMeasuredAtMs) {
    return "'received_at_ms' must be between 2000-01-01 and 2100-01-01";
  }
  return {};
}

// "lower"/"upper" of a payload: `horizon` entries, null but at steps 10 and H.
Json interval_steps(int64_t horizon, std::optional<double> at_10, double at_h) {
  Json steps = Json::array();
  for (int64_t step = 1; step <= horizon; ++step) {
    if (step == horizon) {
      steps.push_back(at_h);
    } else if (step == 10 && at_10) {
      steps.push_back(*at_10);
    } else {
      steps.push_back(nullptr);
    }
  }
  return steps;
}

// Reads "lower"/"upper" back: exactly `horizon` entries, numbers at step H and at step 10 where
// the forecast has a value there, null elsewhere; false otherwise.
bool read_interval_steps(const nlohmann::json& steps, int64_t horizon, bool has_10,
                         std::optional<double>& at_10, double& at_h) {
  if (!steps.is_array() || std::ssize(steps) != horizon) return false;
  for (int64_t step = 1; step <= horizon; ++step) {
    const nlohmann::json& v = steps[static_cast<size_t>(step - 1)];
    const bool given = step == horizon || (step == 10 && has_10);
    if (!given) {
      if (!v.is_null()) return false;
      continue;
    }
    if (!v.is_number()) return false;
    if (step == 10 && has_10) at_10 = v.get<double>();  // H = 10: both
    if (step == horizon) at_h = v.get<double>();
  }
  return true;
}

// The interval of a payload (parse_edge_forecast): none when its three fields are absent.
Result<std::optional<ForecastInterval>> parse_interval(const nlohmann::json& j,
                                                       const EdgeForecast& f) {
  const int present =
      int(j.contains("lower")) + int(j.contains("upper")) + int(j.contains("eol_interval"));
  if (present == 0) return std::optional<ForecastInterval>();
  if (present != 3) return bad("'lower', 'upper' and 'eol_interval' come together");
  if (f.horizon < 1 || f.horizon > kMaxEdgeHorizon)
    return bad("'horizon' must be in [1, " + std::to_string(kMaxEdgeHorizon) + "]");
  ForecastInterval in;
  const bool has_10 = f.soh_at_10.has_value();
  if (!read_interval_steps(j["lower"], f.horizon, has_10, in.lower_at_10, in.lower_at_h) ||
      !read_interval_steps(j["upper"], f.horizon, has_10, in.upper_at_10, in.upper_at_h)) {
    return bad(
        "'lower' and 'upper' must hold 'horizon' entries, numbers at steps 10 and H "
        "(where the forecast has values) and null elsewhere");
  }
  const nlohmann::json& eol = j["eol_interval"];
  const auto cycle_or_null = [&](const char* key, std::optional<int64_t>& out) {
    if (!eol.contains(key)) return false;
    const nlohmann::json& v = eol[key];
    if (v.is_null()) return true;
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() &&
         v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())))
      return false;
    out = v.get<int64_t>();
    return true;
  };
  if (!eol.is_object() || eol.size() != 2 || !cycle_or_null("earliest", in.eol_earliest) ||
      !cycle_or_null("latest", in.eol_latest)) {
    return bad(
        "'eol_interval' must be {\"earliest\": integer or null, \"latest\": integer or "
        "null}");
  }
  return std::optional(in);
}

}  // namespace

bool interval_consistent(const ForecastInterval& in, std::optional<double> soh_at_10,
                         double soh_at_h, std::optional<int64_t> eol_cycle) {
  if (in.lower_at_10.has_value() != soh_at_10.has_value() ||
      in.upper_at_10.has_value() != soh_at_10.has_value())
    return false;
  if (soh_at_10 && !(*in.lower_at_10 <= *soh_at_10 && *soh_at_10 <= *in.upper_at_10)) return false;
  if (!(in.lower_at_h <= soh_at_h && soh_at_h <= in.upper_at_h)) return false;
  if (eol_cycle && !(in.eol_earliest && *in.eol_earliest <= *eol_cycle)) return false;
  if (in.eol_latest && !(eol_cycle && *eol_cycle <= *in.eol_latest)) return false;
  return true;
}

std::string node_forecasts_topic(std::string_view node_id) {
  return "cyclecast/v1/nodes/" + std::string(node_id) + "/forecasts";
}
std::string node_status_topic(std::string_view node_id) {
  return "cyclecast/v1/nodes/" + std::string(node_id) + "/status";
}
std::string node_forecasts_subscription() {
  return "cyclecast/v1/nodes/+/forecasts";
}

std::string node_status_subscription() {
  return "cyclecast/v1/nodes/+/status";
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
  if (f.interval) {
    const ForecastInterval& in = *f.interval;
    const auto cycle_or_null = [](std::optional<int64_t> c) {
      return c ? Json(*c) : Json(nullptr);
    };
    j["lower"] = interval_steps(f.horizon, in.lower_at_10, in.lower_at_h);
    j["upper"] = interval_steps(f.horizon, in.upper_at_10, in.upper_at_h);
    j["eol_interval"] = {{"earliest", cycle_or_null(in.eol_earliest)},
                         {"latest", cycle_or_null(in.eol_latest)}};
  }
  return j.dump();
}

Result<EdgeForecast> parse_edge_forecast(std::string_view payload) {
  auto parsed = parse_edge_object(payload);
  if (!parsed) return bad(parsed.error().message);
  const nlohmann::json& j = *parsed;
  static const std::set<std::string> kKeys = {
      "v",       "node",      "cell",     "cycle",     "model_version", "model_sha256",
      "horizon", "soh_at_10", "soh_at_h", "eol_cycle", "forecast_us",   "received_at_ms"};
  static const std::set<std::string> kIntervalKeys = {"lower", "upper", "eol_interval"};
  for (const auto& [key, value] : j.items()) {
    if (kKeys.count(key) == 0 && kIntervalKeys.count(key) == 0)
      return bad("unknown field '" + key + "'");
  }
  for (const std::string& key : kKeys) {
    if (!j.contains(key)) return bad("missing field '" + key + "'");
  }
  const auto text = [&](const char* key) { return j[key].is_string(); };
  // An integer that fits int64 (nlohmann keeps larger ones unsigned).
  const auto integer = [&](const char* key) {
    return j[key].is_number_integer() &&
           (!j[key].is_number_unsigned() ||
            j[key].get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()));
  };
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
  if (!(integer("eol_cycle") || j["eol_cycle"].is_null()))
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
  auto interval = parse_interval(j, f);
  if (!interval) return interval.error();
  f.interval = *interval;
  if (auto reason = check_ranges(f); !reason.empty()) return bad(reason);
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
  if (!s.active_slot.empty()) j["active_slot"] = s.active_slot;
  if (!s.update.empty()) j["update"] = s.update;
  return j.dump();
}

Result<NodeStatus> parse_node_status(std::string_view payload) {
  const auto refuse = [](const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument, "node status: " + why);
  };
  auto parsed = parse_edge_object(payload);
  if (!parsed) return refuse(parsed.error().message);
  const nlohmann::json& j = *parsed;
  static const std::set<std::string> kTexts = {"node", "state", "model_version", "model_sha256"};
  static const std::set<std::string> kCounts = {
      "v",         "window",          "horizon",       "last_seen_ms",
      "forecasts", "resets",          "garbage_lines", "timeouts",
      "reopens",   "dropped_records", "queued"};
  static const std::set<std::string> kOptional = {"active_slot", "update"};
  for (const auto& [key, value] : j.items()) {
    if (kTexts.count(key) == 0 && kCounts.count(key) == 0 && kOptional.count(key) == 0)
      return refuse("unknown field '" + key + "'");
  }
  NodeStatus optional;
  if (j.contains("active_slot")) {
    if (!j["active_slot"].is_string() ||
        !(j["active_slot"] == "A" || j["active_slot"] == "B" || j["active_slot"] == "-"))
      return refuse("'active_slot' must be A, B or -");
    optional.active_slot = j["active_slot"];
  }
  if (j.contains("update")) {
    const auto& u = j["update"];
    const std::string text = u.is_string() ? u.get<std::string>() : std::string();
    const bool known = text == "current" || text == "sending" || text == "switched" ||
                       (text.starts_with("failed:") && text.size() <= 7 + 16 && text.size() > 7 &&
                        protocol::check_id(text.substr(7)).empty());
    if (!known) return refuse("'update' must be current, sending, switched or failed:REASON");
    optional.update = text;
  }
  for (const auto* keys : {&kTexts, &kCounts}) {
    for (const std::string& key : *keys) {
      if (!j.contains(key)) return refuse("missing field '" + key + "'");
      const auto& value = j[key];
      const bool ok = keys == &kTexts ? value.is_string()
                                      : value.is_number_unsigned() &&
                                            value.get<uint64_t>() <=
                                                uint64_t(std::numeric_limits<int64_t>::max());
      if (!ok) {
        return refuse("'" + key + "' is not " + (keys == &kTexts ? "a string" : "an integer >= 0"));
      }
    }
  }
  if (j["v"] != 1) return refuse("'v' must be 1");
  NodeStatus s = optional;
  s.node = j["node"];
  s.state = j["state"];
  s.model_version = j["model_version"];
  s.model_sha256 = j["model_sha256"];
  if (auto reason = protocol::check_id(s.node); !reason.empty()) return refuse("'node': " + reason);
  static const std::set<std::string> kStates = {"online", "unresponsive", "disconnected",
                                                "offline"};
  if (kStates.count(s.state) == 0) {
    return refuse("'state' must be online, unresponsive, disconnected or offline");
  }
  if (s.model_version.size() > protocol::kMaxTextFieldLength) {
    return refuse("'model_version' must be at most " +
                  std::to_string(protocol::kMaxTextFieldLength) + " bytes");
  }
  if (!s.model_sha256.empty() && !is_sha256(s.model_sha256)) {
    return refuse("'model_sha256' must be empty or 64 lower-case hex digits");
  }
  s.window = j["window"];
  s.horizon = j["horizon"];
  s.last_seen_ms = j["last_seen_ms"];
  s.forecasts = j["forecasts"];
  s.resets = j["resets"];
  s.garbage_lines = j["garbage_lines"];
  s.timeouts = j["timeouts"];
  s.reopens = j["reopens"];
  s.dropped_records = j["dropped_records"];
  s.queued = j["queued"];
  return s;
}

std::string daemon_status_subscription() {
  return protocol::status_topic("+");
}

namespace {
constexpr std::string_view kDaemonsPrefix = "cyclecast/v1/daemons/";
constexpr std::string_view kStatusSuffix = "/status";

// The client id of a daemons/{client id}/status topic; empty when the topic is not one.
std::string_view status_client_id(std::string_view topic) {
  if (!topic.starts_with(kDaemonsPrefix) || !topic.ends_with(kStatusSuffix)) return {};
  topic.remove_prefix(kDaemonsPrefix.size());
  topic.remove_suffix(kStatusSuffix.size());
  return topic.find('/') == std::string_view::npos ? topic : std::string_view{};
}
}  // namespace

bool is_gateway_status_topic(std::string_view topic) {
  return status_client_id(topic).starts_with(kGatewayClientPrefix);
}

Result<GatewayStatus> parse_gateway_status(std::string_view topic, std::string_view payload) {
  const auto refuse = [](const std::string& why) {
    return make_error(ErrorCode::kInvalidArgument, "gateway status: " + why);
  };
  if (!is_gateway_status_topic(topic)) return refuse("not a gateway's status topic");
  GatewayStatus s;
  s.client_id = std::string(status_client_id(topic));
  s.node = s.client_id.substr(kGatewayClientPrefix.size());
  if (auto reason = protocol::check_id(s.node); !reason.empty()) {
    return refuse("the topic's node id: " + reason);
  }
  if (auto sized = check_edge_size(payload, kMaxGatewayStatusBytes); !sized) {
    return refuse(sized.error().message);
  }
  const std::string_view online = "online";
  if (payload == "offline" || payload == online) {
    s.state = std::string(payload);
    return s;
  }
  if (!payload.starts_with("online ")) {
    return refuse("the payload is not 'online <start id>' or 'offline'");
  }
  const std::string_view id = payload.substr(online.size() + 1);
  if (auto reason = protocol::check_id(id); !reason.empty()) return refuse("start id: " + reason);
  s.state = "online";
  s.start_id = std::string(id);
  return s;
}

}  // namespace cyclecast::wire
