// `cyclecast status|cells|forecast|models ...|retrain`: the operator's side of cyclecastd's HTTP
// API (docs/api.md). The transport is cyclecast::http's ApiClient; this file maps commands to
// requests and answers to tables (or, with --json, the API's JSON as is).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "cyclecast/bounded_json.h"
#include "cyclecast/http/client.h"

namespace cyclecast::cli {
namespace {

using nlohmann::json;

// Exit codes of the API commands (docs/api.md): 0 ok, 1 the API answered with an error,
// 2 bad command line, 3 the API could not be reached.
constexpr int kExitApiError = 1;
constexpr int kExitUnreachable = 3;

struct ApiFlags {
  std::string api;
  std::string token_file;
  bool json_output = false;
  std::string cell;
  std::string version;
  std::string out;
  std::string why;
  std::string rig;
};

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Percent-encodes all but RFC 3986 unreserved characters, so any argument is one path segment.
std::string path_segment(const std::string& text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += {'%', kDigits[byte >> 4], kDigits[byte & 15]};
    }
  }
  return out;
}

// The token for mutating calls; empty when the file cannot be read (the API then answers 401,
// which is the message the operator needs).
std::string read_token(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  const auto last = token.find_last_not_of(" \t\r\n");
  token.erase(last == std::string::npos ? 0 : last + 1);
  return token;
}

std::string who_am_i() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return env_or("USER", "unknown") + "@" + (host[0] != '\0' ? host : "localhost");
}

// --- printing ---------------------------------------------------------------------------------

std::string text_of(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    std::ostringstream out;
    out << value.get<double>();
    return out.str();
  }
  return value.dump();
}

std::string fixed(const json& value, int decimals) {
  if (!value.is_number()) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value.get<double>());
  return buffer;
}

std::string soh_of(const json& value) {
  return fixed(value, 3);
}

// Times are ISO-8601 UTC strings in the API; a number is taken as Unix seconds.
std::string time_of(const json& value) {
  if (!value.is_number()) return text_of(value);
  const auto seconds = static_cast<std::time_t>(value.get<double>());
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

const json& field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

// Columns padded to their widest cell, two spaces apart.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  }
}

// "key: value" lines, nested objects as dotted keys, arrays as JSON.
void print_fields(const json& object, const std::string& prefix = "") {
  for (const auto& [key, value] : object.items()) {
    if (value.is_object() && !value.empty()) {
      print_fields(value, prefix + key + ".");
    } else {
      const bool is_time = key.size() > 3 && key.compare(key.size() - 3, 3, "_at") == 0;
      std::cout << prefix << key << ": " << (is_time ? time_of(value) : text_of(value)) << '\n';
    }
  }
}

// --- calling the API -------------------------------------------------------------------------

// One command's connection to the API and how its failures become exit codes.
class Api {
 public:
  explicit Api(const ApiFlags& flags) : flags_(flags) {}

  // False (with the exit code set) when the client cannot be made.
  bool open(bool with_token) {
    http::ClientOptions options;
    options.base_url = flags_.api;
    if (with_token) options.token = read_token(flags_.token_file);
    token_missing_ = with_token && options.token.empty();
    auto client = http::ApiClient::create(std::move(options));
    if (!client) {
      std::cerr << "cyclecast: " << client.error().message << '\n';
      exit_code_ = kExitUsage;
      return false;
    }
    client_.emplace(std::move(*client));
    return true;
  }

  // The JSON of a 2xx answer (any status when `any_status`); nothing, with the exit code set
  // and the reason printed, otherwise.
  std::optional<json> get(const std::string& path, bool any_status = false) {
    return answer(client_->get(path), any_status);
  }
  std::optional<json> post(const std::string& path, const json& body) {
    return answer(client_->post(path, body), false);
  }

  const http::ApiClient& client() const { return *client_; }
  int exit_code() const { return exit_code_; }

  int fail(const Error& error) {
    std::cerr << "cyclecast: " << error.message << '\n';
    exit_code_ = error.code == ErrorCode::kIo ? kExitUnreachable : kExitApiError;
    return exit_code_;
  }
  int fail(const http::Response& response) {
    std::cerr << "cyclecast: " << response.error_message() << " (HTTP " << response.status << ")\n";
    if (response.status == 401 && token_missing_) {
      std::cerr << "cyclecast: no token was read from " << flags_.token_file
                << " (--token-file or $CYCLECAST_API_TOKEN_FILE)\n";
    }
    exit_code_ = kExitApiError;
    return exit_code_;
  }

 private:
  std::optional<json> answer(Result<http::Response> response, bool any_status) {
    if (!response) {
      fail(response.error());
      return std::nullopt;
    }
    if (!any_status && !response->ok()) {
      fail(*response);
      return std::nullopt;
    }
    // The client bounded the body's size (ClientOptions::max_response_bytes).
    auto parsed = parse_bounded_json(response->body, response->body.size());
    if (!parsed) {
      std::cerr << "cyclecast: the API answered something that is not JSON (HTTP "
                << response->status << "): " << parsed.error().message << "\n";
      exit_code_ = kExitApiError;
      return std::nullopt;
    }
    return std::move(*parsed);
  }

  const ApiFlags& flags_;
  std::optional<http::ApiClient> client_;
  bool token_missing_ = false;
  int exit_code_ = kExitOk;
};

void print_json(const json& value) {
  std::cout << value.dump(2) << '\n';
}

// --- commands ----------------------------------------------------------------------------------

int run_status(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const auto health = api.get("/healthz", true);
  if (!health) return api.exit_code();
  if (flags.json_output) {
    print_json(*health);
    return kExitOk;
  }
  std::cout << "cyclecastd at " << flags.api << ": " << text_of(field(*health, "status")) << '\n';
  for (const auto& problem : field(*health, "problems"))
    std::cout << "  problem: " << text_of(problem) << '\n';
  for (const auto& [key, value] : health->items()) {
    // The champion gets its own line below, with its date.
    if (key != "status" && key != "problems" && key != "champion" && !value.is_structured()) {
      std::cout << "  " << key << ": " << text_of(value) << '\n';
    }
  }
  const auto models = api.get("/api/v1/models");
  if (!models) return api.exit_code();
  for (const auto& model : *models) {
    if (field(model, "status") == "champion") {
      std::cout << "  champion: " << text_of(field(model, "version")) << " (since "
                << time_of(field(model, "created_at")) << ")\n";
    }
  }
  const auto runs = api.get("/api/v1/runs");
  if (!runs) return api.exit_code();
  if (runs->is_array() && !runs->empty()) {
    const json& run = runs->front();
    std::cout << "  latest run: " << text_of(field(run, "id")) << " "
              << text_of(field(run, "status")) << ", stage " << text_of(field(run, "stage"))
              << ", progress " << fixed(field(run, "progress"), 2) << ", started "
              << time_of(field(run, "started_at")) << '\n';
  }
  return kExitOk;
}

std::vector<std::string> forecast_columns(const json& forecast) {
  return {text_of(field(forecast, "at_cycle")), text_of(field(forecast, "model_version")),
          text_of(field(forecast, "origin")),   soh_of(field(forecast, "soh_10")),
          soh_of(field(forecast, "soh_100")),   text_of(field(forecast, "eol_cycle"))};
}

int run_cells(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const auto cells = api.get("/api/v1/cells");
  if (!cells) return api.exit_code();
  if (flags.json_output) {
    print_json(*cells);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows{{"CELL", "RIG", "CYCLES", "LAST", "SOH", "FORECAST_AT",
                                              "MODEL", "ORIGIN", "SOH+10", "SOH+100", "EOL"}};
  for (const auto& cell : *cells) {
    std::vector<std::string> row{text_of(field(cell, "cell_id")), text_of(field(cell, "rig_id")),
                                 text_of(field(cell, "cycles")), text_of(field(cell, "last_cycle")),
                                 soh_of(field(cell, "soh"))};
    const json& forecast = field(cell, "forecast");
    if (forecast.is_object()) {
      for (auto& column : forecast_columns(forecast))
        row.push_back(std::move(column));
    } else {
      row.insert(row.end(), {"-", "-", "-", "-", "-", "-"});
    }
    rows.push_back(std::move(row));
  }
  print_table(rows);
  return kExitOk;
}

int run_forecast(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const auto detail = api.get("/api/v1/cells/" + path_segment(flags.cell));
  if (!detail) return api.exit_code();
  if (flags.json_output) {
    print_json(*detail);
    return kExitOk;
  }
  const json& cell = field(*detail, "cell");
  const json& cycles = field(*detail, "cycles");
  std::cout << "cell " << text_of(field(cell, "cell_id")) << " (rig "
            << text_of(field(cell, "rig_id")) << "): " << text_of(field(cell, "cycles"))
            << " cycles";
  if (cycles.is_array() && !cycles.empty()) {
    std::cout << ", last " << text_of(field(cycles.back(), "cycle")) << " at SOH "
              << soh_of(field(cycles.back(), "soh"));
  }
  std::cout << '\n';
  const json& forecasts = field(*detail, "forecasts");
  if (!forecasts.is_array() || forecasts.empty()) {
    std::cout << "no forecasts";
    if (field(*detail, "note").is_string()) std::cout << ": " << text_of(field(*detail, "note"));
    std::cout << '\n';
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows{
      {"AT_CYCLE", "MODEL", "ORIGIN", "SOH+10", "SOH+100", "EOL", "ERR+10", "ERR+100"}};
  for (const auto& forecast : forecasts) {
    auto row = forecast_columns(forecast);
    row.push_back(fixed(field(forecast, "error_10"), 4));
    row.push_back(fixed(field(forecast, "error_100"), 4));
    rows.push_back(std::move(row));
  }
  print_table(rows);
  return kExitOk;
}

int run_models_list(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const auto models = api.get("/api/v1/models");
  if (!models) return api.exit_code();
  if (flags.json_output) {
    print_json(*models);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows{{"VERSION", "STATUS", "CREATED", "RUN", "MAE", "FLASH",
                                              "RAM", "FOOTPRINT", "LIVE+100", "BUNDLE"}};
  for (const auto& model : *models) {
    const json& metrics = field(model, "metrics");
    const json& footprint = field(model, "footprint");
    rows.push_back({text_of(field(model, "version")), text_of(field(model, "status")),
                    time_of(field(model, "created_at")), text_of(field(model, "run")),
                    fixed(field(metrics, "mae"), 4), text_of(field(footprint, "flash_bytes")),
                    text_of(field(footprint, "ram_bytes")), text_of(field(footprint, "kind")),
                    fixed(field(field(model, "live_error"), "mae_100"), 4),
                    text_of(field(field(model, "bundle"), "bytes"))});
  }
  print_table(rows);
  return kExitOk;
}

int run_models_show(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const auto model = api.get("/api/v1/models/" + path_segment(flags.version));
  if (!model) return api.exit_code();
  if (flags.json_output) {
    print_json(*model);
  } else {
    print_fields(*model);
  }
  return kExitOk;
}

int run_models_pull(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  const std::string base = "/api/v1/models/" + path_segment(flags.version);
  const auto model = api.get(base);
  if (!model) return api.exit_code();
  const json& sha256 = field(field(*model, "bundle"), "sha256");
  std::optional<std::string> expected;
  if (sha256.is_string()) expected = sha256.get<std::string>();
  const std::string out = flags.out.empty() ? flags.version + ".ccb" : flags.out;
  http::Response response;
  auto download = api.client().download(base + "/bundle", out, expected, response);
  if (!download) return api.fail(download.error());
  if (!response.ok()) return api.fail(response);
  if (flags.json_output) {
    print_json(json{{"file", out},
                    {"bytes", download->bytes},
                    {"sha256", download->sha256_hex},
                    {"verified", expected.has_value()}});
  } else {
    std::cout << "wrote " << out << ": model " << flags.version << ", " << download->bytes
              << " bytes, sha256 " << download->sha256_hex
              << (expected ? " (matches the registry)" : " (the API gave no sha256 to check)")
              << '\n';
  }
  return kExitOk;
}

json caller_body(const ApiFlags& flags) {
  json body{{"who", who_am_i()}};
  if (!flags.why.empty()) body["why"] = flags.why;
  return body;
}

int run_mutation(const ApiFlags& flags, const std::string& path, const char* done) {
  Api api(flags);
  if (!api.open(true)) return api.exit_code();
  const auto result = api.post(path, caller_body(flags));
  if (!result) return api.exit_code();
  if (flags.json_output) {
    print_json(*result);
  } else {
    std::cout << done << '\n';
    print_fields(*result, "  ");
  }
  return kExitOk;
}

void add_common_options(CLI::App& command, ApiFlags& flags) {
  command.add_option("--api", flags.api, "API base URL (env CYCLECAST_API)")->capture_default_str();
  command
      .add_option("--token-file", flags.token_file,
                  "bearer token for changes (env CYCLECAST_API_TOKEN_FILE)")
      ->capture_default_str();
  command.add_flag("--json", flags.json_output, "print the API's JSON (for scripts)");
}

// Registers `name` under `parent` with the common options and a callback running `run`.
CLI::App* add_api_command(CLI::App& parent, const std::string& name, const std::string& help,
                          const std::shared_ptr<ApiFlags>& flags, GlobalOptions& global,
                          int (*run)(const ApiFlags&)) {
  CLI::App* command = parent.add_subcommand(name, help);
  add_common_options(*command, *flags);
  command->callback([flags, &global, run] { global.exit_code = run(*flags); });
  return command;
}

int run_promote(const ApiFlags& flags) {
  return run_mutation(flags, "/api/v1/models/" + path_segment(flags.version) + "/promote",
                      ("promoted " + flags.version).c_str());
}
int run_rollback(const ApiFlags& flags) {
  return run_mutation(flags, "/api/v1/rollback", "rolled back");
}
int run_cell_move(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(true)) return api.exit_code();
  json body = caller_body(flags);
  body["rig"] = flags.rig;
  const auto result = api.post("/api/v1/cells/" + path_segment(flags.cell) + "/move", body);
  if (!result) return api.exit_code();
  if (flags.json_output) {
    print_json(*result);
  } else {
    std::cout << "moved " << flags.cell << " to " << flags.rig << '\n';
    print_fields(*result, "  ");
  }
  return kExitOk;
}
int run_retrain(const ApiFlags& flags) {
  return run_mutation(flags, "/api/v1/retrain", "retraining started (follow it: cyclecast status)");
}

}  // namespace

void add_api_commands(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<ApiFlags>();
  flags->api = env_or("CYCLECAST_API", "http://127.0.0.1:8080");
  flags->token_file = env_or("CYCLECAST_API_TOKEN_FILE", "/etc/cyclecast/api-token");

  add_api_command(app, "status", "cyclecastd's health, champion model and latest run (API)", flags,
                  global, run_status);
  add_api_command(app, "cells", "cells with their latest SOH and forecast (API)", flags, global,
                  run_cells);
  add_api_command(app, "forecast", "a cell's history and forecasts (API)", flags, global,
                  run_forecast)
      ->add_option("cell", flags->cell, "cell id")
      ->required();
  add_api_command(app, "retrain", "start a retraining run now (API, token)", flags, global,
                  run_retrain)
      ->add_option("--why", flags->why, "reason, recorded with the run");

  CLI::App* cell = app.add_subcommand("cell", "change a cell (API)");
  cell->require_subcommand(1);
  CLI::App* move = add_api_command(*cell, "move", "register a cell to another rig (token)", flags,
                                   global, run_cell_move);
  move->add_option("cell", flags->cell, "cell id")->required();
  move->add_option("rig", flags->rig, "the rig it belongs to from now on")->required();
  move->add_option("--why", flags->why, "reason, logged with the move");

  CLI::App* models = app.add_subcommand("models", "the model registry (API)");
  models->require_subcommand(1);
  add_api_command(*models, "list", "models with status, metrics and footprint", flags, global,
                  run_models_list);
  add_api_command(*models, "show", "one model in full", flags, global, run_models_show)
      ->add_option("version", flags->version, "model version")
      ->required();
  CLI::App* pull = add_api_command(*models, "pull", "download a model's signed bundle", flags,
                                   global, run_models_pull);
  pull->add_option("version", flags->version, "model version")->required();
  pull->add_option("--out", flags->out, "file to write (default VERSION.ccb)");
  CLI::App* promote = add_api_command(*models, "promote", "make a model the champion (token)",
                                      flags, global, run_promote);
  promote->add_option("version", flags->version, "model version")->required();
  promote->add_option("--why", flags->why, "reason, recorded with the promotion");
  add_api_command(*models, "rollback", "return to the previous champion (token)", flags, global,
                  run_rollback)
      ->add_option("--why", flags->why, "reason, recorded with the rollback");
}

}  // namespace cyclecast::cli
