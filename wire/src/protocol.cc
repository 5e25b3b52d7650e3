#include "cyclecast/wire/protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

#include "cyclecast/bounded_json.h"
#include "protocol_internal.h"

namespace cyclecast::protocol {

using nlohmann::json;

namespace detail {

Error invalid(std::string reason) {
  return make_error(ErrorCode::kInvalidArgument, std::move(reason));
}

Result<json> parse_json(std::string_view payload, const Limits& limits) {
  if (payload.empty()) return invalid("empty payload");
  if (payload.size() > limits.max_payload_bytes) {
    return invalid("payload of " + std::to_string(payload.size()) + " bytes exceeds the limit of " +
                   std::to_string(limits.max_payload_bytes) + " bytes");
  }
  auto parsed = parse_bounded_json(payload, limits.max_payload_bytes);
  if (!parsed) return invalid(parsed.error().message);
  return std::move(*parsed);
}

std::string read_integer(const json& value, std::string_view name, std::int64_t min,
                         std::int64_t max, std::int64_t& out) {
  if (value.is_number_unsigned()) {
    const auto unsigned_value = value.get<std::uint64_t>();
    if (unsigned_value > static_cast<std::uint64_t>(max)) {
      return "field '" + std::string(name) + "' must be <= " + std::to_string(max) + ", got " +
             value.dump();
    }
    out = static_cast<std::int64_t>(unsigned_value);
  } else if (value.is_number_integer()) {
    out = value.get<std::int64_t>();
  } else {
    return "field '" + std::string(name) + "' must be an integer, got " +
           (value.is_number() ? value.dump() : std::string(value.type_name()));
  }
  if (out < min || out > max) {
    return "field '" + std::string(name) + "' must be in [" + std::to_string(min) + ", " +
           std::to_string(max) + "], got " + std::to_string(out);
  }
  return {};
}

}  // namespace detail

namespace {

using detail::invalid;
using detail::parse_json;
using detail::read_integer;

constexpr std::string_view kRigsSegment = "rigs";
constexpr std::string_view kCellsSegment = "cells";

// Six significant digits: enough for a person to see what was wrong in a rejection reason.
std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
}

// ---- typed field readers: each returns an empty string or the reason the field is refused ----

std::string read_number(const json& value, std::string_view name, std::optional<double>& out) {
  if (value.is_null()) {
    out.reset();
    return {};
  }
  if (!value.is_number()) {
    return "field '" + std::string(name) + "' must be a number or null, got " +
           std::string(value.type_name());
  }
  const double number = value.get<double>();
  if (!std::isfinite(number)) {
    return "field '" + std::string(name) + "' must be a finite number";
  }
  out = number;
  return {};
}

std::string check_range(const std::optional<double>& value, std::string_view name, double min,
                        bool min_inclusive, double max, std::string_view unit,
                        std::string_view why = {}) {
  if (!value) return {};
  const bool low = min_inclusive ? *value < min : *value <= min;
  if (!low && *value <= max) return {};
  std::string reason = "field '" + std::string(name) + "' = " + format_number(*value) + " " +
                       std::string(unit) + " is out of range " + (min_inclusive ? "[" : "(") +
                       format_number(min) + ", " + format_number(max) + "]";
  if (!why.empty()) reason += " " + std::string(why);
  return reason;
}

// Field table of a cycle record: name -> where it goes.
struct NumberField {
  std::string_view name;
  std::optional<double> storage::CycleRecord::*member;
};
constexpr NumberField kOptionalNumbers[] = {
    {"qc_ah", &storage::CycleRecord::charge_capacity_ah},
    {"ir_ohm", &storage::CycleRecord::internal_resistance_ohm},
    {"tmin_c", &storage::CycleRecord::temperature_min_c},
    {"tavg_c", &storage::CycleRecord::temperature_avg_c},
    {"tmax_c", &storage::CycleRecord::temperature_max_c},
    {"chargetime_min", &storage::CycleRecord::charge_time_min},
};

bool known_record_field(std::string_view key) {
  if (key == "cycle" || key == "qd_ah" || key == "measured_at_ms") return true;
  return std::any_of(std::begin(kOptionalNumbers), std::end(kOptionalNumbers),
                     [&](const NumberField& f) { return f.name == key; });
}

std::string read_fields(const json& object, storage::CycleRecord& record) {
  for (const auto& item : object.items()) {
    if (!known_record_field(item.key())) return "unknown field '" + item.key() + "'";
  }
  const auto cycle = object.find("cycle");
  if (cycle == object.end()) return "missing required field 'cycle'";
  if (auto reason = read_integer(*cycle, "cycle", 1, kMaxCycle, record.cycle); !reason.empty()) {
    return reason;
  }
  const auto qd = object.find("qd_ah");
  if (qd == object.end() || qd->is_null()) return "missing required field 'qd_ah'";
  std::optional<double> qd_ah;
  if (auto reason = read_number(*qd, "qd_ah", qd_ah); !reason.empty()) return reason;
  record.discharge_capacity_ah = *qd_ah;
  for (const NumberField& field : kOptionalNumbers) {
    const auto it = object.find(field.name);
    if (it == object.end()) continue;
    if (auto reason = read_number(*it, field.name, record.*field.member); !reason.empty()) {
      return reason;
    }
  }
  if (const auto at = object.find("measured_at_ms"); at != object.end() && !at->is_null()) {
    std::int64_t ms = 0;
    if (auto reason = read_integer(*at, "measured_at_ms", kMinMeasuredAtMs, kMaxMeasuredAtMs, ms);
        !reason.empty()) {
      return reason;
    }
    record.measured_at_ms = ms;
  }
  return {};
}

}  // namespace

namespace detail {

std::string check_plausible(const storage::CycleRecord& r, double rated_ah) {
  const double max_ah = kMaxCapacityRatio * rated_ah;
  // The capacity ranges name the rated capacity: formatted only for a refused record.
  auto rated = [&] { return "for a cell rated " + format_number(rated_ah) + " Ah"; };
  const auto in_range = [](const std::optional<double>& v, double min, bool min_inclusive,
                           double max) {
    return !v || ((min_inclusive ? *v >= min : *v > min) && *v <= max);
  };
  if (!in_range(r.discharge_capacity_ah, 0.0, false, max_ah)) {
    return check_range(r.discharge_capacity_ah, "qd_ah", 0.0, false, max_ah, "Ah", rated());
  }
  if (!in_range(r.charge_capacity_ah, 0.0, false, max_ah)) {
    return check_range(r.charge_capacity_ah, "qc_ah", 0.0, false, max_ah, "Ah", rated());
  }
  const std::string reasons[] = {
      check_range(r.internal_resistance_ohm, "ir_ohm", 0.0, true, kMaxInternalResistanceOhm, "ohm"),
      check_range(r.temperature_min_c, "tmin_c", kMinTemperatureC, true, kMaxTemperatureC, "C"),
      check_range(r.temperature_avg_c, "tavg_c", kMinTemperatureC, true, kMaxTemperatureC, "C"),
      check_range(r.temperature_max_c, "tmax_c", kMinTemperatureC, true, kMaxTemperatureC, "C"),
      check_range(r.charge_time_min, "chargetime_min", 0.0, false, kMaxChargeTimeMin, "min"),
  };
  for (const auto& reason : reasons) {
    if (!reason.empty()) return reason;
  }
  const auto& lo = r.temperature_min_c;
  const auto& avg = r.temperature_avg_c;
  const auto& hi = r.temperature_max_c;
  if ((lo && avg && *lo > *avg) || (avg && hi && *avg > *hi) || (lo && hi && *lo > *hi)) {
    return "temperatures out of order: need tmin_c <= tavg_c <= tmax_c";
  }
  return {};
}

}  // namespace detail

namespace {

// Validates one record object; on failure fills `rejection` and returns false.
bool parse_record(const json& value, const storage::CellInfo& cell, storage::CycleRecord& record,
                  RecordRejection& rejection) {
  if (!value.is_object()) {
    rejection.record_json = value.dump();
    rejection.reason = "record must be a JSON object, got " + std::string(value.type_name());
    return false;
  }
  std::string reason = read_fields(value, record);
  if (reason.empty()) reason = detail::check_plausible(record, cell.rated_capacity_ah);
  if (reason.empty()) return true;
  if (const auto cycle = value.find("cycle");
      cycle != value.end() && cycle->is_number_integer() && record.cycle >= 1) {
    rejection.cycle = record.cycle;
  }
  // Re-serialised only when refused: valid records are the common case and dump() is costly.
  rejection.record_json = value.dump();
  rejection.reason = std::move(reason);
  return false;
}

// A record of every field is about 200 bytes on the wire.
constexpr std::size_t kSerializedRecordBytes = 224;

// JSON text of a double as nlohmann writes it: the shortest digits that read back to the same
// value, ".0" added to an integral value so that it reads back as a number with a fraction, and
// null for what JSON cannot express (NaN, infinities).
void append_double(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  char text[32];
  const auto written = std::to_chars(std::begin(text), std::end(text), value);
  const std::string_view digits(text, static_cast<std::size_t>(written.ptr - text));
  out += digits;
  if (digits.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void append_integer(std::string& out, std::int64_t value) {
  char text[24];
  const auto written = std::to_chars(std::begin(text), std::end(text), value);
  out.append(text, written.ptr);
}

// One record as a JSON object, written directly (no DOM: the rig serialises every record).
void append_record(std::string& out, const storage::CycleRecord& r) {
  out += R"({"cycle":)";
  append_integer(out, r.cycle);
  out += R"(,"qd_ah":)";
  append_double(out, r.discharge_capacity_ah);
  for (const NumberField& field : kOptionalNumbers) {
    if (const auto& v = r.*field.member; v) {
      out += ",\"";
      out += field.name;
      out += "\":";
      append_double(out, *v);
    }
  }
  if (r.measured_at_ms) {
    out += R"(,"measured_at_ms":)";
    append_integer(out, *r.measured_at_ms);
  }
  out += '}';
}

std::string read_text(const json& object, std::string_view name, std::string& out) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return {};
  if (!it->is_string()) return "field '" + std::string(name) + "' must be a string";
  out = it->get<std::string>();
  if (out.size() > kMaxTextFieldLength) {
    return "field '" + std::string(name) + "' is longer than " +
           std::to_string(kMaxTextFieldLength) + " bytes";
  }
  return {};
}

std::string parse_meta_fields(const json& object, storage::CellInfo& cell) {
  for (const auto& item : object.items()) {
    const std::string& key = item.key();
    if (key != "rated_capacity_ah" && key != "chemistry" && key != "policy" && key != "metadata" &&
        key != "cell_id") {
      return "unknown field '" + key + "'";
    }
  }
  if (const auto id = object.find("cell_id");
      id != object.end() && (!id->is_string() || id->get<std::string>() != cell.cell_id)) {
    return "field 'cell_id' does not match the topic's cell '" + cell.cell_id + "'";
  }
  const auto rated = object.find("rated_capacity_ah");
  if (rated == object.end() || rated->is_null()) {
    return "missing required field 'rated_capacity_ah'";
  }
  std::optional<double> rated_ah;
  if (auto reason = read_number(*rated, "rated_capacity_ah", rated_ah); !reason.empty()) {
    return reason;
  }
  if (auto reason =
          check_range(rated_ah, "rated_capacity_ah", 0.0, false, kMaxRatedCapacityAh, "Ah");
      !reason.empty()) {
    return reason;
  }
  cell.rated_capacity_ah = *rated_ah;
  if (auto reason = read_text(object, "chemistry", cell.chemistry); !reason.empty()) return reason;
  if (auto reason = read_text(object, "policy", cell.charge_policy); !reason.empty()) return reason;
  if (const auto meta = object.find("metadata"); meta != object.end() && !meta->is_null()) {
    if (!meta->is_object()) return "field 'metadata' must be a JSON object";
    cell.metadata_json = meta->dump();
  }
  return {};
}

std::string topic_prefix(std::string_view rig_id) {
  return std::string(kTopicRoot) + "/" + std::string(kRigsSegment) + "/" + std::string(rig_id);
}

std::string topic_of(const Topic& topic) {
  switch (topic.kind) {
    case TopicKind::kCycles:
      return cycles_topic(topic.rig_id, topic.cell_id);
    case TopicKind::kCellMeta:
      return meta_topic(topic.rig_id, topic.cell_id);
    case TopicKind::kAcks:
      return acks_topic(topic.rig_id);
  }
  return {};
}

}  // namespace

// ---- topics ---------------------------------------------------------------------------------

Result<Topic> parse_topic(std::string_view topic) {
  if (topic.substr(0, kTopicRoot.size()) != kTopicRoot ||
      topic.substr(kTopicRoot.size(), 1) != "/") {
    return invalid("topic does not start with '" + std::string(kTopicRoot) + "/'");
  }
  const auto parts = split(topic.substr(kTopicRoot.size() + 1), '/');
  if (parts.size() < 3 || parts[0] != kRigsSegment) {
    return invalid("topic must be " + std::string(kTopicRoot) + "/rigs/{rig}/...");
  }
  Topic out;
  if (auto reason = check_id(parts[1]); !reason.empty()) return invalid("rig " + reason);
  out.rig_id = std::string(parts[1]);
  if (parts.size() == 3 && parts[2] == "acks") {
    out.kind = TopicKind::kAcks;
    return out;
  }
  if (parts.size() != 5 || parts[2] != kCellsSegment) {
    return invalid("topic must be " + std::string(kTopicRoot) +
                   "/rigs/{rig}/cells/{cell}/{cycles|meta} or .../rigs/{rig}/acks");
  }
  if (auto reason = check_id(parts[3]); !reason.empty()) return invalid("cell " + reason);
  out.cell_id = std::string(parts[3]);
  if (parts[4] == "cycles") {
    out.kind = TopicKind::kCycles;
  } else if (parts[4] == "meta") {
    out.kind = TopicKind::kCellMeta;
  } else {
    return invalid("unknown record kind '" + std::string(parts[4]) + "' (expected cycles or meta)");
  }
  return out;
}

std::string cycles_topic(std::string_view rig_id, std::string_view cell_id) {
  return topic_prefix(rig_id) + "/cells/" + std::string(cell_id) + "/cycles";
}
std::string meta_topic(std::string_view rig_id, std::string_view cell_id) {
  return topic_prefix(rig_id) + "/cells/" + std::string(cell_id) + "/meta";
}
std::string acks_topic(std::string_view rig_id) {
  return topic_prefix(rig_id) + "/acks";
}
std::string status_topic(std::string_view client_id) {
  return std::string(kTopicRoot) + "/daemons/" + std::string(client_id) + "/status";
}

Status parse_status(std::string_view payload) {
  Status status;
  const std::size_t space = payload.find(' ');
  status.state = std::string(payload.substr(0, space));
  if (space == std::string_view::npos) return status;
  const std::string_view id = payload.substr(space + 1);
  if (check_id(id).empty()) status.start_id = std::string(id);
  return status;
}

std::string cycles_subscription() {
  return std::string(kTopicRoot) + "/rigs/+/cells/+/cycles";
}
std::string meta_subscription() {
  return std::string(kTopicRoot) + "/rigs/+/cells/+/meta";
}

// ---- cycle records --------------------------------------------------------------------------

Result<ParsedCycles> parse_cycles_payload(std::string_view payload, const Topic& topic,
                                          const storage::CellInfo* cell, const Limits& limits) {
  if (topic.kind == TopicKind::kCycles && cell != nullptr) {
    const std::string source = "mqtt:" + topic_of(topic);
    if (auto fast = detail::parse_cycles_fast(payload, topic, *cell, limits, source)) {
      return std::move(*fast);
    }
  }
  return parse_cycles_payload_reference(payload, topic, cell, limits);
}

Result<ParsedCycles> parse_cycles_payload_reference(std::string_view payload, const Topic& topic,
                                                    const storage::CellInfo* cell,
                                                    const Limits& limits) {
  if (topic.kind != TopicKind::kCycles) return invalid("not a cycles topic");
  auto parsed_json = parse_json(payload, limits);
  if (!parsed_json) return parsed_json.error();
  const json& root = *parsed_json;
  if (!root.is_object() && !root.is_array()) {
    return invalid("payload must be a JSON object or an array of objects, got " +
                   std::string(root.type_name()));
  }
  if (root.is_array() && root.empty()) return invalid("empty array: no records");
  if (root.is_array() && root.size() > limits.max_records_per_message) {
    return invalid(std::to_string(root.size()) + " records in one message exceed the limit of " +
                   std::to_string(limits.max_records_per_message));
  }
  if (cell == nullptr) {
    return invalid("unknown cell '" + topic.cell_id + "': publish its metadata on " +
                   meta_topic(topic.rig_id, topic.cell_id) + " first");
  }
  ParsedCycles out;
  const std::string source = "mqtt:" + topic_of(topic);
  std::set<std::int64_t> seen;
  auto take = [&](const json& value) {
    storage::CycleRecord record;
    RecordRejection rejection;
    if (!parse_record(value, *cell, record, rejection)) {
      out.rejected.push_back(std::move(rejection));
      return;
    }
    if (!seen.insert(record.cycle).second) {
      rejection.record_json = value.dump();
      rejection.cycle = record.cycle;
      rejection.reason = "cycle " + std::to_string(record.cycle) + " appears twice in one message";
      out.rejected.push_back(std::move(rejection));
      return;
    }
    record.cell_id = topic.cell_id;
    record.source = source;
    out.records.push_back(std::move(record));
  };
  if (root.is_object()) {
    take(root);
  } else {
    out.records.reserve(root.size());
    for (const json& value : root)
      take(value);
  }
  return out;
}

std::string serialize_cycle(const storage::CycleRecord& record) {
  std::string out;
  out.reserve(kSerializedRecordBytes);
  append_record(out, record);
  return out;
}

std::string serialize_cycles(std::span<const storage::CycleRecord> records) {
  std::string out;
  out.reserve(2 + records.size() * (kSerializedRecordBytes + 1));
  out += '[';
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (i > 0) out += ',';
    append_record(out, records[i]);
  }
  out += ']';
  return out;
}

// ---- cell metadata --------------------------------------------------------------------------

Result<storage::CellInfo> parse_cell_meta(std::string_view payload, const Topic& topic,
                                          const Limits& limits) {
  if (topic.kind != TopicKind::kCellMeta) return invalid("not a meta topic");
  auto parsed_json = parse_json(payload, limits);
  if (!parsed_json) return parsed_json.error();
  if (!parsed_json->is_object()) {
    return invalid("cell metadata must be a JSON object, got " +
                   std::string(parsed_json->type_name()));
  }
  storage::CellInfo cell;
  cell.cell_id = topic.cell_id;
  cell.rig_id = topic.rig_id;
  if (auto reason = parse_meta_fields(*parsed_json, cell); !reason.empty()) {
    return invalid(std::move(reason));
  }
  return cell;
}

std::string serialize_cell_meta(const storage::CellInfo& cell) {
  json out = json::object();
  out["rated_capacity_ah"] = cell.rated_capacity_ah;
  if (!cell.chemistry.empty()) out["chemistry"] = cell.chemistry;
  if (!cell.charge_policy.empty()) out["policy"] = cell.charge_policy;
  if (!cell.metadata_json.empty() && cell.metadata_json != "{}") {
    // Stored text, but possibly older than the nesting limit: what fails it is left out.
    if (auto metadata = parse_bounded_json(cell.metadata_json, cell.metadata_json.size())) {
      out["metadata"] = std::move(*metadata);
    }
  }
  return out.dump();
}

std::optional<std::string> forecast_topic(std::string_view cell_id) {
  if (!check_id(cell_id).empty()) return std::nullopt;
  return std::string(kTopicRoot) + "/cells/" + std::string(cell_id) + "/forecasts";
}

namespace {

// The first cycle after at_cycle whose value is below eol_soh (NaN never is).
std::optional<std::int64_t> first_cycle_below(const std::vector<float>& values,
                                              std::int64_t at_cycle, double eol_soh) {
  for (std::size_t j = 0; j < values.size(); ++j) {
    if (values[j] < eol_soh) return at_cycle + static_cast<std::int64_t>(j) + 1;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::int64_t> forecast_eol_cycle(const storage::ForecastRecord& forecast,
                                               double eol_soh) {
  return first_cycle_below(forecast.soh, forecast.at_cycle, eol_soh);
}

ForecastEol forecast_eol_interval(const storage::ForecastRecord& forecast, double eol_soh) {
  return {first_cycle_below(forecast.lower, forecast.at_cycle, eol_soh),
          forecast_eol_cycle(forecast, eol_soh),
          first_cycle_below(forecast.upper, forecast.at_cycle, eol_soh)};
}

std::string serialize_forecast(const storage::ForecastRecord& f) {
  const auto value_or_null = [](float v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  const auto values = [&](const std::vector<float>& of) {
    json out = json::array();
    for (float v : of)
      out.push_back(value_or_null(v));
    return out;
  };
  const auto eol = forecast_eol_cycle(f);
  json payload{{"cell", f.cell_id},
               {"at_cycle", f.at_cycle},
               {"model_version", f.model_version},
               {"origin", f.origin},
               {"horizon", f.soh.size()},
               {"soh_at_10", f.soh.size() >= 10 ? value_or_null(f.soh[9]) : json(nullptr)},
               {"soh_at_h", f.soh.empty() ? json(nullptr) : value_or_null(f.soh.back())},
               {"eol_cycle", eol ? json(*eol) : json(nullptr)},
               {"soh", values(f.soh)}};
  if (!f.lower.empty()) {
    const auto cycle_or_null = [](std::optional<std::int64_t> c) {
      return c ? json(*c) : json(nullptr);
    };
    const ForecastEol interval = forecast_eol_interval(f);
    payload["lower"] = values(f.lower);
    payload["upper"] = values(f.upper);
    payload["eol_interval"] = {{"earliest", cycle_or_null(interval.earliest)},
                               {"latest", cycle_or_null(interval.latest)}};
  }
  return payload.dump();
}

std::string champion_topic() {
  return std::string(kTopicRoot) + "/models/champion";
}

std::string alerts_topic() {
  return std::string(kTopicRoot) + "/alerts";
}

}  // namespace cyclecast::protocol
