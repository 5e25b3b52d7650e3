// `cyclecast status|cells|forecast|models ...|cell move`: the operator's side of cyclecastd's
// HTTP API (docs/api.md). The transport is cyclecast::http's ApiClient (api_support.h); this file
// maps commands to requests and answers to tables (or, with --json, the API's JSON as is). Runs
// and retraining: runs_command.cc.
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api_support.h"
#include "commands.h"

namespace cyclecast::cli {
namespace {

using nlohmann::json;

// The latest event that made `model` champion ("promoted": by the gate, by hand, or as the
// target of a rollback); null when its events do not say.
const json& promotion_of(const json& model) {
  static const json kNull;
  const json& events = field(model, "events");
  if (!events.is_array()) return kNull;
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (field(*it, "action") == "promoted") return *it;
  }
  return kNull;
}

// "  champion: m-2 (promoted 2026-11-30T12:00:00Z by ana: beats m-1)", from the champion's
// events; its creation time only when no event says when it was promoted.
bool print_champion(Api& api, const std::string& version) {
  const auto model = api.get("/api/v1/models/" + path_segment(version));
  if (!model) return false;
  const json& promoted = promotion_of(*model);
  std::cout << "  champion: " << version;
  if (promoted.is_object()) {
    std::cout << " (promoted " << time_of(field(promoted, "at")) << " by "
              << text_of(field(promoted, "actor"));
    const std::string reason =
        field(promoted, "reason").is_string() ? field(promoted, "reason").get<std::string>() : "";
    if (!reason.empty()) std::cout << ": " << reason;
    std::cout << ")\n";
  } else {
    std::cout << " (created " << time_of(field(*model, "created_at"))
              << "; no promotion recorded)\n";
  }
  return true;
}

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
    if (field(model, "status") == "champion" && field(model, "version").is_string() &&
        !print_champion(api, field(model, "version").get<std::string>())) {
      return api.exit_code();
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
  TableRows rows{{"CELL", "RIG", "CYCLES", "LAST", "SOH", "FORECAST_AT", "MODEL", "ORIGIN",
                  "SOH+10", "SOH+100", "EOL"}};
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

// "lower..upper" of a forecast's prediction interval at a step (`lower_10`, `upper_10`, ...);
// "-" for a forecast without one.
std::string range_of(const json& forecast, const char* lower, const char* upper) {
  const json& interval = field(forecast, "interval");
  if (!interval.is_object()) return "-";
  return soh_of(field(interval, lower)) + ".." + soh_of(field(interval, upper));
}

// The cycles at which the interval's lower and upper bounds fall under the end-of-life SOH:
// "-" without an interval, "beyond" when even the lower bound stays above within the horizon,
// "598..open" when only the upper one does (the cell may last longer than forecast).
std::string eol_range_of(const json& forecast) {
  const json& eol = field(forecast, "eol");
  if (!field(forecast, "interval").is_object() || !eol.is_object()) return "-";
  const json& earliest = field(eol, "earliest");
  if (!earliest.is_number_integer()) return "beyond";
  const json& latest = field(eol, "latest");
  return text_of(earliest) + ".." + (latest.is_number_integer() ? text_of(latest) : "open");
}

int run_forecast(const ApiFlags& flags) {
  Api api(flags);
  if (!api.open(false)) return api.exit_code();
  auto detail = api.get("/api/v1/cells/" + path_segment(flags.cell));
  if (!detail) return api.exit_code();
  // The API gives the newest 100, newest first: --last keeps the first N of them.
  json& all = (*detail)["forecasts"];
  const std::size_t total = all.is_array() ? all.size() : 0;
  if (flags.last > 0 && total > static_cast<std::size_t>(flags.last)) {
    all.erase(all.begin() + flags.last, all.end());
  }
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
  TableRows rows{{"AT_CYCLE", "MODEL", "ORIGIN", "SOH+10", "RANGE+10", "SOH+100", "RANGE+100",
                  "EOL", "EOL_RANGE", "ERR+10", "ERR+100"}};
  const json* eol_soh = nullptr;  // of the newest forecast with an interval
  for (const auto& forecast : forecasts) {
    auto row = forecast_columns(forecast);  // at, model, origin, +10, +100, eol
    row.insert(row.begin() + 4, range_of(forecast, "lower_10", "upper_10"));
    row.insert(row.begin() + 6, range_of(forecast, "lower_100", "upper_100"));
    row.push_back(eol_range_of(forecast));
    row.push_back(fixed(field(forecast, "error_10"), 4));
    row.push_back(fixed(field(forecast, "error_100"), 4));
    rows.push_back(std::move(row));
    if (!eol_soh && field(forecast, "interval").is_object())
      eol_soh = &field(field(forecast, "eol"), "eol_soh");
  }
  print_table(rows);
  if (eol_soh) {
    std::cout << "(RANGE: the model's prediction interval; EOL_RANGE: the cycles at which its "
                 "lower and upper bounds fall under SOH "
              << text_of(*eol_soh) << ", open: not within the horizon)\n";
  }
  if (forecasts.size() < total) {
    std::cout << "(the newest " << forecasts.size() << " of " << total
              << " forecasts; --last N for more, --last 0 for all)\n";
  }
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
  TableRows rows{{"VERSION", "STATUS", "CREATED", "RUN", "MAE", "FLASH", "RAM", "FOOTPRINT",
                  "LIVE+100", "BUNDLE"}};
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
    return kExitOk;
  }
  json fields = *model;
  fields.erase("events");  // a table of their own below
  print_fields(fields);
  const json& events = field(*model, "events");
  if (!events.is_array() || events.empty()) return kExitOk;
  std::cout << "\nevents (oldest first):\n";
  TableRows rows{{"AT", "ACTION", "ACTOR", "REASON"}};
  for (const json& event : events) {
    rows.push_back({time_of(field(event, "at")), text_of(field(event, "action")),
                    text_of(field(event, "actor")), text_of(field(event, "reason"))});
  }
  print_table(rows);
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

}  // namespace

void add_api_commands(CLI::App& app, GlobalOptions& global) {
  auto flags = std::make_shared<ApiFlags>();
  flags->api = env_or("CYCLECAST_API", "http://127.0.0.1:8080");
  flags->token_file = env_or("CYCLECAST_API_TOKEN_FILE", "/etc/cyclecast/api-token");

  add_api_command(app, "status", "cyclecastd's health, champion model and latest run (API)", flags,
                  global, run_status);
  add_api_command(app, "cells", "cells with their latest SOH and forecast (API)", flags, global,
                  run_cells);
  CLI::App* forecast = add_api_command(app, "forecast", "a cell's latest cycle and forecasts (API)",
                                       flags, global, run_forecast);
  forecast->add_option("cell", flags->cell, "cell id")->required();
  forecast->add_option("--last", flags->last, "show the newest N forecasts (0: all the API gives)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_run_commands(app, flags, global);

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
