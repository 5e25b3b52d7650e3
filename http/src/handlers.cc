#include "handlers.h"

#include <algorithm>
#include <exception>
#include <vector>

#include "cyclecast/bounded_json.h"
#include "openapi.h"

namespace cyclecast::http {
namespace {

namespace bhttp = boost::beast::http;
using nlohmann::json;

constexpr std::size_t kMaxWhoBytes = 128;
constexpr std::size_t kMaxWhyBytes = 1024;
constexpr std::size_t kMaxShownFieldBytes = 64;  // of an unknown field's name in an error

// Invalid UTF-8 from the backend is replaced rather than thrown on: a bad cell id in the
// database must not make the whole listing fail.
std::string to_text(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

Reply json_reply(unsigned status, const json& value) {
  Reply reply;
  reply.status = status;
  reply.body = to_text(value);
  return reply;
}

Reply from_json(Result<json> result) {
  if (!result) return error_reply(status_for(result.error().code), result.error().message);
  return json_reply(200, *result);
}

// Only characters that need no quoting in Content-Disposition; anything else becomes '_'.
std::string safe_file_name(const std::filesystem::path& path) {
  std::string name = path.filename().string();
  for (char& c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return name.empty() ? std::string("download") : name;
}

Reply from_file(Result<std::filesystem::path> path, const std::string& content_type,
                bool attachment) {
  if (!path) return error_reply(status_for(path.error().code), path.error().message);
  Reply reply;
  reply.content_type = content_type;
  boost::beast::error_code ec;
  reply.file.emplace();
  reply.file->open(path->c_str(), boost::beast::file_mode::scan, ec);
  if (ec) return error_reply(404, "cannot open " + path->filename().string() + ": " + ec.message());
  if (attachment) {
    reply.headers.emplace_back("Content-Disposition",
                               "attachment; filename=\"" + safe_file_name(*path) + "\"");
  }
  return reply;
}

bool is_printable(const std::string& text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

Result<std::string> text_field(const json& body, const char* key, std::size_t max_bytes) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, std::string("\"") + key + "\" must be a string");
  }
  std::string text = it->get<std::string>();
  if (text.size() > max_bytes || !is_printable(text)) {
    return make_error(ErrorCode::kInvalidArgument, std::string("\"") + key +
                                                       "\" must be printable and at most " +
                                                       std::to_string(max_bytes) + " bytes");
  }
  return text;
}

// Refuses fields the endpoint does not take, naming every one and the fields it does take.
Result<void> only_known_fields(const json& body, std::initializer_list<std::string_view> extra) {
  std::vector<std::string_view> known = {"who", "why"};
  known.insert(known.end(), extra.begin(), extra.end());
  std::string unknown;
  std::size_t count = 0;
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    // The key comes from the client: dumped as a JSON string, so it is quoted and escaped, and
    // cut short (a cut inside a UTF-8 sequence is replaced), so the answer stays small.
    const std::string shown =
        key.size() > kMaxShownFieldBytes ? key.substr(0, kMaxShownFieldBytes) + "..." : key;
    unknown.append(count++ > 0 ? ", " : "")
        .append(json(shown).dump(-1, ' ', false, json::error_handler_t::replace));
  }
  if (count == 0) return {};
  std::string expected;
  for (const std::string_view name : known)
    expected.append(expected.empty() ? "" : ", ").append("\"").append(name).append("\"");
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(count > 1 ? "unknown fields " : "unknown field ") + unknown +
                        " in the body; this endpoint takes " + expected);
}

Reply health(ApiBackend& backend) {
  const json value = backend.health();
  const bool ok = value.is_object() && value.value("status", "") == "ok";
  return json_reply(ok ? 200 : 503, value);
}

Reply metrics(ApiBackend& backend) {
  Reply reply;
  reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
  reply.body = backend.metrics();
  return reply;
}

// The description is the server's own: no backend call, no token.
Reply openapi() {
  Reply reply;
  reply.body = std::string(openapi_document());
  return reply;
}

Reply route_to_handler(ApiBackend& backend, const Route& route, const Caller& caller) {
  switch (route.id) {
    case RouteId::kHealth:
      return health(backend);
    case RouteId::kMetrics:
      return metrics(backend);
    case RouteId::kCells:
      return from_json(backend.cells());
    case RouteId::kCell:
      return from_json(backend.cell(route.name));
    case RouteId::kModels:
      return from_json(backend.models());
    case RouteId::kModel:
      return from_json(backend.model(route.name));
    case RouteId::kBundle:
      return from_file(backend.bundle_file(route.name), "application/octet-stream", true);
    case RouteId::kPromote:
      return from_json(backend.promote(route.name, caller));
    case RouteId::kRuns:
      return from_json(backend.runs());
    case RouteId::kRun:
      return from_json(backend.run(route.run_id));
    case RouteId::kReport:
      return from_file(backend.run_report(route.run_id), "text/html; charset=utf-8", false);
    case RouteId::kRetrain:
      return from_json(backend.retrain(caller));
    case RouteId::kRollback:
      return from_json(backend.rollback(caller));
    case RouteId::kCellMove:
      return from_json(backend.move_cell(route.name, route.rig, caller));
    case RouteId::kNodes:
      return from_json(backend.nodes());
    case RouteId::kOpenApi:
      return openapi();
  }
  return error_reply(500, "unhandled route");
}

}  // namespace

Reply error_reply(unsigned status, const std::string& message) {
  return json_reply(status, json{{"error", message}});
}

unsigned status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParse:
      return 400;
    case ErrorCode::kConflict:
      return 409;
    default:
      return 500;
  }
}

Result<Caller> parse_caller(const std::string& body,
                            std::initializer_list<std::string_view> extra_fields) {
  Caller caller;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return caller;
  // The server already bounded the body's size (ServerOptions::max_body_bytes).
  const auto parsed = parse_bounded_json(body, body.size());
  if (!parsed || !parsed->is_object()) {
    const std::string detail = parsed ? "" : " (" + parsed.error().message + ")";
    return make_error(
        ErrorCode::kInvalidArgument,
        "the body must be empty or a JSON object {\"who\": ..., \"why\": ...}" + detail);
  }
  if (auto known = only_known_fields(*parsed, extra_fields); !known) return known.error();
  auto who = text_field(*parsed, "who", kMaxWhoBytes);
  if (!who) return who.error();
  auto why = text_field(*parsed, "why", kMaxWhyBytes);
  if (!why) return why.error();
  if (!who->empty()) caller.who = std::move(*who);
  caller.why = std::move(*why);
  return caller;
}

Result<std::string> parse_move_rig(const std::string& body) {
  // The server already bounded the body's size (ServerOptions::max_body_bytes).
  const auto parsed = parse_bounded_json(body, body.size());
  const auto rig = parsed && parsed->is_object() ? parsed->find("rig") : json::const_iterator{};
  if (!parsed || !parsed->is_object() || rig == parsed->end() || !rig->is_string() ||
      !is_valid_name(rig->get<std::string>())) {
    return make_error(ErrorCode::kInvalidArgument,
                      "moving a cell needs {\"rig\": RIG} with 1 to 64 of A-Z a-z 0-9 . _ -, "
                      "not starting with '.'");
  }
  return rig->get<std::string>();
}

Reply handle(ApiBackend& backend, const Route& route, const Caller& caller) {
  try {
    return route_to_handler(backend, route, caller);
  } catch (const std::exception& e) {
    return error_reply(500, std::string("internal error: ") + e.what());
  }
}

}  // namespace cyclecast::http
